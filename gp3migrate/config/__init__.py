"""The stack file: its keys, their checks and defaults, the migration entries and their phases,
the edits allowed between two `up`s, and the promotion gate.

One typed model of the stack's keys (`settings.StackConfig`, `migration_entry.MigrationSettings`,
pydantic v2) gives the checks, the defaults, the README's Config reference and
schema/stack-file.schema.json (`python -m gp3migrate.config.reference` regenerates both).

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.volume_types`. Nothing here
registers a resource or calls AWS or Kubernetes.
"""
