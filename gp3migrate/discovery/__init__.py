"""`gp3migrate discover`: reads the cluster and EC2, proposes migration entries and the platform
keys, and merges them into the stack file without touching what a person wrote.

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.volume_types`, `gp3migrate.config`,
`gp3migrate.planning`, `gp3migrate.checks`.
"""
