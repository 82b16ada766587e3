"""The Kubernetes side of the simulation: an API server's object store and the storage controllers.

The store (`Cluster`) keeps plain dicts with wire names and enforces what the API server enforces
for the objects the migration touches (each rule cites its source):
- create fails with AlreadyExists on an existing name, even a terminating one
  (apiserver `registry/generic/registry/store.go` Create);
- defaults and admission on create: a PVC without `storageClassName` gets the newest default class
  (`plugin/pkg/admission/storage/storageclass/setdefault`, `pkg/volume/util` GetDefaultClass); PVCs
  and PVs get their protection finalizers (`plugin/pkg/admission/storage/storageobjectinuseprotection`);
  `pkg/apis/{core,storage,apps}/v1/defaults.go` fill reclaim policy, binding mode, volume mode, replicas;
- validation on every write (`pkg/apis/core/validation` ValidatePersistentVolumeClaim{,Update},
  ValidatePersistentVolume{,Update}; `pkg/apis/storage/validation` ValidateStorageClassUpdate;
  `pkg/apis/apps/validation` ValidateStatefulSetUpdate / ValidateDeploymentUpdate; the snapshot CRDs'
  schemas and CEL `x-kubernetes-validations`, read from shared/fixtures/external-snapshotter-v8.6.0
  when present);
- delete sets `deletionTimestamp`; the object goes once its finalizers are empty; a scheduled pod is
  deleted gracefully: it stays until its kubelet is done (`pkg/registry/core/pod/strategy.go`
  CheckGracefulDelete);
- server-side apply (`staging/src/k8s.io/apimachinery/pkg/util/managedfields`): every write records
  which manager owns each leaf field (lists are atomic); applying a field another manager owns with
  another value is a Conflict unless forced (force moves the ownership); a field a manager stops
  applying is removed when nobody else owns it, and defaulting then brings back defaults such as
  `spec.replicas: 1`.

The controllers are functions of the world, run once per tick by `World.tick` in a fixed order:
the garbage collector, Deployment and StatefulSet controllers, the scheduler's volume binding, the
PV controller, pvc-/pv-protection, the snapshot controller and csi-snapshotter sidecar, and the
external-provisioner with the EBS CSI driver. What they follow is cited on each.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from botocore.exceptions import ClientError

from gp3migrate.sim.ebs import driver_policy_allows

if TYPE_CHECKING:
    from gp3migrate.sim.world import World

# -- names the controllers and the API use ------------------------------------------------------

CSI_DRIVER = "ebs.csi.aws.com"
IN_TREE_PLUGIN = "kubernetes.io/aws-ebs"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
ZONE_LABEL = "topology.kubernetes.io/zone"
ZONE_KEYS = (ZONE_LABEL, "topology.ebs.csi.aws.com/zone", "failure-domain.beta.kubernetes.io/zone")
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SNAPSHOT_API = f"{SNAPSHOT_GROUP}/v1"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
DEFAULT_SNAPSHOT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"
# component-helpers/storage/volume/pv_helpers.go
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
MIGRATED_TO = "pv.kubernetes.io/migrated-to"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONER_FINALIZER = "external-provisioner.volume.kubernetes.io/finalizer"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
# external-snapshotter pkg/utils/util.go
CONTENT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
SNAPSHOT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
SNAPSHOT_AS_SOURCE = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
BEING_DELETED = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
# Field managers (the names kube-apiserver records for these writers).
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
PROVISIONER = "csi-provisioner"
SNAPSHOT_CONTROLLER = "snapshot-controller"
SNAPSHOTTER = "csi-snapshotter"
KUBELET = "kubelet"

GI = 1024**3
TEMPLATE_HASH = "pod-template-hash"

# (apiVersion, namespaced) of the kinds this simulation knows; other kinds are kept as given.
KINDS: dict[str, tuple[str, bool]] = {
    "PersistentVolumeClaim": ("v1", True),
    "PersistentVolume": ("v1", False),
    "Pod": ("v1", True),
    "Node": ("v1", False),
    "Namespace": ("v1", False),
    "Secret": ("v1", True),
    "ServiceAccount": ("v1", True),
    "ConfigMap": ("v1", True),
    "StorageClass": ("storage.k8s.io/v1", False),
    "CSIDriver": ("storage.k8s.io/v1", False),
    "VolumeAttachment": ("storage.k8s.io/v1", False),
    "Deployment": ("apps/v1", True),
    "StatefulSet": ("apps/v1", True),
    "ReplicaSet": ("apps/v1", True),
    "VolumeSnapshot": (SNAPSHOT_API, True),
    "VolumeSnapshotContent": (SNAPSHOT_API, False),
    "VolumeSnapshotClass": (SNAPSHOT_API, False),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", False),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", False),
}
SNAPSHOT_KINDS = frozenset({"VolumeSnapshot", "VolumeSnapshotContent", "VolumeSnapshotClass"})
PLURALS = {"PersistentVolumeClaim": "persistentvolumeclaims", "StorageClass": "storageclasses"}

Key = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped), name
FieldPath = tuple[str, ...]
Objects = list[dict[str, Any]]  # (named so: `Cluster.list` shadows the builtin in its class body)
Names = list[tuple[str, str]]


class KubeError(Exception):
    """An API error: reason AlreadyExists / NotFound / Conflict / Invalid / Forbidden."""

    STATUS = {"AlreadyExists": 409, "NotFound": 404, "Conflict": 409, "Invalid": 422, "Forbidden": 403}

    def __init__(self, reason: str, message: str = ""):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = self.STATUS[reason]


@dataclass
class Event:
    """A Kubernetes Event, aggregated like the event recorder does (same object, reason and message)."""

    tick: int
    kind: str
    namespace: str
    name: str
    reason: str
    message: str
    count: int = 1


# -- quantities and field paths -----------------------------------------------------------------


def quantity(value: Any) -> int:
    """A resource quantity in bytes ("100Gi", "1G", "500Mi", 1024)."""
    text = str(value)
    for suffix, factor in (("Ki", 1024), ("Mi", 1024**2), ("Gi", GI), ("Ti", 1024**4), ("Pi", 1024**5)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    for suffix, factor in (("k", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text))


def gib_quantity(size_bytes: int) -> str:
    """resource.NewQuantity(size, BinarySI) as it serialises for whole GiB."""
    return f"{size_bytes // GI}Gi" if size_bytes % GI == 0 else str(size_bytes)


def leaves(value: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Leaf fields of an object; lists are atomic leaves (as SSA treats `atomic` lists)."""
    if isinstance(value, dict) and value:
        out: dict[FieldPath, Any] = {}
        for key in sorted(value):
            out.update(leaves(value[key], (*prefix, str(key))))
        return out
    return {prefix: value}


def get_path(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    node = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def set_path(obj: dict[str, Any], path: FieldPath, value: Any) -> None:
    node = obj
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)


def remove_path(obj: dict[str, Any], path: FieldPath) -> None:
    """Remove a field and the maps it leaves empty."""
    parents = [obj]
    for part in path[:-1]:
        child = parents[-1].get(part)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        parents[depth - 1].pop(path[depth - 1], None)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386): maps merge, null deletes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


# Fields no manager owns (identity, server-set metadata, the status subresource).
_UNTRACKED: frozenset[FieldPath] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("status",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "generation"),
        ("metadata", "creationTimestamp"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "deletionGracePeriodSeconds"),
        ("metadata", "finalizers"),
        ("metadata", "managedFields"),
    }
)


def tracked_leaves(obj: dict[str, Any]) -> dict[FieldPath, Any]:
    """The fields managers own (an empty map owns nothing)."""
    return {p: v for p, v in leaves(obj).items() if p and v != {} and not any(p[: len(u)] == u for u in _UNTRACKED)}


# -- the snapshot CRDs' validation rules --------------------------------------------------------

SNAPSHOT_CRDS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "external-snapshotter-v8.6.0"


@dataclass(frozen=True)
class CrdRule:
    """One rule of a CRD schema at `path`: check "cel" (rule text), "required" or "enum" (detail)."""

    kind: str
    path: FieldPath
    check: str
    detail: str
    message: str = ""


# The rules of the v1 schemas of external-snapshotter v8.6.0's CRDs (client/config/crd/*.yaml), for
# when shared/fixtures is absent; tests compare this table with the files.
FALLBACK_CRD_RULES: tuple[CrdRule, ...] = (
    CrdRule("VolumeSnapshotClass", (), "required", "deletionPolicy"),
    CrdRule("VolumeSnapshotClass", (), "required", "driver"),
    CrdRule("VolumeSnapshotClass", ("deletionPolicy",), "enum", "Delete,Retain"),
    CrdRule("VolumeSnapshotContent", (), "required", "spec"),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec",),
        "cel",
        "!has(oldSelf.sourceVolumeMode) || has(self.sourceVolumeMode)",
        "sourceVolumeMode is required once set",
    ),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "deletionPolicy"),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "driver"),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "source"),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "volumeSnapshotRef"),
    CrdRule("VolumeSnapshotContent", ("spec", "deletionPolicy"), "enum", "Delete,Retain"),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.volumeHandle) || has(self.volumeHandle)",
        "volumeHandle is required once set",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.snapshotHandle) || has(self.snapshotHandle)",
        "snapshotHandle is required once set",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source"),
        "cel",
        "(has(self.volumeHandle) && !has(self.snapshotHandle)) || "
        "(!has(self.volumeHandle) && has(self.snapshotHandle))",
        "exactly one of volumeHandle and snapshotHandle must be set",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source", "snapshotHandle"),
        "cel",
        "self == oldSelf",
        "snapshotHandle is immutable",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source", "volumeHandle"),
        "cel",
        "self == oldSelf",
        "volumeHandle is immutable",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "sourceVolumeMode"),
        "cel",
        "self == oldSelf",
        "sourceVolumeMode is immutable",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "volumeSnapshotRef"),
        "cel",
        "has(self.name) && has(self.__namespace__)",
        "both spec.volumeSnapshotRef.name and spec.volumeSnapshotRef.namespace must be set",
    ),
    CrdRule("VolumeSnapshot", (), "required", "spec"),
    CrdRule("VolumeSnapshot", ("spec",), "required", "source"),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.persistentVolumeClaimName) || has(self.persistentVolumeClaimName)",
        "persistentVolumeClaimName is required once set",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.volumeSnapshotContentName) || has(self.volumeSnapshotContentName)",
        "volumeSnapshotContentName is required once set",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source"),
        "cel",
        "(has(self.volumeSnapshotContentName) && !has(self.persistentVolumeClaimName)) || "
        "(!has(self.volumeSnapshotContentName) && has(self.persistentVolumeClaimName))",
        "exactly one of volumeSnapshotContentName and persistentVolumeClaimName must be set",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source", "persistentVolumeClaimName"),
        "cel",
        "self == oldSelf",
        "persistentVolumeClaimName is immutable",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source", "volumeSnapshotContentName"),
        "cel",
        "self == oldSelf",
        "volumeSnapshotContentName is immutable",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "volumeSnapshotClassName"),
        "cel",
        "size(self) > 0",
        "volumeSnapshotClassName must not be the empty string when set",
    ),
)

# The CEL rule forms those CRDs use; a rule of any other form fails loading (so a new upstream rule
# cannot pass unenforced).
_CEL_IMMUTABLE = re.compile(r"^self == oldSelf$")
_CEL_REQUIRED_ONCE_SET = re.compile(r"^!has\(oldSelf\.(\w+)\) \|\| has\(self\.(\w+)\)$")
_CEL_EXACTLY_ONE = re.compile(
    r"^\(has\(self\.(\w+)\) && !has\(self\.(\w+)\)\) \|\| \(!has\(self\.(\w+)\) && has\(self\.(\w+)\)\)$"
)
_CEL_BOTH = re.compile(r"^has\(self\.(\w+)\) && has\(self\.(\w+)\)$")
_CEL_NON_EMPTY = re.compile(r"^size\(self\) > 0$")
_CEL_FORMS = (_CEL_IMMUTABLE, _CEL_REQUIRED_ONCE_SET, _CEL_EXACTLY_ONE, _CEL_BOTH, _CEL_NON_EMPTY)


