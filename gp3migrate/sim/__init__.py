"""A deterministic simulation of the Pulumi engine, the Kubernetes storage controllers and EBS, driven
by the real program (see README, "The simulation"; docs/testing.md "The simulation, inside").

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.volume_types`, `gp3migrate.config`,
`gp3migrate.planning`, `gp3migrate.checks`, `gp3migrate.iam`, `gp3migrate.discovery`. It runs the
Pulumi program (`__main__.py`, and through it `components/`) by path, as the Pulumi CLI does.
"""
