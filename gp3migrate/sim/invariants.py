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
- a second `up` with no edit plans no change, with or without `--refresh`;
- the source volume is handed to deletion (`deleteSource`) only once its copy is in use: the
  restored claim bound to a volume restored from it, attached to a node (checked as the step that
  sets Delete starts);
- a migration deletes only claims bound to its source volume or to a volume restored from it (a
  claim name that now serves another volume is someone else's data);
- the EBS CSI driver may manage every volume and snapshot the migration hands it, under either
  managed IAM policy (their tag conditions);
- every PV pins pods to the zone its volume is in;
- every volume is mounted as its in-tree PV said: read-only when it was, with its mount options.
"""

from __future__ import annotations

import heapq
import weakref
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

    def __repr__(self) -> str:
        # Assertion diffs show reprs: keep the invariant's name first, as `<name>: <detail>`.
        return f"Violation({self})"


NO_WRITE_LOST = "no acknowledged write lost"
NO_ONLY_COPY_DELETED = "no only copy of a record deleted"
WORKLOAD_RUNS = "the workload runs after the phase with the replicas it had before the cutover"
SERVED_BY_SOURCE = "every migrated claim is served by its source volume or one restored from it"
OWN_FILESYSTEM = "every volume mounts with its own filesystem"
RETAIN_BEFORE_ONE_WAY = "the source PV is Retain before a one-way step touches it"
KEPT_WHEN_LET_GO = "letting go keeps every volume, kept snapshot and claim's records"
ONE_DEFAULT_CLASS = "never two default StorageClasses"
NO_CHANGE_ON_RERUN = "a second up with no edit plans no change"
SOURCE_KEPT_UNTIL_COPY_IN_USE = "the source volume is handed to deletion only once its copy is in use"
ONLY_OWN_CLAIMS_DELETED = "a migration deletes only claims bound to its source volume or a copy of it"
DRIVER_CAN_MANAGE = "the EBS CSI driver may manage every volume and snapshot the migration hands it"
PV_IN_VOLUME_ZONE = "every PV pins pods to the zone its volume is in"
MOUNTED_AS_SAID = "every volume is mounted as its in-tree PV said (readOnly, mountOptions)"
# Liveness: the runbook's promise that each phase is one `up` (README "Runbook"). Checked where the
# world is healthy and no fault is injected (a walk of the runbook, a generated world's fault-free
# moves): there a refusal or a wait that runs out is a defect, not a finding about the world.
PHASE_COMPLETES = "every phase of a healthy world completes in one up"
RESTORE_KEPT_UNTIL_COPY_BOUND = "a copy's snapshots are let go only once its claim is bound to its restored volume"


@dataclass(frozen=True)
class PvFacts:
    volume: str | None
    fs_type: str
    zones: frozenset[str] | None
    filesystem_mode: bool


class PvReader:
    """What the per-step checks read of each PV, parsed once per version of it: the store writes a
    new object on every change (`Cluster._store`), so an object seen before reads the same. With
    every step checking every PV, parsing them all again each step made the checks grow with the
    square of the fleet. Volume zones are read once per volume (an EBS volume never moves)."""

    def __init__(self) -> None:
        self.parsed: dict[str, tuple[dict[str, Any], PvFacts]] = {}
        self.zones: dict[str, str] = {}

    def facts(self, pv: dict[str, Any]) -> PvFacts:
        from gp3migrate.sim import kube as k8s
        from gp3migrate.sim.kube.objects import pv_zones

        name = pv["metadata"]["name"]
        seen = self.parsed.get(name)
        if seen is not None and seen[0] is pv:
            return seen[1]
        zones = pv_zones(pv)
        facts = PvFacts(
            k8s.pv_volume_id(pv),
            k8s.pv_fs_type(pv),
            frozenset(zones) if zones is not None else None,
            (pv.get("spec") or {}).get("volumeMode", "Filesystem") == "Filesystem",
        )
        self.parsed[name] = (pv, facts)
        return facts

    def zone(self, sim: Simulated, volume: str) -> str:
        if volume not in self.zones:
            self.zones[volume] = sim.world.ebs.zone(volume)
        return self.zones[volume]


_PV_READERS: weakref.WeakKeyDictionary[Any, PvReader] = weakref.WeakKeyDictionary()


def _pv_reader(sim: Simulated) -> PvReader:
    return _PV_READERS.setdefault(sim.world.kube, PvReader())


# Per world: its fingerprint when the per-step checks last found nothing.
_CLEAN_AT: weakref.WeakKeyDictionary[Any, tuple[int, int, int]] = weakref.WeakKeyDictionary()


def after_step(sim: Simulated, step: Step) -> list[Violation]:
    """Cheap checks run after every step of every `up`. They read only the store, the world's
    ticks and the EBS model, so a step that changed none of them (World.fingerprint; nine steps in
    ten of a large `up` keep a resource as it is) cannot make them find anything the last clean
    check did not: each walked every PV and pod, and over a fleet's `up` that grew with the square
    of its size (docs/benchmark.md)."""
    fingerprint = sim.world.fingerprint()
    if _CLEAN_AT.get(sim.world.kube) == fingerprint:
        return []
    found = _after_step(sim, step)
    if found:
        _CLEAN_AT.pop(sim.world.kube, None)
    else:
        _CLEAN_AT[sim.world.kube] = fingerprint
    return found


def _after_step(sim: Simulated, step: Step) -> list[Violation]:
    found = []
    defaults = sim.world.default_storage_classes()
    if len(defaults) > 1:
        found.append(Violation(ONE_DEFAULT_CLASS, f"after {step.op} {step.name}: {', '.join(sorted(defaults))}"))
    found += only_copies_kept(sim, where=f"after {step.op} {step.name}")
    found += own_filesystems(sim, where=f"after {step.op} {step.name}")
    found += pvs_in_volume_zones(sim, where=f"after {step.op} {step.name}")
    found += mounted_as_said(sim, where=f"after {step.op} {step.name}")
    return found


def mounted_as_said(sim: Simulated, *, where: str) -> list[Violation]:
    """Each mounted volume keeps what its in-tree PV asked of a mount: the driver mounts read-only
    only when the PV says `readOnly` and passes only the PV's `mountOptions` (aws-ebs-csi-driver
    pkg/driver/node.go NodePublishVolume, collectMountOptions; kube/node_stage.py), so a PV that
    dropped them serves a read-only volume writable, without the options the owner chose."""
    found = []
    for namespace, pod, volume, mounted in sim.world.mounts_of_running_pods():
        said = sim.world.disk_facts(volume)
        lost = [option for option in said.mount_options if option not in mounted.flags]
        if said.read_only and not mounted.read_only:
            lost.insert(0, "readOnly")
        if lost:
            found.append(
                Violation(
                    MOUNTED_AS_SAID,
                    f"{where}: pod {namespace}/{pod} mounts {volume} without {', '.join(lost)} "
                    f"(mounted with: {', '.join(mounted.flags) or 'no options'})",
                )
            )
    return found


def pvs_in_volume_zones(sim: Simulated, *, where: str) -> list[Violation]:
    """A PV's nodeAffinity (or an in-tree PV's aws://<zone>/ volume ID) is where the scheduler
    puts its pods (kubernetes pkg/scheduler/framework/plugins/volumebinding, VolumeZone), and EC2
    attaches a volume only to an instance in its own zone (AttachVolume: InvalidVolume.ZoneMismatch):
    a PV naming another zone leaves every pod of its claim Pending or failing to attach."""
    reader = _pv_reader(sim)
    found = []
    for pv in sim.world.kube.view("PersistentVolume"):
        facts = reader.facts(pv)
        volume, zones = facts.volume, facts.zones
        if volume is None or zones is None or not sim.world.ebs.exists(volume):
            continue
        actual = reader.zone(sim, volume)
        if actual not in zones:
            found.append(
                Violation(
                    PV_IN_VOLUME_ZONE,
                    f"{where}: PV {pv['metadata']['name']} pins pods to {', '.join(sorted(zones))}, "
                    f"but its volume {volume} is in {actual}",
                )
            )
    return found


# The EBS actions the driver does on a volume it serves, and on a snapshot it restores from or
# deletes (aws-ebs-csi-driver pkg/cloud/cloud.go; the managed policies' statements).
DRIVER_VOLUME_ACTIONS = ("AttachVolume", "DetachVolume", "ModifyVolume", "DeleteVolume", "CreateSnapshot")
DRIVER_SNAPSHOT_ACTIONS = ("CreateVolumeFromSnapshot", "DeleteSnapshot")
MANAGED_POLICIES = ("v1", "v2")


def _refused_to_driver(actions: tuple[str, ...], tags: dict[str, str]) -> list[str]:
    """`<action> (<policy>)` for each action either managed policy refuses on these tags."""
    from gp3migrate.sim.ebs import driver_policy_allows

    return [
        f"{action} ({policy})"
        for policy in MANAGED_POLICIES
        for action in actions
        if not driver_policy_allows(policy, action, tags)
    ]


def driver_can_manage(sim: Simulated, config: dict[str, Any]) -> list[Violation]:
    """What the migration hands the driver, the driver may act on under AmazonEBSCSIDriverPolicy and
    AmazonEBSCSIDriverPolicyV2 alike (their resource-tag conditions, sim/ebs.py
    driver_policy_allows; shared/fixtures/aws-ebs-csi-driver-2.64.0): a rehomed or modified source
    volume (served by the driver through a CSI or migrated PV from precopy on), and every snapshot
    the stack holds (restored by the driver, and deleted by it through a Delete content; DESIGN
    invariant 4). The policy the world's driver runs with may be the laxer one; the promise is to
    work under either, so both are checked."""
    ebs = sim.world.ebs
    found = []
    for raw, entry in zip(config.get("migrations") or [], parsed_entries(config), strict=True):
        if entry is None or entry.strategy == "copy":
            continue
        volume = str(raw["volumeId"])
        if not ebs.exists(volume):
            continue
        tags = ebs.tags(volume)
        refused = _refused_to_driver(DRIVER_VOLUME_ACTIONS, tags)
        if refused:
            found.append(
                Violation(
                    DRIVER_CAN_MANAGE,
                    f"{entry.namespace}/{entry.claim} ({entry.strategy}, phase {entry.phase}): volume {volume} "
                    f"refuses the driver {', '.join(refused)}; its tags: {', '.join(sorted(tags)) or 'none'}",
                )
            )
    for resource in sim.checkpoint.resources:
        if resource.type != "aws:ebs/snapshot:Snapshot" or not ebs.snapshot_exists(resource.id):
            continue
        tags = ebs.snapshot_tags(resource.id)
        refused = _refused_to_driver(DRIVER_SNAPSHOT_ACTIONS, tags)
        if refused:
            found.append(
                Violation(
                    DRIVER_CAN_MANAGE,
                    f"snapshot {resource.id} ({resource.name}) refuses the driver {', '.join(refused)}; "
                    f"its tags: {', '.join(sorted(tags)) or 'none'}",
                )
            )
    return found


def own_filesystems(sim: Simulated, *, where: str) -> list[Violation]:
    """A filesystem PV names the filesystem its volume holds: node staging formats only a blank
    device and mounts an existing one as the PV says (mount-utils formatAndMount), so another
    fsType fails the mount, or, for a volume the CSI PV was made for, formats nothing and loses it."""
    reader = _pv_reader(sim)
    found = []
    for pv in sim.world.kube.view("PersistentVolume"):
        facts = reader.facts(pv)
        if not facts.filesystem_mode:
            continue
        volume = facts.volume
        held = sim.world.ebs.filesystem.get(volume) if volume else None
        if held is None or not sim.world.ebs.exists(str(volume)):
            continue
        if facts.fs_type != held:
            found.append(
                Violation(
                    OWN_FILESYSTEM,
                    f"{where}: PV {pv['metadata']['name']} mounts {volume} as {facts.fs_type}, but it holds {held}",
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


class WritesByVolume:
    """The world's writes by volume, in the order they were made: kept up to date from the writes
    since the last look, so checking every claim's lineage does not read every write per claim
    (which made each phase's check grow with the square of the fleet)."""

    def __init__(self) -> None:
        self.by_volume: dict[str, list[tuple[int, str]]] = {}
        self.seen = 0

    def records(self, world: World, volumes: set[str]) -> list[str]:
        writes = world.writes
        if len(writes) < self.seen:
            self.by_volume, self.seen = {}, 0
        for number, write in enumerate(writes[self.seen :], self.seen):
            self.by_volume.setdefault(write.volume_id, []).append((number, write.record))
        self.seen = len(writes)
        return [record for _, record in heapq.merge(*(self.by_volume.get(v, []) for v in sorted(volumes)))]


_WRITES_BY_VOLUME: weakref.WeakKeyDictionary[Any, WritesByVolume] = weakref.WeakKeyDictionary()


def _writes_to(sim: Simulated, volumes: set[str]) -> list[str]:
    """The records written to any of `volumes`, in the order they were written."""
    return _WRITES_BY_VOLUME.setdefault(sim.world, WritesByVolume()).records(sim.world, volumes)


def writes_kept(sim: Simulated, namespace: str, claims: list[str]) -> list[Violation]:
    """Every record written to the volume a claim is bound to, or to its ancestors, is on it."""
    found = []
    for claim in claims:
        volume = sim.world.claim_volume(namespace, claim)
        if volume is None:
            continue
        lineage = set(_ancestors(sim, volume))
        expected = _writes_to(sim, lineage)
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


class RecordCount:
    """How many volumes and snapshots hold each record, kept up to date from what changed since the
    last look, so `only_copies_kept` after every step costs what the step changed, not every record
    ever written (which made each step's check grow with the run, and the run quadratic).

    A volume's or snapshot's records change only by appends (a pod's write), and go only with the
    volume or snapshot (EBS model: restores and snapshots copy a list, deletes drop it): a list seen
    before is counted from where it was left; one gone or replaced is uncounted as it was counted.
    Anything else (a list that shrank, writes that shrank) counts everything again from nothing."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.count: dict[str, int] = {}
        # ("volume" | "snapshot", id) -> (the list, how much of it is counted)
        self.seen: dict[tuple[str, str], tuple[list[str], int]] = {}
        self.written: set[str] = set()
        self.writes_seen = 0
        # Records written whose count fell to (or stayed at) zero: lost unless held again.
        self.zero: set[str] = set()

    def lost(self, world: World) -> set[str]:
        if not self._update(world):
            self._reset()
            self._update(world)
        return {r for r in self.zero if r in self.written and not self.count.get(r)}

    def _update(self, world: World) -> bool:
        ebs = world.ebs
        current: dict[tuple[str, str], list[str]] = {("volume", k): v for k, v in ebs.content.items()}
        current |= {("snapshot", k): v for k, v in ebs.snapshot_content.items()}
        count, zero = self.count, self.zero
        for key, (records, counted) in list(self.seen.items()):
            now = current.get(key)
            if len(records) < counted:
                return False
            if now is records:
                continue
            for record in records[:counted]:
                count[record] -= 1
                if not count[record]:
                    zero.add(record)
            del self.seen[key]
        for key, records in current.items():
            before = self.seen.get(key)
            for record in records[before[1] if before is not None else 0 :]:
                count[record] = count.get(record, 0) + 1
            self.seen[key] = (records, len(records))
        writes = world.writes
        if len(writes) < self.writes_seen:
            return False
        for write in writes[self.writes_seen :]:
            self.written.add(write.record)
            if not count.get(write.record):
                zero.add(write.record)
        self.writes_seen = len(writes)
        return True


_RECORD_COUNTS: weakref.WeakKeyDictionary[Any, RecordCount] = weakref.WeakKeyDictionary()


def only_copies_kept(sim: Simulated, *, where: str) -> list[Violation]:
    """Every record written is still on some volume or snapshot (counted incrementally: RecordCount)."""
    tracker = _RECORD_COUNTS.setdefault(sim.world.ebs, RecordCount())
    lost = tracker.lost(sim.world)
    if not lost:
        return []
    return [Violation(NO_ONLY_COPY_DELETED, f"{where}: {len(lost)} records are on no volume or snapshot any more")]


def only_copies_kept_from_scratch(sim: Simulated) -> set[str]:
    """The same question asked of every record at once: what RecordCount must agree with."""
    return {w.record for w in sim.world.writes} - sim.world.ebs.all_records()


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
    found += pvs_in_volume_zones(sim, where="after the phase")
    found += mounted_as_said(sim, where="after the phase")
    found += driver_can_manage(sim, config)
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
    # Snapshots of entries before finalize: protected in the state until finalize unprotects them
    # (DESIGN invariant 2), whatever the state says now.
    protected_snapshots: frozenset[str] = frozenset()


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
    before_finalize = [
        f"{entry.resource_name}-"
        for entry in parsed_entries(config)
        if entry is not None and entry.phase in ("precopy", "cutover", "rollback")
    ]
    protected = {
        s for s, name in in_state.items() if s in ebs.snapshot_content and name.startswith(tuple(before_finalize))
    }
    claims = tuple((ns, c) for ns, names in sorted(claims_in_use(config).items()) for c in names)
    return Holdings(frozenset(ebs.content), frozenset(kept), claims, frozenset(protected - kept))


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
    found += [
        Violation(KEPT_WHEN_LET_GO, f"after {what}: snapshot {s} (protected until finalize) is gone")
        for s in sorted(before.protected_snapshots)
        if s not in ebs.snapshot_content
    ]
    for namespace, claim in before.claims:
        if sim.world.claim_volume(namespace, claim) is None:
            found.append(Violation(KEPT_WHEN_LET_GO, f"after {what}: claim {namespace}/{claim} is gone or unbound"))
            continue
        found_claim = sim.world.kube.peek("PersistentVolumeClaim", namespace, claim)
        if found_claim is not None and _is_deleting(found_claim):
            # Held only by kubernetes.io/pvc-protection while a pod uses it: gone once the pod stops.
            found.append(Violation(KEPT_WHEN_LET_GO, f"after {what}: claim {namespace}/{claim} is being deleted"))
            continue
        lost = writes_kept(sim, namespace, [claim])
        found += [Violation(KEPT_WHEN_LET_GO, f"after {what}: {v.detail}") for v in lost]
    return found


def _not_a_copy_of(sim: Simulated, namespace: str, claim: str, source: str) -> str | None:
    """Why the claim is not (yet) served by a volume restored from `source`; None when it is."""
    volume = sim.world.claim_volume(namespace, claim)
    if volume is None:
        return f"{namespace}/{claim} is not bound"
    if source not in _ancestors(sim, volume):
        return f"{namespace}/{claim} is bound to {volume}, which was not restored from {source}"
    return None


def source_deletions(config: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Resource name of the step that hands a copy's source to deletion (finalize with
    `deleteSource`: its Retain patch turns Delete) -> (namespace, the restored claim, the source
    volume). Read once per `up`."""
    out: dict[str, tuple[str, str, str]] = {}
    for raw, entry in zip(config.get("migrations") or [], parsed_entries(config), strict=True):
        if entry is not None and entry.strategy == "copy" and entry.phase == "finalize" and entry.delete_source:
            out[f"{entry.resource_name}-retain"] = (entry.namespace, entry.target_claim_name, str(raw["volumeId"]))
    return out


def before_source_let_go(sim: Simulated, watched: dict[str, tuple[str, str, str]], step: Step) -> list[Violation]:
    """As the step that sets the source PV to Delete starts (the PV controller then deletes the
    released PV's volume: pv_controller.go reclaimVolume), the copy is in use: the restored claim
    is bound to a volume restored from the source and that volume is attached to a node (DESIGN
    invariant 2: the old volume goes only after the new claim is verified). `watched` is
    `source_deletions(config)`."""
    target = watched.get(step.name)
    if target is None or step.op not in ("create", "update", "replace"):
        return []
    namespace, claim, source = target
    why = _not_a_copy_of(sim, namespace, claim, source)
    volume = sim.world.claim_volume(namespace, claim)
    if why is None and volume is not None and not sim.world.ebs.attached_to(volume):
        why = f"{namespace}/{claim}'s volume {volume} is attached to no node"
    if why is None:
        return []
    return [Violation(SOURCE_KEPT_UNTIL_COPY_IN_USE, f"{step.op} {step.name} hands {source} to deletion while {why}")]


# What a copy restores through: deleting one of these before the restored claim is bound leaves
# the claim nothing to restore from (the external-provisioner reads the VolumeSnapshot and its
# content when it provisions: controller.go getSnapshotSource).
SNAPSHOT_TYPES = (
    "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshot",
    "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotContent",
    "aws:ebs/snapshot:Snapshot",
)


def restore_sources(config: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Resource-name prefix of each copy entry in finalize or cleanup (the phases that let go of
    its snapshots) -> (namespace, the restored claim, the source volume). Read once per `up`."""
    out: dict[str, tuple[str, str, str]] = {}
    for raw, entry in zip(config.get("migrations") or [], parsed_entries(config), strict=True):
        if entry is not None and entry.strategy == "copy" and entry.phase in ("finalize", "cleanup"):
            out[f"{entry.resource_name}-"] = (entry.namespace, entry.target_claim_name, str(raw["volumeId"]))
    return out


def before_restore_let_go(sim: Simulated, watched: dict[str, tuple[str, str, str]], step: Step) -> list[Violation]:
    """As a delete of a copy's VolumeSnapshot, content or EBS snapshot starts, the restored claim is
    bound to a volume restored from the source (DESIGN invariant 2: what the copy came from goes
    only after the new claim is verified; finalize's ClaimBound re-check exists for this).
    `watched` is `restore_sources(config)`."""
    if step.op != "delete" or step.type not in SNAPSHOT_TYPES:
        return []
    target = next((t for prefix, t in watched.items() if step.name.startswith(prefix)), None)
    if target is None:
        return []
    namespace, claim, source = target
    why = _not_a_copy_of(sim, namespace, claim, source)
    if why is None:
        return []
    return [Violation(RESTORE_KEPT_UNTIL_COPY_BOUND, f"delete {step.name} starts while {why}")]


class ClaimsWatch:
    """The claims bound to a volume as an `up` goes; a claim deleted (or being deleted) during it
    must be bound to a migration's source volume or to a volume restored from one. A claim with
    the same name bound to another volume is another claim: the migration's steps that delete
    claims re-check the PV it is bound to (gp3migrate/checks/preconditions.py release_claim)."""

    def __init__(self, sim: Simulated, configs: list[dict[str, Any]]):
        self.sim = sim
        self.sources = {str(e["volumeId"]) for c in configs for e in c.get("migrations") or [] if e.get("volumeId")}
        self.bound = self._bound()
        # When `bound` was read: with no change in the world since (World.fingerprint), every
        # claim is bound as it was and `check` has nothing to look at.
        self.read_at = sim.world.fingerprint()

    def _bound(self) -> dict[tuple[str, str, str], str]:
        """(namespace, name, uid) -> volume, for every claim bound and not being deleted."""
        from gp3migrate.sim import kube as k8s

        kube, reader = self.sim.world.kube, _pv_reader(self.sim)
        out = {}
        for claim in kube.view("PersistentVolumeClaim"):
            meta = claim["metadata"]
            if k8s.deleting(claim) or claim["status"].get("phase") != "Bound":
                continue
            # World.claim_volume, with the PV read through the reader (this runs after every step).
            pv = kube.peek("PersistentVolume", "", claim["spec"].get("volumeName", ""))
            volume = reader.facts(pv).volume if pv is not None else None
            if volume is not None:
                out[(meta["namespace"], meta["name"], meta["uid"])] = volume
        return out

    def check(self, *, where: str) -> list[Violation]:
        fingerprint = self.sim.world.fingerprint()
        if fingerprint == self.read_at:
            return []
        self.read_at = fingerprint
        now = self._bound()
        found = []
        for (namespace, name, uid), volume in sorted(self.bound.items()):
            if (namespace, name, uid) in now:
                continue
            still = self.sim.world.kube.peek("PersistentVolumeClaim", namespace, name)
            if still is not None and still["metadata"]["uid"] == uid and not _is_deleting(still):
                continue  # unbound, not deleted: not this check's
            if self.sources & set(_ancestors(self.sim, volume)):
                continue
            found.append(
                Violation(
                    ONLY_OWN_CLAIMS_DELETED,
                    f"{where}: claim {namespace}/{name} (uid {uid}) was deleted while bound to {volume}, "
                    "which no migration's source volume is or was restored from",
                )
            )
        self.bound = now
        return found


def _is_deleting(obj: dict[str, Any]) -> bool:
    return obj["metadata"].get("deletionTimestamp") is not None
