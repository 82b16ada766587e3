"""The source-delete check proves identity (issue 23 item 4): with `deleteSource`, finalize hands the
source volume to deletion only when the claim is served by the volume restored from this migration's
final snapshot, attached to a node, and the source PV is Released. Each world below is one in which
a check by tags alone (any in-use gp3 volume carrying the claim's tags) would have let the source go;
every invariant is checked after every `up`.

The look-alike is made the way it comes about in a cluster: the claim deleted and created again
under its name (a restore from backup, a GitOps sync), so the EBS CSI driver provisions a new, empty
gp3 volume and tags it with the claim's name and namespace (the simulation's external-provisioner:
gp3migrate/sim/kube/provisioner.py), and the workload mounts it.

The gates are components/gate_providers.py's InUseGate; what they check is
gp3migrate/checks/preconditions.py restored_volume_in_use and source_pv_released. The defect
tests/defects/24-source-delete-any-gp3.patch puts the tag check back.

What this does not prove: a look-alike restored from another snapshot of the source (its data is
that snapshot's; tests/test_gates.py covers the gate's refusal, the simulation's invariant does not
tell it from the copy), nor a change between the gate and the Delete patch that waits for it.
"""

from gp3migrate.sim.scenario import Simulation
from tests.sim.test_one_way_rechecks import APP, CLAIM, NAMESPACE, replace_claim, walk_until_refused
from tests.sim.test_scenarios import DRIVER, broken, dev, up, variant


def source_pv(sim: Simulation) -> dict:
    found = sim.world.kube.peek("PersistentVolume", "", sim.config["migrations"][0]["pv"])
    assert found is not None
    return found


def test_a_claim_served_by_a_look_alike_gp3_volume_keeps_the_source() -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=311, driver=DRIVER) as sim:
        source = sim.config["migrations"][0]["volumeId"]
        walk_until_refused(sim, ("precopy", "cutover"))
        copy = sim.world.claim_volume(NAMESPACE, CLAIM)
        assert copy is not None and sim.world.ebs.restored_from(copy) == source

        # Done with care: the copy's PV set to Retain first, so its records stay on its volume.
        claim = sim.world.kube.peek("PersistentVolumeClaim", NAMESPACE, CLAIM)
        assert claim is not None
        copy_pv = claim["spec"]["volumeName"]
        sim.world.kube.patch(
            "v1",
            "PersistentVolume",
            "",
            copy_pv,
            {"spec": {"persistentVolumeReclaimPolicy": "Retain"}},
            manager="kubectl",
        )
        look_alike = replace_claim(sim)
        assert sim.world.ebs.exists(copy) and sim.world.ebs.attached_to(copy) is None
        # What a check by tags alone saw: gp3, in use, the claim's tags. Not restored from anything.
        described = sim.world.ebs.volume(look_alike)
        assert (described["VolumeType"], described["State"], described.get("SnapshotId") or "") == ("gp3", "in-use", "")
        assert sim.world.ebs.tags(look_alike)["kubernetes.io/created-for/pvc/name"] == CLAIM
        assert sim.world.ebs.restored_from(look_alike) is None

        result = walk_until_refused(sim, ("finalize",), deleteSource=True)
        assert not result.ok
        message = str(result.error)
        assert f"refusing to hand the source volume {source} to deletion" in message
        assert f"{NAMESPACE}/{CLAIM} is served by {look_alike}" in message
        assert "created empty, from no snapshot, not from this migration's final snapshot snap-" in message
        assert sim.world.ebs.exists(source)
        assert source_pv(sim)["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert len(sim.world.running_pods(*APP)) == 1


def test_a_copy_no_node_mounts_keeps_the_source() -> None:
    """The claim is the copy's, but the workload was stopped after the cutover: nothing proves the
    copy usable (tests/defects/10-in-use-gate-any-state.patch drops this part of the check)."""
    with Simulation(dev(**variant("copy-same-name")), seed=313, driver=DRIVER) as sim:
        source = sim.config["migrations"][0]["volumeId"]
        walk_until_refused(sim, ("precopy", "cutover"))
        copy = sim.world.claim_volume(NAMESPACE, CLAIM)
        sim.world.scale_workload(*APP, 0)
        sim.world.tick(12)
        assert copy is not None and sim.world.ebs.attached_to(copy) is None

        result = walk_until_refused(sim, ("finalize",), deleteSource=True)
        assert f"{NAMESPACE}/{CLAIM} is not mounted by any node ({copy} is available)" in str(result.error)
        assert sim.world.ebs.exists(source)
        assert source_pv(sim)["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_a_renamed_copy_hands_the_source_over_only_once_the_old_claim_is_gone() -> None:
    """`rename`: the old claim stays Bound to the source PV after the workload moved to the copy.
    Delete on a Bound PV deletes the volume whenever that claim goes (the PV controller reclaims
    it once Released: pv_controller.go reclaimVolume), whoever still uses it; finalize waits for the
    user to delete the old claim, then hands the Released PV over."""
    with Simulation(dev(**variant("copy-rename")), seed=312, driver=DRIVER) as sim:
        source = sim.config["migrations"][0]["volumeId"]
        walk_until_refused(sim, ("precopy", "cutover"))  # `up` repoints the workload to the copy
        assert sim.world.ebs.attached_to(sim.world.claim_volume(NAMESPACE, f"{CLAIM}-gp3") or "")

        refused = walk_until_refused(sim, ("finalize",), deleteSource=True)
        pv = sim.config["migrations"][0]["pv"]
        assert f"refusing to set the source PV {pv} to Delete: it is Bound to {NAMESPACE}/{CLAIM}" in str(refused.error)
        assert sim.world.ebs.exists(source)
        assert source_pv(sim)["spec"]["persistentVolumeReclaimPolicy"] == "Retain"

        sim.world.kube.delete("v1", "PersistentVolumeClaim", NAMESPACE, CLAIM)
        sim.world.tick(3)
        assert source_pv(sim)["status"]["phase"] == "Released"
        result = up(sim, "finalize", deleteSource=True)
        assert result.ok, result.error
        # Not the rerun check: once the PV controller deleted the source PV, a refresh drops the
        # Delete patch of a PV that no longer exists and the next `up` plans it again (left as found).
        assert broken(sim, result, rerun=False) == []
        sim.world.tick(10)
        assert not sim.world.ebs.exists(source)
