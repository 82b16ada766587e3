"""The providers the program's resources go to, modelled on their upstream behaviour.

- Kubernetes objects (pulumi-kubernetes `provider/pkg/provider/provider.go` Diff/Create/Update/Delete/
  Read, `provider/pkg/await/await.go`): the diff compares the new inputs with the *live* object of the
  last create/update/read pruned to the shape of the old inputs (`pruneLiveState`); a change of a
  field in the kind's force-new list (`provider/pkg/provider/diff.go` `forceNew`) replaces, and a
  named object is then replaced delete-before-replace (Diff, `deleteBeforeReplace`); create fails
  with AlreadyExists on an existing object (await.go Creation, no upsert); Patch resources are
  server-side applied with their own field manager (provider.go `fieldManagerName`) and `patchForce`,
  and their delete relinquishes their fields (await.go Deletion, `ssa.Relinquish`); a PVC is awaited
  at most 5 minutes, and is ready when Bound, except on create on a WaitForFirstConsumer class, where
  it is ready while Pending only (awaiters.go untilCoreV1PersistentVolumeClaimReady); a custom
  resource is awaited only with `pulumi.com/waitFor`; Deployments and StatefulSets until their ready
  replicas match; a delete waits until the object is gone (finalizers), default timeout 10 minutes.
- Helm releases (pulumi-kubernetes `provider/pkg/provider/helm_release.go`): install fails on an
  existing release name, or on existing objects the release would own (Helm "invalid ownership
  metadata"); only a new name or namespace replaces (Diff, `forceNewFields`); import reads the
  installed release: name, namespace, the bare chart name, the chart version and the values it was
  installed with, no `repositoryOpts` (Read, importRelease, setReleaseAttributes).
- EKS add-ons (pulumi-aws `aws.eks.Addon`, EKS CreateAddon): fails with ResourceInUseException when
  the add-on exists; import reads it: version, configuration values and role, not the provider-only
  `preserve` and `resolveConflicts*` (terraform-provider-aws `eks/addon.go` resourceAddonRead); an
  update calls UpdateAddon only when one of those four changed (resourceAddonUpdate).
- EBS snapshots (pulumi-aws `aws.ebs.Snapshot`, terraform-provider-aws `ebs_snapshot.go`): volumeId
  and description force a new snapshot, tags update in place; create waits for `completed` within
  the create timeout (10 minutes by default); a create that timed out is saved with init errors and
  updated (tags only, no wait) by the next `up`.
- Dynamic resources (pulumi `sdk/python/lib/pulumi/dynamic/__main__.py`): the project's own provider
  object, unpickled from `__provider` with dill, is called as the dynamic-provider host calls it —
  `diff(id, olds, news)` with the old *outputs* as `olds` (provider.proto DiffRequest) — and each
  call holds one of the host's 4 gRPC workers while it runs (`main()`:
  `grpc.server(futures.ThreadPoolExecutor(max_workers=4))`): a fifth call waits for one, in the
  order the calls came (the executor's queue), while the engine's own steps run unbounded.
- Other AWS resources (IAM) are plain records: inputs become outputs, name changes replace.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gp3migrate.sim import clock, durations
from gp3migrate.sim.engine import UNKNOWN, Diff, PartialFailure, Provider, Resource, StepFailed
from gp3migrate.sim.program import ACCOUNT

DEFAULT_AWAIT_SECONDS = 10 * 60
# pulumi-kubernetes awaiters.go untilCoreV1PersistentVolumeClaimReady: WatchUntil(pvcReady, 5*time.Minute).
PVC_AWAIT_SECONDS = 5 * 60
WAIT_FOR = "pulumi.com/waitFor"

# pulumi-kubernetes provider/pkg/provider/diff.go `forceNew`, for the kinds this program declares.
FORCE_NEW: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "PersistentVolume"): ("spec.awsElasticBlockStore", "spec.csi", "spec.hostPath", "spec.local"),
    ("v1", "PersistentVolumeClaim"): (
        "spec.accessModes",
        "spec.selector",
        "spec.storageClassName",
        "spec.volumeName",
    ),
    ("storage.k8s.io/v1", "StorageClass"): ("parameters", "provisioner"),
}
IDENTITY_FIELDS = ("metadata.name", "metadata.namespace")
NAMESPACED_KINDS = {"PersistentVolumeClaim", "VolumeSnapshot", "Deployment", "StatefulSet", "Pod", "Secret"}


def parse_duration(value: str | None, default: float) -> float:
    """Pulumi custom timeouts: "10m", "1h30m", "45s"."""
    if not value:
        return default
    seconds = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)([hms])", value):
        seconds += float(amount) * {"h": 3600, "m": 60, "s": 1}[unit]
    return seconds or default


def leaf_paths(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted leaf paths (lists are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(leaf_paths(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def prune(live: Any, shape: Any) -> Any:
    """pulumi-kubernetes `pruneLiveState`: keep only what the inputs set."""
    if isinstance(shape, dict) and isinstance(live, dict):
        return {k: prune(live[k], v) for k, v in shape.items() if k in live}
    if isinstance(shape, list) and isinstance(live, list) and len(shape) == len(live):
        return [prune(item, s) for item, s in zip(live, shape, strict=True)]
    return live


def changed_paths(old: Any, new: Any) -> list[str]:
    before, after = leaf_paths(old), leaf_paths(new)
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p) or after.get(p) == UNKNOWN)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _ignored(paths: list[str], ignore_changes: list[str]) -> list[str]:
    return [p for p in paths if not any(_under(p, i) for i in ignore_changes)]


def jsonpath_value(obj: dict[str, Any], path: str) -> Any:
    """The small part of JSONPath `pulumi.com/waitFor` uses here: `{.a.b}`."""
    value: Any = obj
    for part in path.strip("{}").strip(".").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def wait_for_satisfied(obj: dict[str, Any], wait_for: str) -> bool:
    """`jsonpath={.status.readyToUse}=true` (pulumi-kubernetes await/condition/jsonpath.go)."""
    expression = wait_for.removeprefix("jsonpath=")
    path, _, expected = expression.partition("=")
    value = jsonpath_value(obj, path)
    if expected == "":
        return value is not None
    return str(value).lower() == expected.lower()


class SimProviders:
    """The provider of each resource type, bound to one simulated world (kept across `up`s)."""

    def __init__(self, world: Any, *, region: str, cluster_name: str):
        self.world = world
        self.region = region
        self.cluster_name = cluster_name
        self.records: dict[str, dict[str, Any]] = {}  # plain AWS records, by URN
        self._kube = KubernetesProvider(world)
        self._patch = KubernetesPatchProvider(world)
        self._helm = HelmReleaseProvider(world)
        self._addon = EksAddonProvider(world)
        self._snapshot = EbsSnapshotProvider(world)
        self._dynamic = DynamicProvider(world)
        self._config_group = ConfigGroupProvider(world)
        self._record = RecordProvider(self.records)

    def __call__(self, type_: str) -> Provider:
        if type_ == "pulumi-python:dynamic:Resource":
            return self._dynamic
        if type_ == "kubernetes:helm.sh/v3:Release":
            return self._helm
        if type_ == "kubernetes:yaml/v2:ConfigGroup":
            return self._config_group
        if type_.startswith("kubernetes:") and type_.endswith("Patch"):
            return self._patch
        if type_.startswith("kubernetes:") and not type_.startswith("kubernetes:index"):
            return self._kube
        if type_ == "aws:eks/addon:Addon":
            return self._addon
        if type_ == "aws:ebs/snapshot:Snapshot":
            return self._snapshot
        return self._record

    def remote_component(self, type_: str) -> Provider | None:
        """Multi-language components whose provider creates children (yaml/v2 ConfigGroup)."""
        return self._config_group if type_ == "kubernetes:yaml/v2:ConfigGroup" else None

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == "aws:eks/getCluster:getCluster":
            return self.cluster(args["name"])
        if token == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            url = args["url"]
            return {"arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{url.removeprefix('https://')}", "url": url}
        if token == "aws:iam/getPolicy:getPolicy":
            return {"arn": f"arn:aws:iam::aws:policy/{args['name']}", "name": args["name"]}
        raise StepFailed(f"the simulation does not answer the invoke {token}")

    def cluster(self, name: str) -> dict[str, Any]:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return {
            "name": name,
            "arn": f"arn:aws:eks:{self.region}:{ACCOUNT}:cluster/{name}",
            "endpoint": f"https://{digest[:32].upper()}.gr7.{self.region}.eks.amazonaws.com",
            "certificateAuthorities": [{"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}],
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{digest[:32]}"}]}],
            "version": "1.31",
        }


# -- Kubernetes ------------------------------------------------------------------------------


def _has_unknown(value: Any) -> bool:
    """provider.go hasComputedValue: an input a preview does not know yet (the SDK's Unknown, or the
    wire sentinel)."""
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return value == UNKNOWN or not isinstance(value, (str, bool, int, float, type(None)))


def object_ref(inputs: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name); a namespaced kind without a namespace is in `default`."""
    metadata = inputs.get("metadata") or {}
    kind = inputs["kind"].removesuffix("Patch") if inputs["kind"].endswith("Patch") else inputs["kind"]
    namespace = metadata.get("namespace") or ("default" if kind in NAMESPACED_KINDS else "")
    return inputs["apiVersion"], kind, namespace, metadata.get("name", "")


