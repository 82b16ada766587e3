"""How a node mounts a pod's EBS volume: what the in-tree PV said about the disk, and the EBS CSI
driver's node plugin staging and publishing it (issue 22 item 6).

Read at aws-ebs-csi-driver 429e202e, `pkg/driver/node.go`:
- `NodeStageVolume` refuses an fsType outside `ValidFSTypes` (ext3, ext4, xfs, ntfs; ext2 dropped
  in commit 25703137 "Fix supported filesystem types") with InvalidArgument before it looks at the
  device: the kubelet retries MountDevice and the pod stays ContainerCreating;
- it reads `partition` from the volume context ("0" is ignored) and stages the device that
  `FindDevicePath` returns, the disk with that partition appended, or the whole disk when none is
  named (`pkg/mounter/mount_linux.go` appendPartition);
- it then formats only a blank device and mounts an existing filesystem as the PV's fsType says
  (`FormatAndMountSensitiveWithFormatOptions`, mount-utils): a whole disk that carries a partition
  table is not blank, so nothing is formatted and the mount fails — the data is not lost, it is
  not reached (the pod stays ContainerCreating);
- `NodePublishVolume` mounts read-only (`"ro"`) when the request says `readonly`, which kubelet
  sets from the CSI PV's `readOnly`; the PV's `spec.mountOptions` reach both calls as mount flags
  (kubelet `pkg/volume/csi` csi_attacher.go MountDevice, csi_mounter.go SetUp; node.go
  collectMountOptions).

A migrated in-tree PV reaches the same driver translated by kubernetes csi-translation-lib
`plugins/aws_ebs.go` TranslateInTreePVToCSI, which carries `fsType`, `readOnly` and a non-zero
`partition` (as `volumeAttributes.partition`); `spec.mountOptions` stay on the PV. A PV the
in-tree plugin still mounts itself (no migration) mounts the same partition, read-only flag and
options; the driver's fsType list does not apply to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# node.go ValidFSTypes, and defaultFsType when the PV names none.
VALID_FS_TYPES = frozenset({"ext3", "ext4", "xfs", "ntfs"})
DEFAULT_FS_TYPE = "ext4"
PARTITION_KEY = "partition"  # pkg/driver/constants.go VolumeAttributePartition
READ_ONLY = "ro"


@dataclass(frozen=True)
class DiskFacts:
    """What the world knows of a volume beyond its blocks: the partition its filesystem lives on
    (0: the whole disk), and what its in-tree PV asked of every mount (readOnly, mountOptions) —
    the facts a PV serving the volume must carry."""

    partition: int = 0
    read_only: bool = False
    mount_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mount:
    """What the node mounted for one volume: the partition (0: the whole disk) and the flags."""

    partition: int
    fs_type: str
    flags: tuple[str, ...]

    @property
    def read_only(self) -> bool:
        return READ_ONLY in self.flags


def mount_request(pv: dict[str, Any]) -> Mount:
    """What a PV asks the node to mount: the CSI source, or the in-tree one as CSI migration
    translates it (TranslateInTreePVToCSI: fsType, readOnly, partition)."""
    spec = pv.get("spec") or {}
    csi = spec.get("csi")
    if csi is not None:
        raw = str((csi.get("volumeAttributes") or {}).get(PARTITION_KEY) or "")
        # node.go NodeStageVolume: "0" is ignored; a value that is no number names no device.
        partition = int(raw) if raw.isdigit() else 0
        read_only = bool(csi.get("readOnly"))
        fs_type = str(csi.get("fsType") or DEFAULT_FS_TYPE)
    else:
        source = spec.get("awsElasticBlockStore") or {}
        partition = int(source.get("partition") or 0)
        read_only = bool(source.get("readOnly"))
        fs_type = str(source.get("fsType") or DEFAULT_FS_TYPE)
    # collectMountOptions drops duplicates; NodePublishVolume adds "ro" for a read-only request.
    flags = tuple(dict.fromkeys(str(option) for option in spec.get("mountOptions") or []))
    if read_only and READ_ONLY not in flags:
        flags += (READ_ONLY,)
    return Mount(partition, fs_type, flags)


def stage_problem(pv: dict[str, Any], disk: DiskFacts, *, through_driver: bool) -> str:
    """Why the node cannot stage this PV's volume, as the kubelet's event says it, or ""."""
    wanted = mount_request(pv)
    name = pv["metadata"]["name"]
    # node.go NodeStageVolume: the fsType check comes first, before the device is looked at.
    if through_driver and wanted.fs_type.lower() not in VALID_FS_TYPES:
        return (
            f'MountVolume.MountDevice failed for volume "{name}" : rpc error: code = InvalidArgument desc = '
            f"NodeStageVolume: invalid fstype {wanted.fs_type}"
        )
    if wanted.partition != disk.partition:
        # FindDevicePath/appendPartition: the device staged is the whole disk, or a partition the
        # disk does not have; neither holds the filesystem, and neither is blank to be formatted.
        device = "the whole disk" if wanted.partition == 0 else f"partition {wanted.partition}"
        found = f"the filesystem is on partition {disk.partition}" if disk.partition else "the disk has no partitions"
        return (
            f'MountVolume.MountDevice failed for volume "{name}" : rpc error: code = Internal desc = could not '
            f'format and mount {device} as "{wanted.fs_type}": {found}'
        )
    return ""
