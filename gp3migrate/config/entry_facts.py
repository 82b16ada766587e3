"""The facts of a migration entry that shape the Kubernetes objects a cutover creates, and the
refusal of an edit to them once those objects may exist (issue 9 item 10, the claim half).

A claim's spec cannot change once it exists, but for a larger request; nor can a PV's volume
source, volume mode or node affinity, nor a VolumeSnapshotContent's source volume mode
(Kubernetes ValidatePersistentVolumeClaimUpdate, ValidatePersistentVolumeUpdate; the snapshot CRDs'
CEL rules). pulumi-kubernetes replaces a claim on a change of its access modes, class or volume
name, and a PV on a change of its volume source (provider/pkg/provider/diff.go `forceNew`), and a
named object is replaced delete-before-replace. These objects are kept on delete
(`retainOnDelete`, read from the old state: pulumi/pulumi 13428), so the delete is skipped and the
create of the replacement fails with AlreadyExists, in the middle of the downtime window; the
other fields fail the update with Invalid. A size edit would state a size the EBS volume does not
have (nothing here resizes it).

So the facts are recorded with every applied phase, and change only with a precopy: a cutover
that failed after creating the claim records nothing (its objects have the facts the precopy
recorded), so any later phase must ask for the recorded ones.
"""

from collections.abc import Mapping
from typing import Any

from gp3migrate.config.migration_entry import MigrationSettings
from gp3migrate.config.phases import Applied
from gp3migrate.config.problems import Problems, show

# Config key -> what it shapes, for the message.
_SHAPES: Mapping[str, str] = {
    "pv": "the CSI PV's name and the claim's volumeName",
    "volumeId": "the CSI PV's volume handle and every snapshot's source",
    "zone": "the CSI PV's node affinity",
    "sizeGiB": "the claim's request and the CSI PV's capacity",
    "fsType": "the CSI PV's fsType and the class a restore formats with",
    "accessModes": "the claim's and the PV's access modes",
    "volumeMode": "the claim's and the PV's volume mode, and the snapshot content's source volume mode",
    "pvStorageClass": "the class of the claim a rollback recreates",
    "pvCapacity": "the request of the claim a rollback recreates",
    "partition": "the CSI PV's volumeAttributes.partition",
    "readOnly": "the CSI PV's readOnly",
    "mountOptions": "the CSI PV's mountOptions",
    "claimNaming": "the restored claim's name",
    "newClaimName": "the restored claim's name",
}
_SIZES = ("sizeGiB", "pvCapacity")
_RECORDED_WHEN_SET = ("partition", "readOnly", "mountOptions")


def entry_facts(entry: MigrationSettings) -> dict[str, Any]:
    """The facts as config values (what the record stores and the message shows)."""
    facts: dict[str, Any] = {
        "pv": entry.pv,
        "volumeId": entry.volume_id,
        "zone": entry.zone,
        "sizeGiB": entry.size_gib,
        "fsType": entry.fs_type,
        "accessModes": list(entry.access_modes),
        "volumeMode": entry.volume_mode,
        "pvStorageClass": entry.pv_storage_class,
        "pvCapacity": entry.pv_capacity,
    }
    # Only when set: records of earlier versions, which never had them, stay equal.
    if entry.partition is not None:
        facts["partition"] = entry.partition
    if entry.read_only:
        facts["readOnly"] = True
    if entry.mount_options:
        facts["mountOptions"] = list(entry.mount_options)
    if entry.strategy == "copy":
        facts["claimNaming"] = entry.claim_naming
        facts["newClaimName"] = entry.new_claim_name
    return facts


def add_fact_problems(problems: Problems, where: str, entry: MigrationSettings, previous: Applied | None) -> None:
    """A problem per fact that differs from the record, unless this is a precopy (which records
    the new value). Records without facts (older versions of this program) are not checked."""
    if previous is None or not previous.facts or entry.phase == "precopy":
        return
    now = entry_facts(entry)
    for key, recorded in previous.facts.items():
        if key not in now or now[key] == recorded:
            continue
        problems.add(f"{where}.{key}", _refusal(key, now[key], recorded, previous))
    # Recorded only when set: one set since the record was absent from it.
    for key in _RECORDED_WHEN_SET:
        if key in now and key not in previous.facts:
            problems.add(f"{where}.{key}", _refusal(key, now[key], None, previous))


def _refusal(key: str, value: Any, recorded: Any, previous: Applied) -> str:
    if key in _SIZES:
        why = (
            f"it is {_SHAPES[key]}, which cannot change here: the objects would state a size the volume does "
            "not have (nothing here resizes it), and a claim's request cannot shrink"
        )
    else:
        why = (
            f"it shapes {_SHAPES[key]}, which cannot change once created: Pulumi replaces such objects, and they "
            "are kept on delete, so the new ones would fail with AlreadyExists (or the update is refused) "
            "during the downtime"
        )
    if previous.phase == "precopy":
        return (
            f"is {show(value)} but changed since the precopy recorded {show(recorded)}: {why}; a cutover that "
            "failed part-way created them with the recorded value. Set it back, or, if no cutover ever started, "
            "run phase: precopy with the new value first"
        )
    if previous.phase == "cutover":
        way_out = "Set it back; to migrate again with the new value: phase: rollback, then precopy"
    elif previous.phase == "rollback":
        way_out = "Set it back, or run phase: precopy with the new value first"
    else:
        way_out = "Set it back"
    return f"is {show(value)} but the {previous.phase} applied {show(recorded)}: {why}. {way_out}"
