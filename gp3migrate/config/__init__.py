"""The stack file: its keys, their checks and defaults, the migration entries and their phases,
the edits allowed between two `up`s, and the promotion gate.

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.volume_types`. Nothing here registers a
resource or calls AWS or Kubernetes.
"""
