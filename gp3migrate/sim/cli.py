"""`gp3migrate simulate --stack S`: the offline rehearsal of a stack's next `pulumi up`.

In the simulation (no AWS, cluster or Pulumi CLI), the world is brought to where the stack last
was, then Pulumi.<stack>.yaml is applied as it is now: the plan in `pulumi preview`'s terms, the
program's refusals, each workload's downtime in simulated seconds, and the invariants' verdicts.
Where the stack last was comes from this command's record of earlier rehearsals of the stack
(.gp3migrate/rehearsals/<stack>.json beside the stack files; --fresh starts from nothing
applied), or from the real stack's outputs (--outputs FILE, `pulumi stack output --json`).

--walk instead takes every migration through all of its strategy's phases from nothing applied
(rehome and copy: precopy, cutover, finalize, cleanup; modify: precopy), one `up` each.

--world-seed N --walk-seed M instead replays one generated world and walk (gp3migrate/sim/
generated_worlds.py; the property in tests/sim/test_generated_worlds.py prints this command for a
seed that fails): no stack file is read.

Exit status 0 when every `up` succeeded and every invariant held, 1 when an `up` failed, the
program refused the stack file, or an invariant broke, 2 for bad arguments or a bad stack file.
"""

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

from gp3migrate.iam.runner_policy import StackFileError, read_stack_settings
from gp3migrate.sim.scenario import DriverSetup

# The cluster the stack's config describes: `present` means the driver runs (as an EKS add-on,
# the most common install); `helm` or `addon` means a cluster that has none yet.
WORLD_FOR_INSTALL: dict[str, DriverSetup] = {"present": "addon", "helm": "none", "addon": "none"}
EXAMPLES = """examples:
  venv/bin/gp3migrate simulate --stack dev                  # the next `pulumi up` of Pulumi.dev.yaml
  venv/bin/gp3migrate simulate --stack dev --walk           # every phase, from nothing applied
  venv/bin/gp3migrate simulate --stack prod --outputs prod-outputs.json --upstream-outputs dev-outputs.json
  venv/bin/gp3migrate simulate --stack dev --fresh --seed 7 --driver helm
  venv/bin/gp3migrate simulate --world-seed 3 --walk-seed 103   # a generated world and walk"""


def add_subcommand(commands: Any) -> None:
    command = commands.add_parser(
        "simulate",
        help="rehearse a stack's next `pulumi up` (or every phase, --walk) offline, in the simulation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    command.add_argument("--stack", help="stack whose Pulumi.<stack>.yaml is rehearsed")
    command.add_argument(
        "--world-seed", type=int, metavar="N", help="replay generated world N (with --walk-seed), instead of a stack"
    )
    command.add_argument("--walk-seed", type=int, metavar="M", help="the walk of the generated world to replay")
    command.add_argument("--walk", action="store_true", help="walk every phase from nothing applied; records nothing")
    command.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="where the stack is: `pulumi stack output --json --stack S` saved to FILE (instead of the record)",
    )
    command.add_argument(
        "--upstream-outputs",
        type=Path,
        metavar="FILE",
        help="with promoteFrom: the upstream stack's `pulumi stack output --json` (default: its rehearsal record)",
    )
    command.add_argument("--fresh", action="store_true", help="start from nothing applied and restart the record")
    command.add_argument("--seed", type=int, default=1, help="seed of the simulated world (same seed, same run)")
    command.add_argument(
        "--driver",
        choices=("addon", "helm", "none"),
        help="how the simulated cluster runs the EBS CSI driver (default: what driverInstall implies)",
    )
    command.add_argument("--project-dir", type=Path, default=Path("."), help="where the stack files are")
    command.set_defaults(run=run, parser=command)


def _error(message: str) -> int:
    for line in message.splitlines():
        print(f"error: {line}", file=sys.stderr)
    return 2


