"""Joins PVs, claims, workloads and EBS volumes into proposed `migrations` entries.

Pure: the inputs are what `kubectl get -o json` and `aws ec2 describe-volumes` return (live or
from files); the output is the entries to put into a stack file, the volumes left out, each with
its reason, and warnings. One odd volume never stops the rest: it is left out with its reason. The
program itself never runs discovery (DESIGN invariant 1).
"""

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gp3migrate.config import claim_identity, window_owners
from gp3migrate.config.migration_entry import NOT_MODIFIABLE_TYPES
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings
from gp3migrate.discovery.other_owners import OwnerIndex, owner_warnings, owners_of
from gp3migrate.discovery.workload_owners import BETA_CLASS_ANNOTATION, find_workloads, template_class_warnings
from gp3migrate.versions import CSI_DRIVER, IN_TREE_PROVISIONER

MIGRATED_TO_ANNOTATION = "pv.kubernetes.io/migrated-to"
# Volume ids as in-tree PVs hold them: `aws://<zone>/vol-…`, `aws:///vol-…` (no zone), `vol-…`,
# each possibly with a trailing `/` (the API server accepts it; the in-tree plugin strips it).
# Used with fullmatch: with match, `$` also matches before a trailing newline.
_VOLUME_ID = re.compile(r"(?:aws://(?P<zone>[^/]*)/)?(?P<id>vol-[0-9a-f]{8}(?:[0-9a-f]{9})?)/?")
_ZONE = re.compile(r"(?P<region>[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d)(?P<rest>.*)")
_USABLE_STATES = ("in-use", "available")
_DIGITS = re.compile(r"([0-9]+)")
NaturalKey = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True)
class Skipped:
    pv: str
    claim: str | None
    volume_id: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"pv": self.pv, "claim": self.claim, "volumeId": self.volume_id, "reason": self.reason}


@dataclass
class Discovery:
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StackContext:
    """What the stack file says that discovery checks against (defaults without a stack)."""

    region: str | None = None
    # None: no stack file to compare with, so keys are not checked against it.
    kms_key_arns: tuple[str, ...] | None = None
    gp2_class_name: str = "gp2"


def natural_key(text: str) -> NaturalKey:
    """Sort key that compares runs of digits as numbers: c1, c2, c10, c100 (not c1, c10, c100, c2).

    Splitting on digit runs puts text at even and numbers at odd positions, so a text never meets a
    number; names equal as numbers (c01, c1) are ordered by the text itself, so the order never
    depends on the input's."""
    runs = _DIGITS.split(text)
    return tuple(int(run) if index % 2 else run for index, run in enumerate(runs)), text


def parse_volume_id(raw: str) -> tuple[str, str | None] | None:
    """(vol-…, the zone the id names or None) for every form an in-tree PV may hold; None otherwise."""
    match = _VOLUME_ID.fullmatch(raw.strip())
    if match is None:
        return None
    return match["id"], match["zone"] or None


def zone_problem(zone: str | None, region: str | None) -> str | None:
    """Why a volume in this zone is not migrated: unknown, another region, or a Local or
    Wavelength Zone (named `<region>-<location>-…`; gp3 is not offered in every one of them)."""
    if not zone:
        return "no availability zone is known for it"
    match = _ZONE.fullmatch(zone)
    if match is None:
        return f"zone {zone!r} is not an availability zone name"
    if region and match["region"] != region:
        return f"zone {zone} is not in region {region}"
    rest = match["rest"]
    if re.fullmatch(r"[a-z]", rest):
        return None
    if rest.startswith("-"):
        kind = "Wavelength Zone" if "-wl" in rest else "Local Zone"
        return (
            f"in {kind} {zone}: gp3 is not offered in every Local Zone or Wavelength Zone; "
            "this tool migrates volumes in the region's availability zones only"
        )
    return f"zone {zone!r} is not an availability zone name"


def in_tree_classes(items: Sequence[Mapping[str, Any]], context: StackContext) -> tuple[frozenset[str], list[str]]:
    """The classes the in-tree plugin provisions, from the StorageClass objects. Without any in
    the export: the stack's gp2 class and every class an in-tree PV names (the in-tree
    provisioner made it, so its class provisioned in-tree), with a warning saying so."""
    classes = [i for i in items if i.get("kind") == "StorageClass"]
    if not classes:
        named = {
            pv_storage_class(i)
            for i in items
            if i.get("kind") == "PersistentVolume" and (i.get("spec") or {}).get("awsElasticBlockStore")
        } - {"", context.gp2_class_name}
        which = f"only {context.gp2_class_name!r} is"
        if named:
            listed = ", ".join(map(repr, sorted(named)))
            which = f"{context.gp2_class_name!r} and the classes in-tree PVs name ({listed}) are"
        return frozenset({context.gp2_class_name, *named}), [
            f"the export has no StorageClass objects: {which} taken as in-tree; "
            "add `sc` to the kubectl export to check every class"
        ]
    return frozenset(str(c["metadata"]["name"]) for c in classes if c.get("provisioner") == IN_TREE_PROVISIONER), []


