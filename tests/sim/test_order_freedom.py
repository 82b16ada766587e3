"""The simulated engine runs, at each point, any step whose dependencies are met, in an order the
seed chooses (issue 21 item 2): a plan that is safe only because its steps happen to be declared in
the right order is caught.

The real engine runs every step whose dependencies are met in parallel (pulumi/pulumi
`pkg/resource/deploy/step_executor.go`), so two steps with no edge between them may complete in
either order; here `gp3migrate/sim/program.py` `_SchedulingLoop` picks among every registration whose
dependencies have completed, and `engine.py` `Deployment._drawn` among the deletes whose
dependents are gone.

What this does not prove: that every missing edge is caught (a handful of seeds draws a handful of
orders; issue 21 item 6 plants more defects). The tests of the order alone run with steps whole
once picked (`program.OVERLAP = False`): with overlap (tests/sim/test_overlap.py) the final snapshot
of the planted defect always runs while the detach gate polls, so the order no longer decides.
"""

from typing import Any

import pytest

from gp3migrate.planning.strategies import common
from gp3migrate.sim import invariants, program
from gp3migrate.sim.scenario import Simulation
from tests.sim.test_scenarios import broken, dev, up, variant

SEEDS = range(8)
PREFIX = "migrate-default-ebs-gp2-claim-"


def cutover(seed: int) -> tuple[list[str], list[str]]:
    """The copy strategy's cutover on the dev stack: the cutover's steps in the order they ran,
    and every invariant it broke."""
    with Simulation(dev(**variant("copy-same-name")), seed=seed) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert result.ok, result.error
        order = [s.name.removeprefix(PREFIX) for s in result.steps if s.name.startswith(PREFIX)]
        return order, broken(sim, result, rerun=False)


@pytest.fixture
def sequential(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(program, "OVERLAP", False)


@pytest.fixture
def final_snapshot_after_quiesce(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted defect: the final snapshot waits for the scale to 0 instead of the volume's
    detach (the one proof that nothing writes any more). Declared after both, so a sequential
    engine in declaration order would never show it."""
    original = common.snapshot

    def snapshot(ctx: Any, purpose: str, *, after: tuple[str, ...], downtime: bool = False) -> Any:
        if purpose.startswith("final"):
            after = tuple("quiesce" if dep == "detached" else dep for dep in after)
        return original(ctx, purpose, after=after, downtime=downtime)

    monkeypatch.setattr(common, "snapshot", snapshot)


def test_the_plan_as_declared_holds_for_every_seed() -> None:
    for seed in SEEDS:
        _, found = cutover(seed)
        assert not found, f"seed {seed}: {found}"


@pytest.mark.usefixtures("final_snapshot_after_quiesce", "sequential")
def test_a_missing_edge_loses_writes_under_some_seed() -> None:
    outcomes = {seed: cutover(seed) for seed in SEEDS}
    lost = [seed for seed, (_, found) in outcomes.items() if any(f.startswith(invariants.NO_WRITE_LOST) for f in found)]
    held = [seed for seed, (_, found) in outcomes.items() if not found]
    assert lost, "no seed ran the final snapshot before the detach"
    # The seed decides: the same defect goes unseen when the detach happens to complete first.
    assert held, "every seed lost writes: the order is fixed, not drawn"
    for seed in lost:
        order = outcomes[seed][0]
        assert order.index("final-snapshot") < order.index("detached"), f"seed {seed}: {order}"


@pytest.mark.usefixtures("final_snapshot_after_quiesce", "sequential")
@pytest.mark.xfail(
    strict=True,
    reason="not shown since issue 24's clock (durations table, the provider host's 4 workers, the batched "
    "detach poll): in no seed 0-40 does the copy cutover's `content` step come before `detached`, even with "
    "the detach made 60-120 s; the example needs a pair the new clock still overlaps (left open)",
)
def test_a_step_ready_later_may_complete_before_one_ready_earlier() -> None:
    """`content` becomes ready only once the final snapshot completes, after the detach is already
    ready; the real engine may still finish it first (the detach wait is long). Before the loop
    waited for every ready registration to reach it, the one ready earlier always ran first."""
    orders = [cutover(seed)[0] for seed in SEEDS]
    assert any(order.index("content") < order.index("detached") for order in orders), orders


def test_every_step_runs_after_its_dependencies_whatever_the_seed() -> None:
    for seed in SEEDS:
        with Simulation(dev(**variant("copy-same-name")), seed=seed) as sim:
            assert up(sim, "precopy").ok
            result = up(sim, "cutover")
            assert result.ok, result.error
            position = {s.urn: i for i, s in enumerate(result.steps) if s.op != "delete"}
            for resource in sim.checkpoint.resources:
                for dep in resource.depends_on():
                    if dep in position and resource.urn in position:
                        assert position[dep] < position[resource.urn], f"seed {seed}: {resource.name} before {dep}"


def test_the_deletes_after_the_program_run_in_a_drawn_order_dependents_first() -> None:
    """Finalize lets the cutover's gates and restore objects go: each delete waits only for its
    condemned dependents (`ScheduleDeletes` deletes each antichain in parallel)."""
    orders = []
    for seed in range(4):
        with Simulation(dev(**variant("copy-same-name")), seed=seed) as sim:
            for phase in ("precopy", "cutover"):
                assert up(sim, phase).ok
            dependencies = {r.name.removeprefix(PREFIX): r.depends_on() for r in sim.checkpoint.resources}
            urns = {r.name.removeprefix(PREFIX): r.urn for r in sim.checkpoint.resources}
            result = up(sim, "finalize")
            assert result.ok, result.error
            order = [s.name.removeprefix(PREFIX) for s in result.steps if s.op == "delete"]
        for position, name in enumerate(order):
            for later in order[position + 1 :]:
                assert urns[name] not in dependencies[later], f"seed {seed}: {name} went before its dependent {later}"
        orders.append(order)
    assert len({tuple(order) for order in orders}) > 1, orders
