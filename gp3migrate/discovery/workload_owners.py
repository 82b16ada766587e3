"""Which workload mounts each claim, as the cluster really runs it.

A claim's workload is found from the workload itself, not only from running pods, so a workload
scaled to zero is still found: a Deployment's pod template names the claim; a StatefulSet's claims
are `<template>-<statefulset>-<ordinal>` (StatefulSet controller, `getPersistentVolumeClaimName`).
Pods fill in the rest (a bare Pod, a DaemonSet's or a Job's pod), which the program cannot scale.
A Deployment or StatefulSet that another controller owns (an operator's custom resource) is
recorded with that owner and gets `quiesce: manual`: the operator resets replicas.

Pure: the input is exported or listed objects.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Workloads:
    """(namespace, claim) -> the `workload` block of its entry, plus what could not be recorded."""

    by_claim: dict[Key, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _meta(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return item.get("metadata") or {}


def _key(item: Mapping[str, Any]) -> Key:
    meta = _meta(item)
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def controller_of(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with `controller: true` (or the only one, as older exports omit it)."""
    refs = [r for r in _meta(item).get("ownerReferences") or [] if isinstance(r, Mapping)]
    return next((r for r in refs if r.get("controller")), refs[0] if len(refs) == 1 else None)


def template_class(template: Mapping[str, Any]) -> tuple[str | None, str]:
    """The class a claim template names, and where: its `storageClassName`, or the annotation
    older manifests use instead."""
    name = (template.get("spec") or {}).get("storageClassName")
    if name:
        return str(name), "storageClassName"
    annotated = (_meta(template).get("annotations") or {}).get(BETA_CLASS_ANNOTATION)
    if annotated:
        return str(annotated), f"the {BETA_CLASS_ANNOTATION} annotation"
    return None, ""


def _pod_claims(pod_spec: Mapping[str, Any]) -> list[str]:
    return [
        str(claim)
        for volume in pod_spec.get("volumes") or []
        if (claim := (volume.get("persistentVolumeClaim") or {}).get("claimName"))
    ]


