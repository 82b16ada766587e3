"""The migration walked in the simulation (gp3migrate/sim): what *happens* across `up`s, controllers
and faults, checked against the invariants (gp3migrate/sim/invariants.py).

Each scenario runs the real program once per simulated `up`. What this does not prove: the real
engine's concurrency, real API latencies, admission webhooks, and everything the models leave out
(README, "The simulation").
"""

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gp3migrate.sim import invariants
from gp3migrate.sim.rehearsal import FORWARD, repoint_renamed_workloads, walk
from gp3migrate.sim.scenario import Faults, Simulation, UpResult
from tests.stacks import dev_config

# The cluster every scenario starts from: the driver running as an EKS add-on, as on every real
# target. GP3_SIM_DRIVER=none starts from a bare cluster instead (how today's defects behind a
# failing platform install were seen, README "What the simulation found").
DRIVER: Any = os.environ.get("GP3_SIM_DRIVER", "addon")
KEY = "default/ebs-gp2-claim"
NAME = "migrate-default-ebs-gp2-claim"


def defect(item: int, what: str) -> pytest.MarkDecorator:
    """A scenario that today's code fails (issue 9): strict, so fixing it turns this red until the
    marker goes."""
    return pytest.mark.xfail(strict=True, reason=f"issue 9 item {item}: {what}")


# How a scenario migrates: the default (rehome), or the snapshot copy with either claim naming.
VARIANTS = ("rehome", "copy-rename", "copy-same-name")


def variant(name: str) -> dict[str, Any]:
    """The entry keys of a variant."""
    if name == "rehome":
        return {}
    return {"strategy": "copy", "claimNaming": name.removeprefix("copy-")}


def dev(**entry: Any) -> dict[str, Any]:
    config = dev_config()
    for item in config["migrations"]:
        item.update(entry)
    return config


def statefulset(replicas: int = 2, **entry: Any) -> dict[str, Any]:
    config = dev_config()
    template = config["migrations"][0]
    entries = []
    for ordinal in range(replicas):
        item = copy.deepcopy(template)
        item.update(
            claim=f"data-db-{ordinal}",
            pv=f"pvc-0000000{ordinal}-aaaa-bbbb-cccc-dddddddddddd",
            workload={"kind": "StatefulSet", "name": "db", "replicas": replicas},
            **{**variant("copy-same-name"), **entry},
        )
        entries.append(item)
    config["migrations"] = entries
    return config


def up(sim: Simulation, phase: str, *, refresh: bool = False, faults: Faults | None = None, **entry: Any) -> UpResult:
    config = sim.with_entries(phase=phase, **entry)
    result = sim.up(config, refresh_first=refresh, faults=faults)
    if result.ok:
        sim.config = config
        repoint_renamed_workloads(sim, config)
    return result


def broken(sim: Simulation, result: UpResult, *, rerun: bool = True) -> list[str]:
    """Every invariant the last `up` broke (empty: all held)."""
    found = [str(v) for v in result.violations]
    if result.ok:
        found += [str(v) for v in invariants.after_phase(sim, sim.config)]
        if rerun:
            found += [str(v) for v in invariants.rerun_plans_nothing(sim, sim.config)]
    return found


def walk_problems(report: Any) -> list[str]:
    return [f"{p.phase}: {p.result.error}" for p in report.phases if not p.result.ok] + [
        f"{p.phase}: {v}" for p in report.phases for v in p.violations
    ]


@pytest.mark.parametrize("naming", VARIANTS)
def test_the_dev_stack_walks_forward_with_every_invariant_held(naming: str) -> None:
    with Simulation(dev(**variant(naming)), seed=1, driver=DRIVER) as sim:
        report = walk(sim, FORWARD)
    assert walk_problems(report) == []
    assert [p.phase for p in report.phases] == list(FORWARD)


def test_a_cluster_whose_driver_runs_already_keeps_it() -> None:
    """Every EKS >= 1.23 cluster with working in-tree volumes runs the driver (EKS 1.23 notes)."""
    with Simulation(dev(), seed=2, driver="addon") as sim:
        result = up(sim, "precopy")
        assert result.error is None
        assert sim.world.installed["driver"] == {"how": "addon", "version": "v1.53.0"}


