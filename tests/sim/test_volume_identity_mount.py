"""The volume keeps its identity through the node's mount (issue 22 item 6): the simulation mounts
as the EBS CSI driver's node plugin does (gp3migrate/sim/kube/node_stage.py, from
aws-ebs-csi-driver pkg/driver/node.go NodeStageVolume / NodePublishVolume), and the program's
rehome cutover serves each volume as its in-tree PV said.

One scenario per rule. Each passes on the program as it is; the old behaviour of the last two is
planted by tests/defects/22-csi-pv-partition-dropped.patch (WORKLOAD_RUNS: the CSI PV names no
partition, the driver stages the whole disk, the mount fails and the app never comes back) and
23-csi-pv-readonly-dropped.patch (MOUNTED_AS_SAID: the app writes to a volume its owner made
read-only): `venv/bin/python -m scripts.plant_defects 22- 23-`.

What this does not prove: the driver's real device discovery (nvme names, udev), mount-utils'
blkid probe, or Windows nodes (ntfs).
"""

from typing import Any

from gp3migrate.planning.strategies import rehome
from gp3migrate.sim import invariants
from gp3migrate.sim.kube import node_stage
from gp3migrate.sim.scenario import Simulation, UpResult
from tests.sim.test_scenarios import DRIVER, broken, dev, up

NAMESPACE, CLAIM, APP = "default", "ebs-gp2-claim", "app-gp2-in-tree"


def cutover(sim: Simulation, **entry: Any) -> tuple[UpResult, list[str]]:
    """precopy then cutover, as the runbook walks them; what broke: every invariant checked by the
    scenario, the workload running whether or not the `up` failed (a mount that never succeeds
    leaves it stopped), and a failed `up` of this healthy world as PHASE_COMPLETES."""
    precopy = up(sim, "precopy", **entry)
    assert precopy.ok, precopy.error
    assert broken(sim, precopy) == []
    result = up(sim, "cutover", **entry)
    found = [str(v) for v in result.violations]
    config = sim.with_entries(phase="cutover", **entry)
    found += [str(v) for v in invariants.workloads_running(sim, config)]
    if result.ok:
        found += [str(v) for v in invariants.after_phase(sim, config) if str(v) not in found]
    else:
        found.append(str(invariants.Violation(invariants.PHASE_COMPLETES, f"cutover: {result.error}")))
    return result, found


def mount_failures(sim: Simulation) -> list[str]:
    return [e.message for e in sim.world.events if e.reason == "FailedMount"]


def test_an_ext2_csi_pv_leaves_the_pod_in_container_creating(monkeypatch: Any) -> None:
    """node.go NodeStageVolume refuses an fsType outside ValidFSTypes before it looks at the device.
    The program refuses ext2 at preview (tests/test_volume_identity.py); forced through here — the
    volume holds ext2 (world data) and the CSI PV says so — the app never comes back."""
    built = rehome.csi_persistent_volume

    def ext2(*args: Any, **kwargs: Any) -> dict[str, Any]:
        pv = built(*args, **kwargs)
        pv["spec"]["csi"]["fsType"] = "ext2"
        return pv

    monkeypatch.setattr(rehome, "csi_persistent_volume", ext2)
    with Simulation(dev(), seed=61, driver=DRIVER) as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        assert up(sim, "precopy").ok
        # The volume holds ext2; the running pod keeps the mount it has, the in-tree PV says ext2.
        sim.world.ebs.filesystem[volume] = "ext2"
        with sim.world.kube.edit("PersistentVolume", "", sim.config["migrations"][0]["pv"], "kubectl") as pv:
            pv["spec"]["awsElasticBlockStore"]["fsType"] = "ext2"
        result = up(sim, "cutover")
        assert not result.ok
        assert sim.world.running_pods(NAMESPACE, APP) == []
        assert any("NodeStageVolume: invalid fstype ext2" in m for m in mount_failures(sim))
        found = invariants.workloads_running(sim, sim.with_entries(phase="cutover"))
        assert [v.invariant for v in found] == [invariants.WORKLOAD_RUNS]
        assert sim.world.ebs.filesystem[volume] == "ext2"  # refused, not formatted


def test_a_partitioned_volume_is_served_from_its_partition() -> None:
    """The in-tree PV names partition 1: the CSI PV says `volumeAttributes.partition: "1"`, the
    driver stages that partition (node.go NodeStageVolume, FindDevicePath), and the app runs on its
    own data. Dropping it (defect 22) stages the whole disk: FailedMount, WORKLOAD_RUNS."""
    with Simulation(dev(partition=1), seed=62, driver=DRIVER) as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        assert sim.world.disk_facts(volume).partition == 1
        assert len(sim.world.running_pods(NAMESPACE, APP)) == 1  # the migrated in-tree PV mounts partition 1
        result, found = cutover(sim, partition=1)
        assert found == []
        assert result.ok, result.error
        served = [pv["spec"].get("csi") for pv in sim.world.kube.view("PersistentVolume") if "csi" in pv["spec"]]
        assert [csi["volumeAttributes"] for csi in served if csi["volumeHandle"] == volume] == [{"partition": "1"}]
        assert mount_failures(sim) == []


def test_a_read_only_volume_stays_read_only_with_its_mount_options() -> None:
    """The in-tree PV is readOnly with mountOptions: the CSI PV keeps both, NodePublishVolume mounts
    "ro" (node.go) with the options, and the app acknowledges no write to it. Dropping them (defect
    23) serves it writable: MOUNTED_AS_SAID."""
    with Simulation(dev(readOnly=True, mountOptions=["noatime"]), seed=63, driver=DRIVER) as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        result, found = cutover(sim, readOnly=True, mountOptions=["noatime"])
        assert found == []
        assert result.ok, result.error
        mounts = [m for _, _, v, m in sim.world.mounts_of_running_pods() if v == volume]
        assert [m.flags for m in mounts] == [("noatime", node_stage.READ_ONLY)]
        assert [w for w in sim.world.writes if w.volume_id == volume] == []
