"""Reads and writes `Pulumi.<stack>.yaml` keeping everything discovery does not change: the other
keys, their order, quotes and comments (ruamel.yaml round trip). A file is replaced in one step
(written beside it, then renamed), so an interrupted write never leaves half a stack file.
"""

import difflib
import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from gp3migrate.config.settings import PROJECT

MIGRATIONS_KEY = f"{PROJECT}:migrations"
# The JSON Schema of a stack file (gp3migrate/config/reference.py writes it), relative to the
# project directory, where the stack files are.
SCHEMA_FILE = "schema/stack-file.schema.json"
# A stack file's first line: yaml-language-server's modeline, which VS Code's YAML extension and
# the other editors that embed that server read to complete and check the file. ruamel keeps it
# with the rest of the file's first comment when discovery rewrites the file.
MODELINE = "# yaml-language-server: $schema="


class StackFileError(Exception):
    """A stack file that cannot be used: what is wrong, and what is expected instead."""

    def __init__(self, what: str, expected: str):
        super().__init__(what)
        self.what = what
        self.expected = expected


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap a user's long values
    return yaml


def stack_path(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def existing_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def to_plain(value: Any) -> Any:
    """ruamel's round-trip types as plain dicts, lists, str, int, bool (for comparing and validating)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


@dataclass
class StackFile:
    path: Path
    document: Any  # the whole file, as ruamel loaded it
    original: str = ""  # the file's text as read ("" for a new file), to show what a write changes

    @property
    def config(self) -> Any:
        return self.document["config"]

    def get(self, key: str, default: Any = None) -> Any:
        """A project key's plain value (key without the `<project>:` prefix)."""
        return to_plain(self.config.get(f"{PROJECT}:{key}", default))

    def has(self, key: str) -> bool:
        return f"{PROJECT}:{key}" in self.config

    def set(self, key: str, value: Any) -> None:
        self.config[f"{PROJECT}:{key}"] = value

    def project_values(self) -> dict[str, Any]:
        """This project's keys as the program reads them; an encrypted value (`secure:`) stands in
        as a string, since only Pulumi can decrypt it."""
        prefix = f"{PROJECT}:"
        values = {}
        for key, value in self.config.items():
            if str(key).startswith(prefix):
                plain = to_plain(value)
                if isinstance(plain, dict) and set(plain) == {"secure"}:
                    plain = "<secret>"
                values[str(key)[len(prefix) :]] = plain
        return values

    def migrations(self) -> Any:
        """The `migrations` list, created (empty) when the file has none."""
        if not isinstance(self.config.get(MIGRATIONS_KEY), list):
            self.config[MIGRATIONS_KEY] = CommentedSeq()
        return self.config[MIGRATIONS_KEY]

    def text(self) -> str:
        buffer = io.StringIO()
        _yaml().dump(self.document, buffer)
        return buffer.getvalue()

    def diff(self) -> list[str]:
        """What writing it now would change, as `diff -u <file> <proposed>` shows it; [] for nothing."""
        return list(
            difflib.unified_diff(
                self.original.splitlines(),
                self.text().splitlines(),
                fromfile=str(self.path),
                tofile=f"{self.path} (proposed)",
                lineterm="",
            )
        )


def read_stack(path: Path) -> StackFile:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StackFileError("no such stack file", "an existing stack") from None
    except (OSError, UnicodeDecodeError) as err:
        raise StackFileError(f"cannot read it ({type(err).__name__})", "a readable stack file") from None
    try:
        document = _yaml().load(text)
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise StackFileError(
            f"not valid YAML{where} ({getattr(err, 'problem', None) or err})", "fix the file"
        ) from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, dict):
        raise StackFileError("not a map of keys", "a stack file with a `config:` map")
    if document.get("config") is None:
        document["config"] = CommentedMap()
    if not isinstance(document["config"], dict):
        raise StackFileError("its `config:` is not a map", "a stack file with a `config:` map")
    return StackFile(path, document, text)


def new_stack(path: Path, cluster: str, region: str) -> StackFile:
    document = CommentedMap()
    document["config"] = CommentedMap([(f"{PROJECT}:clusterName", cluster), (f"{PROJECT}:region", region)])
    document.yaml_set_start_comment(
        f"{MODELINE[2:]}{SCHEMA_FILE}\nCreated by `gp3migrate discover --create` for cluster {cluster} ({region})."
    )
    return StackFile(path, document)


def write_stack(stack_file: StackFile) -> None:
    text = stack_file.text()
    directory = stack_file.path.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{stack_file.path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        if stack_file.path.exists():
            os.chmod(temporary, stack_file.path.stat().st_mode & 0o777)
        os.replace(temporary, stack_file.path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def render(data: Mapping[str, Any]) -> str:
    """YAML text of plain data, in the stack files' style."""
    buffer = io.StringIO()
    _yaml().dump(dict(data), buffer)
    return buffer.getvalue()