def object_id(inputs: dict[str, Any]) -> str:
    _, _, namespace, name = object_ref(inputs)
    return f"{namespace}/{name}" if namespace else name


class _KubeBase:
    def __init__(self, world: Any):
        self.world = world

    def _kube_error(self, err: Exception, what: str) -> StepFailed:
        return StepFailed(f"{what}: {err}")

    def _await_ready(self, new: Resource, live: dict[str, Any], operation: str) -> dict[str, Any]:
        """await.go: wait until the object is ready, ticking the world; PartialFailure on timeout."""
        api_version, kind, namespace, name = object_ref(new.inputs)
        ready = self._readiness(new.inputs, kind, operation)
        if ready is None:
            return live
        timeout = parse_duration(new.custom_timeouts.get(operation), DEFAULT_AWAIT_SECONDS)
        if kind == "PersistentVolumeClaim" and not new.inputs["kind"].endswith("Patch"):
            # awaiters.go untilCoreV1PersistentVolumeClaimReady: `WatchUntil(pvcReady, 5*time.Minute)`
            # inside the operation's context (await.go Creation/Update: customTimeouts, else 10m).
            timeout = min(timeout, PVC_AWAIT_SECONDS)
        deadline = self.world.clock() + timeout
        while True:
            current = self.world.kube.get(api_version, kind, namespace, name)
            if current is not None and ready(current):
                return current
            if self.world.clock() >= deadline:
                raise PartialFailure(
                    f"{kind} {object_id(new.inputs)} was not ready after {int(timeout)}s ({operation})",
                    object_id(new.inputs),
                    current or live,
                )
            clock.wait(self.world)

    def _binding_mode(self, inputs: dict[str, Any]) -> str:
        """awaiters.go pvcBindMode: the named class's volumeBindingMode; "" without a class (or one
        not found yet: the awaiter asks again at the next event)."""
        class_name = (inputs.get("spec") or {}).get("storageClassName")
        storage_class = self.world.kube.get("storage.k8s.io/v1", "StorageClass", "", class_name) if class_name else None
        return str((storage_class or {}).get("volumeBindingMode") or "")

    def _readiness(
        self, inputs: dict[str, Any], kind: str, operation: str = "create"
    ) -> Callable[[dict[str, Any]], bool] | None:
        annotations = (inputs.get("metadata") or {}).get("annotations") or {}
        if WAIT_FOR in annotations:
            condition = annotations[WAIT_FOR]
            return lambda obj: wait_for_satisfied(obj, condition)
        if kind == "PersistentVolumeClaim" and not inputs["kind"].endswith("Patch"):
            mode = [""]

            def claim_ready(obj: dict[str, Any]) -> bool:
                # pulumi-kubernetes awaiters.go untilCoreV1PersistentVolumeClaimReady (4.16.0 on).
                if not mode[0]:
                    mode[0] = self._binding_mode(inputs)
                phase = (obj.get("status") or {}).get("phase")
                if operation != "create" and phase == "Bound":
                    return True  # an update (lastOutputs set) of a bound claim
                if mode[0] == "WaitForFirstConsumer":
                    # On create: ready while Pending only. A claim already Bound when first seen
                    # (pre-bound by volumeName and synced at once) is not, and waits out the 5 minutes.
                    return phase == "Pending"
                return phase == "Bound"

            return claim_ready
        if kind in ("Deployment", "StatefulSet"):

            def rolled_out(obj: dict[str, Any]) -> bool:
                wanted = int((obj.get("spec") or {}).get("replicas", 1))
                status = obj.get("status") or {}
                return int(status.get("readyReplicas", 0) or 0) == wanted and int(status.get("replicas", 0)) == wanted

            return rolled_out
        return None

    def read(self, old: Resource) -> dict[str, Any] | None:
        api_version, kind, namespace, name = object_ref(old.inputs)
        live = self.world.kube.get(api_version, kind, namespace, name)
        if live is None:
            return None
        # await.go Read: of the kinds here only Deployments and StatefulSets (a scale Patch's
        # too) have an `awaitRead`, a one-time readiness check; one not ready is a partial error
        # that refresh saves as init errors (provider.go Read, partialError; step.go RefreshStep.Apply).
        ready = self._readiness(old.inputs, kind) if kind in ("Deployment", "StatefulSet") else None
        if ready is not None and not ready(live):
            raise PartialFailure(f"{kind} {object_id(old.inputs)} is not ready (refresh)", old.id, copy.deepcopy(live))
        return copy.deepcopy(live)


