"""Joins PVs, claims, workloads and EBS volumes into proposed `migrations` entries.

Pure: the inputs are what `kubectl get -o json` and `aws ec2 describe-volumes` return (live or
from files); the output is the entries to paste into a stack file and the volumes left out, each
with its reason. The program itself never runs discovery (DESIGN invariant 1).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gp3migrate.versions import CSI_DRIVER

MIGRATED_TO_ANNOTATION = "pv.kubernetes.io/migrated-to"
# Types the in-tree plugin provisions besides gp2; migrated only when asked (`--include-types`).
OPT_IN_TYPES = ("io1", "io2", "st1", "sc1", "standard")


@dataclass(frozen=True)
class Skipped:
    pv: str
    claim: str | None
    volume_id: str | None
    reason: str


@dataclass
class Discovery:
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def volume_id_of(pv: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """(volume id, zone if the id carries it) for an in-tree EBS PV; None for anything else.

    `awsElasticBlockStore.volumeID` is either `aws://<zone>/vol-...` or a plain `vol-...`.
    """
    source = pv.get("spec", {}).get("awsElasticBlockStore")
    if not source:
        return None
    raw = str(source.get("volumeID", ""))
    if raw.startswith("aws://"):
        zone, _, volume = raw.removeprefix("aws://").partition("/")
        return volume, zone or None
    return raw, None


def _owner(obj: Mapping[str, Any], kind: str) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def _template_storage_class(workload: Mapping[str, Any]) -> str | None:
    """The class a StatefulSet's volumeClaimTemplates name (the first that names one)."""
    for template in workload.get("spec", {}).get("volumeClaimTemplates") or []:
        name = template.get("spec", {}).get("storageClassName")
        if name:
            return str(name)
    return None


