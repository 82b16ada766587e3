"""Validation and defaults of the built-in kinds on every write (`pkg/apis/core/validation`,
`pkg/apis/storage/validation`, `pkg/apis/apps/validation`, `pkg/apis/*/v1/defaults.go`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from gp3migrate.sim.kube.fields import quantity
from gp3migrate.sim.kube.names import KubeError

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
VOLUME_SOURCES = ("awsElasticBlockStore", "csi", "hostPath", "local", "nfs")
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def invalid_error(kind: str, name: str, problem: str) -> KubeError:
    return KubeError("Invalid", f'{kind} "{name}" is invalid: {problem}')


def validate_metadata(obj: dict[str, Any]) -> None:
    """apimachinery ValidateObjectMeta: DNS-1123 names; label values of at most 63 characters."""
    kind, metadata = obj["kind"], obj["metadata"]
    name = metadata.get("name") or ""
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise invalid_error(kind, name, f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain')
    for key, value in sorted((metadata.get("labels") or {}).items()):
        if len(str(value)) > 63 or not _LABEL_VALUE.match(str(value)):
            raise invalid_error(
                kind, name, f'metadata.labels: Invalid value: "{value}": must be 63 characters or less ({key})'
            )


def validate_claim(claim: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidatePersistentVolumeClaimSpec and ValidatePersistentVolumeClaimUpdate."""
    name, spec = claim["metadata"]["name"], claim.get("spec") or {}
    modes = spec.get("accessModes") or []
    if not modes:
        raise invalid_error("PersistentVolumeClaim", name, "spec.accessModes: Required value: at least 1 access mode")
    if any(mode not in ACCESS_MODES for mode in modes):
        raise invalid_error("PersistentVolumeClaim", name, f"spec.accessModes: Unsupported value: {modes}")
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None or quantity(storage) <= 0:
        raise invalid_error("PersistentVolumeClaim", name, "spec.resources[storage]: Required value")
    if spec.get("volumeMode", "Filesystem") not in ("Filesystem", "Block"):
        raise invalid_error("PersistentVolumeClaim", name, f"spec.volumeMode: Unsupported value: {spec['volumeMode']}")
    source = spec.get("dataSource")
    if source is not None:
        if not source.get("name") or not source.get("kind"):
            raise invalid_error("PersistentVolumeClaim", name, "spec.dataSource: name and kind are required")
        if not source.get("apiGroup") and source["kind"] != "PersistentVolumeClaim":
            raise invalid_error(
                "PersistentVolumeClaim",
                name,
                f"spec.dataSource: Invalid value: {source['kind']}: must be 'PersistentVolumeClaim' when "
                "referencing the default apiGroup",
            )
    if old is None:
        return
    old_spec, new_spec = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(spec)
    if not old_spec.get("volumeName"):
        old_spec.pop("volumeName", None)  # volumeName may be set once (the PV controller binds)
        new_spec.pop("volumeName", None)
    if "storageClassName" not in old_spec:
        new_spec.pop("storageClassName", None)  # validateStorageClassUpgradeFromNil
    if (claim.get("status") or {}).get("phase") == "Bound":
        for each in (old_spec, new_spec):
            (each.get("resources") or {}).pop("requests", None)
    for each in (old_spec, new_spec):
        each.pop("volumeAttributesClassName", None)
    if old_spec != new_spec:
        raise invalid_error(
            "PersistentVolumeClaim",
            name,
            "spec: Forbidden: spec is immutable after creation except resources.requests and "
            "volumeAttributesClassName for bound claims",
        )
    old_storage = ((old.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    if old_storage is not None and quantity(storage) < quantity(old_storage):
        raise invalid_error(
            "PersistentVolumeClaim",
            name,
            "spec.resources.requests.storage: Forbidden: field can not be less than previous value",
        )


def validate_volume(volume: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidatePersistentVolumeSpec and ValidatePersistentVolumeUpdate."""
    name, spec = volume["metadata"]["name"], volume.get("spec") or {}
    if "storage" not in (spec.get("capacity") or {}):
        raise invalid_error("PersistentVolume", name, "spec.capacity: Required value")
    if not spec.get("accessModes"):
        raise invalid_error("PersistentVolume", name, "spec.accessModes: Required value")
    sources = [s for s in VOLUME_SOURCES if s in spec]
    if len(sources) != 1:
        raise invalid_error("PersistentVolume", name, "spec: Required value: must specify exactly one volume type")
    if "csi" in spec and not (spec["csi"].get("driver") and spec["csi"].get("volumeHandle")):
        raise invalid_error("PersistentVolume", name, "spec.csi: driver and volumeHandle are required")
    if "awsElasticBlockStore" in spec and not spec["awsElasticBlockStore"].get("volumeID"):
        raise invalid_error("PersistentVolume", name, "spec.awsElasticBlockStore.volumeID: Required value")
    if spec.get("persistentVolumeReclaimPolicy") not in ("Retain", "Delete", "Recycle"):
        raise invalid_error(
            "PersistentVolume",
            name,
            f"spec.persistentVolumeReclaimPolicy: Unsupported value: {spec.get('persistentVolumeReclaimPolicy')}",
        )
    if old is None:
        return
    old_spec = old.get("spec") or {}
    if {s: old_spec.get(s) for s in VOLUME_SOURCES} != {s: spec.get(s) for s in VOLUME_SOURCES}:
        raise invalid_error(
            "PersistentVolume",
            name,
            "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation",
        )
    if old_spec.get("volumeMode") != spec.get("volumeMode"):
        raise invalid_error("PersistentVolume", name, "spec.volumeMode: Invalid value: field is immutable")
    if "nodeAffinity" in old_spec and old_spec["nodeAffinity"] != spec.get("nodeAffinity"):
        raise invalid_error("PersistentVolume", name, "spec.nodeAffinity: Invalid value: field is immutable")


def validate_class(storage_class: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidateStorageClass / ValidateStorageClassUpdate."""
    name = storage_class["metadata"]["name"]
    if not storage_class.get("provisioner"):
        raise invalid_error("StorageClass", name, "provisioner: Required value")
    if old is None:
        return
    for field in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
        if old.get(field) != storage_class.get(field):
            message = "updates to parameters are forbidden." if field == "parameters" else "field is immutable"
            raise invalid_error("StorageClass", name, f"{field}: Forbidden: {message}")


def validate_workload(workload: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidateStatefulSetUpdate (only some spec fields change); ValidateDeploymentUpdate (selector)."""
    if old is None:
        return
    kind, name = workload["kind"], workload["metadata"]["name"]
    old_spec, spec = old.get("spec") or {}, workload.get("spec") or {}
    if kind == "StatefulSet":
        frozen = {k: v for k, v in old_spec.items() if k not in STATEFULSET_MUTABLE}
        if frozen != {k: v for k, v in spec.items() if k not in STATEFULSET_MUTABLE}:
            raise invalid_error(
                kind,
                name,
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                "are forbidden",
            )
    elif old_spec.get("selector") != spec.get("selector"):
        raise invalid_error(kind, name, "spec.selector: Invalid value: field is immutable")


_SPEC_KINDS = frozenset({"PersistentVolumeClaim", "PersistentVolume", "Deployment", "StatefulSet", "ReplicaSet"})


def apply_defaults(obj: dict[str, Any]) -> None:
    """SetDefaults_* of core/v1, storage/v1 and apps/v1, run on every write."""
    kind = obj["kind"]
    spec = obj.setdefault("spec", {}) if kind in _SPEC_KINDS else None
    if kind == "PersistentVolumeClaim" and spec is not None:
        spec.setdefault("volumeMode", "Filesystem")
    elif kind == "PersistentVolume" and spec is not None:
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
    elif kind == "StorageClass":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif kind in ("Deployment", "StatefulSet", "ReplicaSet") and spec is not None:
        spec.setdefault("replicas", 1)
        if kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
