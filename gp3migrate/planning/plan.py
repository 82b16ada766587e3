"""Per-volume migration plan: gp3 performance, the class that gives it, the price, object names.

Pure and deterministic: the same settings give the same plan, names included (DESIGN invariant 8).
"""

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gp3migrate.config.migration_entry import MigrationSettings
from gp3migrate.config.settings import Settings, StorageSettings
from gp3migrate.planning.manifests import ClassParameters, ClassTiers, class_for, parse_applied_classes
from gp3migrate.volume_types.prices import MonthlyCost, monthly_cost
from gp3migrate.volume_types.sizing import PERFORMANCE_POLICIES, Performance, PerformancePolicy, plan_gp3

_K8S_NAME_MAX = 253
# Stack outputs this module reads back: each migration's outputs (components/volume_migration.py,
# exported by __main__.py) and the classes the stack applied (components/storage_classes.py).
MIGRATIONS_OUTPUT = "migrations"
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
    # What `performance` matches of gp2: the entry's `performance`, else the stack's.
    performance_policy: PerformancePolicy
    storage_class: str
    cost: MonthlyCost | None
    snapshot_timeout_minutes: int


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


def claim_classes(previous_outputs: Mapping[str, Any]) -> dict[str, str]:
    """Migration key -> the class its gp3 claim names, for migrations the last `up` took past
    precopy (cutover and later; a rollback may keep the gp3 claim).

    A claim's storageClassName cannot change (kubernetes pkg/apis/core/validation,
    ValidatePersistentVolumeClaimUpdate: the spec is immutable but for its requests), so a new
    class would make Pulumi replace the claim that holds the data. Such a migration keeps its
    class whatever the config now computes; only a new restore (rollback, precopy, cutover)
    moves it.
    """
    raw = previous_outputs.get(MIGRATIONS_OUTPUT)
    kept: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        return kept
    for key, outputs in raw.items():
        if not isinstance(outputs, Mapping):
            continue
        phase, storage_class = outputs.get("phase"), outputs.get("storageClass")
        if isinstance(phase, str) and phase != "precopy" and isinstance(storage_class, str) and storage_class:
            kept[str(key)] = storage_class
    return kept


def performance_policy(entry: MigrationSettings, settings: Settings) -> PerformancePolicy:
    return entry.performance or settings.performance


def planned_performance(entry: MigrationSettings, settings: Settings, policy: PerformancePolicy) -> Performance:
    """gp3 settings for the volume under `policy`, never below what describe-volumes reported it
    provisioned (a measured floor applies under either policy)."""
    measured = Performance(entry.iops or 0, entry.throughput or 0)
    return plan_gp3(entry.size_gib, settings.gp3_limits, policy=policy, at_least=measured)


def policy_costs(entry: MigrationSettings, settings: Settings) -> dict[PerformancePolicy, MonthlyCost | None]:
    """The monthly price under each policy, so that the choice between them is an informed one."""
    return {
        policy: monthly_cost(settings.cluster.region, entry.size_gib, planned_performance(entry, settings, policy))
        for policy in PERFORMANCE_POLICIES
    }


def plan_migration(entry: MigrationSettings, settings: Settings, claim_class: str | None = None) -> MigrationPlan:
    """`claim_class`: the class an existing gp3 claim of this migration names (see claim_classes)."""
    policy = performance_policy(entry, settings)
    performance = planned_performance(entry, settings, policy)
    computed = class_for(settings.storage, restore_class_parameters(entry, performance, settings.storage))
    return MigrationPlan(
        entry=entry,
        performance=performance,
        performance_policy=policy,
        storage_class=claim_class or computed,
        cost=monthly_cost(settings.cluster.region, entry.size_gib, performance),
        snapshot_timeout_minutes=snapshot_create_timeout_minutes(entry.size_gib),
    )


def plan_all(settings: Settings, previous_outputs: Mapping[str, Any] | None = None) -> tuple[MigrationPlan, ...]:
    kept = claim_classes(previous_outputs or {})
    return tuple(plan_migration(entry, settings, kept.get(entry.key)) for entry in settings.migrations)


def moved_classes(plans: tuple[MigrationPlan, ...], storage: StorageSettings) -> dict[str, str]:
    """Migration key -> the class the config now computes, where it differs from the class the
    migration keeps because its claim already names it."""
    moved: dict[str, str] = {}
    for plan in plans:
        computed = class_for(storage, restore_class_parameters(plan.entry, plan.performance, storage))
        if computed != plan.storage_class:
            moved[plan.entry.key] = computed
    return moved


def tiers(
    plans: tuple[MigrationPlan, ...], storage: StorageSettings, previous_outputs: Mapping[str, Any]
) -> ClassTiers:
    """The distinct classes the fleet's restores need (one per set of parameters, however many
    volumes share it) and the classes earlier `up`s applied. A migration whose claim keeps an
    older class needs no new one."""
    moved = moved_classes(plans, storage)
    needed = frozenset(
        restore_class_parameters(plan.entry, plan.performance, storage) for plan in plans if plan.entry.key not in moved
    )
    return ClassTiers(needed=needed, applied=parse_applied_classes(previous_outputs.get(CLASS_RECORD_OUTPUT)))


def fleet_monthly_saving(plans: tuple[MigrationPlan, ...]) -> float | None:
    """Sum of gp2 minus gp3 monthly prices; None when any region price is unknown."""
    if any(plan.cost is None for plan in plans):
        return None
    return round(sum(plan.cost.saving for plan in plans if plan.cost is not None), 4)