@functools.cache
def load_crd_rules(directory: Path = SNAPSHOT_CRDS) -> tuple[CrdRule, ...]:
    """The rules of the snapshot CRDs' served v1 schemas, read from the files when they are there."""
    if not directory.is_dir():
        return FALLBACK_CRD_RULES
    rules: list[CrdRule] = []

    def walk(kind: str, node: dict[str, Any], path: FieldPath) -> None:
        for validation in node.get("x-kubernetes-validations") or []:
            rule = " ".join(validation["rule"].split())
            if not any(form.match(rule) for form in _CEL_FORMS):
                raise ValueError(f"{kind} {'.'.join(path)}: CEL rule not modelled: {rule}")
            rules.append(CrdRule(kind, path, "cel", rule, validation["message"]))
        rules.extend(CrdRule(kind, path, "required", field) for field in node.get("required") or [])
        if node.get("enum"):
            rules.append(CrdRule(kind, path, "enum", ",".join(node["enum"])))
        for name, child in sorted((node.get("properties") or {}).items()):
            walk(kind, child, (*path, name))

    for file in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(file.read_text())
        for version in crd["spec"]["versions"]:
            if version["name"] == "v1" and version.get("served"):
                walk(crd["spec"]["names"]["kind"], version["schema"]["openAPIV3Schema"], ())
    return tuple(rules)


def _cel_field(name: str) -> str:
    return name.strip("_") if name.startswith("__") else name  # CEL escapes reserved words: __namespace__


