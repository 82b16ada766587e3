"""`gp3migrate status --stack S`: where every volume and wave of a stack stands.

Reads `Pulumi.<stack>.yaml` (what each entry asks) and the stack's outputs (what the last `up`
applied), through the Automation API when the pulumi CLI is on PATH, else from `--outputs FILE`.
A user error (no stack file, a stack the backend does not know, outputs that are not JSON, no CLI
and no --outputs, a stack file the program refuses) is printed as `gp3migrate status: error: ...`
naming the file or key, with exit code 2 and no traceback.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings
from gp3migrate.config.stack_file import StackFileError, existing_stacks, read_stack, stack_path
from gp3migrate.fleet.stack_outputs import OutputsError, SelectStack, read_outputs
from gp3migrate.fleet.status import Status, StatusError, stack_status

PROG = "gp3migrate status"
NONE = "—"
EXAMPLES = """examples:
  gp3migrate status --stack dev                      outputs through the Automation API (pulumi CLI)
  pulumi stack output --json --show-secrets --stack dev > dev-outputs.json
  gp3migrate status --stack dev --outputs dev-outputs.json --json
"""


class StatusArgumentError(Exception):
    pass


def add_subcommand(commands: Any) -> None:
    command = commands.add_parser(
        "status",
        help="where every volume and wave of a stack stands, and what the next run would do",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--stack", required=True, help="the stack (Pulumi.<stack>.yaml in --project-dir)")
    command.add_argument("--project-dir", type=Path, default=Path("."), help="where the stack files are (default: .)")
    command.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="the stack's outputs as `pulumi stack output --json --show-secrets` printed them, instead of asking "
        "Pulumi (needed without the pulumi CLI)",
    )
    command.add_argument(
        "--simulate",
        action="store_true",
        help="where the rehearsal stands (`advance --simulate`, `simulate`: .gp3migrate/rehearsals/<stack>.json)",
    )
    command.add_argument("--json", action="store_true", help="print the status as JSON, for scripts")
    command.set_defaults(run=run, parser=command)


def run(args: argparse.Namespace, *, out: IO[str] | None = None, select: SelectStack | None = None) -> int:
    out = out or sys.stdout
    try:
        status = _status(args, select)
    except (StatusArgumentError, OutputsError, StatusError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        path = stack_path(args.project_dir, args.stack)
        for problem in err.problems:
            print(f"{PROG}: error: {path}: {problem}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(status.as_json(), indent=2, ensure_ascii=False), file=out)
    else:
        draw(status, out)
    return 0


def _status(args: argparse.Namespace, select: SelectStack | None) -> Status:
    path = stack_path(args.project_dir, args.stack)
    if not path.exists():
        stacks = ", ".join(existing_stacks(args.project_dir)) or "none"
        raise StatusArgumentError(f"no stack file {path} (--stack {args.stack}; stacks there: {stacks})")
    try:
        stack_file = read_stack(path)
    except StackFileError as err:
        raise StatusArgumentError(f"{path}: {err.what}; expected {err.expected}") from None
    settings = load_settings(stack_file.project_values())
    if args.simulate and args.outputs:
        raise StatusArgumentError("--simulate reads the rehearsal record, --outputs a real stack's outputs: give one")
    if args.simulate:
        outputs = _rehearsed_outputs(args.project_dir.resolve(), args.stack)
    else:
        outputs = read_outputs(args.stack, args.project_dir.resolve(), args.outputs, select=select)
    try:
        return stack_status(args.stack, settings, outputs)
    except StatusError as err:
        source = args.outputs or f"stack {args.stack}'s outputs"
        raise StatusError(f"{source}: {err}") from None


def _rehearsed_outputs(project_dir: Path, stack: str) -> dict[str, Any]:
    """The outputs the stack's last rehearsed `up` left (gp3migrate/sim/follow.py's record)."""
    from gp3migrate.sim import follow

    path = follow.record_path(project_dir, stack)
    if not path.exists():
        raise StatusArgumentError(
            f"{path.relative_to(project_dir)}: no rehearsal of stack {stack} yet "
            f"(gp3migrate advance --stack {stack} --simulate ..., or gp3migrate simulate --stack {stack})"
        )
    from gp3migrate.fleet.simulated_stack import as_filed

    try:
        return as_filed(follow.load_record(path).outputs, project_dir, stack)
    except follow.RehearsalInputError as err:
        raise StatusArgumentError(str(err)) from None


def _or_none(value: object) -> str:
    return NONE if value is None else str(value)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {phase}" for phase, n in counts.items())


def draw(status: Status, out: IO[str]) -> None:
    """The volumes table, then the waves table, then the warnings (plain text when not a terminal)."""
    terminal = out.isatty()
    console = Console(file=out, width=None if terminal else 200, highlight=False, emoji=False)
    with console.capture() as captured:
        _print_tables(console, status)
    text = captured.get()
    # Off a terminal (a file, a CI log, a test) without the padding rich adds to fill each line.
    out.write(text if terminal else "\n".join(line.rstrip() for line in text.splitlines()) + "\n")


def _print_tables(console: Console, status: Status) -> None:
    volumes = Table(title=f"stack {status.stack}: volumes", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("volume", "workload", "wave", "strategy", "asked", "applied", "next", "downtime"):
        volumes.add_column(column, no_wrap=True)
    for row in status.rows:
        volumes.add_row(
            row.volume,
            _or_none(row.workload),
            _or_none(row.wave),
            row.strategy,
            row.asked,
            _or_none(row.applied),
            row.next_text,
            NONE if row.downtime_seconds is None else f"{row.downtime_seconds:g} s",
        )
    console.print(volumes)
    waves = Table(title="waves", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("wave", "phase", "volumes", "workloads", "asked", "applied", "ready", "refused", "done"):
        waves.add_column(column, no_wrap=True)
    for wave in status.waves:
        waves.add_row(
            wave.wave,
            _or_none(wave.phase),
            str(wave.volumes),
            str(wave.workloads),
            _counts(wave.asked),
            _counts(wave.applied),
            str(wave.ready),
            str(wave.refused),
            str(wave.done),
        )
    console.print(waves)
    for row in status.rows:
        for problem in row.refused:
            console.print(f"refused {row.volume} -> {row.next_phase}: {problem}", markup=False, soft_wrap=True)
    for warning in status.warnings:
        console.print(f"warning: {warning}", markup=False)
