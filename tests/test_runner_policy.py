"""`python -m gp3migrate iam-policy`: the policy grants what the program calls.

The real program runs under mocks for the dev, prod and rehearsal stacks, through every phase
and the platform branches; every resource type it registers and every function it invokes must
have an entry in gp3migrate/iam/runner_policy.py, the printed policy must hold that entry's actions,
and the policy holds nothing for a resource type or function no phase of those settings uses. A
scan of the source finds every boto3 call, which must have an entry too.

Not proven here: that the action lists match what the pulumi-aws provider calls today (they come
from the Service Authorization Reference and the Terraform provider's behaviour; only a live run
with exactly this policy proves them), and what pulumi-eks's component calls inside (its entry
lists the children its source creates, which the mocks do not show).
"""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import UnknownServiceError

from gp3migrate import cli
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings, project_values
from gp3migrate.iam import runner_policy
from tests import rehearsal_mocks
from tests.mock_cloud import (
    PROJECT_DIR,
    STACKS_DIR,
    Run,
    as_runtime_config,
    copy_stack_config,
    run_program,
    stack_config,
    stack_name,
    with_phase,
)

KEY = "eks-gp3-migration"
DEV, PROD, REHEARSAL = copy_stack_config("dev"), copy_stack_config("prod"), copy_stack_config("rehearsal")
PROD_ENTRY = dict(DEV[f"{KEY}:migrations"][0], zone="us-east-1a")
REHEARSAL_ENTRY = dict(DEV[f"{KEY}:migrations"][0], zone="eu-west-1a")
EXISTING_VPC = {
    f"{KEY}:rehearsalVpcId": "vpc-0123456789abcdef0",
    f"{KEY}:rehearsalSubnetIds": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
}
# One `up` after another: (phase, entry changes). Together they reach every step the program has.
LIFECYCLES = {
    "rename": [("precopy", {}), ("cutover", {}), ("finalize", {}), ("finalize", {})],
    "rename, source deleted": [("precopy", {}), ("cutover", {}), ("finalize", {"deleteSource": True})],
    "same-name, rolled back": [
        ("precopy", {"claimNaming": "same-name"}),
        ("cutover", {"claimNaming": "same-name"}),
        ("rollback", {"claimNaming": "same-name", "deleteRestoredClaim": True}),
    ],
}


@pytest.fixture(autouse=True)
def rehearsal_cloud(monkeypatch):
    return rehearsal_mocks.install(monkeypatch)


def settings_of(config):
    return load_settings(project_values(as_runtime_config(config)))


def policy_of(config, stack="dev"):
    """The policy `iam-policy --stack <stack>` prints for a stack with this config."""
    return runner_policy.policy(settings_of(config), stack)


def walk(config, lifecycle, *, stack="dev", other_stacks=None) -> list[Run]:
    runs: list[Run] = []
    previous: dict[str, Any] = {}
    for phase, changes in lifecycle:
        run = run_program(
            with_phase(config, phase, **changes), stack=stack, previous_outputs=previous, other_stacks=other_stacks
        )
        assert run.error is None, f"{phase}: {run.error}"
        runs.append(run)
        previous = run.outputs
    return runs


def used(run: Run) -> set[str]:
    """What a run registered or invoked that can involve AWS, failing on anything without an entry."""
    tokens = {r.type for r in run.registrations} | {i.token for i in run.invocations}
    aws = {t for t in tokens if not t.startswith(runner_policy.NOT_AWS_PREFIXES)}
    missing = []
    for token in sorted(aws):
        try:
            runner_policy.grant_for(token)
        except KeyError:
            missing.append(token)
    assert missing == [], f"no entry in gp3migrate/iam/runner_policy.py for {missing}"
    return aws


def policy_actions(document) -> set[str]:
    return {action for statement in document["Statement"] for action in statement["Action"]}


