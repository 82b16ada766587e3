"""Per-volume migration plan: gp3 performance, the class that gives it, the price, object names.

Pure and deterministic: the same settings give the same plan, names included (DESIGN invariant 8).
"""

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gp3migrate.config import Settings, StorageSettings
from gp3migrate.manifests import ClassParameters, ClassTiers, class_for, parse_applied_classes
from gp3migrate.migration_entry import MigrationSettings
from gp3migrate.prices import MonthlyCost, monthly_cost
from gp3migrate.sizing import Performance, plan_gp3

_K8S_NAME_MAX = 253
# The stack output that records the classes the stack applied (components/storage_classes.py).
CLASS_RECORD_OUTPUT = "storageClassParameters"


def k8s_name(base: str, suffix: str) -> str:
    """`<base><suffix>`, shortened with a digest of the full name when over 253 characters."""
    name = f"{base}{suffix}"
    if len(name) <= _K8S_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    keep = _K8S_NAME_MAX - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-.')}-{digest}{suffix}"


def snapshot_create_timeout_minutes(size_gib: int) -> int:
    """Generous: the first EBS snapshot copies every written block. 30 minutes plus one per
    2 GiB (pulumi-aws waits 10 minutes by default, too short for large volumes)."""
    return 30 + math.ceil(size_gib / 2)


@dataclass(frozen=True)
class MigrationPlan:
    entry: MigrationSettings
    performance: Performance
    storage_class: str
    cost: MonthlyCost | None
    snapshot_timeout_minutes: int
    content_name: str  # VolumeSnapshotContent (cluster-scoped)
    snapshot_name: str  # VolumeSnapshot, in the claim's namespace


def restore_class_parameters(
    entry: MigrationSettings, performance: Performance, storage: StorageSettings
) -> ClassParameters:
    """What the class a volume restores into must fix: the planned performance, and what the
    restored data already is.

    - fsType: node staging formats only a blank device (mount-utils FormatAndMount), so a
      restored xfs volume in an ext4 class fails to mount. Block volumes have no filesystem: the
      main class's fsType is as good as any.
    - encryption: a volume restored from an encrypted snapshot keeps the snapshot's key unless
      CreateVolume names another (EC2 CreateVolume KmsKeyId; the driver passes the class's
      `kmsKeyId`). The class names the source's own key, so a restore never re-encrypts data
      under a key its owners did not choose; gp3KmsKeyId is for new volumes. An unencrypted
      source gets the stack's encryption for new volumes (gp3Encrypted, gp3KmsKeyId).
    """
    fs_type = entry.fs_type if entry.volume_mode == "Filesystem" else storage.fs_type
    if entry.encrypted:
        encrypted, key = True, entry.kms_key_id
    else:
        encrypted, key = storage.encrypted, storage.kms_key_id if storage.encrypted else None
    return ClassParameters(performance.iops, performance.throughput, fs_type, encrypted, key)


def plan_migration(entry: MigrationSettings, settings: Settings) -> MigrationPlan:
    measured = Performance(entry.iops or 0, entry.throughput or 0)
    performance = plan_gp3(entry.size_gib, settings.gp3_limits, at_least=measured)
    return MigrationPlan(
        entry=entry,
        performance=performance,
        storage_class=class_for(settings.storage, restore_class_parameters(entry, performance, settings.storage)),
        cost=monthly_cost(settings.cluster.region, entry.size_gib, performance),
        snapshot_timeout_minutes=snapshot_create_timeout_minutes(entry.size_gib),
        content_name=k8s_name(f"{entry.namespace}-{entry.claim}", "-gp3-restore"),
        snapshot_name=k8s_name(entry.claim, "-gp3-restore"),
    )


def plan_all(settings: Settings) -> tuple[MigrationPlan, ...]:
    return tuple(plan_migration(entry, settings) for entry in settings.migrations)


def tiers(
    plans: tuple[MigrationPlan, ...], storage: StorageSettings, previous_outputs: Mapping[str, Any]
) -> ClassTiers:
    """The distinct classes the fleet's restores need (one per set of parameters, however many
    volumes share it) and the classes earlier `up`s applied."""
    needed = frozenset(restore_class_parameters(plan.entry, plan.performance, storage) for plan in plans)
    return ClassTiers(needed=needed, applied=parse_applied_classes(previous_outputs.get(CLASS_RECORD_OUTPUT)))


def fleet_monthly_saving(plans: tuple[MigrationPlan, ...]) -> float | None:
    """Sum of gp2 minus gp3 monthly prices; None when any region price is unknown."""
    if any(plan.cost is None for plan in plans):
        return None
    return round(sum(plan.cost.saving for plan in plans if plan.cost is not None), 4)
