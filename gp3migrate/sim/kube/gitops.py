"""The cluster's GitOps owners: Argo CD's application controller and Flux's kustomize-controller,
each applying the manifests its source (git) holds for a workload and its claim.

Both hold the same two kinds of change against the live objects: a field the manifest sets that
differs live (the workload's `replicas` after a scale to 0; a claim's `storageClassName` after a
cutover) and an object the manifest names that is missing (a deleted claim). A missing claim is
created from the manifest — the in-tree class, no `volumeName` — so the provisioner gives it a new,
empty volume; a field the API server refuses to change (a claim's spec is immutable but for
`resources.requests` and `volumeAttributesClassName`) fails the apply, recorded on the owner.

The git contents are the world's (`ClusterState.git`, keyed by `git_key`): not in the cluster.
Read against argoproj/argo-cd 37ee009 and fluxcd/kustomize-controller 186fb3b (cited per rule).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from gp3migrate.sim.kube.fields import tracked_leaves
from gp3migrate.sim.kube.names import KubeError
from gp3migrate.sim.kube.objects import annotations_of, deleting

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState

ARGOCD_API = "argoproj.io/v1alpha1"
ARGOCD_NAMESPACE = "argocd"
ARGOCD_MANAGER = "argocd-controller"
# argo-cd common/common.go AnnotationKeyAppSkipReconcile, AnnotationKeyAppInstance (tracking-id).
SKIP_RECONCILE = "argocd.argoproj.io/skip-reconcile"
TRACKING_ID = "argocd.argoproj.io/tracking-id"
FLUX_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_NAMESPACE = "flux-system"
FLUX_MANAGER = "kustomize-controller"
# kustomize-controller api/v1 (labels the controller sets on what it applies; the exclusion key).
FLUX_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_NS = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"
# argo-cd cmd/argocd-application-controller: --self-heal-backoff-timeout-seconds 2, factor 3, cap 300.
SELF_HEAL_BACKOFF = (2, 3, 300)
TICK_SECONDS = 5  # gp3migrate/sim/clock.py (a controller room does not import the engine's clock)


def git_key(source: dict[str, Any]) -> str:
    """Where an Application's `spec.source` or a Kustomization's `spec.sourceRef` + `spec.path` points."""
    return f"{source.get('repoURL') or source.get('name', '')}//{source.get('path', '')}"


def manifest_of(live: dict[str, Any], *, in_tree_class: str | None = None) -> dict[str, Any]:
    """What a repository holds for a live object as it was installed: its spec without status and
    server fields; a claim as a chart or manifest writes it (the in-tree class, no `volumeName`)."""
    metadata = live["metadata"]
    manifest: dict[str, Any] = {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata.get("namespace", ""),
            **({"labels": dict(metadata["labels"])} if metadata.get("labels") else {}),
        },
        "spec": copy.deepcopy(live.get("spec") or {}),
    }
    if live["kind"] == "PersistentVolumeClaim":
        spec = manifest["spec"]
        spec.pop("volumeName", None)
        if in_tree_class is not None:
            spec["storageClassName"] = in_tree_class
        spec.pop("dataSource", None)
        spec.pop("dataSourceRef", None)
    return manifest


def drifted(manifest: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """The object is missing, or a field the manifest sets has another value live (Argo CD's diff of
    the desired against the live state, argo-cd controller/state.go CompareAppState; Flux's dry-run
    apply, fluxcd/pkg ssa ResourceManager.Diff)."""
    if live is None or deleting(live):
        return True
    current = tracked_leaves(live)
    return any(current.get(path) != value for path, value in tracked_leaves(manifest).items())


def apply_manifest(world: ClusterState, manifest: dict[str, Any], manager: str, tracking: dict[str, Any]) -> str:
    """Apply one manifest: create it when missing, else a forced server-side apply of its fields
    (Flux: fluxcd/pkg ssa with client.ForceOwnership; Argo CD's `kubectl apply` patches the same
    fields). Returns what happened: "" (nothing), "created", "configured"; raises KubeError."""
    kube = world.kube
    metadata = manifest["metadata"]
    live = kube.peek(manifest["kind"], metadata.get("namespace", ""), metadata["name"])
    if not drifted(manifest, live):
        return ""
    desired = copy.deepcopy(manifest)
    for place in ("labels", "annotations"):
        if tracking.get(place):
            desired["metadata"][place] = {**(desired["metadata"].get(place) or {}), **tracking[place]}
    if live is None:
        kube.create(desired, manager)
        return "created"
    if deleting(live):
        raise KubeError("AlreadyExists", f'{manifest["kind"]} "{metadata["name"]}" is being deleted')
    kube.apply(desired, manager, force=True)
    return "configured"


# -- Argo CD -------------------------------------------------------------------------------------------


def argocd_tracking(app: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """argo-cd util/argo/resource_tracking.go: `<app>:<group>/<kind>:<namespace>/<name>`, the default
    tracking method (annotation) since Argo CD 3.0."""
    group = manifest["apiVersion"].rsplit("/", 1)[0] if "/" in manifest["apiVersion"] else ""
    meta = manifest["metadata"]
    where = f"{meta.get('namespace', '')}/{meta['name']}"
    return {"annotations": {TRACKING_ID: f"{app}:{group}/{manifest['kind']}:{where}"}}


def _self_heal_delay_ticks(attempts: int) -> int:
    """controller/appcontroller.go selfHealRemainingBackoff: a wait.Backoff stepped `attempts` times
    (0 attempts: no delay), 2 s x 3 per attempt, capped at 300 s."""
    initial, factor, cap = SELF_HEAL_BACKOFF
    delay = 0.0
    duration = float(initial)
    for _ in range(attempts):
        delay = duration
        duration = min(duration * factor, cap)
    return math.ceil(delay / TICK_SECONDS)


def argocd_controller(world: ClusterState) -> None:
    """argo-cd controller/appcontroller.go, per Application each tick:
    - `argocd.argoproj.io/skip-reconcile: "true"` on the Application: not processed at all
      (canProcessApp, strconv.ParseBool of the value);
    - compared with git: Synced or OutOfSync (missing or differing objects);
    - autoSync only with `spec.syncPolicy.automated`; the revision in git never changes here, so a
      sync was already attempted to it: a failed last attempt is not retried ("Failed last sync
      attempt", a SyncError condition), and without `selfHeal` nothing is re-applied ("most recent
      sync already to"); with `selfHeal` the OutOfSync resources are synced after the self-heal
      backoff (selfHealRemainingBackoff), counting attempts (SelfHealAttemptsCount).
    Simplification: the attempt count resets once the application is Synced again."""
    kube = world.kube
    for namespace, name in kube.names("Application"):
        app = kube.peek("Application", namespace, name)
        if app is None or deleting(app) or app["apiVersion"] != ARGOCD_API:
            continue
        if annotations_of(app).get(SKIP_RECONCILE, "").lower() in ("true", "1", "t"):
            continue
        spec = app.get("spec") or {}
        manifests = world.git.get(git_key(spec.get("source") or {}), [])
        out_of_sync = [m for m in manifests if drifted(m, _live(world, m))]
        status = copy.deepcopy(app.get("status") or {})
        status["sync"] = {"status": "OutOfSync" if out_of_sync else "Synced"}
        operation = status.get("operationState") or {}
        automated = (spec.get("syncPolicy") or {}).get("automated")
        if not out_of_sync:
            status["selfHealAttemptsCount"] = 0
        elif automated is not None and operation.get("phase") == "Failed":
            status["conditions"] = [
                {"type": "SyncError", "message": f"Failed last sync attempt: {operation.get('message', '')}"}
            ]
        elif automated is not None and automated.get("selfHeal"):
            attempts = int(status.get("selfHealAttemptsCount") or 0)
            due = int(operation.get("finishedAt", -(10**9))) + _self_heal_delay_ticks(attempts)
            if world.ticks >= due:
                status["selfHealAttemptsCount"] = attempts + 1
                status["operationState"] = _sync(world, name, out_of_sync)
                if status["operationState"]["phase"] == "Failed":
                    world.event("Application", namespace, name, "SyncError", status["operationState"]["message"])
        with kube.edit("Application", namespace, name, ARGOCD_MANAGER) as changed:
            changed["status"] = status


def _sync(world: ClusterState, app: str, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """One sync operation over the OutOfSync resources: each applied; any failure fails the operation
    (argo-cd gitops-engine sync: the resources of a wave are applied, then the phase is decided)."""
    failures = []
    for manifest in manifests:
        try:
            apply_manifest(world, manifest, ARGOCD_MANAGER, argocd_tracking(app, manifest))
        except KubeError as err:
            failures.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {err}")
    return {
        "phase": "Failed" if failures else "Succeeded",
        "message": "; ".join(failures) or "successfully synced",
        "finishedAt": world.ticks,
    }


def _live(world: ClusterState, manifest: dict[str, Any]) -> dict[str, Any] | None:
    meta = manifest["metadata"]
    return world.kube.peek(manifest["kind"], meta.get("namespace", ""), meta["name"])


# -- Flux ------------------------------------------------------------------------------------------------


def flux_tracking(kustomization: dict[str, Any]) -> dict[str, Any]:
    """The labels kustomize-controller sets on every object it applies (its inventory's owner)."""
    meta = kustomization["metadata"]
    return {"labels": {FLUX_NAME: meta["name"], FLUX_NS: meta["namespace"]}}


def interval_ticks(interval: str) -> int:
    """A Go duration of whole units (`30s`, `5m`, `1h`) in ticks, at least one."""
    units = {"s": 1, "m": 60, "h": 3600}
    seconds = int(interval[:-1]) * units[interval[-1]]
    return max(1, math.ceil(seconds / TICK_SECONDS))


def flux_controller(world: ClusterState) -> None:
    """kustomize-controller internal/controller/kustomization_controller.go, per Kustomization:
    - `spec.suspend: true`: not reconciled (Reconcile returns before building);
    - otherwise every `spec.interval` from its creation: every manifest applied (drift corrected),
      skipping an object whose manifest or live object carries `kustomize.toolkit.fluxcd.io/reconcile:
      disabled` (`apply`: ExclusionSelector);
    - an apply the API server refuses (an immutable field) fails the reconciliation (Ready False),
      unless `spec.force: true`, which deletes the object and creates it again (`apply`:
      applyOpts.Force = obj.Spec.Force; fluxcd/pkg ssa recreates on an immutable-field error)."""
    kube = world.kube
    for namespace, name in kube.names("Kustomization"):
        kustomization = kube.peek("Kustomization", namespace, name)
        if kustomization is None or deleting(kustomization) or kustomization["apiVersion"] != FLUX_API:
            continue
        spec = kustomization.get("spec") or {}
        if spec.get("suspend"):
            continue
        age = world.ticks - int(kustomization["metadata"]["creationTimestamp"])
        if age <= 0 or age % interval_ticks(str(spec.get("interval", "10m"))):
            continue
        failures = []
        tracking = flux_tracking(kustomization)
        for manifest in world.git.get(git_key({**(spec.get("sourceRef") or {}), "path": spec.get("path", "")}), []):
            live = _live(world, manifest)
            if FLUX_RECONCILE in {
                k
                for k, v in {**annotations_of(manifest), **(annotations_of(live) if live else {})}.items()
                if v == "disabled"
            }:
                continue
            try:
                apply_manifest(world, manifest, FLUX_MANAGER, tracking)
            except KubeError as err:
                if err.reason == "Invalid" and spec.get("force") and live is not None:
                    kube.delete_object(live["kind"], live["metadata"]["namespace"], live["metadata"]["name"])
                    try:
                        apply_manifest(world, manifest, FLUX_MANAGER, tracking)
                        continue
                    except KubeError as again:
                        err = again
                failures.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {err}")
        message = "; ".join(failures) or "Applied revision"
        ready = {"type": "Ready", "status": "False" if failures else "True", "message": message}
        if failures:
            world.event("Kustomization", namespace, name, "ReconciliationFailed", ready["message"])
        with kube.edit("Kustomization", namespace, name, FLUX_MANAGER) as changed:
            changed["status"] = {"conditions": [ready], "lastAttemptedTick": world.ticks}