def tune_collector() -> None:
    """The first generation collected every 50,000 allocations instead of 700: a rehearsal makes
    millions of short-lived objects, and the default collects so often that it costs a fifth of
    the run (docs/benchmark.md; __main__.py tunes a real `up` the same way). No `gc.freeze()`: one
    process runs the program many times, and frozen objects would never be freed."""
    gc.set_threshold(50_000, 20, 20)


def run(args: argparse.Namespace) -> int:
    from gp3migrate.sim import follow
    from gp3migrate.sim.scenario import stack_file_config

    generated = args.world_seed is not None or args.walk_seed is not None
    if generated and (args.world_seed is None or args.walk_seed is None):
        return _error("--world-seed and --walk-seed replay a generated world and walk together: give both")
    if generated and args.stack:
        return _error("--world-seed and --walk-seed replay a generated world, not a stack: drop --stack")
    tune_collector()
    if generated:
        return _generated(args.world_seed, args.walk_seed)
    if not args.stack:
        return _error("give --stack S (or --world-seed N --walk-seed M for a generated world)")

    if args.walk and (args.outputs or args.fresh):
        return _error("--walk starts from nothing applied: it takes neither --outputs nor --fresh")
    if args.outputs and args.fresh:
        return _error("--outputs says where the stack is, --fresh says nothing is applied: give one")
    project_dir = args.project_dir.resolve()
    try:
        settings = read_stack_settings(args.project_dir, args.stack)
    except StackFileError as err:
        return _error(str(err))
    if settings.rehearsal is not None:
        return _error(
            f"Pulumi.{args.stack}.yaml: rehearsal: true creates a new EKS cluster (pulumi-eks), which the simulation "
            "does not model: rehearse a stack of an existing cluster here, or run this one live (README, "
            '"The live end-to-end test")'
        )
    driver: DriverSetup = args.driver or WORLD_FOR_INSTALL[settings.driver.install]
    config = stack_file_config(args.stack, project_dir)
    try:
        upstream = _upstream(args, project_dir, settings.promotion.from_stack if settings.promotion else None)
        if args.walk:
            return _walk(args, config, driver, upstream, _wave_groups(settings))
        return _follow(args, project_dir, config, driver, upstream)
    except follow.RehearsalInputError as err:
        return _error(str(err))


def _upstream(
    args: argparse.Namespace, project_dir: Path, from_stack: str | None
) -> tuple[str, dict[str, Any], str] | None:
    """(promoteFrom, the upstream stack's outputs, where they come from) for the promotion gate;
    None without promoteFrom."""
    from gp3migrate.sim import follow

    if from_stack is None:
        if args.upstream_outputs:
            raise follow.RehearsalInputError(f"--upstream-outputs: Pulumi.{args.stack}.yaml has no promoteFrom")
        return None
    if args.upstream_outputs:
        return from_stack, follow.load_outputs(args.upstream_outputs), str(args.upstream_outputs)
    short = from_stack.rsplit("/", 1)[-1]
    record = follow.load_record(follow.record_path(project_dir, short))
    if not record.ups:
        raise follow.RehearsalInputError(
            f"Pulumi.{args.stack}.yaml: promoteFrom: {from_stack}: the promotion gate reads that stack's outputs, and "
            f"it has not been rehearsed here: run `gp3migrate simulate --stack {short}` up to the phases this stack "
            f"needs, or pass --upstream-outputs FILE with `pulumi stack output --json --stack {from_stack}`"
        )
    return from_stack, record.outputs, f"its rehearsal record {follow.RECORD_DIR / (short + '.json')}"


def _wave_groups(settings: Any) -> list[list[str]]:
    """The stack's waves as groups of entry keys, in order (entries in no wave last); [] without waves."""
    if not settings.waves:
        return []
    order = [wave.name for wave in settings.waves]
    groups: list[list[str]] = [[] for _ in range(len(order) + 1)]
    for entry in settings.migrations:
        groups[order.index(entry.wave) if entry.wave is not None else len(order)].append(entry.key)
    return [group for group in groups if group]