def check_crd_rules(rules: tuple[CrdRule, ...], obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Apply a CRD's rules the way the apiserver does: to values present; transition rules on update."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    for rule in rules:
        if rule.kind != kind:
            continue
        present, value = get_path(obj, rule.path)
        if not present:
            continue
        where = ".".join(rule.path) or "<root>"
        problem = ""
        if rule.check == "required":
            if not isinstance(value, dict) or rule.detail not in value:
                problem = f"{where}.{rule.detail}: Required value".removeprefix("<root>.")
        elif rule.check == "enum":
            if value not in rule.detail.split(","):
                problem = f'{where}: Unsupported value: "{value}": supported values: {rule.detail}'
        else:
            problem = _check_cel(rule, value, old)
            problem = f"{where}: Invalid value: {problem}" if problem else ""
        if problem:
            raise KubeError("Invalid", f'{kind}.{SNAPSHOT_GROUP} "{name}" is invalid: {problem}')


def _check_cel(rule: CrdRule, value: Any, old: dict[str, Any] | None) -> str:
    old_present, old_value = get_path(old, rule.path) if old is not None else (False, None)
    if _CEL_IMMUTABLE.match(rule.detail):
        return rule.message if old_present and old_value != value else ""
    if match := _CEL_REQUIRED_ONCE_SET.match(rule.detail):
        field = _cel_field(match.group(1))
        return rule.message if old_present and field in (old_value or {}) and field not in value else ""
    if match := _CEL_EXACTLY_ONE.match(rule.detail):
        first, second = _cel_field(match.group(1)), _cel_field(match.group(2))
        return rule.message if (first in value) == (second in value) else ""
    if match := _CEL_BOTH.match(rule.detail):
        return "" if all(_cel_field(f) in value for f in match.groups()) else rule.message
    return rule.message if len(value) == 0 else ""  # _CEL_NON_EMPTY


# -- validation and defaults of the built-in kinds ----------------------------------------------

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


def _invalid(kind: str, name: str, problem: str) -> KubeError:
    return KubeError("Invalid", f'{kind} "{name}" is invalid: {problem}')


def _validate_metadata(obj: dict[str, Any]) -> None:
    """apimachinery ValidateObjectMeta: DNS-1123 names; label values of at most 63 characters."""
    kind, metadata = obj["kind"], obj["metadata"]
    name = metadata.get("name") or ""
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise _invalid(kind, name, f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain')
    for key, value in sorted((metadata.get("labels") or {}).items()):
        if len(str(value)) > 63 or not _LABEL_VALUE.match(str(value)):
            raise _invalid(
                kind, name, f'metadata.labels: Invalid value: "{value}": must be 63 characters or less ({key})'
            )


def _validate_claim(claim: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidatePersistentVolumeClaimSpec and ValidatePersistentVolumeClaimUpdate."""
    name, spec = claim["metadata"]["name"], claim.get("spec") or {}
    modes = spec.get("accessModes") or []
    if not modes:
        raise _invalid("PersistentVolumeClaim", name, "spec.accessModes: Required value: at least 1 access mode")
    if any(mode not in ACCESS_MODES for mode in modes):
        raise _invalid("PersistentVolumeClaim", name, f"spec.accessModes: Unsupported value: {modes}")
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None or quantity(storage) <= 0:
        raise _invalid("PersistentVolumeClaim", name, "spec.resources[storage]: Required value")
    if spec.get("volumeMode", "Filesystem") not in ("Filesystem", "Block"):
        raise _invalid("PersistentVolumeClaim", name, f"spec.volumeMode: Unsupported value: {spec['volumeMode']}")
    source = spec.get("dataSource")
    if source is not None:
        if not source.get("name") or not source.get("kind"):
            raise _invalid("PersistentVolumeClaim", name, "spec.dataSource: name and kind are required")
        if not source.get("apiGroup") and source["kind"] != "PersistentVolumeClaim":
            raise _invalid(
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
        raise _invalid(
            "PersistentVolumeClaim",
            name,
            "spec: Forbidden: spec is immutable after creation except resources.requests and "
            "volumeAttributesClassName for bound claims",
        )
    old_storage = ((old.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    if old_storage is not None and quantity(storage) < quantity(old_storage):
        raise _invalid(
            "PersistentVolumeClaim",
            name,
            "spec.resources.requests.storage: Forbidden: field can not be less than previous value",
        )


def _validate_volume(volume: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidatePersistentVolumeSpec and ValidatePersistentVolumeUpdate."""
    name, spec = volume["metadata"]["name"], volume.get("spec") or {}
    if "storage" not in (spec.get("capacity") or {}):
        raise _invalid("PersistentVolume", name, "spec.capacity: Required value")
    if not spec.get("accessModes"):
        raise _invalid("PersistentVolume", name, "spec.accessModes: Required value")
    sources = [s for s in VOLUME_SOURCES if s in spec]
    if len(sources) != 1:
        raise _invalid("PersistentVolume", name, "spec: Required value: must specify exactly one volume type")
    if "csi" in spec and not (spec["csi"].get("driver") and spec["csi"].get("volumeHandle")):
        raise _invalid("PersistentVolume", name, "spec.csi: driver and volumeHandle are required")
    if "awsElasticBlockStore" in spec and not spec["awsElasticBlockStore"].get("volumeID"):
        raise _invalid("PersistentVolume", name, "spec.awsElasticBlockStore.volumeID: Required value")
    if spec.get("persistentVolumeReclaimPolicy") not in ("Retain", "Delete", "Recycle"):
        raise _invalid(
            "PersistentVolume",
            name,
            f"spec.persistentVolumeReclaimPolicy: Unsupported value: {spec.get('persistentVolumeReclaimPolicy')}",
        )
    if old is None:
        return
    old_spec = old.get("spec") or {}
    if {s: old_spec.get(s) for s in VOLUME_SOURCES} != {s: spec.get(s) for s in VOLUME_SOURCES}:
        raise _invalid(
            "PersistentVolume",
            name,
            "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation",
        )
    if old_spec.get("volumeMode") != spec.get("volumeMode"):
        raise _invalid("PersistentVolume", name, "spec.volumeMode: Invalid value: field is immutable")
    if "nodeAffinity" in old_spec and old_spec["nodeAffinity"] != spec.get("nodeAffinity"):
        raise _invalid("PersistentVolume", name, "spec.nodeAffinity: Invalid value: field is immutable")


def _validate_class(storage_class: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidateStorageClass / ValidateStorageClassUpdate."""
    name = storage_class["metadata"]["name"]
    if not storage_class.get("provisioner"):
        raise _invalid("StorageClass", name, "provisioner: Required value")
    if old is None:
        return
    for field in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
        if old.get(field) != storage_class.get(field):
            message = "updates to parameters are forbidden." if field == "parameters" else "field is immutable"
            raise _invalid("StorageClass", name, f"{field}: Forbidden: {message}")


def _validate_workload(workload: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidateStatefulSetUpdate (only some spec fields change); ValidateDeploymentUpdate (selector)."""
    if old is None:
        return
    kind, name = workload["kind"], workload["metadata"]["name"]
    old_spec, spec = old.get("spec") or {}, workload.get("spec") or {}
    if kind == "StatefulSet":
        frozen = {k: v for k, v in old_spec.items() if k not in STATEFULSET_MUTABLE}
        if frozen != {k: v for k, v in spec.items() if k not in STATEFULSET_MUTABLE}:
            raise _invalid(
                kind,
                name,
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                "are forbidden",
            )
    elif old_spec.get("selector") != spec.get("selector"):
        raise _invalid(kind, name, "spec.selector: Invalid value: field is immutable")


_SPEC_KINDS = frozenset({"PersistentVolumeClaim", "PersistentVolume", "Deployment", "StatefulSet", "ReplicaSet"})


def _default(obj: dict[str, Any]) -> None:
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


# -- the store ------------------------------------------------------------------------------------


class Cluster:
    """The API server's object store: plain dicts with wire names, deep-copied in and out."""

    def __init__(self, now: Callable[[], int]):
        self._now = now
        self._objects: dict[Key, dict[str, Any]] = {}
        self._owners: dict[Key, dict[FieldPath, set[str]]] = {}
        self._uids = 0
        self._version = 0
        self.crds_installed = False
        self.crd_rules = load_crd_rules()

    # -- identity ------------------------------------------------------------------------------

    def _key(self, api_version: str, kind: str, namespace: str | None, name: str) -> Key:
        known = KINDS.get(kind)
        if (known is not None and known[0] != api_version) or (kind in SNAPSHOT_KINDS and not self.crds_installed):
            raise KubeError("NotFound", f'no matches for kind "{kind}" in version "{api_version}"')
        namespaced = known[1] if known is not None else bool(namespace)
        return kind, (namespace or "default") if namespaced else "", name

    def _key_of(self, obj: dict[str, Any]) -> Key:
        metadata = obj.get("metadata") or {}
        if not metadata.get("name"):
            raise _invalid(obj.get("kind", "?"), "", "metadata.name: Required value: name or generateName is required")
        return self._key(obj["apiVersion"], obj["kind"], metadata.get("namespace"), metadata["name"])

    # -- reads -----------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A deep copy of the object, or None (also when its kind is not served)."""
        try:
            key = self._key(api_version, kind, namespace, name)
        except KubeError:
            return None
        obj = self._objects.get(key)
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> Objects:
        """Deep copies of every object of the kind (in a namespace), by namespace and name."""
        try:
            self._key(api_version, kind, namespace, "")
        except KubeError:
            return []
        return [copy.deepcopy(o) for o in self.view(kind, namespace or None)]  # "": all namespaces

    def managers(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, str]:
        """Which managers own each field ("spec.replicas" -> "a,b"): what metadata.managedFields says."""
        key = self._key(api_version, kind, namespace, name)
        return {".".join(p): ",".join(sorted(m)) for p, m in sorted(self._owners.get(key, {}).items())}

    # -- writes through the API -----------------------------------------------------------------

    def create(self, obj: dict[str, Any], manager: str = "pulumi-kubernetes") -> dict[str, Any]:
        """POST: AlreadyExists on an existing name (even terminating); admission, defaults, validation."""
        obj = copy.deepcopy(obj)
        key = self._key_of(obj)
        if key in self._objects:
            plural = PLURALS.get(key[0], key[0].lower() + "s")
            raise KubeError("AlreadyExists", f'{plural} "{key[2]}" already exists')
        obj.pop("status", None)  # the status subresource is not written by create
        metadata = obj["metadata"]
        if key[1]:
            metadata["namespace"] = key[1]
        else:
            metadata.pop("namespace", None)
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "managedFields"):
            metadata.pop(server_field, None)
        self._admit(obj)
        _default(obj)
        self._validate(obj, None)
        self._uids += 1
        metadata["uid"] = f"00000000-0000-4000-8000-{self._uids:012d}"
        metadata["creationTimestamp"] = self._now()
        metadata["generation"] = 1
        self._store(key, obj)
        self._owners[key] = {p: {manager} for p in tracked_leaves(obj)}
        return copy.deepcopy(obj)

    def _admit(self, obj: dict[str, Any]) -> None:
        """Admission on create: the default class (setdefault plugin); protection finalizers
        (storageobjectinuseprotection plugin); the initial status phases."""
        kind = obj["kind"]
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if kind == "PersistentVolumeClaim":
            spec = obj.setdefault("spec", {})
            if "storageClassName" not in spec:
                default = self.default_class()
                if default is not None:
                    spec["storageClassName"] = default
            if PVC_PROTECTION not in finalizers:
                finalizers.append(PVC_PROTECTION)
            obj["status"] = {"phase": "Pending"}
        elif kind == "PersistentVolume":
            if PV_PROTECTION not in finalizers:
                finalizers.append(PV_PROTECTION)
            obj["status"] = {"phase": "Pending"}
        elif kind == "Pod":
            obj["status"] = {"phase": "Pending"}
        if not finalizers:
            obj["metadata"].pop("finalizers")

    def default_class(self) -> str | None:
        """GetDefaultClass: of the classes annotated default, the newest (then by name)."""
        defaults = [c for c in self.view("StorageClass") if _annotations(c).get(DEFAULT_CLASS) == "true"]
        if not defaults:
            return None
        newest = max(defaults, key=lambda c: (c["metadata"]["creationTimestamp"], c["metadata"]["name"]))
        return str(newest["metadata"]["name"])

    def _validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        _validate_metadata(obj)
        kind = obj["kind"]
        if kind == "PersistentVolumeClaim":
            _validate_claim(obj, old)
        elif kind == "PersistentVolume":
            _validate_volume(obj, old)
        elif kind == "StorageClass":
            _validate_class(obj, old)
        elif kind in ("Deployment", "StatefulSet"):
            _validate_workload(obj, old)
        elif kind in SNAPSHOT_KINDS:
            check_crd_rules(self.crd_rules, obj, old)

    def apply(self, obj: dict[str, Any], manager: str, force: bool = False) -> dict[str, Any]:
        """Server-side apply (PATCH application/apply-patch+yaml) of an existing object."""
        key = self._key_of(obj)
        current = self._objects.get(key)
        if current is None:
            raise KubeError("NotFound", f'{key[0]} "{key[2]}" not found')
        applied = tracked_leaves(obj)
        owners = {p: set(m) for p, m in self._owners.get(key, {}).items()}
        current_leaves = tracked_leaves(current)
        conflicts = sorted(
            (p, sorted(owners[p] - {manager}))
            for p, value in applied.items()
            if owners.get(p, set()) - {manager} and current_leaves.get(p) != value
        )
        if conflicts and not force:
            listed = "; ".join(f'conflict with "{", ".join(m)}": .{".".join(p)}' for p, m in conflicts)
            raise KubeError("Conflict", f"Apply failed with {len(conflicts)} conflict(s): {listed}")
        merged = copy.deepcopy(current)
        for path in sorted(p for p, m in owners.items() if manager in m and p not in applied):
            owners[path].discard(manager)
            if not owners[path]:
                del owners[path]
                remove_path(merged, path)
        for path, value in applied.items():
            for owned in [p for p in owners if p != path and (p[: len(path)] == path or path[: len(p)] == p)]:
                del owners[owned]  # a leaf replaced by a map (or the reverse) changes hands whole
            set_path(merged, path, value)
            same = path in current_leaves and current_leaves[path] == value
            owners[path] = (owners.get(path, set()) | {manager}) if same else {manager}
        self._commit(key, current, merged, owners)
        return copy.deepcopy(merged)

    def update(self, obj: dict[str, Any], manager: str, force: bool = False) -> dict[str, Any]:
        """pulumi-kubernetes updates a non-Patch resource by server-side apply of the whole desired
        object (provider/pkg/await/await.go ssaUpdate), forcing only with `pulumi.com/patchForce`."""
        return self.apply(obj, manager, force=force)

    def relinquish(self, api_version: str, kind: str, namespace: str, name: str, manager: str) -> dict[str, Any]:
        """pulumi-kubernetes ssa.Relinquish: apply an empty object as `manager`, so every field only it
        owns is removed (and defaulted again); Invalid when that removes a required field."""
        key = self._key(api_version, kind, namespace, name)
        return self.apply(
            {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": key[1]}}, manager
        )

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, body: dict[str, Any], manager: str
    ) -> dict[str, Any]:
        """PATCH with a merge patch (what a strategic merge patch does for maps): an Update by `manager`."""
        key = self._key(api_version, kind, namespace, name)
        current = self._objects.get(key)
        if current is None:
            raise KubeError("NotFound", f'{kind} "{name}" not found')
        merged = copy.deepcopy(current)
        merge_patch(merged, {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "status")})
        self._commit(key, current, merged, self._updated_owners(key, current, merged, manager))
        return copy.deepcopy(merged)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """DELETE: sets deletionTimestamp; the object goes when no finalizer is left. Returns what is
        left (None when gone)."""
        key = self._key(api_version, kind, namespace, name)
        current = self._objects.get(key)
        if current is None:
            raise KubeError("NotFound", f'{kind} "{name}" not found')
        if current["metadata"].get("deletionTimestamp") is None:
            updated = copy.deepcopy(current)
            updated["metadata"]["deletionTimestamp"] = self._now()
            if kind == "Pod" and (updated.get("spec") or {}).get("nodeName"):
                # CheckGracefulDelete: a scheduled pod stays until its kubelet has stopped it.
                updated["metadata"]["deletionGracePeriodSeconds"] = 30
                self._store(key, updated)
                return copy.deepcopy(updated)
            self._store(key, updated)
        return self._collect(key)

    # -- writes by the controllers ---------------------------------------------------------------

    def view(self, kind: str, namespace: str | None = None) -> Objects:
        """The live objects of a kind, by namespace and name. Read-only: controllers write with `edit`."""
        return [o for (k, ns, _), o in sorted(self._objects.items()) if k == kind and namespace in (None, ns)]

    def names(self, kind: str, namespace: str | None = None) -> Names:
        return [(ns, n) for (k, ns, n) in sorted(self._objects) if k == kind and namespace in (None, ns)]

    def peek(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object (read-only)."""
        return self._objects.get((kind, namespace, name))

    @contextmanager
    def edit(self, kind: str, namespace: str, name: str, manager: str) -> Iterator[dict[str, Any]]:
        """A controller's update of one object: yields a copy to change; written back on exit (a PUT,
        no validation: the controllers only make changes the API allows)."""
        key = (kind, namespace, name)
        current = self._objects[key]
        changed = copy.deepcopy(current)
        yield changed
        if changed != current:
            self._commit(key, current, changed, self._updated_owners(key, current, changed, manager), validate=False)

    def delete_object(self, kind: str, namespace: str, name: str) -> None:
        """A controller's delete of an object it found in `view` (a no-op when already gone)."""
        obj = self.peek(kind, namespace, name)
        if obj is not None:
            self.delete(obj["apiVersion"], kind, namespace, name)

    def remove_finalizer(self, kind: str, namespace: str, name: str, finalizer: str, manager: str) -> None:
        obj = self.peek(kind, namespace, name)
        if obj is not None and finalizer in (obj["metadata"].get("finalizers") or []):
            with self.edit(kind, namespace, name, manager) as changed:
                changed["metadata"]["finalizers"].remove(finalizer)
                if not changed["metadata"]["finalizers"]:
                    del changed["metadata"]["finalizers"]

    def add_finalizer(self, kind: str, namespace: str, name: str, finalizer: str, manager: str) -> None:
        obj = self.peek(kind, namespace, name)
        if obj is not None and finalizer not in (obj["metadata"].get("finalizers") or []):
            with self.edit(kind, namespace, name, manager) as changed:
                changed["metadata"].setdefault("finalizers", []).append(finalizer)

    def finish_pod(self, namespace: str, name: str) -> None:
        """The kubelet's final delete (grace period 0) of a pod it has stopped."""
        self._objects.pop(("Pod", namespace, name), None)
        self._owners.pop(("Pod", namespace, name), None)

    # -- internals ---------------------------------------------------------------------------------

    def _updated_owners(
        self, key: Key, before: dict[str, Any], after: dict[str, Any], manager: str
    ) -> dict[FieldPath, set[str]]:
        """An Update moves every changed field to its manager and drops removed fields."""
        owners = {p: set(m) for p, m in self._owners.get(key, {}).items()}
        old, new = tracked_leaves(before), tracked_leaves(after)
        for path in old.keys() - new.keys():
            owners.pop(path, None)
        for path, value in new.items():
            if old.get(path, object()) != value:
                for owned in [p for p in owners if p != path and (p[: len(path)] == path or path[: len(p)] == p)]:
                    del owners[owned]
                owners[path] = {manager}
        return owners

    def _commit(
        self,
        key: Key,
        current: dict[str, Any],
        changed: dict[str, Any],
        owners: dict[FieldPath, set[str]],
        validate: bool = True,
    ) -> None:
        _default(changed)
        if validate:
            self._validate(changed, current)
        if changed.get("spec") != current.get("spec"):
            changed["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        self._store(key, changed)
        self._owners[key] = owners
        self._collect(key)

    def _store(self, key: Key, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self._objects[key] = obj

    def _collect(self, key: Key) -> dict[str, Any] | None:
        """Remove a deleted object whose finalizers are all gone (pods wait for their kubelet)."""
        obj = self._objects.get(key)
        if obj is None:
            return None
        metadata = obj["metadata"]
        graceful = key[0] == "Pod" and metadata.get("deletionGracePeriodSeconds")
        if metadata.get("deletionTimestamp") is not None and not metadata.get("finalizers") and not graceful:
            del self._objects[key]
            self._owners.pop(key, None)
            return None
        return copy.deepcopy(obj)

    def drop_kinds(self, kinds: frozenset[str]) -> None:
        """Deleting a CRD deletes every object of its kind."""
        for key in [k for k in self._objects if k[0] in kinds]:
            del self._objects[key]
            self._owners.pop(key, None)


# -- small readers the controllers share ---------------------------------------------------------


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def _deleting(obj: dict[str, Any]) -> bool:
    return obj["metadata"].get("deletionTimestamp") is not None


def _ref(obj: dict[str, Any]) -> dict[str, Any]:
    """An ObjectReference to obj (reference.GetReference)."""
    metadata = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "namespace": metadata.get("namespace", ""),
        "name": metadata["name"],
        "uid": metadata["uid"],
        "resourceVersion": metadata["resourceVersion"],
    }


def pv_volume_id(pv: dict[str, Any]) -> str | None:
    """The EBS volume of a PV: `csi.volumeHandle` or `awsElasticBlockStore.volumeID` without aws://zone/."""
    spec = pv.get("spec") or {}
    handle = (spec.get("csi") or {}).get("volumeHandle") or (spec.get("awsElasticBlockStore") or {}).get("volumeID")
    return str(handle).rstrip("/").rsplit("/", 1)[-1] if handle else None


def pv_zones(pv: dict[str, Any]) -> set[str] | None:
    """The zones a PV's nodeAffinity allows (or the aws://<zone>/ of an in-tree volume ID); None: any."""
    spec = pv.get("spec") or {}
    zones: set[str] = set()
    for term in (((spec.get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms")) or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") in ZONE_KEYS and expression.get("operator") == "In":
                zones.update(expression.get("values") or [])
    volume_id = str((spec.get("awsElasticBlockStore") or {}).get("volumeID") or "")
    if not zones and volume_id.startswith("aws://") and volume_id.count("/") >= 3:
        zone = volume_id.split("/")[2]
        if zone:
            zones.add(zone)
    return zones or None


def pv_fs_type(pv: dict[str, Any]) -> str:
    """The filesystem a PV mounts: csi.fsType / awsElasticBlockStore.fsType, ext4 when unset
    (the in-tree plugin's and the chart's `--default-fstype=ext4`)."""
    spec = pv.get("spec") or {}
    source = spec.get("csi") or spec.get("awsElasticBlockStore") or {}
    return str(source.get("fsType") or "ext4")


def needs_csi_driver(pv: dict[str, Any]) -> bool:
    """CSI PVs, and in-tree PVs once CSI migration routes them to the driver, need it on the node."""
    return "csi" in (pv.get("spec") or {}) or _annotations(pv).get(MIGRATED_TO) == CSI_DRIVER


def claim_class(claim: dict[str, Any]) -> str:
    return str((claim.get("spec") or {}).get("storageClassName") or "")


def claim_request(claim: dict[str, Any]) -> int:
    return quantity(claim["spec"]["resources"]["requests"]["storage"])


def is_bound_to(pv: dict[str, Any], claim: dict[str, Any]) -> bool:
    """IsVolumeBoundToClaim: claimRef names the claim; its uid, when set, is the claim's."""
    ref = pv["spec"].get("claimRef")
    if not ref or (ref.get("name"), ref.get("namespace")) != (
        claim["metadata"]["name"],
        claim["metadata"]["namespace"],
    ):
        return False
    return not ref.get("uid") or ref["uid"] == claim["metadata"]["uid"]


def _volume_mode(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("volumeMode") or "Filesystem")


def _satisfies(pv: dict[str, Any], claim: dict[str, Any]) -> str:
    """checkVolumeSatisfyClaim: the reason the PV does not fit the claim, or ""."""
    if _deleting(pv):
        return f'the volume is marked for deletion "{pv["metadata"]["name"]}"'
    if quantity(pv["spec"]["capacity"]["storage"]) < claim_request(claim):
        return "requested PV is too small"
    if str(pv["spec"].get("storageClassName") or "") != claim_class(claim):
        return "storageClassName does not match"
    if _volume_mode(pv) != _volume_mode(claim):
        return "incompatible volumeMode"
    if not set(claim["spec"].get("accessModes") or []) <= set(pv["spec"].get("accessModes") or []):
        return "incompatible accessMode"
    return ""


def find_matching_volume(
    world: World, claim: dict[str, Any], delay_binding: bool, zone: str | None = None
) -> dict[str, Any] | None:
    """FindMatchingVolume (component-helpers pv_helpers.go): a PV pre-bound to the claim wins; else the
    smallest Available PV of the claim's class that fits (not in the PV controller's path while
    binding waits for the first consumer: the scheduler, `zone` set, binds those)."""
    request, mode, modes = claim_request(claim), _volume_mode(claim), set(claim["spec"].get("accessModes") or [])
    best: dict[str, Any] | None = None
    best_capacity = 0
    for pv in world.kube.view("PersistentVolume"):
        spec = pv["spec"]
        capacity = quantity(spec["capacity"]["storage"])
        if spec.get("claimRef") and not is_bound_to(pv, claim):
            continue
        if capacity < request or _volume_mode(pv) != mode or _deleting(pv):
            continue
        if not modes <= set(spec.get("accessModes") or []):
            continue
        zones = pv_zones(pv)
        fits_node = zone is None or zones is None or zone in zones
        if is_bound_to(pv, claim):
            return pv if fits_node else None
        if zone is None and delay_binding:
            continue
        available = (pv.get("status") or {}).get("phase") == "Available"
        if not available or str(spec.get("storageClassName") or "") != claim_class(claim) or not fits_node:
            continue
        if best is None or capacity < best_capacity:
            best, best_capacity = pv, capacity
    return best


# -- garbage collector -----------------------------------------------------------------------------


def garbage_collector(world: World) -> None:
    """pkg/controller/garbagecollector: dependents whose controlling owner is gone are deleted
    (background propagation)."""
    kube = world.kube
    for kind in ("ReplicaSet", "Pod"):
        for namespace, name in kube.names(kind):
            obj = kube.peek(kind, namespace, name)
            if obj is None or _deleting(obj):
                continue
            for ref in obj["metadata"].get("ownerReferences") or []:
                if not ref.get("controller") or ref["kind"] not in KINDS:
                    continue  # an owner of a kind this simulation does not serve is left alone
                owner = kube.peek(ref["kind"], namespace, ref["name"])
                if owner is None or owner["metadata"]["uid"] != ref["uid"]:
                    kube.delete_object(kind, namespace, name)
                    break


# -- workloads ---------------------------------------------------------------------------------------


def template_hash(template: dict[str, Any]) -> str:
    """The pod-template-hash label (controller.ComputeHash): stable for the same template."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    metadata = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_pods(world: World, namespace: str, owner_kind: str, owner_names: set[str]) -> list[dict[str, Any]]:
    return [
        p
        for p in world.kube.view("Pod", namespace)
        if any(r["kind"] == owner_kind and r["name"] in owner_names for r in p["metadata"].get("ownerReferences") or [])
    ]


def pod_ready(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not _deleting(pod)


def _new_pod(owner: dict[str, Any], name: str, labels: dict[str, str], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    template = copy.deepcopy(owner["spec"].get("template") or {})
    spec = template.get("spec") or {}
    spec.setdefault("containers", [{"name": "app", "image": "public.ecr.aws/docker/library/busybox:stable"}])
    spec["volumes"] = [*(spec.get("volumes") or []), *volumes]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": {**((template.get("metadata") or {}).get("labels") or {}), **labels},
        },
        "spec": spec,
    }


def deployment_controller(world: World) -> None:
    """pkg/controller/deployment with the ReplicaSet controller: pods of the current template, scaled to
    spec.replicas; a template change rolls out with the defaults maxSurge 25% (rounded up) and
    maxUnavailable 25% (rounded down) (rolling.go, ResolveFenceposts); scale-down deletes unscheduled,
    then pending, then the newest pods first (replica_set.go getPodsToDelete)."""
    kube = world.kube
    for namespace, name in kube.names("Deployment"):
        deployment = kube.peek("Deployment", namespace, name)
        if deployment is None or _deleting(deployment):
            continue
        desired = int(deployment["spec"].get("replicas", 1))
        current_hash = template_hash(deployment["spec"].get("template") or {})
        replica_set = f"{name}-{current_hash}"
        if kube.peek("ReplicaSet", namespace, replica_set) is None:
            kube.create(
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": replica_set,
                        "namespace": namespace,
                        "labels": {TEMPLATE_HASH: current_hash},
                        "ownerReferences": [_owner_ref(deployment)],
                    },
                    "spec": {"replicas": desired, "template": copy.deepcopy(deployment["spec"].get("template"))},
                },
                CONTROLLER_MANAGER,
            )
        sets = {
            r["metadata"]["name"]
            for r in kube.view("ReplicaSet", namespace)
            if any(o["uid"] == deployment["metadata"]["uid"] for o in r["metadata"].get("ownerReferences") or [])
        }
        pods = [p for p in _owned_pods(world, namespace, "ReplicaSet", sets) if not _deleting(p)]
        new = [p for p in pods if p["metadata"]["labels"].get(TEMPLATE_HASH) == current_hash]
        old = [p for p in pods if p not in new]
        surge = math.ceil(desired * 0.25)
        unavailable = math.floor(desired * 0.25) or (0 if surge else 1)
        if old:
            if len(pods) < desired + surge and len(new) < desired:
                _create_deployment_pod(world, deployment, replica_set, current_hash)
            ready = sum(1 for p in pods if pod_ready(p))
            victim = min(old, key=_deletion_rank)
            if not pod_ready(victim) or ready - 1 >= desired - unavailable:
                kube.delete_object("Pod", namespace, victim["metadata"]["name"])
        elif len(new) < desired:
            for _ in range(desired - len(new)):
                _create_deployment_pod(world, deployment, replica_set, current_hash)
        else:
            for victim in sorted(new, key=_deletion_rank)[: len(new) - desired]:
                kube.delete_object("Pod", namespace, victim["metadata"]["name"])
        pods = _owned_pods(world, namespace, "ReplicaSet", sets)
        _workload_status(world, "Deployment", namespace, name, pods, current_hash)


def _deletion_rank(pod: dict[str, Any]) -> tuple[bool, bool, int, str]:
    """ActivePodsWithRanks: unscheduled < scheduled, pending < running, newer before older."""
    return (
        bool(pod["spec"].get("nodeName")),
        pod_ready(pod),
        -int(pod["metadata"]["creationTimestamp"]),
        pod["metadata"]["name"],
    )


def _create_deployment_pod(world: World, deployment: dict[str, Any], replica_set: str, current_hash: str) -> None:
    """A pod `<name>-<n>`, n the lowest index no pod of the Deployment holds (terminating ones
    included). Real ReplicaSets use random suffixes; a name carries no identity either way."""
    namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
    taken = {n for _, n in world.kube.names("Pod", namespace)}
    index = next(i for i in range(len(taken) + 1) if f"{name}-{i}" not in taken)
    pod = _new_pod(deployment, f"{name}-{index}", {TEMPLATE_HASH: current_hash}, [])
    owner = world.kube.peek("ReplicaSet", namespace, replica_set)
    assert owner is not None
    pod["metadata"]["ownerReferences"] = [_owner_ref(owner)]
    world.kube.create(pod, CONTROLLER_MANAGER)


def statefulset_claims(statefulset: dict[str, Any], ordinal: int) -> list[str]:
    """`<template>-<statefulset>-<ordinal>` for each volumeClaimTemplate (getPersistentVolumeClaimName)."""
    name = statefulset["metadata"]["name"]
    return [f"{t['metadata']['name']}-{name}-{ordinal}" for t in statefulset["spec"].get("volumeClaimTemplates") or []]


def statefulset_controller(world: World) -> None:
    """pkg/controller/statefulset (OrderedReady, RollingUpdate): pods `<name>-<ordinal>` created one at a
    time in order once the previous ones run, each with its claims from volumeClaimTemplates created
    when missing (stateful_pod_control.go createPersistentVolumeClaims; not while a claim is being
    deleted); scale-down and updates remove the highest ordinal first, one at a time, only while the
    others run and none is terminating (stateful_set_control.go)."""
    kube = world.kube
    for namespace, name in kube.names("StatefulSet"):
        statefulset = kube.peek("StatefulSet", namespace, name)
        if statefulset is None or _deleting(statefulset):
            continue
        desired = int(statefulset["spec"].get("replicas", 1))
        revision = template_hash(statefulset["spec"].get("template") or {})
        pods = {
            int(p["metadata"]["name"].rsplit("-", 1)[1]): p
            for p in _owned_pods(world, namespace, "StatefulSet", {name})
        }
        if not any(_deleting(p) for p in pods.values()):
            _step_statefulset(world, statefulset, desired, revision, pods)
        pods_now = _owned_pods(world, namespace, "StatefulSet", {name})
        _workload_status(world, "StatefulSet", namespace, name, pods_now, revision)


def _step_statefulset(
    world: World, statefulset: dict[str, Any], desired: int, revision: str, pods: dict[int, dict[str, Any]]
) -> None:
    namespace, name = statefulset["metadata"]["namespace"], statefulset["metadata"]["name"]
    for ordinal in range(desired):
        if ordinal not in pods:
            _create_statefulset_pod(world, statefulset, ordinal, revision)
            return
        if not pod_ready(pods[ordinal]):
            return
    condemned = sorted(o for o in pods if o >= desired)
    stale = sorted(o for o in pods if o < desired and pods[o]["metadata"]["labels"].get(TEMPLATE_HASH) != revision)
    for ordinal in (condemned or stale)[-1:]:
        world.kube.delete_object("Pod", namespace, f"{name}-{ordinal}")


def _create_statefulset_pod(world: World, statefulset: dict[str, Any], ordinal: int, revision: str) -> None:
    kube, namespace, name = world.kube, statefulset["metadata"]["namespace"], statefulset["metadata"]["name"]
    volumes = []
    for template, claim in zip(
        statefulset["spec"].get("volumeClaimTemplates") or [], statefulset_claims(statefulset, ordinal), strict=True
    ):
        existing = kube.peek("PersistentVolumeClaim", namespace, claim)
        if existing is not None and _deleting(existing):
            world.event("StatefulSet", namespace, name, "FailedCreate", f"pvc {claim} is being deleted")
            return
        if existing is None:
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": claim,
                        "namespace": namespace,
                        "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                    },
                    "spec": copy.deepcopy(template.get("spec") or {}),
                },
                CONTROLLER_MANAGER,
            )
        volumes.append({"name": template["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
    pod = _new_pod(
        statefulset,
        f"{name}-{ordinal}",
        {TEMPLATE_HASH: revision, "statefulset.kubernetes.io/pod-name": f"{name}-{ordinal}"},
        volumes,
    )
    pod["metadata"]["ownerReferences"] = [_owner_ref(statefulset)]
    kube.create(pod, CONTROLLER_MANAGER)


def _workload_status(
    world: World, kind: str, namespace: str, name: str, pods: list[dict[str, Any]], revision: str
) -> None:
    """status.replicas counts pods not being deleted (FilterActivePods): a terminating pod, still
    running, is not counted; readyReplicas those running; updatedReplicas those of the template."""
    active = [p for p in pods if not _deleting(p)]
    ready = sum(1 for p in active if pod_ready(p))
    updated = sum(1 for p in active if p["metadata"]["labels"].get(TEMPLATE_HASH) == revision)
    with world.kube.edit(kind, namespace, name, CONTROLLER_MANAGER) as workload:
        workload["status"] = {
            "observedGeneration": workload["metadata"].get("generation", 1),
            "replicas": len(active),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": updated,
        }


# -- the scheduler's volume binding ----------------------------------------------------------------


def pod_claims(pod: dict[str, Any]) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"].get("volumes") or []
        if "persistentVolumeClaim" in v
    ]


def scheduler(world: World) -> None:
    """kube-scheduler with the NodeAffinity (spec.nodeSelector) and VolumeBinding plugins
    (pkg/scheduler/framework/plugins/volumebinding): a pod is placed on a node in the zones of its
    bound claims' PVs; a claim of a WaitForFirstConsumer class is bound to a fitting static PV on
    that node or gets `volume.kubernetes.io/selected-node` to be provisioned there; the pod is bound
    to the node once all its claims are bound. Claims that are missing, being deleted, or unbound
    with Immediate binding keep it Pending (FailedScheduling)."""
    kube = world.kube
    for namespace, name in kube.names("Pod"):
        pod = kube.peek("Pod", namespace, name)
        if pod is None or _deleting(pod) or pod["spec"].get("nodeName"):
            continue
        selector = pod["spec"].get("nodeSelector") or {}
        candidates = [n for n in sorted(world.nodes) if _node_matches(world, n, selector)]
        waiting: list[dict[str, Any]] = []
        problem = ""
        for claim_name in pod_claims(pod):
            claim = kube.peek("PersistentVolumeClaim", namespace, claim_name)
            if claim is None:
                problem = f'persistentvolumeclaim "{claim_name}" not found'
            elif _deleting(claim):
                problem = f'persistentvolumeclaim "{claim_name}" is being deleted'
            elif claim["status"].get("phase") == "Bound":
                pv = kube.peek("PersistentVolume", "", claim["spec"].get("volumeName", ""))
                zones = pv_zones(pv) if pv is not None else None
                candidates = [n for n in candidates if zones is None or world.nodes[n].zone in zones]
            else:
                storage_class = kube.peek("StorageClass", "", claim_class(claim))
                if storage_class is None or storage_class.get("volumeBindingMode") != "WaitForFirstConsumer":
                    problem = "pod has unbound immediate PersistentVolumeClaims"
                waiting.append(claim)
            if problem:
                break
        if not problem and not candidates:
            problem = "node(s) had volume node affinity conflict" if world.nodes else "no nodes available"
        if problem:
            world.event("Pod", namespace, name, "FailedScheduling", problem)
            continue
        chosen = [_annotations(c).get(SELECTED_NODE) for c in waiting if _annotations(c).get(SELECTED_NODE)]
        node = chosen[0] if chosen and chosen[0] in candidates else world.rng.choice(candidates)
        for claim in waiting:
            _bind_or_provision_on(world, claim, node)
        if not waiting:
            with kube.edit("Pod", namespace, name, SCHEDULER) as bound:
                bound["spec"]["nodeName"] = node
                bound["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
            world.event("Pod", namespace, name, "Scheduled", f"Successfully assigned {namespace}/{name} to {node}")


def _node_matches(world: World, node: str, selector: dict[str, str]) -> bool:
    labels = (world.kube.peek("Node", "", node) or {"metadata": {}})["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _bind_or_provision_on(world: World, claim: dict[str, Any], node: str) -> None:
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    if claim["spec"].get("volumeName"):
        return  # pre-bound: the PV controller binds it
    pv = find_matching_volume(world, claim, delay_binding=True, zone=world.nodes[node].zone)
    if pv is not None:
        with kube.edit("PersistentVolume", "", pv["metadata"]["name"], SCHEDULER) as bound:  # BindPodVolumes
            bound["spec"]["claimRef"] = _ref(claim)
            bound["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
        return
    storage_class = kube.peek("StorageClass", "", claim_class(claim))
    if storage_class is not None and storage_class["provisioner"] == NO_PROVISIONER:
        world.event("PersistentVolumeClaim", namespace, name, "FailedBinding", "no persistent volumes available")
    elif _annotations(claim).get(SELECTED_NODE) != node:
        with kube.edit("PersistentVolumeClaim", namespace, name, SCHEDULER) as selected:
            selected["metadata"].setdefault("annotations", {})[SELECTED_NODE] = node


# -- PV controller -----------------------------------------------------------------------------------


def pv_controller(world: World) -> None:
    """pkg/controller/volume/persistentvolume/pv_controller.go: syncClaim for every claim, then
    syncVolume for every PV."""
    for namespace, name in world.kube.names("PersistentVolumeClaim"):
        _sync_claim(world, namespace, name)
    for _, name in world.kube.names("PersistentVolume"):
        _sync_volume(world, name)


def _sync_claim(world: World, namespace: str, name: str) -> None:
    claim = world.kube.peek("PersistentVolumeClaim", namespace, name)
    if claim is None:
        return
    if BIND_COMPLETED in _annotations(claim):
        _sync_bound_claim(world, claim)
    else:
        _sync_unbound_claim(world, claim)


def _sync_unbound_claim(world: World, claim: dict[str, Any]) -> None:
    """syncUnboundClaim."""
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    storage_class = kube.peek("StorageClass", "", claim_class(claim))
    delay = storage_class is not None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"
    wanted = claim["spec"].get("volumeName")
    if not wanted:
        pv = find_matching_volume(world, claim, delay_binding=delay)
        if pv is not None:
            _bind(world, pv["metadata"]["name"], claim)
            return
        if "storageClassName" not in claim["spec"] and kube.default_class() is not None:
            with kube.edit("PersistentVolumeClaim", namespace, name, CONTROLLER_MANAGER) as assigned:
                assigned["spec"]["storageClassName"] = kube.default_class()  # assignDefaultStorageClass
            return
        if delay and SELECTED_NODE not in _annotations(claim):
            world.event(
                "PersistentVolumeClaim",
                namespace,
                name,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
        elif claim_class(claim):
            _provision_claim(world, claim, storage_class)
        else:
            world.event(
                "PersistentVolumeClaim",
                namespace,
                name,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
        return
    pv = kube.peek("PersistentVolume", "", wanted)
    if pv is None:
        return  # the PV may appear later; the claim stays Pending
    if not pv["spec"].get("claimRef"):
        problem = _satisfies(pv, claim)
        if problem:
            world.event(
                "PersistentVolumeClaim",
                namespace,
                name,
                "VolumeMismatch",
                f'Cannot bind to requested volume "{wanted}": {problem}',
            )
        else:
            _bind(world, wanted, claim)
    elif is_bound_to(pv, claim):
        _bind(world, wanted, claim)
    else:
        world.event(
            "PersistentVolumeClaim",
            namespace,
            name,
            "FailedBinding",
            f'volume "{wanted}" already bound to a different claim.',
        )


def _provision_claim(world: World, claim: dict[str, Any], storage_class: dict[str, Any] | None) -> None:
    """provisionClaim / provisionClaimOperationExternal: name the provisioner in the claim's
    annotations (the CSI driver's name for a migrated in-tree class) and leave the work to it. The
    in-tree aws-ebs provisioner itself is not modelled: with CSI migration off nothing provisions."""
    if storage_class is None:
        world.event(
            "PersistentVolumeClaim",
            claim["metadata"]["namespace"],
            claim["metadata"]["name"],
            "ProvisioningFailed",
            f'storageclass.storage.k8s.io "{claim_class(claim)}" not found',
        )
        return
    provisioner = storage_class["provisioner"]
    if provisioner == NO_PROVISIONER:
        return
    migrated = provisioner == IN_TREE_PLUGIN and world.csi_migration
    name = CSI_DRIVER if migrated else provisioner
    annotations = _annotations(claim)
    if annotations.get(STORAGE_PROVISIONER) == name and (not migrated or annotations.get(MIGRATED_TO) == CSI_DRIVER):
        return
    with world.kube.edit(
        "PersistentVolumeClaim", claim["metadata"]["namespace"], claim["metadata"]["name"], CONTROLLER_MANAGER
    ) as changed:
        added = changed["metadata"].setdefault("annotations", {})
        added[STORAGE_PROVISIONER] = added[BETA_STORAGE_PROVISIONER] = name
        if migrated:
            added[MIGRATED_TO] = CSI_DRIVER
    world.event(
        "PersistentVolumeClaim",
        claim["metadata"]["namespace"],
        claim["metadata"]["name"],
        "ExternalProvisioning",
        f"Waiting for a volume to be created either by the external provisioner '{name}' or manually",
    )


def _bind(world: World, pv_name: str, claim: dict[str, Any]) -> None:
    """bind: claimRef (with uid) on the PV, Bound; volumeName and bind-completed on the claim, Bound."""
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    pv = kube.peek("PersistentVolume", "", pv_name)
    assert pv is not None
    prebound = is_bound_to(pv, claim)
    with kube.edit("PersistentVolume", "", pv_name, CONTROLLER_MANAGER) as volume:
        volume["spec"]["claimRef"] = _ref(claim)
        if not prebound:
            volume["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
        volume["status"] = {"phase": "Bound"}
    with kube.edit("PersistentVolumeClaim", namespace, name, CONTROLLER_MANAGER) as bound:
        annotations = bound["metadata"].setdefault("annotations", {})
        if not bound["spec"].get("volumeName"):
            annotations[BOUND_BY_CONTROLLER] = "yes"
        bound["spec"]["volumeName"] = pv_name
        annotations[BIND_COMPLETED] = "yes"
        bound["status"] = {
            "phase": "Bound",
            "accessModes": list(pv["spec"].get("accessModes") or []),
            "capacity": dict(pv["spec"]["capacity"]),
        }


def _sync_bound_claim(world: World, claim: dict[str, Any]) -> None:
    """syncBoundClaim: a claim whose PV is gone, or names another claim, is Lost."""
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    pv_name = claim["spec"].get("volumeName")
    pv = kube.peek("PersistentVolume", "", pv_name) if pv_name else None
    if pv is not None and not pv["spec"].get("claimRef"):
        _bind(world, pv_name or "", claim)
        return
    if pv is not None and pv["spec"]["claimRef"].get("uid") == claim["metadata"]["uid"]:
        if (pv.get("status") or {}).get("phase") != "Bound":
            _bind(world, pv_name or "", claim)
        return
    if claim["status"].get("phase") != "Lost":
        reason = "ClaimMisbound" if pv is not None else "ClaimLost"
        with kube.edit("PersistentVolumeClaim", namespace, name, CONTROLLER_MANAGER) as lost:
            lost["status"] = {"phase": "Lost"}
        world.event("PersistentVolumeClaim", namespace, name, reason, "Bound claim has lost its PersistentVolume")


def _sync_volume(world: World, name: str) -> None:
    """syncVolume: Available when unclaimed or pre-bound (claimRef without uid); Released when the
    claim it names by uid is gone (then reclaimVolume); a PV whose claim bound another PV is released
    (dynamically provisioned + Delete) or unbound."""
    kube = world.kube
    _migration_annotation(world, name)
    pv = kube.peek("PersistentVolume", "", name)
    if pv is None:
        return
    ref = pv["spec"].get("claimRef")
    phase = (pv.get("status") or {}).get("phase")
    if not ref or not ref.get("uid"):
        _set_phase(world, name, "Available")
        return
    claim = kube.peek("PersistentVolumeClaim", ref.get("namespace", ""), ref.get("name", ""))
    if claim is not None and claim["metadata"]["uid"] != ref["uid"]:
        claim = None
    if claim is None:
        if phase not in ("Released", "Failed"):
            _set_phase(world, name, "Released")
        _reclaim_volume(world, name)
    elif claim["spec"].get("volumeName") == name:
        _set_phase(world, name, "Bound")
    elif claim["spec"].get("volumeName"):
        if PROVISIONED_BY in _annotations(pv) and pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete":
            if phase not in ("Released", "Failed"):
                _set_phase(world, name, "Released")
            _reclaim_volume(world, name)
        else:
            with kube.edit("PersistentVolume", "", name, CONTROLLER_MANAGER) as unbound:  # unbindVolume
                if BOUND_BY_CONTROLLER in _annotations(unbound):
                    unbound["spec"].pop("claimRef")
                    del unbound["metadata"]["annotations"][BOUND_BY_CONTROLLER]
                else:
                    unbound["spec"]["claimRef"]["uid"] = ""
                unbound["status"] = {"phase": "Available"}


def _set_phase(world: World, name: str, phase: str) -> None:
    pv = world.kube.peek("PersistentVolume", "", name)
    if pv is not None and (pv.get("status") or {}).get("phase") != phase:
        with world.kube.edit("PersistentVolume", "", name, CONTROLLER_MANAGER) as changed:
            changed["status"] = {"phase": phase}


def _migration_annotation(world: World, name: str) -> None:
    """updateVolumeMigrationAnnotationsAndFinalizers: a PV the in-tree aws-ebs plugin provisioned
    carries `migrated-to: ebs.csi.aws.com` exactly while CSI migration is on."""
    pv = world.kube.peek("PersistentVolume", "", name)
    if pv is None or _annotations(pv).get(PROVISIONED_BY) != IN_TREE_PLUGIN:
        return
    if world.csi_migration != (_annotations(pv).get(MIGRATED_TO) == CSI_DRIVER):
        with world.kube.edit("PersistentVolume", "", name, CONTROLLER_MANAGER) as changed:
            annotations = changed["metadata"]["annotations"]
            if world.csi_migration:
                annotations[MIGRATED_TO] = CSI_DRIVER
            else:
                annotations.pop(MIGRATED_TO, None)


def _reclaim_volume(world: World, name: str) -> None:
    """reclaimVolume: migrated and CSI PVs are left to the external-provisioner; Retain keeps the PV
    Released; Delete of a non-migrated in-tree PV deletes the EBS volume through the in-tree plugin
    (retried while the volume is in use), then the PV; Recycle fails (no recycler for EBS)."""
    pv = world.kube.peek("PersistentVolume", "", name)
    if pv is None or MIGRATED_TO in _annotations(pv) or "csi" in pv["spec"]:
        return
    policy = pv["spec"]["persistentVolumeReclaimPolicy"]
    if policy == "Delete" and world.csi_migration:
        # The in-tree aws-ebs plugin is gone from kube-controller-manager (Kubernetes 1.27); only PVs
        # annotated migrated-to are deleted, by the external-provisioner.
        _set_phase(world, name, "Failed")
        world.event(
            "PersistentVolume",
            "",
            name,
            "VolumeFailedDelete",
            f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched',
        )
    elif policy == "Recycle":
        _set_phase(world, name, "Failed")
        world.event("PersistentVolume", "", name, "VolumeFailedRecycle", "No recycler plugin found for the volume!")
    elif policy == "Delete":
        volume_id = pv_volume_id(pv)
        try:
            if volume_id and world.ebs.exists(volume_id):
                world.ebs.delete_volume(volume_id)
        except ClientError as err:
            world.event("PersistentVolume", "", name, "VolumeDelete", str(err))
            return
        world.kube.delete_object("PersistentVolume", "", name)


# -- protection controllers ---------------------------------------------------------------------------


def pvc_protection(world: World) -> None:
    """pkg/controller/volume/pvcprotection: a claim keeps kubernetes.io/pvc-protection while any
    scheduled pod names it (podUsesPVC: terminating pods included); the finalizer is added to claims
    that lack it."""
    kube = world.kube
    for namespace, name in kube.names("PersistentVolumeClaim"):
        claim = kube.peek("PersistentVolumeClaim", namespace, name)
        if claim is None:
            continue
        if not _deleting(claim):
            kube.add_finalizer("PersistentVolumeClaim", namespace, name, PVC_PROTECTION, CONTROLLER_MANAGER)
            continue
        used = any(p["spec"].get("nodeName") and name in pod_claims(p) for p in kube.view("Pod", namespace))
        if not used:
            kube.remove_finalizer("PersistentVolumeClaim", namespace, name, PVC_PROTECTION, CONTROLLER_MANAGER)


def pv_protection(world: World) -> None:
    """pkg/controller/volume/pvprotection: a PV keeps kubernetes.io/pv-protection while it is Bound."""
    kube = world.kube
    for _, name in kube.names("PersistentVolume"):
        pv = kube.peek("PersistentVolume", "", name)
        if pv is None:
            continue
        if not _deleting(pv):
            kube.add_finalizer("PersistentVolume", "", name, PV_PROTECTION, CONTROLLER_MANAGER)
        elif (pv.get("status") or {}).get("phase") != "Bound":
            kube.remove_finalizer("PersistentVolume", "", name, PV_PROTECTION, CONTROLLER_MANAGER)


# -- snapshot controller and the csi-snapshotter sidecar ----------------------------------------------


def snapshot_controller(world: World) -> None:
    """external-snapshotter pkg/common-controller/snapshot_controller.go: syncSnapshot for every
    VolumeSnapshot, then syncContent for every VolumeSnapshotContent."""
    for namespace, name in world.kube.names("VolumeSnapshot"):
        snapshot = world.kube.peek("VolumeSnapshot", namespace, name)
        if snapshot is None:
            continue
        if _deleting(snapshot):
            _snapshot_being_deleted(world, snapshot)
        else:
            _sync_snapshot(world, snapshot)
    for _, name in world.kube.names("VolumeSnapshotContent"):
        _sync_content(world, name)


def _status_error(world: World, snapshot: dict[str, Any], reason: str, message: str) -> None:
    """updateSnapshotErrorStatusWithEvent: readyToUse false, status.error, a Warning event."""
    namespace, name = snapshot["metadata"]["namespace"], snapshot["metadata"]["name"]
    with world.kube.edit("VolumeSnapshot", namespace, name, SNAPSHOT_CONTROLLER) as changed:
        status = changed.setdefault("status", {})
        status["readyToUse"] = False
        status["error"] = {"message": message, "time": world.ticks}
    world.event("VolumeSnapshot", namespace, name, reason, message)


def _bound_content(world: World, snapshot: dict[str, Any]) -> dict[str, Any] | None:
    """The content the snapshot is bound to, if it points back (IsVolumeSnapshotRefSet)."""
    content_name = (snapshot.get("status") or {}).get("boundVolumeSnapshotContentName")
    content = world.kube.peek("VolumeSnapshotContent", "", content_name) if content_name else None
    if content is None:
        return None
    ref = content["spec"].get("volumeSnapshotRef") or {}
    metadata = snapshot["metadata"]
    if (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (
        metadata["name"],
        metadata["namespace"],
        metadata["uid"],
    ):
        return None
    return content


def _restoring_from(world: World, snapshot: dict[str, Any]) -> bool:
    """isVolumeBeingCreatedFromSnapshot: a Pending claim of its namespace names it as dataSource."""
    for claim in world.kube.view("PersistentVolumeClaim", snapshot["metadata"]["namespace"]):
        source = claim["spec"].get("dataSource") or {}
        if (source.get("apiGroup"), source.get("kind"), source.get("name")) == (
            SNAPSHOT_GROUP,
            "VolumeSnapshot",
            snapshot["metadata"]["name"],
        ) and claim["status"].get("phase") == "Pending":
            return True
    return False


def _snapshot_being_deleted(world: World, snapshot: dict[str, Any]) -> None:
    """processSnapshotWithDeletionTimestamp / checkandRemoveSnapshotFinalizersAndCheckandDeleteContent:
    blocked while a claim restores from it; marks its content being-deleted; deletes the content when
    its deletionPolicy is Delete (keeping the bound finalizer until the content is gone)."""
    kube, namespace, name = world.kube, snapshot["metadata"]["namespace"], snapshot["metadata"]["name"]
    finalizers = snapshot["metadata"].get("finalizers") or []
    if SNAPSHOT_AS_SOURCE not in finalizers and SNAPSHOT_BOUND not in finalizers:
        return
    content = _bound_content(world, snapshot)
    if content is not None and _restoring_from(world, snapshot):
        world.event(
            "VolumeSnapshot", namespace, name, "SnapshotDeletePending", "Snapshot is being used to restore a PVC"
        )
        return
    delete_content = content is not None and content["spec"]["deletionPolicy"] == "Delete"
    if content is not None:
        content_name = content["metadata"]["name"]
        if _annotations(content).get(BEING_DELETED) != "yes":
            with kube.edit("VolumeSnapshotContent", "", content_name, SNAPSHOT_CONTROLLER) as marked:
                marked["metadata"].setdefault("annotations", {})[BEING_DELETED] = "yes"
        if delete_content and not _deleting(content):
            kube.delete_object("VolumeSnapshotContent", "", content_name)
    kube.remove_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_AS_SOURCE, SNAPSHOT_CONTROLLER)
    if not delete_content:
        kube.remove_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_BOUND, SNAPSHOT_CONTROLLER)


def _sync_snapshot(world: World, snapshot: dict[str, Any]) -> None:
    """syncSnapshot: the as-source finalizer always, the bound finalizer once bound to a content whose
    deletionPolicy is Delete (checkandAddSnapshotFinalizers); then bind and copy the content's status."""
    kube, namespace, name = world.kube, snapshot["metadata"]["namespace"], snapshot["metadata"]["name"]
    source = snapshot["spec"].get("source") or {}
    kube.add_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_AS_SOURCE, SNAPSHOT_CONTROLLER)
    if source.get("volumeSnapshotContentName"):
        content = _preprovisioned_content(world, snapshot, source["volumeSnapshotContentName"])
    else:
        content = _dynamic_content(world, snapshot, source.get("persistentVolumeClaimName", ""))
    if content is None:
        return
    content_name = content["metadata"]["name"]
    if not (content["spec"].get("volumeSnapshotRef") or {}).get("uid"):
        with kube.edit("VolumeSnapshotContent", "", content_name, SNAPSHOT_CONTROLLER) as bound:  # checkandBind
            bound["spec"]["volumeSnapshotRef"]["uid"] = snapshot["metadata"]["uid"]
            if snapshot["spec"].get("volumeSnapshotClassName"):
                bound["spec"]["volumeSnapshotClassName"] = snapshot["spec"]["volumeSnapshotClassName"]
        content = kube.peek("VolumeSnapshotContent", "", content_name) or content
    _copy_content_status(world, snapshot, content)
    if content["spec"]["deletionPolicy"] == "Delete":
        kube.add_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_BOUND, SNAPSHOT_CONTROLLER)


def _preprovisioned_content(world: World, snapshot: dict[str, Any], content_name: str) -> dict[str, Any] | None:
    """getPreprovisionedContentFromStore: the content must exist, hold a snapshotHandle, and name this
    snapshot by name, namespace and (once set) uid — a bound content never rebinds (issues 274, 321, 345)."""
    content = world.kube.peek("VolumeSnapshotContent", "", content_name)
    if content is None:
        _status_error(world, snapshot, "SnapshotContentMissing", "VolumeSnapshotContent is missing")
        return None
    if not content["spec"]["source"].get("snapshotHandle"):
        _status_error(
            world,
            snapshot,
            "SnapshotContentMismatch",
            "VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one",
        )
        return None
    ref, metadata = content["spec"].get("volumeSnapshotRef") or {}, snapshot["metadata"]
    if (ref.get("name"), ref.get("namespace")) != (metadata["name"], metadata["namespace"]) or (
        ref.get("uid") and ref["uid"] != metadata["uid"]
    ):
        _status_error(
            world,
            snapshot,
            "SnapshotContentMisbound",
            f"VolumeSnapshotContent [{content_name}] is bound to a different snapshot",
        )
        return None
    return content


def _dynamic_content(world: World, snapshot: dict[str, Any], claim_name: str) -> dict[str, Any] | None:
    """createSnapshotContent for a snapshot of a claim: `snapcontent-<uid>` from the claim's CSI PV and
    the VolumeSnapshotClass (named, or the default for the driver). In-tree PVs are not snapshotted
    through CSI (getVolumeHandleFromPV needs spec.csi)."""
    kube, namespace = world.kube, snapshot["metadata"]["namespace"]
    content_name = f"snapcontent-{snapshot['metadata']['uid']}"
    existing = kube.peek("VolumeSnapshotContent", "", content_name)
    if existing is not None:
        return existing
    claim = kube.peek("PersistentVolumeClaim", namespace, claim_name)
    pv = kube.peek("PersistentVolume", "", claim["spec"].get("volumeName", "")) if claim else None
    if claim is None or pv is None or claim["status"].get("phase") != "Bound":
        _status_error(world, snapshot, "SnapshotContentCreationFailed", f"the PVC {claim_name} is not yet bound")
        return None
    if "csi" not in pv["spec"]:
        _status_error(
            world, snapshot, "SnapshotContentCreationFailed", f"the PV {pv['metadata']['name']} is not a CSI volume"
        )
        return None
    class_name = snapshot["spec"].get("volumeSnapshotClassName")
    classes = kube.view("VolumeSnapshotClass")
    chosen = (
        [c for c in classes if c["metadata"]["name"] == class_name]
        if class_name
        else [
            c
            for c in classes
            if c["driver"] == pv["spec"]["csi"]["driver"] and _annotations(c).get(DEFAULT_SNAPSHOT_CLASS) == "true"
        ]
    )
    if len(chosen) != 1:
        _status_error(world, snapshot, "SnapshotContentCreationFailed", "no VolumeSnapshotClass for the snapshot")
        return None
    return kube.create(
        {
            "apiVersion": SNAPSHOT_API,
            "kind": "VolumeSnapshotContent",
            "metadata": {"name": content_name},
            "spec": {
                "volumeSnapshotRef": {
                    "kind": "VolumeSnapshot",
                    "namespace": namespace,
                    "name": snapshot["metadata"]["name"],
                    "uid": snapshot["metadata"]["uid"],
                },
                "source": {"volumeHandle": pv["spec"]["csi"]["volumeHandle"]},
                "driver": chosen[0]["driver"],
                "deletionPolicy": chosen[0]["deletionPolicy"],
                "volumeSnapshotClassName": chosen[0]["metadata"]["name"],
                "sourceVolumeMode": _volume_mode(pv),
            },
        },
        SNAPSHOT_CONTROLLER,
    )


def _copy_content_status(world: World, snapshot: dict[str, Any], content: dict[str, Any]) -> None:
    """updateSnapshotStatus: boundVolumeSnapshotContentName, readyToUse, restoreSize, creationTime and
    error come from the content's status (which the sidecar fills)."""
    status = content.get("status") or {}
    wanted: dict[str, Any] = {
        "boundVolumeSnapshotContentName": content["metadata"]["name"],
        "readyToUse": bool(status.get("readyToUse")),
    }
    if status.get("restoreSize") is not None:
        wanted["restoreSize"] = gib_quantity(int(status["restoreSize"]))
    if status.get("creationTime") is not None:
        wanted["creationTime"] = status["creationTime"]
    if status.get("error"):
        wanted["error"] = status["error"]
    current = snapshot.get("status") or {}
    if any(current.get(k) != v for k, v in wanted.items()) or (wanted["readyToUse"] and "error" in current):
        with world.kube.edit(
            "VolumeSnapshot", snapshot["metadata"]["namespace"], snapshot["metadata"]["name"], SNAPSHOT_CONTROLLER
        ) as changed:
            merged = {**(changed.get("status") or {}), **wanted}
            if wanted["readyToUse"] and "error" not in status:
                merged.pop("error", None)
            changed["status"] = merged


def _sync_content(world: World, name: str) -> None:
    """syncContent (common controller): a content bound by uid gets the bound-protection finalizer; a
    content whose snapshot is being deleted is marked being-deleted. A content whose snapshot is gone
    is left alone (no deletion is triggered for it)."""
    kube = world.kube
    content = kube.peek("VolumeSnapshotContent", "", name)
    if content is None:
        return
    ref = content["spec"].get("volumeSnapshotRef") or {}
    if not ref.get("uid"):
        return
    if not _deleting(content):
        kube.add_finalizer("VolumeSnapshotContent", "", name, CONTENT_BOUND, SNAPSHOT_CONTROLLER)
    snapshot = kube.peek("VolumeSnapshot", ref.get("namespace", ""), ref.get("name", ""))
    if snapshot is not None and snapshot["metadata"]["uid"] == ref["uid"] and _deleting(snapshot):
        finalizers = snapshot["metadata"].get("finalizers") or []
        if (SNAPSHOT_AS_SOURCE in finalizers or SNAPSHOT_BOUND in finalizers) and BEING_DELETED not in _annotations(
            content
        ):
            with kube.edit("VolumeSnapshotContent", "", name, SNAPSHOT_CONTROLLER) as marked:
                marked["metadata"].setdefault("annotations", {})[BEING_DELETED] = "yes"


def snapshotter_sidecar(world: World) -> None:
    """external-snapshotter pkg/sidecar-controller/snapshot_controller.go (runs in the driver's
    controller pod): deletes a content's EBS snapshot through the driver when it should
    (shouldDelete: being deleted and either unbound pre-provisioned or marked being-deleted; Retain
    keeps the EBS snapshot) and then removes the bound-protection finalizer; otherwise creates the
    snapshot of a dynamic content, and fills a content's status from the driver (ListSnapshots:
    readyToUse when the EBS snapshot is completed, restoreSize its size) until it is ready."""
    kube = world.kube
    for _, name in kube.names("VolumeSnapshotContent"):
        content = kube.peek("VolumeSnapshotContent", "", name)
        if content is None or content["spec"]["driver"] != CSI_DRIVER:
            continue
        source, status = content["spec"]["source"], content.get("status") or {}
        should_delete = _deleting(content) and (
            (source.get("snapshotHandle") and not (content["spec"].get("volumeSnapshotRef") or {}).get("uid"))
            or _annotations(content).get(BEING_DELETED) == "yes"
        )
        if should_delete:
            deletes = content["spec"]["deletionPolicy"] == "Delete" and status.get("snapshotHandle")
            if deletes and not _driver_delete_snapshot(world, name, status["snapshotHandle"]):
                continue
            kube.remove_finalizer("VolumeSnapshotContent", "", name, CONTENT_BOUND, SNAPSHOTTER)
        elif _deleting(content) or status.get("readyToUse"):
            continue
        elif source.get("volumeHandle") and not status:
            _driver_create_snapshot(world, content)
        else:
            _driver_snapshot_status(world, content)


def _content_error(world: World, name: str, reason: str, message: str) -> None:
    with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as changed:
        changed.setdefault("status", {})["error"] = {"message": message, "time": world.ticks}
    world.event("VolumeSnapshotContent", "", name, reason, message)


def _driver_delete_snapshot(world: World, name: str, snapshot_id: str) -> bool:
    """Driver DeleteSnapshot (pkg/driver/controller.go: a missing snapshot is success) under the IAM
    policy's tag condition; on success the content's status handle is cleared (clearVolumeContentStatus)."""
    try:
        if world.ebs.snapshot_exists(snapshot_id):
            if not driver_policy_allows(world.driver_policy, "DeleteSnapshot", world.ebs.snapshot_tags(snapshot_id)):
                raise ClientError(
                    {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized: ec2:DeleteSnapshot"}},
                    "DeleteSnapshot",
                )
            world.ebs.delete_snapshot(snapshot_id)
    except ClientError as err:
        _content_error(world, name, "SnapshotDeleteError", f'Could not delete snapshot ID "{snapshot_id}": {err}')
        return False
    with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as cleared:
        cleared["status"] = {}
    return True


def _driver_create_snapshot(world: World, content: dict[str, Any]) -> None:
    """Driver CreateSnapshot for a dynamic content, tagged CSIVolumeSnapshotName and
    ebs.csi.aws.com/cluster=true (pkg/driver/controller.go, pkg/cloud/cloud.go)."""
    name, volume_id = content["metadata"]["name"], content["spec"]["source"]["volumeHandle"]
    ref = content["spec"]["volumeSnapshotRef"]
    try:
        if not driver_policy_allows(world.driver_policy, "CreateSnapshot", world.ebs.tags(volume_id)):
            raise ClientError(
                {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized: ec2:CreateSnapshot"}},
                "CreateSnapshot",
            )
        snapshot_id = world.ebs.create_snapshot(
            volume_id,
            f"Created by AWS EBS CSI driver for volume {volume_id}",
            {"CSIVolumeSnapshotName": f"snapshot-{ref['uid']}", "ebs.csi.aws.com/cluster": "true"},
        )
    except ClientError as err:
        _content_error(world, name, "SnapshotCreationFailed", f"Failed to create snapshot: {err}")
        return
    with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as created:
        created["status"] = {
            "snapshotHandle": snapshot_id,
            "readyToUse": False,
            "restoreSize": world.ebs.snapshot_size[snapshot_id] * GI,
            "creationTime": world.ticks,
        }


def _driver_snapshot_status(world: World, content: dict[str, Any]) -> None:
    """checkandUpdateContentStatusOperation through the driver's ListSnapshots."""
    name = content["metadata"]["name"]
    snapshot_id = content["spec"]["source"].get("snapshotHandle") or (content.get("status") or {}).get("snapshotHandle")
    if not snapshot_id or not world.ebs.snapshot_exists(snapshot_id):
        _content_error(
            world,
            name,
            "SnapshotContentCheckandUpdateFailed",
            f"Failed to check and update snapshot content: snapshot {snapshot_id} not found",
        )
        return
    wanted = {
        "snapshotHandle": snapshot_id,
        "readyToUse": world.ebs.snapshot_state(snapshot_id) == "completed",
        "restoreSize": world.ebs.snapshot_size[snapshot_id] * GI,
        "creationTime": (content.get("status") or {}).get("creationTime", world.ticks),
    }
    if content.get("status") != wanted:
        with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as updated:
            updated["status"] = wanted


# -- external-provisioner with the EBS CSI driver ------------------------------------------------------

# The StorageClass parameter keys the driver's CreateVolume accepts (pkg/driver/constants.go; keys are
# matched lowercased), after the provisioner has removed its own csi.storage.k8s.io/ keys.
DRIVER_PARAMETERS = frozenset(
    {
        "fstype",
        "type",
        "iopspergb",
        "allowautoiopspergbincrease",
        "allowautoiopsincreaseonmodify",
        "volumeinitializationrate",
        "iops",
        "throughput",
        "encrypted",
        "kmskeyid",
        "blockexpress",
        "blocksize",
        "inodesize",
        "bytesperinode",
        "numberofinodes",
        "ext4bigalloc",
        "ext4clustersize",
        "ext4encryptionsupport",
        "blockattachuntilinitialized",
        "outpostarn",
    }
)


def external_provisioner(world: World) -> None:
    """kubernetes-csi/external-provisioner (sig-storage-lib-external-provisioner controller.go with
    pkg/controller/controller.go): provisions claims the PV controller handed to ebs.csi.aws.com
    (shouldProvision; WaitForFirstConsumer only once a node is selected), and deletes the volumes of
    Released PVs with reclaim policy Delete that are its own (isProvisionerForVolume), keeping its
    finalizer on them meanwhile (handleProtectionFinalizer)."""
    for namespace, name in world.kube.names("PersistentVolumeClaim"):
        claim = world.kube.peek("PersistentVolumeClaim", namespace, name)
        if claim is not None and claim["status"].get("phase") == "Pending" and not claim["spec"].get("volumeName"):
            _provision(world, claim)
    for _, name in world.kube.names("PersistentVolume"):
        _reclaim_csi_volume(world, name)


def _provision(world: World, claim: dict[str, Any]) -> None:
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    annotations = _annotations(claim)
    provisioner = annotations.get(STORAGE_PROVISIONER) or annotations.get(BETA_STORAGE_PROVISIONER)
    if provisioner != CSI_DRIVER and annotations.get(MIGRATED_TO) != CSI_DRIVER:
        return
    storage_class = kube.peek("StorageClass", "", claim_class(claim))
    if storage_class is None:
        return
    node = annotations.get(SELECTED_NODE)
    if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
        return
    pv_name = f"pvc-{claim['metadata']['uid']}"  # makeVolumeName
    if kube.peek("PersistentVolume", "", pv_name) is not None:
        return  # provisioned already; the PV controller binds it
    try:
        snapshot_id = _snapshot_source(world, claim, storage_class)
        volume_id, zone, fs_type = _driver_create_volume(world, claim, storage_class, node, pv_name, snapshot_id)
    except ProvisioningError as err:
        world.event("PersistentVolumeClaim", namespace, name, "ProvisioningFailed", str(err))
        return
    migrated = storage_class["provisioner"] == IN_TREE_PLUGIN
    source: dict[str, Any]
    if migrated:  # the provisioner translates the PV back to the in-tree source (csi-translation-lib)
        source = {"awsElasticBlockStore": {"volumeID": f"aws://{zone}/{volume_id}", "fsType": fs_type}}
    else:
        source = {"csi": {"driver": CSI_DRIVER, "volumeHandle": volume_id}}
        if _volume_mode(claim) == "Filesystem":
            source["csi"]["fsType"] = fs_type
    policy = storage_class.get("reclaimPolicy", "Delete")
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": pv_name,
                "annotations": {
                    PROVISIONED_BY: storage_class["provisioner"],
                    **({MIGRATED_TO: CSI_DRIVER} if migrated else {}),
                },
                "finalizers": [PROVISIONER_FINALIZER] if policy == "Delete" else [],
            },
            "spec": {
                **source,
                "capacity": {"storage": f"{world.ebs.size(volume_id)}Gi"},
                "accessModes": list(claim["spec"]["accessModes"]),
                "volumeMode": _volume_mode(claim),
                "storageClassName": storage_class["metadata"]["name"],
                "persistentVolumeReclaimPolicy": policy,
                "mountOptions": list(storage_class.get("mountOptions") or []),
                "claimRef": _ref(claim),
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [zone]}]}
                        ]
                    }
                },
            },
        },
        PROVISIONER,
    )
    world.event(
        "PersistentVolumeClaim", namespace, name, "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}"
    )


