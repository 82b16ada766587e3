"""`gp3migrate discover`: proposes a stack's `migrations` list and platform keys from a live
cluster or from exported files, and with `--write` merges them into `Pulumi.<stack>.yaml`.

A user error (a missing or malformed file, swapped files, no kubeconfig, no credentials, an
unknown stack) is one line `gp3migrate discover: error: <what>, <where>, <what is allowed>` and
exit code 2, never a traceback. A write that would lose state, or leave a file the program
refuses, is refused with exit code 1 and writes nothing.
"""

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gp3migrate import naming
from gp3migrate.checks import aws_clients as clients
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import Settings, load_settings
from gp3migrate.config.stack_file import (
    MIGRATIONS_KEY,
    StackFile,
    StackFileError,
    existing_stacks,
    new_stack,
    read_stack,
    render,
    stack_path,
    write_stack,
)
from gp3migrate.discovery.inventory import (
    ADDONS_EXPORT,
    KUBE_EXPORT,
    VOLUMES_EXPORT,
    InputError,
    Progress,
    connect,
    describe_addons,
    describe_volumes,
    list_kube_items,
    read_addons,
    read_kube_items,
    read_volumes,
    same_endpoint,
    stderr_progress,
)
from gp3migrate.discovery.merge import KINDS, MergeResult, merge
from gp3migrate.discovery.platform_scan import PlatformProposal, detect_platform
from gp3migrate.discovery.volumes import (
    Discovery,
    StackContext,
    discover,
    drop_refused,
    region_problem,
    volume_ids_to_describe,
)
from gp3migrate.planning.plan import plan_all, policy_costs
from gp3migrate.volume_types.prices import MonthlyCost
from gp3migrate.volume_types.sizing import PerformancePolicy

PROG = "gp3migrate discover"
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # fullmatch: `$` lets a trailing newline through


def _platform_default(key: str) -> Any:
    """What a stack without the key uses (from gp3migrate/config/settings.py), to compare proposals with."""
    settings = load_settings({"clusterName": "defaults", "region": "eu-central-1"})
    return {
        "driverInstall": settings.driver.install,
        "driverAdopt": settings.driver.adopt,
        "driverChartVersion": settings.driver.chart_version,
        "driverAddonVersion": settings.driver.addon_version,
        "snapshotSupport": settings.snapshots.support,
        "gp3ClassName": settings.storage.gp3_class_name,
        "performance": settings.performance,
    }.get(key)


EPILOG = """\
examples:
  live (your kubeconfig and AWS credentials), review the proposal:
    gp3migrate discover --stack dev
  merge it into Pulumi.dev.yaml, showing the diff first:
    gp3migrate discover --stack dev --write --dry-run
    gp3migrate discover --stack dev --write
  a new stack file for another cluster:
    gp3migrate discover --cluster qa-eks --region us-east-1 --stack qa --write --create
  air-gapped, from exports (README "Runbook", step 0):
    gp3migrate discover --stack dev --kube-json kube.json --kube-json helm.json \\
        --volumes-json volumes.json --addons-json addons.json --output yaml

--write merges: keys you set and entries past precopy are kept, new volumes are added, an entry
discovery no longer sees is flagged and kept (--prune removes it, only if it has no phase: an
entry with a phase is in flight, or done, and only you remove it).

exit codes: 0 done; 1 refused, nothing written (the merged file would be refused by the program,
or --prune would empty the list); 2 bad arguments or input.
"""


class DiscoverError(Exception):
    """A user error: what is wrong, which flag or file, and what is allowed."""

    def __init__(self, what: str, where: str, allowed: str):
        super().__init__(what)
        self.what, self.where, self.allowed = what, where, allowed

    def line(self) -> str:
        return f"{PROG}: error: {self.what}, {self.where}, {self.allowed}"


class RefusedError(Exception):
    """A write refused because it would lose state or be refused by the program."""

    def __init__(self, reason: str, problems: Sequence[str] = ()):
        super().__init__(reason)
        self.reason, self.problems = reason, tuple(problems)


