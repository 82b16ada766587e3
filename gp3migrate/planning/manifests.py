"""The platform's Kubernetes objects and driver values as plain data (wire names, camelCase).

The same dicts are validated by the tests against the Kubernetes schemas, the snapshot CRDs and the
chart's values.schema.json, and handed to the resources in `components/`.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from gp3migrate.config.settings import Settings, StorageSettings
from gp3migrate.versions import CONTROLLER_SERVICE_ACCOUNT, CSI_DRIVER, DEFAULT_CLASS_ANNOTATION

RoleArn = TypeVar("RoleArn")

# Pulumi patches take over fields another manager (EKS, kubectl) owns only when forced
# (pulumi-kubernetes docs, "Server-side apply": the `pulumi.com/patchForce` annotation).
PATCH_FORCE = {"pulumi.com/patchForce": "true"}
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def helm_values(settings: Settings, role_arn: RoleArn | None) -> dict[str, Any]:
    """Values for chart aws-ebs-csi-driver; `role_arn` is set for IRSA, None for Pod Identity."""
    controller: dict[str, Any] = {
        # Tags every volume the driver creates with kubernetes.io/cluster/<name>=owned and the
        # cluster name (chart values.yaml), so they are attributable like the in-tree ones were.
        "k8sTagClusterId": settings.cluster.name,
        "extraVolumeTags": dict(settings.driver.extra_volume_tags),
    }
    if role_arn is not None:
        controller["serviceAccount"] = {
            "create": True,
            "name": CONTROLLER_SERVICE_ACCOUNT,
            "annotations": {IRSA_ANNOTATION: role_arn},
        }
    return {
        "controller": controller,
        # The csi-snapshotter sidecar renders only when the snapshot API exists at render time or
        # this is set (chart templates/controller.yaml); the CRDs are installed before the chart.
        "sidecars": {"snapshotter": {"forceEnable": True}},
        # Classes are this program's, not the chart's: one owner for each object.
        "defaultStorageClass": {"enabled": False},
        "storageClasses": [],
        "volumeSnapshotClasses": [],
    }


def addon_configuration(settings: Settings) -> str:
    """The add-on's configuration_values: the chart's keys as JSON, sorted so the diff is stable.

    The role is given to the add-on itself (service_account_role_arn or a pod identity
    association), not as a service account annotation.
    """
    values = helm_values(settings, None)
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


# --- StorageClasses ----------------------------------------------------------------------------
#
# A StorageClass's `parameters`, `provisioner`, `reclaimPolicy` and `volumeBindingMode` cannot be
# changed once created (kubernetes pkg/apis/storage/validation, ValidateStorageClassUpdate). So
# every distinct set of them is its own class, and a name, once applied, keeps the fields it was
# created with.

FSTYPE_PARAMETER = "csi.storage.k8s.io/fstype"
# Tier classes are named after what they fix, from a prefix of their own, so that renaming the
# main class (gp3ClassName) renames none of them.
TIER_CLASS_PREFIX = "gp3"
# A prefix match: `\Z`, since `$` also matches before a trailing newline.
_TIER_NAME = re.compile(rf"{TIER_CLASS_PREFIX}-\d+iops-\d+mibs(-|\Z)")
_DEFAULT_FS_TYPE = "ext4"
_KEY_DIGEST_LENGTH = 8
RECLAIM_POLICY = "Delete"
VOLUME_BINDING_MODE = "WaitForFirstConsumer"

ClassRole = Literal["main", "tier", "retired"]
CLASS_ROLES: tuple[ClassRole, ...] = ("main", "tier", "retired")


@dataclass(frozen=True)
class ClassParameters:
    """What a gp3 class fixes for every volume it provisions."""

    iops: int
    throughput: int  # MiB/s
    fs_type: str
    encrypted: bool
    # None: the driver names no key. A new volume then gets the account's default EBS key; a
    # volume restored from an encrypted snapshot keeps the snapshot's key (EC2 CreateVolume).
    kms_key_id: str | None = None

    def sort_key(self) -> tuple[int, int, str, bool, str]:
        return (self.iops, self.throughput, self.fs_type, self.encrypted, self.kms_key_id or "")


def main_class_parameters(storage: StorageSettings) -> ClassParameters:
    return ClassParameters(
        iops=storage.iops,
        throughput=storage.throughput,
        fs_type=storage.fs_type,
        encrypted=storage.encrypted,
        kms_key_id=storage.kms_key_id if storage.encrypted else None,
    )


def tier_class_name(params: ClassParameters) -> str:
    """`gp3-<iops>iops-<mibs>mibs[-<fsType>][-unencrypted | -enc-<key digest>]`: every field in
    the name, so a tier whose fields change is a new class. ext4 and encryption without a named
    key are the defaults and add nothing, which keeps the names earlier versions gave."""
    name = f"{TIER_CLASS_PREFIX}-{params.iops}iops-{params.throughput}mibs"
    if params.fs_type != _DEFAULT_FS_TYPE:
        name += f"-{params.fs_type}"
    if not params.encrypted:
        name += "-unencrypted"
    elif params.kms_key_id:
        name += "-enc-" + hashlib.sha256(params.kms_key_id.encode()).hexdigest()[:_KEY_DIGEST_LENGTH]
    return name


def has_tier_form(name: str) -> bool:
    return bool(_TIER_NAME.match(name))


def class_for(storage: StorageSettings, params: ClassParameters) -> str:
    """The class a restored claim names: the main gp3 class when it fixes exactly `params`."""
    if params == main_class_parameters(storage):
        return storage.gp3_class_name
    return tier_class_name(params)


@dataclass(frozen=True)
class ClassFields:
    """The fields of a StorageClass that cannot change after it is created."""

    parameters: tuple[tuple[str, str], ...]  # sorted
    provisioner: str = CSI_DRIVER
    reclaim_policy: str = RECLAIM_POLICY
    volume_binding_mode: str = VOLUME_BINDING_MODE

    @classmethod
    def of(cls, params: ClassParameters) -> "ClassFields":
        parameters = {
            "type": "gp3",
            FSTYPE_PARAMETER: params.fs_type,
            "encrypted": "true" if params.encrypted else "false",
            "iops": str(params.iops),
            "throughput": str(params.throughput),
        }
        if params.encrypted and params.kms_key_id:
            parameters["kmsKeyId"] = params.kms_key_id
        return cls(parameters=tuple(sorted(parameters.items())))

    def as_record(self) -> dict[str, Any]:
        return {
            "provisioner": self.provisioner,
            "parameters": dict(self.parameters),
            "reclaimPolicy": self.reclaim_policy,
            "volumeBindingMode": self.volume_binding_mode,
        }

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> "ClassFields | None":
        parameters, strings = raw.get("parameters"), (raw.get(k) for k in _RECORD_STRINGS)
        if not isinstance(parameters, Mapping) or not all(isinstance(v, str) for v in parameters.values()):
            return None
        provisioner, reclaim_policy, binding_mode = strings
        if not (isinstance(provisioner, str) and isinstance(reclaim_policy, str) and isinstance(binding_mode, str)):
            return None
        return cls(
            parameters=tuple(sorted((str(k), v) for k, v in parameters.items())),
            provisioner=provisioner,
            reclaim_policy=reclaim_policy,
            volume_binding_mode=binding_mode,
        )


_RECORD_STRINGS = ("provisioner", "reclaimPolicy", "volumeBindingMode")


@dataclass(frozen=True)
class AppliedClass:
    """A class as an earlier `up` left it (the `storageClassParameters` stack output)."""

    fields: ClassFields
    role: ClassRole
    # Declared by the last `up`; False once it left the program (kept in the cluster).
    declared: bool


@dataclass(frozen=True)
class ClassTiers:
    """What the fleet's restores need and what earlier `up`s applied: enough to decide every class."""

    needed: frozenset[ClassParameters] = frozenset()
    applied: Mapping[str, AppliedClass] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassSpec:
    """A StorageClass this program declares."""

    name: str
    role: ClassRole
    default: bool
    fields: ClassFields
    # Created by an earlier `up`, then left the program: still in the cluster (kept on delete),
    # so declaring it again adopts it instead of creating it (which would fail: AlreadyExists).
    adopt: bool = False


