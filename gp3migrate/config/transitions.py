"""Checks each migration's requested phase against what the stack last applied, and what the
next run would do for each (`next_phase`, `may_advance`: one check for `status` and `advance`)."""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from gp3migrate.config.entry_facts import add_fact_problems
from gp3migrate.config.migration_entry import MigrationSettings, read_entry
from gp3migrate.config.phases import Applied, Phase, transition_problem
from gp3migrate.config.problems import ConfigError, Problems, problems_of


def check_transitions(migrations: Sequence[MigrationSettings], history: Mapping[str, Applied]) -> None:
    """Raise ConfigError naming every unsafe edit; nothing is registered before this passes."""
    problems = Problems()
    for index, entry in enumerate(migrations):
        key = f"migrations[{index}]"
        previous = history.get(entry.key)
        problem = transition_problem(previous, entry.phase)
        if problem:
            problems.add(f"{key}.phase", problem)
            continue
        before = previous.phase if previous else None
        add_fact_problems(problems, key, entry, previous)
        if entry.phase == "cleanup" and previous is not None and previous.keep_snapshots != entry.keep_snapshots:
            problems.add(
                f"{key}.keepSnapshots",
                f"is {str(entry.keep_snapshots).lower()} but the last finalize applied "
                f"{str(previous.keep_snapshots).lower()}: whether cleanup keeps the snapshots is decided by what "
                "finalize recorded in the state (pulumi/pulumi 13428); set phase: finalize with the new value, "
                "run `pulumi up`, then cleanup",
            )
        if previous is not None and previous.strategy != entry.strategy and before not in ("precopy", "rollback"):
            problems.add(
                f"{key}.strategy",
                f"is {entry.strategy} but {previous.strategy} took this volume to {before}: a strategy changes only "
                "before a cutover (phase precopy, or after a rollback)",
            )
        if entry.delete_source and before not in ("cutover", "finalize", "cleanup"):
            problems.add(f"{key}.deleteSource", "true before a cutover was applied: the gp3 claim is not verified yet")
        if (
            entry.phase == "rollback"
            and entry.strategy == "copy"
            and entry.claim_naming == "same-name"
            and (before == "cutover" or (previous is not None and previous.rolled_back_cutover))
            and not entry.delete_restored_claim
        ):
            problems.add(
                f"{key}.deleteRestoredClaim",
                "must be true to roll back a same-name cutover: the gp3 claim holds the old name; it is "
                "released with its volume retained (Retain), and the final snapshot is kept",
            )
    _check_whole_workloads(problems, migrations)
    problems.raise_if_any()


def _check_whole_workloads(problems: Problems, migrations: Sequence[MigrationSettings]) -> None:
    """A workload's claims cut over together: a workload stopped for one claim and started again
    while another of its claims is still on its old volume would write there after that claim's
    final snapshot (issue 9 item 1)."""
    members: dict[tuple[str, str, str], list[tuple[int, MigrationSettings]]] = {}
    for index, entry in enumerate(migrations):
        if entry.workload is not None:
            key = (entry.namespace, entry.workload.kind, entry.workload.name)
            members.setdefault(key, []).append((index, entry))
    for (namespace, kind, name), group in sorted(members.items()):
        behind = [(i, e) for i, e in group if e.phase in ("precopy", "rollback")]
        for index, entry in group:
            if entry.phase == "cutover" and behind:
                others = ", ".join(f"migrations[{i}] ({e.key}, phase {e.phase})" for i, e in behind)
                problems.add(
                    f"migrations[{index}].phase",
                    f"'cutover' of {kind} {namespace}/{name} must include every claim it mounts; not yet: {others}",
                )


# Phases whose steps keep a workload consistent (a stopped app, a released or rebound claim): an
# entry in one of them that leaves the config would silently drop those steps.
_NOT_FORGOTTEN_IN = ("cutover", "rollback")


