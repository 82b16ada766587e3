"""`gp3migrate` (or `python -m gp3migrate`): the project's command line, one subcommand per module.

Run `gp3migrate <command> --help` for a command's options and examples.
"""

import argparse
import sys
from collections.abc import Sequence

from gp3migrate.discovery import cli as discovery_cli
from gp3migrate.fleet import advance_cli
from gp3migrate.fleet import cli as fleet_cli
from gp3migrate.iam import k8s_rbac, runner_policy
from gp3migrate.sim import cli as simulate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gp3migrate",
        description="Moves an EKS cluster's in-tree gp2 volumes to the EBS CSI driver with gp3 (a Pulumi program); "
        "these commands prepare and check its stack config.",
        epilog=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    discovery_cli.add_subcommand(sub)
    runner_policy.add_subcommand(sub)
    k8s_rbac.add_subcommand(sub)
    simulate.add_subcommand(sub)
    fleet_cli.add_subcommand(sub)
    advance_cli.add_subcommand(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the subcommand, so the message starts `gp3migrate <command>: error:`
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:  # argparse: usage errors (2) and --help (0), already printed
        return int(exit_.code or 0)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("gp3migrate: interrupted", file=sys.stderr)
        return 130
