"""Measures what matters at fleet scale and prints the Markdown of docs/benchmark.md.

1. Program evaluation under Pulumi mocks for 10 / 100 / 1000 migrations in their heaviest phase
   (cutover), against the SDK floor: a program with no logic that makes the same monitor calls
   (scripts/sdk_floor.py; its calls are checked equal to the program's before it is timed). Both
   run with the collector as Python sets it and as the program tunes it (__main__.py,
   GP3MIGRATE_TUNE_GC=1; the floor tunes it the same way). Per size, rounds of four fresh
   processes (floor, program, floor tuned, program tuned); each ratio is taken within a round and
   the median round is shown. Evaluation is timed in the process, after a one-migration run that
   pays for imports and set-up; peak memory is the process's max RSS.
2. The simulation (`gp3migrate simulate --stack S --walk`: every phase of every migration, one
   `up` each) on stack files of 10 / 30 / 100 / 300 volumes: the whole command's wall time per
   volume. A size that runs longer than --sim-limit (600 s) is stopped, and the larger ones skipped.
3. Discovery on moto for 10 / 100 / 1000 volumes: DescribeVolumes calls and wall time.
4. A fleet's rehearsal (gp3migrate/sim/fleet_world.py: 10 / 100 / 300 volumes of mixed workloads in
   three groups, one `up` per group and phase), each in a fresh process: wall and CPU seconds, CPU
   per volume (it should stay flat as the fleet grows) and peak RSS. `python -m scripts.profile_sim
   N` shows where such a rehearsal's time goes.
5. Downtime per workload (`downtime`, not in the default run): the dev stack's entry cloned into
   1 / 10 / 40 / 100 Deployments, all cut over, (a) in one `up`, (b) in `up`s of at most 4 volumes
   (gp3migrate/planning/up_batches.py, as `advance` splits them): median and max window in
   simulated seconds.

Timings are of this machine and of mocks, not of a real `pulumi up` (the engine and providers are
not here); they show how the cost grows, which is the point. Run `make bench` (everything: about
half an hour on 2 cores, 10 minutes of it the stopped 300-volume simulation), or one part:
`python -m scripts.benchmark evaluation|simulation|discovery|fleet|downtime`.

The child processes can be run by hand, e.g. to time whole processes with `/usr/bin/time -v`:
`python -m scripts.benchmark --program 100 --cold` (the program, imports included, no warm-up) and
`python -m scripts.benchmark --floor 100 --cold` (the floor, with the provider SDK modules the
program loads; it reads bench-results/traces/program-100.json, written by `--capture 100`).
"""

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from scripts import sdk_floor
from tests.stacks import STACKS_DIR

SIZES = (10, 100, 1000)
SIM_SIZES = (10, 30, 100, 300)
PARTS = ("evaluation", "simulation", "discovery", "fleet")
EXTRA_PARTS = ("downtime",)
WAVE_SIZES = (1, 10, 40, 100)
FLEET_SIZES = (10, 100, 300)
ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "bench-results" / "traces"
PROJECT = "eks-gp3-migration"


# -- 1. evaluation against the SDK floor ---------------------------------------------------------


def migration_config(n: int) -> dict[str, Any]:
    return {
        "clusterName": "bench-eks",
        "region": "eu-central-1",
        "migrations": [
            {
                "namespace": f"ns-{i % 20}",
                "claim": f"data-{i}",
                "pv": f"pvc-{i:08x}",
                "volumeId": f"vol-{i:017x}",
                "zone": "eu-central-1a",
                "sizeGiB": 1 + (i * 37) % 4000,
                "phase": "cutover",
                "workload": {"kind": "Deployment", "name": f"app-{i}", "replicas": 1},
            }
            for i in range(n)
        ],
    }


def precopy_done(config: dict[str, Any]) -> dict[str, Any]:
    """The stack outputs of a previous precopy `up`, so the cutover is an allowed edit."""
    phases = {f"{m['namespace']}/{m['claim']}": {"phase": "precopy", "cutovers": 0} for m in config["migrations"]}
    return {"migrationPhases": phases}


def trace_path(n: int) -> Path:
    return TRACES / f"program-{n}.json"


def _capture_child(n: int) -> None:
    """Writes the program's trace for n migrations, after checking the floor replays it exactly."""
    config = migration_config(n)
    trace = sdk_floor.capture(config, precopy_done(config))
    problems = sdk_floor.same_calls(trace, config, precopy_done(config))
    if problems:
        raise SystemExit(f"the floor's calls differ from the program's ({len(problems)}):\n" + "\n".join(problems[:5]))
    TRACES.mkdir(parents=True, exist_ok=True)
    sdk_floor.write_trace(trace, trace_path(n))
    print(json.dumps({"calls": len(trace["calls"]), "registrations": trace["registrations"]}))


