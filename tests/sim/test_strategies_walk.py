"""The zero-copy strategies walked in the simulation (issue 10): rehome (the default) and modify,
forward to the end and back from a cutover, with faults. The copy strategy's scenarios are in
test_scenarios.py (which also walks rehome through the shared ones).

What this does not prove: EC2's real modification timings, the node plugin mounting a real
filesystem, the real driver's attach of a hand-made PV (the opt-in live test's rehome walk).
"""

import copy
import os
from typing import Any

from gp3migrate.sim import invariants
from gp3migrate.sim.rehearsal import FORWARD, walk
from gp3migrate.sim.scenario import Simulation
from tests.sim.test_scenarios import broken, up
from tests.stacks import dev_config

DRIVER: Any = os.environ.get("GP3_SIM_DRIVER", "addon")
KEY = "default/ebs-gp2-claim"
NAME = "migrate-default-ebs-gp2-claim"


def dev(**entry: Any) -> dict[str, Any]:
    config = dev_config()
    for item in config["migrations"]:
        item.update(entry)
    return config


def source(sim: Simulation) -> dict[str, Any]:
    return sim.config["migrations"][0]


def test_rehome_walks_forward_copying_nothing_onto_a_csi_pv_under_the_same_claim() -> None:
    with Simulation(dev(), seed=101, driver=DRIVER) as sim:
        entry = source(sim)
        report = walk(sim, FORWARD)
        assert [f"{p.phase}: {p.result.error}" for p in report.phases if not p.result.ok] == []
        assert [str(v) for p in report.phases for v in p.violations] == []
        # Zero bytes copied: no volume was created from a snapshot, in any phase.
        assert [p.copied_gib for p in report.phases] == [0, 0, 0, 0]
        volume = sim.world.ebs.volume(entry["volumeId"])
        out = sim.checkpoint.outputs["migrations"][KEY]
        assert (volume["VolumeType"], volume["Iops"], volume["Throughput"]) == (
            "gp3",
            out["plannedIops"],
            out["plannedThroughput"],
        )
        assert out["bytesCopied"] == 0 and out["strategy"] == "rehome"
        claim = sim.world.kube.get("v1", "PersistentVolumeClaim", "default", "ebs-gp2-claim")
        assert claim is not None and claim["status"]["phase"] == "Bound"
        pv = sim.world.kube.get("v1", "PersistentVolume", "", claim["spec"]["volumeName"])
        assert pv is not None and pv["spec"]["csi"]["driver"] == "ebs.csi.aws.com"
        assert pv["spec"]["csi"]["volumeHandle"] == entry["volumeId"]
        # The old in-tree PV object is gone (finalize), the volume is the same one.
        assert sim.world.kube.get("v1", "PersistentVolume", "", entry["pv"]) is None
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == entry["volumeId"]


def test_rehome_downtime_is_the_detach_wait_and_object_steps_only() -> None:
    """Same seed, same cluster: rehome's window holds no snapshot and no restore."""
    windows = {}
    for name, extra in (("rehome", {}), ("copy", {"strategy": "copy", "claimNaming": "same-name"})):
        with Simulation(dev(**extra), seed=102, driver=DRIVER) as sim:
            report = walk(sim, ("precopy", "cutover"))
            assert all(p.result.ok for p in report.phases), [p.result.error for p in report.phases]
            windows[name] = report.phases[1].downtime_seconds["default/app-gp2-in-tree"]
            steps = sim.checkpoint.outputs["migrations"][KEY]["downtimeSteps"]
            if name == "rehome":
                assert steps == ["detached", "csi-pv", "release-old-claim", "claim"]
            else:
                assert "final-snapshot" in steps
    assert 0 < windows["rehome"] < windows["copy"], windows