def pv_storage_class(pv: Mapping[str, Any]) -> str:
    """The PV's class: spec.storageClassName, else the annotation older objects carry; "" for none."""
    name = (pv.get("spec") or {}).get("storageClassName")
    if name is None:
        name = ((pv.get("metadata") or {}).get("annotations") or {}).get(BETA_CLASS_ANNOTATION)
    return str(name or "")


def _claim_owner(claim: Mapping[str, Any]) -> str | None:
    for ref in (claim.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Pod":
            return str(ref.get("name"))
    return None


def discover(
    kube_items: Iterable[Mapping[str, Any]],
    volumes: Iterable[Mapping[str, Any]],
    *,
    context: StackContext = StackContext(),
) -> Discovery:
    items = list(kube_items)
    pvs = sorted(
        (i for i in items if i.get("kind") == "PersistentVolume"), key=lambda i: natural_key(str(i["metadata"]["name"]))
    )
    claims = {
        (i["metadata"].get("namespace", ""), i["metadata"]["name"]): i
        for i in items
        if i.get("kind") == "PersistentVolumeClaim"
    }
    volumes_by_id = {v["VolumeId"]: v for v in volumes}
    classes, warnings = in_tree_classes(items, context)
    workloads = find_workloads(items, classes)
    owner_index = OwnerIndex(items)
    result = Discovery(warnings=[*warnings, *workloads.warnings, *template_class_warnings(items, classes)])

    for pv in pvs:
        name = str((pv.get("metadata") or {}).get("name"))
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        claim_key = (str(ref.get("namespace", "")), str(ref.get("name", ""))) if ref else None
        try:
            outcome = _propose(pv, claim_key, claims, volumes_by_id, context, result.warnings)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            # A malformed object (hand-edited export, odd API version) is one skipped volume, not a crash.
            outcome = Skip(f"unreadable PersistentVolume object ({type(err).__name__}: {err})")
        claim_label = f"{claim_key[0]}/{claim_key[1]}" if claim_key else None
        if isinstance(outcome, Skip):
            result.skipped.append(Skipped(name, claim_label, outcome.volume_id, outcome.reason))
        elif outcome is not None:
            workload = workloads.by_claim.get(claim_key) if claim_key else None
            _add_workload(outcome, workload)
            _add_owners(outcome, claims[claim_key] if claim_key else {}, workload, owner_index, result.warnings)
            _check_kms(outcome, context, result.warnings)
            result.entries.append(outcome)

    result.entries.sort(key=group_order)
    result.warnings += owner_warnings(result.entries)
    result.skipped.sort(key=skipped_order)
    return result


@dataclass(frozen=True)
class Skip:
    reason: str
    volume_id: str | None = None


def _propose(
    pv: Mapping[str, Any],
    claim_key: tuple[str, str] | None,
    claims: Mapping[tuple[str, str], Mapping[str, Any]],
    volumes_by_id: Mapping[str, Mapping[str, Any]],
    context: StackContext,
    warnings: list[str],
) -> dict[str, Any] | Skip | None:
    """The entry for one PV, why it is left out, or None when it is not an EBS volume at all."""
    spec = pv.get("spec") or {}
    if (spec.get("csi") or {}).get("driver") == CSI_DRIVER:
        return Skip("already a CSI volume (ebs.csi.aws.com)", spec["csi"].get("volumeHandle"))
    source = spec.get("awsElasticBlockStore")
    if not source:
        return None  # not ours to report
    raw_id = str(source.get("volumeID", ""))
    located = parse_volume_id(raw_id)
    if located is None:
        return Skip(f"volume id {raw_id!r} is not an EBS volume id (expected aws://<zone>/vol-… or vol-…)")
    volume_id, id_zone = located
    claim = claims.get(claim_key) if claim_key else None
    if claim is None or (pv.get("status") or {}).get("phase") != "Bound":
        return Skip("no bound claim (nothing mounts it through a PVC)", volume_id)
    if _claim_owner(claim):
        return Skip(f"ephemeral claim of Pod {_claim_owner(claim)} (deleted with its pod: nothing to keep)", volume_id)
    volume = volumes_by_id.get(volume_id)
    if volume is None:
        return Skip("EBS volume not found in this region/account", volume_id)
    zone = volume.get("AvailabilityZone") or id_zone
    problem = zone_problem(zone, context.region)
    if problem:
        return Skip(problem, volume_id)
    if volume.get("State", "in-use") not in _USABLE_STATES:
        return Skip(
            f"volume state is {volume.get('State')!r} (only in-use or available volumes are migrated)", volume_id
        )
    if volume.get("MultiAttachEnabled"):
        return Skip("multi-attach volume (a snapshot cannot keep several writers consistent)", volume_id)
    volume_type = volume.get("VolumeType", "")
    # An in-tree PV on gp3 (a rehome precopy applied, or an in-tree class of type gp3) still has
    # its move to CSI to do: proposed like gp2 (its precopy then finds nothing to modify). Only a
    # CSI PV is done, above.
    if volume_type not in ("gp2", "gp3"):
        return Skip(f"not gp2 or gp3: {volume_type}; this tool migrates in-tree gp2 and gp3 volumes only", volume_id)
    access_modes = sorted(set((claim.get("spec") or {}).get("accessModes") or spec.get("accessModes") or []))
    if "ReadWriteMany" in access_modes:
        return Skip("ReadWriteMany claim (EBS attaches to one node)", volume_id)
    if id_zone and id_zone != zone:
        warnings.append(
            f"PV {pv['metadata']['name']} names zone {id_zone} but EBS reports {volume_id} in {zone}: {zone} is used"
        )
    entry = _entry(claim_key, pv, volume, volume_id, zone, access_modes)
    recorded = claim_metadata(claim)
    if recorded:
        entry["claimMetadata"] = recorded
    return entry


def claim_metadata(claim: Mapping[str, Any]) -> dict[str, Any]:
    """The claim's labels and annotations that the claim a cutover or rollback creates carries
    again (gp3migrate/config/claim_identity.py), recorded so they can be reviewed in the stack
    file. Empty when there are none: the entry then has no claimMetadata, and the release step
    allows no ownership key on the claim."""
    meta = claim.get("metadata") or {}
    recorded: dict[str, Any] = {}
    for place in claim_identity.PLACES:
        kept = claim_identity.copied(meta.get(place))
        if kept:
            recorded[place] = kept
    return recorded


def _add_workload(entry: dict[str, Any], workload: Mapping[str, Any] | None) -> None:
    if not workload:
        return
    entry["workload"] = copy.deepcopy(dict(workload))  # one block per entry: no YAML aliases
    if workload["kind"] == "StatefulSet" and entry.get("volumeType") in NOT_MODIFIABLE_TYPES:
        # Only a copy moves this volume, and its claims follow <template>-<set>-<ordinal>: only the
        # same name keeps them. (rehome, the default otherwise, always keeps the name.)
        entry["claimNaming"] = "same-name"
    if "owner" in workload:
        entry["quiesce"] = "manual"


def _add_owners(
    entry: dict[str, Any],
    claim: Mapping[str, Any],
    workload: Mapping[str, Any] | None,
    index: OwnerIndex,
    warnings: list[str],
) -> None:
    """The claim's and workload's other owners; a StatefulSet whose retention policy deletes its
    claims is said at once (the cutover refuses it)."""
    owners = owners_of(claim, workload, index, warnings)
    if owners:
        entry["owners"] = owners
    retention = (workload or {}).get("claimRetention")
    if workload and retention:
        refusal = window_owners.retention_refusal(entry["namespace"], str(workload["name"]), retention)
        if refusal:
            warnings.append(f"{entry['namespace']}/{entry['claim']}: {refusal}")


def _entry(
    claim_key: tuple[str, str] | None,
    pv: Mapping[str, Any],
    volume: Mapping[str, Any],
    volume_id: str,
    zone: str | None,
    access_modes: list[str],
) -> dict[str, Any]:
    spec = pv.get("spec") or {}
    entry: dict[str, Any] = {
        "namespace": claim_key[0] if claim_key else "",
        "claim": claim_key[1] if claim_key else "",
        "pv": pv["metadata"]["name"],
        "volumeId": volume_id,
        "zone": zone,
        "sizeGiB": int(volume["Size"]),
        "fsType": (spec.get("awsElasticBlockStore") or {}).get("fsType") or "ext4",
        "accessModes": access_modes or ["ReadWriteOnce"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "volumeType": volume.get("VolumeType"),
    }
    if volume.get("Iops") is not None:
        entry["iops"] = int(volume["Iops"])
    if volume.get("Throughput") is not None:
        entry["throughput"] = int(volume["Throughput"])
    entry["encrypted"] = bool(volume.get("Encrypted"))
    if volume.get("KmsKeyId"):
        entry["kmsKeyId"] = volume["KmsKeyId"]
    entry["pvStorageClass"] = pv_storage_class(pv)
    capacity = (spec.get("capacity") or {}).get("storage")
    if capacity is not None:
        entry["pvCapacity"] = str(capacity)
    # How the in-tree PV mounts the volume, which the CSI PV must say again (CSI migration carries
    # them: kubernetes csi-translation-lib plugins/aws_ebs.go TranslateInTreePVToCSI). Partition 0
    # is the whole disk (the driver ignores it: aws-ebs-csi-driver pkg/driver/node.go).
    source = spec.get("awsElasticBlockStore") or {}
    if int(source.get("partition") or 0):
        entry["partition"] = int(source["partition"])
    if source.get("readOnly"):
        entry["readOnly"] = True
    if spec.get("mountOptions"):
        entry["mountOptions"] = [str(option) for option in spec["mountOptions"]]
    return entry


def _check_kms(entry: Mapping[str, Any], context: StackContext, warnings: list[str]) -> None:
    key = entry.get("kmsKeyId")
    if key and context.kms_key_arns is not None and key not in context.kms_key_arns:
        warnings.append(
            f"{entry['namespace']}/{entry['claim']}: volume {entry['volumeId']} is encrypted with KMS key {key}, "
            "which the stack does not list in kmsKeyArns: if it is a customer-managed key, add it so the driver "
            "may use it (the AWS managed key aws/ebs needs no entry)"
        )


def group_order(entry: Mapping[str, Any]) -> tuple[NaturalKey, NaturalKey, str, NaturalKey]:
    """Sort key that keeps every claim of one workload together: namespace, workload, claim
    (each in natural order, as people number their claims: data-0 … data-9, data-10)."""
    workload = entry.get("workload") or {}
    return (
        natural_key(str(entry.get("namespace", ""))),
        natural_key(str(workload.get("name") or entry.get("claim", ""))),
        str(workload.get("kind", "")),
        natural_key(str(entry.get("claim", ""))),
    )


def skipped_order(skipped: Skipped) -> tuple[NaturalKey, NaturalKey]:
    """Volumes left out, by claim (namespace/claim) in natural order, then PV."""
    return natural_key(skipped.claim or ""), natural_key(skipped.pv)


def drop_refused(result: Discovery, region: str) -> None:
    """Move every entry the program would refuse (e.g. a claim whose `<claim>-gp3` name is too
    long, two claims whose resource names collide) to `skipped`, with the program's reason."""
    while result.entries:
        try:
            load_settings({"clusterName": "discovered", "region": region, "migrations": json.dumps(result.entries)})
            return
        except ConfigError as err:
            refused: dict[int, list[str]] = {}
            for problem in err.problems:
                match = re.fullmatch(r"migrations\[(\d+)\]\.(.+)", problem, re.DOTALL)
                if match is None:
                    raise  # not about one entry: a bug in discovery, not an odd volume
                refused.setdefault(int(match[1]), []).append(match[2])
            for index in sorted(refused, reverse=True):
                entry = result.entries.pop(index)
                result.skipped.append(
                    Skipped(
                        entry["pv"],
                        f"{entry['namespace']}/{entry['claim']}",
                        entry["volumeId"],
                        "the program would refuse its entry: " + "; ".join(refused[index]),
                    )
                )
            result.skipped.sort(key=skipped_order)


def volume_ids_to_describe(kube_items: Iterable[Mapping[str, Any]]) -> list[str]:
    """The EBS volume ids behind in-tree PVs: what discovery asks AWS about, and nothing else."""
    ids = set()
    for item in kube_items:
        if item.get("kind") == "PersistentVolume":
            source = (item.get("spec") or {}).get("awsElasticBlockStore") or {}
            located = parse_volume_id(str(source.get("volumeID", ""))) if source else None
            if located:
                ids.add(located[0])
    return sorted(ids)


def region_problem(
    kube_items: Sequence[Mapping[str, Any]], volumes: Sequence[Mapping[str, Any]], region: str
) -> str | None:
    """Why these volumes cannot be the cluster's in `region` (an export from another region or
    account): every volume must be in the region, and at least one PV's volume must be found."""
    elsewhere = sorted(
        {str(v.get("AvailabilityZone")) for v in volumes if not str(v.get("AvailabilityZone", "")).startswith(region)}
    )
    if elsewhere:
        more = ", …" if len(elsewhere) > 3 else ""
        return f"it lists volumes in {', '.join(elsewhere[:3])}{more}, not in region {region}"
    wanted = volume_ids_to_describe(kube_items)
    found = {v.get("VolumeId") for v in volumes}
    if wanted and not found & set(wanted):
        return (
            f"none of the {len(wanted)} EBS volumes the cluster's in-tree PVs name is in it "
            f"({len(volumes)} other volumes): another region or account"
        )
    return None
