"""How `advance` splits a wave's downtime into `pulumi up`s, so that a workload's downtime does not
grow with the number of workloads cut over with it.

Every gate of a cutover (stop, wait until detached, release, bound, start) is a dynamic resource,
and all of them are served by one Python provider process whose gRPC server has 4 worker threads
(pulumi SDK `sdk/python/lib/pulumi/dynamic/__main__.py`, `main()`:
`grpc.server(futures.ThreadPoolExecutor(max_workers=4))`). A gate holds its worker while it waits.
A volume's gates run one after another (gp3migrate/planning/strategies/), so a window needs one
worker per volume at a time: with at most 4 volumes in windows per `up`, no gate queues behind
another workload's wait, and each workload is down for what it alone would take. The wave takes
more `up`s, not longer windows. A workload is never split (its claims stop and start together:
gp3migrate/planning/step_graph.py); one with more than 4 claims gets an `up` of its own, where its
volumes queue only behind each other, as they would in a wave of one.

Phases without a window (precopy, finalize, cleanup) run as one `up`: their steps wait for
workers too, but no application is stopped while they do.
"""

from collections.abc import Callable, Sequence
from typing import TypeVar

from gp3migrate.config.migration_entry import MigrationSettings

T = TypeVar("T")

DYNAMIC_PROVIDER_WORKERS = 4
WINDOW_PHASES = ("cutover", "rollback")


def workload_of(entry: MigrationSettings) -> str:
    """The unit that stops and starts together: the workload, or the claim for an entry without one."""
    if entry.workload is None:
        return f"{entry.namespace}/{entry.claim}"
    return f"{entry.namespace}/{entry.workload.kind}/{entry.workload.name}"


def split(
    entries: Sequence[T],
    to_phase: str,
    *,
    size: int = DYNAMIC_PROVIDER_WORKERS,
    unit: Callable[[T], str] = workload_of,  # type: ignore[assignment]
) -> list[list[T]]:
    """The entries (one per volume) in `up`s, in the order given: for a phase with a window, whole
    workloads (`unit`) packed into `up`s of at most `size` volumes (a larger workload alone);
    otherwise one `up`."""
    if size < 1:
        raise ValueError(f"size must be at least 1, not {size}")
    if not entries:
        return []
    if to_phase not in WINDOW_PHASES:
        return [list(entries)]
    groups: dict[str, list[T]] = {}
    for entry in entries:
        groups.setdefault(unit(entry), []).append(entry)
    ups: list[list[T]] = []
    for group in groups.values():
        if ups and len(ups[-1]) + len(group) <= size:
            ups[-1].extend(group)
        else:
            ups.append(list(group))
    return ups