def _timed_child(n: int, *, floor: bool, cold: bool) -> None:
    """One evaluation of n migrations, by the program or by the floor; prints the figures as JSON.
    Warm (the default): a one-migration evaluation first pays for imports and set-up, as in a
    long-lived process. Cold: the one evaluation includes them, as in `pulumi up`. Both tune the
    collector when GP3MIGRATE_TUNE_GC=1, the floor as the program does (the trace says how)."""
    tune_gc = os.environ.get("GP3MIGRATE_TUNE_GC") == "1"

    def body_for(size: int) -> tuple[Callable[[], object], dict[str, Any]]:
        config = migration_config(size)
        if not floor:
            return sdk_floor.the_program, config
        trace = sdk_floor.read_trace(trace_path(size))
        return (lambda: sdk_floor.replay(trace, tune_gc=tune_gc)), config

    start = time.perf_counter()
    if floor and cold:
        # A program making these registrations imports these provider SDK modules too.
        for module in sdk_floor.read_trace(trace_path(n))["sdk_modules"]:
            importlib.import_module(module)
    if not cold:
        warm_body, warm_config = body_for(1)
        sdk_floor.evaluate(warm_body, warm_config, previous_outputs=precopy_done(warm_config))
    body, config = body_for(n)
    if not cold:
        start = time.perf_counter()
    result = sdk_floor.evaluate(body, config, previous_outputs=precopy_done(config))
    elapsed = time.perf_counter() - start
    if result.error is not None:
        raise result.error
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_mib": peak_kib / 1024, "registrations": len(result.registrations)}))


Runs = dict[str, list[dict[str, Any]]]


