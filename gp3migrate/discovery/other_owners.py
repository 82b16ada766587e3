"""Who else acts on a claim or its workload: a Helm release, an Argo CD Application, a Flux
Kustomization or HelmRelease, a KEDA ScaledObject, an HorizontalPodAutoscaler (issue 22 item 2).

Found from what each writes on the objects it manages, on the claim and on its workload:
- Helm: `meta.helm.sh/release-name|namespace` annotations (helm pkg/action/validate.go
  checkOwnership reads them);
- Argo CD: the `argocd.argoproj.io/tracking-id` annotation, `<app>:<group>/<kind>:<ns>/<name>`,
  where `<app>` is `<namespace>_<name>` for an Application outside Argo CD's namespace (Argo CD user
  guide "Resource Tracking"), or the `app.kubernetes.io/instance` label (label tracking). Charts set
  that label too (to the release name), so it counts only without Helm's annotations, and, when
  Applications were read, only if one has that name;
- Flux: `kustomize.toolkit.fluxcd.io/name|namespace` and `helm.toolkit.fluxcd.io/name|namespace`
  labels;
- KEDA and the HPA: the ScaledObject or HorizontalPodAutoscaler whose `spec.scaleTargetRef` names the
  workload.
The owner objects, when the export or the cluster has them, add what they say: an Application's
automated sync and sync options, a Flux object's `spec.suspend` and a Kustomization's `spec.force`
(with the object's own sync-options annotation or force label, what makes a resume recreate it).
An operator (the workload's controller) is `workload.owner` (gp3migrate/discovery/workload_owners.py).

Pure: the input is exported or listed objects.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from gp3migrate.config import window_owners as wo

Key = tuple[str, str, str]  # (kind, namespace, name)


def _meta(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return item.get("metadata") or {}


class OwnerIndex:
    """The owner objects of an export, by (kind, namespace, name)."""

    def __init__(self, items: Iterable[Mapping[str, Any]]):
        self.objects: dict[Key, Mapping[str, Any]] = {}
        self.workloads: dict[Key, Mapping[str, Any]] = {}
        self.kinds_read: set[str] = set()
        for item in items:
            kind = str(item.get("kind", ""))
            key = (kind, str(_meta(item).get("namespace", "")), str(_meta(item).get("name", "")))
            if kind in (*wo.RESOURCES, "HorizontalPodAutoscaler"):
                self.objects[key] = item
                self.kinds_read.add(kind)
            elif kind == "CustomResourceDefinition":
                # Live discovery lists a kind when its CRD exists, and adds the CRD: none listed is none.
                self.kinds_read.update(k for k, r in wo.RESOURCES.items() if r.crd == key[2])
            elif kind in ("Deployment", "StatefulSet"):
                self.workloads[key] = item

    def named(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def targeting(self, kind: str, namespace: str, workload_kind: str, workload: str) -> list[Mapping[str, Any]]:
        """The ScaledObjects or HPAs whose scaleTargetRef names the workload (KEDA's kind defaults to Deployment)."""
        found = []
        for (k, ns, _), item in sorted(self.objects.items()):
            target = (item.get("spec") or {}).get("scaleTargetRef") or {}
            named = target.get("name") == workload and str(target.get("kind") or "Deployment") == workload_kind
            if k == kind and ns == namespace and named:
                found.append(item)
        return found


def _tracking_app(value: str) -> tuple[str, str] | None:
    """(namespace, name) of the Application a tracking id names."""
    app = value.split(":", 1)[0]
    if not app:
        return None
    namespace, _, name = app.partition("_")
    return (namespace, name) if name else (wo.ARGO_NAMESPACE, app)


def _from_metadata(item: Mapping[str, Any], where: str, index: OwnerIndex, notes: list[str]) -> list[dict[str, Any]]:
    meta = _meta(item)
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    namespace = str(meta.get("namespace", ""))
    found: list[dict[str, Any]] = []
    release = annotations.get(wo.HELM_RELEASE_NAME)
    if release:
        found.append(
            {
                "kind": "Helm",
                "name": str(release),
                "namespace": str(annotations.get(wo.HELM_RELEASE_NAMESPACE) or namespace),
                "foundBy": f"{wo.HELM_RELEASE_NAME} on the {where}",
            }
        )
    tracking = annotations.get(wo.ARGO_TRACKING_ID)
    app = _tracking_app(str(tracking)) if tracking else None
    found_by = f"{wo.ARGO_TRACKING_ID} on the {where}"
    instance = labels.get(wo.ARGO_INSTANCE_LABEL)
    if app is None and instance and not release:
        candidate = (wo.ARGO_NAMESPACE, str(instance))
        matches = [k for k in index.objects if k[0] == "Application" and k[2] == candidate[1]]
        if matches:
            app = matches[0][1], matches[0][2]
            found_by = f"label {wo.ARGO_INSTANCE_LABEL} on the {where}"
        elif "Application" not in index.kinds_read:
            # Charts set the label too: without the Applications, say so rather than guess.
            note = (
                f"{where} {namespace}/{meta.get('name')} has label {wo.ARGO_INSTANCE_LABEL}={instance} and no "
                "Application was read: if Argo CD tracks it by label, export the Applications too (README) or add "
                "the Application to the entry's owners"
            )
            if note not in notes:
                notes.append(note)
    if app is not None:
        owner: dict[str, Any] = {"kind": "Application", "name": app[1], "namespace": app[0], "foundBy": found_by}
        application = index.named("Application", *app)
        if application is not None:
            owner["autoSync"] = wo.auto_sync(application)
        # Replace=true / Force=true make a resume delete and recreate the claim (window_owners.recreates_claim).
        options = wo.sync_options(application, item)
        if options:
            owner["syncOptions"] = options
        found.append(owner)
    for kind, (name_label, namespace_label) in wo.FLUX_LABELS.items():
        if labels.get(name_label):
            owner = {
                "kind": kind,
                "name": str(labels[name_label]),
                "namespace": str(labels.get(namespace_label) or namespace),
                "foundBy": f"label {name_label} on the {where}",
            }
            flux = index.named(kind, owner["namespace"], owner["name"])
            if flux is not None:
                owner["suspended"] = (flux.get("spec") or {}).get("suspend") is True
            if kind == "Kustomization" and wo.flux_force(flux, item):
                owner["force"] = True
            found.append(owner)
    return found


def owners_of(
    claim: Mapping[str, Any], workload: Mapping[str, Any] | None, index: OwnerIndex, notes: list[str]
) -> list[dict[str, Any]]:
    """The `owners` of an entry: each once (the first place that named it), in a stable order;
    what could not be told is added to `notes`."""
    namespace = str(_meta(claim).get("namespace", ""))
    found = _from_metadata(claim, "claim", index, notes)
    if workload is not None:
        kind, name = str(workload["kind"]), str(workload["name"])
        obj = index.workloads.get((kind, namespace, name))
        if obj is not None:
            found += _from_metadata(obj, kind, index, notes)
        for owner_kind in ("ScaledObject", "HorizontalPodAutoscaler"):
            for item in index.targeting(owner_kind, namespace, kind, name):
                found.append(
                    {
                        "kind": owner_kind,
                        "name": str(_meta(item).get("name")),
                        "namespace": namespace,
                        "foundBy": f"its scaleTargetRef names {kind} {name}",
                    }
                )
    unique: dict[Key, dict[str, Any]] = {}
    for owner in found:
        unique.setdefault((owner["kind"], owner["namespace"], owner["name"]), owner)
    return [unique[key] for key in sorted(unique)]


def claim_retention(statefulset: Mapping[str, Any] | None) -> dict[str, str] | None:
    """A StatefulSet's persistentVolumeClaimRetentionPolicy (both keys; the API defaults each to Retain)."""
    if statefulset is None:
        return None
    policy = (statefulset.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return {key: str(policy.get(key) or "Retain") for key in wo.RETENTION_KEYS}


def owner_warnings(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per owner that would act during a cutover's window, with how to hold it."""
    warnings: list[str] = []
    seen: set[Key] = set()
    for entry in entries:
        for owner in entry.get("owners") or ():
            key = (owner["kind"], owner["namespace"], owner["name"])
            if key in seen or not wo.acts_in_window(owner["kind"]):
                continue
            seen.add(key)
            kind, namespace, name = key
            warnings.append(
                f"{kind} {namespace}/{name} acts on {entry['namespace']}/{entry['claim']} and would undo a cutover "
                "mid-window: the cutover refuses to start unless it is held. Hold it: "
                f"`{wo.hold_command(kind, name, namespace)}`; "
                f"resume it after: `{wo.resume_command(kind, name, namespace)}` (or set holdOwners: true on the entry)"
            )
    return warnings
