"""EBS in the simulation: moto keeps volumes, snapshots, tags and attachments; this adds what moto
lacks — each volume's *content* (an ordered list of records), snapshot completion over ticks, and
the filesystem a volume carries.

- A snapshot copies the volume's content at the instant CreateSnapshot is called (EBS snapshots are
  point-in-time and crash-consistent: "Amazon EBS snapshots" docs); it is `pending` for a seeded
  number of ticks, then `completed`.
- A volume created from a snapshot starts with the snapshot's content and filesystem.
- A volume attaches to one instance; DeleteVolume fails while it is attached (EC2 API:
  VolumeInUse).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError


class Ebs:
    def __init__(self, ec2: Any, rng: random.Random, clock: Any):
        self.ec2 = ec2
        self.rng = rng
        self._now = clock
        self.content: dict[str, list[str]] = {}
        self.filesystem: dict[str, str | None] = {}
        self.snapshot_content: dict[str, list[str]] = {}
        self.snapshot_filesystem: dict[str, str | None] = {}
        self.snapshot_source: dict[str, str] = {}
        self.snapshot_ready_at: dict[str, int] = {}
        self.source_snapshot: dict[str, str] = {}
        self._failures: dict[str, tuple[str, str]] = {}
        self.calls: dict[str, int] = {}

    # -- faults --------------------------------------------------------------------------------

    def fail_next(self, operation: str, error_code: str, message: str) -> None:
        self._failures[operation] = (error_code, message)

    def _call(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        failure = self._failures.pop(operation, None)
        if failure:
            raise ClientError({"Error": {"Code": failure[0], "Message": failure[1]}}, operation)

    # -- volumes -------------------------------------------------------------------------------

    def create_volume(
        self,
        *,
        zone: str,
        size_gib: int,
        volume_type: str,
        tags: dict[str, str],
        iops: int | None = None,
        throughput: int | None = None,
        encrypted: bool = False,
        kms_key_id: str | None = None,
        snapshot_id: str | None = None,
        filesystem: str | None = None,
    ) -> str:
        self._call("CreateVolume")
        args: dict[str, Any] = {
            "AvailabilityZone": zone,
            "Size": size_gib,
            "VolumeType": volume_type,
            "Encrypted": encrypted,
            "TagSpecifications": [
                {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
            ],
        }
        if iops:
            args["Iops"] = iops
        if throughput and volume_type == "gp3":
            args["Throughput"] = throughput
        if kms_key_id:
            args["KmsKeyId"] = kms_key_id
        if snapshot_id:
            args["SnapshotId"] = snapshot_id
        volume_id = str(self.ec2.create_volume(**args)["VolumeId"])
        if snapshot_id:
            self.content[volume_id] = list(self.snapshot_content[snapshot_id])
            self.filesystem[volume_id] = self.snapshot_filesystem[snapshot_id]
            self.source_snapshot[volume_id] = snapshot_id
        else:
            self.content[volume_id] = []
            self.filesystem[volume_id] = filesystem
        return volume_id

    def volume(self, volume_id: str) -> dict[str, Any]:
        return dict(self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])

    def exists(self, volume_id: str) -> bool:
        return volume_id in self.content

    def attach(self, volume_id: str, instance_id: str, device: str) -> None:
        self._call("AttachVolume")
        self.ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)

    def detach(self, volume_id: str) -> None:
        self._call("DetachVolume")
        instance = self.attached_to(volume_id)
        if instance:
            self.ec2.detach_volume(VolumeId=volume_id, InstanceId=instance)

    def attached_to(self, volume_id: str) -> str | None:
        attachments = self.volume(volume_id).get("Attachments") or []
        return str(attachments[0]["InstanceId"]) if attachments else None

    def delete_volume(self, volume_id: str) -> None:
        self._call("DeleteVolume")
        if self.attached_to(volume_id):
            raise ClientError(
                {"Error": {"Code": "VolumeInUse", "Message": f"Volume {volume_id} is currently attached"}},
                "DeleteVolume",
            )
        self.ec2.delete_volume(VolumeId=volume_id)
        self.content.pop(volume_id, None)

    def write(self, volume_id: str, record: str) -> None:
        self.content[volume_id].append(record)

    def restored_from(self, volume_id: str) -> str | None:
        """The volume whose snapshot this one was created from."""
        snapshot = self.source_snapshot.get(volume_id)
        return self.snapshot_source.get(snapshot) if snapshot else None

    # -- snapshots ------------------------------------------------------------------------------

    def create_snapshot(self, volume_id: str, description: str, tags: dict[str, str]) -> str:
        self._call("CreateSnapshot")
        response = self.ec2.create_snapshot(
            VolumeId=volume_id,
            Description=description,
            TagSpecifications=[
                {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
            ],
        )
        snapshot_id = str(response["SnapshotId"])
        self.snapshot_content[snapshot_id] = list(self.content[volume_id])
        self.snapshot_filesystem[snapshot_id] = self.filesystem.get(volume_id)
        self.snapshot_source[snapshot_id] = volume_id
        self.snapshot_ready_at[snapshot_id] = self._now() + self.rng.randint(2, 6)
        return snapshot_id

    def snapshot_state(self, snapshot_id: str) -> str:
        if snapshot_id not in self.snapshot_content:
            return "deleted"
        return "completed" if self._now() >= self.snapshot_ready_at[snapshot_id] else "pending"

    def snapshot_exists(self, snapshot_id: str) -> bool:
        return snapshot_id in self.snapshot_content

    def snapshot_tags(self, snapshot_id: str) -> dict[str, str]:
        found = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        return {t["Key"]: t["Value"] for t in found.get("Tags") or []}

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._call("DeleteSnapshot")
        self.ec2.delete_snapshot(SnapshotId=snapshot_id)
        self.snapshot_content.pop(snapshot_id, None)

    # -- what the invariants read ---------------------------------------------------------------

    def all_records(self) -> set[str]:
        held: set[str] = set()
        for records in self._contents():
            held.update(records)
        return held

    def _contents(self) -> Iterable[list[str]]:
        yield from self.content.values()
        yield from self.snapshot_content.values()
