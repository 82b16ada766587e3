"""The walk's "no change on rerun" check in a forked copy of the process (gp3migrate/sim/rerun_check.py):
it finds what the in-place check finds, the copy is really forked, at most one runs at a time, and
a copy that fails is an error of the simulation, not a verdict.

What this does not prove: that a real `pulumi preview` run twice agrees with itself (the engine
model's previews stand in).
"""

import os
import time
from typing import Any

import pytest

from components import gate_providers
from gp3migrate.sim import invariants, rehearsal, rerun_check
from gp3migrate.sim.rehearsal import walk
from gp3migrate.sim.scenario import Simulation
from tests.stacks import dev_config

pytestmark = pytest.mark.skipif(not rerun_check.CAN_FORK, reason="os.fork is POSIX only: the check runs in place")


def _rerun_violations(rehearsal: Any) -> list[tuple[str, str]]:
    return [
        (p.phase, str(v))
        for p in rehearsal.phases
        for v in p.violations
        if v.invariant == invariants.NO_CHANGE_ON_RERUN
    ]


@pytest.fixture
def diff_reads_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted defect 08: a one-way step's diff compares the outputs it added too, so every rerun
    plans it again."""

    def diff(self: Any, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> gate_providers.DiffResult:
        changed = sorted(
            k
            for k in {**olds, **news}
            if not k.startswith("__") and k not in gate_providers._NOT_IDENTITY and olds.get(k) != news.get(k)
        )
        return gate_providers.DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    monkeypatch.setattr(gate_providers.OneWayStep, "diff", diff)


def test_the_forked_check_finds_what_the_check_in_place_finds(
    diff_reads_outputs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[int] = []
    live: list[int] = []
    most_at_once = [0]
    real_fork, real_waitpid = os.fork, os.waitpid

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
            live.append(pid)
            most_at_once[0] = max(most_at_once[0], len(live))
        return pid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        out = real_waitpid(pid, options)
        live.remove(pid)
        return out

    monkeypatch.setattr(rerun_check.os, "fork", fork)
    monkeypatch.setattr(rerun_check.os, "waitpid", waitpid)
    with Simulation(dev_config(), seed=1) as sim:
        in_background = walk(sim)
    assert len(forked) == len(in_background.phases) == 4
    assert most_at_once == [1] and live == []

    monkeypatch.setattr(rerun_check, "CAN_FORK", False)
    with Simulation(dev_config(), seed=1) as sim:
        in_place = walk(sim)
    assert len(forked) == 4

    found = _rerun_violations(in_background)
    assert found == _rerun_violations(in_place)
    # Every phase after the first one-way step plans it again, in both runs.
    assert [phase for phase, _ in found] == [
        "precopy",
        "precopy",
        "cutover",
        "cutover",
        "finalize",
        "finalize",
        "cleanup",
        "cleanup",
    ]
    assert all("preview plans replace " in text or "preview --refresh plans replace " in text for _, text in found)


def test_a_check_that_fails_in_its_copy_stops_the_walk_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(sim: Any, config: dict[str, Any]) -> list[invariants.Violation]:
        raise ValueError("planted failure in the rerun check")

    monkeypatch.setattr(invariants, "rerun_plans_nothing", broken)
    with Simulation(dev_config(), seed=1) as sim, pytest.raises(rerun_check.RerunCheckError) as raised:
        walk(sim, ("precopy",))
    assert "the rerun check failed in its process" in str(raised.value)
    assert "ValueError: planted failure in the rerun check" in str(raised.value)


def test_a_walk_that_fails_stops_its_copy_and_raises_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or any error) during the next `up`: the copy still running is stopped and reaped, and
    the walk's own error is what the caller sees."""
    started: list[int] = []
    real_fork, real_apply = os.fork, rehearsal.apply_up

    def fork() -> int:
        pid = real_fork()
        if pid == 0:
            time.sleep(60)  # a check that would still be running
        started.append(pid)
        return pid

    def apply_up(*args: Any, **kwargs: Any) -> Any:
        if started:
            raise KeyboardInterrupt
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(rerun_check.os, "fork", fork)
    monkeypatch.setattr(rehearsal, "apply_up", apply_up)
    begun = time.monotonic()
    with Simulation(dev_config(), seed=1) as sim, pytest.raises(KeyboardInterrupt):
        walk(sim)
    assert len(started) == 1 and time.monotonic() - begun < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(started[0], os.WNOHANG)  # reaped: no zombie left
