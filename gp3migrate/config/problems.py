"""Small helpers that read untyped config values and collect every problem with its key.

Each problem names the key, the value and what is allowed, e.g.
`driverInstall: 'helmm' is not one of helm, addon, present`. All problems are reported together so a user
fixes a stack file in one pass; nothing is registered while any remains.
"""

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


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


def parse_bool(problems: Problems, key: str, raw: Any, default: bool) -> bool:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    problems.add(key, f"{show(raw)} is not a boolean (true or false)")
    return default


def parse_int(problems: Problems, key: str, raw: Any, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    value: int | None = None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        value = int(raw.strip())
    if value is None:
        problems.add(key, f"{show(raw)} is not a whole number (allowed: {low} to {high})")
        return default
    if not low <= value <= high:
        problems.add(key, f"{value} is out of range (allowed: {low} to {high})")
        return default
    return value


def parse_choice(problems: Problems, key: str, raw: Any, default: T, allowed: Sequence[T]) -> T:
    if raw is None:
        return default
    if raw not in allowed:
        problems.add(key, f"{show(raw)} is not one of {', '.join(str(a) for a in allowed)}")
        return default
    return raw  # type: ignore[no-any-return]


def parse_str(
    problems: Problems,
    key: str,
    raw: Any,
    *,
    required: bool = False,
    check: Callable[[str], str | None] | None = None,
    what: str = "a string",
) -> str | None:
    if raw is None or raw == "":
        if required:
            problems.add(key, f"is required ({what})")
        return None
    if not isinstance(raw, str):
        problems.add(key, f"{show(raw)} is not {what}")
        return None
    if check is not None:
        problem = check(raw)
        if problem:
            problems.add(key, f"{show(raw)} {problem}")
            return None
    return raw


def parse_structured(raw: Any) -> Any:
    """Structured stack config (lists, maps) arrives as a JSON string from the Pulumi runtime; a
    plain scalar arrives as itself and is returned as the string, for the caller to refuse."""
    if raw is None or not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def unknown_keys(problems: Problems, where: str, given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in sorted(set(given) - set(allowed)):
        nearest = nearest_key(str(key), allowed)
        guess = f"; did you mean {nearest}?" if nearest else ""
        problems.add(f"{where}{key}", f"is not a known key{guess} (allowed: {', '.join(sorted(allowed))})")


def nearest_key(key: str, allowed: Sequence[str]) -> str | None:
    """The known key a misspelt one most likely meant: the same letters in another case first
    (`demoteGP2`), else the closest spelling by difflib's ratio at its default cutoff, 0.6
    (`demoteGp22`), else None rather than a far-fetched guess."""
    by_lower = {known.lower(): known for known in allowed}
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1)
    return by_lower[close[0]] if close else None