class KubernetesProvider(_KubeBase):
    def read_inputs(self, old: Resource, live: dict[str, Any]) -> dict[str, Any]:
        """provider.go Read returns as inputs the live object pruned to the old inputs
        (`pruneLiveState`); refresh saves them (step.go RefreshStep.Apply)."""
        return copy.deepcopy(prune(live, old.inputs))

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        pruned = prune(old.outputs, old.inputs)
        paths = _ignored(changed_paths(pruned, news), ignore_changes)
        if not paths:
            return Diff(changes=False)
        api_version, kind = news["apiVersion"], news["kind"]
        force_new = (*IDENTITY_FIELDS, *FORCE_NEW.get((api_version, kind), ()))
        replaces = tuple(p for p in paths if any(_under(p, f) for f in force_new))
        # Diff: a named object that keeps its name and namespace is replaced delete-before-replace.
        same_identity = object_ref(news)[2:] == object_ref(old.inputs)[2:]
        return Diff(
            changes=True,
            replaces=replaces,
            delete_before_replace=bool(replaces) and same_identity,
            changed=tuple(paths),
        )

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            return "", self._dry_run_create(new)
        try:
            live = self.world.kube.create(copy.deepcopy(new.inputs))
        except Exception as err:  # KubeError: AlreadyExists, Invalid, NotFound (no CRD)
            raise self._kube_error(err, f"creating {new.inputs['kind']} {object_id(new.inputs)}") from err
        return object_id(new.inputs), self._await_ready(new, live, "create")

    def _dry_run_create(self, new: Resource) -> dict[str, Any]:
        """A preview's Create (pulumi-kubernetes provider.go Create, await.go Creation with
        `DryRun: All`): with every input known, the API server validates and defaults the object
        without storing it, and an invalid object fails the preview; an object that exists
        (AlreadyExists), a kind without its CRD or a missing namespace (NotFound) give the inputs
        back, as does an input still unknown. The id stays unknown either way."""
        if _has_unknown(new.inputs):
            return copy.deepcopy(new.inputs)
        try:
            # The store's own write path, dry run: nothing of it reaches the world.
            return self.world.kube.create(copy.deepcopy(new.inputs), dry_run=True)
        except Exception as err:
            if getattr(err, "reason", "") in ("AlreadyExists", "NotFound", "Forbidden"):
                return copy.deepcopy(new.inputs)
            raise self._kube_error(err, f"preview of creating {new.inputs['kind']} {object_id(new.inputs)}") from err

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        live = self.read(new)
        if live is None:
            raise StepFailed(f"{new.inputs['kind']} {object_id(new.inputs)} does not exist: it cannot be imported")
        return object_id(new.inputs), live

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        try:
            live = self.world.kube.update(copy.deepcopy(new.inputs), manager="pulumi-kubernetes")
        except Exception as err:
            raise self._kube_error(err, f"updating {new.inputs['kind']} {object_id(new.inputs)}") from err
        return self._await_ready(new, live, "update")

    def delete(self, old: Resource) -> None:
        api_version, kind, namespace, name = object_ref(old.inputs)
        try:
            self.world.kube.delete(api_version, kind, namespace, name)
        except Exception as err:
            if getattr(err, "reason", "") == "NotFound":
                return
            raise self._kube_error(err, f"deleting {kind} {object_id(old.inputs)}") from err
        timeout = parse_duration(old.custom_timeouts.get("delete"), DEFAULT_AWAIT_SECONDS)
        deadline = self.world.clock() + timeout
        while self.world.kube.get(api_version, kind, namespace, name) is not None:
            if self.world.clock() >= deadline:
                live = self.world.kube.get(api_version, kind, namespace, name) or {}
                finalizers = (live.get("metadata") or {}).get("finalizers") or []
                raise StepFailed(
                    f"timed out after {int(timeout)}s waiting for {kind} {object_id(old.inputs)} to be deleted "
                    f"(finalizers: {', '.join(finalizers) or 'none'})"
                )
            clock.wait(self.world)


