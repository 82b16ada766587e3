"""The Kubernetes side of the simulation, one room per owner, as kubernetes lays out
`pkg/controller/volume/`:

- `names`, `fields`: the names, types and field-path helpers every room shares;
- `crd_rules`, `validation`, `store`: the API server (`Cluster`, its object store, defaults,
  validation and server-side apply);
- `objects`: readers of API objects more than one controller uses;
- `workloads`, `scheduler`: the garbage collector, the Deployment and StatefulSet controllers and
  the scheduler's volume binding;
- `persistent_volume`: the PV controller (binding and reclaim) and pvc-/pv-protection;
- `snapshots`: the snapshot controller and the csi-snapshotter sidecar;
- `provisioner`: the external-provisioner with the EBS CSI driver;
- `gitops`: the cluster's GitOps owners (Argo CD's application controller, Flux's
  kustomize-controller), applying what their git holds;
- `autoscalers`: KEDA's ScaledObjects and the HorizontalPodAutoscaler controller;
- `helm`: `helm upgrade` as a user runs it (not a controller: a scenario calls it);
- `node_stage`: the EBS CSI driver's node plugin as a kubelet meets it when it mounts a volume
  (fsType, partition, readOnly, mount options); the world's kubelets call it.

The controllers are functions of the world, run once per tick by `World.tick` in a fixed order:
the garbage collector, Deployment and StatefulSet controllers, the scheduler's volume binding, the
PV controller, pvc-/pv-protection, the snapshot controller and csi-snapshotter sidecar, and the
external-provisioner with the EBS CSI driver; the GitOps owners and the autoscalers run first, as
the operators do (they set what the workload controllers then act on). What they follow is cited
on each. The store imports no controller; a controller imports the store's rooms and `objects`,
never another controller.
This package re-exports what the world (gp3migrate/sim/world.py) reads as `kube.<name>`.
"""

from gp3migrate.sim.kube.autoscalers import hpa_controller, keda_controller
from gp3migrate.sim.kube.crd_rules import FALLBACK_CRD_RULES, SNAPSHOT_CRDS, load_crd_rules
from gp3migrate.sim.kube.fields import merge_patch
from gp3migrate.sim.kube.gitops import argocd_controller, flux_controller
from gp3migrate.sim.kube.helm import HelmError, helm_upgrade
from gp3migrate.sim.kube.names import (
    BETA_STORAGE_PROVISIONER,
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    CONTROLLER_MANAGER,
    CSI_DRIVER,
    DEFAULT_CLASS,
    DEFAULT_SNAPSHOT_CLASS,
    IN_TREE_PLUGIN,
    KINDS,
    KUBELET,
    MIGRATED_TO,
    PROVISIONED_BY,
    PV_PROTECTION,
    SNAPSHOT_API,
    SNAPSHOT_GROUP,
    SNAPSHOT_KINDS,
    STORAGE_PROVISIONER,
    ZONE_LABEL,
    Event,
    KubeError,
)
from gp3migrate.sim.kube.objects import (
    deleting,
    needs_csi_driver,
    object_reference,
    pod_claims,
    pv_fs_type,
    pv_volume_id,
)
from gp3migrate.sim.kube.persistent_volume import pv_controller, pv_protection, pvc_protection
from gp3migrate.sim.kube.provisioner import external_provisioner
from gp3migrate.sim.kube.scheduler import scheduler
from gp3migrate.sim.kube.snapshots import snapshot_controller, snapshotter_sidecar
from gp3migrate.sim.kube.store import Cluster
from gp3migrate.sim.kube.workloads import deployment_controller, garbage_collector, pod_ready, statefulset_controller

__all__ = [
    "BETA_STORAGE_PROVISIONER",
    "BIND_COMPLETED",
    "BOUND_BY_CONTROLLER",
    "CONTROLLER_MANAGER",
    "CSI_DRIVER",
    "DEFAULT_CLASS",
    "DEFAULT_SNAPSHOT_CLASS",
    "FALLBACK_CRD_RULES",
    "IN_TREE_PLUGIN",
    "KINDS",
    "KUBELET",
    "MIGRATED_TO",
    "PROVISIONED_BY",
    "PV_PROTECTION",
    "SNAPSHOT_API",
    "SNAPSHOT_CRDS",
    "SNAPSHOT_GROUP",
    "SNAPSHOT_KINDS",
    "STORAGE_PROVISIONER",
    "ZONE_LABEL",
    "Cluster",
    "Event",
    "HelmError",
    "KubeError",
    "argocd_controller",
    "deleting",
    "deployment_controller",
    "external_provisioner",
    "flux_controller",
    "garbage_collector",
    "helm_upgrade",
    "hpa_controller",
    "keda_controller",
    "load_crd_rules",
    "merge_patch",
    "needs_csi_driver",
    "object_reference",
    "pod_claims",
    "pod_ready",
    "pv_controller",
    "pv_fs_type",
    "pv_protection",
    "pv_volume_id",
    "pvc_protection",
    "scheduler",
    "snapshot_controller",
    "snapshotter_sidecar",
    "statefulset_controller",
]