def test_modify_makes_the_volume_gp3_in_place_without_stopping_the_app() -> None:
    with Simulation(dev(strategy="modify"), seed=103, driver=DRIVER) as sim:
        entry = source(sim)
        pv_before = copy.deepcopy(sim.world.kube.get("v1", "PersistentVolume", "", entry["pv"]))
        report = walk(sim, ("precopy",))
        assert [p.result.error for p in report.phases] == [None]
        assert [str(v) for p in report.phases for v in p.violations] == []
        assert report.phases[0].copied_gib == 0
        assert report.phases[0].downtime_seconds == {"default/app-gp2-in-tree": 0}
        volume = sim.world.ebs.volume(entry["volumeId"])
        assert volume["VolumeType"] == "gp3"
        # The PV stays in-tree, untouched by the program.
        pv = sim.world.kube.get("v1", "PersistentVolume", "", entry["pv"])
        assert pv is not None and pv_before is not None
        assert pv["spec"] == pv_before["spec"]


def test_a_refused_modify_volume_leaves_everything_as_it_was_and_says_when_to_retry() -> None:
    with Simulation(dev(), seed=104, driver=DRIVER) as sim:
        entry = source(sim)
        sim.world.ebs.fail_next(
            "ModifyVolume",
            "VolumeModificationRateExceeded",
            "You've reached the maximum modification rate per volume limit. Wait at least 6 hours between "
            "modifications per EBS volume.",
        )
        failed = up(sim, "precopy")
        assert failed.error is not None
        assert "left unchanged" in str(failed.error) and "pulumi up" in str(failed.error)
        assert sim.world.ebs.volume(entry["volumeId"])["VolumeType"] == "gp2"
        assert broken(sim, failed, rerun=False) == []
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == entry["volumeId"]
        assert sim.checkpoint.outputs.get("migrationPhases", {}).get(KEY) is None
        # Once EC2 lets it, the same `up` carries on.
        again = up(sim, "precopy")
        assert again.ok, again.error
        assert sim.world.ebs.volume(entry["volumeId"])["VolumeType"] == "gp3"


def test_finalize_refuses_to_delete_the_old_pv_object_once_someone_set_it_to_delete() -> None:
    """Both PV objects point at one volume: deleting the in-tree one while Delete would delete
    the volume the app now runs on. The step re-checks right before the delete."""
    with Simulation(dev(), seed=105, driver=DRIVER) as sim:
        entry = source(sim)
        assert up(sim, "precopy").ok
        assert up(sim, "cutover").ok
        # Someone (an operator, a GitOps sync of the old manifest) sets it back to Delete.
        with sim.world.kube.edit("PersistentVolume", "", entry["pv"], "kubectl") as pv:
            pv["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
        result = up(sim, "finalize")
        assert result.error is not None
        assert "reclaim policy is Delete" in str(result.error)
        assert sim.world.kube.get("v1", "PersistentVolume", "", entry["pv"]) is not None
        assert sim.world.ebs.exists(entry["volumeId"])
        assert [str(v) for v in invariants.only_copies_kept(sim, where="finalize refused")] == []
        # The user follows the message: Retain again, then finalize goes through with nothing lost.
        assert f"kubectl patch pv {entry['pv']} -p" in str(result.error)
        with sim.world.kube.edit("PersistentVolume", "", entry["pv"], "kubectl") as pv:
            pv["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
        again = up(sim, "finalize")
        assert again.ok and again.violations == [], (again.error, again.violations)
        assert sim.world.ebs.exists(entry["volumeId"])


def test_a_statefulset_with_two_claims_rehomes_with_one_stop_and_one_start() -> None:
    config = dev_config()
    template = config["migrations"][0]
    entries = []
    for ordinal in range(2):
        item = copy.deepcopy(template)
        item.update(
            claim=f"data-db-{ordinal}",
            pv=f"pvc-0000000{ordinal}-aaaa-bbbb-cccc-dddddddddddd",
            volumeId=f"vol-0{ordinal}3d3cd818a2c2def3",
            workload={"kind": "StatefulSet", "name": "db", "replicas": 2},
        )
        entries.append(item)
    config["migrations"] = entries
    with Simulation(config, seed=106, driver=DRIVER) as sim:
        report = walk(sim, FORWARD)
        assert [f"{p.phase}: {p.result.error}" for p in report.phases if not p.result.ok] == []
        assert [str(v) for p in report.phases for v in p.violations] == []
        cutover = report.phases[1]
        scales = [s.name for s in cutover.plan if s.name.endswith(("-quiesce", "-scale-back"))]
        assert scales == ["migrate-default-data-db-0-quiesce", "migrate-default-data-db-0-scale-back"]
