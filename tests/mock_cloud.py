"""Runs the real stack program under Pulumi mocks and records every registration with its options.

The recording monitor keeps each RegisterResource request as it reaches the engine: type, name,
parent, inputs (wire names, numbers as floats), dependencies, and the options that matter for data
safety (protect, retainOnDelete, deleteBeforeReplace, customTimeouts, importId, ignoreChanges).
What this does not prove: how the real providers, the engine's diff, or AWS and Kubernetes act on
these requests; those are for the opt-in live tests.
"""

import asyncio
import copy
import hashlib
import json
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import wait_for_rpcs

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The stack files tests read: fixtures, not the user's working-tree stack files.
STACKS_DIR = PROJECT_DIR / "tests" / "fixtures" / "stacks"
MAIN = PROJECT_DIR / "__main__.py"
PROJECT = "eks-gp3-migration"
ACCOUNT = "123456789012"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    custom_timeouts: dict[str, str]
    import_id: str
    ignore_changes: list[str]
    provider: str
    custom: bool


@dataclass
class Invocation:
    token: str
    args: dict[str, Any]


@dataclass
class Run:
    registrations: list[Registration] = field(default_factory=list)
    # Reads of existing state (StackReference): not registrations of anything to create.
    reads: list[tuple[str, str]] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def named(self, name: str) -> Registration:
        found = [r for r in self.registrations if r.name == name]
        assert len(found) == 1, f"expected one registration named {name!r}, found {len(found)}: " + ", ".join(
            sorted(r.name for r in self.registrations)
        )
        return found[0]

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def has(self, name: str) -> bool:
        return any(r.name == name for r in self.registrations)

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def names(self) -> list[str]:
        return [r.name for r in self.registrations]

    def depends_on(self, later: str, earlier: str) -> bool:
        """True when `later` waits for `earlier`, directly or through its parents' dependencies."""
        target = self.named(earlier).urn
        seen: set[str] = set()
        frontier = [self.named(later).urn]
        while frontier:
            urn = frontier.pop()
            if urn in seen:
                continue
            seen.add(urn)
            reg = next((r for r in self.registrations if r.urn == urn), None)
            if reg is None:
                continue
            deps = set(reg.dependencies)
            for values in reg.property_dependencies.values():
                deps.update(values)
            if target in deps:
                return True
            # A dependency on a component is a dependency on all of its children.
            frontier.extend(deps)
            frontier.extend(r.urn for r in self.registrations if r.parent in deps)
        return False


def _cluster(name: str, region: str) -> dict[str, Any]:
    return {
        "name": name,
        "arn": f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}",
        "endpoint": f"https://{hashlib.sha256(name.encode()).hexdigest()[:32].upper()}.gr7.{region}.eks.amazonaws.com",
        "certificateAuthorities": [{"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}],
        "identities": [
            {
                "oidcs": [
                    {
                        "issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{hashlib.md5(name.encode()).hexdigest().upper()}"
                    }
                ]
            }
        ],
        "version": "1.31",
    }


class FakeCloud(pulumi.runtime.Mocks):
    """Answers invokes and gives each resource realistic outputs (ARNs, ids), deterministically."""

    def __init__(self, region: str, stack_outputs: dict[str, dict[str, Any]] | None = None):
        self.region = region
        # Outputs of other stacks (and of this one's last `up`), by fully qualified stack name.
        self.stack_outputs = stack_outputs or {}
        self.inputs_seen: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        # The monitor's own deserialization of the inputs, kept for the recording (keyed, as the
        # SDK registers resources from several threads).
        self.inputs_seen[(args.typ, args.name)] = dict(args.inputs)
        state = dict(args.inputs)
        digest = hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()
        resource_id = f"{args.name}-id"
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs["name"]
            return name, {"name": name, "outputs": self.stack_outputs.get(name, {}), "secretOutputNames": []}
        if args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.inputs.get('name', args.name)}"
            resource_id = args.inputs.get("name", args.name)
        elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{args.inputs['url'].removeprefix('https://')}"
        elif args.typ == "eks:index:Cluster":
            # The one output the program reads from the pulumi-eks component.
            state["kubeconfigJson"] = json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": args.inputs["name"], "cluster": {"server": f"https://{args.inputs['name']}.example"}}
                    ],
                }
            )
        elif args.typ == "aws:ebs/snapshot:Snapshot":
            resource_id = f"snap-{digest[:17]}"
            state["arn"] = f"arn:aws:ec2:{self.region}::snapshot/{resource_id}"
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == "aws:eks/getCluster:getCluster":
            return _cluster(args.args["name"], self.region)
        if args.token == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            url = args.args["url"]
            return {"arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{url.removeprefix('https://')}", "url": url}
        if args.token == "aws:iam/getPolicy:getPolicy":
            name = args.args["name"]
            return {"arn": f"arn:aws:iam::aws:policy/{name}", "name": name}
        raise AssertionError(f"unexpected invoke {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, cloud: FakeCloud, run: Run):
        super().__init__(cloud)
        self.cloud = cloud
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            timeouts = request.customTimeouts
            self.run.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=self.cloud.inputs_seen[(request.type, request.name)],
                    dependencies=list(request.dependencies),
                    property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    custom_timeouts={
                        k: getattr(timeouts, k) for k in ("create", "update", "delete") if getattr(timeouts, k)
                    },
                    import_id=request.importId,
                    ignore_changes=list(request.ignoreChanges),
                    provider=request.provider,
                    custom=bool(request.custom),
                )
            )
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802
        self.run.reads.append((request.type, request.name))
        return super().ReadResource(request)

    def Invoke(self, request: Any) -> Any:  # noqa: N802
        self.run.invocations.append(Invocation(request.tok, rpc.deserialize_properties(request.args)))
        return super().Invoke(request)


