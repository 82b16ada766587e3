"""Steps overlap in time (issue 21 item 5): a step that waits lets the other ready steps run.

The real engine runs every step whose dependencies are met at once, each in its own goroutine
(pulumi/pulumi `pkg/resource/deploy/step_executor.go`, `pulumi up --parallel`), so while a gate
polls or a provider awaits its object, the world moves under the other steps too. The simulation
did that only between steps: a step, once picked, ran whole, and its waits ticked the world with
nothing else in flight. Now each RPC runs in a thread that yields at every wait
(gp3migrate/sim/clock.py `wait`), and the loop picks, seeded, among the new RPCs and the waiting
steps whose ticks have passed; the world ticks when every step in flight waits
(gp3migrate/sim/program.py `_SchedulingLoop`). `program.OVERLAP = False` is the loop before.

What this does not prove: the real engine's timing. Steps that do not wait still take no time, and
two steps never run between the same two ticks in parallel: they interleave at waits.
"""

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from gp3migrate.checks import preconditions
from gp3migrate.sim import invariants, program
from gp3migrate.sim.providers import EbsSnapshotProvider
from gp3migrate.sim.scenario import Simulation

# The planted missing edge (the final snapshot after the scale to 0, not the detach), shared as a fixture.
from tests.sim.test_order_freedom import final_snapshot_after_quiesce  # noqa: F401
from tests.sim.test_scenarios import broken, dev, up, variant

SEEDS = range(8)


@pytest.fixture
def sequential() -> Iterator[None]:
    program.OVERLAP = False
    try:
        yield
    finally:
        program.OVERLAP = True


def cutover(strategy: str, seed: int) -> list[str]:
    """Every invariant the cutover broke (the `up`'s error first, if it failed)."""
    with Simulation(dev(**variant(strategy)), seed=seed) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        return ([f"failed: {result.error}"] if not result.ok else []) + broken(sim, result, rerun=False)


@pytest.mark.parametrize("strategy", ["copy-same-name", "rehome"])
def test_the_plan_as_declared_holds_for_every_seed_with_overlap(strategy: str) -> None:
    for seed in SEEDS:
        assert cutover(strategy, seed) == [], f"seed {seed}"