def test_a_second_same_name_cutover_up_leaves_the_live_gp3_claim_alone() -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=3, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        assert up(sim, "cutover").ok
        gp3_volume = sim.world.claim_volume("default", "ebs-gp2-claim")
        again = up(sim, "cutover")
        assert again.error is None
        assert again.changes() == []
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == gp3_volume
        assert broken(sim, again) == []


def test_up_refresh_after_a_cutover_leaves_the_workload_running() -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=4, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        assert up(sim, "cutover").ok
        refreshed = up(sim, "cutover", refresh=True)
        assert refreshed.ok, refreshed.error
        assert broken(sim, refreshed) == []
        assert sim.world.running_pods("default", "app-gp2-in-tree") == ["app-gp2-in-tree-0"]


def test_keep_snapshots_set_after_the_first_finalize_up_keeps_them() -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=5, driver=DRIVER) as sim:
        for phase in ("precopy", "cutover", "finalize"):
            assert up(sim, phase).ok
        taken = sorted(sim.world.ebs.snapshot_content)
        # Cleanup with a keepSnapshots finalize did not record is refused, naming the fix.
        refused = up(sim, "cleanup", keepSnapshots=True)
        assert "keepSnapshots" in str(refused.error) and refused.changes() == []
        assert up(sim, "finalize", keepSnapshots=True).ok
        result = up(sim, "cleanup", keepSnapshots=True)
        assert result.ok, result.error
        assert sorted(s.name for s in result.changes()) == [f"{NAME}-final-snapshot", f"{NAME}-precopy-snapshot"]
        assert sorted(sim.world.ebs.snapshot_content) == taken
        assert broken(sim, result) == []


