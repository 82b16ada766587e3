"""Invariant 2 walked (issue 21, item 4): `pulumi destroy` after each phase, an entry removed or
listed under `forget`, the stack removed, and the application deleting its claim after finalize —
"removing a volume from config or `pulumi destroy` never deletes user data".

The engine's rules these rest on (gp3migrate/sim/engine.py `destroy`): a destroy runs no program
and deletes every resource of the state in reverse dependency order, `retainOnDelete` ones as
no-ops; a protected resource fails the destroy's preview (pulumi `DeleteStep.Apply` checks
`protect` before its dry-run check, and the CLI previews first), so nothing is deleted; `pulumi
destroy --exclude-protected` keeps each protected resource and what it depends on
(`getProtectedExcludes`). `pulumi stack rm` refuses a stack that still has resources unless
`--force`, which drops the state and leaves the resources as they are (`stack_remove.go`).

`pulumi state delete` refuses a protected resource unless `--force`, and one others depend on
unless `--target-dependents` (`state_delete.go`).

What this does not prove: `pulumi destroy --skip-preview` (the real engine then runs the other
deletes in parallel while the protected one fails; the simulated destroy stops at its preview
either way), `--target`, or `pulumi state unprotect`.
"""

import copy
from typing import Any

import pytest

from gp3migrate.sim import invariants
from gp3migrate.sim.engine import StepFailed
from gp3migrate.sim.scenario import Simulation
from tests.sim.test_scenarios import dev, up, variant

KEY = "default/ebs-gp2-claim"
NAME = "migrate-default-ebs-gp2-claim"
APP = ("default", "app-gp2-in-tree")
PATHS = {
    "precopy": ("precopy",),
    "cutover": ("precopy", "cutover"),
    "finalize": ("precopy", "cutover", "finalize"),
    "cleanup": ("precopy", "cutover", "finalize", "cleanup"),
    "rollback": ("precopy", "cutover", "rollback"),
}
# finalReclaimPolicy: Delete is refused below Kubernetes 1.31 (HonorPVReclaimPolicy, KEP-2644).
ON_1_31 = {"kubernetesVersion": "1.31"}
# Phases whose snapshots are protected in the state (released at finalize).
PROTECTED_IN = ("precopy", "cutover", "rollback")


def walked_to(phase: str, *, seed: int, stack: dict[str, Any] | None = None, **entry: Any) -> Simulation:
    sim = Simulation({**dev(**entry), **(stack or {})}, seed=seed)
    for step in PATHS[phase]:
        result = up(sim, step)
        completes = [] if result.ok else [invariants.Violation(invariants.PHASE_COMPLETES, f"{step}: {result.error}")]
        assert completes + result.violations == [], step
    return sim


def snapshots_in_state(sim: Simulation) -> list[str]:
    return sorted(r.name for r in sim.checkpoint.resources if r.type == "aws:ebs/snapshot:Snapshot")


def without_entry(sim: Simulation, *, forget: bool) -> dict[str, Any]:
    config = copy.deepcopy(sim.config)
    config["migrations"] = []
    if forget:
        config["forget"] = [KEY]
    return config


@pytest.mark.parametrize("phase", PATHS)
def test_destroy_after_each_phase_deletes_no_volume_no_kept_snapshot_and_no_claim(phase: str) -> None:
    with walked_to(phase, seed=211) as sim:
        state_before = copy.deepcopy(sim.checkpoint)
        volumes = set(sim.world.ebs.content)

        result = sim.destroy()

        assert result.violations == []
        if phase in PROTECTED_IN:
            # Refused at its preview, naming the protected snapshot; nothing deleted.
            assert f"{NAME}-safety-snapshot" in str(result.error)
            assert result.steps == [] and sim.checkpoint == state_before
            kept = sim.destroy(exclude_protected=True)
            assert kept.ok and kept.violations == [], kept.error
            assert snapshots_in_state(sim) == [f"{NAME}-safety-snapshot"]
        else:
            assert result.ok, result.error
            assert sim.checkpoint.resources == []
        assert set(sim.world.ebs.content) == volumes
        claim = sim.world.kube.peek("PersistentVolumeClaim", "default", "ebs-gp2-claim")
        assert claim is not None and claim["status"]["phase"] == "Bound"
        # Destroy stopped nothing: the app runs on as the phase left it.
        assert len(sim.world.running_pods(*APP)) == 1


@pytest.mark.parametrize("phase", ["cutover", "finalize"])
def test_destroy_of_a_copy_keeps_the_restored_claim_and_the_snapshots_it_was_asked_to_keep(phase: str) -> None:
    with walked_to(phase, seed=212, keepSnapshots=True, **variant("copy-same-name")) as sim:
        taken = set(sim.world.ebs.snapshot_content)
        result = sim.destroy(exclude_protected=phase == "cutover")
        assert result.ok and result.violations == [], (result.error, result.violations)
        assert set(sim.world.ebs.snapshot_content) == taken
        assert invariants.served_by_source(sim, sim.config) == []


