"""A wave's cutover in the simulation, and how its size reaches each workload's downtime.

Every gate of a cutover (the stop, the detach wait, the claim release, ...) is a dynamic resource,
and every call of a dynamic resource holds one of the dynamic-provider host's 4 workers while it
runs (gp3migrate/sim/providers.py `WorkerPool`; pulumi `dynamic/__main__.py` main()). With N
workloads cut over in one `up`, a workload's gate may wait for a worker while others' detach waits
hold all four, and its workload stays down meanwhile. The runner's answer (issue 24 item 4): run a
wave's cutover as successive `up`s of at most 4 volumes, whole workloads together, split by the
function `gp3migrate advance` uses (gp3migrate/planning/up_batches.py `split`), so a workload's
gates never queue behind another workload's.

`measure` clones the dev stack's entry into N Deployments and runs the precopy, then the cutover
one way or the other, and returns each workload's downtime in simulated seconds.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gp3migrate.planning import up_batches
from gp3migrate.sim import invariants
from gp3migrate.sim.program import PROJECT_DIR
from gp3migrate.sim.rehearsal import apply_up
from gp3migrate.sim.scenario import Simulation, stack_file_config


def workload_key(entry: dict[str, Any]) -> str:
    """namespace/name of the entry's workload (an entry without one stands alone)."""
    workload = entry.get("workload") or {}
    return f"{entry['namespace']}/{workload.get('name') or 'claim:' + entry['claim']}"


def cloned_config(n: int, stack: str = "dev", project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The stack's config with its first entry cloned into n entries, each its own claim, PV, volume
    and Deployment (20 namespaces), as scripts/benchmark.py's simulation part builds them."""
    config = stack_file_config(stack, project_dir)
    template = config["migrations"][0]
    entries = []
    for i in range(n):
        entry = copy.deepcopy(template)
        entry.update(
            namespace=f"ns-{i % 20}",
            claim=f"data-{i}",
            pv=f"pvc-{i:08x}-0000-4000-8000-000000000000",
            volumeId=f"vol-{i:017x}",
            workload={"kind": "Deployment", "name": f"app-{i}", "replicas": 1},
            phase="precopy",
        )
        entries.append(entry)
    config["migrations"] = entries
    return config


def with_phase(config: dict[str, Any], phase: str, workloads: set[str] | None = None) -> dict[str, Any]:
    """`config` with the entries of `workloads` (all when None) at `phase`."""
    out = copy.deepcopy(config)
    for entry in out["migrations"]:
        if workloads is None or workload_key(entry) in workloads:
            entry["phase"] = phase
    return out


@dataclass
class WaveDowntime:
    workloads: int
    per_up: int | None  # workloads per `up`; None: the whole wave in one
    seconds: dict[str, int]  # downtime per workload, simulated seconds
    ups: int
    waited_for_worker: int  # dynamic-provider calls that queued for a worker, all cutover ups
    problems: list[str]

    @property
    def median(self) -> float:
        return float(statistics.median(self.seconds.values()))

    @property
    def max(self) -> int:
        return max(self.seconds.values())


def measure(
    n: int,
    *,
    per_up: int | None,
    seed: int = 0,
    driver: str = "addon",
    prepare: Callable[[Simulation], None] | None = None,
) -> WaveDowntime:
    """Precopy of n cloned workloads in one `up`, then their cutover: in one `up` (`per_up` None)
    or in `up`s of at most `per_up` whole workloads. Each `up` is `apply_up`'s: preview, `up`,
    the invariants; a failed `up` or a broken invariant is listed in `problems`. `prepare` sets the
    world up before the first `up` (e.g. EC2's throttling)."""
    config = cloned_config(n)
    seconds: dict[str, int] = {}
    problems: list[str] = []
    with Simulation(config, stack="dev", seed=seed, driver=driver) as sim:  # type: ignore[arg-type]
        if prepare is not None:
            prepare(sim)
        current = copy.deepcopy(sim.config)
        report = apply_up(sim, current, "precopy")
        problems += _problems("precopy", report)
        entries = current["migrations"]
        batches = [entries] if per_up is None else up_batches.split(entries, "cutover", size=per_up, unit=workload_key)
        groups = [list(dict.fromkeys(workload_key(e) for e in batch)) for batch in batches]
        pool = sim.providers._dynamic.pool
        waited_before = pool.waited
        done: set[str] = set()
        for number, group in enumerate(groups, 1):
            done |= set(group)
            current = with_phase(current, "cutover", done)
            report = apply_up(sim, current, f"cutover {number}")
            problems += _problems(f"cutover {number}", report)
            for workload in group:
                seconds[workload] = report.downtime_seconds.get(workload, 0)
        return WaveDowntime(n, per_up, seconds, len(groups), pool.waited - waited_before, problems)


def _problems(label: str, report: Any) -> list[str]:
    out = [] if report.result.ok else [f"{label}: up failed: {report.result.error}"]
    return out + [f"{label}: {v}" for v in report.violations if v.invariant != invariants.PHASE_COMPLETES]
