"""What `simulate` reports about one `up` (gp3migrate/sim/rehearsal.py): after a failed `up` no
invariant is reported as held that was not checked, and downtime is counted from the workload's
actual stop, not from pods that are down for another reason.

What this does not prove: how long a real pod takes to stop or start (the world's ticks stand in).
"""

from gp3migrate.sim import invariants
from gp3migrate.sim.rehearsal import DowntimeMeter, PhaseReport, Rehearsal, apply_up, render, render_up, verdicts
from gp3migrate.sim.scenario import Faults, Simulation, UpResult
from tests.stacks import dev_config

NAME = "migrate-default-ebs-gp2-claim"
APP = "default/app-gp2-in-tree"


def phase(sim: Simulation, name: str) -> dict:
    return sim.with_entries(phase=name)


def test_a_failed_precopy_checks_what_it_left_says_what_it_did_not_check_and_counts_no_downtime() -> None:
    with Simulation(dev_config(), seed=3) as sim:
        faults = Faults({(f"{NAME}-safety-snapshot", "create"): "error"})

        report = apply_up(sim, phase(sim, "precopy"), "precopy", faults=faults)

        assert not report.result.ok and faults.fired, report.result.error
        assert verdicts(report) == [
            (invariants.NO_WRITE_LOST, "ok", "checked against what the failed up left"),
            (invariants.NO_ONLY_COPY_DELETED, "ok", "checked against what the failed up left"),
            (invariants.WORKLOAD_RUNS, "not checked", "the up failed: a failed cutover may leave the workload stopped"),
            (invariants.SERVED_BY_SOURCE, "ok", "checked against what the failed up left"),
            (invariants.OWN_FILESYSTEM, "ok", "checked against what the failed up left"),
            (invariants.RETAIN_BEFORE_ONE_WAY, "ok", "checked against what the failed up left"),
            (invariants.KEPT_WHEN_LET_GO, "ok", "checked against what the failed up left"),
            (invariants.ONE_DEFAULT_CLASS, "ok", "checked against what the failed up left"),
            (invariants.SOURCE_KEPT_UNTIL_COPY_IN_USE, "ok", "checked against what the failed up left"),
            (invariants.RESTORE_KEPT_UNTIL_COPY_BOUND, "ok", "checked against what the failed up left"),
            (invariants.ONLY_OWN_CLAIMS_DELETED, "ok", "checked against what the failed up left"),
            (
                invariants.DRIVER_CAN_MANAGE,
                "not checked",
                "the up failed: it may have stopped before tagging the volume for the driver",
            ),
            (invariants.PV_IN_VOLUME_ZONE, "ok", "checked against what the failed up left"),
            (
                invariants.PHASE_COMPLETES,
                "not checked",
                "checked by --walk only: a refusal of this stack file may be by design",
            ),
            (invariants.NO_CHANGE_ON_RERUN, "not checked", "the up failed: the next up has work left to do"),
        ]
        # No step stopped the app: no downtime, though the up failed.
        assert report.downtime_seconds == {APP: 0}
        text = render(Rehearsal("dev", 3, [report]), 5)
        assert "  [not checked] a second up with no edit plans no change (the up failed: " in text
        assert "  [ok] a second up with no edit plans no change\n" not in text
        assert text.endswith("an invariant broke or an up failed (exit 1)")


def test_downtime_counts_from_the_stop_not_from_pods_down_for_another_reason() -> None:
    with Simulation(dev_config(), seed=3) as sim:
        namespace, app = APP.split("/")
        config = phase(sim, "precopy")
        with DowntimeMeter(sim, config) as meter:
            # GIVEN the app's pod is gone for a reason of its own (evicted), nothing stopped it ...
            for pod in sim.world.running_pods(namespace, app):
                sim.world.kube.delete("v1", "Pod", namespace, pod)
            sim.world.tick(1)
            # ... no downtime is counted for it
            assert meter.ticks[APP] == 0
            # WHEN something stops the workload, every tick it is down from then on counts
            sim.world.scale_workload(namespace, app, 0)
            sim.world.tick(4)
            assert meter.ticks[APP] == 4
            sim.world.scale_workload(namespace, app, 1)
            sim.world.tick(10)
        assert len(sim.world.running_pods(namespace, app)) == 1
        assert meter.ticks[APP] == 4  # up again within the tick it was scaled back
        assert meter.seconds[APP] == 4 * 5  # in simulated seconds, as the report shows it


def test_a_copy_cutovers_preview_lists_every_create_the_up_then_makes() -> None:
    config = dev_config()
    for entry in config["migrations"]:
        entry.update(strategy="copy", claimNaming="same-name")
    with Simulation(config, seed=3) as sim:
        assert apply_up(sim, phase(sim, "precopy"), "precopy").result.ok

        report = apply_up(sim, phase(sim, "cutover"), "cutover")

        assert report.preview_error is None and report.result.ok, (report.preview_error, report.result.error)
        planned = sorted(s.name for s in report.plan if s.op == "create")
        made = sorted(s.name for s in report.result.steps if s.op == "create")
        # Those waiting on the final snapshot's id (unknown in a preview) are listed too.
        assert planned == made
        assert [n.removeprefix(NAME + "-") for n in planned] == [
            "claim",
            "content",
            "detached",
            "final-snapshot",
            "quiesce",
            "release-old-claim",
            "scale-back",
            "volume-snapshot",
        ]


def test_a_region_outside_the_price_table_shows_no_price_rather_than_zero() -> None:
    """Found by a generated world in ap-southeast-2 (volume_types/prices.py has no row for it)."""
    result = UpResult([], None, [], [])
    migrations = {
        "a/known": {"strategy": "rehome", "monthlyPriceGp2": 1.19, "monthlyPriceGp3": 0.952},
        "a/unknown": {"strategy": "rehome", "monthlyPriceGp2": None, "monthlyPriceGp3": None},
    }
    lines = render_up(1, PhaseReport("precopy", [], result, {}, [], migrations=migrations), 5)
    assert "$1.190 -> $0.952 a month" in next(line for line in lines if "a/known" in line)
    assert "price not in the table for this region" in next(line for line in lines if "a/unknown" in line)
