"""Generated worlds walked (issue 21 item 1): clusters and stack files as discovery meets them
(gp3migrate/sim/generated_worlds.py), each walked through random legal phase sequences with
injected faults, refreshes, edits and rollbacks, every invariant checked after every `up`.

A failing example names the command that replays it. The default run is small (EXAMPLES, a few
seconds each); `--hypothesis-profile=deep` runs the profile's max_examples (tests/conftest.py).

What this does not prove: shapes the generator does not draw (Block volumes, io1/io2/standard
sources, `encrypt`, ReadOnlyMany, several workloads per claim), a workload's claims in several
zones, and the order freedom of the real engine (issue 21 item 2).
"""

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gp3migrate.planning.strategies import rehome
from gp3migrate.sim import generated_worlds
from gp3migrate.sim.generated_worlds import Walk

DEEP = settings.get_current_profile_name() == "deep"
EXAMPLES = 4
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def failure_message(walked: Walk) -> str:
    lines = [f"replay: {walked.replay}", *walked.world.describe(), "walk: " + "; ".join(walked.moves)]
    return "\n".join([*lines, *walked.failures])


@settings(
    max_examples=settings.get_profile("deep").max_examples if DEEP else EXAMPLES,
    deadline=None,
    derandomize=not DEEP,
    database=None,
    # Each example is a whole world: a shrunk seed is another world, not a smaller one.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
@given(world_seed=SEEDS, walk_seed=SEEDS)
def test_every_invariant_holds_after_every_up_of_a_generated_world(world_seed: int, walk_seed: int) -> None:
    walked = generated_worlds.run(world_seed, walk_seed)
    assert walked.failures == [], failure_message(walked)


def test_generated_worlds_are_valid_stacks_with_the_shapes_real_clusters_have() -> None:
    """Over a fixed set of seeds the generator draws every shape it promises, each entry valid."""
    from gp3migrate.config.migration_entry import read_entry_or_none

    seen: dict[str, set[Any]] = {k: set() for k in ("kind", "fs", "encrypted", "strategy", "quiesce", "zero")}
    sizes = []
    for seed in range(60):
        world = generated_worlds.generate(seed)
        strategies = set()
        for entry in world.config["migrations"]:
            assert read_entry_or_none(entry, region=world.config["region"]) is not None, entry
            seen["kind"].add(entry["workload"]["kind"])
            seen["fs"].add(entry["fsType"])
            seen["encrypted"].add(entry["encrypted"])
            seen["quiesce"].add(entry["quiesce"])
            seen["zero"].add(entry["workload"]["replicas"] == 0)
            strategies.add(entry["strategy"])
            sizes.append(entry["sizeGiB"])
            if entry["encrypted"]:
                assert entry["kmsKeyId"] in world.config["kmsKeyArns"]
        seen["strategy"] |= {len(strategies) > 1}
        assert len(world.config["migrations"]) <= generated_worlds.MAX_CLAIMS
        assert generated_worlds.generate(seed) == world  # the seed alone rebuilds it
    assert seen == {
        "kind": {"Deployment", "StatefulSet"},
        "fs": {"ext4", "xfs", "ext3"},
        "encrypted": {True, False},
        "strategy": {True, False},
        "quiesce": {"scale", "manual"},
        "zero": {True, False},
    }
    assert min(sizes) < 10 and max(sizes) > 4096


# Generated worlds whose walk takes a rehome of an xfs or ext3 volume through its cutover (found
# by running the generator; any such pair shows it).
FS_SEEDS = ((9, 63),)


@pytest.mark.parametrize(("world_seed", "walk_seed"), FS_SEEDS)
def test_a_planted_constant_fs_type_is_caught_and_names_its_replay(
    world_seed: int, walk_seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect the dev stack cannot show (its volume is ext4): the CSI PV's recorded fsType
    replaced by a constant. Generated worlds with xfs volumes catch it."""
    world = generated_worlds.generate(world_seed)
    assert {
        e["fsType"] for e in world.config["migrations"] if e["strategy"] == "rehome" and e["workload"]["replicas"]
    } - {"ext4"}
    planted = rehome.csi_persistent_volume

    def constant_fs_type(plan: Any, reclaim_policy: str = "Retain") -> dict[str, Any]:
        body = planted(plan, reclaim_policy)
        body["spec"]["csi"]["fsType"] = "ext4"
        return body

    monkeypatch.setattr(rehome, "csi_persistent_volume", constant_fs_type)
    walked = generated_worlds.run(world_seed, walk_seed)
    # Caught by the invariant that names it (a CSI PV naming another filesystem than its volume's)
    # or by its effect (the pods cannot mount, so the workload does not run); which one comes first
    # depends on how the walk's steps interleave (overlap, issue 21 item 5).
    named = ("every volume mounts with its own filesystem", "the workload runs after the phase")
    assert any(n in f for f in walked.failures for n in named), walked.failures
    message = failure_message(walked)
    assert message.startswith(f"replay: gp3migrate simulate --world-seed {world_seed} --walk-seed {walk_seed}\n")


@pytest.mark.xfail(strict=True, reason="found by generated world 0: precopy after a cutover that failed part-way")
def test_precopy_again_after_a_cutover_that_failed_part_way_leaves_the_workload_running() -> None:
    """A rehome cutover that failed at its claim step (the old claim already released), then the
    stack file set back to precopy, the phase the program last applied: the `up` succeeds without
    a warning, deletes the cutover's step records, and leaves the workload at 0 with no claim (the
    volume is kept by Retain). Found by world 0 of the first generator, whose walk allowed this
    edit; the walk now retries a failed phase (README: "finish it first"), so this pins it."""
    from gp3migrate.sim.scenario import Faults, Simulation
    from tests.sim.test_scenarios import NAME, broken, dev, up

    with Simulation(dev(), seed=7) as sim:
        assert up(sim, "precopy").ok
        assert up(sim, "cutover", faults=Faults({(f"{NAME}-claim", "create"): "error"})).error is not None
        again = up(sim, "precopy")
        assert again.error is not None or again.warnings, "precopy over a half-done cutover passed silently"
        assert broken(sim, again, rerun=False) == []
