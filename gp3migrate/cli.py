"""`python -m gp3migrate discover`: proposes the `migrations` list of a stack.

Examples:
  python -m gp3migrate discover --cluster dev-eks --region eu-central-1 --stack dev
  python -m gp3migrate discover --region eu-central-1 --stack dev --write \\
      --kube-json cluster.json --volumes-json volumes.json
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gp3migrate import naming, runner_policy
from gp3migrate.config import load_settings
from gp3migrate.discovery import OPT_IN_TYPES, Discovery, discover, volume_ids_to_describe
from gp3migrate.inventory import describe_volumes, live_kube_items, read_kube_items, read_volumes, stderr_progress
from gp3migrate.plan import plan_migration
from gp3migrate.sim import cli as simulate
from gp3migrate.stack_file import migrations_yaml, write_migrations
from gp3migrate.validation import ConfigError


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gp3migrate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("discover", help="list in-tree EBS volumes and propose the migrations config")
    d.add_argument("--cluster", help="EKS cluster name (default: the stack's clusterName)")
    d.add_argument("--region", required=True, help="AWS region of the cluster and its volumes")
    d.add_argument("--stack", required=True, help="stack whose Pulumi.<stack>.yaml receives the list")
    d.add_argument("--write", action="store_true", help="write the list into Pulumi.<stack>.yaml")
    d.add_argument("--output", choices=("table", "json", "yaml"), default="table")
    d.add_argument("--include-types", default="", help=f"comma-separated extra types: {', '.join(OPT_IN_TYPES)}")
    d.add_argument("--kube-json", type=Path, help="`kubectl get pv,pvc,pods,rs,deploy,sts -A -o json` output")
    d.add_argument("--volumes-json", type=Path, help="`aws ec2 describe-volumes --output json` output")
    d.add_argument("--kubeconfig", help="kubeconfig file for a live cluster (default: the usual one)")
    d.add_argument("--context", help="kubeconfig context for a live cluster")
    d.add_argument("--project-dir", type=Path, default=Path("."), help="where the stack files are")
    runner_policy.add_subcommand(sub)
    simulate.add_subcommand(sub)
    return parser


def _check_args(args: argparse.Namespace) -> list[str]:
    problem = naming.region_problem(args.region)
    if problem:
        raise UsageError(f"--region: {args.region!r} {problem}")
    if args.cluster and naming.eks_cluster_name_problem(args.cluster):
        raise UsageError(f"--cluster: {args.cluster!r} {naming.eks_cluster_name_problem(args.cluster)}")
    if not all(c.isalnum() or c in "-_" for c in args.stack):
        raise UsageError(f"--stack: {args.stack!r} is not a stack name (letters, digits, '-' and '_')")
    if bool(args.kube_json) != bool(args.volumes_json):
        raise UsageError("--kube-json and --volumes-json go together (both files, or a live cluster)")
    types = [t for t in args.include_types.split(",") if t]
    for t in types:
        if t not in OPT_IN_TYPES:
            raise UsageError(f"--include-types: {t!r} is not one of {', '.join(OPT_IN_TYPES)}")
    return types


def run_discovery(args: argparse.Namespace, include_types: Sequence[str]) -> Discovery:
    if args.kube_json:
        return discover(read_kube_items(args.kube_json), read_volumes(args.volumes_json), include_types=include_types)
    import boto3

    items = live_kube_items(args.kubeconfig, args.context, stderr_progress)
    ec2 = boto3.client("ec2", region_name=args.region)
    volumes = describe_volumes(ec2, volume_ids_to_describe(items), stderr_progress)
    return discover(items, volumes, include_types=include_types)


def table(result: Discovery, region: str) -> str:
    rows = [("CLAIM", "VOLUME", "ZONE", "GiB", "TYPE", "IOPS", "GP3 IOPS/MiBs", "$/MO GP2->GP3")]
    for entry in result.entries:
        settings = load_settings({"clusterName": "x", "region": region, "migrations": json.dumps([entry])})
        plan = plan_migration(settings.migrations[0], settings)
        price = f"{plan.cost.gp2:.2f}->{plan.cost.gp3:.2f}" if plan.cost else "unknown"
        rows.append(
            (
                f"{entry['namespace']}/{entry['claim']}",
                entry["volumeId"],
                str(entry["zone"]),
                str(entry["sizeGiB"]),
                entry["volumeType"],
                str(entry.get("iops", "")),
                f"{plan.performance.iops}/{plan.performance.throughput}",
                price,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    for warning in result.warnings:
        lines.append("")
        lines.append(f"Warning: {warning}")
    if result.skipped:
        lines.append("")
        lines.append("Not migrated:")
        for s in result.skipped:
            lines.append(f"  {s.claim or '-'} ({s.pv}, {s.volume_id or '-'}): {s.reason}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "iam-policy":
        return runner_policy.run(args)
    if args.command == "simulate":
        return simulate.run(args)
    try:
        include_types = _check_args(args)
        result = run_discovery(args, include_types)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # What we propose must be what the program accepts, unchanged: refuse to print or write
    # anything else (e.g. a claim whose `<claim>-gp3` name would be over 253 characters).
    try:
        load_settings(
            {
                "clusterName": args.cluster or "discovered",
                "region": args.region,
                "migrations": json.dumps(result.entries),
            }
        )
    except ConfigError as err:
        print(
            f"error: the discovered entries would be refused by the program; fix them by hand:\n{err}", file=sys.stderr
        )
        return 1
    if args.output == "json":
        skipped = [s.__dict__ for s in result.skipped]
        print(json.dumps({"migrations": result.entries, "skipped": skipped, "warnings": result.warnings}, indent=2))
    elif args.output == "yaml":
        print(migrations_yaml(result.entries), end="")
    else:
        print(table(result, args.region))
    if args.write:
        path = args.project_dir / f"Pulumi.{args.stack}.yaml"
        write_migrations(path, result.entries)
        print(f"wrote {len(result.entries)} migrations to {path}", file=sys.stderr)
    return 0
