"""The product's promises, checked on the simulated world (shared/DESIGN.md "Invariants").

- no acknowledged write lost: at the end of a completed phase, every record written to the volume a
  claim is bound to, or to any volume that one was restored from, is on it;
- no EBS volume or snapshot holding the only copy of a record is gone;
- after a completed phase every workload runs with the replicas it had before the cutover (its
  `spec.replicas` and its running pods), unless the phase stops it by design (a `rename` cutover
  leaves the workload stopped for the user to repoint, and says so);
- every migrated claim is served by its source volume (rehome, modify) or by a volume restored from
  it (copy), never by a new empty one;
- every volume mounts with its own filesystem: a PV's fsType is the one on its volume;
- the source PV is Retain before a one-way step touches its volume or claim (checked as the step
  starts, not later through a refresh's drift);
- letting go (`pulumi destroy`, `stack rm`, an entry removed or forgotten) keeps every EBS volume,
  every snapshot kept by `keepSnapshots`, and every claim with its records;
- never two default StorageClasses;
- a second `up` with no edit plans no change, with or without `--refresh`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gp3migrate.config.migration_entry import MigrationSettings, read_entry_or_none

if TYPE_CHECKING:
    from gp3migrate.sim.engine import Checkpoint, Step
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

    @property
    def replicas_before(self) -> dict[tuple[str, str], int]: ...

    @property
    def checkpoint(self) -> Checkpoint: ...

    def preview(self, config: dict[str, Any] | None = None, *, refresh_first: bool = False) -> Outcome: ...


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


NO_WRITE_LOST = "no acknowledged write lost"
NO_ONLY_COPY_DELETED = "no only copy of a record deleted"
WORKLOAD_RUNS = "the workload runs after the phase with the replicas it had before the cutover"
SERVED_BY_SOURCE = "every migrated claim is served by its source volume or one restored from it"
OWN_FILESYSTEM = "every volume mounts with its own filesystem"
RETAIN_BEFORE_ONE_WAY = "the source PV is Retain before a one-way step touches it"
KEPT_WHEN_LET_GO = "letting go keeps every volume, kept snapshot and claim's records"
ONE_DEFAULT_CLASS = "never two default StorageClasses"
NO_CHANGE_ON_RERUN = "a second up with no edit plans no change"


def after_step(sim: Simulated, step: Step) -> list[Violation]:
    """Cheap checks run after every step of every `up`."""
    found = []
    defaults = sim.world.default_storage_classes()
    if len(defaults) > 1:
        found.append(Violation(ONE_DEFAULT_CLASS, f"after {step.op} {step.name}: {', '.join(sorted(defaults))}"))
    found += only_copies_kept(sim, where=f"after {step.op} {step.name}")
    found += own_filesystems(sim, where=f"after {step.op} {step.name}")
    return found


def own_filesystems(sim: Simulated, *, where: str) -> list[Violation]:
    """A filesystem PV names the filesystem its volume holds: node staging formats only a blank
    device and mounts an existing one as the PV says (mount-utils formatAndMount), so another
    fsType fails the mount, or, for a volume the CSI PV was made for, formats nothing and loses it."""
    from gp3migrate.sim import kube as k8s

    found = []
    for pv in sim.world.kube.view("PersistentVolume"):
        if (pv.get("spec") or {}).get("volumeMode", "Filesystem") != "Filesystem":
            continue
        volume = k8s.pv_volume_id(pv)
        held = sim.world.ebs.filesystem.get(volume) if volume else None
        if held is None or not sim.world.ebs.exists(str(volume)):
            continue
        if k8s.pv_fs_type(pv) != held:
            found.append(
                Violation(
                    OWN_FILESYSTEM,
                    f"{where}: PV {pv['metadata']['name']} mounts {volume} as {k8s.pv_fs_type(pv)}, "
                    f"but it holds {held}",
                )
            )
    return found


# Steps that act on the source volume or its claim and cannot be undone by the engine: their
# suffixes under the migration's resource name (gp3migrate/planning/strategies/).
ONE_WAY_ON_SOURCE = ("volume-tags", "volume-modify", "release-old-claim", "old-pv-delete")


def one_way_steps(config: dict[str, Any]) -> dict[str, str]:
    """Resource name of each one-way step on a source -> the source's in-tree PV, for rehome and
    copy entries (modify touches no PV and declares no Retain). Read once per `up`."""
    out: dict[str, str] = {}
    for raw, entry in zip(config.get("migrations") or [], parsed_entries(config), strict=True):
        if entry is not None and entry.strategy != "modify":
            out |= {f"{entry.resource_name}-{suffix}": str(raw["pv"]) for suffix in ONE_WAY_ON_SOURCE}
    return out


def before_one_way_step(sim: Simulated, watched: dict[str, str], step: Step) -> list[Violation]:
    """As a one-way step on a source starts (the engine reports a step before its provider runs),
    the source's in-tree PV is Retain: deleting its claim or its object must not let the PV
    controller delete the volume. `watched` is `one_way_steps(config)`."""
    pv_name = watched.get(step.name)
    if pv_name is None or step.op not in ("create", "update", "replace"):
        return []
    pv = sim.world.kube.peek("PersistentVolume", "", pv_name)
    policy = pv["spec"].get("persistentVolumeReclaimPolicy") if pv is not None else "Retain"
    if policy == "Retain":
        return []
    return [Violation(RETAIN_BEFORE_ONE_WAY, f"PV {pv_name} is {policy} as {step.op} {step.name} starts")]


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
    for (namespace, name), recorded in sorted(workloads.items()):
        if (namespace, name) in stopped_by_design:
            continue
        # What the world ran before any cutover, not what the stack file (or the program) says.
        replicas = sim.replicas_before.get((namespace, name), recorded)
        running = len(sim.world.running_pods(namespace, name))
        desired = _desired_replicas(sim, namespace, name)
        if running != replicas or desired != replicas:
            found.append(
                Violation(
                    WORKLOAD_RUNS,
                    f"{namespace}/{name}: {running} pods running, spec.replicas {desired}; it ran {replicas} "
                    "before the cutover",
                )
            )
    return found


def _desired_replicas(sim: Simulated, namespace: str, name: str) -> int | None:
    for kind in ("Deployment", "StatefulSet"):
        workload = sim.world.kube.peek(kind, namespace, name)
        if workload is not None:
            return int(workload["spec"].get("replicas") or 0)
    return None


def served_by_source(sim: Simulated, config: dict[str, Any]) -> list[Violation]:
    """Each migrated claim in use is bound to its source volume (rehome, modify) or to a volume
    restored, through snapshots, from it (copy): a claim on a new empty volume reads nothing."""
    found = []
    for raw, entry in zip(config.get("migrations") or [], parsed_entries(config), strict=True):
        if entry is None:
            continue
        claim = _claim_in_use(raw, entry)
        source = str(raw["volumeId"])
        volume = sim.world.claim_volume(entry.namespace, claim)
        if volume is None:
            continue  # not bound: writes_kept and workloads_running say why it matters
        lineage = _ancestors(sim, volume)
        ok = volume == source if entry.strategy in ("rehome", "modify") else source in lineage
        if not ok:
            how = "itself" if entry.strategy != "copy" else "a volume restored from it"
            found.append(
                Violation(
                    SERVED_BY_SOURCE,
                    f"{entry.namespace}/{claim} ({entry.strategy}, phase {entry.phase}) is bound to {volume}, "
                    f"not {source} or {how} (lineage: {' <- '.join(lineage)})",
                )
            )
    return found


def _claim_in_use(raw: dict[str, Any], entry: MigrationSettings | None) -> str:
    """The claim the workload uses after the entry's phase, as the program names it."""
    if entry is not None and raw.get("phase") in ("cutover", "finalize", "cleanup"):
        return entry.target_claim_name
    return str(raw["claim"])


