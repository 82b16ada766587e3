"""The world each one-way step's re-check exists for (issue 21 item 6): the state in which the step
must refuse, walked as a user would walk it, with every invariant checked after every `up`. With
the re-check in place the program stops with its reason and nothing is broken; a re-check that
always passes (tests/defects/) breaks the invariant that names the promise, and the message names
the invariant and the object.

The steps are components/gate_providers.py's; what they re-check is gp3migrate/checks/preconditions.py.

What this does not prove: states reached by a race inside one step (the re-check and the action
are two API calls; the PV delete's preconditions cover that one, the others are not walked).
"""

from typing import Any

from gp3migrate.sim.scenario import Simulation, UpResult
from tests.sim.test_scenarios import DRIVER, broken, dev, up, variant

NAME = "migrate-default-ebs-gp2-claim"
NAMESPACE, CLAIM = "default", "ebs-gp2-claim"
APP = (NAMESPACE, "app-gp2-in-tree")


def walk_until_refused(sim: Simulation, phases: tuple[str, ...], **entry: Any) -> UpResult:
    """`up` one phase after the other, as a user goes on while each succeeds; every invariant holds
    after each (failed ones included). Returns the last `up`."""
    result = None
    for phase in phases:
        result = up(sim, phase, **entry)
        assert broken(sim, result) == [], (phase, result.error)
        if not result.ok:
            break
    assert result is not None
    return result


def test_finalize_with_delete_source_before_the_copy_is_in_use_refuses_and_keeps_the_source() -> None:
    """InUseGate: the restored claim of a `rename` copy is not used until the user repoints the
    workload; finalize with deleteSource must not set the source PV to Delete before that."""
    with Simulation(dev(**variant("copy-rename")), seed=301, driver=DRIVER) as sim:
        source = sim.config["migrations"][0]["volumeId"]
        assert up(sim, "precopy").ok
        cutover = sim.with_entries(phase="cutover")
        assert sim.up(cutover).ok  # the user has not repointed the workload yet
        sim.config = cutover
        result = walk_until_refused(sim, ("finalize",), deleteSource=True)
        assert "is not mounted by any node" in str(result.error)
        assert sim.world.ebs.exists(source)
        pv = sim.world.kube.peek("PersistentVolume", "", sim.config["migrations"][0]["pv"])
        assert pv is not None and pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def replace_claim(sim: Simulation, storage_class: str = "gp3") -> str:
    """What a restore from backup does between two phases: the app stopped, its claim deleted
    and created again under the same name on a new volume, the app started on it. Returns the
    new claim's volume."""
    world = sim.world
    world.scale_workload(*APP, 0)
    world.tick(12)
    world.kube.delete("v1", "PersistentVolumeClaim", NAMESPACE, CLAIM)
    world.tick(3)
    assert world.kube.peek("PersistentVolumeClaim", NAMESPACE, CLAIM) is None
    world.kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": NAMESPACE},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": storage_class,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        manager="velero",
    )
    world.scale_workload(*APP, 1)
    world.tick(15)
    volume = world.claim_volume(NAMESPACE, CLAIM)
    assert volume is not None and len(world.running_pods(*APP)) == 1
    return volume


def test_a_cutover_after_the_claim_was_replaced_refuses_to_release_the_new_one() -> None:
    """ClaimRelease: the claim name now serves another volume (restored from a backup after the
    precopy); the cutover must not delete that claim."""
    with Simulation(dev(), seed=302, driver=DRIVER) as sim:
        entry = sim.config["migrations"][0]
        assert up(sim, "precopy").ok
        replaced = replace_claim(sim)
        assert replaced != entry["volumeId"]
        result = walk_until_refused(sim, ("cutover",))
        assert f"refusing to delete {NAMESPACE}/{CLAIM}: it is bound to" in str(result.error)
        assert sim.world.claim_volume(NAMESPACE, CLAIM) == replaced


def test_an_entry_whose_volume_lies_in_another_zone_than_planned_changes_nothing() -> None:
    """VolumeModify: the stack file says one zone (a stale or hand-edited entry), the volume is in
    another; the static CSI PV would pin the app's pods to the planned zone."""
    with Simulation(dev(), seed=303, driver=DRIVER) as sim:
        entry = sim.config["migrations"][0]
        actual = entry["zone"]
        planned = "eu-central-1a" if actual != "eu-central-1a" else "eu-central-1b"
        for item in sim.config["migrations"]:
            item["zone"] = planned
        result = walk_until_refused(sim, ("precopy", "cutover", "finalize"))
        assert f"is in {actual}, not {planned} as planned" in str(result.error)
        assert sim.world.ebs.volume(entry["volumeId"])["VolumeType"] == "gp2"
