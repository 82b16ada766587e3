"""Runs the real stack program (`__main__.py`) with the engine model behind the resource monitor.

The Python SDK talks to the engine through a resource monitor; under `pulumi.runtime.set_mocks` that
is a `MockMonitor`. Here a subclass hands every RegisterResource to the engine model
(gp3migrate/sim/engine.py), which plans the step and carries it out against the simulated world
before answering, as the real engine does: its RegisterResource answers once the resource's step has
completed (pulumi `pkg/resource/deploy/source_eval.go`, `resmon.RegisterResource` waits on the step's
done channel), so outputs such as a snapshot's id reach the program as real values.

The SDK runs its RPCs in a thread pool; here they run on the event loop's thread, one at a time, in
an order drawn from a seeded generator among every RPC whose dependencies have been answered — any
of the orders the real engine's parallel steps could complete in, and the same one for the same
seed (docs/testing.md, "How free the order is").
"""

import asyncio
import contextvars
import hashlib
import logging
import os
import random
import runpy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc
from pulumi.runtime._callbacks import _CallbackServicer
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.settings import ROOT, SETTINGS, configure
from pulumi.runtime.stack import Stack, wait_for_rpcs

from gp3migrate.sim import clock

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
PROJECT = "eks-gp3-migration"
ORGANIZATION = "organization"
ACCOUNT = "123456789012"


@dataclass
class Registration:
    """One RegisterResource request as the engine receives it (wire names, numbers as floats)."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    # None: the resource says nothing, and the provider's diff decides (step_generator.go).
    delete_before_replace: bool | None
    replace_on_changes: list[str]
    ignore_changes: list[str]
    custom_timeouts: dict[str, str]
    import_id: str
    provider: str


class Engine(Protocol):
    """What the monitor hands registrations to (gp3migrate/sim/engine.py `Deployment`)."""

    def register(self, registration: Registration) -> tuple[str, dict[str, Any]]: ...

    def register_outputs(self, urn: str, outputs: dict[str, Any]) -> None: ...

    def stack_outputs(self, stack: str) -> dict[str, Any]: ...

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]: ...


def _wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return rpc.UNKNOWN  # an unknown value of a preview


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    """Plain values to the wire without `_sync_await`: pumping the loop from inside an inline RPC
    would run other registrations re-entrantly."""
    out = struct_pb2.Struct()
    out.update(_wire(values))
    return out


def _plain(value: Any) -> Any:
    """Secrets unwrapped: providers receive their plain values (the dynamic-provider host does)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def _urn(stack: str, parent: str, type_: str, name: str) -> str:
    """The engine's URN: the parent's whole qualified type (every ancestor's type but the root
    stack's) before this type (pulumi `pkg/resource/deploy/deployment.go` generateURN,
    `sdk/go/common/resource/urn/urn.go` New)."""
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            type_ = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{PROJECT}::{type_}::{name}"


class DuplicateURN(Exception):  # noqa: N818 - as the engine's diagnostic names it
    """A second resource with a URN already registered in this deployment."""


class _NoMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        raise AssertionError("the simulation monitor answers registrations itself")

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        raise AssertionError("the simulation monitor answers invokes itself")


class _CallbacksWithoutServer(_CallbackServicer):
    """The SDK's callbacks servicer (transforms, hooks) without its gRPC server. The SDK starts a
    grpc.aio server on first use (pulumi `runtime/settings.py` _get_callbacks), for the engine to
    call a transform back; the engine model never calls back (it reads no `transforms` of a
    request), so the server would only cost a start and a stop per run, and it cannot run at all
    in a forked copy of the process (gp3migrate/sim/rerun_check.py: grpc's fork support covers
    no aio server, `fork_posix.cc`). Registering a transform still gives the request its
    `callback_pb2.Callback` (token and target), as the SDK sends it."""

    def __init__(self, monitor: Any, loop: asyncio.AbstractEventLoop):
        self._callbacks = {}
        self._transforms = {}
        self._state_migrations = {}
        self._monitor = monitor
        self._loop = loop
        self._target = "127.0.0.1:0"

    async def serve(self) -> None:
        return None


