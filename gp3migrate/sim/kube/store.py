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
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gp3migrate.sim.kube.crd_rules import check_crd_rules, load_crd_rules
from gp3migrate.sim.kube.fields import merge_patch, remove_path, set_path, tracked_leaves
from gp3migrate.sim.kube.names import (
    DEFAULT_CLASS,
    KINDS,
    PLURALS,
    PV_PROTECTION,
    PVC_PROTECTION,
    SNAPSHOT_KINDS,
    FieldPath,
    Key,
    KubeError,
    Names,
    Objects,
)
from gp3migrate.sim.kube.objects import annotations_of
from gp3migrate.sim.kube.validation import (
    apply_defaults,
    invalid_error,
    validate_claim,
    validate_class,
    validate_metadata,
    validate_volume,
    validate_workload,
)

# A kind's keys in order (`Cluster.list` shadows the builtin inside the class).
OrderedKeys = list[Key]


class Cluster:
    """The API server's object store: plain dicts with wire names, deep-copied in and out."""

    def __init__(self, now: Callable[[], int]):
        self._now = now
        self._objects: dict[Key, dict[str, Any]] = {}
        # The keys of each kind, and of each kind in one namespace, in order: kept in order as keys
        # come and go, so `view` and `names` neither sort nor scan the whole store on every call
        # (the controllers and the per-step invariants call them many times a tick).
        self._sorted: dict[tuple[str, str | None], OrderedKeys] = {}
        self._owners: dict[Key, dict[FieldPath, set[str]]] = {}
        self._uids = 0
        self._version = 0
        # Every object written or removed counts (World.fingerprint); resourceVersion counts only
        # writes, as the API server's does.
        self.change_count = 0
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
            raise invalid_error(
                obj.get("kind", "?"), "", "metadata.name: Required value: name or generateName is required"
            )
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

    def create(
        self, obj: dict[str, Any], manager: str = "pulumi-kubernetes", *, dry_run: bool = False
    ) -> dict[str, Any]:
        """POST: AlreadyExists on an existing name (even terminating); admission, defaults, validation.
        `dry_run` (dryRun=All, apiserver `registry/generic/registry/dryrun.go` DryRunnableStorage.Create):
        every check, and the object as it would be stored, but nothing is stored."""
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
        apply_defaults(obj)
        self._validate(obj, None)
        metadata["uid"] = f"00000000-0000-4000-8000-{self._uids + 1:012d}"
        metadata["creationTimestamp"] = self._now()
        metadata["generation"] = 1
        if dry_run:
            metadata["resourceVersion"] = str(self._version + 1)
            return obj
        self._uids += 1
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
        defaults = [c for c in self.view("StorageClass") if annotations_of(c).get(DEFAULT_CLASS) == "true"]
        if not defaults:
            return None
        newest = max(defaults, key=lambda c: (c["metadata"]["creationTimestamp"], c["metadata"]["name"]))
        return str(newest["metadata"]["name"])

    def _validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        validate_metadata(obj)
        kind = obj["kind"]
        if kind == "PersistentVolumeClaim":
            validate_claim(obj, old)
        elif kind == "PersistentVolume":
            validate_volume(obj, old)
        elif kind == "StorageClass":
            validate_class(obj, old)
        elif kind in ("Deployment", "StatefulSet"):
            validate_workload(obj, old)
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

    def _keys(self, kind: str, namespace: str | None) -> OrderedKeys:
        keys = self._sorted.get((kind, namespace))
        if keys is None:
            of_kind = self._sorted.get((kind, None))
            if of_kind is None:
                of_kind = self._sorted[(kind, None)] = sorted(k for k in self._objects if k[0] == kind)
            keys = of_kind if namespace is None else [k for k in of_kind if k[1] == namespace]
            self._sorted[(kind, namespace)] = keys
        return keys

    def _key_added(self, key: Key) -> None:
        for cached in ((key[0], None), (key[0], key[1])):
            keys = self._sorted.get(cached)
            if keys is not None:
                bisect.insort(keys, key)

    def _key_removed(self, key: Key) -> None:
        self.change_count += 1
        for cached in ((key[0], None), (key[0], key[1])):
            keys = self._sorted.get(cached)
            if keys is not None:
                del keys[bisect.bisect_left(keys, key)]

    def view(self, kind: str, namespace: str | None = None) -> Objects:
        """The live objects of a kind, by namespace and name. Read-only: controllers write with `edit`."""
        objects = self._objects
        return [objects[k] for k in self._keys(kind, namespace)]

    def names(self, kind: str, namespace: str | None = None) -> Names:
        return [(ns, n) for (_, ns, n) in self._keys(kind, namespace)]

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
        if self._objects.pop(("Pod", namespace, name), None) is not None:
            self._key_removed(("Pod", namespace, name))
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
        apply_defaults(changed)
        if validate:
            self._validate(changed, current)
        if changed.get("spec") != current.get("spec"):
            changed["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        self._store(key, changed)
        self._owners[key] = owners
        self._collect(key)

    def _store(self, key: Key, obj: dict[str, Any]) -> None:
        self._version += 1
        self.change_count += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        if key not in self._objects:
            self._key_added(key)
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
            self._key_removed(key)
            self._owners.pop(key, None)
            return None
        return copy.deepcopy(obj)

    def drop_kinds(self, kinds: frozenset[str]) -> None:
        """Deleting a CRD deletes every object of its kind."""
        for key in [k for k in self._objects if k[0] in kinds]:
            self.change_count += 1
            del self._objects[key]
            self._owners.pop(key, None)
        for cached in [c for c in self._sorted if c[0] in kinds]:
            del self._sorted[cached]
