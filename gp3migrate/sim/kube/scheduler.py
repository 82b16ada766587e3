"""The scheduler's volume binding (`pkg/scheduler/framework/plugins/volumebinding`): a pod's
claims bound or handed to a provisioner on the node it is scheduled to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gp3migrate.sim.kube.names import BOUND_BY_CONTROLLER, NO_PROVISIONER, SCHEDULER, SELECTED_NODE
from gp3migrate.sim.kube.objects import (
    annotations_of,
    claim_class,
    deleting,
    find_matching_volume,
    object_reference,
    pod_claims,
    pv_zones,
)

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState


def scheduler(world: ClusterState) -> None:
    """kube-scheduler with the NodeAffinity (spec.nodeSelector) and VolumeBinding plugins
    (pkg/scheduler/framework/plugins/volumebinding): a pod is placed on a node in the zones of its
    bound claims' PVs; a claim of a WaitForFirstConsumer class is bound to a fitting static PV on
    that node or gets `volume.kubernetes.io/selected-node` to be provisioned there; the pod is bound
    to the node once all its claims are bound. Claims that are missing, being deleted, or unbound
    with Immediate binding keep it Pending (FailedScheduling)."""
    kube = world.kube
    for namespace, name in kube.names("Pod"):
        pod = kube.peek("Pod", namespace, name)
        if pod is None or deleting(pod) or pod["spec"].get("nodeName"):
            continue
        selector = pod["spec"].get("nodeSelector") or {}
        candidates = [n for n in sorted(world.nodes) if _node_matches(world, n, selector)]
        waiting: list[dict[str, Any]] = []
        problem = ""
        for claim_name in pod_claims(pod):
            claim = kube.peek("PersistentVolumeClaim", namespace, claim_name)
            if claim is None:
                problem = f'persistentvolumeclaim "{claim_name}" not found'
            elif deleting(claim):
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
        chosen = [annotations_of(c).get(SELECTED_NODE) for c in waiting if annotations_of(c).get(SELECTED_NODE)]
        node = chosen[0] if chosen and chosen[0] in candidates else world.rng.choice(candidates)
        for claim in waiting:
            _bind_or_provision_on(world, claim, node)
        if not waiting:
            with kube.edit("Pod", namespace, name, SCHEDULER) as bound:
                bound["spec"]["nodeName"] = node
                bound["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
            world.event("Pod", namespace, name, "Scheduled", f"Successfully assigned {namespace}/{name} to {node}")


def _node_matches(world: ClusterState, node: str, selector: dict[str, str]) -> bool:
    labels = (world.kube.peek("Node", "", node) or {"metadata": {}})["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _bind_or_provision_on(world: ClusterState, claim: dict[str, Any], node: str) -> None:
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    if claim["spec"].get("volumeName"):
        return  # pre-bound: the PV controller binds it
    pv = find_matching_volume(
        world.kube.view("PersistentVolume"), claim, delay_binding=True, zone=world.nodes[node].zone
    )
    if pv is not None:
        with kube.edit("PersistentVolume", "", pv["metadata"]["name"], SCHEDULER) as bound:  # BindPodVolumes
            bound["spec"]["claimRef"] = object_reference(claim)
            bound["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
        return
    storage_class = kube.peek("StorageClass", "", claim_class(claim))
    if storage_class is not None and storage_class["provisioner"] == NO_PROVISIONER:
        world.event("PersistentVolumeClaim", namespace, name, "FailedBinding", "no persistent volumes available")
    elif annotations_of(claim).get(SELECTED_NODE) != node:
        with kube.edit("PersistentVolumeClaim", namespace, name, SCHEDULER) as selected:
            selected["metadata"].setdefault("annotations", {})[SELECTED_NODE] = node