def _walk(
    args: argparse.Namespace, config: dict[str, Any], driver: DriverSetup, upstream: Any, groups: list[list[str]]
) -> int:
    """Every phase from nothing applied: with waves, wave by wave (one `up` per wave and phase, as
    `advance` would run them, earlier waves done); without, every migration together per phase."""
    from gp3migrate.sim.clock import TICK_SECONDS
    from gp3migrate.sim.fleet_world import walk_configs as wave_walk
    from gp3migrate.sim.program import fully_qualified
    from gp3migrate.sim.rehearsal import render, walk, walk_ups
    from gp3migrate.sim.scenario import Simulation

    with Simulation(config, stack=args.stack, seed=args.seed, driver=driver) as sim:
        if upstream is not None:
            sim.other_stacks[fully_qualified(upstream[0])] = upstream[1]
        report = walk_ups(sim, wave_walk(sim.config, groups)) if groups else walk(sim)
    what = f"wave by wave ({len(groups)} groups)" if groups else "every migration together"
    print(render(report, TICK_SECONDS, header=[f"every phase from nothing applied, {what}"]))
    return 0 if report.ok else 1


def _generated(world_seed: int, walk_seed: int) -> int:
    from gp3migrate.sim.clock import TICK_SECONDS
    from gp3migrate.sim.generated_worlds import run as walk_generated
    from gp3migrate.sim.rehearsal import render

    walked = walk_generated(world_seed, walk_seed)
    assert walked.rehearsal is not None
    header = [*walked.world.describe(), f"walk {walk_seed}: " + "; ".join(walked.moves)]
    # render's last line judges failed ups; here a failed up with its fault injected is expected.
    print(render(walked.rehearsal, TICK_SECONDS, header=header).rsplit("\n", 1)[0])
    for failure in walked.failures:
        print(f"FOUND: {failure}")
    print("every invariant held; every failed up had its fault injected" if not walked.failures else "")
    print(f"replay: {walked.replay}")
    return 1 if walked.failures else 0


def _follow(
    args: argparse.Namespace, project_dir: Path, config: dict[str, Any], driver: DriverSetup, upstream: Any
) -> int:
    from gp3migrate.sim import follow
    from gp3migrate.sim.clock import TICK_SECONDS
    from gp3migrate.sim.rehearsal import render

    path = follow.record_path(project_dir, args.stack)
    shown = path.relative_to(project_dir)
    notes: list[str] = []
    failed: list[int] = []
    if args.outputs:
        ups, notes = follow.ups_from_outputs(config, follow.load_outputs(args.outputs))
        record = None
        source = f"the stack's outputs in {args.outputs} ({len(ups)} up(s) replayed to reach them)"
    else:
        record = follow.Record() if args.fresh else follow.load_record(path)
        ups, failed = record.ups, record.failed
        source = f"the rehearsal record {shown} ({len(ups)} up(s))" if ups else "nothing applied yet"
    done = follow.follow(
        config, stack=args.stack, seed=args.seed, driver=driver, ups=ups, failed=failed, upstream=upstream, notes=notes
    )
    before = ", ".join(f"{k} {p}" for k, p in sorted(done.applied_before.items())) or "no migration"
    header = [f"where the stack is: {source}: {before}"]
    header += [f"note: {n}" for n in done.notes]
    if upstream is not None:
        header.append(f"promoteFrom {upstream[0]}: the promotion gate reads its outputs from {upstream[2]}")
    report = done.report
    # A failed `up` that carried out steps left the world changed: the next rehearsal replays it.
    changed_world = report.result.error is not None and bool(report.result.changes())
    if record is not None and (report.result.ok or changed_world):
        if not (report.result.ok and record.ups and record.ups[-1] == config and not report.plan):
            if not report.result.ok:
                record.failed.append(len(record.ups))
            record.ups.append(config)
        record.outputs = done.outputs
        follow.save_record(path, record)
        header.append(f"recorded in {shown}: the next rehearsal starts from here")
    elif record is not None:
        header.append(f"not recorded: the up changed nothing; {shown} unchanged")
    print(render(done.rehearsal, TICK_SECONDS, header=header))
    return 0 if done.rehearsal.ok else 1
