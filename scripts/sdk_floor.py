"""The SDK floor: what evaluating the stack program would cost if it had no logic of its own.

`capture` evaluates the real program (__main__.py) once under Pulumi's mocks and keeps every call
the SDK makes to the resource monitor, in the order the monitor saw them: each RegisterResource
(type, name, parent, inputs with their secrets and per-property dependencies, options, providers),
RegisterResourceOutputs, Invoke and ReadResource, and the stack's exports. `replay` is the floor
program: it makes the same calls through the same public SDK classes (CustomResource,
ComponentResource, ProviderResource, StackReference, invoke_output, export), reading everything
from the trace and computing nothing. `same_calls` checks that it did: the monitor requests of a
replay equal the program's, field by field (only source positions and callback addresses differ).

Both run in `evaluate`, the harness of tests/mock_cloud.py's `run_program` (same mocks, same
recording monitor, a fresh event loop and root stack), so a timing of one against the other
differs only by what the program does besides registering. What the floor leaves out on purpose:
config validation, planning, the typed provider-SDK classes' argument handling, pickling the
dynamic providers (the trace holds the pickles), and blocking on the previous outputs.

This module imports no gp3migrate module: it reads the program's trace, not its code.
"""

import asyncio
import gc
import json
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format

from tests.mock_cloud import (
    MAIN,
    FakeCloud,
    RecordingMonitor,
    Run,
    evaluate_under_mocks,
    stack_name,
)

TRACE_FORMAT = 1
# The SDK's markers in serialized values (sdk/python/lib/pulumi/runtime/rpc.py).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
# Fields that say where in the source a call came from, or where the SDK's callback server
# listens: they differ between any two programs and are left out of the comparison.
NOT_COMPARED = ("sourcePosition", "stackTrace")


class TapMonitor(RecordingMonitor):
    """The recording monitor that also keeps each request as sent (and the URN it was given)."""

    def __init__(self, cloud: FakeCloud, run: Run, calls: list[dict[str, Any]]):
        super().__init__(cloud, run)
        self.calls = calls

    def _keep(self, call: str, request: Any, urn: str = "") -> None:
        self.calls.append({"call": call, "urn": urn, "request": json_format.MessageToDict(request)})

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._keep("register", request, response.urn)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        self._keep("outputs", request, request.urn)
        return super().RegisterResourceOutputs(request)

    def ReadResource(self, request: Any) -> Any:  # noqa: N802
        response = super().ReadResource(request)
        self._keep("read", request, response.urn)
        return response

    def Invoke(self, request: Any) -> Any:  # noqa: N802
        self._keep("invoke", request)
        return super().Invoke(request)


def evaluate(
    body: Callable[[], object],
    config: dict[str, Any],
    *,
    previous_outputs: dict[str, Any],
    stack: str = "dev",
    calls: list[dict[str, Any]] | None = None,
) -> Run:
    """`body` evaluated once as the stack program, through tests/mock_cloud.py's harness (the one
    `run_program` uses); with `calls`, every monitor request is kept there too."""
    region = str(config.get("region") or "eu-central-1")
    return evaluate_under_mocks(
        body,
        config,
        cloud=FakeCloud(region, {stack_name(stack): previous_outputs}),
        stack=stack,
        preview=False,
        monitor_for=None if calls is None else (lambda cloud, run: TapMonitor(cloud, run, calls)),
    )


def the_program() -> None:
    runpy.run_path(str(MAIN), run_name="__main__")


def capture(config: dict[str, Any], previous_outputs: dict[str, Any]) -> dict[str, Any]:
    """The program's calls to the monitor and its exports, as JSON for `replay`."""
    calls: list[dict[str, Any]] = []
    run = evaluate(the_program, config, previous_outputs=previous_outputs, calls=calls)
    if run.error is not None:
        raise run.error
    return {
        "format": TRACE_FORMAT,
        # The provider SDKs' modules the program loaded: a program making these registrations
        # imports them too, so the floor's start-up does.
        "sdk_modules": sorted(m for m in sys.modules if m.startswith(("pulumi_aws", "pulumi_kubernetes"))),
        "calls": calls,
        "exports": run.outputs,
        "registrations": len(run.registrations),
        # The collector as the program left it: `replay(trace, tune_gc=True)` sets the same.
        "gc": {"threshold": list(gc.get_threshold()), "freeze": gc.get_freeze_count() > 0},
    }


