"""The product's promises, checked on the simulated world (shared/DESIGN.md "Invariants").

- no acknowledged write lost: at the end of a completed phase, every record written to the volume a
  claim is bound to, or to any volume that one was restored from, is on it;
- no EBS volume or snapshot holding the only copy of a record is gone;
- after a completed phase every workload runs, unless the phase stops it by design (a `rename`
  cutover leaves the workload stopped for the user to repoint, and says so);
- never two default StorageClasses;
- a second `up` with no edit plans no change, with or without `--refresh`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gp3migrate.config.migration_entry import MigrationSettings, read_entry_or_none

if TYPE_CHECKING:
    from gp3migrate.sim.engine import Step
    from gp3migrate.sim.world import World


class Outcome(Protocol):
    """What an invariant reads of an `up` or preview (`scenario.UpResult`)."""

    @property
    def error(self) -> BaseException | None: ...

    def changes(self) -> list[Step]: ...


class Simulated(Protocol):
    """What the invariants read of a simulation (`scenario.Simulation`, which calls them): a
    Protocol, so this module does not import the scenario that imports it."""

    @property
    def world(self) -> World: ...

    def preview(self, config: dict[str, Any] | None = None, *, refresh_first: bool = False) -> Outcome: ...


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


NO_WRITE_LOST = "no acknowledged write lost"
NO_ONLY_COPY_DELETED = "no only copy of a record deleted"
WORKLOAD_RUNS = "the workload runs after the phase"
ONE_DEFAULT_CLASS = "never two default StorageClasses"
NO_CHANGE_ON_RERUN = "a second up with no edit plans no change"


def after_step(sim: Simulated, step: Step) -> list[Violation]:
    """Cheap checks run after every step of every `up`."""
    found = []
    defaults = sim.world.default_storage_classes()
    if len(defaults) > 1:
        found.append(Violation(ONE_DEFAULT_CLASS, f"after {step.op} {step.name}: {', '.join(sorted(defaults))}"))
    found += only_copies_kept(sim, where=f"after {step.op} {step.name}")
    return found


def _ancestors(sim: Simulated, volume_id: str) -> list[str]:
    """The volume and every volume it was restored from (through their snapshots)."""
    chain = [volume_id]
    seen = {volume_id}
    while True:
        source = sim.world.ebs.restored_from(chain[-1])
        if source is None or source in seen:
            return chain
        chain.append(source)
        seen.add(source)


def writes_kept(sim: Simulated, namespace: str, claims: list[str]) -> list[Violation]:
    """Every record written to the volume a claim is bound to, or to its ancestors, is on it."""
    found = []
    for claim in claims:
        volume = sim.world.claim_volume(namespace, claim)
        if volume is None:
            continue
        lineage = set(_ancestors(sim, volume))
        expected = [w.record for w in sim.world.writes if w.volume_id in lineage]
        present = set(sim.world.volume_content(volume))
        missing = [r for r in expected if r not in present]
        if missing:
            found.append(
                Violation(
                    NO_WRITE_LOST,
                    f"{namespace}/{claim} on {volume} lacks {len(missing)} of {len(expected)} acknowledged records "
                    f"(first: {missing[0]}, last: {missing[-1]})",
                )
            )
    return found


def only_copies_kept(sim: Simulated, *, where: str) -> list[Violation]:
    written = {w.record for w in sim.world.writes}
    if not written:
        return []
    held = sim.world.ebs.all_records()
    lost = sorted(written - held)
    if not lost:
        return []
    return [Violation(NO_ONLY_COPY_DELETED, f"{where}: {len(lost)} records are on no volume or snapshot any more")]


def parsed_entries(config: dict[str, Any]) -> list[MigrationSettings | None]:
    """Each raw migration entry read as the program reads it (None when it would be refused), so
    checks see the strategy and claim name the program chose, not the keys' absence."""
    out: list[MigrationSettings | None] = []
    for raw in config.get("migrations") or []:
        out.append(read_entry_or_none(raw, region=str(config.get("region") or "")))
    return out


def workloads_running(sim: Simulated, config: dict[str, Any]) -> list[Violation]:
    found = []
    stopped_by_design: set[tuple[str, str]] = set()
    workloads: dict[tuple[str, str], int] = {}
    for entry, parsed in zip(config.get("migrations") or [], parsed_entries(config), strict=True):
        workload = entry.get("workload")
        if not workload:
            continue
        key = (entry["namespace"], workload["name"])
        workloads[key] = int(workload["replicas"])
        # A copy cutover to a renamed claim leaves the workload for the user to repoint.
        renamed = parsed is not None and parsed.target_claim_name != parsed.claim
        if entry.get("phase") == "cutover" and renamed:
            stopped_by_design.add(key)
        if entry.get("quiesce") == "manual" and entry.get("phase") == "cutover":
            stopped_by_design.add(key)
    for (namespace, name), replicas in sorted(workloads.items()):
        if (namespace, name) in stopped_by_design:
            continue
        running = len(sim.world.running_pods(namespace, name))
        if running < replicas:
            found.append(Violation(WORKLOAD_RUNS, f"{namespace}/{name}: {running} of {replicas} pods running"))
    return found


def claims_in_use(config: dict[str, Any]) -> dict[str, list[str]]:
    """namespace -> the claims the workloads use after each entry's phase."""
    out: dict[str, list[str]] = {}
    for entry in config.get("migrations") or []:
        claim = entry["claim"]
        if entry.get("phase") in ("cutover", "finalize") and entry.get("claimNaming", "rename") == "rename":
            claim = entry.get("newClaimName") or f"{claim}-gp3"
        out.setdefault(entry["namespace"], []).append(claim)
    return out


def after_phase(sim: Simulated, config: dict[str, Any]) -> list[Violation]:
    """Checks at the end of a completed phase."""
    found: list[Violation] = []
    for namespace, claims in sorted(claims_in_use(config).items()):
        found += writes_kept(sim, namespace, claims)
    found += workloads_running(sim, config)
    found += only_copies_kept(sim, where="after the phase")
    defaults = sim.world.default_storage_classes()
    if len(defaults) > 1:
        found.append(Violation(ONE_DEFAULT_CLASS, ", ".join(sorted(defaults))))
    return found


def rerun_plans_nothing(sim: Simulated, config: dict[str, Any]) -> list[Violation]:
    found = []
    for refresh_first in (False, True):
        preview = sim.preview(config, refresh_first=refresh_first)
        label = "preview --refresh" if refresh_first else "preview"
        if preview.error is not None:
            found.append(Violation(NO_CHANGE_ON_RERUN, f"{label} failed: {preview.error}"))
            continue
        changes = preview.changes()
        if changes:
            found.append(
                Violation(NO_CHANGE_ON_RERUN, f"{label} plans " + "; ".join(f"{s.op} {s.name}" for s in changes))
            )
    return found
