"""The "no change on rerun" check of a walk, on the machine's second core.

After each `up`, invariants.rerun_plans_nothing previews the same stack file twice (with and
without `--refresh`): two of the four evaluations of the program per `up`, 45% of a fleet
rehearsal's CPU (docs/benchmark.md). Those previews read the state and the world as the `up` left
them and change nothing the walk goes on with, so a walk runs them in a forked copy of the
process (the copy sees exactly what the `up` left, copy-on-write) while it goes on with the next
`up`; their violations join that `up`'s report before the walk returns.

At most one copy runs at a time: the walk waits for the last one before it forks the next, so a
rehearsal uses two cores at most. Where the platform cannot fork (`os.fork` is POSIX only), the
check runs in place, as before.

A preview's one effect on the world is the EC2 calls it makes: they take tokens from the throttling
buckets (gp3migrate/sim/ebs.py). Run in a copy, they do not: the next `up` starts with the buckets
the last `up` left, as it would if the previews had run long enough before it for the buckets to
refill. A real preview's calls come out of the same account's buckets, so the in-place run is the
stricter one; both are orders the real world allows.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gp3migrate.sim import invariants

if TYPE_CHECKING:
    from gp3migrate.sim.scenario import Simulation

CAN_FORK = hasattr(os, "fork")


class RerunCheckError(RuntimeError):
    """The copy running the check failed: a fault of the simulation, not a violation."""


@dataclass
class _Running:
    pid: int
    read_end: int
    into: list[invariants.Violation]

    def wait(self) -> None:
        with os.fdopen(self.read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(self.pid, 0)
        if not payload:
            raise RerunCheckError(f"the rerun check's process ended with status {status} and sent nothing")
        verdict, value = pickle.loads(payload)
        if verdict != "ok":
            raise RerunCheckError(f"the rerun check failed in its process:\n{value}")
        self.into.extend(value)

    def abandon(self) -> None:
        """Stop the copy and reap it, reading nothing (the walk is failing already)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.read_end)


def _child(sim: Simulation, config: dict[str, Any], write_end: int) -> None:
    # Never returns: the copy must not run the parent's exit handlers or flush its buffers twice.
    status = 0
    try:
        # Objects the copy inherited are not collected by it: freezing keeps the collector from
        # walking (and so copying) every page of the parent's heap.
        gc.freeze()
        try:
            payload: tuple[str, Any] = ("ok", invariants.rerun_plans_nothing(sim, config))
        except BaseException:
            payload = ("error", traceback.format_exc())
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(pickle.dumps(payload))
    except BaseException:
        status = 1
    finally:
        os._exit(status)


class RerunChecks:
    """The rerun checks of one walk: `submit` after each `up` that succeeded, `drain` (or leave
    the `with` block) before the walk's verdict is read."""

    def __init__(self, *, background: bool | None = None):
        self.background = CAN_FORK if background is None else background
        self._running: _Running | None = None

    def submit(self, sim: Simulation, config: dict[str, Any], into: list[invariants.Violation]) -> None:
        """Check that re-running `config` plans nothing; the violations go into `into`."""
        self.drain()
        if not self.background:
            into.extend(invariants.rerun_plans_nothing(sim, config))
            return
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(sim, config, write_end)
        os.close(write_end)
        self._running = _Running(pid, read_end, into)

    def drain(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.wait()

    def __enter__(self) -> RerunChecks:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.drain()
            return
        # An interrupt or a failure of the walk: its own error is the one to see, not the copy's.
        running, self._running = self._running, None
        if running is not None:
            running.abandon()
