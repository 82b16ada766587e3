"""Problems with the stack config, one line each, and how a failed validation of the model
becomes those lines.

Each problem names the key, the value and what is allowed, e.g.
`driverInstall: 'helmm' is not one of helm, addon, present`. All problems are reported together so a user
fixes a stack file in one pass; nothing is registered while any remains.
"""

import difflib
import json
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

# The error type every problem of this package carries (gp3migrate/config/field_readers.py); its message
# is the text after `key: `.
PROBLEM = "stack_config"


class ConfigError(ValueError):
    """Stack config that the program refuses, with one line per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = tuple(problems)
        super().__init__("invalid stack config:\n" + "\n".join(f"  - {p}" for p in self.problems))


class Problems:
    """Collects problems; `raise_if_any` turns them into one ConfigError."""

    def __init__(self) -> None:
        self._items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self._items.append(f"{key}: {message}")

    @property
    def count(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise ConfigError(self._items)


def show(value: Any) -> str:
    """A value as it should appear in an error: strings quoted, everything else as JSON."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError:
        return repr(value)


def nearest_key(key: str, allowed: Sequence[str]) -> str | None:
    """The known key a misspelt one most likely meant: the same letters in another case first
    (`demoteGP2`), else the closest spelling by difflib's ratio at its default cutoff, 0.6
    (`demoteGp22`), else None rather than a far-fetched guess."""
    by_lower = {known.lower(): known for known in allowed}
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1)
    return by_lower[close[0]] if close else None


def problems_of(error: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem of a failed `model.model_validate`: the key as a user writes it
    (`migrations[3].sizeGiB`), then the problem. An unknown key comes first among its map's
    problems, as the first thing to fix, with the known key it most likely meant."""
    lines: list[tuple[tuple[Any, ...], str]] = []
    unknown: list[tuple[tuple[Any, ...], str]] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            allowed = _keys_at(model, loc[:-1])
            nearest = nearest_key(str(loc[-1]), allowed)
            guess = f"; did you mean {nearest}?" if nearest else ""
            unknown.append((loc, f"is not a known key{guess} (allowed: {', '.join(sorted(allowed))})"))
        elif item["type"] == PROBLEM:
            lines.append((_as_keys(model, loc), str(item["ctx"]["problem"])))
        else:
            # A check this package does not word itself (none is known): pydantic's words, with the value.
            lines.append((_as_keys(model, loc), f"{show(item['input'])}: {item['msg']}"))
    for loc, problem in sorted(unknown, key=lambda line: str(line[0][-1])):
        # Before the other problems of its map, after the unknown keys placed there already.
        parent = loc[:-1]
        at = next(
            (
                i
                for i, (other, said) in enumerate(lines)
                if other[: len(parent)] == parent and not (other[:-1] == parent and _unknown(said))
            ),
            len(lines),
        )
        lines.insert(at, (loc, problem))
    return [f"{key_path(loc)}: {problem}" for loc, problem in lines]


def _unknown(problem: str) -> bool:
    return problem.startswith("is not a known key")


def key_path(loc: Sequence[Any]) -> str:
    """`("migrations", 3, "sizeGiB")` as `migrations[3].sizeGiB`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _as_keys(model: type[BaseModel], loc: Sequence[Any]) -> tuple[Any, ...]:
    """`loc` with each field's key in the stack file: pydantic names the field instead when it
    checked the key's default (a key required by another's value)."""
    keys: list[Any] = []
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            keys.append(part)
            continue
        field = next(
            (f for name, f in current.model_fields.items() if part in (name, f.alias)),
            None,
        )
        keys.append((field.alias or part) if field is not None else part)
        current = _model_in(field.annotation) if field is not None else None
    return tuple(keys)


def _keys_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys of the map at `loc` below `model` (its fields' names in the stack file)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = next(f for name, f in current.model_fields.items() if (f.alias or name) == part)
        current = _model_in(field.annotation)
    return [f.alias or name for name, f in current.model_fields.items()]


def _model_in(annotation: Any) -> Any:
    """The model a field holds: itself, or inside Optional, a tuple or a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
