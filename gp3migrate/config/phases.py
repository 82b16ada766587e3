"""The phases of one volume's migration and which transitions between them are safe.

A phase is advanced by editing one key (`migrations[i].phase`) and running `pulumi up`. The
program knows the phase it last applied from its own stack outputs (`migrationPhases`), so it can
refuse an unsafe edit at preview, before registering anything:

    precopy -> cutover -> finalize -> cleanup          (rollback from precopy or cutover)

- precopy  (app running)  Retain on the source PV; a pre-copy EBS snapshot (the full, slow copy).
- cutover  (downtime)     scale the workload to 0 (or `quiesce: manual`); wait until AWS reports the
                          volume detached; final snapshot (incremental on the pre-copy); restore
                          objects; the gp3 claim (new name, or the old name after the old claim is
                          released); scale back (same-name only).
- finalize (app on gp3)   once the gp3 claim is bound: restore objects removed; snapshots unprotected
                          (kept in AWS when the stack lets go of them, with `keepSnapshots`); with
                          `deleteSource`, the source PV's reclaim policy set back to Delete once the
                          restored volume is in use.
- cleanup                 the snapshots leave the stack: deleted, or kept with `keepSnapshots`. A
                          phase of its own so that a second `up` of a phase changes nothing: Pulumi
                          refuses to delete what is protected in its state, so unprotecting
                          (finalize) and deleting (cleanup) are two edits.
- rollback                the old claim name bound again to the retained source PV.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Phase = Literal["precopy", "cutover", "finalize", "cleanup", "rollback"]
PHASES: tuple[Phase, ...] = ("precopy", "cutover", "finalize", "cleanup", "rollback")
ClaimNaming = Literal["rename", "same-name"]
CLAIM_NAMINGS: tuple[ClaimNaming, ...] = ("rename", "same-name")
Quiesce = Literal["scale", "manual", "none"]
QUIESCES: tuple[Quiesce, ...] = ("scale", "manual", "none")


@dataclass(frozen=True)
class Applied:
    """What the last successful `up` applied for one migration (from the stack's own outputs)."""

    phase: Phase
    source_deleted: bool = False
    snapshots_unprotected: bool = False
    # Cutovers applied so far: each took its own final snapshot, kept (protected) until finalize,
    # and a cutover after a rollback takes a new one rather than reusing a stale copy.
    cutovers: int = 0
    # The last rollback undid a cutover (its release and rebind steps stay declared on re-runs).
    rolled_back_cutover: bool = False
    # keepSnapshots as the last finalize applied it: the retainOnDelete the snapshots carry in
    # the state, which decides what cleanup does (pulumi/pulumi 13428: read from the old state).
    keep_snapshots: bool = False
    # The strategy that applied it (records from before strategies existed were copies).
    strategy: str = "copy"
    # The entry's facts as this phase applied them (gp3migrate/config/entry_facts.py); empty in records
    # from before they were kept.
    facts: Mapping[str, Any] = field(default_factory=dict)


# previous phase (None: never applied) -> phases that may follow it
_NEXT: Mapping[Phase | None, tuple[Phase, ...]] = {
    None: ("precopy",),
    "precopy": ("precopy", "cutover", "rollback"),
    "cutover": ("cutover", "finalize", "rollback"),
    "finalize": ("finalize", "cleanup"),
    "cleanup": ("cleanup",),
    "rollback": ("rollback", "precopy"),
}


def transition_problem(previous: Applied | None, requested: Phase) -> str | None:
    """Why moving from `previous` to `requested` is refused, saying what to do instead."""
    before = previous.phase if previous else None
    if requested in _NEXT[before]:
        return None
    if requested == "cutover" and before in (None, "rollback"):
        return (
            "'cutover' skips 'precopy': set phase: precopy and run `pulumi up` first (the pre-copy "
            "snapshot is the slow full copy, taken while the app runs, so the downtime stays short)"
        )
    if requested == "cleanup":
        return f"'cleanup' before 'finalize' (last applied: {before or 'nothing'}): run phase: finalize first"
    if requested == "finalize":
        return f"'finalize' before 'cutover' (last applied: {before or 'nothing'}): run phase: cutover first"
    if requested == "rollback" and before in ("finalize", "cleanup"):
        if previous and previous.source_deleted:
            return "'rollback' after the source volume was deleted: there is nothing to roll back to"
        return (
            "'rollback' after 'finalize': the app already runs on gp3; the source volume is retained, "
            "bind it by hand if you must (see README, rollback)"
        )
    if requested == "precopy" and before in ("cutover", "finalize", "cleanup"):
        return f"'precopy' after '{before}' would go backwards: use phase: rollback (from cutover) instead"
    return f"{requested!r} cannot follow {before or 'nothing'!r}; allowed next: {', '.join(_NEXT[before])}"


def parse_history(raw: object) -> dict[str, Applied]:
    """The `migrationPhases` stack output of the last `up`; anything unreadable counts as nothing."""
    history: dict[str, Applied] = {}
    if not isinstance(raw, Mapping):
        return history
    for key, value in raw.items():
        if isinstance(value, Mapping) and value.get("phase") in PHASES:
            history[str(key)] = Applied(
                phase=value["phase"],
                source_deleted=bool(value.get("sourceDeleted", False)),
                snapshots_unprotected=bool(value.get("snapshotsUnprotected", False)),
                cutovers=int(value.get("cutovers", 0) or 0),
                rolled_back_cutover=bool(value.get("rolledBackCutover", False)),
                keep_snapshots=bool(value.get("keepSnapshots", False)),
                strategy=str(value.get("strategy", "copy")),
                facts=_facts(value.get("facts")),
            )
    return history


def _facts(raw: object) -> dict[str, Any]:
    """Recorded facts; whole numbers come back from the state as floats (protobuf Struct)."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): int(v) if isinstance(v, float) and v.is_integer() else v for k, v in raw.items()}


def applied_record(applied: Applied) -> dict[str, object]:
    """What this run publishes for the next run (and for the promotion gate)."""
    return {
        "phase": applied.phase,
        "sourceDeleted": applied.source_deleted,
        "snapshotsUnprotected": applied.snapshots_unprotected,
        "cutovers": applied.cutovers,
        "rolledBackCutover": applied.rolled_back_cutover,
        "keepSnapshots": applied.keep_snapshots,
        "strategy": applied.strategy,
        "facts": dict(applied.facts),
    }