def assert_grants_what_the_program_calls(config, runs: list[Run], stack: str = "dev") -> None:
    settings = settings_of(config)
    document = runner_policy.policy(settings, stack)
    observed = set().union(*(used(run) for run in runs))
    assert observed <= runner_policy.needed_by(settings), observed - runner_policy.needed_by(settings)
    granted = policy_actions(document)
    for token in sorted(observed):
        missing = set(runner_policy.grant_for(token).actions) - granted
        assert not missing, f"{token} needs {sorted(missing)}, which the policy does not grant"
    # Least privilege: nothing for a resource type or function no phase of these settings uses
    # (boto3 calls run in the engine, where the mocks do not reach; they are scanned below).
    engine_calls = {*runner_policy.BOTO3_CALLS, *runner_policy.DRIVER_CHECK_CALLS}
    unused = runner_policy.needed_by(settings) - observed - engine_calls
    assert unused == set(), f"granted but never used by these settings: {sorted(unused)}"


@pytest.mark.parametrize("lifecycle", sorted(LIFECYCLES))
def test_dev_through_every_phase(lifecycle):
    assert_grants_what_the_program_calls(DEV, walk(DEV, LIFECYCLES[lifecycle]))


def test_prod_through_every_phase_after_dev():
    dev = walk(DEV, LIFECYCLES["rename"])[-1]
    config = {**PROD, f"{KEY}:migrations": [PROD_ENTRY]}
    runs = walk(config, LIFECYCLES["rename"], stack="prod", other_stacks={stack_name("dev"): dev.outputs})
    assert_grants_what_the_program_calls(config, runs, "prod")


def test_the_stack_files_as_they_are():
    dev = run_program(DEV)
    prod = run_program(PROD, stack="prod", other_stacks={stack_name("dev"): dev.outputs})
    rehearsal = run_program(REHEARSAL, stack="rehearsal")
    for config, run, stack in ((DEV, dev, "dev"), (PROD, prod, "prod"), (REHEARSAL, rehearsal, "rehearsal")):
        assert run.error is None, run.error
        settings = settings_of(config)
        granted = policy_actions(runner_policy.policy(settings, stack))
        assert used(run) <= runner_policy.needed_by(settings)
        assert runner_policy.actions_for(used(run)) <= granted


@pytest.mark.parametrize("network", ["created VPC", "existing VPC"])
def test_rehearsal_through_every_phase(network):
    empty = {**REHEARSAL, **(EXISTING_VPC if network == "existing VPC" else {})}
    config = {**empty, f"{KEY}:migrations": [REHEARSAL_ENTRY]}
    # The first `up` has no migrations yet (discovery finds the demo volume after it).
    runs = [run_program(empty, stack="rehearsal")]
    runs += walk(config, LIFECYCLES["rename, source deleted"], stack="rehearsal")
    assert_grants_what_the_program_calls(config, runs, "rehearsal")


@pytest.mark.parametrize(
    "changes",
    [
        # EKS add-ons with IRSA, a created OIDC provider, the V2 policy looked up by name.
        {
            "driverInstall": "addon",
            "driverAddonVersion": "v1.53.0-eksbuild.1",
            "createOidcProvider": True,
            "managedPolicy": "v2",
            "snapshotSupport": "addon",
            "snapshotControllerAddonVersion": "v8.3.0-eksbuild.1",
        },
        # The add-on carrying its Pod Identity association, KMS grants.
        {
            "driverInstall": "addon",
            "driverAddonVersion": "v1.53.0-eksbuild.1",
            "driverIdentity": "pod-identity",
            "kmsKeyArns": ["arn:aws:kms:eu-central-1:123456789012:key/4f2c9a7e-1b3d-4c5e-8f90-a1b2c3d4e5f6"],
        },
    ],
    ids=["addon-irsa-v2-oidc", "addon-pod-identity-kms"],
)
def test_platform_branches(changes):
    config = {**DEV, **{f"{KEY}:{k}": v for k, v in changes.items()}}
    assert_grants_what_the_program_calls(config, walk(config, LIFECYCLES["rename"]))


STRATEGIES = ("rehome", "modify", "copy")


def entries_of_every_strategy(zone: str) -> list[dict[str, Any]]:
    """The dev stack's volume three times, once per strategy, each its own claim, PV, volume and
    workload (a migration's identity must be unique)."""
    base = stack_config("dev")[f"{KEY}:migrations"][0]
    return [
        {
            **base,
            "claim": f"data-{strategy}",
            "pv": f"pvc-{strategy}",
            "volumeId": f"vol-0{i}d3cd818a2c2def3",
            "zone": zone,
            "workload": {**base["workload"], "name": f"app-{strategy}"},
            "strategy": strategy,
        }
        for i, strategy in enumerate(STRATEGIES)
    ]


