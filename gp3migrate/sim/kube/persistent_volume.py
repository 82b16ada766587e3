"""The PV controller (binding and reclaim, `pkg/controller/volume/persistentvolume`) and the
pvc-/pv-protection controllers (`pkg/controller/volume/pvcprotection`, `pvprotection`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gp3migrate.sim.kube.names import (
    BETA_STORAGE_PROVISIONER,
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    CONTROLLER_MANAGER,
    CSI_DRIVER,
    IN_TREE_PLUGIN,
    MIGRATED_TO,
    NO_PROVISIONER,
    PROVISIONED_BY,
    PV_PROTECTION,
    PVC_PROTECTION,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
)
from gp3migrate.sim.kube.objects import (
    annotations_of,
    claim_class,
    deleting,
    find_matching_volume,
    is_bound_to,
    mismatch_reason,
    object_reference,
    pod_claims,
    pv_volume_id,
)

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState


def pv_controller(world: ClusterState) -> None:
    """pkg/controller/volume/persistentvolume/pv_controller.go: syncClaim for every claim, then
    syncVolume for every PV."""
    for namespace, name in world.kube.names("PersistentVolumeClaim"):
        _sync_claim(world, namespace, name)
    for _, name in world.kube.names("PersistentVolume"):
        _sync_volume(world, name)


def _sync_claim(world: ClusterState, namespace: str, name: str) -> None:
    claim = world.kube.peek("PersistentVolumeClaim", namespace, name)
    if claim is None:
        return
    if BIND_COMPLETED in annotations_of(claim):
        _sync_bound_claim(world, claim)
    else:
        _sync_unbound_claim(world, claim)


def _sync_unbound_claim(world: ClusterState, claim: dict[str, Any]) -> None:
    """syncUnboundClaim."""
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    storage_class = kube.peek("StorageClass", "", claim_class(claim))
    delay = storage_class is not None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"
    wanted = claim["spec"].get("volumeName")
    if not wanted:
        pv = find_matching_volume(world.kube.view("PersistentVolume"), claim, delay_binding=delay)
        if pv is not None:
            _bind(world, pv["metadata"]["name"], claim)
            return
        if "storageClassName" not in claim["spec"] and kube.default_class() is not None:
            with kube.edit("PersistentVolumeClaim", namespace, name, CONTROLLER_MANAGER) as assigned:
                assigned["spec"]["storageClassName"] = kube.default_class()  # assignDefaultStorageClass
            return
        if delay and SELECTED_NODE not in annotations_of(claim):
            world.event(
                "PersistentVolumeClaim",
                namespace,
                name,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
        elif claim_class(claim):
            _provision_claim(world, claim, storage_class)
        else:
            world.event(
                "PersistentVolumeClaim",
                namespace,
                name,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
        return
    pv = kube.peek("PersistentVolume", "", wanted)
    if pv is None:
        return  # the PV may appear later; the claim stays Pending
    if not pv["spec"].get("claimRef"):
        problem = mismatch_reason(pv, claim)
        if problem:
            world.event(
                "PersistentVolumeClaim",
                namespace,
                name,
                "VolumeMismatch",
                f'Cannot bind to requested volume "{wanted}": {problem}',
            )
        else:
            _bind(world, wanted, claim)
    elif is_bound_to(pv, claim):
        _bind(world, wanted, claim)
    else:
        world.event(
            "PersistentVolumeClaim",
            namespace,
            name,
            "FailedBinding",
            f'volume "{wanted}" already bound to a different claim.',
        )


def _provision_claim(world: ClusterState, claim: dict[str, Any], storage_class: dict[str, Any] | None) -> None:
    """provisionClaim / provisionClaimOperationExternal: name the provisioner in the claim's
    annotations (the CSI driver's name for a migrated in-tree class) and leave the work to it. The
    in-tree aws-ebs provisioner itself is not modelled: with CSI migration off nothing provisions."""
    if storage_class is None:
        world.event(
            "PersistentVolumeClaim",
            claim["metadata"]["namespace"],
            claim["metadata"]["name"],
            "ProvisioningFailed",
            f'storageclass.storage.k8s.io "{claim_class(claim)}" not found',
        )
        return
    provisioner = storage_class["provisioner"]
    if provisioner == NO_PROVISIONER:
        return
    migrated = provisioner == IN_TREE_PLUGIN and world.csi_migration
    name = CSI_DRIVER if migrated else provisioner
    annotations = annotations_of(claim)
    if annotations.get(STORAGE_PROVISIONER) == name and (not migrated or annotations.get(MIGRATED_TO) == CSI_DRIVER):
        return
    with world.kube.edit(
        "PersistentVolumeClaim", claim["metadata"]["namespace"], claim["metadata"]["name"], CONTROLLER_MANAGER
    ) as changed:
        added = changed["metadata"].setdefault("annotations", {})
        added[STORAGE_PROVISIONER] = added[BETA_STORAGE_PROVISIONER] = name
        if migrated:
            added[MIGRATED_TO] = CSI_DRIVER
    world.event(
        "PersistentVolumeClaim",
        claim["metadata"]["namespace"],
        claim["metadata"]["name"],
        "ExternalProvisioning",
        f"Waiting for a volume to be created either by the external provisioner '{name}' or manually",
    )


def _bind(world: ClusterState, pv_name: str, claim: dict[str, Any]) -> None:
    """bind: claimRef (with uid) on the PV, Bound; volumeName and bind-completed on the claim, Bound."""
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    pv = kube.peek("PersistentVolume", "", pv_name)
    assert pv is not None
    prebound = is_bound_to(pv, claim)
    with kube.edit("PersistentVolume", "", pv_name, CONTROLLER_MANAGER) as volume:
        volume["spec"]["claimRef"] = object_reference(claim)
        if not prebound:
            volume["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
        volume["status"] = {"phase": "Bound"}
    with kube.edit("PersistentVolumeClaim", namespace, name, CONTROLLER_MANAGER) as bound:
        annotations = bound["metadata"].setdefault("annotations", {})
        if not bound["spec"].get("volumeName"):
            annotations[BOUND_BY_CONTROLLER] = "yes"
        bound["spec"]["volumeName"] = pv_name
        annotations[BIND_COMPLETED] = "yes"
        bound["status"] = {
            "phase": "Bound",
            "accessModes": list(pv["spec"].get("accessModes") or []),
            "capacity": dict(pv["spec"]["capacity"]),
        }


def _sync_bound_claim(world: ClusterState, claim: dict[str, Any]) -> None:
    """syncBoundClaim: a claim whose PV is gone, or names another claim, is Lost."""
    kube, namespace, name = world.kube, claim["metadata"]["namespace"], claim["metadata"]["name"]
    pv_name = claim["spec"].get("volumeName")
    pv = kube.peek("PersistentVolume", "", pv_name) if pv_name else None
    if pv is not None and not pv["spec"].get("claimRef"):
        _bind(world, pv_name or "", claim)
        return
    if pv is not None and pv["spec"]["claimRef"].get("uid") == claim["metadata"]["uid"]:
        if (pv.get("status") or {}).get("phase") != "Bound":
            _bind(world, pv_name or "", claim)
        return
    if claim["status"].get("phase") != "Lost":
        reason = "ClaimMisbound" if pv is not None else "ClaimLost"
        with kube.edit("PersistentVolumeClaim", namespace, name, CONTROLLER_MANAGER) as lost:
            lost["status"] = {"phase": "Lost"}
        world.event("PersistentVolumeClaim", namespace, name, reason, "Bound claim has lost its PersistentVolume")


def _sync_volume(world: ClusterState, name: str) -> None:
    """syncVolume: Available when unclaimed or pre-bound (claimRef without uid); Released when the
    claim it names by uid is gone (then reclaimVolume); a PV whose claim bound another PV is released
    (dynamically provisioned + Delete) or unbound."""
    kube = world.kube
    _migration_annotation(world, name)
    pv = kube.peek("PersistentVolume", "", name)
    if pv is None:
        return
    ref = pv["spec"].get("claimRef")
    phase = (pv.get("status") or {}).get("phase")
    if not ref or not ref.get("uid"):
        _set_phase(world, name, "Available")
        return
    claim = kube.peek("PersistentVolumeClaim", ref.get("namespace", ""), ref.get("name", ""))
    if claim is not None and claim["metadata"]["uid"] != ref["uid"]:
        claim = None
    if claim is None:
        if phase not in ("Released", "Failed"):
            _set_phase(world, name, "Released")
        _reclaim_volume(world, name)
    elif claim["spec"].get("volumeName") == name:
        _set_phase(world, name, "Bound")
    elif claim["spec"].get("volumeName"):
        if PROVISIONED_BY in annotations_of(pv) and pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete":
            if phase not in ("Released", "Failed"):
                _set_phase(world, name, "Released")
            _reclaim_volume(world, name)
        else:
            with kube.edit("PersistentVolume", "", name, CONTROLLER_MANAGER) as unbound:  # unbindVolume
                if BOUND_BY_CONTROLLER in annotations_of(unbound):
                    unbound["spec"].pop("claimRef")
                    del unbound["metadata"]["annotations"][BOUND_BY_CONTROLLER]
                else:
                    unbound["spec"]["claimRef"]["uid"] = ""
                unbound["status"] = {"phase": "Available"}


def _set_phase(world: ClusterState, name: str, phase: str) -> None:
    pv = world.kube.peek("PersistentVolume", "", name)
    if pv is not None and (pv.get("status") or {}).get("phase") != phase:
        with world.kube.edit("PersistentVolume", "", name, CONTROLLER_MANAGER) as changed:
            changed["status"] = {"phase": phase}


def _migration_annotation(world: ClusterState, name: str) -> None:
    """updateVolumeMigrationAnnotationsAndFinalizers: a PV the in-tree aws-ebs plugin provisioned
    carries `migrated-to: ebs.csi.aws.com` exactly while CSI migration is on."""
    pv = world.kube.peek("PersistentVolume", "", name)
    if pv is None or annotations_of(pv).get(PROVISIONED_BY) != IN_TREE_PLUGIN:
        return
    if world.csi_migration != (annotations_of(pv).get(MIGRATED_TO) == CSI_DRIVER):
        with world.kube.edit("PersistentVolume", "", name, CONTROLLER_MANAGER) as changed:
            annotations = changed["metadata"]["annotations"]
            if world.csi_migration:
                annotations[MIGRATED_TO] = CSI_DRIVER
            else:
                annotations.pop(MIGRATED_TO, None)


def _reclaim_volume(world: ClusterState, name: str) -> None:
    """reclaimVolume: migrated and CSI PVs are left to the external-provisioner; Retain keeps the PV
    Released; Delete of a non-migrated in-tree PV deletes the EBS volume through the in-tree plugin
    (retried while the volume is in use), then the PV; Recycle fails (no recycler for EBS)."""
    pv = world.kube.peek("PersistentVolume", "", name)
    if pv is None or MIGRATED_TO in annotations_of(pv) or "csi" in pv["spec"]:
        return
    policy = pv["spec"]["persistentVolumeReclaimPolicy"]
    if policy == "Delete" and world.csi_migration:
        # The in-tree aws-ebs plugin is gone from kube-controller-manager (Kubernetes 1.27); only PVs
        # annotated migrated-to are deleted, by the external-provisioner.
        _set_phase(world, name, "Failed")
        world.event(
            "PersistentVolume",
            "",
            name,
            "VolumeFailedDelete",
            f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched',
        )
    elif policy == "Recycle":
        _set_phase(world, name, "Failed")
        world.event("PersistentVolume", "", name, "VolumeFailedRecycle", "No recycler plugin found for the volume!")
    elif policy == "Delete":
        volume_id = pv_volume_id(pv)
        try:
            if volume_id and world.ebs.exists(volume_id):
                world.ebs.delete_volume(volume_id)
        except ClientError as err:
            world.event("PersistentVolume", "", name, "VolumeDelete", str(err))
            return
        world.kube.delete_object("PersistentVolume", "", name)


# -- protection controllers ---------------------------------------------------------------------------


def pvc_protection(world: ClusterState) -> None:
    """pkg/controller/volume/pvcprotection: a claim keeps kubernetes.io/pvc-protection while any
    scheduled pod names it (podUsesPVC: terminating pods included); the finalizer is added to claims
    that lack it."""
    kube = world.kube
    for namespace, name in kube.names("PersistentVolumeClaim"):
        claim = kube.peek("PersistentVolumeClaim", namespace, name)
        if claim is None:
            continue
        if not deleting(claim):
            kube.add_finalizer("PersistentVolumeClaim", namespace, name, PVC_PROTECTION, CONTROLLER_MANAGER)
            continue
        used = any(p["spec"].get("nodeName") and name in pod_claims(p) for p in kube.view("Pod", namespace))
        if not used:
            kube.remove_finalizer("PersistentVolumeClaim", namespace, name, PVC_PROTECTION, CONTROLLER_MANAGER)


def pv_protection(world: ClusterState) -> None:
    """pkg/controller/volume/pvprotection: a PV keeps kubernetes.io/pv-protection while it is Bound."""
    kube = world.kube
    for _, name in kube.names("PersistentVolume"):
        pv = kube.peek("PersistentVolume", "", name)
        if pv is None:
            continue
        if not deleting(pv):
            kube.add_finalizer("PersistentVolume", "", name, PV_PROTECTION, CONTROLLER_MANAGER)
        elif (pv.get("status") or {}).get("phase") != "Bound":
            kube.remove_finalizer("PersistentVolume", "", name, PV_PROTECTION, CONTROLLER_MANAGER)