def class_specs(storage: StorageSettings, tiers: ClassTiers) -> tuple[ClassSpec, ...]:
    """Every class this run declares, in the order they are declared:

    - former main classes (`retired`): a rename of gp3ClassName leaves the old class in place
      (kept on delete) with its default annotation; it stays declared, non-default and with the
      fields it was created with, so that one default class remains and its claims keep working;
    - the main class (default after gp2 is demoted);
    - one class per distinct tier the restores need that the main class does not give.

    Two specs never share a name unless their fields agree (then one is kept); a clash is left
    in for gp3migrate.planning.class_changes to refuse.
    """
    main = main_class_parameters(storage)
    specs = [
        ClassSpec(name, "retired", False, applied.fields)
        for name, applied in sorted(tiers.applied.items())
        if applied.role in ("main", "retired") and name != storage.gp3_class_name
    ]
    specs.append(ClassSpec(storage.gp3_class_name, "main", storage.demote_gp2, ClassFields.of(main)))
    for params in sorted(tiers.needed - {main}, key=ClassParameters.sort_key):
        specs.append(ClassSpec(tier_class_name(params), "tier", False, ClassFields.of(params)))
    unique: list[ClassSpec] = []
    for spec in specs:
        if any(kept.name == spec.name and kept.fields == spec.fields for kept in unique):
            continue
        applied = tiers.applied.get(spec.name)
        unique.append(replace(spec, adopt=applied is not None and not applied.declared))
    return tuple(unique)


