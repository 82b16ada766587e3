"""`gp3migrate advance`: move selected migrations to a phase, as checked edits of the stack file and
`pulumi up`s, stopping at the first failure with the command to resume.

1. Check, before touching anything, that every selected entry may go to the phase: the program's
   own rules (gp3migrate/config/transitions.py check_transitions, which `pulumi preview` runs too),
   and that earlier waves have finalized before a later wave's cutover.
2. Edit the stack file for those entries only (round trip: comments, order and quotes kept);
   `--dry-run` prints the edit and stops.
3. `pulumi preview`; print per volume what it creates, replaces and deletes; refuse, restoring the
   file, when it would delete or replace what holds data beyond the transition's own deletes
   (gp3migrate/fleet/preview_guard.py).
4. Confirm (unless `--yes`), then `pulumi up` in as many `up`s as the phase needs to keep each
   workload's downtime what it alone would take (gp3migrate/fleet/up_batches.py), printing each
   step as it starts and ends.

Exit codes: 0 done (or dry run), 1 refused or failed (the message says what completed and how to
resume), 2 bad arguments or stack config.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gp3migrate.config.migration_entry import MigrationSettings
from gp3migrate.config.phases import PHASES, Applied, Phase, parse_history
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import PROJECT, Settings, load_settings
from gp3migrate.config.stack_file import StackFile, read_stack, stack_path, write_stack
from gp3migrate.config.transitions import may_advance
from gp3migrate.fleet import declared_steps, preview_guard
from gp3migrate.fleet.selection import Selection, unfinished_earlier_waves
from gp3migrate.fleet.stack_runner import RunFailedError, StackRunner, StepEvent
from gp3migrate.planning import up_batches

EXIT_DONE, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
WAVES_KEY = f"{PROJECT}:waves"


class UsageError(Exception):
    """Bad arguments or stack config: exit 2, nothing touched."""


@dataclass(frozen=True)
class Request:
    stack: str
    to: Phase
    selection: Selection
    dry_run: bool = False
    # Check and write the edit, preview and apply nothing (a pull request's edit, applied on merge).
    edit_only: bool = False
    yes: bool = False
    # A written reason to cut a later wave over before an earlier one finalized.
    force_wave: str | None = None
    batch_size: int = up_batches.DYNAMIC_PROVIDER_WORKERS
    # How the user resumes: the command line as given (printed after a failure).
    command: str = ""


@dataclass
class Console:
    """Where advance talks to the user (tests capture it)."""

    say: Callable[[str], None] = print
    confirm: Callable[[str], bool] = lambda question: input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


@dataclass
class Progress:
    """What the `up`s have done so far, for the per-step lines and the failure message."""

    started: dict[str, float] = field(default_factory=dict)
    window_opened: dict[str, float] = field(default_factory=dict)
    # Workload key -> seconds from its stop starting to its start done, from the events.
    downtime: dict[str, float] = field(default_factory=dict)


def settings_of(stack_file: StackFile) -> Settings:
    try:
        return load_settings(stack_file.project_values())
    except ConfigError as err:
        raise UsageError("\n".join(f"{stack_file.path.name}: {p}" for p in err.problems)) from None


def _items(stack_file: StackFile, keys: Sequence[str]) -> list[Any]:
    wanted = set(keys)
    return [item for item in stack_file.migrations() if f"{item.get('namespace')}/{item.get('claim')}" in wanted]


def set_phases(stack_file: StackFile, keys: Sequence[str], phase: str) -> None:
    """Each listed migration's own `phase` key set, in place, leaving every other line as it was."""
    for item in _items(stack_file, keys):
        item["phase"] = phase


def _wave_item(stack_file: StackFile, name: str) -> Any:
    for item in stack_file.config.get(WAVES_KEY) or []:
        if item.get("name") == name:
            return item
    raise UsageError(f"waves: no wave named {name!r} in {stack_file.path.name}")


def final_edit(stack_file: StackFile, selection: Selection, todo: Sequence[MigrationSettings], phase: str) -> None:
    """The edit as the file keeps it: a whole wave moves by its `phase` key, its entries' own
    `phase` keys dropped (the wave's now says it); a selection sets each entry's own `phase`."""
    if selection.whole_wave and selection.wave is not None:
        _wave_item(stack_file, selection.wave)["phase"] = phase
        for item in _items(stack_file, [e.key for e in todo]):
            item.pop("phase", None)
    else:
        set_phases(stack_file, [e.key for e in todo], phase)


