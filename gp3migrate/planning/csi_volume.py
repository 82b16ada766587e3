"""The objects that serve an existing EBS volume through the CSI driver (rehome), as manifests.

Static provisioning (aws-ebs-csi-driver examples/kubernetes/static-provisioning): a
PersistentVolume with `csi.volumeHandle` set to the bare volume id, and a claim bound to it by
`volumeName`. The node plugin mounts the existing filesystem; it formats only a blank device
(mount-utils FormatAndMount), so the fsType must be the one already on the volume.
"""

from typing import Any

from gp3migrate.planning.plan import MigrationPlan, k8s_name
from gp3migrate.planning.restore import source_metadata, with_claim_identity
from gp3migrate.versions import CSI_DRIVER

ZONE_LABEL = "topology.kubernetes.io/zone"


def csi_pv_name(plan: MigrationPlan) -> str:
    """The CSI PV's name, next to the in-tree PV it replaces."""
    return k8s_name(plan.entry.pv, "-csi")


def csi_persistent_volume(plan: MigrationPlan, reclaim_policy: str = "Retain") -> dict[str, Any]:
    entry = plan.entry
    csi: dict[str, Any] = {"driver": CSI_DRIVER, "volumeHandle": entry.volume_id}
    if entry.volume_mode == "Filesystem":
        csi["fsType"] = entry.fs_type
    # What the in-tree PV said, as CSI migration carries it (kubernetes csi-translation-lib
    # plugins/aws_ebs.go TranslateInTreePVToCSI). The driver stages the partition it names instead
    # of the whole disk ("0" or none: the whole disk; aws-ebs-csi-driver pkg/driver/node.go
    # NodeStageVolume reads VolumeAttributePartition).
    if entry.partition:
        csi["volumeAttributes"] = {"partition": str(entry.partition)}
    if entry.read_only:
        csi["readOnly"] = True
    spec_extra: dict[str, Any] = {}
    if entry.mount_options:
        # kubelet's CSI plugin passes spec.mountOptions to NodeStage and NodePublish as mount flags
        # (kubernetes pkg/volume/csi/csi_attacher.go MountDevice; node.go collectMountOptions).
        spec_extra["mountOptions"] = list(entry.mount_options)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": source_metadata(plan, csi_pv_name(plan)),
        "spec": {
            # The EBS volume's size: the claim's request must not exceed it (pv_controller.go).
            "capacity": {"storage": f"{entry.size_gib}Gi"},
            "accessModes": list(entry.access_modes),
            "volumeMode": entry.volume_mode,
            # Retain until finalize, at least: the in-tree PV object still points at this volume.
            "persistentVolumeReclaimPolicy": reclaim_policy,
            # The class the claim names (binding requires equal classes); it also makes the
            # volume expandable later through the class's allowVolumeExpansion.
            "storageClassName": plan.storage_class,
            # Reserved for the claim of the old name; the PV controller fills in the uid.
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": entry.namespace,
                "name": entry.claim,
            },
            "csi": csi,
            # An EBS volume attaches only in its own zone.
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [entry.zone]}]}
                    ]
                }
            },
            **spec_extra,
        },
    }


def rehomed_claim(plan: MigrationPlan) -> dict[str, Any]:
    """The claim of the old name, bound by `volumeName` to the CSI PV of the same volume."""
    entry = plan.entry
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        # The source claim's labels and annotations too: its owner (Helm, Argo CD, Flux) finds it again.
        "metadata": with_claim_identity(
            plan, {"name": entry.claim, "namespace": entry.namespace, **source_metadata(plan, entry.claim)}
        ),
        "spec": {
            "accessModes": list(entry.access_modes),
            "volumeMode": entry.volume_mode,
            "storageClassName": plan.storage_class,
            "volumeName": csi_pv_name(plan),
            "resources": {"requests": {"storage": f"{entry.size_gib}Gi"}},
        },
    }