def storage_class(spec: ClassSpec) -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": spec.name,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true" if spec.default else "false"},
        },
        "provisioner": spec.fields.provisioner,
        "parameters": dict(spec.fields.parameters),
        # Delete is what the gp2 class had: reclaim of *new* volumes; migrated data is kept by the
        # migration's own Retain settings.
        "reclaimPolicy": spec.fields.reclaim_policy,
        # The pod's zone decides the volume's; EBS snapshots restore into any zone of the region.
        "volumeBindingMode": spec.fields.volume_binding_mode,
        "allowVolumeExpansion": True,
    }


def parse_applied_classes(raw: object) -> dict[str, AppliedClass]:
    """The `storageClassParameters` output of the last `up`; unreadable entries count as absent."""
    applied: dict[str, AppliedClass] = {}
    if not isinstance(raw, Mapping):
        return applied
    for name, value in raw.items():
        if not isinstance(value, Mapping) or value.get("role") not in CLASS_ROLES:
            continue
        fields = ClassFields.from_record(value)
        if fields is not None:
            applied[str(name)] = AppliedClass(fields, value["role"], bool(value.get("declared", True)))
    return applied


def class_record(specs: tuple[ClassSpec, ...], applied: Mapping[str, AppliedClass]) -> dict[str, Any]:
    """What this run publishes as `storageClassParameters`: every class the stack has applied,
    with its immutable fields, its role and whether this run declares it. Classes that left the
    program stay in the record: they stay in the cluster too."""
    record: dict[str, Any] = {
        name: {**earlier.fields.as_record(), "role": earlier.role, "declared": False}
        for name, earlier in applied.items()
    }
    for spec in specs:
        record[spec.name] = {**spec.fields.as_record(), "role": spec.role, "declared": True}
    return dict(sorted(record.items()))


def gp2_demotion_patch(storage: StorageSettings) -> dict[str, Any]:
    """Only the default-class annotation of the EKS-owned gp2 class; nothing else is touched."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": storage.gp2_class_name,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "false", **PATCH_FORCE},
        },
    }


def volume_snapshot_class(storage: StorageSettings) -> dict[str, Any]:
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": storage.snapshot_class_name},
        "driver": CSI_DRIVER,
        # For snapshots users take later through the CSI driver. The migration's pre-provisioned
        # contents carry their own deletionPolicy (Retain), which wins for them.
        "deletionPolicy": "Delete",
    }


def sorted_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(mapping.items()))