def field_manager(urn: str) -> str:
    """provider.go fieldManagerName: `pulumi-kubernetes-<unique>`, stable per resource."""
    return "pulumi-kubernetes-" + hashlib.sha256(urn.encode()).hexdigest()[:8]


class KubernetesPatchProvider(_KubeBase):
    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        pruned = prune(old.outputs, old.inputs)
        paths = _ignored(changed_paths(pruned, news), ignore_changes)
        # Patch resources are updated in place for everything but their identity (provider.go Diff).
        replaces = tuple(p for p in paths if any(_under(p, f) for f in IDENTITY_FIELDS))
        return Diff(changes=bool(paths), replaces=replaces, delete_before_replace=bool(replaces), changed=tuple(paths))

    def _apply(self, new: Resource, operation: str) -> dict[str, Any]:
        annotations = (new.inputs.get("metadata") or {}).get("annotations") or {}
        force = str(annotations.get("pulumi.com/patchForce", "")).lower() == "true"
        try:
            live = self.world.kube.apply(copy.deepcopy(new.inputs), manager=field_manager(new.urn), force=force)
        except Exception as err:
            raise self._kube_error(err, f"applying {new.inputs['kind']} {object_id(new.inputs)}") from err
        return self._await_ready(new, live, operation)

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            return object_id(new.inputs), copy.deepcopy(new.inputs)
        return object_id(new.inputs), self._apply(new, "create")

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        raise StepFailed("Patch resources cannot be imported")

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        return self._apply(new, "update")

    def delete(self, old: Resource) -> None:
        api_version, kind, namespace, name = object_ref(old.inputs)
        try:
            self.world.kube.relinquish(api_version, kind, namespace, name, field_manager(old.urn))
        except Exception as err:
            if getattr(err, "reason", "") == "NotFound":
                return
            raise self._kube_error(err, f"relinquishing {kind} {object_id(old.inputs)}") from err


