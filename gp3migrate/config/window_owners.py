"""The cluster's other owners of a claim or its workload, and how each is held during a cutover's
window (issue 22 items 2 and 3).

A GitOps controller or an autoscaler keeps acting while a cutover runs: Argo CD with automated sync
(self-heal) or Flux on its interval restores `replicas` from git, and recreates a deleted claim from
its manifest, which the provisioner fills with a new, empty volume; a KEDA ScaledObject scales a
Deployment up from 0 on its next event. Each has a documented way to hold it:

- Argo CD Application: the `argocd.argoproj.io/skip-reconcile: "true"` annotation (Argo CD user
  guide "Skip Application Reconcile", alpha since 2.7: "all processing is stopped for the
  Application"; resumed by removing it), or no automated sync (`spec.syncPolicy.automated` absent,
  or its `enabled: false`);
- Flux Kustomization or HelmRelease: `spec.suspend: true` (`flux suspend kustomization|helmrelease`,
  fluxcd/flux2 cmd/flux suspend_*.go: "disables the reconciliation"; `flux resume` sets it back).
  The `kustomize.toolkit.fluxcd.io/reconcile: disabled` annotation is not a hold here: it sits on
  the object, and a deleted claim is recreated from git without it;
- KEDA ScaledObject: `autoscaling.keda.sh/paused-replicas: "0"` (KEDA docs "Pausing autoscaling":
  KEDA scales the target to that count and stops autoscaling until the annotation is removed).

A Helm release needs no hold (it acts only when someone upgrades it), nor does an
HorizontalPodAutoscaler: it leaves a target at 0 replicas alone (kubernetes
pkg/controller/podautoscaler/horizontal.go reconcileAutoscaler: `if scale.Spec.Replicas == 0 &&
minReplicas != 0 { // Autoscaling is disabled for this resource ... rescale = false }`, condition
ScalingDisabled). An operator (the workload's controller) is recorded as `workload.owner`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

OwnerKind = Literal["Helm", "Application", "Kustomization", "HelmRelease", "ScaledObject", "HorizontalPodAutoscaler"]

ARGO_SKIP_RECONCILE = "argocd.argoproj.io/skip-reconcile"
ARGO_TRACKING_ID = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE_LABEL = "app.kubernetes.io/instance"
# Applications live in Argo CD's own namespace unless the tracking id names another
# (apps in any namespace: `<namespace>_<name>`).
ARGO_NAMESPACE = "argocd"
KEDA_PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
# Sync options on the Application (spec.syncPolicy.syncOptions) or on the object itself (this
# annotation, comma-separated); Flux's per-object force (kustomize-controller PR 787).
ARGO_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
FLUX_FORCE = "kustomize.toolkit.fluxcd.io/force"
RECREATING_SYNC_OPTIONS = ("Replace=true", "Force=true")
FLUX_LABELS = {
    "Kustomization": ("kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace"),
    "HelmRelease": ("helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace"),
}


@dataclass(frozen=True)
class Resource:
    """Where the API serves a kind: group, the version read, plural; and its CRD's name."""

    group: str
    version: str
    plural: str

    @property
    def crd(self) -> str:
        return f"{self.plural}.{self.group}"


# The kinds the program reads and, with holdOwners, patches (CustomObjectsApi).
RESOURCES: Mapping[str, Resource] = {
    "Application": Resource("argoproj.io", "v1alpha1", "applications"),
    "Kustomization": Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": Resource("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "ScaledObject": Resource("keda.sh", "v1alpha1", "scaledobjects"),
}
# Owners that act during the window unless held.
HELD_KINDS = tuple(RESOURCES)