def _record(workload: Mapping[str, Any], in_tree_classes: frozenset[str]) -> dict[str, Any]:
    spec = workload.get("spec") or {}
    record: dict[str, Any] = {
        "kind": workload["kind"],
        "name": _key(workload)[1],
        "replicas": int(spec["replicas"]) if spec.get("replicas") is not None else 1,
    }
    classes = [template_class(t)[0] for t in spec.get("volumeClaimTemplates") or []]
    named = [c for c in classes if c]
    if named:
        # The in-tree one first: it is the one new replicas must not keep getting.
        record["templateStorageClass"] = next((c for c in named if c in in_tree_classes), named[0])
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if workload["kind"] == "StatefulSet" and isinstance(retention, Mapping) and retention:
        # Each key defaults to Retain (apps/v1 StatefulSetPersistentVolumeClaimRetentionPolicy).
        record["claimRetention"] = {
            "whenDeleted": str(retention.get("whenDeleted") or "Retain"),
            "whenScaled": str(retention.get("whenScaled") or "Retain"),
        }
    owner = controller_of(workload)
    if owner is not None and owner.get("apiVersion") != "apps/v1":
        record["owner"] = {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"), "name": owner.get("name")}
    return record


def _statefulset_claims(statefulset: Mapping[str, Any], claim_names: Iterable[str]) -> list[str]:
    name = _key(statefulset)[1]
    spec = statefulset.get("spec") or {}
    prefixes = [f"{_meta(t).get('name')}-{name}-" for t in spec.get("volumeClaimTemplates") or []]
    found = [c for c in claim_names for p in prefixes if c.startswith(p) and c[len(p) :].isdigit()]
    return found + _pod_claims((spec.get("template") or {}).get("spec") or {})


def _workload_of(pod: Mapping[str, Any], index: Mapping[str, Mapping[Key, Mapping[str, Any]]]) -> Key | None:
    """(kind, name) of the Deployment or StatefulSet a pod belongs to, when the export has it."""
    namespace = _key(pod)[0]
    owner = controller_of(pod)
    if owner is not None and owner.get("kind") == "ReplicaSet":
        replica_set = index.get("ReplicaSet", {}).get((namespace, str(owner.get("name"))))
        owner = controller_of(replica_set) if replica_set else None
    if owner is None or owner.get("kind") not in WORKLOAD_KINDS:
        return None
    kind, name = str(owner.get("kind")), str(owner.get("name"))
    return (kind, name) if (namespace, name) in index.get(kind, {}) else None


def _describe_owner(pod: Mapping[str, Any], index: Mapping[str, Mapping[Key, Mapping[str, Any]]]) -> str:
    owner = controller_of(pod)
    if owner is None:
        return "which no controller owns"
    namespace = _key(pod)[0]
    if owner.get("kind") == "ReplicaSet":
        replica_set = index.get("ReplicaSet", {}).get((namespace, str(owner.get("name"))))
        top = controller_of(replica_set) if replica_set else None
        if top is not None:
            return f"owned by {top.get('kind')} {top.get('name')} through ReplicaSet {owner.get('name')}"
    return f"owned by {owner.get('kind')} {owner.get('name')}"


def find_workloads(items: Iterable[Mapping[str, Any]], in_tree_classes: frozenset[str]) -> Workloads:
    index: dict[str, dict[Key, Mapping[str, Any]]] = {}
    for item in items:
        index.setdefault(str(item.get("kind", "")), {})[_key(item)] = item
    claims_by_namespace: dict[str, list[str]] = {}
    for namespace, claim in index.get("PersistentVolumeClaim", {}):
        claims_by_namespace.setdefault(namespace, []).append(claim)

    mounters: dict[Key, set[Key]] = {}  # claim -> {(kind, name)}
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    for kind in WORKLOAD_KINDS:
        for (namespace, name), workload in sorted(index.get(kind, {}).items()):
            records[(namespace, kind, name)] = _record(workload, in_tree_classes)
            if kind == "Deployment":
                claims = _pod_claims(((workload.get("spec") or {}).get("template") or {}).get("spec") or {})
            else:
                claims = _statefulset_claims(workload, claims_by_namespace.get(namespace, []))
            for claim in claims:
                mounters.setdefault((namespace, claim), set()).add((kind, name))

    # Running pods fill in what the templates did not say (a claim missing from the export); the
    # pods of anything else cannot be scaled by the program, so say who must stop them.
    others: dict[Key, list[str]] = {}
    for (namespace, pod_name), pod in sorted(index.get("Pod", {}).items()):
        pod_workload = _workload_of(pod, index)
        for claim in _pod_claims(pod.get("spec") or {}):
            if pod_workload is not None:
                mounters.setdefault((namespace, claim), set()).add(pod_workload)
            elif (namespace, claim) not in mounters:
                others.setdefault((namespace, claim), []).append(f"Pod {pod_name} ({_describe_owner(pod, index)})")

    result = Workloads()
    for (namespace, claim), found in sorted(mounters.items()):
        if len(found) > 1:
            names = ", ".join(f"{kind} {name}" for kind, name in sorted(found))
            result.warnings.append(
                f"claim {namespace}/{claim} is mounted by several workloads ({names}): none is recorded, so its "
                "entry gets quiesce: manual; stop all of them yourself before the cutover"
            )
            continue
        ((kind, name),) = found
        result.by_claim[(namespace, claim)] = records[(namespace, kind, name)]
    for (namespace, claim), pods in sorted(others.items()):
        result.warnings.append(
            f"claim {namespace}/{claim} is mounted by {', '.join(pods)}: the program cannot scale that, so its "
            "entry gets quiesce: manual; stop it yourself before the cutover"
        )
    recorded = {id(record) for record in result.by_claim.values()}
    for (namespace, kind, name), record in sorted(records.items()):
        if id(record) not in recorded:
            continue
        if "owner" in record:
            owner = record["owner"]
            result.warnings.append(
                f"{kind} {namespace}/{name} is controlled by {owner['kind']} {owner['name']} ({owner['apiVersion']}): "
                "the operator resets replicas, so its claims get quiesce: manual; stop it through the operator "
                "before the cutover"
            )
        if record["replicas"] == 0:
            result.warnings.append(
                f"{kind} {namespace}/{name} has replicas: 0 now: the cutover's scale-back would restore 0; set "
                "workload.replicas to the count it should run with"
            )
    return result


def template_class_warnings(items: Iterable[Mapping[str, Any]], in_tree_classes: frozenset[str]) -> list[str]:
    """Every StatefulSet whose claim templates still name an in-tree class: its new replicas would
    get in-tree volumes, and templates are immutable."""
    warnings = []
    statefulsets = sorted((i for i in items if i.get("kind") == "StatefulSet"), key=_key)
    for statefulset in statefulsets:
        namespace, name = _key(statefulset)
        for template in (statefulset.get("spec") or {}).get("volumeClaimTemplates") or []:
            class_name, where = template_class(template)
            if class_name in in_tree_classes:
                warnings.append(
                    f"StatefulSet {namespace}/{name} names the in-tree class {class_name!r} in its volumeClaimTemplate "
                    f"{_meta(template).get('name')!r} ({where}): new replicas would get in-tree volumes. Templates are "
                    f"immutable: re-create it with `kubectl delete sts {name} -n {namespace} --cascade=orphan` and "
                    "apply it with the gp3 class."
                )
    return warnings