def record_force(stack_file: StackFile, request: Request, todo: Sequence[MigrationSettings], behind: int) -> None:
    """The override, where the next reader of the file sees it: on the wave (or each entry) moved."""
    note = (
        f"advance --force-wave {datetime.date.today().isoformat()}: {request.to} while {behind} migration(s) "
        f"of earlier waves had not finalized: {request.force_wave}"
    )
    if request.selection.whole_wave and request.selection.wave is not None:
        _wave_item(stack_file, request.selection.wave).yaml_add_eol_comment(note, "phase")
    else:
        for item in _items(stack_file, [e.key for e in todo]):
            item.yaml_add_eol_comment(note, "phase")


def _check(
    settings: Settings, todo: Sequence[MigrationSettings], to: Phase, history: Mapping[str, Applied]
) -> Settings:
    """The settings as they will be after the edit, refused (UsageError) by the program's own rules:
    `may_advance`, the check `status` shows and `pulumi preview` runs (each moved entry read again
    with the new phase, then the transition rules over the whole list)."""
    chosen = {e.key for e in todo}
    problems = may_advance(settings.migrations, history, chosen, to, region=settings.cluster.region)
    if problems:
        names = {f"migrations[{i}]": e.key for i, e in enumerate(settings.migrations)}
        lines = []
        for problem in problems:
            index = problem.split(".", 1)[0].split(":", 1)[0]
            lines.append(f"{names[index]}: {problem}" if index in names else problem)
        raise UsageError("refused before anything was changed:\n  " + "\n  ".join(lines))
    edited = tuple(e.model_copy(update={"phase": to}) if e.key in chosen else e for e in settings.migrations)
    return dataclasses.replace(settings, migrations=edited)


def advance(project_dir: Path, request: Request, runner: StackRunner, console: Console | None = None) -> int:
    console = console or Console()
    say = console.say
    if request.to not in PHASES:
        raise UsageError(f"--to {request.to!r}: not a phase; allowed: {', '.join(PHASES)}")
    path = stack_path(project_dir, request.stack)
    stack_file = read_stack(path)
    settings = settings_of(stack_file)
    outputs = runner.outputs()
    history = parse_history(outputs.get("migrationPhases"))
    selected = request.selection.entries(settings)
    # Entries already applied at the phase are done; a failed `up` left the rest to do.
    todo = [e for e in selected if not (history.get(e.key) and history[e.key].phase == request.to)]
    if not todo:
        say(f"every selected migration ({len(selected)}) is already applied at {request.to}: nothing to do")
        return EXIT_DONE
    behind = unfinished_earlier_waves(settings, history, request.to, todo)
    if behind and not request.force_wave:
        raise UsageError(
            "refused before anything was changed: an earlier wave has not finalized, and a later wave's cutover "
            "waits for it (the canary proves the path first): "
            + ", ".join(behind[:10])
            + (f" and {len(behind) - 10} more" if len(behind) > 10 else "")
            + "; finalize it first, or pass --force-wave REASON (recorded in the stack file)"
        )
    edited_settings = _check(settings, todo, request.to, history)

    original = stack_file.original
    final_edit(stack_file, request.selection, todo, request.to)
    if behind and request.force_wave:
        record_force(stack_file, request, todo, len(behind))
    diff = stack_file.diff()
    say("\n".join(diff) if diff else "the stack file already asks for this phase: no edit")
    if request.dry_run:
        say(f"dry run: {path.name} not written; nothing previewed or applied")
        return EXIT_DONE

    write_stack(stack_file)
    if request.edit_only:
        say(f"{path.name} written; nothing previewed or applied (run the same command without --edit-only to apply)")
        return EXIT_DONE
    try:
        verdict = _preview(request, runner, settings, edited_settings, history, outputs, say)
    except RunFailedError as err:
        path.write_text(original)
        say(f"preview failed: {err}\n{path.name} restored as it was")
        return EXIT_FAILED
    if verdict.refused:
        path.write_text(original)
        say("refused: the preview would delete or replace what holds data:\n  " + "\n  ".join(verdict.refusals))
        say(f"{path.name} restored as it was; nothing applied")
        return EXIT_FAILED
    ups = up_batches.split(todo, request.to, size=request.batch_size)
    if not request.yes and not console.confirm(
        f"apply: {len(todo)} migration(s) to {request.to} in {len(ups)} `up`(s)?"
    ):
        path.write_text(original)
        say(f"not applied; {path.name} restored as it was")
        return EXIT_FAILED
    return _apply(path, original, stack_file, request, runner, ups, say)


