"""The snapshot controller and the csi-snapshotter sidecar with the EBS CSI driver's snapshot
calls (kubernetes-csi/external-snapshotter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gp3migrate.sim.ebs import driver_policy_allows
from gp3migrate.sim.kube.fields import gib_quantity
from gp3migrate.sim.kube.names import (
    BEING_DELETED,
    CONTENT_BOUND,
    CSI_DRIVER,
    DEFAULT_SNAPSHOT_CLASS,
    GI,
    SNAPSHOT_API,
    SNAPSHOT_AS_SOURCE,
    SNAPSHOT_BOUND,
    SNAPSHOT_CONTROLLER,
    SNAPSHOT_GROUP,
    SNAPSHOTTER,
)
from gp3migrate.sim.kube.objects import annotations_of, deleting, volume_mode

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState


def snapshot_controller(world: ClusterState) -> None:
    """external-snapshotter pkg/common-controller/snapshot_controller.go: syncSnapshot for every
    VolumeSnapshot, then syncContent for every VolumeSnapshotContent."""
    for namespace, name in world.kube.names("VolumeSnapshot"):
        snapshot = world.kube.peek("VolumeSnapshot", namespace, name)
        if snapshot is None:
            continue
        if deleting(snapshot):
            _snapshot_being_deleted(world, snapshot)
        else:
            _sync_snapshot(world, snapshot)
    for _, name in world.kube.names("VolumeSnapshotContent"):
        _sync_content(world, name)


def _status_error(world: ClusterState, snapshot: dict[str, Any], reason: str, message: str) -> None:
    """updateSnapshotErrorStatusWithEvent: readyToUse false, status.error, a Warning event."""
    namespace, name = snapshot["metadata"]["namespace"], snapshot["metadata"]["name"]
    with world.kube.edit("VolumeSnapshot", namespace, name, SNAPSHOT_CONTROLLER) as changed:
        status = changed.setdefault("status", {})
        status["readyToUse"] = False
        status["error"] = {"message": message, "time": world.ticks}
    world.event("VolumeSnapshot", namespace, name, reason, message)


def _bound_content(world: ClusterState, snapshot: dict[str, Any]) -> dict[str, Any] | None:
    """The content the snapshot is bound to, if it points back (IsVolumeSnapshotRefSet)."""
    content_name = (snapshot.get("status") or {}).get("boundVolumeSnapshotContentName")
    content = world.kube.peek("VolumeSnapshotContent", "", content_name) if content_name else None
    if content is None:
        return None
    ref = content["spec"].get("volumeSnapshotRef") or {}
    metadata = snapshot["metadata"]
    if (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (
        metadata["name"],
        metadata["namespace"],
        metadata["uid"],
    ):
        return None
    return content


def _restoring_from(world: ClusterState, snapshot: dict[str, Any]) -> bool:
    """isVolumeBeingCreatedFromSnapshot: a Pending claim of its namespace names it as dataSource."""
    for claim in world.kube.view("PersistentVolumeClaim", snapshot["metadata"]["namespace"]):
        source = claim["spec"].get("dataSource") or {}
        if (source.get("apiGroup"), source.get("kind"), source.get("name")) == (
            SNAPSHOT_GROUP,
            "VolumeSnapshot",
            snapshot["metadata"]["name"],
        ) and claim["status"].get("phase") == "Pending":
            return True
    return False


def _snapshot_being_deleted(world: ClusterState, snapshot: dict[str, Any]) -> None:
    """processSnapshotWithDeletionTimestamp / checkandRemoveSnapshotFinalizersAndCheckandDeleteContent:
    blocked while a claim restores from it; marks its content being-deleted; deletes the content when
    its deletionPolicy is Delete (keeping the bound finalizer until the content is gone)."""
    kube, namespace, name = world.kube, snapshot["metadata"]["namespace"], snapshot["metadata"]["name"]
    finalizers = snapshot["metadata"].get("finalizers") or []
    if SNAPSHOT_AS_SOURCE not in finalizers and SNAPSHOT_BOUND not in finalizers:
        return
    content = _bound_content(world, snapshot)
    if content is not None and _restoring_from(world, snapshot):
        world.event(
            "VolumeSnapshot", namespace, name, "SnapshotDeletePending", "Snapshot is being used to restore a PVC"
        )
        return
    delete_content = content is not None and content["spec"]["deletionPolicy"] == "Delete"
    if content is not None:
        content_name = content["metadata"]["name"]
        if annotations_of(content).get(BEING_DELETED) != "yes":
            with kube.edit("VolumeSnapshotContent", "", content_name, SNAPSHOT_CONTROLLER) as marked:
                marked["metadata"].setdefault("annotations", {})[BEING_DELETED] = "yes"
        if delete_content and not deleting(content):
            kube.delete_object("VolumeSnapshotContent", "", content_name)
    kube.remove_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_AS_SOURCE, SNAPSHOT_CONTROLLER)
    if not delete_content:
        kube.remove_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_BOUND, SNAPSHOT_CONTROLLER)


def _sync_snapshot(world: ClusterState, snapshot: dict[str, Any]) -> None:
    """syncSnapshot: the as-source finalizer always, the bound finalizer once bound to a content whose
    deletionPolicy is Delete (checkandAddSnapshotFinalizers); then bind and copy the content's status."""
    kube, namespace, name = world.kube, snapshot["metadata"]["namespace"], snapshot["metadata"]["name"]
    source = snapshot["spec"].get("source") or {}
    kube.add_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_AS_SOURCE, SNAPSHOT_CONTROLLER)
    if source.get("volumeSnapshotContentName"):
        content = _preprovisioned_content(world, snapshot, source["volumeSnapshotContentName"])
    else:
        content = _dynamic_content(world, snapshot, source.get("persistentVolumeClaimName", ""))
    if content is None:
        return
    content_name = content["metadata"]["name"]
    if not (content["spec"].get("volumeSnapshotRef") or {}).get("uid"):
        with kube.edit("VolumeSnapshotContent", "", content_name, SNAPSHOT_CONTROLLER) as bound:  # checkandBind
            bound["spec"]["volumeSnapshotRef"]["uid"] = snapshot["metadata"]["uid"]
            if snapshot["spec"].get("volumeSnapshotClassName"):
                bound["spec"]["volumeSnapshotClassName"] = snapshot["spec"]["volumeSnapshotClassName"]
        content = kube.peek("VolumeSnapshotContent", "", content_name) or content
    _copy_content_status(world, snapshot, content)
    if content["spec"]["deletionPolicy"] == "Delete":
        kube.add_finalizer("VolumeSnapshot", namespace, name, SNAPSHOT_BOUND, SNAPSHOT_CONTROLLER)