def _workloads_by_claim(items: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, claim) -> {kind, name, replicas} of the Deployment or StatefulSet mounting it."""
    by_kind: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = {}
    for item in items:
        meta = item.get("metadata", {})
        by_kind.setdefault(item.get("kind", ""), {})[(meta.get("namespace", ""), meta.get("name", ""))] = item
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for (namespace, _), pod in sorted(by_kind.get("Pod", {}).items()):
        owner: tuple[str, str] | None = None
        replica_set = _owner(pod, "ReplicaSet")
        if replica_set and (namespace, replica_set) in by_kind.get("ReplicaSet", {}):
            deployment = _owner(by_kind["ReplicaSet"][(namespace, replica_set)], "Deployment")
            if deployment:
                owner = ("Deployment", deployment)
        stateful_set = _owner(pod, "StatefulSet")
        if stateful_set:
            owner = ("StatefulSet", stateful_set)
        if owner is None or (namespace, owner[1]) not in by_kind.get(owner[0], {}):
            continue
        workload = by_kind[owner[0]][(namespace, owner[1])]
        replicas = workload.get("spec", {}).get("replicas", 1)
        record: dict[str, Any] = {"kind": owner[0], "name": owner[1], "replicas": int(replicas)}
        template_class = _template_storage_class(workload)
        if template_class:
            record["templateStorageClass"] = template_class
        claims = [
            (v.get("persistentVolumeClaim") or {}).get("claimName") for v in pod.get("spec", {}).get("volumes") or []
        ]
        # StatefulSet claims come from volumeClaimTemplates: <template>-<set>-<ordinal>.
        for claim in claims:
            if claim:
                found[(namespace, claim)] = record
    return found


def discover(
    kube_items: Iterable[Mapping[str, Any]],
    volumes: Iterable[Mapping[str, Any]],
    *,
    include_types: Sequence[str] = (),
) -> Discovery:
    items = list(kube_items)
    pvs = sorted((i for i in items if i.get("kind") == "PersistentVolume"), key=lambda i: i["metadata"]["name"])
    claims = {
        (i["metadata"].get("namespace", ""), i["metadata"]["name"]): i
        for i in items
        if i.get("kind") == "PersistentVolumeClaim"
    }
    volumes_by_id = {v["VolumeId"]: v for v in volumes}
    workloads = _workloads_by_claim(items)
    result = Discovery()

    for pv in pvs:
        name = pv["metadata"]["name"]
        spec = pv.get("spec", {})
        ref = spec.get("claimRef") or {}
        claim_key = (ref.get("namespace", ""), ref.get("name", "")) if ref else None
        claim_label = f"{claim_key[0]}/{claim_key[1]}" if claim_key else None

        def skip(
            reason: str, volume_id: str | None = None, *, _pv: str = name, _claim: str | None = claim_label
        ) -> None:
            result.skipped.append(Skipped(_pv, _claim, volume_id, reason))

        if (spec.get("csi") or {}).get("driver") == CSI_DRIVER:
            skip("already a CSI volume (ebs.csi.aws.com)", spec["csi"].get("volumeHandle"))
            continue
        located = volume_id_of(pv)
        if located is None:
            continue  # not an EBS volume at all: not ours to report
        volume_id, zone = located
        claim = claims.get(claim_key) if claim_key else None
        if claim is None or pv.get("status", {}).get("phase") != "Bound":
            skip("no bound claim (nothing mounts it through a PVC)", volume_id)
            continue
        volume = volumes_by_id.get(volume_id)
        if volume is None:
            skip("EBS volume not found in this region/account", volume_id)
            continue
        volume_type = volume.get("VolumeType", "")
        if volume_type == "gp3":
            skip("already gp3", volume_id)
            continue
        if volume_type != "gp2" and volume_type not in include_types:
            skip(f"not gp2 ({volume_type}); pass --include-types {volume_type} to migrate it", volume_id)
            continue
        if volume.get("MultiAttachEnabled"):
            skip("multi-attach volume (a snapshot copy cannot keep several writers consistent)", volume_id)
            continue
        access_modes = sorted(set(claim.get("spec", {}).get("accessModes") or spec.get("accessModes") or []))
        if "ReadWriteMany" in access_modes:
            skip("ReadWriteMany claim (EBS attaches to one node)", volume_id)
            continue
        entry: dict[str, Any] = {
            "namespace": claim_key[0] if claim_key else "",
            "claim": claim_key[1] if claim_key else "",
            "pv": name,
            "volumeId": volume_id,
            "zone": volume.get("AvailabilityZone") or zone,
            "sizeGiB": int(volume["Size"]),
            "fsType": spec.get("awsElasticBlockStore", {}).get("fsType") or "ext4",
            "accessModes": access_modes or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "volumeType": volume_type,
            "encrypted": bool(volume.get("Encrypted")),
        }
        if volume.get("Iops") is not None:
            entry["iops"] = int(volume["Iops"])
        if volume.get("Throughput") is not None:
            entry["throughput"] = int(volume["Throughput"])
        if volume.get("KmsKeyId"):
            entry["kmsKeyId"] = volume["KmsKeyId"]
        workload = workloads.get(claim_key) if claim_key else None
        if workload:
            entry["workload"] = workload
            if workload["kind"] == "StatefulSet":
                # Its claims follow <template>-<set>-<ordinal>: only the same name keeps them.
                entry["claimNaming"] = "same-name"
                if workload.get("templateStorageClass") == "gp2":
                    warning = (
                        f"StatefulSet {entry['namespace']}/{workload['name']} names gp2 in its volumeClaimTemplates: "
                        "new replicas would get gp2 volumes. Templates are immutable: re-create it with "
                        "`kubectl delete sts --cascade=orphan` and apply it with the gp3 class."
                    )
                    if warning not in result.warnings:
                        result.warnings.append(warning)
        result.entries.append(entry)

    result.entries.sort(key=lambda e: (e["namespace"], e["claim"]))
    return result


def volume_ids_to_describe(kube_items: Iterable[Mapping[str, Any]]) -> list[str]:
    """The EBS volume ids behind in-tree PVs: what discovery asks AWS about, and nothing else."""
    ids = set()
    for item in kube_items:
        if item.get("kind") == "PersistentVolume":
            located = volume_id_of(item)
            if located:
                ids.add(located[0])
    return sorted(ids)
