"""Writes the `migrations` list into `Pulumi.<stack>.yaml`, keeping the file's other content and
comments (ruamel.yaml round-trip)."""

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from gp3migrate.config import PROJECT

MIGRATIONS_KEY = f"{PROJECT}:migrations"


def write_migrations(path: Path, entries: list[dict[str, Any]]) -> None:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(path.read_text()) if path.exists() else None
    if data is None:
        data = {}
    config = data.setdefault("config", {})
    config[MIGRATIONS_KEY] = entries
    with path.open("w") as handle:
        yaml.dump(data, handle)


def migrations_yaml(entries: list[dict[str, Any]]) -> str:
    """The block to paste under `config:` of a stack file."""
    import io

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump({MIGRATIONS_KEY: entries}, buffer)
    return buffer.getvalue()