class ConfigGroupProvider(_KubeBase):
    """yaml/v2 ConfigGroup of the external-snapshotter release: its children are created with
    pulumi-kubernetes Create, which fails on objects that exist (await.go Creation)."""

    def _what(self, new: Resource) -> str:
        files = " ".join(str(f) for f in new.inputs.get("files") or [])
        return "crds" if "crd" in files else "controller"

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        paths = _ignored(changed_paths(old.inputs, news), ignore_changes)
        return Diff(changes=bool(paths), changed=tuple(paths))

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            return "", copy.deepcopy(new.inputs)
        installed = self.world.installed
        what = self._what(new)
        if what == "crds" and installed.get("snapshot_crds"):
            raise StepFailed(
                "creating CustomResourceDefinition volumesnapshots.snapshot.storage.k8s.io: AlreadyExists "
                "(the snapshot CRDs are installed already)"
            )
        if what == "controller" and installed.get("snapshot_controller"):
            raise StepFailed("creating Deployment kube-system/snapshot-controller: AlreadyExists")
        self.world.install_snapshot_api(
            crds=what == "crds" or bool(installed.get("snapshot_crds")),
            controller=what == "controller" or bool(installed.get("snapshot_controller")),
        )
        return "", copy.deepcopy(new.inputs)

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        return "", copy.deepcopy(new.inputs)

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        return copy.deepcopy(new.inputs)

    def delete(self, old: Resource) -> None:
        return None

    def read(self, old: Resource) -> dict[str, Any] | None:
        return copy.deepcopy(old.outputs)


def _running_driver(world: Any, how: str) -> dict[str, Any] | None:
    driver = world.installed.get("driver")
    return driver if driver and driver.get("how") == how else None


def _set_driver_values(world: Any, values: Any) -> None:
    """What the running driver was installed with (chart values or add-on settings): what an
    import reads back and what an update replaces."""
    if world.installed.get("driver"):
        world.installed["driver"]["values"] = copy.deepcopy(values)


