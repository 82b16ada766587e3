"""Profiles a fleet rehearsal (gp3migrate/sim/fleet_world.py) in CPU time, every thread included.

`python -m scripts.profile_sim N [--out FILE] [--top K]`: N volumes through every phase, group by
group; prints where the CPU time went (the top functions by own time, and the cumulative time of
the simulation's parts) and writes the merged pstats to FILE.

cProfile sees only the thread it is enabled in, and the simulation runs each step of an `up` in a
thread of its own (gp3migrate/sim/program.py `_Flight`): each of those gets its own profiler, and
the profiles are merged. The timer is the thread's CPU time, so a step parked while others run
costs nothing, and the parts add up to the process's CPU time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gp3migrate.sim.cli import tune_collector

# (label, file suffix, function name): cumulative CPU time of these entry points, summed over threads.
PARTS = (
    ("the program under the engine (whole ups, previews included)", "sim/program.py", "run_program"),
    ("  the engine's steps (plan + provider calls)", "sim/engine.py", "register"),
    ("  the engine's deletes after the program", "sim/engine.py", "finish"),
    ("the world's ticks (controllers, kubelets, EBS)", "sim/world.py", "tick"),
    ("  the kube store's view / names", "kube/store.py", "view"),
    ("  EBS model advance", "sim/ebs.py", "advance"),
    ("invariants after each step", "sim/invariants.py", "after_step"),
    ("claims watch after each step", "sim/invariants.py", "check"),
    ("invariants after each phase", "sim/invariants.py", "after_phase"),
    ("rerun previews (no change on rerun)", "sim/invariants.py", "rerun_plans_nothing"),
    ("downtime meter per tick", "sim/rehearsal.py", "tick"),
)


def profiled_walk(volumes: int, seed: int = 1, *, cpu_timer: bool = True) -> tuple[pstats.Stats, Any, float]:
    from gp3migrate.sim import fleet_world, program
    from gp3migrate.sim.rehearsal import walk_ups
    from gp3migrate.sim.scenario import Simulation

    profiles: list[cProfile.Profile] = []
    # The thread's CPU time is exact but a system call per event (the run takes several times
    # longer); the default clock is cheap, but a step parked while others run counts its wait
    # (as lock acquire) in its own profile and in every caller's cumulative time.
    timer = time.thread_time if cpu_timer else time.perf_counter
    original = program._Flight._main

    def main(self: Any, *args: Any) -> None:
        profile = cProfile.Profile(timer)
        profiles.append(profile)
        profile.runcall(original, self, *args)

    program._Flight._main = main  # type: ignore[method-assign,assignment]
    config, groups = fleet_world.fleet_config(volumes)
    top = cProfile.Profile(timer)
    start = time.process_time()
    try:
        top.enable()
        with Simulation(config, stack=f"fleet-{volumes}", seed=seed, driver="addon") as sim:
            rehearsal = walk_ups(sim, fleet_world.walk_configs(sim.config, groups))
        top.disable()
    finally:
        program._Flight._main = original  # type: ignore[method-assign]
    cpu = time.process_time() - start
    with tempfile.TemporaryDirectory() as folder:
        stats = pstats.Stats(top, stream=open(os.devnull, "w"))  # noqa: SIM115 - add() prints each file's date
        for number, profile in enumerate(profiles):
            path = Path(folder) / f"{number}.prof"
            profile.dump_stats(path)
            stats.add(str(path))
    return stats, rehearsal, cpu


def part_times(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, suffix, name in PARTS:
        found = [(v[3], v[1]) for (file, _, func), v in raw.items() if file.endswith(suffix) and func == name]
        out.append((label, sum(c for c, _ in found), sum(n for _, n in found)))
    return out


AREAS = (
    ("the kube store", ("sim/kube/store.py", "sim/kube/fields.py", "sim/kube/validation.py")),
    ("the controllers", ("sim/kube/", "sim/world.py")),
    ("the engine model", ("sim/engine.py",)),
    ("the scheduling loop", ("sim/program.py", "asyncio/", "threading.py")),
    ("the invariants", ("sim/invariants.py", "sim/rehearsal.py")),
    ("the providers", ("sim/providers.py", "sim/kube_api.py")),
    ("EC2 (the EBS model, moto, botocore)", ("sim/ebs.py", "moto/", "botocore/", "boto3/")),
    ("the program's own code", ("components/", "gp3migrate/", "__main__.py")),
    ("the Pulumi SDK", ("pulumi/", "google/protobuf", "grpc/", "dill/")),
    ("deep copies", ("copy.py",)),
)


def own_time_by_area(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time of each function, by where it is; a built-in's time goes to its callers' areas,
    split as the callers' calls to it were timed. Lock waits are left out (parked steps)."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]

    def area(file: str) -> str | None:
        if file == "~":
            return None
        return next((name for name, places in AREAS if any(p in file for p in places)), "other")

    totals: dict[str, float] = {}
    for (file, _, func), (_, _, own, _, callers) in raw.items():
        if "acquire" in func and "lock" in func:
            continue
        where = area(file)
        if where is not None:
            totals[where] = totals.get(where, 0.0) + own
            continue
        for (caller_file, _, _), timing in callers.items():
            name = area(caller_file) or "other"
            totals[name] = totals.get(name, 0.0) + timing[2]
    return sorted(totals.items(), key=lambda item: -item[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volumes", type=int)
    parser.add_argument("--out", type=Path, help="write the merged pstats here")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--wall-clock", action="store_true", help="the cheap clock (waits counted; see above)")
    args = parser.parse_args()
    tune_collector()
    stats, rehearsal, cpu = profiled_walk(args.volumes, cpu_timer=not args.wall_clock)
    print(f"{args.volumes} volumes, {len(rehearsal.phases)} ups, ok={rehearsal.ok}, CPU {cpu:.1f} s (profiled)")
    for label, seconds, calls in part_times(stats):
        print(f"  {label:<62} {seconds:8.1f} s  {calls:>9} calls  {100 * seconds / cpu:5.1f}%")
    print("own time by area:")
    for name, seconds in own_time_by_area(stats):
        print(f"  {name:<62} {seconds:8.1f} s")
    if args.out:
        stats.dump_stats(args.out)
    stats.stream = sys.stdout  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(args.top)
    return 0 if rehearsal.ok else 1


if __name__ == "__main__":
    sys.exit(main())