def _preprovisioned_content(world: ClusterState, snapshot: dict[str, Any], content_name: str) -> dict[str, Any] | None:
    """getPreprovisionedContentFromStore: the content must exist, hold a snapshotHandle, and name this
    snapshot by name, namespace and (once set) uid — a bound content never rebinds (issues 274, 321, 345)."""
    content = world.kube.peek("VolumeSnapshotContent", "", content_name)
    if content is None:
        _status_error(world, snapshot, "SnapshotContentMissing", "VolumeSnapshotContent is missing")
        return None
    if not content["spec"]["source"].get("snapshotHandle"):
        _status_error(
            world,
            snapshot,
            "SnapshotContentMismatch",
            "VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one",
        )
        return None
    ref, metadata = content["spec"].get("volumeSnapshotRef") or {}, snapshot["metadata"]
    if (ref.get("name"), ref.get("namespace")) != (metadata["name"], metadata["namespace"]) or (
        ref.get("uid") and ref["uid"] != metadata["uid"]
    ):
        _status_error(
            world,
            snapshot,
            "SnapshotContentMisbound",
            f"VolumeSnapshotContent [{content_name}] is bound to a different snapshot",
        )
        return None
    return content


def _dynamic_content(world: ClusterState, snapshot: dict[str, Any], claim_name: str) -> dict[str, Any] | None:
    """createSnapshotContent for a snapshot of a claim: `snapcontent-<uid>` from the claim's CSI PV and
    the VolumeSnapshotClass (named, or the default for the driver). In-tree PVs are not snapshotted
    through CSI (getVolumeHandleFromPV needs spec.csi)."""
    kube, namespace = world.kube, snapshot["metadata"]["namespace"]
    content_name = f"snapcontent-{snapshot['metadata']['uid']}"
    existing = kube.peek("VolumeSnapshotContent", "", content_name)
    if existing is not None:
        return existing
    claim = kube.peek("PersistentVolumeClaim", namespace, claim_name)
    pv = kube.peek("PersistentVolume", "", claim["spec"].get("volumeName", "")) if claim else None
    if claim is None or pv is None or claim["status"].get("phase") != "Bound":
        _status_error(world, snapshot, "SnapshotContentCreationFailed", f"the PVC {claim_name} is not yet bound")
        return None
    if "csi" not in pv["spec"]:
        _status_error(
            world, snapshot, "SnapshotContentCreationFailed", f"the PV {pv['metadata']['name']} is not a CSI volume"
        )
        return None
    class_name = snapshot["spec"].get("volumeSnapshotClassName")
    classes = kube.view("VolumeSnapshotClass")
    chosen = (
        [c for c in classes if c["metadata"]["name"] == class_name]
        if class_name
        else [
            c
            for c in classes
            if c["driver"] == pv["spec"]["csi"]["driver"] and annotations_of(c).get(DEFAULT_SNAPSHOT_CLASS) == "true"
        ]
    )
    if len(chosen) != 1:
        _status_error(world, snapshot, "SnapshotContentCreationFailed", "no VolumeSnapshotClass for the snapshot")
        return None
    return kube.create(
        {
            "apiVersion": SNAPSHOT_API,
            "kind": "VolumeSnapshotContent",
            "metadata": {"name": content_name},
            "spec": {
                "volumeSnapshotRef": {
                    "kind": "VolumeSnapshot",
                    "namespace": namespace,
                    "name": snapshot["metadata"]["name"],
                    "uid": snapshot["metadata"]["uid"],
                },
                "source": {"volumeHandle": pv["spec"]["csi"]["volumeHandle"]},
                "driver": chosen[0]["driver"],
                "deletionPolicy": chosen[0]["deletionPolicy"],
                "volumeSnapshotClassName": chosen[0]["metadata"]["name"],
                "sourceVolumeMode": volume_mode(pv),
            },
        },
        SNAPSHOT_CONTROLLER,
    )


