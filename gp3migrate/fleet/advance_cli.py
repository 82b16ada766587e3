"""The `gp3migrate advance` command line (gp3migrate/fleet/advance.py does the work)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, cast

from gp3migrate.config.phases import PHASES, Phase

EXAMPLES = """examples:
  venv/bin/gp3migrate advance --stack dev --to precopy --select namespace=shop --dry-run
  venv/bin/gp3migrate advance --stack dev --to cutover --wave canary --simulate --yes
  venv/bin/gp3migrate advance --stack prod --to cutover --wave canary      # previews, asks, applies

exit codes: 0 done (or a dry run), 1 refused by the preview, declined or failed (the message says
what completed and the command to resume), 2 bad arguments or stack config (nothing touched)."""


def add_subcommand(sub: Any) -> None:
    command = sub.add_parser(
        "advance",
        help="move a wave (or selected migrations) to a phase: checked edit, preview, confirm, `pulumi up`",
        description=(
            "Moves the selected migrations to PHASE: checks the transition with the program's own rules, edits "
            "Pulumi.<stack>.yaml for those entries only, previews (refusing a delete or replace of what holds data "
            "beyond the transition's own steps), asks, then runs `pulumi up` — a cutover as several `up`s of at most "
            "4 volumes, so that no workload's downtime grows with the wave. --simulate runs the same against the "
            "simulation, continuing the stack's rehearsal record."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--stack", required=True, help="the stack whose Pulumi.<stack>.yaml is edited")
    command.add_argument("--to", required=True, choices=PHASES, metavar="PHASE", help=f"one of {', '.join(PHASES)}")
    command.add_argument("--wave", metavar="W", help="the migrations of wave W (stack key waves)")
    command.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="namespace=, workload=, claim=, strategy= or label.<key>=; repeat to narrow (values of one key: any)",
    )
    command.add_argument("--dry-run", action="store_true", help="print the edit; write, preview and apply nothing")
    command.add_argument(
        "--edit-only",
        action="store_true",
        help="check and write the edit; preview and apply nothing (for a pull request, applied on merge)",
    )
    command.add_argument("--yes", action="store_true", help="apply without asking (CI)")
    command.add_argument("--simulate", action="store_true", help="against the simulation, not Pulumi and AWS")
    command.add_argument(
        "--force-wave",
        metavar="REASON",
        help="cut a later wave over before an earlier one finalized; the reason is recorded in the stack file",
    )
    command.add_argument("--project-dir", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    command.set_defaults(run=run, parser=command)


def _error(message: str) -> int:
    print(f"gp3migrate advance: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from gp3migrate.config.stack_file import StackFileError, read_stack, stack_path
    from gp3migrate.fleet import advance
    from gp3migrate.fleet.selection import Selection, SelectionError
    from gp3migrate.fleet.stack_runner import RunFailedError, StackUnavailableError

    project_dir = args.project_dir.resolve()
    try:
        selection = Selection.parse(wave=args.wave, select=args.select)
    except SelectionError as err:
        return _error(str(err))
    command = "gp3migrate " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    request = advance.Request(
        stack=args.stack,
        to=cast(Phase, args.to),  # argparse's choices are PHASES
        selection=selection,
        dry_run=args.dry_run,
        edit_only=args.edit_only,
        yes=args.yes,
        force_wave=args.force_wave,
        command=command,
    )
    path = stack_path(project_dir, args.stack)
    try:
        read_stack(path)
    except StackFileError as err:
        return _error(f"{path.name}: {err.what}; expected {err.expected}")
    if args.dry_run and args.edit_only:
        return _error("--dry-run writes nothing, --edit-only writes the edit: give one")
    if not (args.yes or args.dry_run or args.edit_only) and not sys.stdin.isatty():
        return _error("not a terminal to confirm on: pass --yes to apply without asking (or --dry-run)")
    runner: Any
    try:
        if args.simulate:
            runner = _simulated(project_dir, args.stack)
        else:
            from gp3migrate.fleet.stack_runner import PulumiStack

            runner = PulumiStack(project_dir, args.stack)
    except (StackUnavailableError, advance.UsageError) as err:
        return _error(str(err))
    try:
        return advance.advance(project_dir, request, runner)
    except (advance.UsageError, SelectionError) as err:
        return _error(str(err))
    except RunFailedError as err:
        print(f"gp3migrate advance: {err}", file=sys.stderr)
        return 1
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()


def _simulated(project_dir: Path, stack: str) -> Any:
    from gp3migrate.fleet import advance
    from gp3migrate.fleet.simulated_stack import SimulatedStack
    from gp3migrate.iam.runner_policy import StackFileError as SettingsError
    from gp3migrate.iam.runner_policy import read_stack_settings
    from gp3migrate.sim.cli import WORLD_FOR_INSTALL
    from gp3migrate.sim.follow import RehearsalInputError

    try:
        settings = read_stack_settings(project_dir, stack)
    except SettingsError as err:
        raise advance.UsageError(str(err)) from None
    if settings.rehearsal is not None:
        raise advance.UsageError(
            f"Pulumi.{stack}.yaml: rehearsal: true creates a cluster the simulation does not model"
        )
    try:
        return SimulatedStack(project_dir, stack, driver=WORLD_FOR_INSTALL[settings.driver.install])
    except RehearsalInputError as err:
        raise advance.UsageError(str(err)) from None