class ProvisioningError(Exception):
    """Why the provisioner or the driver could not provision a claim (a ProvisioningFailed event)."""


def _snapshot_source(world: World, claim: dict[str, Any], storage_class: dict[str, Any]) -> str | None:
    """getSnapshotSource: the EBS snapshot to restore from, only when the VolumeSnapshot exists and
    is not being deleted, is bound to a content that names it back by uid, the content's driver is
    the class's provisioner, it is readyToUse with a snapshotHandle, the request is at least its
    restoreSize, and the volume modes agree when the content sets sourceVolumeMode
    (--prevent-volume-mode-conversion)."""
    source = claim["spec"].get("dataSource")
    if source is None:
        return None
    if (source.get("apiGroup"), source.get("kind")) != (SNAPSHOT_GROUP, "VolumeSnapshot"):
        raise ProvisioningError(f"data source {source.get('kind')} is not supported by this simulation")
    namespace, name = claim["metadata"]["namespace"], source["name"]
    snapshot = world.kube.peek("VolumeSnapshot", namespace, name) if world.kube.crds_installed else None
    if snapshot is None:
        raise ProvisioningError(f"error getting snapshot {name} from api server: not found")
    if _deleting(snapshot):
        raise ProvisioningError(f"snapshot {name} is being deleted")
    content_name = (snapshot.get("status") or {}).get("boundVolumeSnapshotContentName")
    if not content_name:
        raise ProvisioningError(f"snapshot {name} not bound")
    content = world.kube.peek("VolumeSnapshotContent", "", content_name)
    if content is None:
        raise ProvisioningError(f"error getting snapshotcontent {content_name} for snapshot {name}")
    ref = content["spec"].get("volumeSnapshotRef") or {}
    if (ref.get("uid"), ref.get("namespace"), ref.get("name")) != (snapshot["metadata"]["uid"], namespace, name):
        raise ProvisioningError(f"snapshotcontent {content_name} for snapshot {name} is bound to a different snapshot")
    if content["spec"]["driver"] != storage_class["provisioner"]:
        raise ProvisioningError(
            f"snapshotcontent {content_name} for snapshot {name} is handled by a different CSI driver than "
            f"requested by StorageClass {storage_class['metadata']['name']}"
        )
    if not (snapshot.get("status") or {}).get("readyToUse"):
        raise ProvisioningError(f"snapshot {name} is not Ready")
    handle = (content.get("status") or {}).get("snapshotHandle")
    if not handle:
        raise ProvisioningError(f"snapshot handle {name} is not available")
    restore_size = snapshot["status"].get("restoreSize")
    if restore_size is not None and claim_request(claim) < quantity(restore_size):
        raise ProvisioningError(
            f"requested volume size {claim_request(claim)} is less than the size {quantity(restore_size)} for the "
            f"source snapshot {name}"
        )
    mode = content["spec"].get("sourceVolumeMode")
    if mode is not None and "volumeMode" in claim["spec"] and mode != _volume_mode(claim):
        raise ProvisioningError(
            f"requested volume {namespace}/{claim['metadata']['name']} modifies the mode of the source volume but "
            "does not have permission to do so"
        )
    return str(handle)


