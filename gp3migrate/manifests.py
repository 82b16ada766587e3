"""The platform's Kubernetes objects and driver values as plain data (wire names, camelCase).

The same dicts are validated by the tests against the Kubernetes schemas, the snapshot CRDs and the
chart's values.schema.json, and handed to the resources in `components/`.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gp3migrate.config import Settings, StorageSettings
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
# every distinct set of them is its own class.

FSTYPE_PARAMETER = "csi.storage.k8s.io/fstype"
# Tier classes are named after what they fix, from a prefix of their own, so that renaming the
# main class (gp3ClassName) renames none of them.
TIER_CLASS_PREFIX = "gp3"
_DEFAULT_FS_TYPE = "ext4"
_KEY_DIGEST_LENGTH = 8
RECLAIM_POLICY = "Delete"
VOLUME_BINDING_MODE = "WaitForFirstConsumer"


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


@dataclass(frozen=True)
class ClassTiers:
    """What the fleet's restores need: one class per distinct set of parameters."""

    needed: frozenset[ClassParameters] = frozenset()


@dataclass(frozen=True)
class ClassSpec:
    """A StorageClass this program declares."""

    name: str
    default: bool
    fields: ClassFields


def class_specs(storage: StorageSettings, tiers: ClassTiers) -> tuple[ClassSpec, ...]:
    """The main class (default after gp2 is demoted), then one class per distinct set of
    parameters the restores need that the main class does not give, in a stable order."""
    main = main_class_parameters(storage)
    specs = [ClassSpec(storage.gp3_class_name, storage.demote_gp2, ClassFields.of(main))]
    for params in sorted(tiers.needed - {main}, key=ClassParameters.sort_key):
        specs.append(ClassSpec(tier_class_name(params), False, ClassFields.of(params)))
    return tuple(specs)


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
