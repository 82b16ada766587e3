"""Measures what matters at fleet scale and prints a Markdown table for the README.

1. Program evaluation under Pulumi mocks for 10 / 100 / 1000 migrations in their heaviest phase
   (cutover: quiesce, detach gate, final snapshot, restore objects, claim): wall time, peak memory
   (max RSS of a fresh process per size, so sizes do not share a heap) and resources registered.
2. Discovery on moto for 10 / 100 / 1000 volumes: DescribeVolumes calls and wall time.

Timings are of this machine and of mocks, not of a real `pulumi up` (the engine and providers are
not here); they show how the cost grows, which is the point. Run: `make bench`.
"""

import json
import os
import resource
import subprocess
import sys
import time

from moto import mock_aws

from gp3migrate.discovery.inventory import describe_volumes
from gp3migrate.discovery.volumes import discover, volume_ids_to_describe
from tests.kube_fixtures import fleet
from tests.mock_cloud import run_program

SIZES = (10, 100, 1000)


def migration_config(n: int) -> dict:
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


def bench_program(n: int) -> tuple[float, float, int]:
    """Runs in a child process; returns (seconds, peak MiB, registrations)."""
    out = subprocess.run(
        [sys.executable, "-m", "scripts.benchmark", "--program", str(n)],
        check=True,
        capture_output=True,
        text=True,
        # A one-run process, as under `pulumi up`: the program's collector tuning applies.
        env={**os.environ, "GP3MIGRATE_TUNE_GC": "1"},
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["seconds"], data["peak_mib"], data["registrations"]


def precopy_done(config: dict) -> dict:
    """The stack outputs of a previous precopy `up`, so the cutover is an allowed edit."""
    phases = {f"{m['namespace']}/{m['claim']}": {"phase": "precopy", "cutovers": 0} for m in config["migrations"]}
    return {"migrationPhases": phases}


def _program_child(n: int) -> None:
    warm = migration_config(1)
    run_program(warm, previous_outputs=precopy_done(warm))  # imports and set-up are not measured
    config = migration_config(n)
    start = time.perf_counter()
    result = run_program(config, previous_outputs=precopy_done(config))
    elapsed = time.perf_counter() - start
    if result.error is not None:
        raise result.error
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_mib": peak_kib / 1024, "registrations": len(result.registrations)}))


def bench_discovery(n: int) -> tuple[int, float]:
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


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--program":
        _program_child(int(sys.argv[2]))
        return 0
    print("| migrations | evaluation (s) | peak RSS (MiB) | resources registered |")
    print("|---:|---:|---:|---:|")
    for n in SIZES:
        elapsed, peak, count = bench_program(n)
        print(f"| {n} | {elapsed:.2f} | {peak:.1f} | {count} |", flush=True)
    print()
    print("| volumes | DescribeVolumes calls | discovery wall time on moto (s) |")
    print("|---:|---:|---:|")
    for n in SIZES:
        calls, elapsed = bench_discovery(n)
        print(f"| {n} | {calls} | {elapsed:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