def without_migrations(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != f"{KEY}:migrations"}


@pytest.mark.parametrize("stack", ["dev", "prod", "rehearsal"])
def test_the_policy_is_the_same_before_the_first_migration_and_after_one_of_each_strategy(stack):
    """The README promises a policy that stays the same from one `up` to the next: discovery
    adding the first volumes (prod and rehearsal ship with none) must not change it."""
    empty = without_migrations(stack_config(stack))
    zone = f"{empty[f'{KEY}:region']}a"
    every_strategy = {**empty, f"{KEY}:migrations": entries_of_every_strategy(zone)}
    assert policy_of(empty, stack) == policy_of(every_strategy, stack)


def test_the_one_right_a_listed_volume_can_add_is_the_present_drivers_kms_check():
    """A present driver is checked against the keys in use, an encrypted volume's among them
    (gp3migrate/checks/driver_readiness.py keys_in_use): on a stack that names no key (dev), its first
    encrypted volume adds the check's calls and nothing else."""
    empty = without_migrations(stack_config("dev"))
    key = "arn:aws:kms:eu-central-1:123456789012:key/4f2c9a7e-1b3d-4c5e-8f90-a1b2c3d4e5f6"
    encrypted = [{**entry, "encrypted": True, "kmsKeyId": key} for entry in entries_of_every_strategy("eu-central-1a")]
    before = policy_actions(policy_of(empty))
    after = policy_actions(policy_of({**empty, f"{KEY}:migrations": encrypted}))
    assert after - before == runner_policy.actions_for(runner_policy.DRIVER_CHECK_CALLS)
    assert before <= after


# One `up` after another, each strategy's phase in that `up` (modify has only precopy).
EVERY_STRATEGY_LIFECYCLES = {
    "cleaned up": [
        {"rehome": "precopy", "modify": "precopy", "copy": "precopy"},
        {"rehome": "cutover", "modify": "precopy", "copy": "cutover"},
        {"rehome": "finalize", "modify": "precopy", "copy": "finalize"},
        {"rehome": "cleanup", "modify": "precopy", "copy": "cleanup"},
    ],
    "rolled back": [
        {"rehome": "precopy", "modify": "precopy", "copy": "precopy"},
        {"rehome": "cutover", "modify": "precopy", "copy": "cutover"},
        {"rehome": "rollback", "modify": "precopy", "copy": "rollback"},
    ],
}


def with_phases(config: dict[str, Any], phases: dict[str, str]) -> dict[str, Any]:
    entries = [{**entry, "phase": phases[entry["strategy"]]} for entry in config[f"{KEY}:migrations"]]
    return {**config, f"{KEY}:migrations": entries}


@pytest.mark.parametrize("lifecycle", sorted(EVERY_STRATEGY_LIFECYCLES))
def test_every_strategy_through_every_phase(lifecycle):
    """What rehome and modify register is granted too, not only the copy's snapshots."""
    dev = stack_config("dev")
    config = {**dev, f"{KEY}:migrations": entries_of_every_strategy("eu-central-1c")}
    runs: list[Run] = []
    previous: dict[str, Any] = {}
    for phases in EVERY_STRATEGY_LIFECYCLES[lifecycle]:
        run = run_program(with_phases(config, phases), previous_outputs=previous)
        assert run.error is None, f"{phases}: {run.error}"
        runs.append(run)
        previous = run.outputs
    assert_grants_what_the_program_calls(config, runs)


