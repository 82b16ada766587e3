"""A workload's downtime does not grow with its wave when the wave's cutover runs as `up`s of at
most 4 whole workloads (issue 24 item 4), and does grow when it runs in one `up`, because every
gate holds one of the dynamic-provider host's 4 workers (pulumi `dynamic/__main__.py` main():
`grpc.server(futures.ThreadPoolExecutor(max_workers=4))`; gp3migrate/sim/providers.py WorkerPool).

Downtime is in simulated seconds, which the seed fixes: these are not wall-clock assertions."""

from __future__ import annotations

import pytest

from gp3migrate.sim import providers
from gp3migrate.sim.wave_rehearsal import measure


def test_a_wave_cut_over_four_workloads_per_up_keeps_each_window_near_a_lone_workloads() -> None:
    lone = measure(1, per_up=4)
    split = measure(12, per_up=4)
    together = measure(12, per_up=None)

    for run in (lone, split, together):
        assert run.problems == [], run.problems
        assert len(run.seconds) == run.workloads and min(run.seconds.values()) > 0, run.seconds
    assert split.ups == 3 and together.ups == 1
    # Split: the longest window at most 1.5x a lone workload's.
    assert split.max <= 1.5 * lone.max, (split.seconds, lone.seconds)
    # In one `up` the gates queue for the host's 4 workers, and the longest window is longer.
    assert together.waited_for_worker > 0
    assert together.max > 1.5 * lone.max, (together.seconds, lone.seconds)


def test_without_the_worker_limit_one_up_is_as_short_as_the_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """The growth above is the host's pool, not the number of steps: with unbounded workers (the
    simulation before issue 24) the same 12 workloads in one `up` stay within 1.5x."""
    monkeypatch.setattr(providers.durations, "DYNAMIC_PROVIDER_WORKERS", 1000)
    lone = measure(1, per_up=None)
    together = measure(12, per_up=None)
    assert together.problems == [] and together.waited_for_worker == 0
    assert together.max <= 1.5 * lone.max, (together.seconds, lone.seconds)
