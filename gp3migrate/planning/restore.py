"""The objects of one volume's snapshot restore, as plain manifests (wire names).

The external-provisioner restores a claim from a VolumeSnapshot only when the snapshot is bound
and ready, its content names it back (name and namespace), the content's driver is the class's
provisioner, the request is at least the restore size, and volume modes agree
(kubernetes-csi/external-provisioner pkg/controller/controller.go; DESIGN "Facts").
"""

import hashlib
from typing import Any

from gp3migrate.config import claim_identity
from gp3migrate.config.settings import Settings
from gp3migrate.planning.plan import MigrationPlan
from gp3migrate.versions import CSI_DRIVER, DRIVER_MANAGED_TAG

SNAPSHOT_API_GROUP = "snapshot.storage.k8s.io"
LABEL_PREFIX = "eks-gp3-migration"
_K8S_NAME_MAX = 253
# Custom resources are awaited only with this annotation (pulumi-kubernetes docs, "waitFor").
WAIT_READY = {"pulumi.com/waitFor": "jsonpath={.status.readyToUse}=true"}


CLAIM_ANNOTATION = f"{LABEL_PREFIX}/claim"
_LABEL_VALUE_MAX = 63


def claim_label(claim: str) -> dict[str, str]:
    """The claim as a label value: at most 63 characters, starting and ending alphanumeric
    (apimachinery validation IsValidLabelValue). Longer claim names (StatefulSet and operator
    claims reach 253) keep a readable prefix and a digest; the full name is in an annotation.
    Over the limit, the API server would refuse the object in the middle of the downtime window."""
    if len(claim) <= _LABEL_VALUE_MAX:
        return {f"{LABEL_PREFIX}/claim": claim}
    digest = hashlib.sha256(claim.encode()).hexdigest()[:10]
    prefix = claim[: _LABEL_VALUE_MAX - len(digest) - 1].rstrip("-.")
    return {f"{LABEL_PREFIX}/claim": f"{prefix}-{digest}"}


def claim_annotation(claim: str) -> dict[str, str]:
    """The full claim name, where the label had to shorten it."""
    return {CLAIM_ANNOTATION: claim} if len(claim) > _LABEL_VALUE_MAX else {}


def snapshot_tags(plan: MigrationPlan, settings: Settings, stack: str, purpose: str) -> dict[str, str]:
    """Tags of a migration's EBS snapshot.

    `ebs.csi.aws.com/cluster=true` is what both managed policies require to restore (V2) and to
    delete (V1, V2) a snapshot; the runbook's `ec2:ResourceTag/...` key is an IAM condition key,
    not a tag, and satisfies neither (DESIGN invariant 4).
    """
    entry = plan.entry
    return {
        DRIVER_MANAGED_TAG: "true",
        f"kubernetes.io/cluster/{settings.cluster.name}": "owned",
        f"{LABEL_PREFIX}/migration": f"{stack}/{entry.key}",
        f"{LABEL_PREFIX}/purpose": purpose,
        f"{LABEL_PREFIX}/source-pv": entry.pv,
        f"{LABEL_PREFIX}/source-pvc": entry.key,
        f"{LABEL_PREFIX}/source-volume": entry.volume_id,
        **dict(settings.driver.extra_volume_tags),
    }