def _known(value: Any, resources: set[pulumi.Resource], secret: bool = False) -> pulumi.Output[Any]:
    """An Output already resolved to `value` that carries `resources` as its dependencies."""
    loop = asyncio.get_event_loop()

    def done(result: Any) -> asyncio.Future[Any]:
        future = loop.create_future()
        future.set_result(result)
        return future

    return pulumi.Output(resources, done(value), done(True), done(secret))


def _value(wire: Any) -> Any:
    """A value as the program passed it, from its wire form: secrets become secret Outputs."""
    if isinstance(wire, dict):
        if SIG_KEY in wire:
            if wire[SIG_KEY] != SECRET_SIG:
                raise NotImplementedError(f"the floor does not replay wire values of kind {wire[SIG_KEY]}")
            return _known(_value(wire.get("value")), set(), secret=True)
        return {k: _value(v) for k, v in wire.items()}
    if isinstance(wire, list):
        return [_value(v) for v in wire]
    return wire


def _alias(wire: dict[str, Any]) -> pulumi.Alias | str:
    """An alias as the program (or the provider SDK's class) gave it, from its wire spec."""
    if "urn" in wire:
        return str(wire["urn"])
    spec = wire["spec"]
    if spec.get("noParent") or spec.get("parentUrn"):
        raise NotImplementedError(f"the floor does not replay aliases with a parent: {spec}")
    given = {"name": "name", "type_": "type", "stack": "stack", "project": "project"}
    return pulumi.Alias(**{arg: spec[field] for arg, field in given.items() if field in spec})


def _noop_transform(_args: pulumi.ResourceTransformArgs) -> None:
    return None


class _Replay:
    """Makes each kept call again; `objects` maps the URNs the monitor gave to what it made."""

    def __init__(self) -> None:
        self.objects: dict[str, pulumi.Resource] = {}

    def _parent(self, urn: str) -> pulumi.Resource | None:
        """The resource of a parent URN; None for the root stack (the SDK's default parent)."""
        if not urn or (urn not in self.objects and "::pulumi:pulumi:Stack::" in urn):
            return None
        return self.objects[urn]

    def _provider(self, ref: str) -> pulumi.ProviderResource:
        # A provider reference is "<urn>::<id>".
        provider = self.objects[ref.rsplit("::", 1)[0]]
        assert isinstance(provider, pulumi.ProviderResource)
        return provider

    def register(self, urn: str, req: dict[str, Any]) -> None:
        unknown = sorted(set(req) - REPLAYED_FIELDS)
        if unknown or any(req.get("hooks", {}).values()):
            raise NotImplementedError(f"{urn}: the floor does not replay {unknown or ['hooks']}")
        type_, name = req["type"], req["name"]
        property_deps = {key: value.get("urns", []) for key, value in req.get("propertyDependencies", {}).items()}
        inputs: dict[str, Any] = {}
        for key, wire in (req.get("object") or {}).items():
            deps = {self.objects[u] for u in property_deps.get(key, [])}
            inputs[key] = _known(_value(wire), deps) if deps else _value(wire)
        # The request's dependencies are the explicit ones and those of every property.
        via_inputs = {u for urns in property_deps.values() for u in urns}
        explicit = [self.objects[u] for u in req.get("dependencies", []) if u not in via_inputs]
        timeouts = req.get("customTimeouts")
        provider = self._provider(req["provider"]) if "provider" in req else None
        providers = {pkg: self._provider(ref) for pkg, ref in req.get("providers", {}).items()}
        if provider is not None:  # given both ways, the SDK warns (pulumi/pulumi issue 8799)
            providers.pop(provider.package, None)
        opts = pulumi.ResourceOptions(
            parent=self._parent(req.get("parent", "")),
            depends_on=explicit or None,
            provider=provider,
            providers=providers or None,
            aliases=[_alias(a) for a in req["aliases"]] if "aliases" in req else None,
            protect=req.get("protect"),
            retain_on_delete=req.get("retainOnDelete"),
            delete_before_replace=bool(req.get("deleteBeforeReplace")) if "deleteBeforeReplaceDefined" in req else None,
            ignore_changes=req.get("ignoreChanges"),
            replace_on_changes=req.get("replaceOnChanges"),
            additional_secret_outputs=req.get("additionalSecretOutputs"),
            custom_timeouts=pulumi.CustomTimeouts(**timeouts) if timeouts else None,
            import_=req.get("importId"),
            version=req.get("version"),
            plugin_download_url=req.get("pluginDownloadURL"),
            transforms=[_noop_transform for _ in req["transforms"]] if "transforms" in req else None,
        )
        resource: pulumi.Resource
        if type_.startswith("pulumi:providers:"):
            resource = pulumi.ProviderResource(type_.removeprefix("pulumi:providers:"), name, inputs, opts)
        elif req.get("custom"):
            resource = pulumi.CustomResource(type_, name, inputs, opts)
        else:
            resource = pulumi.ComponentResource(type_, name, inputs, opts, remote=bool(req.get("remote")))
        self.objects[urn] = resource

    def outputs(self, urn: str, req: dict[str, Any]) -> None:
        resource = self._parent(urn)
        if isinstance(resource, pulumi.ComponentResource):  # the root stack's are the exports, made last
            resource.register_outputs(_value(req.get("outputs") or {}))

    def read(self, urn: str, req: dict[str, Any]) -> None:
        if req["type"] != "pulumi:pulumi:StackReference":
            raise NotImplementedError(f"{urn}: the floor replays reads of stack references only")
        self.objects[urn] = pulumi.StackReference(req["name"], stack_name=req["id"])

    def invoke(self, req: dict[str, Any]) -> None:
        opts = pulumi.InvokeOutputOptions(
            provider=self._provider(req["provider"]) if "provider" in req else None,
            version=req.get("version"),
            plugin_download_url=req.get("pluginDownloadURL"),
        )
        pulumi.runtime.invoke_output(req["tok"], _value(req.get("args") or {}), opts)


