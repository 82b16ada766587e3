"""The boundary between `advance` / `status` and Pulumi: preview, up and the stack's outputs.

`PulumiStack` drives the real engine through the Automation API (`pulumi.automation`): a
`LocalWorkspace` on the project directory, which runs the `pulumi` CLI, so it reads the stack file
as it is on disk when the preview or `up` starts. Tests use a fake with the same three methods;
`advance --simulate` uses the simulation's (gp3migrate/sim/fleet_runner.py).
"""

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class StepEvent:
    """A resource step as it starts (`pre`), completes (`done`) or fails (`failed`)."""

    status: str
    op: str
    urn: str
    type: str
    # Seconds since the epoch, from the engine's event (0 where unknown).
    timestamp: float = 0.0

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


OnStep = Callable[[StepEvent], None]


class RunFailedError(Exception):
    """A preview or `up` that failed; the message is the engine's, trimmed to what matters."""


class StackUnavailableError(Exception):
    """The stack cannot be reached (no CLI, no such stack, not logged in): the message says which."""


class StackRunner(Protocol):
    def outputs(self) -> dict[str, Any]: ...

    def preview(self, on_step: OnStep) -> None: ...

    def up(self, on_step: OnStep) -> dict[str, Any]: ...


def _plain_outputs(raw: Any) -> dict[str, Any]:
    """Automation's OutputMap (name -> OutputValue(value, secret)) as plain values."""
    return {name: getattr(value, "value", value) for name, value in dict(raw).items()}


def step_event(event: Any) -> StepEvent | None:
    """The resource step an Automation API EngineEvent reports, if it reports one
    (pulumi/automation/events.py: resource_pre_event, res_outputs_event, res_op_failed_event)."""
    for attribute, status in (
        ("resource_pre_event", "pre"),
        ("res_outputs_event", "done"),
        ("res_op_failed_event", "failed"),
    ):
        payload = getattr(event, attribute, None)
        if payload is not None:
            meta = payload.metadata
            op = getattr(meta.op, "value", meta.op)
            return StepEvent(status, str(op), meta.urn, meta.type, float(getattr(event, "timestamp", 0) or 0))
    return None


class PulumiStack:
    """A stack of the project in `project_dir`, through the Automation API and the `pulumi` CLI."""

    def __init__(self, project_dir: Path, stack: str):
        if shutil.which("pulumi") is None:
            raise StackUnavailableError(
                "the pulumi CLI is not on PATH (https://www.pulumi.com/docs/install/); "
                "without it, give the outputs with --outputs FILE (`pulumi stack output --json`)"
            )
        from pulumi import automation

        self.stack_name = stack
        self.project_dir = project_dir
        try:
            self._stack = automation.select_stack(stack_name=stack, work_dir=str(project_dir))
        except automation.errors.CommandError as err:
            raise StackUnavailableError(f"pulumi cannot select stack {stack!r}: {_first_line(err)}") from None

    def outputs(self) -> dict[str, Any]:
        from gp3migrate.fleet.stack_outputs import OutputsError, automation_outputs

        try:
            return automation_outputs(self.stack_name, self.project_dir, lambda **_: self._stack)
        except OutputsError as err:
            raise StackUnavailableError(str(err)) from None

    def _events(self, on_step: OnStep) -> Callable[[Any], None]:
        def on_event(event: Any) -> None:
            step = step_event(event)
            if step is not None:
                on_step(step)

        return on_event

    def preview(self, on_step: OnStep) -> None:
        from pulumi import automation

        try:
            self._stack.preview(on_event=self._events(on_step))
        except automation.errors.CommandError as err:
            raise RunFailedError(_first_line(err)) from None

    def up(self, on_step: OnStep) -> dict[str, Any]:
        from pulumi import automation

        try:
            result = self._stack.up(on_event=self._events(on_step))
        except automation.errors.CommandError as err:
            raise RunFailedError(_first_line(err)) from None
        return _plain_outputs(result.outputs)


def _first_line(err: Exception) -> str:
    """A CommandError's message carries the whole stderr; its last non-empty lines say why."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " / ".join(lines[-3:]) if lines else type(err).__name__