def retain_patch(plan: MigrationPlan) -> dict[str, Any]:
    """Only the reclaim policy of the source PV: deleting its claim then keeps the volume."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": plan.entry.pv, "annotations": {"pulumi.com/patchForce": "true"}},
        "spec": {"persistentVolumeReclaimPolicy": "Retain"},
    }


# EBS snapshot ids: "snap-" and 17 hex digits.
_SNAPSHOT_ID_MAX = 22


def named_after_snapshot(base: str) -> str:
    """A name template (`<base>-{}`, filled with the snapshot id) for an object that carries one
    snapshot: a new snapshot gets new objects, created before the old ones go. With fixed names
    Pulumi must delete before replacing, and the content's delete then waits on the
    VolumeSnapshot it is bound to (external-snapshotter: the bound-protection finalizer is removed
    only once the snapshot is gone), which the engine deletes after it (issue 9 item 9)."""
    room = _K8S_NAME_MAX - _SNAPSHOT_ID_MAX - 1
    if len(base) > room:
        digest = hashlib.sha256(base.encode()).hexdigest()[:10]
        base = f"{base[: room - len(digest) - 1].rstrip('-.')}-{digest}"
    return base + "-{}"


def snapshot_content(
    plan: MigrationPlan, settings: Settings, snapshot_handle: Any, content_name: Any, snapshot_name: Any
) -> dict[str, Any]:
    entry = plan.entry
    return {
        "apiVersion": f"{SNAPSHOT_API_GROUP}/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": {
            "name": content_name,
            "labels": claim_label(entry.claim),
            **({"annotations": claim_annotation(entry.claim)} if claim_annotation(entry.claim) else {}),
        },
        "spec": {
            # Pulumi owns the EBS snapshot (protected, deleted only at finalize): Kubernetes must
            # never delete it when these objects go.
            "deletionPolicy": "Retain",
            "driver": CSI_DRIVER,
            "source": {"snapshotHandle": snapshot_handle},
            "sourceVolumeMode": entry.volume_mode,
            "volumeSnapshotClassName": settings.storage.snapshot_class_name,
            "volumeSnapshotRef": {
                "apiVersion": f"{SNAPSHOT_API_GROUP}/v1",
                "kind": "VolumeSnapshot",
                "name": snapshot_name,
                "namespace": entry.namespace,
            },
        },
    }


def volume_snapshot(
    plan: MigrationPlan, settings: Settings, snapshot_handle: Any, content_name: Any, snapshot_name: Any
) -> dict[str, Any]:
    return {
        "apiVersion": f"{SNAPSHOT_API_GROUP}/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": snapshot_name,
            "namespace": plan.entry.namespace,
            "annotations": {
                **WAIT_READY,
                # The handle it restores from, readable on the object (its name carries it too).
                f"{LABEL_PREFIX}/snapshot-handle": snapshot_handle,
                **claim_annotation(plan.entry.claim),
            },
            "labels": claim_label(plan.entry.claim),
        },
        "spec": {
            "volumeSnapshotClassName": settings.storage.snapshot_class_name,
            "source": {"volumeSnapshotContentName": content_name},
        },
    }


def source_metadata(plan: MigrationPlan, name: str) -> dict[str, Any]:
    """Name, label and annotations of an object that serves a migrated volume: which claim, PV
    and EBS volume it came from."""
    entry = plan.entry
    return {
        "name": name,
        "labels": claim_label(entry.claim),
        "annotations": {
            **claim_annotation(entry.claim),
            f"{LABEL_PREFIX}/source-pv": entry.pv,
            f"{LABEL_PREFIX}/source-volume": entry.volume_id,
        },
    }


def carried_metadata(plan: MigrationPlan, claim_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The source claim's labels and annotations that a claim named `claim_name` carries
    (gp3migrate/config/claim_identity.py): all but the controllers' and kubectl's; under a new name,
    none of the ownership keys either. Nothing when discovery recorded none (older entries)."""
    recorded = plan.entry.claim_metadata
    if recorded is None:
        return {}, {}
    labels, annotations = recorded.copied()
    if claim_name != plan.entry.claim:
        labels, annotations = claim_identity.without_ownership(labels), claim_identity.without_ownership(annotations)
    return labels, annotations


def with_claim_identity(plan: MigrationPlan, metadata: dict[str, Any]) -> dict[str, Any]:
    """A claim's metadata with the source claim's labels and annotations under the program's own,
    which win on a clash (they say which volume the claim serves). A map stays absent when empty,
    so entries without recorded metadata declare exactly what earlier versions did."""
    labels, annotations = carried_metadata(plan, str(metadata["name"]))
    merged = dict(metadata)
    for place, carried in (("labels", labels), ("annotations", annotations)):
        combined = {**carried, **(metadata.get(place) or {})}
        if combined:
            merged[place] = dict(sorted(combined.items()))
    return merged


def restored_claim(plan: MigrationPlan, claim_name: str, snapshot_name: Any) -> dict[str, Any]:
    entry = plan.entry
    metadata = with_claim_identity(plan, source_metadata(plan, claim_name))
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name, "namespace": entry.namespace, **metadata},
        "spec": {
            "accessModes": list(entry.access_modes),
            "volumeMode": entry.volume_mode,
            # Explicit: a claim on a WaitForFirstConsumer class is ready at Pending only then
            # (pulumi-kubernetes 4.16.0), and the default class must not decide where data goes.
            "storageClassName": plan.storage_class,
            # At least the restore size (the EBS volume's size): the provisioner refuses less.
            "resources": {"requests": {"storage": f"{entry.size_gib}Gi"}},
            "dataSource": {"apiGroup": SNAPSHOT_API_GROUP, "kind": "VolumeSnapshot", "name": snapshot_name},
        },
    }


def rebind_patch(plan: MigrationPlan) -> dict[str, Any]:
    """Reserves the retained source PV for a new claim of the old name: an empty uid lets the PV
    controller bind it again (rollback after a same-name cutover)."""
    entry = plan.entry
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": entry.pv, "annotations": {"pulumi.com/patchForce": "true"}},
        "spec": {
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": entry.namespace,
                "name": entry.claim,
                "uid": "",
            }
        },
    }


def rollback_claim(plan: MigrationPlan, gp2_class_name: str) -> dict[str, Any]:
    """The old claim again, bound by name to the source PV (its data as of the cutover)."""
    entry = plan.entry
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": with_claim_identity(
            plan, {"name": entry.claim, "namespace": entry.namespace, "labels": claim_label(entry.claim)}
        ),
        "spec": {
            "accessModes": list(entry.access_modes),
            "volumeMode": entry.volume_mode,
            # The PV's own class and capacity (recorded by discovery): the PV controller binds a claim
            # only to a PV of the same class with at least the requested capacity (pv_controller.go).
            "storageClassName": gp2_class_name if entry.pv_storage_class is None else entry.pv_storage_class,
            "volumeName": entry.pv,
            "resources": {"requests": {"storage": entry.pv_capacity or f"{entry.size_gib}Gi"}},
        },
    }
