"""The whole-cluster runner: `gp3migrate status` (where every volume and wave stands, from the
stack file and the stack's outputs) and `gp3migrate advance` (moves a wave or a selection one
phase on).

Outputs are read through the Pulumi Automation API (a `LocalWorkspace` on the project directory)
when the `pulumi` CLI is on PATH, or from a `pulumi stack output --json` file; what the next run
would do is the program's own rule (gp3migrate/config/transitions.py next_phase).

`advance` checks with the program's own rules, guards the preview with what the strategies plan
(gp3migrate/planning), and with `--simulate` runs against the simulation instead of Pulumi.

May import: `gp3migrate.config`, `gp3migrate.planning`, `gp3migrate.iam`, `gp3migrate.sim`,
`gp3migrate.versions`, `gp3migrate.naming`. Nothing here registers a resource; only
stack_outputs.py and stack_runner.py talk to Pulumi (the Automation API).
"""
