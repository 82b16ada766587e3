"""`python -m gp3migrate simulate --stack dev`: the offline rehearsal of a stack's migrations.

Walks every migration of the stack through precopy -> cutover -> finalize -> cleanup in the
simulation (no AWS, cluster or Pulumi CLI), printing for each `up` the plan in `pulumi preview`'s
terms, each workload's downtime in simulated steps, and the invariants with their verdicts.
Exit status 1 when an `up` fails or an invariant breaks, 2 for bad arguments or a bad stack file.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from gp3migrate.runner_policy import StackFileError, read_stack_settings
from gp3migrate.sim.scenario import DriverSetup

# The cluster the stack's config describes: `present` means the driver runs (as an EKS add-on,
# the most common install); `helm` or `addon` means a cluster that has none yet.
WORLD_FOR_INSTALL: dict[str, DriverSetup] = {"present": "addon", "helm": "none", "addon": "none"}


def add_subcommand(commands: Any) -> None:
    command = commands.add_parser(
        "simulate",
        help="rehearse a stack's migrations offline, in the simulation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m gp3migrate simulate --stack dev\n"
        "  python -m gp3migrate simulate --stack dev --seed 7 --driver helm",
    )
    command.add_argument("--stack", required=True, help="stack whose Pulumi.<stack>.yaml is rehearsed")
    command.add_argument("--seed", type=int, default=1, help="seed of the simulated world (same seed, same run)")
    command.add_argument(
        "--driver",
        choices=("addon", "helm", "none"),
        help="how the simulated cluster runs the EBS CSI driver (default: what driverInstall implies)",
    )
    command.add_argument("--project-dir", type=Path, default=Path("."), help="where the stack files are")
    command.set_defaults(run=run, parser=command)


def run(args: argparse.Namespace) -> int:
    from gp3migrate.sim.rehearsal import rehearse, render
    from gp3migrate.sim.scenario import stack_file_config
    from gp3migrate.sim.world import TICK_SECONDS

    try:
        settings = read_stack_settings(args.project_dir, args.stack)
    except StackFileError as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    if not settings.migrations:
        print(f"error: Pulumi.{args.stack}.yaml: migrations: the list is empty, nothing to rehearse", file=sys.stderr)
        return 2
    driver: DriverSetup = args.driver or WORLD_FOR_INSTALL[settings.driver.install]
    config = stack_file_config(args.stack, args.project_dir.resolve())
    report = rehearse(config, stack=args.stack, seed=args.seed, driver=driver)
    print(render(report, TICK_SECONDS))
    return 0 if report.ok else 1
