"""The garbage collector and the workload controllers (Deployment, StatefulSet): the pods that
mount the claims, and when they come and go.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from gp3migrate.sim.kube.names import CONTROLLER_MANAGER, KINDS, TEMPLATE_HASH
from gp3migrate.sim.kube.objects import deleting

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState


def garbage_collector(world: ClusterState) -> None:
    """pkg/controller/garbagecollector: dependents whose controlling owner is gone are deleted
    (background propagation); a claim whose every owner (a StatefulSet or a pod, the references
    persistentVolumeClaimRetentionPolicy gives it) is gone is deleted too (attemptToDeleteItem:
    all owners absent -> delete)."""
    kube = world.kube
    for namespace, name in kube.names("PersistentVolumeClaim"):
        claim = kube.peek("PersistentVolumeClaim", namespace, name)
        refs = [r for r in (claim or {}).get("metadata", {}).get("ownerReferences") or [] if r["kind"] in KINDS]
        if claim is None or deleting(claim) or not refs:
            continue
        if all(_absent(world, namespace, ref) for ref in refs):
            kube.delete_object("PersistentVolumeClaim", namespace, name)
    for kind in ("ReplicaSet", "Pod"):
        for namespace, name in kube.names(kind):
            obj = kube.peek(kind, namespace, name)
            if obj is None or deleting(obj):
                continue
            for ref in obj["metadata"].get("ownerReferences") or []:
                if not ref.get("controller") or ref["kind"] not in KINDS:
                    continue  # an owner of a kind this simulation does not serve is left alone
                owner = kube.peek(ref["kind"], namespace, ref["name"])
                if owner is None or owner["metadata"]["uid"] != ref["uid"]:
                    kube.delete_object(kind, namespace, name)
                    break


def _absent(world: ClusterState, namespace: str, ref: dict[str, Any]) -> bool:
    owner = world.kube.peek(ref["kind"], namespace, ref["name"])
    return owner is None or owner["metadata"]["uid"] != ref["uid"]


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


def _owned_pods(world: ClusterState, namespace: str, owner_kind: str, owner_names: set[str]) -> list[dict[str, Any]]:
    return [
        p
        for p in world.kube.view("Pod", namespace)
        if any(r["kind"] == owner_kind and r["name"] in owner_names for r in p["metadata"].get("ownerReferences") or [])
    ]


def pod_ready(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not deleting(pod)


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


def deployment_controller(world: ClusterState) -> None:
    """pkg/controller/deployment with the ReplicaSet controller: pods of the current template, scaled to
    spec.replicas; a template change rolls out with the defaults maxSurge 25% (rounded up) and
    maxUnavailable 25% (rounded down) (rolling.go, ResolveFenceposts); scale-down deletes unscheduled,
    then pending, then the newest pods first (replica_set.go getPodsToDelete)."""
    kube = world.kube
    for namespace, name in kube.names("Deployment"):
        deployment = kube.peek("Deployment", namespace, name)
        if deployment is None or deleting(deployment):
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
        pods = [p for p in _owned_pods(world, namespace, "ReplicaSet", sets) if not deleting(p)]
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


def _create_deployment_pod(
    world: ClusterState, deployment: dict[str, Any], replica_set: str, current_hash: str
) -> None:
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


def statefulset_controller(world: ClusterState) -> None:
    """pkg/controller/statefulset (OrderedReady, RollingUpdate): pods `<name>-<ordinal>` created one at a
    time in order once the previous ones run, each with its claims from volumeClaimTemplates created
    when missing (stateful_pod_control.go createPersistentVolumeClaims; not while a claim is being
    deleted); scale-down and updates remove the highest ordinal first, one at a time, only while the
    others run and none is terminating (stateful_set_control.go)."""
    kube = world.kube
    for namespace, name in kube.names("StatefulSet"):
        statefulset = kube.peek("StatefulSet", namespace, name)
        if statefulset is None or deleting(statefulset):
            continue
        desired = int(statefulset["spec"].get("replicas", 1))
        revision = template_hash(statefulset["spec"].get("template") or {})
        pods = {
            int(p["metadata"]["name"].rsplit("-", 1)[1]): p
            for p in _owned_pods(world, namespace, "StatefulSet", {name})
        }
        _claims_follow_retention_policy(world, statefulset, desired, pods)
        if not any(deleting(p) for p in pods.values()):
            _step_statefulset(world, statefulset, desired, revision, pods)
        pods_now = _owned_pods(world, namespace, "StatefulSet", {name})
        _workload_status(world, "StatefulSet", namespace, name, pods_now, revision)


def _claims_follow_retention_policy(
    world: ClusterState, statefulset: dict[str, Any], desired: int, pods: dict[int, dict[str, Any]]
) -> None:
    """spec.persistentVolumeClaimRetentionPolicy (StatefulSetAutoDeletePVC: beta and on by default
    since 1.27, GA in 1.32; pkg/features/kube_features.go), kubernetes pkg/controller/statefulset
    stateful_set_utils.go updateClaimOwnerRefForSetAndPod, run for every pod of the set before it
    is scaled or updated (stateful_set_control.go): `whenDeleted: Delete` makes the set an owner of
    each claim (the garbage collector deletes them with the set); `whenScaled: Delete` makes the pod
    the owner of its claims once its ordinal is at or past `replicas` (deleted once the pod is
    gone). Retain (the default for both) leaves the claims without such references."""
    policy = statefulset["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    when_deleted, when_scaled = policy.get("whenDeleted", "Retain"), policy.get("whenScaled", "Retain")
    namespace = statefulset["metadata"]["namespace"]
    for ordinal, pod in sorted(pods.items()):
        owners = []
        if when_scaled == "Delete" and ordinal >= desired:
            owners.append(_owner_ref(pod))
        elif when_deleted == "Delete":
            owners.append(_owner_ref(statefulset))
        mine = {statefulset["metadata"]["uid"], pod["metadata"]["uid"]}
        for claim_name in statefulset_claims(statefulset, ordinal):
            claim = world.kube.peek("PersistentVolumeClaim", namespace, claim_name)
            if claim is None or deleting(claim):
                continue
            refs = [r for r in claim["metadata"].get("ownerReferences") or [] if r["uid"] not in mine]
            if any(r.get("controller") for r in refs):
                owners = []  # hasUnexpectedController: another controller owns it; ours are scrubbed
            wanted = refs + owners
            if wanted != (claim["metadata"].get("ownerReferences") or []):
                with world.kube.edit("PersistentVolumeClaim", namespace, claim_name, CONTROLLER_MANAGER) as changed:
                    if wanted:
                        changed["metadata"]["ownerReferences"] = wanted
                    else:
                        changed["metadata"].pop("ownerReferences", None)


def _step_statefulset(
    world: ClusterState, statefulset: dict[str, Any], desired: int, revision: str, pods: dict[int, dict[str, Any]]
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


def _create_statefulset_pod(world: ClusterState, statefulset: dict[str, Any], ordinal: int, revision: str) -> None:
    kube, namespace, name = world.kube, statefulset["metadata"]["namespace"], statefulset["metadata"]["name"]
    volumes = []
    for template, claim in zip(
        statefulset["spec"].get("volumeClaimTemplates") or [], statefulset_claims(statefulset, ordinal), strict=True
    ):
        existing = kube.peek("PersistentVolumeClaim", namespace, claim)
        if existing is not None and deleting(existing):
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
    world: ClusterState, kind: str, namespace: str, name: str, pods: list[dict[str, Any]], revision: str
) -> None:
    """status.replicas counts pods not being deleted (FilterActivePods): a terminating pod, still
    running, is not counted; readyReplicas those running; updatedReplicas those of the template."""
    active = [p for p in pods if not deleting(p)]
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