# The RegisterResource fields `register` makes again; the SDK sets the accept*/supports* flags.
REPLAYED_FIELDS = {
    "type", "name", "parent", "custom", "remote", "object", "dependencies", "propertyDependencies",
    "provider", "providers", "protect", "retainOnDelete", "deleteBeforeReplace", "deleteBeforeReplaceDefined",
    "ignoreChanges", "replaceOnChanges", "additionalSecretOutputs", "customTimeouts", "importId", "version",
    "pluginDownloadURL", "transforms", "aliases", "acceptSecrets", "acceptResources", "supportsPartialValues",
    "supportsResultReporting", "hooks", *NOT_COMPARED,
}  # fmt: skip


def replay(trace: dict[str, Any], *, tune_gc: bool = False) -> None:
    """The floor program: the trace's calls made again, then its exports. With `tune_gc`, the
    collector is first set as the program set it (when captured with its tuning on)."""
    if trace.get("format") != TRACE_FORMAT:
        raise ValueError(f"trace format {trace.get('format')}, expected {TRACE_FORMAT}: capture it again")
    if tune_gc:
        if trace["gc"]["freeze"]:
            gc.freeze()
        gc.set_threshold(*trace["gc"]["threshold"])
    made = _Replay()
    for call in trace["calls"]:
        kind, urn, req = call["call"], call["urn"], call["request"]
        if kind == "register":
            made.register(urn, req)
        elif kind == "outputs":
            made.outputs(urn, req)
        elif kind == "read":
            made.read(urn, req)
        else:
            made.invoke(req)
    for key, value in trace["exports"].items():
        pulumi.export(key, value)


def _comparable(call: dict[str, Any]) -> str:
    request = {k: v for k, v in call["request"].items() if k not in NOT_COMPARED}
    if "dependencies" in request:
        request["dependencies"] = sorted(request["dependencies"])
    for value in request.get("propertyDependencies", {}).values():
        value["urns"] = sorted(value.get("urns", []))
    if "transforms" in request:  # callbacks: how many, not where the server listens
        request["transforms"] = len(request["transforms"])
    return json.dumps({**call, "request": request}, sort_keys=True)


def same_calls(trace: dict[str, Any], config: dict[str, Any], previous_outputs: dict[str, Any]) -> list[str]:
    """What the floor's replay of `trace` sent otherwise than the program did (empty: the same)."""
    calls: list[dict[str, Any]] = []
    run = evaluate(lambda: replay(trace), config, previous_outputs=previous_outputs, calls=calls)
    if run.error is not None:
        raise run.error
    program = sorted(_comparable(c) for c in trace["calls"])
    floor = sorted(_comparable(c) for c in calls)
    problems = [f"program only: {c}" for c in program if c not in floor]
    problems += [f"floor only: {c}" for c in floor if c not in program]
    if len(program) != len(floor):
        problems.append(f"{len(program)} calls by the program, {len(floor)} by the floor")
    if run.outputs != trace["exports"]:
        problems.append("the exports differ")
    return problems


def write_trace(trace: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(trace))


def read_trace(path: Path) -> dict[str, Any]:
    trace: dict[str, Any] = json.loads(path.read_text())
    return trace
