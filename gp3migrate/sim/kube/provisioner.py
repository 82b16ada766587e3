"""The external-provisioner with the EBS CSI driver: dynamic provisioning and restores from
snapshots (kubernetes-csi/external-provisioner), and the driver's CreateVolume and DeleteVolume.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gp3migrate.sim.ebs import driver_policy_allows
from gp3migrate.sim.kube.fields import quantity
from gp3migrate.sim.kube.names import (
    BETA_STORAGE_PROVISIONER,
    CSI_DRIVER,
    GI,
    IN_TREE_PLUGIN,
    MIGRATED_TO,
    PROVISIONED_BY,
    PROVISIONER,
    PROVISIONER_FINALIZER,
    SELECTED_NODE,
    SNAPSHOT_GROUP,
    STORAGE_PROVISIONER,
    ZONE_LABEL,
)
from gp3migrate.sim.kube.objects import (
    annotations_of,
    claim_class,
    claim_request,
    deleting,
    object_reference,
    pod_claims,
    pv_volume_id,
    volume_mode,
)

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState

# The StorageClass parameter keys the driver's CreateVolume accepts (pkg/driver/constants.go; keys are
# matched lowercased), after the provisioner has removed its own csi.storage.k8s.io/ keys.
DRIVER_PARAMETERS = frozenset(
    {
        "fstype",
        "type",
        "iopspergb",
        "allowautoiopspergbincrease",
        "allowautoiopsincreaseonmodify",
        "volumeinitializationrate",
        "iops",
        "throughput",
        "encrypted",
        "kmskeyid",
        "blockexpress",
        "blocksize",
        "inodesize",
        "bytesperinode",
        "numberofinodes",
        "ext4bigalloc",
        "ext4clustersize",
        "ext4encryptionsupport",
        "blockattachuntilinitialized",
        "outpostarn",
    }
)


def external_provisioner(world: ClusterState) -> None:
    """kubernetes-csi/external-provisioner (sig-storage-lib-external-provisioner controller.go with
    pkg/controller/controller.go): provisions claims the PV controller handed to ebs.csi.aws.com
    (shouldProvision; WaitForFirstConsumer only once a node is selected), and deletes the volumes of
    Released PVs with reclaim policy Delete that are its own (isProvisionerForVolume), keeping its
    finalizer on them meanwhile (handleProtectionFinalizer)."""
    for namespace, name in world.kube.names("PersistentVolumeClaim"):
        claim = world.kube.peek("PersistentVolumeClaim", namespace, name)
        if claim is not None and claim["status"].get("phase") == "Pending" and not claim["spec"].get("volumeName"):
            _provision(world, claim)
    for _, name in world.kube.names("PersistentVolume"):
        _reclaim_csi_volume(world, name)


def _provision(world: ClusterState, claim: dict[str, Any]) -> None:
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    annotations = annotations_of(claim)
    provisioner = annotations.get(STORAGE_PROVISIONER) or annotations.get(BETA_STORAGE_PROVISIONER)
    if provisioner != CSI_DRIVER and annotations.get(MIGRATED_TO) != CSI_DRIVER:
        return
    storage_class = kube.peek("StorageClass", "", claim_class(claim))
    if storage_class is None:
        return
    node = annotations.get(SELECTED_NODE)
    if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
        return
    pv_name = f"pvc-{claim['metadata']['uid']}"  # makeVolumeName
    if kube.peek("PersistentVolume", "", pv_name) is not None:
        return  # provisioned already; the PV controller binds it
    try:
        snapshot_id = _snapshot_source(world, claim, storage_class)
        volume_id, zone, fs_type = _driver_create_volume(world, claim, storage_class, node, pv_name, snapshot_id)
    except ProvisioningError as err:
        world.event("PersistentVolumeClaim", namespace, name, "ProvisioningFailed", str(err))
        return
    migrated = storage_class["provisioner"] == IN_TREE_PLUGIN
    source: dict[str, Any]
    if migrated:  # the provisioner translates the PV back to the in-tree source (csi-translation-lib)
        source = {"awsElasticBlockStore": {"volumeID": f"aws://{zone}/{volume_id}", "fsType": fs_type}}
    else:
        source = {"csi": {"driver": CSI_DRIVER, "volumeHandle": volume_id}}
        if volume_mode(claim) == "Filesystem":
            source["csi"]["fsType"] = fs_type
    policy = storage_class.get("reclaimPolicy", "Delete")
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": pv_name,
                "annotations": {
                    PROVISIONED_BY: storage_class["provisioner"],
                    **({MIGRATED_TO: CSI_DRIVER} if migrated else {}),
                },
                "finalizers": [PROVISIONER_FINALIZER] if policy == "Delete" else [],
            },
            "spec": {
                **source,
                "capacity": {"storage": f"{world.ebs.size(volume_id)}Gi"},
                "accessModes": list(claim["spec"]["accessModes"]),
                "volumeMode": volume_mode(claim),
                "storageClassName": storage_class["metadata"]["name"],
                "persistentVolumeReclaimPolicy": policy,
                "mountOptions": list(storage_class.get("mountOptions") or []),
                "claimRef": object_reference(claim),
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [zone]}]}
                        ]
                    }
                },
            },
        },
        PROVISIONER,
    )
    world.event(
        "PersistentVolumeClaim", namespace, name, "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}"
    )


class ProvisioningError(Exception):
    """Why the provisioner or the driver could not provision a claim (a ProvisioningFailed event)."""


def _snapshot_source(world: ClusterState, claim: dict[str, Any], storage_class: dict[str, Any]) -> str | None:
    """getSnapshotSource: the EBS snapshot to restore from, only when the VolumeSnapshot exists and
    is not being deleted, is bound to a content that names it back by uid, the content's driver is
    the class's provisioner, it is readyToUse with a snapshotHandle, the request is at least its
    restoreSize, and the volume modes agree when the content sets sourceVolumeMode
    (--prevent-volume-mode-conversion)."""
    source = claim["spec"].get("dataSource")
    if source is None:
        return None
    if (source.get("apiGroup"), source.get("kind")) != (SNAPSHOT_GROUP, "VolumeSnapshot"):
        raise ProvisioningError(f"data source {source.get('kind')} is not supported by this simulation")
    namespace, name = claim["metadata"]["namespace"], source["name"]
    snapshot = world.kube.peek("VolumeSnapshot", namespace, name) if world.kube.crds_installed else None
    if snapshot is None:
        raise ProvisioningError(f"error getting snapshot {name} from api server: not found")
    if deleting(snapshot):
        raise ProvisioningError(f"snapshot {name} is being deleted")
    content_name = (snapshot.get("status") or {}).get("boundVolumeSnapshotContentName")
    if not content_name:
        raise ProvisioningError(f"snapshot {name} not bound")
    content = world.kube.peek("VolumeSnapshotContent", "", content_name)
    if content is None:
        raise ProvisioningError(f"error getting snapshotcontent {content_name} for snapshot {name}")
    ref = content["spec"].get("volumeSnapshotRef") or {}
    if (ref.get("uid"), ref.get("namespace"), ref.get("name")) != (snapshot["metadata"]["uid"], namespace, name):
        raise ProvisioningError(f"snapshotcontent {content_name} for snapshot {name} is bound to a different snapshot")
    if content["spec"]["driver"] != storage_class["provisioner"]:
        raise ProvisioningError(
            f"snapshotcontent {content_name} for snapshot {name} is handled by a different CSI driver than "
            f"requested by StorageClass {storage_class['metadata']['name']}"
        )
    if not (snapshot.get("status") or {}).get("readyToUse"):
        raise ProvisioningError(f"snapshot {name} is not Ready")
    handle = (content.get("status") or {}).get("snapshotHandle")
    if not handle:
        raise ProvisioningError(f"snapshot handle {name} is not available")
    restore_size = snapshot["status"].get("restoreSize")
    if restore_size is not None and claim_request(claim) < quantity(restore_size):
        raise ProvisioningError(
            f"requested volume size {claim_request(claim)} is less than the size {quantity(restore_size)} for the "
            f"source snapshot {name}"
        )
    mode = content["spec"].get("sourceVolumeMode")
    if mode is not None and "volumeMode" in claim["spec"] and mode != volume_mode(claim):
        raise ProvisioningError(
            f"requested volume {namespace}/{claim['metadata']['name']} modifies the mode of the source volume but "
            "does not have permission to do so"
        )
    return str(handle)


def _driver_create_volume(
    world: ClusterState,
    claim: dict[str, Any],
    storage_class: dict[str, Any],
    node: str | None,
    pv_name: str,
    snapshot_id: str | None,
) -> tuple[str, str, str]:
    """The provisioner's request (prepareProvision: fstype from csi.storage.k8s.io/fstype or fstype,
    default ext4; size rounded up to GiB; extraCreateMetadata) and the driver's CreateVolume
    (pkg/driver/controller.go: unknown parameters are InvalidArgument; type defaults to gp3; tags
    CSIVolumeName, ebs.csi.aws.com/cluster=true, created-for pvc/pv, tagSpecification_N "k=v")."""
    parameters = dict(storage_class.get("parameters") or {})
    fs_keys = [k for k in parameters if k.lower() == "fstype" or k == "csi.storage.k8s.io/fstype"]
    if len(fs_keys) > 1:
        raise ProvisioningError(
            'fstype specified in parameters with both "fstype" and "csi.storage.k8s.io/fstype" keys'
        )
    fs_type = str(parameters[fs_keys[0]]) if fs_keys else "ext4"
    driver_parameters = {k: str(v) for k, v in parameters.items() if not k.startswith("csi.storage.k8s.io/")}
    tags = {
        "CSIVolumeName": pv_name,
        "ebs.csi.aws.com/cluster": "true",
        "kubernetes.io/created-for/pvc/name": claim["metadata"]["name"],
        "kubernetes.io/created-for/pvc/namespace": claim["metadata"]["namespace"],
        "kubernetes.io/created-for/pv/name": pv_name,
    }
    for key, value in sorted(driver_parameters.items()):
        if key.startswith("tagSpecification"):
            tag_key, _, tag_value = value.partition("=")
            tags[tag_key] = tag_value
        elif key.lower() not in DRIVER_PARAMETERS:
            raise ProvisioningError(
                f"rpc error: code = InvalidArgument desc = Invalid parameter key {key} for CreateVolume"
            )
    lowered = {k.lower(): v for k, v in driver_parameters.items()}
    size = max(1, math.ceil(claim_request(claim) / GI))
    iops = int(lowered["iops"]) if "iops" in lowered else None
    if iops is None and "iopspergb" in lowered:
        iops = int(lowered["iopspergb"]) * size
    throughput = int(lowered["throughput"]) if "throughput" in lowered else None
    encrypted = lowered.get("encrypted", "false").lower() == "true"
    kms_key_id = lowered.get("kmskeyid") if encrypted else None
    volume_type = lowered.get("type", "gp3")
    zone = world.nodes[node].zone if node else world.rng.choice(sorted({n.zone for n in world.nodes.values()}))
    try:
        if snapshot_id is None:
            volume_id = world.ebs.create_volume(
                zone=zone,
                size_gib=size,
                volume_type=volume_type,
                tags=tags,
                iops=iops,
                throughput=throughput,
                encrypted=encrypted,
                kms_key_id=kms_key_id,
            )
        else:
            if not driver_policy_allows(
                world.driver_policy, "CreateVolumeFromSnapshot", world.ebs.snapshot_tags(snapshot_id)
            ):
                raise ClientError(
                    {
                        "Error": {
                            "Code": "UnauthorizedOperation",
                            "Message": f"not authorized: ec2:CreateVolume on {snapshot_id}",
                        }
                    },
                    "CreateVolume",
                )
            volume_id = world.ebs.create_volume_from_snapshot(
                snapshot_id, zone, volume_type, iops, throughput, encrypted, kms_key_id, tags, size_gib=size
            )
    except ClientError as err:
        raise ProvisioningError(
            f'rpc error: code = Internal desc = Could not create volume "{pv_name}": {err}'
        ) from err
    return volume_id, zone, fs_type


def _reclaim_csi_volume(world: ClusterState, name: str) -> None:
    """The provisioner's syncVolume (sig-storage-lib-external-provisioner controller/controller.go):
    isProvisionerForVolume picks its PVs (provisioned-by or migrated-to ebs.csi.aws.com, or static CSI
    PVs of the driver); handleProtectionFinalizer adds its finalizer only to a Bound Delete PV not being
    deleted, and removes it once the policy is Retain, so a PV Released as Retain and set to Delete
    later has none. shouldDelete: a Released Delete PV has its volume deleted (deleteVolumeOperation,
    retried on error), unless it is being deleted without the finalizer (a PV object deleted first
    without it is simply gone). Then the PV object."""
    kube = world.kube
    pv = kube.peek("PersistentVolume", "", name)
    if pv is None:
        return
    annotations = annotations_of(pv)
    if PROVISIONED_BY in annotations:
        ours = CSI_DRIVER in (annotations[PROVISIONED_BY], annotations.get(MIGRATED_TO))
    else:
        ours = (pv["spec"].get("csi") or {}).get("driver") == CSI_DRIVER or annotations.get(MIGRATED_TO) == CSI_DRIVER
    if not ours:
        return
    policy, phase = pv["spec"]["persistentVolumeReclaimPolicy"], (pv.get("status") or {}).get("phase")
    finalizers = pv["metadata"].get("finalizers") or []
    if policy == "Delete" and not deleting(pv) and phase == "Bound":
        kube.add_finalizer("PersistentVolume", "", name, PROVISIONER_FINALIZER, PROVISIONER)
    elif policy != "Delete":
        kube.remove_finalizer("PersistentVolume", "", name, PROVISIONER_FINALIZER, PROVISIONER)
    if policy != "Delete" or phase != "Released" or (deleting(pv) and PROVISIONER_FINALIZER not in finalizers):
        return
    volume_id = pv_volume_id(pv)
    try:
        if volume_id and world.ebs.exists(volume_id):
            # external-provisioner pkg/controller/controller.go canDeleteVolume refuses only while a
            # VolumeAttachment names THIS PV; a volume attached through another PV of the same volume
            # (rehome) reaches EC2, whose DeleteVolume refuses an attached volume (VolumeInUse), and
            # the driver returns that error (aws-ebs-csi-driver pkg/cloud/cloud.go DeleteDisk).
            node = world.ebs.attached_to(volume_id)
            if node and _attached_through(world, name):
                raise ProvisioningError(f"persistentvolume {name} is still attached to a node")
            if not driver_policy_allows(world.driver_policy, "DeleteVolume", world.ebs.tags(volume_id)):
                raise ProvisioningError(
                    f'rpc error: code = Internal desc = Could not delete volume ID "{volume_id}": UnauthorizedOperation'
                )
            try:
                world.ebs.delete_volume(volume_id)
            except ClientError as err:
                raise ProvisioningError(
                    f'rpc error: code = Internal desc = Could not delete volume ID "{volume_id}": '
                    f"DeleteDisk could not delete volume: {err}"
                ) from err
    except (ProvisioningError, ClientError) as err:
        world.event("PersistentVolume", "", name, "VolumeFailedDelete", str(err))
        return
    kube.delete_object("PersistentVolume", "", name)
    kube.remove_finalizer("PersistentVolume", "", name, PROVISIONER_FINALIZER, PROVISIONER)


def _attached_through(world: ClusterState, pv_name: str) -> bool:
    """Whether a VolumeAttachment would name this PV (the attach-detach controller makes one per PV a
    scheduled pod uses, csi_attacher.go Attach): a scheduled pod, terminating or not, uses a claim
    bound to it. The simulation keeps no VolumeAttachment objects."""
    kube = world.kube
    for pod in kube.view("Pod"):
        if not pod["spec"].get("nodeName"):
            continue
        for claim_name in pod_claims(pod):
            claim = kube.peek("PersistentVolumeClaim", pod["metadata"]["namespace"], claim_name)
            if claim is not None and claim["spec"].get("volumeName") == pv_name:
                return True
    return False