class HelmReleaseProvider(_KubeBase):
    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        # helm_release.go Check returns the Release struct's fields: the SDK's `compat` is not one.
        olds = {k: v for k, v in prune(old.outputs, old.inputs).items() if k != "compat"}
        news = {k: v for k, v in news.items() if k != "compat"}
        paths = _ignored(changed_paths(olds, news), ignore_changes)
        # helm_release.go Diff: forceNewFields are `.name` and `.namespace` only.
        replaces = tuple(p for p in paths if p in ("name", "namespace"))
        return Diff(changes=bool(paths), replaces=replaces, changed=tuple(paths))

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        name, namespace = new.inputs.get("name") or new.name, new.inputs.get("namespace") or "default"
        if preview:
            return f"{namespace}/{name}", copy.deepcopy(new.inputs)
        driver = self.world.installed.get("driver")
        if driver and driver.get("how") == "helm":
            raise StepFailed(f"installing Helm release {namespace}/{name}: cannot re-use a name that is still in use")
        if driver:
            # Helm refuses to adopt objects another installer created (helm action/validate.go).
            raise StepFailed(
                f"installing Helm release {namespace}/{name}: rendered manifests contain a resource that already "
                'exists. Unable to continue with install: CSIDriver "ebs.csi.aws.com" exists and cannot be '
                f"imported into the current release: invalid ownership metadata (the driver runs as {driver['how']})"
            )
        self.world.install_ebs_csi_driver(how="helm", version=str(new.inputs.get("version")))
        return f"{namespace}/{name}", {**copy.deepcopy(new.inputs), "status": {"status": "deployed"}}

    def imported_inputs(self, new: Resource, outputs: dict[str, Any]) -> dict[str, Any]:
        # Read for an import: serializeImportInputs of the release setReleaseAttributes and
        # importRelease filled (the chart by its bare name when no local repository has it).
        return {
            k: copy.deepcopy(outputs[k]) for k in ("name", "namespace", "chart", "version", "values") if k in outputs
        }

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        driver = _running_driver(self.world, "helm")
        if driver is None:
            raise StepFailed(f"resource '{new.import_id}' does not exist")
        namespace, _, name = new.import_id.partition("/")
        return new.import_id, {
            "name": name,
            "namespace": namespace,
            "chart": "aws-ebs-csi-driver",
            "version": driver.get("version"),
            "values": copy.deepcopy(driver.get("values") or {}),
            "status": {"status": "deployed"},
        }

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        self.world.install_ebs_csi_driver(how="helm", version=str(new.inputs.get("version")))
        _set_driver_values(self.world, new.inputs.get("values") or {})
        return {**copy.deepcopy(new.inputs), "status": {"status": "deployed"}}

    def delete(self, old: Resource) -> None:
        self.world.installed["driver"] = None

    def read(self, old: Resource) -> dict[str, Any] | None:
        return copy.deepcopy(old.outputs)


class EksAddonProvider:
    def __init__(self, world: Any):
        self.world = world

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        paths = _ignored(changed_paths(prune(old.outputs, old.inputs), news), ignore_changes)
        replaces = tuple(p for p in paths if p in ("addonName", "clusterName"))
        return Diff(changes=bool(paths), replaces=replaces, changed=tuple(paths))

    def _installed(self, name: str) -> bool:
        installed = self.world.installed
        if name == "aws-ebs-csi-driver":
            return bool(installed.get("driver") and installed["driver"].get("how") == "addon")
        return bool(installed.get("snapshot_controller_addon"))

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        name = new.inputs["addonName"]
        resource_id = f"{new.inputs['clusterName']}:{name}"
        if preview:
            return resource_id, copy.deepcopy(new.inputs)
        if self._installed(name):
            raise StepFailed(f"creating EKS Add-On ({resource_id}): ResourceInUseException: Addon already exists.")
        if name == "aws-ebs-csi-driver":
            if self.world.installed.get("driver"):
                raise StepFailed(
                    f"creating EKS Add-On ({resource_id}): conflicts found when applying: the driver's objects "
                    "exist and are managed by another installer"
                )
            self.world.install_ebs_csi_driver(how="addon", version=str(new.inputs.get("addonVersion")))
        else:
            self.world.installed["snapshot_controller_addon"] = True
            self.world.install_snapshot_api(crds=True, controller=True)
        return resource_id, {**copy.deepcopy(new.inputs), "arn": f"arn:aws:eks:::addon/{resource_id}"}

    # resourceAddonUpdate: UpdateAddon only when one of these changed; resourceAddonRead sets them.
    SETTINGS = ("configurationValues", "serviceAccountRoleArn", "podIdentityAssociations")

    def imported_inputs(self, new: Resource, outputs: dict[str, Any]) -> dict[str, Any]:
        keys = ("clusterName", "addonName", "addonVersion", *self.SETTINGS)
        return {k: copy.deepcopy(outputs[k]) for k in keys if k in outputs}

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        name = new.inputs["addonName"]
        if not self._installed(name):
            raise StepFailed(f"EKS Add-On {new.import_id} does not exist: it cannot be imported")
        cluster, _, _ = new.import_id.partition(":")
        driver = self.world.installed.get("driver") or {}
        running = driver.get("values") or {} if name == "aws-ebs-csi-driver" else {}
        read = {"clusterName": cluster, "addonName": name, "addonVersion": driver.get("version")}
        read.update({k: copy.deepcopy(running[k]) for k in self.SETTINGS if running.get(k) is not None})
        return new.import_id, {**read, "arn": f"arn:aws:eks:::addon/{new.import_id}"}

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        changed = [k for k in ("addonVersion", *self.SETTINGS) if old.outputs.get(k) != new.inputs.get(k)]
        if new.inputs["addonName"] == "aws-ebs-csi-driver" and changed:
            self.world.install_ebs_csi_driver(how="addon", version=str(new.inputs.get("addonVersion")))
            _set_driver_values(self.world, {k: new.inputs.get(k) for k in self.SETTINGS})
        return {**copy.deepcopy(old.outputs), **copy.deepcopy(new.inputs)}

    def delete(self, old: Resource) -> None:
        if old.inputs["addonName"] == "aws-ebs-csi-driver":
            self.world.installed["driver"] = None

    def read(self, old: Resource) -> dict[str, Any] | None:
        return copy.deepcopy(old.outputs) if self._installed(old.inputs["addonName"]) else None


