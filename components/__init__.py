"""Pulumi ComponentResources, one per module. Pure logic lives in `gp3migrate`."""

# Type tokens follow `<package>:index:<Noun>` (Pulumi component design guidelines).
PACKAGE = "eks-gp3-migration"


def type_token(noun: str) -> str:
    return f"{PACKAGE}:index:{noun}"