def test_the_actions_the_old_readme_missed_are_granted_where_needed():
    dev = policy_actions(policy_of(DEV))
    assert {"ec2:DeleteSnapshot", "ec2:DescribeVolumes"} <= dev
    # dev keeps the driver it runs (driverInstall: present): no role of ours, no add-on.
    assert not {"iam:GetRole", "iam:PassRole", "eks:DescribeAddon"} & dev
    helm = {**DEV, f"{KEY}:driverInstall": "helm", f"{KEY}:driverChartVersion": "2.64.0"}
    helm_actions = policy_actions(policy_of(helm))
    assert {"iam:ListOpenIDConnectProviders", "iam:GetRole"} <= helm_actions
    # Helm with IRSA passes no role to AWS and uses no add-on.
    assert "iam:PassRole" not in helm_actions and "eks:DescribeAddon" not in helm_actions
    addon = {
        **DEV,
        f"{KEY}:driverInstall": "addon",
        f"{KEY}:driverAddonVersion": "v1.53.0-eksbuild.1",
    }
    assert {"iam:PassRole", "eks:DescribeAddon"} <= policy_actions(policy_of(addon))
    rehearsal = policy_of(REHEARSAL, "rehearsal")
    assert {"eks:CreateNodegroup", "ec2:CreateNatGateway", "iam:PassRole"} <= policy_actions(rehearsal)
    assert [s for s in rehearsal["Statement"] if s["Sid"] == "EksServiceLinkedRoles"] == [
        {
            "Sid": "EksServiceLinkedRoles",
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": ["arn:aws:iam::*:role/aws-service-role/*"],
            "Condition": {"StringEquals": {"iam:AWSServiceName": ["eks-nodegroup.amazonaws.com", "eks.amazonaws.com"]}},
        }
    ]
    # Without a VPC to create, none of the network actions.
    existing = policy_actions(policy_of({**REHEARSAL, **EXISTING_VPC}, "rehearsal"))
    assert not {a for a in existing if re.match(r"ec2:(Create|Delete)(Vpc|Subnet|NatGateway|RouteTable)$", a)}


def test_every_action_is_a_well_formed_iam_action_and_the_tables_are_sorted_out():
    for table in (
        runner_policy.RESOURCES,
        runner_policy.INVOKES,
        runner_policy.BOTO3_CALLS,
        runner_policy.DRIVER_CHECK_CALLS,
    ):
        for token, grant in table.items():
            assert len(set(grant.actions)) == len(grant.actions), token
            for action in grant.actions:
                assert re.fullmatch(r"(ec2|eks|iam|sts|kms):[A-Z][A-Za-z]+", action), (token, action)
    for component, children in runner_policy.COMPONENTS.items():
        for child in children:
            runner_policy.grant_for(child)  # every child has an entry
        assert runner_policy.grant_for(component).actions


# --- boto3 calls in the program's own code --------------------------------------------------

SCANNED = [PROJECT_DIR / "gp3migrate", PROJECT_DIR / "components"]
# The simulation drives moto as the world the program acts on; its calls are not the runner's.
NOT_SCANNED = PROJECT_DIR / "gp3migrate" / "sim"


def _literal(node: ast.Call) -> str | None:
    first = node.args[0] if node.args else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def client_services(sources) -> set[str]:
    """The services the code creates boto3 clients for (`....client("ec2", ...)`)."""
    return {
        _literal(node) or ""
        for source in sources
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client"
    } - {""}


def boto3_calls(source: str, services: set[str]) -> set[str]:
    """`<service>.<operation>` of every call in `source` of an operation of those services: direct
    calls, paginators, and waiters (by the operation they poll). A client is often created in one
    file and used in another (components/gate_providers.py -> gp3migrate/checks/preconditions.py), so any
    receiver counts."""
    session = botocore.session.get_session()
    operations = {s: {xform_name(op) for op in session.get_service_model(s).operation_names} for s in services}
    waiters: dict[str, dict[str, str]] = {}
    for service in services:
        try:
            model = session.get_waiter_model(service)
        except UnknownServiceError:  # a service without waiters (kms): botocore has no waiters-2 file for it
            waiters[service] = {}
            continue
        waiters[service] = {xform_name(w): xform_name(model.get_waiter(w).operation) for w in model.waiter_names}
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, literal = node.func.attr, _literal(node)
        for service in services:
            if name == "get_paginator" and literal in operations[service]:
                found.add(f"{service}.{literal}")
            elif name == "get_waiter" and literal in waiters[service]:
                found.add(f"{service}.{waiters[service][literal]}")
            elif name in operations[service]:
                found.add(f"{service}.{name}")
    return found


def program_sources() -> dict[Path, str]:
    files = sorted(p for root in SCANNED for p in root.rglob("*.py") if NOT_SCANNED not in p.parents)
    return {p: p.read_text() for p in files}


def test_the_scan_finds_calls_waiters_and_paginators():
    source = """
import boto3
ec2 = boto3.client("ec2", region_name="eu-west-1")
ec2.create_volume(Size=1)
ec2.get_paginator("describe_snapshots").paginate()
ec2.get_waiter("volume_available").wait(VolumeIds=["vol-1"])
core.delete_namespaced_persistent_volume_claim("a", "b")
describe_volumes(ec2, [])
"""
    services = client_services([source])
    assert services == {"ec2"}
    assert boto3_calls(source, services) == {"ec2.create_volume", "ec2.describe_snapshots", "ec2.describe_volumes"}


def test_every_boto3_call_in_the_program_has_an_entry():
    sources = program_sources()
    services = client_services(sources.values())
    calls = {
        (str(path.relative_to(PROJECT_DIR)), call)
        for path, text in sources.items()
        for call in boto3_calls(text, services)
    }
    assert calls, "the scan found no boto3 call at all: the scan is broken, not the program"
    tables = {**runner_policy.BOTO3_CALLS, **runner_policy.DRIVER_CHECK_CALLS, **runner_policy.DISCOVERY_CALLS}
    missing = sorted(f"{path}: {call}" for path, call in calls if call not in tables)
    assert missing == [], f"boto3 calls without an entry in gp3migrate/iam/runner_policy.py BOTO3_CALLS: {missing}"
    # And no entry for a call the program no longer makes.
    assert set(tables) <= {call for _, call in calls}


# --- discovery's own policy -------------------------------------------------------------------

# `gp3migrate discover` and what it runs: its boto3 calls are made with the credentials of whoever
# runs it, not the runner's.
DISCOVERY_MODULES = sorted((PROJECT_DIR / "gp3migrate" / "discovery").glob("*.py"))


def test_every_boto3_call_discovery_makes_has_a_right_in_the_discover_policy():
    sources = {path: path.read_text() for path in DISCOVERY_MODULES}
    services = client_services(sources.values())
    assert services == {"ec2", "eks"}, "discovery creates other clients now: scan them too"
    calls = {(path.name, call) for path, text in sources.items() for call in boto3_calls(text, services)}
    missing = sorted(f"{name}: {call}" for name, call in calls if call not in runner_policy.DISCOVERY_CALLS)
    assert missing == [], f"boto3 calls of discover without an entry in runner_policy.DISCOVERY_CALLS: {missing}"
    # And no entry for a call discovery no longer makes.
    assert set(runner_policy.DISCOVERY_CALLS) == {call for _, call in calls}


def test_the_discover_policy_is_read_only_and_the_same_for_every_stack():
    assert runner_policy.discover_policy() == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EksGp3MigrationDiscover",
                "Effect": "Allow",
                "Action": ["ec2:DescribeVolumes", "eks:DescribeAddon", "eks:DescribeCluster", "eks:ListAddons"],
                "Resource": "*",
            }
        ],
    }
    actions = policy_actions(runner_policy.discover_policy())
    assert all(re.fullmatch(r"(ec2|eks|iam):(Describe|List|Get)[A-Za-z]+", a) for a in actions), actions


# --- the command ------------------------------------------------------------------------------


def test_the_command_prints_the_policy_of_the_stack_file(capsys):
    assert cli.main(["iam-policy", "--stack", "dev", "--project-dir", str(STACKS_DIR)]) == 0
    first = capsys.readouterr().out
    assert json.loads(first) == policy_of(DEV)
    assert cli.main(["iam-policy", "--stack", "dev", "--project-dir", str(STACKS_DIR)]) == 0
    assert capsys.readouterr().out == first  # deterministic
    actions = json.loads(first)["Statement"][0]["Action"]
    assert actions == sorted(actions)


def test_for_discover_prints_discoverys_policy_without_a_stack(tmp_path, capsys):
    # No stack file at all: discover's rights do not depend on one.
    assert cli.main(["iam-policy", "--for", "discover", "--project-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == runner_policy.discover_policy()
    assert out == json.dumps(runner_policy.discover_policy(), indent=2, sort_keys=True) + "\n"


def test_for_runner_is_the_default(capsys):
    assert cli.main(["iam-policy", "--stack", "dev", "--project-dir", str(STACKS_DIR)]) == 0
    default = capsys.readouterr().out
    assert cli.main(["iam-policy", "--for", "runner", "--stack", "dev", "--project-dir", str(STACKS_DIR)]) == 0
    assert capsys.readouterr().out == default


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--for", "discoverr"], "error: --for: 'discoverr' is not one of runner, discover"),
        (["--for", "Discover", "--stack", "dev"], "error: --for: 'Discover' is not one of runner, discover"),
        (
            ["--for", "discover", "--stack", "dev"],
            "error: --stack: 'dev' is not used with --for discover (discover's rights are the same for every stack)",
        ),
        ([], "error: --stack: is required with --for runner (the stack whose Pulumi.<stack>.yaml decides the policy)"),
        (
            ["--for", "runner"],
            "error: --stack: is required with --for runner (the stack whose Pulumi.<stack>.yaml decides the policy)",
        ),
    ],
    ids=["misspelt", "wrong case", "stack with discover", "no stack", "no stack for runner"],
)
def test_bad_for_and_stack_combinations_are_one_line_each(argv, line, capsys):
    assert cli.main(["iam-policy", *argv, "--project-dir", str(STACKS_DIR)]) == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", [line])


@pytest.mark.parametrize(
    ("stack", "files", "lines"),
    [
        ("qa", {}, ["error: {dir}/Pulumi.qa.yaml: no such stack file (stacks here: none)"]),
        ("a/b", {}, ["error: --stack: 'a/b' is not a stack name (letters, digits, '-', '_' and '.')"]),
        ("qa", {"Pulumi.qa.yaml": "config: [\n"}, ["error: {dir}/Pulumi.qa.yaml: not valid YAML (line 2)"]),
        ("qa", {"Pulumi.qa.yaml": "encryptionsalt: x\n"}, ["error: {dir}/Pulumi.qa.yaml: has no `config:` map"]),
        (
            "qa",
            {
                "Pulumi.qa.yaml": (
                    "config:\n  eks-gp3-migration:clusterName: qa-eks\n  eks-gp3-migration:region: eu-west-1\n"
                    "  eks-gp3-migration:driverInstall: helmm\n  eks-gp3-migration:rehearsalVpcId: vpc-1\n"
                )
            },
            [
                "error: {dir}/Pulumi.qa.yaml: driverInstall: 'helmm' is not one of helm, addon, present",
                "error: {dir}/Pulumi.qa.yaml: rehearsalVpcId: is only used with rehearsal: true",
            ],
        ),
    ],
    ids=["unknown stack", "bad stack name", "bad YAML", "no config", "bad config"],
)
def test_errors_name_the_file_and_key_and_exit_2(stack, files, lines, tmp_path, capsys):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert cli.main(["iam-policy", "--stack", stack, "--project-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [line.format(dir=tmp_path) for line in lines]


@pytest.mark.parametrize(
    ("argv", "stderr"),
    [
        (["--stack", "qa"], "error: Pulumi.qa.yaml: no such stack file (stacks here: dev, prod, rehearsal)\n"),
        (["--for", "ci"], "error: --for: 'ci' is not one of runner, discover\n"),
    ],
)
def test_a_user_error_shows_no_traceback(argv, stderr):
    result = subprocess.run(
        [sys.executable, "-m", "gp3migrate", "iam-policy", *argv],
        cwd=STACKS_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == stderr


def test_the_readme_shows_the_dev_policy_as_the_command_prints_it():
    readme = (PROJECT_DIR / "README.md").read_text()
    block = re.search(r"<!-- iam-policy dev -->\n *```json\n(.*?)\n *```", readme, re.S)
    assert block, "README: the generated dev policy block is missing"
    assert json.loads(block.group(1)) == policy_of(DEV), (
        "README is out of date: paste the output of `python -m gp3migrate iam-policy --stack dev`"
    )


def test_the_present_driver_check_is_granted_only_where_it_calls_aws():
    """The check asks IAM, KMS and EKS only when keys are in use (prod lists one); a driver this
    stack installs gets no check, and the role's KMS policy is its own."""
    check = {"iam:SimulatePrincipalPolicy", "kms:DescribeKey", "eks:ListPodIdentityAssociations"}
    check.add("eks:DescribePodIdentityAssociation")
    assert check <= policy_actions(policy_of(PROD, "prod"))
    assert not check & policy_actions(policy_of(DEV))
    helm = {**PROD, f"{KEY}:driverInstall": "helm", f"{KEY}:driverChartVersion": "2.64.0"}
    # (Helm with pod-identity reads its own association: DescribePodIdentityAssociation stays.)
    assert not {"iam:SimulatePrincipalPolicy", "kms:DescribeKey", "eks:ListPodIdentityAssociations"} & policy_actions(
        policy_of(helm)
    )
    assert set(runner_policy.DRIVER_CHECK_CALLS) <= runner_policy.needed_by(settings_of(PROD))


# --- Tag keys the program writes are its own (issue 23 item 2) --------------------------------------


def test_every_tag_key_the_program_writes_is_reserved_from_extra_volume_tags():
    """What snapshot_tags and the rehome/modify steps write, and the tag the policy's conditions
    trust, may not be set (nor overwritten) by extraVolumeTags."""
    from gp3migrate.checks import preconditions
    from gp3migrate.planning import restore
    from gp3migrate.planning.plan import plan_all

    settings = settings_of({k: v for k, v in DEV.items() if k != f"{KEY}:extraVolumeTags"})
    written = set(restore.snapshot_tags(plan_all(settings)[0], settings, "dev", purpose="final"))
    written |= set(preconditions.DRIVER_VOLUME_TAGS) | {runner_policy.MIGRATION_TAG, runner_policy.IN_TREE_VOLUME_TAG}
    assert written
    for key in sorted(written):
        config = {**DEV, f"{KEY}:extraVolumeTags": {key: "x"}}
        with pytest.raises(ConfigError) as refused:
            settings_of(config)
        assert any(p.startswith(f"extraVolumeTags.{key}: is reserved") for p in refused.value.problems), key


@pytest.mark.parametrize(
    "key", ["CSIVolumeName", "csivolumesnapshotname", "ebs.csi.aws.com/cluster-name", "Eks-Gp3-Migration/purpose"]
)
def test_the_drivers_reserved_keys_and_case_variants_are_refused_naming_the_key(key):
    with pytest.raises(ConfigError) as refused:
        settings_of({**DEV, f"{KEY}:extraVolumeTags": {key: "x", "team": "storage"}})
    assert [p.split(":")[0] for p in refused.value.problems] == [f"extraVolumeTags.{key}"]


def test_other_extra_tags_are_kept():
    settings = settings_of({**DEV, f"{KEY}:extraVolumeTags": {"team": "storage", "kubernetes-team": "a"}})
    assert dict(settings.driver.extra_volume_tags) == {"team": "storage", "kubernetes-team": "a"}


# --- Validation patterns match the whole value (issue 23, smaller items) ----------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("clusterName", "dev-eks\n"),
        ("region", "eu-central-1\n"),
        ("gp3ClassName", "gp3\n"),
        ("kmsKeyArns", ["arn:aws:kms:eu-central-1:123456789012:key/abc\n"]),
        ("kubeconfigRoleArn", "arn:aws:iam::123456789012:role/runner\n"),
    ],
)
def test_a_trailing_newline_is_refused(key, value):
    """`$` matches before a final newline, so `re.match` with `...$` let `value\\n` through."""
    with pytest.raises(ConfigError) as refused:
        settings_of({**DEV, f"{KEY}:{key}": value})
    assert any(p.startswith(key) for p in refused.value.problems), refused.value.problems


def test_a_migration_volume_id_or_key_with_a_trailing_newline_is_refused():
    from gp3migrate import naming

    assert naming.volume_id_problem("vol-0123456789abcdef0\n")
    assert naming.zone_problem("eu-central-1a\n", "eu-central-1")
    assert naming.dns1123_label_problem("default\n")
    assert naming.volume_id_problem("vol-0123456789abcdef0") is None