def acts_in_window(kind: str) -> bool:
    return kind in HELD_KINDS


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def auto_sync(application: Mapping[str, Any]) -> bool:
    """Whether an Application syncs by itself (`syncPolicy.automated`, unless `enabled: false`)."""
    automated = ((application.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    return isinstance(automated, Mapping) and automated.get("enabled") is not False


def not_held(kind: str, obj: Mapping[str, Any]) -> str | None:
    """Why a live owner would act during the window, or None when it is held."""
    if kind == "Application":
        if str(_annotations(obj).get(ARGO_SKIP_RECONCILE, "")).lower() == "true":
            return None
        return "syncs automatically" if auto_sync(obj) else None
    if kind in FLUX_LABELS:
        return None if (obj.get("spec") or {}).get("suspend") is True else "is not suspended"
    if kind == "ScaledObject":
        paused = _annotations(obj).get(KEDA_PAUSED_REPLICAS)
        if paused is None:
            return "scales the workload (it is not paused)"
        return None if str(paused) == "0" else f"holds the workload at {paused} replicas, not 0"
    return None


def hold_command(kind: str, name: str, namespace: str) -> str:
    if kind == "Application":
        return f'kubectl annotate application {name} -n {namespace} {ARGO_SKIP_RECONCILE}="true" --overwrite'
    if kind in FLUX_LABELS:
        return f"flux suspend {kind.lower()} {name} -n {namespace}"
    if kind == "ScaledObject":
        return f'kubectl annotate scaledobject {name} -n {namespace} {KEDA_PAUSED_REPLICAS}="0" --overwrite'
    return ""


def resume_command(kind: str, name: str, namespace: str) -> str:
    if kind == "Application":
        return f"kubectl annotate application {name} -n {namespace} {ARGO_SKIP_RECONCILE}-"
    if kind in FLUX_LABELS:
        return f"flux resume {kind.lower()} {name} -n {namespace}"
    if kind == "ScaledObject":
        return f"kubectl annotate scaledobject {name} -n {namespace} {KEDA_PAUSED_REPLICAS}-"
    return ""


def hold_patch(kind: str) -> dict[str, Any]:
    """The merge patch that holds an owner (what the commands above do)."""
    if kind == "Application":
        return {"metadata": {"annotations": {ARGO_SKIP_RECONCILE: "true"}}}
    if kind in FLUX_LABELS:
        return {"spec": {"suspend": True}}
    return {"metadata": {"annotations": {KEDA_PAUSED_REPLICAS: "0"}}}


def resume_patch(kind: str) -> dict[str, Any]:
    """The merge patch that resumes it: a null removes an annotation (JSON merge patch, RFC 7386)."""
    if kind == "Application":
        return {"metadata": {"annotations": {ARGO_SKIP_RECONCILE: None}}}
    if kind in FLUX_LABELS:
        return {"spec": {"suspend": False}}
    return {"metadata": {"annotations": {KEDA_PAUSED_REPLICAS: None}}}


def sync_options(application: Mapping[str, Any] | None, managed: Mapping[str, Any]) -> list[str]:
    """The Argo CD sync options that apply to an object: the Application's and the object's own
    annotation (Argo CD user guide "Sync Options": options set as the annotation apply to that
    resource), in order, each once."""
    found = list(((application or {}).get("spec") or {}).get("syncPolicy", {}).get("syncOptions") or [])
    found += str(_annotations(managed).get(ARGO_SYNC_OPTIONS) or "").split(",")
    return list(dict.fromkeys(option.strip() for option in found if option.strip()))


def flux_force(kustomization: Mapping[str, Any] | None, managed: Mapping[str, Any]) -> bool:
    """Whether Flux force-applies the object: the Kustomization's `spec.force`, or the object's own
    `kustomize.toolkit.fluxcd.io/force: enabled` (label or annotation)."""
    meta = managed.get("metadata") or {}
    own = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}.get(FLUX_FORCE)
    return ((kustomization or {}).get("spec") or {}).get("force") is True or str(own).lower() == "enabled"


def recreates_claim(kind: str, *, sync_options: Iterable[str] = (), force: bool = False) -> str | None:
    """The recorded setting (key and value) with which resuming this owner, while its source still
    names the old class, deletes the cut-over claim and creates it again from that source — a new,
    empty volume under the claim's name — or None when a resume is safe.

    A plain apply of the old claim spec fails on the immutable field and touches nothing (a claim's
    spec is immutable but for resources.requests and volumeAttributesClassName), so resuming is safe
    then. Not with:
    - Argo CD `Replace=true` (Argo CD user guide "Sync Options", "Replace Resource Instead Of Applying
      Changes": it syncs with `kubectl replace`/`create`, and the guide warns the resource may be
      deleted and recreated) and `Force=true` (same page, "Force Sync": `--force`, which deletes and
      re-creates the resource when the patch fails; the guide warns it is destructive);
    - Flux Kustomization `spec.force: true` (kustomize-controller API docs, Kustomization `.spec.force`:
      "recreate resources on the cluster when patching fails due to an immutable field change"), or
      the object's `kustomize.toolkit.fluxcd.io/force: enabled` (kustomize-controller PR 787).

    With holdOwners the program then leaves such an owner held rather than resume it (see
    gp3migrate/planning/strategies/common.py resume_owners): held is the state the window proved
    safe, the user must edit the source before any resume anyway, and a refusal at preview would
    only make the user hold the owner by hand to reach the same state.
    """
    if kind == "Application":
        found = [option for option in sync_options if option in RECREATING_SYNC_OPTIONS]
        return f"syncOptions {', '.join(found)}" if found else None
    if kind == "Kustomization" and force:
        return "force: true"
    return None


# A StatefulSet's persistentVolumeClaimRetentionPolicy (apps/v1; kubernetes pkg/controller/statefulset
# stateful_set_utils.go claimOwnerMatchesSetAndPod): Delete makes the claims owned by the set
# (whenDeleted) or by each pod past the new replica count (whenScaled), and the garbage collector
# deletes them: at the cutover's scale to 0, or when the set is re-created without --cascade=orphan.
RETENTION_KEYS = ("whenDeleted", "whenScaled")


def retention_refusal(namespace: str, name: str, policy: Mapping[str, str]) -> str | None:
    """Why a StatefulSet's claim retention policy forbids the window, with the commands to set it
    to Retain and to restore it after; None when it retains its claims."""
    deleting = [key for key in RETENTION_KEYS if policy.get(key) == "Delete"]
    if not deleting:
        return None
    retain = ",".join(f'"{key}":"Retain"' for key in RETENTION_KEYS)
    restore = ",".join(f'"{key}":"{policy.get(key) or "Retain"}"' for key in RETENTION_KEYS)
    return (
        f"StatefulSet {namespace}/{name} has persistentVolumeClaimRetentionPolicy {', '.join(deleting)}: Delete: the "
        "garbage collector would delete its claims when the cutover scales it to 0 (whenScaled) or when it is "
        "re-created (whenDeleted). Set Retain first: kubectl patch sts "
        f'{name} -n {namespace} --type merge -p \'{{"spec":{{"persistentVolumeClaimRetentionPolicy":{{{retain}}}}}}}\' '
        "(and in its source, or its owner puts it back), then run `gp3migrate discover` again; restore it after the "
        f"cutover: kubectl patch sts {name} -n {namespace} --type merge -p "
        f'\'{{"spec":{{"persistentVolumeClaimRetentionPolicy":{{{restore}}}}}}}\''
    )