def _no_stack_trace() -> source_pb2.StackTrace:
    """Stands for the SDK's `_get_stack_trace` while the simulation runs the program. The SDK walks
    the whole call stack of every resource it registers (`traceback.extract_stack`, a stat and a
    line read per frame) to send the engine a source position (pulumi `runtime/resource.py`
    register_resource); the engine keeps it for diagnostics only, and the engine model reads
    neither `sourcePosition` nor `stackTrace` of a request. It was 7% of a fleet rehearsal's CPU
    (docs/benchmark.md). Empty, as the SDK's own answer when it finds no user frame."""
    return source_pb2.StackTrace()


class SimMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, engine: Engine, stack: str):
        super().__init__(_NoMocks())
        self.engine = engine
        self.stack = stack
        self.stack_urn = _urn(stack, "", ROOT_STACK_TYPE, f"{PROJECT}-{stack}")
        self.urns: set[str] = set()

    def _new_urn(self, parent: str, type_: str, name: str) -> str:
        """step_generator.go generateURN: a URN seen before in this deployment fails it (a bail,
        diag.GetDuplicateResourceURNError) instead of standing for the earlier resource."""
        urn = _urn(self.stack, parent, type_, name)
        if urn in self.urns:
            raise DuplicateURN(f"Duplicate resource URN '{urn}'; try giving it a unique name")
        self.urns.add(urn)
        return urn

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        urn = self._new_urn(request.parent, request.type, request.name)
        if request.type == ROOT_STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        timeouts = request.customTimeouts
        registration = Registration(
            type=request.type,
            name=request.name,
            urn=urn,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=_plain(rpc.deserialize_properties(request.object)),
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace) if request.deleteBeforeReplaceDefined else None,
            replace_on_changes=list(request.replaceOnChanges),
            ignore_changes=list(request.ignoreChanges),
            custom_timeouts={k: getattr(timeouts, k) for k in ("create", "update", "delete") if getattr(timeouts, k)},
            import_id=request.importId,
            provider=request.provider,
        )
        resource_id, outputs = self.engine.register(registration)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=_struct(outputs))

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        if request.urn == self.stack_urn:
            self.engine.register_outputs(request.urn, rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)

    def ReadResource(self, request: Any) -> Any:  # noqa: N802
        urn = self._new_urn(request.parent, request.type, request.name)
        if request.type != "pulumi:pulumi:StackReference":
            raise AssertionError(f"the simulation reads only stack references, not {request.type}")
        name = rpc.deserialize_properties(request.properties)["name"]
        state = {"name": name, "outputs": self.engine.stack_outputs(name), "secretOutputNames": []}
        return resource_pb2.ReadResourceResponse(urn=urn, properties=_struct(state))

    def Invoke(self, request: Any) -> Any:  # noqa: N802
        result = self.engine.invoke(request.tok, rpc.deserialize_properties(request.args))
        return resource_pb2.ResourceInvokeResponse(failures=None, **{"return": _struct(result)})


# Enough for the SDK's chain of awaits between one RPC's answer and the next request; a bound, so a
# callback that reschedules itself for ever cannot starve the RPCs.
_MAX_DEFERRALS = 10_000

# Steps overlap in time: one that waits (an await, a gate's poll) lets other ready steps run
# (issue 21 item 5). False: a step runs whole once picked, and its waits tick the world in place
# (the simulation before; kept to show what overlap finds).
OVERLAP = True


