"""Names the controllers and the API use: kinds, annotations, finalizers, field managers, and
the error and event types every room of the Kubernetes model shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CSI_DRIVER = "ebs.csi.aws.com"
IN_TREE_PLUGIN = "kubernetes.io/aws-ebs"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
ZONE_LABEL = "topology.kubernetes.io/zone"
ZONE_KEYS = (ZONE_LABEL, "topology.ebs.csi.aws.com/zone", "failure-domain.beta.kubernetes.io/zone")
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SNAPSHOT_API = f"{SNAPSHOT_GROUP}/v1"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
DEFAULT_SNAPSHOT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"
# component-helpers/storage/volume/pv_helpers.go
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
MIGRATED_TO = "pv.kubernetes.io/migrated-to"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONER_FINALIZER = "external-provisioner.volume.kubernetes.io/finalizer"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
# external-snapshotter pkg/utils/util.go
CONTENT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
SNAPSHOT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
SNAPSHOT_AS_SOURCE = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
BEING_DELETED = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
# Field managers (the names kube-apiserver records for these writers).
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
PROVISIONER = "csi-provisioner"
SNAPSHOT_CONTROLLER = "snapshot-controller"
SNAPSHOTTER = "csi-snapshotter"
KUBELET = "kubelet"

GI = 1024**3
TEMPLATE_HASH = "pod-template-hash"

# (apiVersion, namespaced) of the kinds this simulation knows; other kinds are kept as given.
KINDS: dict[str, tuple[str, bool]] = {
    "PersistentVolumeClaim": ("v1", True),
    "PersistentVolume": ("v1", False),
    "Pod": ("v1", True),
    "Node": ("v1", False),
    "Namespace": ("v1", False),
    "Secret": ("v1", True),
    "ServiceAccount": ("v1", True),
    "ConfigMap": ("v1", True),
    "StorageClass": ("storage.k8s.io/v1", False),
    "CSIDriver": ("storage.k8s.io/v1", False),
    "VolumeAttachment": ("storage.k8s.io/v1", False),
    "Deployment": ("apps/v1", True),
    "StatefulSet": ("apps/v1", True),
    "ReplicaSet": ("apps/v1", True),
    "VolumeSnapshot": (SNAPSHOT_API, True),
    "VolumeSnapshotContent": (SNAPSHOT_API, False),
    "VolumeSnapshotClass": (SNAPSHOT_API, False),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", False),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", False),
}
SNAPSHOT_KINDS = frozenset({"VolumeSnapshot", "VolumeSnapshotContent", "VolumeSnapshotClass"})
PLURALS = {"PersistentVolumeClaim": "persistentvolumeclaims", "StorageClass": "storageclasses"}

Key = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped), name
FieldPath = tuple[str, ...]
Objects = list[dict[str, Any]]  # (named so: `Cluster.list` shadows the builtin in its class body)
Names = list[tuple[str, str]]


class KubeError(Exception):
    """An API error: reason AlreadyExists / NotFound / Conflict / Invalid / Forbidden."""

    STATUS = {"AlreadyExists": 409, "NotFound": 404, "Conflict": 409, "Invalid": 422, "Forbidden": 403}

    def __init__(self, reason: str, message: str = ""):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = self.STATUS[reason]


@dataclass
class Event:
    """A Kubernetes Event, aggregated like the event recorder does (same object, reason and message)."""

    tick: int
    kind: str
    namespace: str
    name: str
    reason: str
    message: str
    count: int = 1
