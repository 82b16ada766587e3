"""Checks each migration's requested phase against what the stack last applied."""

from collections.abc import Mapping, Sequence

from gp3migrate.migration_entry import MigrationSettings
from gp3migrate.phases import Applied, transition_problem
from gp3migrate.validation import Problems


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
        if entry.phase == "cleanup" and previous is not None and previous.keep_snapshots != entry.keep_snapshots:
            problems.add(
                f"{key}.keepSnapshots",
                f"is {str(entry.keep_snapshots).lower()} but the last finalize applied "
                f"{str(previous.keep_snapshots).lower()}: whether cleanup keeps the snapshots is decided by what "
                "finalize recorded in the state (pulumi/pulumi 13428); set phase: finalize with the new value, "
                "run `pulumi up`, then cleanup",
            )
        if entry.delete_source and before not in ("cutover", "finalize", "cleanup"):
            problems.add(f"{key}.deleteSource", "true before a cutover was applied: the gp3 claim is not verified yet")
        if (
            entry.phase == "rollback"
            and entry.claim_naming == "same-name"
            and (before == "cutover" or (previous is not None and previous.rolled_back_cutover))
            and not entry.delete_restored_claim
        ):
            problems.add(
                f"{key}.deleteRestoredClaim",
                "must be true to roll back a same-name cutover: the gp3 claim holds the old name; it is "
                "released with its volume retained (Retain), and the final snapshot is kept",
            )
    problems.raise_if_any()