def stack_config(stack: str) -> dict[str, Any]:
    """A stack file's config as the Pulumi runtime hands it over: scalars as strings, structured
    values as JSON."""
    data = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())
    return dict(data.get("config") or {})


def copy_stack_config(stack: str) -> dict[str, Any]:
    """A stack file's config with every migration moved by `strategy: copy` (the snapshot
    restore), for tests that pin that strategy's objects and phases."""
    config = stack_config(stack)
    for key, value in config.items():
        if key.endswith(":migrations"):
            config[key] = [{**entry, "strategy": "copy"} for entry in value]
    return config


def as_runtime_config(config: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, bool):
            out[full] = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            out[full] = json.dumps(value)
        else:
            out[full] = str(value)
    return out


ORGANIZATION = "acme"


def stack_name(stack: str) -> str:
    return f"{ORGANIZATION}/{PROJECT}/{stack}"


def run_program(
    config: dict[str, Any],
    *,
    stack: str = "dev",
    preview: bool = False,
    previous_outputs: dict[str, Any] | None = None,
    other_stacks: dict[str, dict[str, Any]] | None = None,
) -> Run:
    """Run __main__.py once under fresh mocks, a fresh event loop and a fresh root stack.

    `previous_outputs` are this stack's outputs from its last `up` (read through its own
    StackReference); `other_stacks` maps other fully qualified stack names to their outputs.
    """
    region = str(config.get("region") or config.get(f"{PROJECT}:region") or "eu-central-1")
    outputs = dict(other_stacks or {})
    outputs[stack_name(stack)] = previous_outputs or {}
    return evaluate_under_mocks(
        lambda: runpy.run_path(str(MAIN), run_name="__main__"),
        config,
        cloud=FakeCloud(region, outputs),
        stack=stack,
        preview=preview,
    )


def evaluate_under_mocks(
    body: Callable[[], object],
    config: dict[str, Any],
    *,
    cloud: FakeCloud,
    stack: str,
    preview: bool,
    monitor_for: Callable[[FakeCloud, Run], RecordingMonitor] | None = None,
) -> Run:
    """`body` evaluated once as the stack program under fresh mocks, a fresh event loop and a fresh
    root stack; the stack's exports resolved into `Run.outputs`. scripts/sdk_floor.py times its
    replay through this same harness, so floor and program differ only in `body`."""
    run = Run()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ROOT.set(None)
    monitor = (monitor_for or RecordingMonitor)(cloud, run)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, organization=ORGANIZATION
    )
    set_all_config(as_runtime_config(config))
    try:
        body()
    except Exception as err:
        run.error = err
    loop.run_until_complete(wait_for_rpcs())
    root = ROOT.get()
    outputs = getattr(root, "outputs", {}) or {}
    if outputs:
        keys = sorted(outputs)
        values = loop.run_until_complete(pulumi.Output.all(*[outputs[k] for k in keys]).future())
        run.outputs = dict(zip(keys, values or [], strict=True))
    loop.close()
    return run


def with_phase(config: dict[str, Any], phase: str, **entry_changes: Any) -> dict[str, Any]:
    """The config with every migration entry set to `phase` (and the given entry keys)."""
    changed = copy.deepcopy(config)
    key = next(k for k in changed if k.endswith("migrations"))
    for entry in changed[key]:
        entry["phase"] = phase
        entry.update(entry_changes)
    return changed


def advance(config: dict[str, Any], phases: list[str], *, stack: str = "dev", **entry_changes: Any) -> list[Run]:
    """Apply the phases one `up` after another, each run reading the previous run's outputs."""
    runs: list[Run] = []
    previous: dict[str, Any] = {}
    for phase in phases:
        run = run_program(with_phase(config, phase, **entry_changes), stack=stack, previous_outputs=previous)
        assert run.error is None, f"{phase}: {run.error}"
        runs.append(run)
        previous = run.outputs
    return runs
