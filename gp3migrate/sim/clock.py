"""The simulation's clock: every model (EBS, the controllers, the engine's waits) advances in ticks
of TICK_SECONDS; one constant so that a day of EBS rate limits and a minute of a Pulumi await agree.

A step that waits (a provider's await, a gate's poll) lets time pass through `wait` / `sleep`, not
`world.tick`: inside a step the program's scheduling loop runs (gp3migrate/sim/program.py) this
suspends the step and lets the loop run other ready steps and move the world, as the real engine's
steps wait in parallel (pulumi `pkg/resource/deploy/step_executor.go` workers); outside one (the
deletes after the program, a refresh) it ticks the world in place.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

TICK_SECONDS = 5
DAY_TICKS = 24 * 3600 // TICK_SECONDS

# Set in a step's own thread by the scheduling loop: (world, ticks) -> returns once they passed;
# `until`: (world, ready) -> returns once ready() holds.
_step = threading.local()


def set_yield(
    hook: Callable[[Any, int], None] | None, until: Callable[[Any, Callable[[], bool]], None] | None = None
) -> None:
    _step.hook = hook
    _step.until = until


def wait(world: Any, ticks: int = 1) -> None:
    """Let `ticks` ticks pass for the caller; other steps may run meanwhile."""
    hook = getattr(_step, "hook", None)
    if hook is None:
        world.tick(ticks)
    else:
        hook(world, ticks)


def sleep(world: Any, seconds: float) -> None:
    """`time.sleep` on the simulated clock (at least one tick), for the gates' polls."""
    wait(world, max(1, math.ceil(seconds / TICK_SECONDS)))


def wait_until(world: Any, ready: Callable[[], bool]) -> None:
    """Suspend the caller until `ready()` holds (a worker freed by another step); other steps run
    meanwhile, and the world ticks only when none can. Outside a step, tick until it holds."""
    until = getattr(_step, "until", None)
    if until is not None:
        until(world, ready)
        return
    while not ready():
        world.tick()


class BotocoreTime:
    """Stands for the `time` module in `botocore.endpoint`, whose retry handler sleeps the retry's
    delay with `time.sleep` (botocore `endpoint.py` Endpoint._needs_retry; the delay is the legacy
    mode's `retryhandler.py` delay_exponential or the standard mode's `retries/standard.py`
    ExponentialBackoff): the sleep passes on the simulated clock, at least one tick."""

    def __init__(self, world: Any):
        self.world = world

    def sleep(self, seconds: float) -> None:
        sleep(self.world, seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