@pytest.mark.usefixtures("final_snapshot_after_quiesce")
def test_a_step_starts_while_a_gate_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The final snapshot is taken between the detach gate's first poll and its last: the two
    are in flight together."""
    spans: list[tuple[str, int, int]] = []
    wait_until_detached, create = preconditions.wait_until_detached, EbsSnapshotProvider.create

    def gate(*args: Any, **kwargs: Any) -> Any:
        start = world.ticks
        try:
            return wait_until_detached(*args, **kwargs)
        finally:
            spans.append(("detached", start, world.ticks))

    def snapshot(self: EbsSnapshotProvider, new: Any, *, preview: bool) -> Any:
        spans.append((new.name, world.ticks, world.ticks))
        return create(self, new, preview=preview)

    monkeypatch.setattr(preconditions, "wait_until_detached", gate)
    monkeypatch.setattr(EbsSnapshotProvider, "create", snapshot)
    with Simulation(dev(**variant("copy-same-name")), seed=0) as sim:
        world = sim.world
        assert up(sim, "precopy").ok
        up(sim, "cutover")
    (_, gate_start, gate_end) = next(s for s in spans if s[0] == "detached")
    final = next(s for s in spans if s[0].endswith("final-snapshot"))
    assert gate_start <= final[1] < gate_end, spans


@pytest.mark.usefixtures("final_snapshot_after_quiesce")
def test_a_snapshot_beside_a_polling_gate_loses_writes_under_every_seed_with_overlap(
    sequential: None,
) -> None:
    """Sequentially the defect shows only under the seeds that pick the snapshot before the gate;
    with overlap, the snapshot runs during the gate's polling whatever the order of the picks, as
    on the real engine, where the detach takes minutes and the snapshot starts at once."""
    atomic = {seed: cutover("copy-same-name", seed) for seed in SEEDS}
    program.OVERLAP = True
    overlapping = {seed: cutover("copy-same-name", seed) for seed in SEEDS}

    def lost(found: list[str]) -> bool:
        return any(f.startswith(invariants.NO_WRITE_LOST) for f in found)

    only_with_overlap = [s for s in SEEDS if lost(overlapping[s]) and not atomic[s]]
    assert only_with_overlap, (atomic, overlapping)
    assert all(lost(overlapping[s]) for s in SEEDS), overlapping


@pytest.fixture
def release_without_detach(monkeypatch: pytest.MonkeyPatch) -> None:
    """The missing edges: rehome's CSI PV and release of the old claim wait for the scale to 0, not
    for the detach gate, so the CSI PV, the release, the claim and the scale-back may run while it
    polls (with the CSI PV's edge kept, the claim would still wait for the gate through it). The
    whole defect: the release's own re-check that the volume is still detached (its window's
    `volumeId`, issue 22 item 3) goes too, or it would refuse before the gate is outrun."""
    from gp3migrate.planning.strategies import rehome

    original = rehome._cutover

    def without_detach(step: Any) -> Any:
        window = {k: v for k, v in (step.body.get("window") or {}).items() if k not in ("volume_id", "region")}
        body = {k: v for k, v in step.body.items() if k != "window"}
        if window:
            body["window"] = window
        return dataclasses.replace(step, after=("quiesce", "retain"), body=body)

    def cutover_steps(ctx: Any) -> list[Any]:
        return [
            without_detach(s)
            if s.name == "release-old-claim"
            else dataclasses.replace(s, after=("quiesce",))
            if s.name == "csi-pv"
            else s
            for s in original(ctx)
        ]

    monkeypatch.setattr(rehome, "_cutover", cutover_steps)


@pytest.mark.usefixtures("release_without_detach")
def test_a_chain_running_beside_a_polling_gate_defeats_it_only_with_overlap(sequential: None) -> None:
    """Sequentially the gate and the release each run whole, either order is safe, and every seed
    holds. With overlap, the released claim's successors run while the gate polls, the scale-back
    attaches the volume again, and the gate never sees it detached: the `up` fails under some
    seeds, as it could on the real engine."""
    atomic = {seed: cutover("rehome", seed) for seed in SEEDS}
    assert all(found == [] for found in atomic.values()), atomic
    program.OVERLAP = True
    overlapping = {seed: cutover("rehome", seed) for seed in SEEDS}
    failed = [s for s, found in overlapping.items() if found and "detached" in found[0] and "in-use" in found[0]]
    assert failed, overlapping


@pytest.fixture
def volume_snapshot_before_content(monkeypatch: pytest.MonkeyPatch) -> None:
    """The VolumeSnapshot no longer waits for its VolumeSnapshotContent."""
    from gp3migrate.planning.strategies import copy as copy_strategy

    original = copy_strategy._cutover

    def cutover_steps(ctx: Any, final: str) -> list[Any]:
        return [dataclasses.replace(s, after=()) if s.name == "volume-snapshot" else s for s in original(ctx, final)]

    monkeypatch.setattr(copy_strategy, "_cutover", cutover_steps)


@pytest.mark.usefixtures("volume_snapshot_before_content")
def test_an_await_no_longer_times_out_on_what_a_parallel_step_creates(sequential: None) -> None:
    """The other way round: sequentially, a VolumeSnapshot created before its content waits out
    its whole timeout, the content's step never running meanwhile; the real engine creates the
    content while the snapshot awaits `readyToUse` (pulumi-kubernetes `pulumi.com/waitFor`), and so
    does the simulation now."""
    atomic = [cutover("copy-same-name", seed) for seed in SEEDS]
    assert any(found and "was not ready" in found[0] for found in atomic), atomic
    program.OVERLAP = True
    assert [cutover("copy-same-name", seed) for seed in SEEDS] == [[] for _ in SEEDS]