def _driver_create_volume(
    world: World,
    claim: dict[str, Any],
    storage_class: dict[str, Any],
    node: str | None,
    pv_name: str,
    snapshot_id: str | None,
) -> tuple[str, str, str]:
    """The provisioner's request (prepareProvision: fstype from csi.storage.k8s.io/fstype or fstype,
    default ext4; size rounded up to GiB; extraCreateMetadata) and the driver's CreateVolume
    (pkg/driver/controller.go: unknown parameters are InvalidArgument; type defaults to gp3; tags
    CSIVolumeName, ebs.csi.aws.com/cluster=true, created-for pvc/pv, tagSpecification_N "k=v")."""
    parameters = dict(storage_class.get("parameters") or {})
    fs_keys = [k for k in parameters if k.lower() == "fstype" or k == "csi.storage.k8s.io/fstype"]
    if len(fs_keys) > 1:
        raise ProvisioningError(
            'fstype specified in parameters with both "fstype" and "csi.storage.k8s.io/fstype" keys'
        )
    fs_type = str(parameters[fs_keys[0]]) if fs_keys else "ext4"
    driver_parameters = {k: str(v) for k, v in parameters.items() if not k.startswith("csi.storage.k8s.io/")}
    tags = {
        "CSIVolumeName": pv_name,
        "ebs.csi.aws.com/cluster": "true",
        "kubernetes.io/created-for/pvc/name": claim["metadata"]["name"],
        "kubernetes.io/created-for/pvc/namespace": claim["metadata"]["namespace"],
        "kubernetes.io/created-for/pv/name": pv_name,
    }
    for key, value in sorted(driver_parameters.items()):
        if key.startswith("tagSpecification"):
            tag_key, _, tag_value = value.partition("=")
            tags[tag_key] = tag_value
        elif key.lower() not in DRIVER_PARAMETERS:
            raise ProvisioningError(
                f"rpc error: code = InvalidArgument desc = Invalid parameter key {key} for CreateVolume"
            )
    lowered = {k.lower(): v for k, v in driver_parameters.items()}
    size = max(1, math.ceil(claim_request(claim) / GI))
    iops = int(lowered["iops"]) if "iops" in lowered else None
    if iops is None and "iopspergb" in lowered:
        iops = int(lowered["iopspergb"]) * size
    throughput = int(lowered["throughput"]) if "throughput" in lowered else None
    encrypted = lowered.get("encrypted", "false").lower() == "true"
    kms_key_id = lowered.get("kmskeyid") if encrypted else None
    volume_type = lowered.get("type", "gp3")
    zone = world.nodes[node].zone if node else world.rng.choice(sorted({n.zone for n in world.nodes.values()}))
    try:
        if snapshot_id is None:
            volume_id = world.ebs.create_volume(
                zone=zone,
                size_gib=size,
                volume_type=volume_type,
                tags=tags,
                iops=iops,
                throughput=throughput,
                encrypted=encrypted,
                kms_key_id=kms_key_id,
            )
        else:
            if not driver_policy_allows(
                world.driver_policy, "CreateVolumeFromSnapshot", world.ebs.snapshot_tags(snapshot_id)
            ):
                raise ClientError(
                    {
                        "Error": {
                            "Code": "UnauthorizedOperation",
                            "Message": f"not authorized: ec2:CreateVolume on {snapshot_id}",
                        }
                    },
                    "CreateVolume",
                )
            volume_id = world.ebs.create_volume_from_snapshot(
                snapshot_id, zone, volume_type, iops, throughput, encrypted, kms_key_id, tags, size_gib=size
            )
    except ClientError as err:
        raise ProvisioningError(
            f'rpc error: code = Internal desc = Could not create volume "{pv_name}": {err}'
        ) from err
    return volume_id, zone, fs_type