def claims_in_use(config: dict[str, Any]) -> dict[str, list[str]]:
    """namespace -> the claims the workloads use after each entry's phase."""
    out: dict[str, list[str]] = {}
    for raw, entry in zip(config.get("migrations") or [], parsed_entries(config), strict=True):
        out.setdefault(raw["namespace"], []).append(_claim_in_use(raw, entry))
    return out


def after_phase(sim: Simulated, config: dict[str, Any]) -> list[Violation]:
    """Checks at the end of a completed phase."""
    found: list[Violation] = []
    for namespace, claims in sorted(claims_in_use(config).items()):
        found += writes_kept(sim, namespace, claims)
    found += workloads_running(sim, config)
    found += served_by_source(sim, config)
    found += own_filesystems(sim, where="after the phase")
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


@dataclass(frozen=True)
class Holdings:
    """What holds data before the stack lets go of something: the EBS volumes, the snapshots
    `keepSnapshots` keeps (retained in the state, or already let go of and left in AWS), and
    the claims in use."""

    volumes: frozenset[str]
    kept_snapshots: frozenset[str]
    claims: tuple[tuple[str, str], ...]


def holdings(sim: Simulated, config: dict[str, Any]) -> Holdings:
    """What holds data now. Kept snapshots are read from the config, not from the state the
    program wrote: a snapshot of an entry with `keepSnapshots: true`, and one the stack already let
    go of that still exists."""
    ebs = sim.world.ebs
    in_state = {r.id: r.name for r in sim.checkpoint.resources if r.type == "aws:ebs/snapshot:Snapshot"}
    keeping = [
        f"{entry.resource_name}-"
        for raw, entry in zip(config.get("migrations") or [], parsed_entries(config), strict=True)
        if entry is not None and raw.get("keepSnapshots")
    ]
    kept = {s for s in ebs.snapshot_content if s not in in_state or any(in_state[s].startswith(p) for p in keeping)}
    claims = tuple((ns, c) for ns, names in sorted(claims_in_use(config).items()) for c in names)
    return Holdings(frozenset(ebs.content), frozenset(kept), claims)


def kept_when_let_go(sim: Simulated, before: Holdings, *, what: str) -> list[Violation]:
    """After `what` (a destroy, a stack removed, an entry removed or forgotten): nothing that held
    data is gone and every claim in use still reads every record written through its lineage."""
    ebs = sim.world.ebs
    found = [
        Violation(KEPT_WHEN_LET_GO, f"after {what}: EBS volume {v} is gone")
        for v in sorted(before.volumes)
        if not ebs.exists(v)
    ]
    found += [
        Violation(KEPT_WHEN_LET_GO, f"after {what}: snapshot {s} (keepSnapshots) is gone")
        for s in sorted(before.kept_snapshots)
        if s not in ebs.snapshot_content
    ]
    for namespace, claim in before.claims:
        if sim.world.claim_volume(namespace, claim) is None:
            found.append(Violation(KEPT_WHEN_LET_GO, f"after {what}: claim {namespace}/{claim} is gone or unbound"))
            continue
        lost = writes_kept(sim, namespace, [claim])
        found += [Violation(KEPT_WHEN_LET_GO, f"after {what}: {v.detail}") for v in lost]
    return found
