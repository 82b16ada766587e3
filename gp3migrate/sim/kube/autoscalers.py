"""The autoscalers that set a workload's `replicas`: KEDA's ScaledObjects and the
HorizontalPodAutoscaler controller. Metrics are not modelled: a ScaledObject's trigger is active
while the world says events arrive (`ClusterState.keda_active`), and an HPA only holds its target
within `minReplicas`..`maxReplicas`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gp3migrate.sim.kube.objects import annotations_of, deleting

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState

KEDA_API = "keda.sh/v1alpha1"
KEDA_MANAGER = "keda-operator"
HPA_MANAGER = "horizontal-pod-autoscaler"
# kedacore/keda apis/keda/v1alpha1/scaledobject_types.go PausedReplicasAnnotation, PausedAnnotation.
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED = "autoscaling.keda.sh/paused"


def _target(world: ClusterState, namespace: str, ref: dict[str, Any]) -> dict[str, Any] | None:
    kind = ref.get("kind") or "Deployment"
    target = world.kube.peek(kind, namespace, str(ref.get("name", "")))
    return None if target is None or deleting(target) else target


def _scale(world: ClusterState, target: dict[str, Any], replicas: int, manager: str) -> None:
    meta = target["metadata"]
    with world.kube.edit(target["kind"], meta["namespace"], meta["name"], manager) as changed:
        changed["spec"]["replicas"] = replicas


def keda_controller(world: ClusterState) -> None:
    """kedacore/keda 8b4f083 pkg/scaling/executor/scale_scaledobjects.go RequestScale, per
    ScaledObject each tick (its pollingInterval, 30 s by default, is not modelled):
    - paused (`autoscaling.keda.sh/paused-replicas` or `autoscaling.keda.sh/paused` set): nothing
      (handlePaused returns before any scaling);
    - a trigger active and the target at 0 replicas: scaled to `minReplicaCount`, or 1
      (scaleFromZeroOrIdle).
    Not modelled: scaling to 0 after `cooldownPeriod` without activity, and KEDA's own HPA between
    1 and `maxReplicaCount`."""
    for namespace, name in world.kube.names("ScaledObject"):
        scaled = world.kube.peek("ScaledObject", namespace, name)
        if scaled is None or deleting(scaled) or scaled["apiVersion"] != KEDA_API:
            continue
        annotations = annotations_of(scaled)
        if PAUSED_REPLICAS in annotations or annotations.get(PAUSED, "").lower() == "true":
            continue
        spec = scaled.get("spec") or {}
        target = _target(world, namespace, spec.get("scaleTargetRef") or {})
        if target is None or (namespace, name) not in world.keda_active:
            continue
        if int(target["spec"].get("replicas", 1)) == 0:
            replicas = max(int(spec.get("minReplicaCount") or 0), 1)
            _scale(world, target, replicas, KEDA_MANAGER)
            world.event(
                "ScaledObject",
                namespace,
                name,
                "KEDAScaleTargetActivated",
                f"Scaled {target['kind']} {namespace}/{target['metadata']['name']} from 0 to {replicas}",
            )


def hpa_controller(world: ClusterState) -> None:
    """kubernetes pkg/controller/podautoscaler/horizontal.go reconcileAutoscaler: a target whose
    `spec.replicas` is 0 while `minReplicas` is not 0 is left alone ("scaling is disabled since the
    replica count of the target is zero", condition ScalingActive False, reason ScalingDisabled);
    otherwise the target is held within minReplicas (default 1) and maxReplicas (metrics not
    modelled: within the bounds the replicas stay as they are)."""
    for namespace, name in world.kube.names("HorizontalPodAutoscaler"):
        hpa = world.kube.peek("HorizontalPodAutoscaler", namespace, name)
        if hpa is None or deleting(hpa):
            continue
        spec = hpa.get("spec") or {}
        target = _target(world, namespace, spec.get("scaleTargetRef") or {})
        if target is None:
            continue
        current = int(target["spec"].get("replicas", 1))
        low, high = int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1))
        if current == 0 and low != 0:
            condition = {
                "type": "ScalingActive",
                "status": "False",
                "reason": "ScalingDisabled",
                "message": "scaling is disabled since the replica count of the target is zero",
            }
        else:
            wanted = min(max(current, low), high)
            if wanted != current:
                _scale(world, target, wanted, HPA_MANAGER)
            condition = {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "message": ""}
        with world.kube.edit("HorizontalPodAutoscaler", namespace, name, HPA_MANAGER) as changed:
            changed["status"] = {"conditions": [condition]}
