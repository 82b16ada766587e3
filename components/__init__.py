"""Pulumi ComponentResources, one per module, and the dynamic providers of the one-way steps
(`gate_providers`, `driver_check_provider`). The logic they declare comes from `gp3migrate`.

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.config`, `gp3migrate.planning`,
`gp3migrate.checks`, `gp3migrate.iam`, `gp3migrate.legacy_paths`. Not discovery, the simulation or the
CLI: a `pulumi up` needs none of them.
"""

import gp3migrate.legacy_paths  # noqa: F401 - the old module paths pickled providers in state name

# Type tokens follow `<package>:index:<Noun>` (Pulumi component design guidelines).
PACKAGE = "eks-gp3-migration"


def type_token(noun: str) -> str:
    return f"{PACKAGE}:index:{noun}"