@pytest.mark.parametrize("naming", VARIANTS)
def test_rollback_from_precopy_changes_nothing_the_app_uses(naming: str) -> None:
    with Simulation(dev(**variant(naming)), seed=6, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        volume = sim.world.claim_volume("default", "ebs-gp2-claim")
        result = up(sim, "rollback")
        assert result.ok, result.error
        assert broken(sim, result) == []
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == volume


@pytest.mark.parametrize("naming", VARIANTS)
def test_rollback_after_a_cutover_brings_the_app_back_on_its_old_volume(naming: str) -> None:
    with Simulation(dev(**variant(naming)), seed=7, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        source = sim.world.claim_volume("default", "ebs-gp2-claim")
        assert up(sim, "cutover").ok
        if naming == "rehome":
            # The same volume, now served by the CSI PV under the same claim name.
            assert sim.world.claim_volume("default", "ebs-gp2-claim") == source
            result = up(sim, "rollback")
        else:
            sim.world.repoint_workload("default", "app-gp2-in-tree", "ebs-gp2-claim-gp3", "ebs-gp2-claim")
            result = up(sim, "rollback", deleteRestoredClaim=True)
        assert result.ok, result.error
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == source
        # Bound to the in-tree PV again.
        claim = sim.world.kube.get("v1", "PersistentVolumeClaim", "default", "ebs-gp2-claim")
        assert claim is not None and claim["spec"]["volumeName"] == sim.config["migrations"][0]["pv"]
        assert broken(sim, result) == []


def test_rollback_after_a_cutover_that_failed_early_restarts_the_app() -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=8, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        failed = up(sim, "cutover", faults=Faults({(f"{NAME}-detached", "create"): "error"}))
        assert failed.error is not None
        result = up(sim, "rollback", deleteRestoredClaim=True)
        assert result.ok, result.error
        assert broken(sim, result) == []


def test_finalize_before_the_renamed_claim_is_used_stops_with_a_reason_and_deletes_nothing() -> None:
    with Simulation(dev(**variant("copy-rename")), seed=9, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        cutover = sim.with_entries(phase="cutover")
        assert sim.up(cutover).ok  # the user has not repointed the app yet
        sim.config = cutover
        result = sim.up(sim.with_entries(phase="finalize"))
        assert result.error is not None
        assert "default/ebs-gp2-claim-gp3 is not bound" in str(result.error)
        # Refused before the delete phase: the restore objects are untouched, not left terminating.
        assert [s.name for s in result.steps if s.op == "delete"] == []
        snapshots = sim.world.kube.list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", "default")
        assert len(snapshots) == 1
        assert snapshots[0]["metadata"].get("deletionTimestamp") is None


def test_a_cutover_that_failed_late_is_not_recorded_as_done() -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=10, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        failed = up(sim, "cutover", faults=Faults({(f"{NAME}-claim", "create"): "error"}))
        assert failed.error is not None
        assert sim.checkpoint.outputs["migrationPhases"][KEY]["phase"] == "precopy"


def test_one_statefulset_with_two_migrated_claims_loses_no_write() -> None:
    with Simulation(statefulset(), seed=11, driver=DRIVER) as sim:
        report = walk(sim, FORWARD)
    assert walk_problems(report) == []


def test_the_same_seed_gives_the_same_history() -> None:
    def history(seed: int) -> list[Any]:
        with Simulation(dev(**variant("copy-same-name")), seed=seed) as sim:
            up(sim, "precopy")
            up(sim, "cutover")
            return [sim.world.ticks, [(w.tick, w.record) for w in sim.world.writes], sim.world.events]

    assert history(12) == history(12)


CUTOVER_STEPS = [
    "quiesce",
    "detached",
    "final-snapshot",
    "content",
    "volume-snapshot",
    "release-old-claim",
    "claim",
    "scale-back",
]


# The rehome cutover's steps (and its preparation), as resource-name suffixes.
REHOME_STEPS = ["volume-modify", "release-old-claim", "csi-pv"]


@pytest.mark.parametrize("kind", ["error", "timeout"])
@pytest.mark.parametrize("step", CUTOVER_STEPS)
def test_each_cutover_step_failing_once_then_up_again_keeps_every_write(step: str, kind: Any) -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=30 + CUTOVER_STEPS.index(step), driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        failed = up(sim, "cutover", faults=Faults({(f"{NAME}-{step}", "create"): kind}))
        assert failed.error is not None and f"{NAME}-{step}" in str(failed.error)
        assert sim.checkpoint.outputs["migrationPhases"][KEY]["phase"] == "precopy"
        again = up(sim, "cutover")
        assert again.ok, again.error
        assert broken(sim, again) == []


def test_up_refresh_between_every_phase_changes_nothing_and_keeps_every_write() -> None:
    with Simulation(dev(**variant("copy-same-name")), seed=40, driver=DRIVER) as sim:
        for phase in FORWARD:
            assert up(sim, phase).ok
            refreshed = up(sim, phase, refresh=True)
            assert refreshed.ok, refreshed.error
            assert refreshed.changes() == []
            assert broken(sim, refreshed) == []


def test_an_entry_removed_from_the_config_after_precopy_leaves_its_data() -> None:
    with Simulation(dev(), seed=41, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        volume = sim.world.claim_volume("default", "ebs-gp2-claim")
        config = sim.with_entries(phase="precopy")
        config["migrations"] = []
        result = sim.up(config)
        # The protected pre-copy snapshot refuses to leave the stack: the up fails, nothing lost.
        assert "cannot be deleted because it is protected" in str(result.error)
        assert sim.world.claim_volume("default", "ebs-gp2-claim") == volume
        assert [v for v in invariants.only_copies_kept(sim, where="after the removal")] == []


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["precopy", "cutover", "finalize", "cleanup", "rollback"]),
            st.sampled_from([None, *CUTOVER_STEPS, *REHOME_STEPS]),
            st.booleans(),
        ),
        min_size=2,
        max_size=5,
    ),
    naming=st.sampled_from(VARIANTS),
)
def test_random_edits_faults_and_refreshes_never_lose_a_write(edits: list[Any], naming: str) -> None:
    """Whatever the user edits, whichever step fails once, with or without --refresh: a refused
    or failed `up` loses nothing, and every completed phase holds every invariant."""
    with Simulation(dev(**variant(naming)), seed=50, driver=DRIVER) as sim:
        for phase, failing, refresh in edits:
            faults = Faults({(f"{NAME}-{failing}", "create"): "error"}) if failing else None
            # Only a copy's rollback may delete its restored claim (rehome releases it, keeping the volume).
            extra = {"deleteRestoredClaim": phase == "rollback"} if naming != "rehome" else {}
            result = up(sim, phase, refresh=refresh, faults=faults, **extra)
            assert [str(v) for v in invariants.only_copies_kept(sim, where=phase)] == []
            if result.ok:
                assert broken(sim, result, rerun=False) == [], (phase, failing, refresh)