def _copy_content_status(world: ClusterState, snapshot: dict[str, Any], content: dict[str, Any]) -> None:
    """updateSnapshotStatus: boundVolumeSnapshotContentName, readyToUse, restoreSize, creationTime and
    error come from the content's status (which the sidecar fills)."""
    status = content.get("status") or {}
    wanted: dict[str, Any] = {
        "boundVolumeSnapshotContentName": content["metadata"]["name"],
        "readyToUse": bool(status.get("readyToUse")),
    }
    if status.get("restoreSize") is not None:
        wanted["restoreSize"] = gib_quantity(int(status["restoreSize"]))
    if status.get("creationTime") is not None:
        wanted["creationTime"] = status["creationTime"]
    if status.get("error"):
        wanted["error"] = status["error"]
    current = snapshot.get("status") or {}
    if any(current.get(k) != v for k, v in wanted.items()) or (wanted["readyToUse"] and "error" in current):
        with world.kube.edit(
            "VolumeSnapshot", snapshot["metadata"]["namespace"], snapshot["metadata"]["name"], SNAPSHOT_CONTROLLER
        ) as changed:
            merged = {**(changed.get("status") or {}), **wanted}
            if wanted["readyToUse"] and "error" not in status:
                merged.pop("error", None)
            changed["status"] = merged


def _sync_content(world: ClusterState, name: str) -> None:
    """syncContent (common controller): a content bound by uid gets the bound-protection finalizer; a
    content whose snapshot is being deleted is marked being-deleted. A content whose snapshot is gone
    is left alone (no deletion is triggered for it)."""
    kube = world.kube
    content = kube.peek("VolumeSnapshotContent", "", name)
    if content is None:
        return
    ref = content["spec"].get("volumeSnapshotRef") or {}
    if not ref.get("uid"):
        return
    if not deleting(content):
        kube.add_finalizer("VolumeSnapshotContent", "", name, CONTENT_BOUND, SNAPSHOT_CONTROLLER)
    snapshot = kube.peek("VolumeSnapshot", ref.get("namespace", ""), ref.get("name", ""))
    if snapshot is not None and snapshot["metadata"]["uid"] == ref["uid"] and deleting(snapshot):
        finalizers = snapshot["metadata"].get("finalizers") or []
        if (SNAPSHOT_AS_SOURCE in finalizers or SNAPSHOT_BOUND in finalizers) and BEING_DELETED not in annotations_of(
            content
        ):
            with kube.edit("VolumeSnapshotContent", "", name, SNAPSHOT_CONTROLLER) as marked:
                marked["metadata"].setdefault("annotations", {})[BEING_DELETED] = "yes"


