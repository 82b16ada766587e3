"""Small readers of API objects that more than one controller uses (a PV's volume id, zones and
fsType; a claim's class and request; binding and matching rules from `pv_controller.go`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gp3migrate.sim.kube.fields import quantity
from gp3migrate.sim.kube.names import CSI_DRIVER, MIGRATED_TO, ZONE_KEYS


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def deleting(obj: dict[str, Any]) -> bool:
    return obj["metadata"].get("deletionTimestamp") is not None


def object_reference(obj: dict[str, Any]) -> dict[str, Any]:
    """An ObjectReference to obj (reference.GetReference)."""
    metadata = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "namespace": metadata.get("namespace", ""),
        "name": metadata["name"],
        "uid": metadata["uid"],
        "resourceVersion": metadata["resourceVersion"],
    }


def pv_volume_id(pv: dict[str, Any]) -> str | None:
    """The EBS volume of a PV: `csi.volumeHandle` or `awsElasticBlockStore.volumeID` without aws://zone/."""
    spec = pv.get("spec") or {}
    handle = (spec.get("csi") or {}).get("volumeHandle") or (spec.get("awsElasticBlockStore") or {}).get("volumeID")
    return str(handle).rstrip("/").rsplit("/", 1)[-1] if handle else None


def pv_zones(pv: dict[str, Any]) -> set[str] | None:
    """The zones a PV's nodeAffinity allows (or the aws://<zone>/ of an in-tree volume ID); None: any."""
    spec = pv.get("spec") or {}
    zones: set[str] = set()
    for term in (((spec.get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms")) or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") in ZONE_KEYS and expression.get("operator") == "In":
                zones.update(expression.get("values") or [])
    volume_id = str((spec.get("awsElasticBlockStore") or {}).get("volumeID") or "")
    if not zones and volume_id.startswith("aws://") and volume_id.count("/") >= 3:
        zone = volume_id.split("/")[2]
        if zone:
            zones.add(zone)
    return zones or None


def pv_fs_type(pv: dict[str, Any]) -> str:
    """The filesystem a PV mounts: csi.fsType / awsElasticBlockStore.fsType, ext4 when unset
    (the in-tree plugin's and the chart's `--default-fstype=ext4`)."""
    spec = pv.get("spec") or {}
    source = spec.get("csi") or spec.get("awsElasticBlockStore") or {}
    return str(source.get("fsType") or "ext4")


def needs_csi_driver(pv: dict[str, Any]) -> bool:
    """CSI PVs, and in-tree PVs once CSI migration routes them to the driver, need it on the node."""
    return "csi" in (pv.get("spec") or {}) or annotations_of(pv).get(MIGRATED_TO) == CSI_DRIVER


def claim_class(claim: dict[str, Any]) -> str:
    return str((claim.get("spec") or {}).get("storageClassName") or "")


def claim_request(claim: dict[str, Any]) -> int:
    return quantity(claim["spec"]["resources"]["requests"]["storage"])


def is_bound_to(pv: dict[str, Any], claim: dict[str, Any]) -> bool:
    """IsVolumeBoundToClaim: claimRef names the claim; its uid, when set, is the claim's."""
    ref = pv["spec"].get("claimRef")
    if not ref or (ref.get("name"), ref.get("namespace")) != (
        claim["metadata"]["name"],
        claim["metadata"]["namespace"],
    ):
        return False
    return not ref.get("uid") or ref["uid"] == claim["metadata"]["uid"]


def volume_mode(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("volumeMode") or "Filesystem")


def mismatch_reason(pv: dict[str, Any], claim: dict[str, Any]) -> str:
    """checkVolumeSatisfyClaim: the reason the PV does not fit the claim, or ""."""
    if deleting(pv):
        return f'the volume is marked for deletion "{pv["metadata"]["name"]}"'
    if quantity(pv["spec"]["capacity"]["storage"]) < claim_request(claim):
        return "requested PV is too small"
    if str(pv["spec"].get("storageClassName") or "") != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode(pv) != volume_mode(claim):
        return "incompatible volumeMode"
    if not set(claim["spec"].get("accessModes") or []) <= set(pv["spec"].get("accessModes") or []):
        return "incompatible accessMode"
    return ""


def find_matching_volume(
    volumes: Iterable[dict[str, Any]], claim: dict[str, Any], delay_binding: bool, zone: str | None = None
) -> dict[str, Any] | None:
    """FindMatchingVolume (component-helpers storage/volume/pv_helpers.go) over the PVs whose access
    modes cover the claim's (pv_controller's index.go findByClaim lists them by access modes): a PV
    pre-bound to the claim (claimRef namespace/name, no uid or the claim's) wins once its size fits,
    checked before the phase and the class, and also while binding waits for the first consumer
    ("prebound PVs are still returned as a match"); else the smallest Available PV of the claim's
    class that fits (not in the PV controller's path while binding waits: the scheduler, `zone`
    set, binds those)."""
    request, mode, modes = claim_request(claim), volume_mode(claim), set(claim["spec"].get("accessModes") or [])
    best: dict[str, Any] | None = None
    best_capacity = 0
    for pv in volumes:
        spec = pv["spec"]
        capacity = quantity(spec["capacity"]["storage"])
        if spec.get("claimRef") and not is_bound_to(pv, claim):
            continue
        if capacity < request or volume_mode(pv) != mode or deleting(pv):
            continue
        if not modes <= set(spec.get("accessModes") or []):
            continue
        zones = pv_zones(pv)
        fits_node = zone is None or zones is None or zone in zones
        if is_bound_to(pv, claim):
            return pv if fits_node else None
        if zone is None and delay_binding:
            continue
        available = (pv.get("status") or {}).get("phase") == "Available"
        if not available or str(spec.get("storageClassName") or "") != claim_class(claim) or not fits_node:
            continue
        if best is None or capacity < best_capacity:
            best, best_capacity = pv, capacity
    return best


def pod_claims(pod: dict[str, Any]) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"].get("volumes") or []
        if "persistentVolumeClaim" in v
    ]
