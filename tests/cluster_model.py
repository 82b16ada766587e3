"""A test-side model of the Kubernetes snapshot-restore rules, applied to what a migration declares.

Rules (kubernetes-csi/external-provisioner pkg/controller/controller.go, external-snapshotter;
shared/DESIGN.md "Facts"): the snapshot controller binds a VolumeSnapshot to a pre-provisioned
content only when the content's volumeSnapshotRef names it (name and namespace) and the snapshot
names the content; the provisioner restores only when the snapshot is bound and readyToUse, the
content's driver is the StorageClass's provisioner, the request is at least the restore size, and
the volume modes agree when sourceVolumeMode is set.
"""

from dataclasses import dataclass
from typing import Any

GI = 1024**3


def parse_quantity(quantity: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": GI, "Ti": 1024**4}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


@dataclass
class Cluster:
    storage_classes: dict[str, dict[str, Any]]
    contents: dict[str, dict[str, Any]]
    snapshots: dict[tuple[str, str], dict[str, Any]]
    # snapshot handle -> size of the EBS snapshot in bytes (the restore size)
    ebs_snapshots: dict[str, int]


class WillNotBindError(Exception):
    pass


def restore(cluster: Cluster, claim: dict[str, Any]) -> str:
    """The content the claim would be restored from, or WillNotBindError with the rule it breaks."""
    namespace = claim["metadata"]["namespace"]
    source = claim["spec"].get("dataSource") or {}
    if (source.get("apiGroup"), source.get("kind")) != ("snapshot.storage.k8s.io", "VolumeSnapshot"):
        raise WillNotBindError("dataSource is not a VolumeSnapshot")
    snapshot = cluster.snapshots.get((namespace, source["name"]))
    if snapshot is None:
        raise WillNotBindError(f"no VolumeSnapshot {namespace}/{source['name']}")
    content_name = snapshot["spec"]["source"].get("volumeSnapshotContentName")
    content = cluster.contents.get(content_name or "")
    if content is None:
        raise WillNotBindError(f"VolumeSnapshot names no existing content ({content_name})")
    ref = content["spec"]["volumeSnapshotRef"]
    if (ref.get("name"), ref.get("namespace")) != (snapshot["metadata"]["name"], namespace):
        raise WillNotBindError("content's volumeSnapshotRef names another VolumeSnapshot")
    handle = content["spec"]["source"].get("snapshotHandle")
    if handle not in cluster.ebs_snapshots:
        raise WillNotBindError(f"content's snapshotHandle {handle} is not an EBS snapshot")
    if snapshot["metadata"].get("annotations", {}).get("pulumi.com/waitFor") != "jsonpath={.status.readyToUse}=true":
        raise WillNotBindError("the claim could be created before the snapshot is readyToUse")
    class_name = claim["spec"].get("storageClassName")
    if class_name not in cluster.storage_classes:
        raise WillNotBindError(f"no StorageClass {class_name!r} (the claim must name one explicitly)")
    if content["spec"]["driver"] != cluster.storage_classes[class_name]["provisioner"]:
        raise WillNotBindError("content driver differs from the class provisioner")
    if parse_quantity(claim["spec"]["resources"]["requests"]["storage"]) < cluster.ebs_snapshots[handle]:
        raise WillNotBindError("request is smaller than the restore size")
    mode = content["spec"].get("sourceVolumeMode")
    if mode is not None and mode != claim["spec"].get("volumeMode", "Filesystem"):
        raise WillNotBindError("volume mode differs from the source's")
    return content["metadata"]["name"]
