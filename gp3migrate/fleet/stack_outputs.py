"""A stack's outputs, as `pulumi stack output --json` prints them: through the Automation API
(`pulumi.automation.select_stack` on the project directory, a LocalWorkspace, which runs the
`pulumi` CLI), or from a file holding that JSON when the CLI is not there.

The boundary is `SelectStack`: tests pass a fake that returns canned outputs, so no CLI is needed;
the real one is `pulumi.automation.select_stack`.
"""

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol


class OutputsError(Exception):
    """Outputs that cannot be read: one line saying what and where."""


class StackWithOutputs(Protocol):
    """What the runner uses of `pulumi.automation.Stack`."""

    def outputs(self) -> Mapping[str, Any]: ...


class SelectStack(Protocol):
    """`pulumi.automation.select_stack`'s shape, as far as the runner calls it."""

    def __call__(self, *, stack_name: str, work_dir: str) -> StackWithOutputs: ...


def _automation_select(*, stack_name: str, work_dir: str) -> StackWithOutputs:
    # Imported here: the Automation API is only needed when the CLI is there.
    from pulumi import automation

    return automation.select_stack(stack_name=stack_name, work_dir=work_dir)


def automation_outputs(stack: str, project_dir: Path, select: SelectStack = _automation_select) -> dict[str, Any]:
    """The stack's outputs through the Automation API; each is an OutputValue (`.value`,
    `.secret`), and the plain values are kept (pulumi/pulumi sdk/python/lib/pulumi/automation/
    _local_workspace.py LocalWorkspace.stack_outputs runs `pulumi stack output --json`, once masked
    and once with `--show-secrets`). A failed command's message ends in its stderr
    (automation/_cmd.py CommandResult.__str__), whose first line is shown."""
    from pulumi.automation import errors

    try:
        found = select(stack_name=stack, work_dir=str(project_dir)).outputs()
    except errors.StackNotFoundError:
        raise OutputsError(f"no stack {stack!r} in the Pulumi backend (pulumi stack ls, in {project_dir})") from None
    except errors.CommandError as err:
        stderr = str(err).split(" stderr: ", 1)[-1].strip().splitlines()
        raise OutputsError(f"pulumi could not read stack {stack!r}'s outputs: {stderr[0] if stderr else err}") from None
    return {key: getattr(value, "value", value) for key, value in found.items()}


def file_outputs(path: Path) -> dict[str, Any]:
    """Outputs saved with `pulumi stack output --json --show-secrets > FILE`."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise OutputsError(f"{path}: no such file (save it with `pulumi stack output --json > {path}`)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OutputsError(f"{path}: cannot read it ({type(err).__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise OutputsError(
            f"{path}: not JSON at line {err.lineno} column {err.colno} ({err.msg}); expected the output of "
            "`pulumi stack output --json`"
        ) from None
    if not isinstance(data, dict):
        raise OutputsError(f"{path}: not a map of output names to values (`pulumi stack output --json` prints one)")
    return data


def read_outputs(
    stack: str,
    project_dir: Path,
    outputs_file: Path | None,
    *,
    which: Callable[[str], str | None] | None = None,
    select: SelectStack | None = None,
) -> dict[str, Any]:
    """A file named on the command line wins; else the Automation API, which needs the CLI."""
    if outputs_file is not None:
        return file_outputs(outputs_file)
    if (which or shutil.which)("pulumi") is None:
        raise OutputsError(
            "the pulumi CLI is not on PATH, so the stack's outputs cannot be read: install it, or pass "
            "--outputs FILE (saved with `pulumi stack output --json --show-secrets`)"
        )
    return automation_outputs(stack, project_dir, select or _automation_select)