def check_forgotten(
    migrations: Sequence[MigrationSettings], history: Mapping[str, Applied], forget: Sequence[str]
) -> None:
    """Raise ConfigError for an entry last applied in cutover or rollback that is missing from
    `migrations` without being listed under `forget`, and for a `forget` item that lets go of
    nothing (not in the history, or still in `migrations`)."""
    problems = Problems()
    present = {entry.key for entry in migrations}
    for key, applied in sorted(history.items()):
        if key not in present and key not in forget and applied.phase in _NOT_FORGOTTEN_IN:
            problems.add(
                "migrations",
                f"{key!r} is missing, but its last applied phase is {applied.phase}: removing it would drop "
                "the steps that keep its workload consistent; add it back, or list it under forget to "
                "let go of it on purpose",
            )
    for index, key in enumerate(forget):
        if key in present:
            problems.add(f"forget[{index}]", f"{key!r} is still in migrations: remove it from one of the two")
        elif key not in history:
            problems.add(
                f"forget[{index}]",
                f"{key!r} names no migration this stack last applied: remove it from forget "
                "(already let go of, or misspelt)",
            )
    problems.raise_if_any()


# The phase each applied phase leads to when a migration moves forward (rollback is a choice, not
# a next step); strategy modify ends at precopy (migration_entry.py, _strategy_rules).
_FORWARD: Mapping[Phase | None, Phase | None] = {
    None: "precopy",
    "precopy": "cutover",
    "cutover": "finalize",
    "finalize": "cleanup",
    "cleanup": None,
    "rollback": "precopy",
}


@dataclass(frozen=True)
class NextStep:
    """What the next `up` (or `advance`) does for one entry."""

    # The phase it applies; None: nothing left (cleanup applied, or modify's precopy).
    to: Phase | None
    # The file asks for `to` already; only an `up` is missing.
    pending: bool
    # Why the program would refuse it (empty: it may go ahead).
    problems: tuple[str, ...] = ()


def may_advance(
    migrations: Sequence[MigrationSettings],
    history: Mapping[str, Applied],
    keys: Collection[str],
    to: Phase,
    *,
    region: str = "",
) -> list[str]:
    """Every problem the program would refuse the run with (before registering anything) if the
    entries named by `keys` asked for `to` and the others stayed as they are: each moved entry's
    own rules checked again with the new phase, then the transition rules above (check_transitions)
    over the whole list. The one check behind `gp3migrate status`'s next column and `advance`."""
    problems: list[str] = []
    moved: list[MigrationSettings] = []
    for index, entry in enumerate(migrations):
        if entry.key in keys and entry.phase != to:
            raw = entry.model_dump(mode="json", by_alias=True, include=entry.model_fields_set, exclude_none=True)
            try:
                changed = read_entry({**raw, "phase": to}, region=region)
            except ValidationError as err:
                problems += [f"migrations[{index}].{line}" for line in problems_of(err, MigrationSettings)]
                continue
            changed._wave, changed._phase_from_wave = entry.wave, entry.phase_from_wave
            entry = changed
        moved.append(entry)
    if problems:
        return problems
    try:
        check_transitions(moved, history)
    except ConfigError as err:
        return list(err.problems)
    return []


def _same_workload(entry: MigrationSettings, other: MigrationSettings) -> bool:
    if entry.workload is None or other.workload is None or entry.namespace != other.namespace:
        return entry.key == other.key
    return (entry.workload.kind, entry.workload.name) == (other.workload.kind, other.workload.name)


def next_phase(
    migrations: Sequence[MigrationSettings],
    history: Mapping[str, Applied],
    entry: MigrationSettings,
    *,
    region: str = "",
) -> NextStep:
    """What the next run does for `entry`: apply the phase the file asks for when the last `up`
    has not (checked as the file stands), else move its whole workload (every claim it mounts
    advances together) one phase on; with the program's refusals (may_advance), only those naming
    these entries or no entry."""
    previous = history.get(entry.key)
    applied = previous.phase if previous else None
    if entry.phase != applied:
        to, pending = entry.phase, True
    else:
        step = _FORWARD[applied]
        if step is None or (entry.strategy == "modify" and applied == "precopy"):
            return NextStep(None, pending=False)
        to, pending = step, False
    # A pending phase is the file as it is (the next `up` applies just that); a step forward moves
    # the whole workload, as `advance` edits it.
    group = {entry.key} if pending else {other.key for other in migrations if _same_workload(entry, other)}
    ours = tuple(f"migrations[{i}]" for i, other in enumerate(migrations) if other.key in group)
    problems = may_advance(migrations, history, group, to, region=region)
    mine = tuple(p for p in problems if p.startswith(ours) or not p.startswith("migrations["))
    return NextStep(to, pending=pending, problems=mine)
