"""The stack files the tests read: copies in tests/fixtures/stacks, never the working tree's
Pulumi.<stack>.yaml, which are the user's to rewrite (`gp3migrate discover --write`)."""

from pathlib import Path
from typing import Any

import yaml

STACKS_DIR = Path(__file__).resolve().parent / "fixtures" / "stacks"
PROJECT = "eks-gp3-migration"


def stack_file_config(stack: str) -> dict[str, Any]:
    """The `config:` map of the fixture Pulumi.<stack>.yaml, keys without the project prefix."""
    data = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}
    return {k.removeprefix(f"{PROJECT}:"): v for k, v in (data.get("config") or {}).items()}


def dev_config() -> dict[str, Any]:
    return stack_file_config("dev")