def child(*args: str, tune_gc: bool) -> dict[str, Any]:
    """Runs this script as a child process; returns the JSON it printed last."""
    out = subprocess.run(
        [sys.executable, "-m", "scripts.benchmark", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        # Under mocks the program tunes its collector only when asked (__main__.py).
        env={**os.environ, "GP3MIGRATE_TUNE_GC": "1" if tune_gc else "0"},
    ).stdout
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def bench_evaluation(rounds: int) -> None:
    """Per size, `rounds` rounds of four fresh processes (floor and program, collector untuned,
    then both tuned); each ratio is taken within a round, and the median round is shown."""
    print("| migrations | resources | SDK floor (s) | program (s) | program / floor ", end="")
    print("| SDK floor, GC tuned (s) | program, GC tuned (s) | program / floor, GC tuned | tuning's speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    # Captured with the tuning on, so the trace says how the program sets the collector.
    child("--capture", "1", tune_gc=True)  # the floor's warm-up
    peaks = []
    for n in SIZES:
        registrations = child("--capture", str(n), tune_gc=True)["registrations"]
        runs: Runs = {"floor": [], "program": [], "floor-gc": [], "program-gc": []}
        for _ in range(rounds):
            for name, args, tuned in (
                ("floor", ("--floor", str(n)), False),
                ("program", ("--program", str(n)), False),
                ("floor-gc", ("--floor", str(n)), True),
                ("program-gc", ("--program", str(n)), True),
            ):
                runs[name].append(child(*args, tune_gc=tuned))

        def seconds(name: str, runs: Runs = runs) -> str:
            return f"{statistics.median(r['seconds'] for r in runs[name]):.2f}"

        def ratio(a: str, b: str, runs: Runs = runs) -> str:
            pairs = zip(runs[a], runs[b], strict=True)
            return f"{statistics.median(x['seconds'] / y['seconds'] for x, y in pairs):.2f}"

        print(
            f"| {n} | {registrations} | {seconds('floor')} | {seconds('program')} | {ratio('program', 'floor')} "
            f"| {seconds('floor-gc')} | {seconds('program-gc')} | {ratio('program-gc', 'floor-gc')} "
            f"| {ratio('program', 'program-gc')} |",
            flush=True,
        )
        peaks.append((n, [statistics.median(r["peak_mib"] for r in runs[name]) for name in runs]))
    print(f"\n{rounds} rounds; the median is shown.\n")
    print("| migrations | peak RSS (MiB): SDK floor | program | SDK floor, GC tuned | program, GC tuned |")
    print("|---:|---:|---:|---:|---:|")
    for n, values in peaks:
        print(f"| {n} | " + " | ".join(f"{v:.0f}" for v in values) + " |")


# -- 2. the simulation ---------------------------------------------------------------------------


def simulation_stack_file(n: int, folder: Path) -> str:
    """Pulumi.sim-<n>.yaml in `folder`: the dev fixture's platform with n copies of its one
    migration, each its own claim, PV and Deployment (20 namespaces). Returns the stack name."""
    from gp3migrate.sim.wave_rehearsal import cloned_config

    config = cloned_config(n, project_dir=STACKS_DIR)
    data = {"config": {f"{PROJECT}:{key}": value for key, value in config.items()}}
    stack = f"sim-{n}"
    (folder / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return stack


def bench_simulation(limit_seconds: float) -> None:
    command = Path(sys.executable).parent / "gp3migrate"
    print("| volumes | `simulate --walk` (s) | per volume (s) | each volume added since the last row (s) | ups |")
    print("|---:|---:|---:|---:|---:|")
    last = (0, 0.0)
    with tempfile.TemporaryDirectory() as folder:
        for n in SIM_SIZES:
            stack = simulation_stack_file(n, Path(folder))
            args = [str(command), "simulate", "--stack", stack, "--walk", "--project-dir", folder]
            start = time.perf_counter()
            try:
                out = subprocess.run(args, capture_output=True, text=True, timeout=limit_seconds, check=False)
            except subprocess.TimeoutExpired:
                print(f"| {n} | > {limit_seconds:.0f} (stopped) | > {limit_seconds / n:.2f} | | |", flush=True)
                break
            elapsed = time.perf_counter() - start
            if out.returncode != 0 or "all invariants held" not in out.stdout:
                raise SystemExit(f"simulate --stack {stack} --walk failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
            ups = out.stdout.count("up succeeded")
            added = (elapsed - last[1]) / (n - last[0]) if last[0] else None
            print(f"| {n} | {elapsed:.1f} | {elapsed / n:.2f} | {'' if added is None else f'{added:.2f}'} | {ups} |")
            sys.stdout.flush()
            last = (n, elapsed)


# -- 2b. a fleet's rehearsal -------------------------------------------------------------------------


def _fleet_child(n: int) -> None:
    """One fleet rehearsal of n volumes (gp3migrate/sim/fleet_world.py): every group through every
    phase, one `up` per group and phase; prints wall and CPU seconds, peak RSS and the verdict."""
    from gp3migrate.sim import fleet_world
    from gp3migrate.sim.cli import tune_collector
    from gp3migrate.sim.rehearsal import walk_ups
    from gp3migrate.sim.scenario import Simulation

    tune_collector()  # as `gp3migrate simulate` runs
    config, groups = fleet_world.fleet_config(n)

    def children_cpu() -> float:
        # The rerun previews run in forked copies (gp3migrate/sim/rerun_check.py): their CPU counts.
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    start, cpu, forked_cpu = time.perf_counter(), time.process_time(), children_cpu()
    with Simulation(config, stack=f"fleet-{n}", seed=1, driver="addon") as sim:
        rehearsal = walk_ups(sim, fleet_world.walk_configs(sim.config, groups))
    elapsed, cpu, forked_cpu = time.perf_counter() - start, time.process_time() - cpu, children_cpu() - forked_cpu
    failed = [f"{p.phase}: {p.result.error}; {[str(v) for v in p.violations][:3]}" for p in rehearsal.phases]
    figures = {
        "seconds": elapsed,
        "cpu": cpu + forked_cpu,
        "forked_cpu": forked_cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "forked_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "ups": len(rehearsal.phases),
        "groups": [len(g) for g in groups],
        "workloads": len({(e["namespace"], e["workload"]["name"]) for e in config["migrations"]}),
        "ok": rehearsal.ok,
        "failed": [] if rehearsal.ok else failed,
    }
    print(json.dumps(figures))


def bench_fleet(sizes: tuple[int, ...]) -> None:
    """Each size in a fresh process; the time per volume should stay flat as the fleet grows."""
    print(
        "| volumes | workloads | groups (volumes) | ups | wall (s) | wall per volume (s) | CPU (s), of it forked "
        "| CPU per volume (s) | peak RSS (MiB), of a fork |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "scripts.benchmark", "--fleet", str(n)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        if not r["ok"]:
            raise SystemExit(f"the fleet rehearsal of {n} volumes failed: {r['failed']}")
        print(
            f"| {n} | {r['workloads']} | {' / '.join(map(str, r['groups']))} | {r['ups']} | {r['seconds']:.1f} "
            f"| {r['seconds'] / n:.3f} | {r['cpu']:.1f}, {r['forked_cpu']:.1f} | {r['cpu'] / n:.3f} "
            f"| {r['peak_mib']:.0f}, {r['forked_peak_mib']:.0f} |",
            flush=True,
        )


# -- 3. discovery --------------------------------------------------------------------------------


def bench_discovery(n: int) -> tuple[int, float]:
    # The only gp3migrate modules these scripts import; here, so the timed children do not load
    # them (nor moto).
    from moto import mock_aws

    from gp3migrate.discovery.inventory import describe_volumes
    from gp3migrate.discovery.volumes import discover, volume_ids_to_describe
    from tests.kube_fixtures import fleet

    with mock_aws():
        ec2, items = fleet(n)
        calls: list[str] = []
        ec2.meta.events.register("before-call.ec2.*", lambda model, **_: calls.append(model.name))
        start = time.perf_counter()
        volumes = describe_volumes(ec2, volume_ids_to_describe(items))
        result = discover(items, volumes)
        elapsed = time.perf_counter() - start
        assert len(result.entries) == n, (len(result.entries), n)
        return len(calls), elapsed


def bench_discoveries() -> None:
    print("| volumes | DescribeVolumes calls | discovery wall time on moto (s) |")
    print("|---:|---:|---:|")
    for n in SIZES:
        calls, elapsed = bench_discovery(n)
        print(f"| {n} | {calls} | {elapsed:.2f} |", flush=True)


# -- 4. downtime per workload by wave size ----------------------------------------------------------


def bench_downtime() -> None:
    from gp3migrate.planning.up_batches import DYNAMIC_PROVIDER_WORKERS as WORKLOADS_PER_UP
    from gp3migrate.sim.wave_rehearsal import measure

    print("Downtime per workload, simulated seconds (stop to pods running again), all cut over:")
    print(f"| workloads | one `up`: median | max | `up`s of <= {WORKLOADS_PER_UP}: median | max | ups | wall (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in WAVE_SIZES:
        start = time.perf_counter()
        together, split = measure(n, per_up=None), measure(n, per_up=WORKLOADS_PER_UP)
        problems = together.problems + split.problems
        if problems:
            raise SystemExit(f"{n} workloads: " + "; ".join(problems[:5]))
        print(
            f"| {n} | {together.median:.0f} | {together.max} | {split.median:.0f} | {split.max} | {split.ups} "
            f"| {time.perf_counter() - start:.0f} |",
            flush=True,
        )


# -- the report ----------------------------------------------------------------------------------


def machine() -> str:
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    versions = ", ".join(
        f"{package} {importlib.metadata.version(package)}" for package in ("pulumi", "pulumi-aws", "pulumi-kubernetes")
    )
    return (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d}, {os.cpu_count()} cores (nproc), "
        f"{memory_kib / 1024 / 1024:.1f} GiB memory, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, {versions}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "part",
        nargs="*",
        help=f"what to measure: any of {', '.join(PARTS + EXTRA_PARTS)} (default: {', '.join(PARTS)})",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of floor, program, tuned program (default 3)")
    parser.add_argument("--sim-limit", type=float, default=600, help="seconds before a simulation size is stopped")
    child_modes = parser.add_mutually_exclusive_group()
    child_modes.add_argument("--program", type=int, metavar="N", help="child: evaluate the program for N migrations")
    child_modes.add_argument("--floor", type=int, metavar="N", help="child: evaluate the floor from N's trace")
    child_modes.add_argument("--capture", type=int, metavar="N", help="child: write and check N's trace")
    child_modes.add_argument("--fleet", type=int, metavar="N", help="child: rehearse a fleet of N volumes")
    parser.add_argument("--cold", action="store_true", help="child: no warm-up; imports are in the figure")
    args = parser.parse_args()
    if set(args.part) - set(PARTS + EXTRA_PARTS):
        unknown = sorted(set(args.part) - set(PARTS + EXTRA_PARTS))
        parser.error(f"unknown part {unknown}: give any of {', '.join(PARTS + EXTRA_PARTS)}")
    if args.capture is not None:
        _capture_child(args.capture)
        return 0
    if args.fleet is not None:
        _fleet_child(args.fleet)
        return 0
    if args.program is not None or args.floor is not None:
        n = args.program if args.program is not None else args.floor
        _timed_child(n, floor=args.floor is not None, cold=args.cold)
        return 0
    parts = args.part or PARTS
    load_at_start = os.getloadavg()[0]
    print(f"Measured {machine()}; `python -m scripts.benchmark {' '.join(sys.argv[1:])}`.".replace(" `.", "`."))
    print()
    if "evaluation" in parts:
        bench_evaluation(args.rounds)
        print()
    if "simulation" in parts:
        bench_simulation(args.sim_limit)
        print()
    if "discovery" in parts:
        bench_discoveries()
        print()
    if "fleet" in parts:
        bench_fleet(FLEET_SIZES)
        print()
    if "downtime" in parts:
        bench_downtime()
        print()
    # Other work on the machine slows every figure; the ratios, taken round by round, less so.
    print(f"Load average (1 min) at the start {load_at_start:.1f}, at the end {os.getloadavg()[0]:.1f}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