# -- AWS ---------------------------------------------------------------------------------------


class EbsSnapshotProvider:
    FORCE_NEW = ("volumeId", "description", "outpostArn")

    def __init__(self, world: Any):
        self.world = world

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        paths = _ignored(changed_paths(old.inputs, news), ignore_changes)
        replaces = [p for p in paths if any(_under(p, f) for f in self.FORCE_NEW)]
        # A create that timed out is saved with init errors, not tainted: the bridge keeps no taint
        # (pulumi/pulumi 17881 asks for it), so the engine re-tries it as an update with no diff
        # (pulumi/pulumi 1838; step_generator.go continueStepsFromDiff, hasInitErrors), which for a
        # snapshot changes only tags and does not wait for `completed` (`update` below).
        return Diff(changes=bool(paths) or bool(replaces), replaces=tuple(replaces), changed=tuple(paths))

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            return "", copy.deepcopy(new.inputs)
        try:
            snapshot_id = self.world.ebs.create_snapshot(
                new.inputs["volumeId"],
                new.inputs.get("description", ""),
                dict(new.inputs.get("tags") or {}),
                as_runner=True,
            )
        except Exception as err:
            raise StepFailed(f"creating EBS Snapshot from {new.inputs['volumeId']}: {err}") from err
        outputs = {
            **copy.deepcopy(new.inputs),
            "arn": f"arn:aws:ec2:{self.world.region}::snapshot/{snapshot_id}",
            "volumeSize": self.world.ebs.volume(new.inputs["volumeId"]).get("Size"),
        }
        timeout = parse_duration(new.custom_timeouts.get("create"), DEFAULT_AWAIT_SECONDS)
        deadline = self.world.clock() + timeout
        while self.world.ebs.snapshot_state(snapshot_id) != "completed":
            if self.world.clock() >= deadline:
                raise PartialFailure(
                    f"waiting for EBS Snapshot ({snapshot_id}) create: timeout while waiting for state to become "
                    f"'completed' (last state: 'pending', timeout: {int(timeout)}s)",
                    snapshot_id,
                    outputs,
                )
            clock.wait(self.world)
        return snapshot_id, outputs

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        return new.import_id, copy.deepcopy(new.inputs)

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        # Only tags change in place (the rest is force-new): the runner's tag calls on its snapshot.
        old_tags, new_tags = dict(old.outputs.get("tags") or {}), dict(new.inputs.get("tags") or {})
        if old_tags != new_tags and old.id and self.world.ebs.snapshot_exists(old.id):
            try:
                self.world.ebs.retag_snapshot(old.id, old_tags, new_tags)
            except Exception as err:
                raise StepFailed(f"updating tags of EBS Snapshot ({old.id}): {err}") from err
        return {**copy.deepcopy(old.outputs), **copy.deepcopy(new.inputs)}

    def delete(self, old: Resource) -> None:
        try:
            self.world.ebs.delete_snapshot(old.id, as_runner=True)
        except Exception as err:
            raise StepFailed(f"deleting EBS Snapshot ({old.id}): {err}") from err

    def read(self, old: Resource) -> dict[str, Any] | None:
        return copy.deepcopy(old.outputs) if self.world.ebs.snapshot_exists(old.id) else None


class RecordProvider:
    """IAM roles, policies, attachments, identity providers, Pod Identity associations, and the
    provider resources themselves: records with an ARN; a name change replaces."""

    FORCE_NEW = ("name", "role", "policyArn", "url", "clusterName", "namespace", "serviceAccount", "region")

    def __init__(self, records: dict[str, dict[str, Any]]):
        self.records = records

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        paths = _ignored(changed_paths(old.inputs, news), ignore_changes)
        if old.type.startswith("pulumi:providers:"):
            # A kubernetes provider is replaced (and every object with it) only when the cluster
            # identity changes; `clusterIdentifier` keeps a kubeconfig change an update.
            identity = ("clusterIdentifier",) if old.type.endswith("kubernetes") else ("region",)
            replaces = tuple(p for p in paths if p in identity)
        else:
            replaces = tuple(p for p in paths if p.split(".")[0] in self.FORCE_NEW)
        return Diff(changes=bool(paths), replaces=replaces, changed=tuple(paths))

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        outputs = copy.deepcopy(new.inputs)
        name = str(new.inputs.get("name") or new.name)
        if new.type == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        if not preview:
            self.records[new.urn] = outputs
        return name, outputs

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        return self.create(new, preview=False)

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        outputs = {**copy.deepcopy(old.outputs), **copy.deepcopy(new.inputs)}
        self.records[new.urn] = outputs
        return outputs

    def delete(self, old: Resource) -> None:
        self.records.pop(old.urn, None)

    def read(self, old: Resource) -> dict[str, Any] | None:
        return copy.deepcopy(self.records.get(old.urn, old.outputs))