@pytest.mark.parametrize("phase", PATHS)
def test_forget_in_every_phase_deletes_nothing_that_holds_data(phase: str) -> None:
    with walked_to(phase, seed=213) as sim:
        config = without_entry(sim, forget=True)
        preview = sim.preview(config)
        if phase in PROTECTED_IN:
            # `pulumi up` stops at its preview: Pulumi will not delete the protected snapshot.
            assert "is protected" in str(preview.error) and f"{NAME}-safety-snapshot" in str(preview.error)
            return
        assert preview.ok, preview.error
        assert {s.op for s in preview.changes()} == {"delete"}
        result = sim.up(config)
        assert result.ok and result.violations == [], (result.error, result.violations)
        sim.config = config
        assert invariants.after_phase(sim, dev(phase=phase) | {"migrations": []}) == []
        # The forget item goes in the next edit; then nothing is left to do.
        config.pop("forget")
        assert sim.preview(config).changes() == []


@pytest.mark.parametrize(
    ("phase", "naming"),
    [("precopy", "rehome"), ("cutover", "rehome"), ("rollback", "rehome"), ("cutover", "copy-same-name")],
)
def test_forget_before_finalize_lets_go_once_its_snapshots_leave_the_state(phase: str, naming: str) -> None:
    """The way through today: `pulumi state delete --force --target-dependents` of the entry's
    protected snapshots (they stay in AWS), then the `up` that forgets it."""
    with walked_to(phase, seed=220, **variant(naming)) as sim:
        taken = set(sim.world.ebs.snapshot_content)
        with pytest.raises(StepFailed, match="protected"):
            sim.state_delete(snapshots_in_state(sim)[0], target_dependents=True)
        for name in snapshots_in_state(sim):
            if sim.checkpoint.named(name) is not None:
                sim.state_delete(name, force=True, target_dependents=True)
        result = sim.up(without_entry(sim, forget=True))
        assert result.ok and result.violations == [], (result.error, result.violations)
        assert set(sim.world.ebs.snapshot_content) == taken
        sim.world.tick(20)
        assert len(sim.world.running_pods(*APP)) == 1


@pytest.mark.parametrize("phase", ["finalize", "cleanup"])
def test_an_entry_removed_past_finalize_leaves_its_volume_serving_the_app(phase: str) -> None:
    with walked_to(phase, seed=214, keepSnapshots=True) as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        if phase == "finalize":
            taken = set(sim.world.ebs.snapshot_content)
        result = sim.up(without_entry(sim, forget=False))
        assert result.ok and result.violations == [], (result.error, result.violations)
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == volume
        if phase == "finalize":
            assert set(sim.world.ebs.snapshot_content) == taken


@pytest.mark.xfail(
    strict=True,
    reason="issue 21: README promises forget from cutover or rollback deletes nothing, but the "
    "entry's protected snapshot makes Pulumi refuse the up (deleteProtectedError)",
)
def test_forget_from_a_cutover_lets_go_of_the_entry() -> None:
    with walked_to("cutover", seed=215) as sim:
        result = sim.up(without_entry(sim, forget=True))
        assert result.ok, result.error


@pytest.mark.parametrize("phase", ["cutover", "finalize"])
def test_a_stack_removed_leaves_every_resource_as_it_is(phase: str) -> None:
    with walked_to(phase, seed=216) as sim:
        with pytest.raises(Exception, match="still has resources; removal rejected"):
            sim.remove_stack()
        objects = {k: v for k, v in sim.world.history()["objects"].items() if not k.startswith("Pod/")}
        assert sim.remove_stack(force=True) == []
        assert sim.checkpoint.resources == []
        after = {k: v for k, v in sim.world.history()["objects"].items() if not k.startswith("Pod/")}
        assert sorted(after) == sorted(objects)


def released_by_the_app(sim: Simulation) -> dict[str, Any]:
    """The application lets go of its claim: stopped, then `kubectl delete pvc`."""
    claim = sim.world.kube.peek("PersistentVolumeClaim", "default", "ebs-gp2-claim")
    assert claim is not None
    pv_name = claim["spec"]["volumeName"]
    sim.world.scale_workload(*APP, 0)
    sim.world.tick(10)
    sim.world.kube.delete("v1", "PersistentVolumeClaim", "default", "ebs-gp2-claim")
    sim.world.tick(10)
    return sim.world.kube.peek("PersistentVolume", "", pv_name) or {}


def test_the_app_deleting_its_claim_after_finalize_keeps_the_volume_by_default() -> None:
    with walked_to("finalize", seed=217) as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        pv = released_by_the_app(sim)
        assert sim.world.ebs.exists(volume)
        assert pv["status"]["phase"] == "Released"


def test_final_reclaim_policy_delete_deletes_the_volume_only_when_the_app_deletes_its_claim() -> None:
    with walked_to("cleanup", seed=218, stack=ON_1_31, finalReclaimPolicy="Delete") as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        # Finalize and cleanup kept it: the app still runs on it.
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == volume
        assert released_by_the_app(sim) == {}
        assert not sim.world.ebs.exists(volume)


def test_final_reclaim_policy_delete_keeps_the_volume_where_no_driver_honours_it() -> None:
    with walked_to("finalize", seed=219, stack=ON_1_31, finalReclaimPolicy="Delete") as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        # The driver's external-provisioner deletes CSI volumes; without it nothing does.
        sim.world.installed["driver"] = None
        pv = released_by_the_app(sim)
        assert sim.world.ebs.exists(volume)
        assert pv["status"]["phase"] == "Released"