def _preview(
    request: Request,
    runner: StackRunner,
    settings: Settings,
    edited: Settings,
    history: Mapping[str, Applied],
    outputs: Mapping[str, Any],
    say: Callable[[str], None],
) -> preview_guard.PreviewVerdict:
    steps: list[preview_guard.PlannedStep] = []
    runner.preview(lambda event: steps.append(preview_guard.PlannedStep(event.op, event.urn, event.type)))
    expected = declared_steps.transition_deletes(edited, history, outputs, request.stack)
    verdict = preview_guard.judge(
        steps,
        resource_names={e.resource_name: e.key for e in settings.migrations},
        expected_deletes=expected,
    )
    say("preview, per volume:")
    for key in sorted(verdict.per_volume):
        say(f"  {key}: {verdict.per_volume[key].summary()}")
    if verdict.platform:
        say(f"  platform: {', '.join(verdict.platform)}")
    return verdict


def _apply(
    path: Path,
    original: str,
    final: StackFile,
    request: Request,
    runner: StackRunner,
    ups: list[list[MigrationSettings]],
    say: Callable[[str], None],
) -> int:
    """One `up` per batch: the file asks the phase for the batches so far, the rest as they were."""
    done: list[MigrationSettings] = []
    base = read_stack_from_text(path, original)
    for number, batch in enumerate(ups, start=1):
        set_phases(base, [e.key for e in batch], request.to)
        # The last `up` runs on the edit as previewed and kept (a wave's phase key, not per entry).
        write_stack(final if number == len(ups) else base)
        names = ", ".join(e.key for e in batch)
        say(f"up {number}/{len(ups)}: {names}")
        progress = Progress()
        try:
            runner.up(partial(_on_step, progress=progress, batch=batch, say=say))
        except RunFailedError as err:
            say(f"FAILED in up {number}/{len(ups)}: {err}")
            if done:
                say(f"completed: {', '.join(e.key for e in done)} (at {request.to})")
            say(f"not completed: {names} (the stack file asks {request.to}; re-running finishes the phase)")
            rest = [e.key for later in ups[number:] for e in later]
            if rest:
                say(f"not started: {', '.join(rest)}")
            say(f"resume with: {request.command or 'the same gp3migrate advance command'}")
            return EXIT_FAILED
        done += batch
        downtime = getattr(runner, "last_downtime", None) or progress.downtime
        for workload, seconds in sorted(downtime.items()):
            say(f"  {workload}: down {seconds:.0f} s")
    say(f"done: {len(done)} migration(s) at {request.to}")
    return EXIT_DONE


def read_stack_from_text(path: Path, text: str) -> StackFile:
    """The stack file as it was before this command edited it (to edit batch by batch)."""
    path.write_text(text)
    return read_stack(path)


# The steps that open and close a workload's window (gp3migrate/planning/steps.py WORKLOAD_STEPS).
_WINDOW_OPENS = ("-quiesce", "-rollback-quiesce")
_WINDOW_CLOSES = ("-scale-back", "-rollback-scale-back")


def _on_step(
    event: StepEvent, progress: Progress, batch: Sequence[MigrationSettings], say: Callable[[str], None]
) -> None:
    found = preview_guard.owner(event.name, {e.resource_name: e.key for e in batch})
    if found is None or event.op in ("same", "read", "refresh"):
        return
    key, step = found
    if event.status == "pre" and event.name.endswith(_WINDOW_OPENS):
        progress.window_opened[key] = event.timestamp
    elapsed = ""
    if key in progress.window_opened and event.timestamp:
        elapsed = f" (window open {event.timestamp - progress.window_opened[key]:.0f} s)"
    if event.status == "done" and event.name.endswith(_WINDOW_CLOSES) and key in progress.window_opened:
        progress.downtime[key] = float(round(event.timestamp - progress.window_opened.pop(key)))
    verb = {"pre": "…", "done": "done", "failed": "FAILED"}[event.status]
    say(f"  {key}: {event.op} {step} {verb}{elapsed}")