# -- dynamic resources -----------------------------------------------------------------------


class WorkerPool:
    """The dynamic-provider host's thread pool: `workers` calls run at once, the others wait in
    the order they came (`concurrent.futures.ThreadPoolExecutor` takes work from one FIFO queue;
    pulumi `dynamic/__main__.py` main() gives the gRPC server 4 workers). A waiting call lets the
    simulated time pass for the others (gp3migrate/sim/clock.py `wait_until`)."""

    def __init__(self, world: Any, workers: int | None = None):
        self.world = world
        self.free = durations.DYNAMIC_PROVIDER_WORKERS if workers is None else workers
        self.queue: deque[list[bool]] = deque()
        self.waited = 0  # calls that had to wait for a worker

    @contextmanager
    def worker(self) -> Iterator[None]:
        if self.free and not self.queue:
            self.free -= 1
        else:
            granted = [False]
            self.queue.append(granted)
            self.waited += 1
            clock.wait_until(self.world, lambda: granted[0])
        try:
            yield
        finally:
            if self.queue:
                self.queue.popleft()[0] = True  # handed over: the next call in line runs
            else:
                self.free += 1


class DynamicProvider:
    """The project's own ResourceProvider, called as pulumi's dynamic-provider host calls it; every
    call holds a worker of the host's pool (`WorkerPool`). The engine calls Check before Diff or
    Create, on the same pool; it takes no simulated time, so it is the first moment of the Diff's
    or Create's hold here (a replacement's Create after its Diff queues again)."""

    KEY = "__provider"

    def __init__(self, world: Any):
        self.pool = WorkerPool(world)

    def _provider(self, props: dict[str, Any]) -> Any:
        import dill

        return dill.loads(base64.b64decode(props[self.KEY].encode()))

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        provider = self._provider(news if news.get(self.KEY) not in (None, UNKNOWN) else old.outputs)
        # dynamic/__main__.py Diff: olds are the old *outputs* (provider.proto DiffRequest.olds).
        with self.pool.worker():
            result = provider.diff(old.id, copy.deepcopy(old.outputs), copy.deepcopy(news))
        changed = tuple(
            sorted(k for k in set(old.outputs) | set(news) if k != self.KEY and old.outputs.get(k) != news.get(k))
        )
        if result.changes is None:
            paths = _ignored(changed_paths(old.inputs, news), ignore_changes)
            return Diff(changes=bool(paths), changed=tuple(paths))
        return Diff(
            changes=bool(result.changes),
            replaces=tuple(result.replaces or ()),
            delete_before_replace=bool(result.delete_before_replace),
            changed=changed,
        )

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            with self.pool.worker():  # the preview's Check
                return "", copy.deepcopy(new.inputs)
        try:
            with self.pool.worker():
                result = self._provider(new.inputs).create(copy.deepcopy(new.inputs))
        except Exception as err:
            raise StepFailed(f"{new.name}: {err}") from err
        outputs = dict(result.outs or {})
        outputs[self.KEY] = new.inputs[self.KEY]
        return str(result.id), outputs

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        raise StepFailed("dynamic resources are not imported here")

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        provider = self._provider(new.inputs)
        try:
            with self.pool.worker():
                result = provider.update(old.id, copy.deepcopy(old.outputs), copy.deepcopy(new.inputs))
        except Exception as err:
            raise StepFailed(f"{new.name}: {err}") from err
        outputs = dict(getattr(result, "outs", None) or new.inputs)
        outputs[self.KEY] = new.inputs[self.KEY]
        return outputs

    def delete(self, old: Resource) -> None:
        try:
            with self.pool.worker():
                self._provider(old.outputs).delete(old.id, copy.deepcopy(old.outputs))
        except Exception as err:
            raise StepFailed(f"deleting {old.name}: {err}") from err

    def read(self, old: Resource) -> dict[str, Any] | None:
        with self.pool.worker():
            result = self._provider(old.outputs).read(old.id, copy.deepcopy(old.outputs))
        outputs = dict(result.outs or old.outputs)
        outputs[self.KEY] = old.outputs.get(self.KEY)
        return outputs