def add_subcommand(commands: Any) -> None:
    command = commands.add_parser(
        "discover",
        help="propose the migrations list (and platform keys) of a stack from its cluster",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = command.add_argument_group("which cluster and stack")
    where.add_argument("--stack", help="stack whose Pulumi.<stack>.yaml gives the cluster, region and checks")
    where.add_argument(
        "--cluster", help="EKS cluster name (default: the stack's clusterName); checked against the kubeconfig"
    )
    where.add_argument("--region", help="AWS region of the cluster and its volumes (default: the stack's region)")
    where.add_argument("--project-dir", type=Path, default=Path("."), help="where the stack files are (default: .)")
    live = command.add_argument_group("live cluster (default)")
    live.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    live.add_argument("--context", help="kubeconfig context (default: the current one)")
    files = command.add_argument_group("exported files instead (air-gapped)")
    files.add_argument("--kube-json", type=Path, action="append", help=f"{KUBE_EXPORT}; repeat for several files")
    files.add_argument("--volumes-json", type=Path, help=VOLUMES_EXPORT)
    files.add_argument("--addons-json", type=Path, help=f"{ADDONS_EXPORT}; without it add-ons are not checked")
    out = command.add_argument_group("output")
    out.add_argument("--output", choices=("table", "yaml", "json"), default="table", help="format (default: table)")
    out.add_argument("--write", action="store_true", help="merge the proposal into Pulumi.<stack>.yaml")
    out.add_argument(
        "--dry-run", action="store_true", help="with --write: print the diff a write would make, write nothing"
    )
    out.add_argument(
        "--prune",
        action="store_true",
        help="with --write: remove entries without a phase that discovery no longer sees",
    )
    out.add_argument(
        "--create", action="store_true", help="with --write: create Pulumi.<stack>.yaml if it does not exist"
    )
    command.set_defaults(run=run, parser=command)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except DiscoverError as err:
        print(err.line(), file=sys.stderr)
        return 2
    except RefusedError as err:
        print(f"{PROG}: refused, nothing written: {err.reason}", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted, nothing written", file=sys.stderr)
        return 130


# --- arguments and the stack file ------------------------------------------------------------


def _check_flags(args: argparse.Namespace) -> None:
    if args.stack is not None and not _STACK_NAME.fullmatch(args.stack):
        raise DiscoverError(f"{args.stack!r} is not a stack name", "--stack", "letters, digits, '-', '_' and '.'")
    for flag, needs_write in (("--dry-run", args.dry_run), ("--prune", args.prune), ("--create", args.create)):
        if needs_write and not args.write:
            raise DiscoverError(f"{flag} only applies to a write", flag, "add --write")
    if args.write and not args.stack:
        raise DiscoverError("--write needs the stack to write", "--write", "add --stack <stack>")
    if bool(args.kube_json) != bool(args.volumes_json):
        given = "--kube-json" if args.kube_json else "--volumes-json"
        raise DiscoverError(f"{given} without the other export", given, "give both --kube-json and --volumes-json")
    if args.addons_json and not args.kube_json:
        raise DiscoverError(
            "--addons-json is for exported files", "--addons-json", "a live run asks EKS itself (with --cluster)"
        )
    if args.region and naming.region_problem(args.region):
        raise DiscoverError(f"{args.region!r} {naming.region_problem(args.region)}", "--region", "e.g. eu-central-1")
    if args.cluster and naming.eks_cluster_name_problem(args.cluster):
        raise DiscoverError(
            f"{args.cluster!r} is not an EKS cluster name", "--cluster", "1-100 letters, digits, '-' or '_'"
        )


def _stack_file(args: argparse.Namespace) -> tuple[StackFile | None, bool]:
    """The stack file (None without --stack), and whether it is new (--create)."""
    if not args.stack:
        return None, False
    path = stack_path(args.project_dir, args.stack)
    if not path.exists():
        if args.create:
            return None, True
        stacks = ", ".join(existing_stacks(args.project_dir)) or "none"
        raise DiscoverError(
            f"no stack file {path}",
            f"--stack {args.stack}",
            f"name an existing stack ({stacks}), or add --write --create to start one",
        )
    try:
        return read_stack(path), False
    except StackFileError as err:
        raise DiscoverError(f"{path}: {err.what}", f"--stack {args.stack}", err.expected) from None


def _resolve(flag: str, given: str | None, stack: StackFile | None, key: str) -> str | None:
    recorded = stack.get(key) if stack else None
    if given and recorded and given != recorded:
        raise DiscoverError(
            f"{flag} {given} differs from {key} {recorded} in {stack.path.name if stack else ''}",
            flag,
            f"drop {flag}, or name the stack of that cluster",
        )
    value = given or recorded
    return str(value) if value else None


def _context(stack: StackFile | None, region: str) -> tuple[StackContext, str]:
    if stack is None:
        return StackContext(region=region), "gp3"
    arns = stack.get("kmsKeyArns") or []
    return (
        StackContext(
            region=region,
            kms_key_arns=tuple(str(a) for a in arns) if isinstance(arns, list) else (),
            gp2_class_name=str(stack.get("gp2ClassName") or "gp2"),
        ),
        str(stack.get("gp3ClassName") or "gp3"),
    )


# --- inputs ------------------------------------------------------------------------------------


@dataclass
class Inputs:
    items: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    addons: list[dict[str, Any]] | None
    source: str  # where the volumes came from, for messages


def _read(flag: str, path: Path, reader: Any) -> Any:
    try:
        return reader(path)
    except InputError as err:
        raise DiscoverError(err.what, f"{flag} {path}", f"give {err.expected}") from None


def file_inputs(args: argparse.Namespace, cluster: str | None) -> Inputs:
    items = [item for path in args.kube_json for item in _read("--kube-json", path, read_kube_items)]
    volumes = _read("--volumes-json", args.volumes_json, read_volumes)
    addons = _read("--addons-json", args.addons_json, read_addons) if args.addons_json else None
    for addon in addons or []:
        if cluster and addon.get("clusterName") not in (None, cluster):
            raise DiscoverError(
                f"it describes add-ons of cluster {addon.get('clusterName')}, not {cluster}",
                f"--addons-json {args.addons_json}",
                f"export the add-ons of {cluster}",
            )
    return Inputs(items, volumes, addons, f"--volumes-json {args.volumes_json}")


def aws_clients(region: str) -> tuple[Any, Any]:
    """(ec2, eks) clients, refused up front when there are no credentials (a long cluster listing
    should not end in that)."""
    import boto3

    session = boto3.session.Session(region_name=region)
    if session.get_credentials() is None:
        raise DiscoverError(
            "no AWS credentials found",
            f"--region {region}",
            "configure credentials (AWS_PROFILE, aws configure, aws sso login) or give exported files "
            "(--kube-json and --volumes-json)",
        )
    # Discovery's own credentials, with the retries every client of the program gets.
    return clients.client("ec2", region, session=session), clients.client("eks", region, session=session)


@contextmanager
def _aws_errors(region: str, cluster: str | None) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as err:
        raise DiscoverError(
            f"no usable AWS credentials ({err})", f"--region {region}", "configure credentials"
        ) from None
    except ClientError as err:
        error = err.response.get("Error", {})
        operation = getattr(err, "operation_name", "a call")
        if error.get("Code") == "ResourceNotFoundException" and operation == "DescribeCluster":
            raise DiscoverError(
                f"no EKS cluster {cluster!r} in {region}",
                "--cluster",
                "name a cluster of this region (aws eks list-clusters)",
            ) from None
        raise DiscoverError(
            f"AWS refused {operation} ({error.get('Code')}: {error.get('Message')})",
            f"--region {region}",
            "discover needs ec2:DescribeVolumes, eks:DescribeCluster, eks:ListAddons and eks:DescribeAddon",
        ) from None
    except BotoCoreError as err:
        raise DiscoverError(
            f"AWS client failed ({err})", f"--region {region}", "check the AWS profile, credentials and network"
        ) from None


@contextmanager
def _kube_errors(args: argparse.Namespace, host: str = "") -> Iterator[None]:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException
    from urllib3.exceptions import HTTPError
    from yaml import YAMLError

    where = (
        f"--kubeconfig {args.kubeconfig}" if args.kubeconfig else "--kubeconfig (default $KUBECONFIG or ~/.kube/config)"
    )
    try:
        yield
    except (ConfigException, YAMLError, OSError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        if host:  # past the kubeconfig: the connection broke
            raise DiscoverError(f"cannot reach the cluster API {host} ({detail})", where, "check the network") from None
        raise DiscoverError(
            f"no usable kubeconfig ({detail})",
            where,
            "run `aws eks update-kubeconfig --name <cluster> --region <region>`, or give exported files "
            "(--kube-json and --volumes-json)",
        ) from None
    except ApiException as err:
        raise DiscoverError(
            f"the cluster refused a read ({err.status} {err.reason})",
            f"--context {args.context}" if args.context else where,
            "discover needs get/list on persistentvolumes, persistentvolumeclaims, pods, deployments, statefulsets, "
            "daemonsets, storageclasses, csidrivers, the snapshot CRDs and Helm release secrets (README)",
        ) from None
    except HTTPError as err:
        raise DiscoverError(
            f"cannot reach the cluster API {host} ({type(err).__name__})", where, "check the network"
        ) from None


def live_inputs(args: argparse.Namespace, region: str, cluster: str | None, progress: Progress) -> Inputs:
    with _aws_errors(region, cluster):
        ec2, eks = aws_clients(region)
    with _kube_errors(args):
        connection = connect(args.kubeconfig, args.context)
    addons = None
    with _aws_errors(region, cluster):
        if cluster:
            endpoint = str(eks.describe_cluster(name=cluster)["cluster"]["endpoint"])
            if not same_endpoint(endpoint, connection.host):
                raise DiscoverError(
                    f"the kubeconfig context {connection.context!r} points at {connection.host}, not at EKS cluster "
                    f"{cluster} ({endpoint})",
                    "--context",
                    f"choose the context of {cluster} (aws eks update-kubeconfig --name {cluster} --region {region}); "
                    "behind a proxy, use exported files (README, Runbook step 0)",
                )
            addons = describe_addons(eks, cluster)
        else:
            progress("no --cluster (and no clusterName in the stack): EKS add-ons not checked")
    with _kube_errors(args, connection.host):
        items = list_kube_items(connection.apis, progress)
    with _aws_errors(region, cluster):
        volumes = describe_volumes(ec2, volume_ids_to_describe(items), progress)
    return Inputs(items, volumes, addons, f"--region {region}")


# --- output ----------------------------------------------------------------------------------


def _settings(entries: list[dict[str, Any]], stack: StackFile | None, region: str) -> Settings:
    """The proposed entries with the stack's keys (its `performance` policy among them)."""
    base = {k: v for k, v in (stack.project_values() if stack else {}).items() if k not in ("migrations", "forget")}
    try:
        return load_settings({"clusterName": "discovered", **base, "region": region, "migrations": entries})
    except ConfigError:
        # The stack's own keys are refused: price with the defaults (drop_refused checked the entries with them).
        return load_settings({"clusterName": "discovered", "region": region, "migrations": entries})


def propose_performance(platform: PlatformProposal, settings: Settings) -> None:
    """The stack-wide `performance` policy: the stack's own, else the default (a new stack file
    then says which it plans for). What each policy would cost is in the table, per volume and in
    total, for the choice to be an informed one."""
    platform.keys["performance"] = settings.performance


def _price(cost: MonthlyCost | None, side: str) -> str:
    return "unknown" if cost is None else f"{getattr(cost, side):.2f}"


def table(result: Discovery, platform: PlatformProposal, settings: Settings) -> str:
    """One row per proposed volume: the plan under its policy, and the monthly price on gp2 and
    on gp3 under each policy, whichever the stack chose."""
    rows = [
        (
            "CLAIM",
            "WORKLOAD",
            "VOLUME",
            "ZONE",
            "GiB",
            "TYPE",
            "IOPS",
            "GP3 IOPS/MiBs",
            "POLICY",
            "$/MO GP2",
            "GP3 SUSTAINED",
            "GP3 PEAK",
        )
    ]
    costs = []
    for entry, plan in zip(result.entries, plan_all(settings), strict=True):
        workload = entry.get("workload")
        by_policy = policy_costs(plan.entry, settings)
        costs.append(by_policy)
        rows.append(
            (
                f"{entry['namespace']}/{entry['claim']}",
                f"{workload['kind']}/{workload['name']}" if workload else "-",
                entry["volumeId"],
                str(entry["zone"]),
                str(entry["sizeGiB"]),
                entry["volumeType"],
                str(entry.get("iops", "")),
                f"{plan.performance.iops}/{plan.performance.throughput}",
                plan.performance_policy,
                _price(plan.cost, "gp2"),
                _price(by_policy["sustained"], "gp3"),
                _price(by_policy["peak"], "gp3"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += _price_summary(costs)
    owned = [(entry, owners_cell(entry)) for entry in result.entries]
    if any(cell != "-" for _, cell in owned):
        # Below the rows rather than a column: the names are long, and each row keeps one line.
        lines += ["", "Other owners (each acts on the claim or its workload):"]
        lines += [f"  {e['namespace']}/{e['claim']}: {cell}" for e, cell in owned if cell != "-"]
    for warning in result.warnings + platform.warnings:
        lines += ["", f"Warning: {warning}"]
    lines += ["", "Platform (what the cluster runs now):"]
    lines += [f"  {line}" for line in platform.evidence]
    lines += [f"  proposed {key}: {_scalar(value)}" for key, value in platform.keys.items()]
    if result.skipped:
        lines += ["", "Not migrated:"]
        lines += [f"  {s.claim or '-'} ({s.pv}, {s.volume_id or '-'}): {s.reason}" for s in result.skipped]
    return "\n".join(lines)


def owners_cell(entry: Mapping[str, Any]) -> str:
    """The entry's other owners, short: `Application argocd/shop (auto-sync)`; an operator last."""
    cells = []
    for owner in entry.get("owners") or ():
        state = ""
        if owner.get("autoSync") is not None:
            state = " (auto-sync)" if owner["autoSync"] else " (manual sync)"
        elif owner.get("suspended") is not None:
            state = " (suspended)" if owner["suspended"] else " (not suspended)"
        cells.append(f"{owner['kind']} {owner['namespace']}/{owner['name']}{state}")
    operator = (entry.get("workload") or {}).get("owner")
    if operator:
        cells.append(f"{operator['kind']} {operator['name']} (operator)")
    return ", ".join(cells) or "-"


def _price_summary(costs: Sequence[Mapping[PerformancePolicy, MonthlyCost | None]]) -> list[str]:
    """The fleet's monthly price on gp2 and under each policy, below the table."""
    if not costs:
        return []
    known = [
        {policy: cost for policy, cost in each.items() if cost is not None}
        for each in costs
        if None not in each.values()
    ]
    if len(known) < len(costs):
        return ["", "$/month in total: unknown (no prices for this region in gp3migrate/volume_types/prices.py)"]
    gp2 = sum(each["sustained"].gp2 for each in known)
    sustained, peak = (sum(each[policy].gp3 for each in known) for policy in ("sustained", "peak"))
    return [
        "",
        f"$/month in total: gp2 {gp2:.2f}; gp3 {sustained:.2f} with performance: sustained, "
        f"{peak:.2f} with performance: peak",
    ]


def _scalar(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def as_yaml(result: Discovery, platform: PlatformProposal, cluster: str | None, region: str) -> str:
    """The keys to put under `config:`, with the warnings, evidence and skip reasons as comments."""
    head = [f"# gp3migrate discover: cluster {cluster or '?'}, region {region}: {len(result.entries)} proposed, "]
    head[0] += f"{len(result.skipped)} not migrated"
    if result.warnings or platform.warnings:
        head.append("# Warnings:")
        head += [f"#   - {w}" for w in result.warnings + platform.warnings]
    head.append("# Platform (what the cluster runs now):")
    head += [f"#   - {line}" for line in platform.evidence]
    body = render({**{f"eks-gp3-migration:{k}": v for k, v in platform.keys.items()}, MIGRATIONS_KEY: result.entries})
    tail = ["# Not migrated:"] if result.skipped else []
    tail += [f"#   - {s.claim or '-'} ({s.pv}, {s.volume_id or '-'}): {s.reason}" for s in result.skipped]
    return "\n".join(head) + "\n" + body + ("\n".join(tail) + "\n" if tail else "")


def as_json(result: Discovery, platform: PlatformProposal, cluster: str | None, region: str) -> str:
    document = {
        "cluster": cluster,
        "region": region,
        "migrations": result.entries,
        "skipped": [s.as_json() for s in result.skipped],
        "warnings": result.warnings + platform.warnings,
        "platform": platform.as_json(),
    }
    return json.dumps(document, indent=2)


# --- write -----------------------------------------------------------------------------------


def _platform_notes(stack: StackFile, platform: PlatformProposal) -> list[str]:
    notes = []
    for key, proposed in platform.keys.items():
        current = stack.get(key) if stack.has(key) else _platform_default(key)
        if current != proposed:
            shown = "nothing" if current is None else _scalar(current) + ("" if stack.has(key) else " (default)")
            notes.append(f"{key}: the file has {shown}, discovery proposes {_scalar(proposed)}")
    if notes:
        # An install this stack made itself looks the same from the cluster: never overwrite.
        notes.append("not written to an existing file: edit them by hand if the cluster's install is not this stack's")
    return notes


def summary(path: Path, merged: MergeResult, platform_notes: Sequence[str], created: bool) -> str:
    counts = ", ".join(f"{len(merged.of(kind))} {kind}" for kind in KINDS)
    lines = [f"{'new ' if created else ''}{path}: {counts}"]
    for kind in KINDS:
        changes = merged.of(kind)
        if kind == "kept" and changes:
            lines.append(f"  kept     {', '.join(c.key for c in changes)}")
            continue
        lines += [f"  {kind:<8} {c.key}{': ' + c.detail if c.detail else ''}" for c in changes]
    lines += [f"  platform {note}" for note in platform_notes]
    return "\n".join(lines)


def write(
    args: argparse.Namespace,
    stack: StackFile | None,
    result: Discovery,
    platform: PlatformProposal,
    cluster: str | None,
    region: str,
) -> None:
    created = stack is None
    if stack is None:
        if not cluster:
            raise DiscoverError("a new stack file needs the cluster's name", "--create", "add --cluster <name>")
        stack = new_stack(stack_path(args.project_dir, args.stack), cluster, region)
        for key, value in platform.keys.items():
            stack.set(key, value)
    migrations = stack.migrations()
    had = len(migrations)
    merged = merge(migrations, result.entries, result.skipped, prune=args.prune)
    if had and not migrations:
        raise RefusedError(
            f"--prune would empty the migrations list of {stack.path} (discovery proposes none of its {had} entries); "
            "remove them by hand if that is right"
        )
    notes = [] if created else _platform_notes(stack, platform)
    print(summary(stack.path, merged, notes, created), file=sys.stderr)
    try:
        load_settings(stack.project_values())
    except ConfigError as err:
        raise RefusedError(
            f"the program would refuse {stack.path} after the merge; fix these first", err.problems
        ) from None
    if args.dry_run:
        diff = stack.diff() if merged.changed or created else []
        print("\n".join(diff) if diff else f"no change to {stack.path}", file=sys.stderr)
        print(f"dry run: {stack.path} not written", file=sys.stderr)
    elif merged.changed or created:
        write_stack(stack)
        print(f"wrote {stack.path}", file=sys.stderr)
    else:
        print(f"no changes: {stack.path} not written", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    _check_flags(args)
    stack, creating = _stack_file(args)
    region = _resolve("--region", args.region, stack, "region")
    cluster = _resolve("--cluster", args.cluster, stack, "clusterName")
    if region is None:
        raise DiscoverError(
            "no region", "--region", "give the cluster's region (e.g. eu-central-1) or a --stack that has one"
        )
    context, gp3_class_name = _context(stack, region)
    inputs = file_inputs(args, cluster) if args.kube_json else live_inputs(args, region, cluster, stderr_progress)
    problem = region_problem(inputs.items, inputs.volumes, region)
    if problem:
        raise DiscoverError(
            f"the volumes cannot be this cluster's: {problem}",
            inputs.source,
            f"export the volumes of the cluster's account and region (aws ec2 describe-volumes --region {region})",
        )
    result = discover(inputs.items, inputs.volumes, context=context)
    drop_refused(result, region)
    platform = detect_platform(
        inputs.items,
        inputs.addons,
        gp3_class_name=gp3_class_name,
        stack_driver_install=str(stack.get("driverInstall")) if stack and stack.has("driverInstall") else None,
        kms_keys=sorted(
            {*(context.kms_key_arns or ()), *(str(e["kmsKeyId"]) for e in result.entries if e.get("kmsKeyId"))}
        ),
    )
    settings = _settings(result.entries, stack, region)
    propose_performance(platform, settings)
    if args.output == "json":
        print(as_json(result, platform, cluster, region))
    elif args.output == "yaml":
        print(as_yaml(result, platform, cluster, region), end="")
    else:
        print(table(result, platform, settings))
    if args.write:
        write(args, None if creating else stack, result, platform, cluster, region)
    return 0