def _reclaim_csi_volume(world: World, name: str) -> None:
    """The provisioner's syncVolume: its PVs (provisioned-by or migrated-to ebs.csi.aws.com, or static
    CSI PVs of the driver) keep its finalizer while Delete; a Released Delete PV has its volume deleted
    (not while attached: canDeleteVolume; the driver treats a missing volume as deleted) and then the
    PV object."""
    kube = world.kube
    pv = kube.peek("PersistentVolume", "", name)
    if pv is None:
        return
    annotations = _annotations(pv)
    if PROVISIONED_BY in annotations:
        ours = CSI_DRIVER in (annotations[PROVISIONED_BY], annotations.get(MIGRATED_TO))
    else:
        ours = (pv["spec"].get("csi") or {}).get("driver") == CSI_DRIVER or annotations.get(MIGRATED_TO) == CSI_DRIVER
    if not ours:
        return
    policy, phase = pv["spec"]["persistentVolumeReclaimPolicy"], (pv.get("status") or {}).get("phase")
    finalizers = pv["metadata"].get("finalizers") or []
    if policy == "Delete" and not _deleting(pv) and phase == "Bound":
        kube.add_finalizer("PersistentVolume", "", name, PROVISIONER_FINALIZER, PROVISIONER)
    elif policy != "Delete":
        kube.remove_finalizer("PersistentVolume", "", name, PROVISIONER_FINALIZER, PROVISIONER)
    if policy != "Delete" or phase != "Released" or (_deleting(pv) and PROVISIONER_FINALIZER not in finalizers):
        return
    volume_id = pv_volume_id(pv)
    try:
        if volume_id and world.ebs.exists(volume_id):
            if world.ebs.attached_to(volume_id):
                raise ProvisioningError(f"persistentvolume {name} is still attached to node")
            if not driver_policy_allows(world.driver_policy, "DeleteVolume", world.ebs.tags(volume_id)):
                raise ProvisioningError(
                    f'rpc error: code = Internal desc = Could not delete volume ID "{volume_id}": UnauthorizedOperation'
                )
            world.ebs.delete_volume(volume_id)
    except (ProvisioningError, ClientError) as err:
        world.event("PersistentVolume", "", name, "VolumeFailedDelete", str(err))
        return
    kube.delete_object("PersistentVolume", "", name)
    kube.remove_finalizer("PersistentVolume", "", name, PROVISIONER_FINALIZER, PROVISIONER)