class _Flight:
    """One RPC in flight in its own thread. Only one thread runs at a time: the loop hands the
    baton to a flight (`go`) and waits until it yields at a wait or finishes (`back`), so a run is
    as deterministic as the seed's picks."""

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future[Any]):
        self.future = future
        self.go = threading.Event()
        self.back = threading.Event()
        self.world: Any = None
        self.wake_at: int | None = None  # the world's tick it may go on at; None: not waiting
        self.ready: Callable[[], bool] | None = None  # or what it waits for (a provider worker)
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=self._main, args=(context, func, args), daemon=True)

    def _main(self, context: contextvars.Context, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.go.wait()
        self.go.clear()
        clock.set_yield(self._wait, self._wait_until)
        try:
            self.result = context.run(func, *args)
        except BaseException as err:
            self.error = err
        self.done = True
        self.back.set()

    def _wait(self, world: Any, ticks: int) -> None:
        self.world = world
        self.wake_at = world.ticks + ticks
        self.back.set()
        self.go.wait()
        self.go.clear()
        self.wake_at = None

    def _wait_until(self, world: Any, ready: Callable[[], bool]) -> None:
        self.world, self.ready = world, ready
        self.back.set()
        self.go.wait()
        self.go.clear()
        self.ready = None

    def runnable(self) -> bool:
        if self.ready is not None:
            return self.ready()
        return self.wake_at is not None and self.world.ticks >= self.wake_at

    def run(self) -> None:
        """Hand it the baton until it waits again or finishes."""
        self.back.clear()
        if not self.thread.is_alive() and not self.done:
            self.thread.start()
        self.go.set()
        self.back.wait()


class _SchedulingLoop(asyncio.SelectorEventLoop):
    """Runs the SDK's "executor" RPCs on this thread, one at a time, in an order drawn from a seeded
    random generator among all those the SDK can send: each waits in the SDK until what it depends
    on has been answered (`prepare_resource`), and a pick waits until the loop has nothing else to
    run.

    The real engine runs the steps of independent resources in parallel, so which of two ready
    registrations completes first varies from run to run; here each seed gives one such order, and
    the same seed always the same one. With OVERLAP, a step that waits is set aside until its ticks
    have passed and the pick is among the new RPCs and the waiting steps that may go on; the world
    ticks only when every step in flight waits and no RPC is ready (a discrete-event clock), so
    steps started together wait together, as the engine's parallel steps do.
    """

    def __init__(self, rng: random.Random):
        super().__init__()
        self.rng = rng
        self.queue: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self.flights: list[_Flight] = []
        self._dispatching = False
        self._deferred = 0

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        future = self.create_future()
        self.queue.append((func, args, future))
        if not self._dispatching:
            self._dispatching = True
            # Behind everything already ready: tasks that are about to ask for RPCs get to first.
            self.call_soon(self._dispatch)
        return future

    def _dispatch(self) -> None:
        if not self.queue and not self.flights:
            self._dispatching = False
            return
        if self._ready and self._deferred < _MAX_DEFERRALS:  # type: ignore[attr-defined]
            # Other callbacks can still run: tasks whose dependencies the last RPC resolved are on
            # their way to ask for theirs. Picking now would let a registration that became ready
            # earlier always complete before one that became ready later (a step's depth fixing
            # its order); once the loop is idle, every registration whose dependencies are met is
            # in the queue, and the pick is among all of them, as the real engine may complete
            # any of its parallel steps first (pulumi `pkg/resource/deploy/step_executor.go`).
            self._deferred += 1
            self.call_soon(self._dispatch)
            return
        self._deferred = 0
        waking = [f for f in self.flights if f.runnable()]
        if not self.queue and not waking:
            # Every step in flight waits and nothing else can start: time passes for all of them.
            self.flights[0].world.tick()
            self.call_soon(self._dispatch)
            return
        # New RPCs first in the draw: without waiting steps it is the draw of the loop before.
        pick = self.rng.randrange(len(self.queue) + len(waking))
        if pick < len(self.queue):
            func, args, future = self.queue.pop(pick)
            if not OVERLAP:
                self._run_inline(func, args, future)
                self.call_soon(self._dispatch)
                return
            flight = _Flight(func, args, future)
            self.flights.append(flight)
        else:
            flight = waking[pick - len(self.queue)]
        flight.run()
        if flight.done:
            self.flights.remove(flight)
            self._settle(flight.future, flight.result, flight.error)
        self.call_soon(self._dispatch)

    def _run_inline(self, func: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future[Any]) -> None:
        try:
            result = func(*args)
        except BaseException as err:
            self._settle(future, None, err)
        else:
            self._settle(future, result, None)

    @staticmethod
    def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def finish_flights(self) -> None:
        """Steps still in flight when the program's wait ended (a failed run) finish, as the real
        engine lets the steps it started finish (`step_executor.go`)."""
        while self.flights:
            waking = [f for f in self.flights if f.runnable()]
            if not waking:
                self.flights[0].world.tick()
                continue
            flight = waking[self.rng.randrange(len(waking))]
            flight.run()
            if flight.done:
                self.flights.remove(flight)
                self._settle(flight.future, flight.result, flight.error)


@dataclass
class ProgramRun:
    """What one run of the program did, seen from the SDK's side."""

    error: BaseException | None = None
    warnings: list[str] = field(default_factory=list)


def fully_qualified(stack: str) -> str:
    return stack if stack.count("/") == 2 else f"{ORGANIZATION}/{PROJECT}/{stack}"


def runtime_config(config: dict[str, Any]) -> dict[str, str]:
    """A stack file's config as the Pulumi runtime hands it over: scalars as strings, structured
    values as JSON."""
    import json

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


class _Collect(logging.Handler):
    """Keeps the program's warnings and errors: they are part of what a preview shows."""

    def __init__(self, run: ProgramRun):
        super().__init__(level=logging.WARNING)
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.warnings.append(record.getMessage())


def run_program(engine: Engine, config: dict[str, Any], *, stack: str, preview: bool, seed: int = 0) -> ProgramRun:
    """Run __main__.py once against `engine`, with a fresh loop, fresh settings and a fresh root."""
    run = ProgramRun()
    # Output tasks of an earlier run (the SDK keeps them in a process-wide set) belong to its
    # closed loop; awaiting them here would fail with "Event loop is closed".
    with SETTINGS.lock:
        SETTINGS.outputs.clear()
    loop = _SchedulingLoop(random.Random(seed))
    # A failed step's exception reaches the program through the SDK; asyncio's "never retrieved"
    # report of the same exception is noise.
    loop.set_exception_handler(lambda _loop, _context: None)
    asyncio.set_event_loop(loop)
    ROOT.set(None)
    monitor = SimMonitor(engine, stack)
    logger = logging.getLogger(f"gp3migrate.sim.program.{id(run)}")
    logger.propagate = False
    logger.addHandler(_Collect(run))
    # As `set_mocks`, but the root stack registers its outputs once, after the program, as
    # `pulumi.runtime.stack.run_in_stack` does (set_mocks registers them at once, empty).
    configure(
        pulumi_mocks.MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=pulumi_mocks.MockEngine(logger),
            project=PROJECT,
            stack=stack,
            dry_run=preview,
            organization=ORGANIZATION,
            callbacks=None,
        )
    )
    set_all_config(runtime_config(config))
    SETTINGS.callbacks = _CallbacksWithoutServer(monitor, loop)
    cwd = os.getcwd()
    os.chdir(PROJECT_DIR)
    sdk_stack_trace, sdk_resource._get_stack_trace = sdk_resource._get_stack_trace, _no_stack_trace
    try:
        root = Stack()
        try:
            runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")
        except Exception as err:
            run.error = err
        finally:
            root._finish()
        try:
            loop.run_until_complete(wait_for_rpcs())
        except Exception as err:
            run.error = run.error or err
    finally:
        loop.finish_flights()
        sdk_resource._get_stack_trace = sdk_stack_trace
        os.chdir(cwd)
        SETTINGS.callbacks = None
        # Tasks a failed run left waiting (outputs that never resolve) die with this run's loop.
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
    return run


def deterministic_id(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]