def snapshotter_sidecar(world: ClusterState) -> None:
    """external-snapshotter pkg/sidecar-controller/snapshot_controller.go (runs in the driver's
    controller pod): deletes a content's EBS snapshot through the driver when it should
    (shouldDelete: being deleted and either unbound pre-provisioned or marked being-deleted; Retain
    keeps the EBS snapshot) and then removes the bound-protection finalizer; otherwise creates the
    snapshot of a dynamic content, and fills a content's status from the driver (ListSnapshots:
    readyToUse when the EBS snapshot is completed, restoreSize its size) until it is ready."""
    kube = world.kube
    for _, name in kube.names("VolumeSnapshotContent"):
        content = kube.peek("VolumeSnapshotContent", "", name)
        if content is None or content["spec"]["driver"] != CSI_DRIVER:
            continue
        source, status = content["spec"]["source"], content.get("status") or {}
        should_delete = deleting(content) and (
            (source.get("snapshotHandle") and not (content["spec"].get("volumeSnapshotRef") or {}).get("uid"))
            or annotations_of(content).get(BEING_DELETED) == "yes"
        )
        if should_delete:
            deletes = content["spec"]["deletionPolicy"] == "Delete" and status.get("snapshotHandle")
            if deletes and not _driver_delete_snapshot(world, name, status["snapshotHandle"]):
                continue
            kube.remove_finalizer("VolumeSnapshotContent", "", name, CONTENT_BOUND, SNAPSHOTTER)
        elif deleting(content) or status.get("readyToUse"):
            continue
        elif source.get("volumeHandle") and not status:
            _driver_create_snapshot(world, content)
        else:
            _driver_snapshot_status(world, content)


def _content_error(world: ClusterState, name: str, reason: str, message: str) -> None:
    with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as changed:
        changed.setdefault("status", {})["error"] = {"message": message, "time": world.ticks}
    world.event("VolumeSnapshotContent", "", name, reason, message)


def _driver_delete_snapshot(world: ClusterState, name: str, snapshot_id: str) -> bool:
    """Driver DeleteSnapshot (pkg/driver/controller.go: a missing snapshot is success) under the IAM
    policy's tag condition; on success the content's status handle is cleared (clearVolumeContentStatus)."""
    try:
        if world.ebs.snapshot_exists(snapshot_id):
            if not driver_policy_allows(world.driver_policy, "DeleteSnapshot", world.ebs.snapshot_tags(snapshot_id)):
                raise ClientError(
                    {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized: ec2:DeleteSnapshot"}},
                    "DeleteSnapshot",
                )
            world.ebs.delete_snapshot(snapshot_id)
    except ClientError as err:
        _content_error(world, name, "SnapshotDeleteError", f'Could not delete snapshot ID "{snapshot_id}": {err}')
        return False
    with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as cleared:
        cleared["status"] = {}
    return True


def _driver_create_snapshot(world: ClusterState, content: dict[str, Any]) -> None:
    """Driver CreateSnapshot for a dynamic content, tagged CSIVolumeSnapshotName and
    ebs.csi.aws.com/cluster=true (pkg/driver/controller.go, pkg/cloud/cloud.go)."""
    name, volume_id = content["metadata"]["name"], content["spec"]["source"]["volumeHandle"]
    ref = content["spec"]["volumeSnapshotRef"]
    try:
        if not driver_policy_allows(world.driver_policy, "CreateSnapshot", world.ebs.tags(volume_id)):
            raise ClientError(
                {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized: ec2:CreateSnapshot"}},
                "CreateSnapshot",
            )
        snapshot_id = world.ebs.create_snapshot(
            volume_id,
            f"Created by AWS EBS CSI driver for volume {volume_id}",
            {"CSIVolumeSnapshotName": f"snapshot-{ref['uid']}", "ebs.csi.aws.com/cluster": "true"},
        )
    except ClientError as err:
        _content_error(world, name, "SnapshotCreationFailed", f"Failed to create snapshot: {err}")
        return
    with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as created:
        created["status"] = {
            "snapshotHandle": snapshot_id,
            "readyToUse": False,
            "restoreSize": world.ebs.snapshot_size[snapshot_id] * GI,
            "creationTime": world.ticks,
        }


def _driver_snapshot_status(world: ClusterState, content: dict[str, Any]) -> None:
    """checkandUpdateContentStatusOperation through the driver's ListSnapshots."""
    name = content["metadata"]["name"]
    snapshot_id = content["spec"]["source"].get("snapshotHandle") or (content.get("status") or {}).get("snapshotHandle")
    if not snapshot_id or not world.ebs.snapshot_exists(snapshot_id):
        _content_error(
            world,
            name,
            "SnapshotContentCheckandUpdateFailed",
            f"Failed to check and update snapshot content: snapshot {snapshot_id} not found",
        )
        return
    wanted = {
        "snapshotHandle": snapshot_id,
        "readyToUse": world.ebs.snapshot_state(snapshot_id) == "completed",
        "restoreSize": world.ebs.snapshot_size[snapshot_id] * GI,
        "creationTime": (content.get("status") or {}).get("creationTime", world.ticks),
    }
    if content.get("status") != wanted:
        with world.kube.edit("VolumeSnapshotContent", "", name, SNAPSHOTTER) as updated:
            updated["status"] = wanted
