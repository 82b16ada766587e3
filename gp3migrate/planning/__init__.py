"""From checked settings to what each `up` declares: the per-volume plan, the manifests, and the
steps of each strategy (`strategies/`) as a dependency graph.

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.volume_types`, `gp3migrate.config`.
Pure: `components/` turns these steps into Pulumi resources.
"""
