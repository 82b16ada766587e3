"""One `migrations[]` entry of the stack config: the facts discovery recorded about a volume.

The stack config is the only source of the set of volumes to migrate (DESIGN invariant 1): the
program never asks the cluster which volumes exist, so a volume that vanishes from a query can never
become a planned delete.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gp3migrate import naming
from gp3migrate.config.phases import CLAIM_NAMINGS, PHASES, QUIESCES, ClaimNaming, Phase, Quiesce
from gp3migrate.config.problems import (
    Problems,
    parse_bool,
    parse_choice,
    parse_int,
    parse_str,
    show,
    unknown_keys,
)
from gp3migrate.volume_types.sizing import GP2_MAX_SIZE_GIB, PERFORMANCE_POLICIES, PerformancePolicy

AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany", "ReadWriteMany"]
VolumeMode = Literal["Filesystem", "Block"]
WorkloadKind = Literal["Deployment", "StatefulSet"]
Strategy = Literal["rehome", "modify", "copy"]
ReclaimPolicy = Literal["Retain", "Delete"]

# EBS volumes attach to one node: ReadWriteMany is not possible with ebs.csi.aws.com (driver README).
ACCESS_MODES: tuple[AccessMode, ...] = ("ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany")
VOLUME_MODES: tuple[VolumeMode, ...] = ("Filesystem", "Block")
WORKLOAD_KINDS: tuple[WorkloadKind, ...] = ("Deployment", "StatefulSet")
STRATEGIES: tuple[Strategy, ...] = ("rehome", "modify", "copy")
RECLAIM_POLICIES: tuple[ReclaimPolicy, ...] = ("Retain", "Delete")
# Elastic Volumes cannot change a previous-generation magnetic volume (EBS user guide, "Requirements
# for EBS volume modifications"): only a copy moves it.
NOT_MODIFIABLE_TYPES = ("standard",)
SOURCE_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
FS_TYPES = ("ext4", "xfs", "ext3", "ext2")
NEW_CLAIM_SUFFIX = "-gp3"

# The keys discovery owns: what it found on the cluster. A re-run refreshes them (before a
# cutover); every other key belongs to the user (gp3migrate/discovery/merge.py).
FACT_KEYS = (
    "namespace",
    "claim",
    "pv",
    "volumeId",
    "zone",
    "sizeGiB",
    "fsType",
    "accessModes",
    "volumeMode",
    "volumeType",
    "iops",
    "throughput",
    "encrypted",
    "kmsKeyId",
    "pvStorageClass",
    "pvCapacity",
    "workload",
)
ENTRY_KEYS = (
    *FACT_KEYS,
    "newClaimName",
    "phase",
    "claimNaming",
    "quiesce",
    "keepSnapshots",
    "deleteSource",
    "deleteRestoredClaim",
    "strategy",
    "encrypt",
    "safetySnapshot",
    "finalReclaimPolicy",
    "performance",
)
WORKLOAD_KEYS = ("kind", "name", "replicas", "templateStorageClass", "owner")
OWNER_KEYS = ("apiVersion", "kind", "name")
# A Kubernetes quantity as a PV's spec.capacity.storage holds it: 1Gi, 500Mi, 10G, 1073741824, 1e9.
_QUANTITY = re.compile(r"^\d+(\.\d+)?([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


@dataclass(frozen=True, kw_only=True)
class WorkloadOwner:
    """The controller of a Deployment or StatefulSet (an operator's custom resource): it resets
    replicas, so the program must not scale the workload itself."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Workload:
    """What mounts the claim, as discovery found it; replicas is what scale-back restores."""

    kind: WorkloadKind
    name: str
    replicas: int
    # For a StatefulSet: the class its volumeClaimTemplates name (new replicas get that class).
    template_storage_class: str | None = None
    owner: WorkloadOwner | None = None


@dataclass(frozen=True, kw_only=True)
class MigrationSettings:
    namespace: str
    claim: str
    pv: str
    volume_id: str
    zone: str
    size_gib: int
    fs_type: str = "ext4"
    access_modes: tuple[AccessMode, ...] = ("ReadWriteOnce",)
    volume_mode: VolumeMode = "Filesystem"
    volume_type: str = "gp2"
    # Provisioned performance as describe-volumes reported it; the plan never goes below it.
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    # The source PV's class ("" for a static PV without one) and capacity as written ("1Gi"):
    # what a rollback re-creates and what a restored claim must request at least.
    pv_storage_class: str | None = None
    pv_capacity: str | None = None
    workload: Workload | None = None
    new_claim_name: str = ""
    phase: Phase = "precopy"
    claim_naming: ClaimNaming = "rename"
    quiesce: Quiesce = "manual"
    keep_snapshots: bool = False
    # Opt-ins that remove data: the source volume (finalize), the restored claim (rollback).
    delete_source: bool = False
    delete_restored_claim: bool = False
    # How the volume becomes gp3 (gp3migrate/planning/strategies/): in place and re-homed under CSI
    # (rehome), in place only (modify), or copied through snapshots (copy).
    strategy: Strategy = "copy"
    # Why the strategy was chosen, when the program chose it (shown in preview).
    strategy_reason: str = ""
    # Ask for encryption of an unencrypted source: only a copy can do that.
    encrypt: bool = False
    # rehome: a snapshot before the volume is modified (protected until finalize).
    safety_snapshot: bool = True
    # rehome: the CSI PV's reclaim policy from finalize on (Delete: like a provisioned volume).
    final_reclaim_policy: ReclaimPolicy = "Retain"
    # This volume's performance policy; None: the stack's `performance`.
    performance: PerformancePolicy | None = None

    @property
    def target_claim_name(self) -> str:
        """The name the gp3 claim gets: the old one (same-name) or the new one (rename)."""
        return self.claim if self.claim_naming == "same-name" else self.new_claim_name

    @property
    def key(self) -> str:
        """The stable identity of a migration: `<namespace>/<claim>`."""
        return f"{self.namespace}/{self.claim}"

    @property
    def resource_name(self) -> str:
        """Pulumi resource name of the migration component; never changes for a claim."""
        return f"migrate-{self.namespace}-{self.claim}"


def parse_migrations(
    problems: Problems,
    raw: Any,
    *,
    region: str,
) -> tuple[MigrationSettings, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("migrations", f"{show(raw)} is not a list of migration entries")
        return ()
    indexed: list[tuple[int, MigrationSettings]] = []
    for index, item in enumerate(raw):
        entry = _parse_entry(problems, f"migrations[{index}]", item, region=region)
        if entry is not None:
            indexed.append((index, entry))
    _check_unique(problems, indexed)
    return tuple(entry for _, entry in indexed)


def _parse_entry(problems: Problems, where: str, item: Any, *, region: str) -> MigrationSettings | None:
    if not isinstance(item, dict):
        problems.add(where, f"{show(item)} is not a map")
        return None
    before = problems.count
    unknown_keys(problems, f"{where}.", item, ENTRY_KEYS)
    namespace = parse_str(
        problems,
        f"{where}.namespace",
        item.get("namespace"),
        required=True,
        check=naming.dns1123_label_problem,
        what="the claim's namespace",
    )
    claim = parse_str(
        problems,
        f"{where}.claim",
        item.get("claim"),
        required=True,
        check=naming.dns1123_subdomain_problem,
        what="the PersistentVolumeClaim name",
    )
    pv = parse_str(
        problems,
        f"{where}.pv",
        item.get("pv"),
        required=True,
        check=naming.dns1123_subdomain_problem,
        what="the bound PersistentVolume name",
    )
    volume_id = parse_str(
        problems,
        f"{where}.volumeId",
        item.get("volumeId"),
        required=True,
        check=naming.volume_id_problem,
        what="the EBS volume id, vol-...",
    )
    zone = parse_str(
        problems,
        f"{where}.zone",
        item.get("zone"),
        required=True,
        check=(lambda z: naming.zone_problem(z, region)) if region else None,
        what="the volume's availability zone",
    )
    if item.get("sizeGiB") is None:
        problems.add(f"{where}.sizeGiB", "is required (the source volume's size in GiB)")
    size = parse_int(problems, f"{where}.sizeGiB", item.get("sizeGiB"), 0, 1, GP2_MAX_SIZE_GIB)
    access_modes = _access_modes(problems, f"{where}.accessModes", item.get("accessModes"))
    new_claim_default = f"{claim}{NEW_CLAIM_SUFFIX}" if claim else ""
    new_claim = parse_str(
        problems,
        f"{where}.newClaimName",
        item.get("newClaimName"),
        check=naming.dns1123_subdomain_problem,
    )
    if new_claim is None and claim and naming.dns1123_subdomain_problem(new_claim_default):
        problems.add(
            f"{where}.newClaimName",
            f"the default {show(new_claim_default)} "
            f"{naming.dns1123_subdomain_problem(new_claim_default)}; set a shorter newClaimName",
        )
    if new_claim is not None and new_claim == claim:
        problems.add(f"{where}.newClaimName", f"{show(new_claim)} must differ from the claim it replaces")
    encrypted = parse_bool(problems, f"{where}.encrypted", item.get("encrypted"), False)
    workload = _workload(problems, f"{where}.workload", item.get("workload"))
    phase = parse_choice(problems, f"{where}.phase", item.get("phase"), "precopy", PHASES)
    claim_naming = parse_choice(problems, f"{where}.claimNaming", item.get("claimNaming"), "rename", CLAIM_NAMINGS)
    quiesce = parse_choice(
        problems, f"{where}.quiesce", item.get("quiesce"), "scale" if workload else "manual", QUIESCES
    )
    if quiesce == "scale" and workload is not None and workload.owner is not None:
        owner = workload.owner
        problems.add(
            f"{where}.quiesce",
            f"'scale' would fight {owner.kind} {owner.name} ({owner.api_version}), which controls "
            f"{workload.kind} {workload.name} and resets its replicas: use quiesce: manual and stop it "
            "through its operator",
        )
    delete_source = parse_bool(problems, f"{where}.deleteSource", item.get("deleteSource"), False)
    delete_restored = parse_bool(problems, f"{where}.deleteRestoredClaim", item.get("deleteRestoredClaim"), False)
    volume_type = parse_choice(problems, f"{where}.volumeType", item.get("volumeType"), "gp2", SOURCE_TYPES)
    encrypt = parse_bool(problems, f"{where}.encrypt", item.get("encrypt"), False)
    strategy, strategy_reason = _strategy(
        problems, where, item, volume_type=volume_type, encrypted=encrypted, encrypt=encrypt
    )
    if strategy != "copy":
        # The claim keeps its name: the same volume is served under it.
        claim_naming = "same-name"
    safety_snapshot = parse_bool(problems, f"{where}.safetySnapshot", item.get("safetySnapshot"), True)
    final_reclaim = parse_choice(
        problems, f"{where}.finalReclaimPolicy", item.get("finalReclaimPolicy"), "Retain", RECLAIM_POLICIES
    )
    _check_phase_options(
        problems,
        where,
        strategy=strategy,
        phase=phase,
        claim_naming=claim_naming,
        quiesce=quiesce,
        workload=workload,
        delete_source=delete_source,
        delete_restored=delete_restored,
    )
    entry = MigrationSettings(
        namespace=namespace or "",
        claim=claim or "",
        pv=pv or "",
        volume_id=volume_id or "",
        zone=zone or "",
        size_gib=size,
        fs_type=parse_choice(problems, f"{where}.fsType", item.get("fsType"), "ext4", FS_TYPES),
        access_modes=access_modes,
        volume_mode=parse_choice(problems, f"{where}.volumeMode", item.get("volumeMode"), "Filesystem", VOLUME_MODES),
        volume_type=volume_type,
        iops=_optional_int(problems, f"{where}.iops", item.get("iops"), 100, 256_000),
        throughput=_optional_int(problems, f"{where}.throughput", item.get("throughput"), 1, 4_000),
        encrypted=encrypted,
        kms_key_id=parse_str(problems, f"{where}.kmsKeyId", item.get("kmsKeyId"), check=naming.kms_key_arn_problem),
        pv_storage_class=_pv_storage_class(problems, f"{where}.pvStorageClass", item.get("pvStorageClass")),
        pv_capacity=parse_str(
            problems,
            f"{where}.pvCapacity",
            item.get("pvCapacity"),
            check=lambda v: None if _QUANTITY.match(v) else "is not a Kubernetes quantity such as 1Gi or 500Mi",
            what="the source PV's spec.capacity.storage, e.g. 1Gi",
        ),
        workload=workload,
        new_claim_name=new_claim or new_claim_default,
        phase=phase,
        claim_naming=claim_naming,
        quiesce=quiesce,
        keep_snapshots=parse_bool(problems, f"{where}.keepSnapshots", item.get("keepSnapshots"), False),
        delete_source=delete_source,
        delete_restored_claim=delete_restored,
        strategy=strategy,
        strategy_reason=strategy_reason,
        encrypt=encrypt,
        safety_snapshot=safety_snapshot,
        final_reclaim_policy=final_reclaim,
        performance=parse_choice(problems, f"{where}.performance", item.get("performance"), None, PERFORMANCE_POLICIES),
    )
    return entry if problems.count == before else None


# Keys that belong to one strategy only: set for another, they would be silently ignored.
_STRATEGY_KEYS: dict[str, tuple[Strategy, ...]] = {
    "claimNaming": ("copy",),
    "newClaimName": ("copy",),
    "deleteSource": ("copy",),
    "deleteRestoredClaim": ("copy",),
    "safetySnapshot": ("rehome",),
    "finalReclaimPolicy": ("rehome",),
}


def _strategy(
    problems: Problems, where: str, item: dict[str, Any], *, volume_type: str, encrypted: bool, encrypt: bool
) -> tuple[Strategy, str]:
    """The strategy asked for, or the program's choice with its reason: `rehome` unless the entry
    asks for what only a copy can do."""
    needs_copy = ""
    if encrypt and not encrypted:
        needs_copy = "encrypt: true on an unencrypted volume (EBS encrypts a volume only when it is created)"
    elif volume_type in NOT_MODIFIABLE_TYPES:
        needs_copy = f"volumeType {volume_type} cannot be modified in place (Elastic Volumes)"
    raw = item.get("strategy")
    if raw is None:
        strategy: Strategy = "copy" if needs_copy else "rehome"
        reason = f"copy: {needs_copy}" if needs_copy else "rehome: same zone and encryption, so no copy is needed"
    else:
        strategy = parse_choice(problems, f"{where}.strategy", raw, "rehome", STRATEGIES)
        reason = "asked for"
        if strategy != "copy" and needs_copy:
            problems.add(f"{where}.strategy", f"{show(strategy)} keeps the volume as it is, but {needs_copy}: use copy")
    for key, allowed in _STRATEGY_KEYS.items():
        if key in item and strategy not in allowed:
            problems.add(
                f"{where}.{key}",
                f"applies to strategy {' or '.join(allowed)} only; this entry's strategy is {strategy} ({reason})",
            )
    phase = item.get("phase", "precopy")
    if strategy == "modify" and phase != "precopy":
        problems.add(
            f"{where}.phase",
            f"{show(phase)}: strategy modify has one phase, precopy (the volume is gp3 once it is applied; "
            "the PV stays in-tree, so there is nothing to cut over or roll back)",
        )
    return strategy, reason


def _check_phase_options(
    problems: Problems,
    where: str,
    *,
    strategy: Strategy,
    phase: Phase,
    claim_naming: ClaimNaming,
    quiesce: Quiesce,
    workload: Workload | None,
    delete_source: bool,
    delete_restored: bool,
) -> None:
    """Option combinations that are unsafe whatever was applied before."""
    if quiesce == "none" and strategy != "modify" and (phase == "cutover" or claim_naming == "same-name"):
        problems.add(
            f"{where}.quiesce",
            (
                "'none' would release the claim while the app still writes to it"
                if strategy == "rehome"
                else "'none' would copy the volume while the app writes (writes after the snapshot are lost)"
            )
            + ": "
            "use quiesce: scale (with workload) or manual (you stop the app; the program still waits "
            "until AWS reports the volume detached)",
        )
    if quiesce == "scale" and workload is None:
        problems.add(f"{where}.quiesce", "'scale' needs migrations[].workload (kind, name, replicas) to scale")
    if delete_source and phase != "finalize":
        problems.add(
            f"{where}.deleteSource",
            f"true is only allowed in phase finalize (this entry is in {phase}); the source is the only "
            "copy until the gp3 claim is verified",
        )
    if delete_restored and phase != "rollback":
        problems.add(
            f"{where}.deleteRestoredClaim", f"true is only allowed in phase rollback (this entry is in {phase})"
        )


def _pv_storage_class(problems: Problems, key: str, raw: Any) -> str | None:
    """The source PV's class; "" is a recorded fact (a static PV without a class), not a gap."""
    if raw == "":
        return ""
    return parse_str(problems, key, raw, check=naming.dns1123_subdomain_problem, what="a StorageClass name or ''")


def _optional_int(problems: Problems, key: str, raw: Any, low: int, high: int) -> int | None:
    if raw is None:
        return None
    return parse_int(problems, key, raw, low, low, high)


def _access_modes(problems: Problems, key: str, raw: Any) -> tuple[AccessMode, ...]:
    if raw is None:
        return ("ReadWriteOnce",)
    if not isinstance(raw, list) or not raw:
        problems.add(key, f"{show(raw)} is not a non-empty list (allowed: {', '.join(ACCESS_MODES)})")
        return ("ReadWriteOnce",)
    modes = []
    for i, mode in enumerate(raw):
        if mode not in ACCESS_MODES:
            problems.add(f"{key}[{i}]", f"{show(mode)} is not one of {', '.join(ACCESS_MODES)}")
        else:
            modes.append(mode)
    return tuple(sorted(set(modes)))


def _workload(problems: Problems, key: str, raw: Any) -> Workload | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(key, f"{show(raw)} is not a map with kind, name and replicas")
        return None
    unknown_keys(problems, f"{key}.", raw, WORKLOAD_KEYS)
    kind = parse_choice(problems, f"{key}.kind", raw.get("kind"), "Deployment", WORKLOAD_KINDS)
    if raw.get("kind") is None:
        problems.add(f"{key}.kind", f"is required (one of {', '.join(WORKLOAD_KINDS)})")
    name = parse_str(problems, f"{key}.name", raw.get("name"), required=True, check=naming.dns1123_subdomain_problem)
    if raw.get("replicas") is None:
        problems.add(f"{key}.replicas", "is required (the replicas to restore after the cutover)")
    replicas = parse_int(problems, f"{key}.replicas", raw.get("replicas"), 1, 0, 10_000)
    template_class = parse_str(problems, f"{key}.templateStorageClass", raw.get("templateStorageClass"))
    return Workload(
        kind=kind,
        name=name or "",
        replicas=replicas,
        template_storage_class=template_class,
        owner=_workload_owner(problems, f"{key}.owner", raw.get("owner")),
    )


def _workload_owner(problems: Problems, key: str, raw: Any) -> WorkloadOwner | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(key, f"{show(raw)} is not a map with apiVersion, kind and name")
        return None
    unknown_keys(problems, f"{key}.", raw, OWNER_KEYS)
    values = {
        k: parse_str(problems, f"{key}.{k}", raw.get(k), required=True, what=f"the owner's {k}") for k in OWNER_KEYS
    }
    return WorkloadOwner(api_version=values["apiVersion"] or "", kind=values["kind"] or "", name=values["name"] or "")


def _check_unique(problems: Problems, indexed: Sequence[tuple[int, MigrationSettings]]) -> None:
    """Two entries for one claim, PV or volume would race on the same data."""
    first_use: dict[tuple[str, str], int] = {}
    for index, entry in indexed:
        uses = {
            ("claim", entry.key),
            ("pv", entry.pv),
            ("volumeId", entry.volume_id),
            # A new claim name must not be any entry's claim or new claim in the same namespace.
            ("claim", f"{entry.namespace}/{entry.new_claim_name}"),
            # Resource names join namespace and claim with '-': a/b-c and a-b/c would collide.
            ("claim", entry.resource_name),
        }
        for what, value in sorted(uses):
            other = first_use.setdefault((what, value), index)
            if other != index:
                problems.add(f"migrations[{index}].{what}", f"{show(value)} is also used by migrations[{other}]")
