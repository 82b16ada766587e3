"""The Kubernetes API server in the simulation: an object store with the rules the migration meets.

- create fails with AlreadyExists on an existing name, even a terminating one (apiserver
  `registry/generic/registry/store.go` Create);
- delete sets `deletionTimestamp`; the object goes once its finalizers are empty (store.go Delete);
- updates of immutable fields are Invalid: a PVC's spec except `resources.requests` and
  `volumeAttributesClassName` (`pkg/apis/core/validation` ValidatePersistentVolumeClaimUpdate), a PV's
  volume source (ValidatePersistentVolumeUpdate), a StorageClass's parameters, provisioner,
  reclaimPolicy and volumeBindingMode (`pkg/apis/storage/validation` ValidateStorageClassUpdate), a
  VolumeSnapshot's and a VolumeSnapshotContent's `spec.source` (the v8 CRDs' CEL rules,
  `x-kubernetes-validations: self == oldSelf`);
- server-side apply records which manager owns each field; a field another manager owns with
  another value is a Conflict unless forced; a manager relinquishing a field it alone owns removes
  it, and for `spec.replicas` the API default 1 comes back (`staging/.../fieldmanager`, apps/v1
  defaults).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

NAMESPACED = {"PersistentVolumeClaim", "VolumeSnapshot", "Deployment", "StatefulSet", "Pod", "Secret"}
SNAPSHOT_KINDS = {"VolumeSnapshot", "VolumeSnapshotContent", "VolumeSnapshotClass"}


class KubeError(Exception):
    STATUS = {"AlreadyExists": 409, "NotFound": 404, "Conflict": 409, "Invalid": 422, "Forbidden": 403}

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.status = self.STATUS.get(reason, 500)


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _remove(target: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    node: Any = target
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def _immutable_paths(kind: str) -> tuple[str, ...]:
    return {
        "PersistentVolume": ("spec.awsElasticBlockStore", "spec.csi", "spec.nodeAffinity"),
        "StorageClass": ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"),
        "VolumeSnapshot": ("spec.source",),
        "VolumeSnapshotContent": ("spec.source",),
    }.get(kind, ())


class Store:
    def __init__(self, now: Any):
        self._now = now
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.managers: dict[tuple[str, str, str], dict[str, str]] = {}
        self._uids = itertools.count(1)
        self.snapshot_api = False

    @staticmethod
    def key_of(obj: dict[str, Any]) -> tuple[str, str, str]:
        kind = obj["kind"].removesuffix("Patch")
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") or ("default" if kind in NAMESPACED else "")
        return kind, namespace, metadata["name"]

    # -- reads -----------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace or ("default" if kind in NAMESPACED else ""), name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            o for (k, ns, _), o in sorted(self.objects.items()) if k == kind and (namespace is None or ns == namespace)
        ]

    def live(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (controllers mutate it)."""
        return self.objects.get((kind, namespace, name))

    # -- writes ----------------------------------------------------------------------------------

    def _check_kind(self, kind: str) -> None:
        if kind in SNAPSHOT_KINDS and not self.snapshot_api:
            raise KubeError("NotFound", f'no matches for kind "{kind}" in version "snapshot.storage.k8s.io/v1"')

    def create(self, obj: dict[str, Any], manager: str = "pulumi-kubernetes") -> dict[str, Any]:
        key = self.key_of(obj)
        self._check_kind(key[0])
        if key in self.objects:
            raise KubeError("AlreadyExists", f'{key[0]} "{key[2]}" already exists')
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        if key[1]:
            metadata["namespace"] = key[1]
        metadata["uid"] = f"uid-{next(self._uids):06d}"
        metadata["creationTimestamp"] = self._now()
        # The API server adds these protection finalizers on create (admission StorageObjectInUseProtection).
        if key[0] == "PersistentVolumeClaim":
            metadata.setdefault("finalizers", []).append("kubernetes.io/pvc-protection")
            obj.setdefault("status", {"phase": "Pending"})
        if key[0] == "PersistentVolume":
            metadata.setdefault("finalizers", []).append("kubernetes.io/pv-protection")
            obj.setdefault("status", {"phase": "Available"})
        self.objects[key] = obj
        self.managers[key] = {path: manager for path in _leaves({k: v for k, v in obj.items() if k != "status"})}
        return copy.deepcopy(obj)

    def _check_immutable(self, kind: str, before: dict[str, Any], after: dict[str, Any], name: str) -> None:
        if kind == "PersistentVolumeClaim":
            old_spec = copy.deepcopy(before.get("spec") or {})
            new_spec = copy.deepcopy(after.get("spec") or {})
            for spec in (old_spec, new_spec):
                spec.pop("volumeAttributesClassName", None)
                (spec.get("resources") or {}).pop("requests", None)
            if old_spec != new_spec:
                raise KubeError(
                    "Invalid",
                    f'PersistentVolumeClaim "{name}": spec: Forbidden: spec is immutable after creation except '
                    "resources.requests and volumeAttributesClassName for bound claims",
                )
        before_leaves, after_leaves = _leaves(before), _leaves(after)
        for prefix in _immutable_paths(kind):
            old = {p: v for p, v in before_leaves.items() if p == prefix or p.startswith(prefix + ".")}
            new = {p: v for p, v in after_leaves.items() if p == prefix or p.startswith(prefix + ".")}
            if old != new:
                raise KubeError("Invalid", f'{kind} "{name}": {prefix}: field is immutable')

    def apply(self, obj: dict[str, Any], manager: str, force: bool) -> dict[str, Any]:
        key = self.key_of(obj)
        self._check_kind(key[0])
        current = self.objects.get(key)
        if current is None:
            raise KubeError("NotFound", f'{key[0]} "{key[2]}" not found')
        owners = self.managers.setdefault(key, {})
        patch = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        current_leaves = _leaves(current)
        for path, value in _leaves(patch).items():
            owner = owners.get(path)
            if owner and owner != manager and current_leaves.get(path) != value and not force:
                raise KubeError("Conflict", f"Apply failed with 1 conflict: conflict with {owner!r}: .{path}")
        merged = copy.deepcopy(current)
        _merge(merged, patch)
        self._check_immutable(key[0], current, merged, key[2])
        self.objects[key] = merged
        for path in _leaves(patch):
            owners[path] = manager
        return copy.deepcopy(merged)

    def update(self, obj: dict[str, Any], manager: str) -> dict[str, Any]:
        return self.apply(obj, manager, force=True)

    def relinquish(self, api_version: str, kind: str, namespace: str, name: str, manager: str) -> None:
        key = (kind, namespace or ("default" if kind in NAMESPACED else ""), name)
        current = self.objects.get(key)
        if current is None:
            raise KubeError("NotFound", f'{kind} "{name}" not found')
        owners = self.managers.get(key, {})
        for path in [p for p, m in owners.items() if m == manager]:
            del owners[path]
            if path.startswith("metadata."):
                continue
            _remove(current, path)
            if path == "spec.replicas" and kind in ("Deployment", "StatefulSet"):
                current["spec"]["replicas"] = 1  # apps/v1 defaulting

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace or ("default" if kind in NAMESPACED else ""), name)
        current = self.objects.get(key)
        if current is None:
            raise KubeError("NotFound", f'{kind} "{name}" not found')
        current["metadata"].setdefault("deletionTimestamp", self._now())
        self.collect(key)

    def collect(self, key: tuple[str, str, str]) -> None:
        """Remove a deleted object whose finalizers are all gone."""
        current = self.objects.get(key)
        deleted = current is not None and current["metadata"].get("deletionTimestamp") is not None
        if deleted and current is not None and not current["metadata"].get("finalizers"):
            del self.objects[key]
            self.managers.pop(key, None)

    def remove_finalizer(self, obj: dict[str, Any], finalizer: str) -> None:
        finalizers = obj["metadata"].get("finalizers") or []
        if finalizer in finalizers:
            finalizers.remove(finalizer)
        self.collect(self.key_of(obj))

    def add_finalizer(self, obj: dict[str, Any], finalizer: str) -> None:
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if finalizer not in finalizers:
            finalizers.append(finalizer)
