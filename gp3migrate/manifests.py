"""The platform's Kubernetes objects and driver values as plain data (wire names, camelCase).

The same dicts are validated by the tests against the Kubernetes schemas, the snapshot CRDs and the
chart's values.schema.json, and handed to the resources in `components/`.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gp3migrate.config import Settings, StorageSettings
from gp3migrate.sizing import Performance
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


@dataclass(frozen=True)
class ClassSpec:
    """A StorageClass this program owns: its name, whether it is the default, and its performance."""

    name: str
    default: bool
    performance: Performance


def tier_class_name(storage: StorageSettings, perf: Performance) -> str:
    return f"{storage.gp3_class_name}-{perf.iops}iops-{perf.throughput}mibs"


def class_for(storage: StorageSettings, perf: Performance) -> str:
    """The class a restored claim names: the main gp3 class when it already gives `perf`."""
    if perf == Performance(storage.iops, storage.throughput):
        return storage.gp3_class_name
    return tier_class_name(storage, perf)


def class_specs(storage: StorageSettings, tiers: set[Performance] | frozenset[Performance]) -> tuple[ClassSpec, ...]:
    """The main gp3 class, then one class per distinct performance tier, in a stable order."""
    main = Performance(storage.iops, storage.throughput)
    specs = [ClassSpec(storage.gp3_class_name, storage.demote_gp2, main)]
    for perf in sorted(tiers - {main}, key=lambda p: (p.iops, p.throughput)):
        specs.append(ClassSpec(tier_class_name(storage, perf), False, perf))
    return tuple(specs)


def storage_class(storage: StorageSettings, spec: ClassSpec) -> dict[str, Any]:
    parameters = {
        "type": "gp3",
        "csi.storage.k8s.io/fstype": storage.fs_type,
        "encrypted": "true" if storage.encrypted else "false",
        "iops": str(spec.performance.iops),
        "throughput": str(spec.performance.throughput),
    }
    if storage.kms_key_id:
        parameters["kmsKeyId"] = storage.kms_key_id
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": spec.name,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true" if spec.default else "false"},
        },
        "provisioner": CSI_DRIVER,
        "parameters": dict(sorted(parameters.items())),
        # Delete is what the gp2 class had: reclaim of *new* volumes; migrated data is kept by the
        # migration's own Retain settings.
        "reclaimPolicy": "Delete",
        # The pod's zone decides the volume's; EBS snapshots restore into any zone of the region.
        "volumeBindingMode": "WaitForFirstConsumer",
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
