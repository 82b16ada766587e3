"""How one value of the stack file is read, and the message when it cannot be.

A value arrives as the stack file holds it (tests, discovery) or as the Pulumi runtime hands it to
the program: every scalar as its text (`"true"`, `"3000"`), lists and maps as JSON. Each reader
below takes both, and refuses anything else with the whole problem after the key, e.g.
`'helmm' is not one of helm, addon, present`. They run before pydantic's own check of the type, so
that check never speaks to a user; the type is what the JSON Schema shows.
"""

import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticUseDefault, ValidationError

from gp3migrate.config.problems import PROBLEM, show


def refuse(message: str) -> PydanticCustomError:
    # The message goes in as context, so braces in a user's value are not read as a template.
    return PydanticCustomError(PROBLEM, "{problem}", {"problem": message})


def refuse_all(problems: Sequence[tuple[tuple[str | int, ...], str]], title: str) -> ValidationError:
    """Several problems at once, each at its place below the value being validated; pydantic adds
    the place of that value in front."""
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type=refuse(message), loc=loc, input=None) for loc, message in problems]
    )


def raise_all(details: list[InitErrorDetails], title: str) -> None:
    if details:
        raise ValidationError.from_exception_data(title, details)


def structured(raw: Any) -> Any:
    """A list or map as the runtime hands it over (JSON text); other text is returned as it is,
    for the reader to refuse."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def flag() -> BeforeValidator:
    def read(raw: Any) -> bool:
        if raw is None:
            raise PydanticUseDefault()
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise refuse(f"{show(raw)} is not a boolean (true or false)")

    return BeforeValidator(read)


def as_whole_number(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    return None


def whole_number(low: int, high: int, *, required: str = "") -> BeforeValidator:
    """An integer from `low` to `high`; `required` says what a missing one would have been."""
    return BeforeValidator(lambda raw: check_whole_number(raw, low, high, required=required))


def check_whole_number(raw: Any, low: int, high: int, *, required: str = "") -> int:
    if raw is None:
        raise refuse(f"is required ({required})") if required else PydanticUseDefault()
    value = as_whole_number(raw)
    if value is None:
        raise refuse(f"{show(raw)} is not a whole number (allowed: {low} to {high})")
    if not low <= value <= high:
        raise refuse(f"{value} is out of range (allowed: {low} to {high})")
    return value


def one_of(choices: Any, *, required: str = "") -> BeforeValidator:
    """One of a Literal's values, named in the message in the Literal's order."""
    allowed = get_args(choices)

    def read(raw: Any) -> Any:
        if raw is None:
            raise refuse(f"is required ({required})") if required else PydanticUseDefault()
        if raw not in allowed:
            raise refuse(f"{show(raw)} is not one of {', '.join(allowed)}")
        return raw

    return BeforeValidator(read)


def text(
    *,
    check: Callable[[str], str | None] | None = None,
    what: str = "a string",
    required: bool = False,
    none: bool = False,
) -> BeforeValidator:
    """A non-empty string passing `check` (which says what is wrong, or None); an empty one is not
    set (the key's default), which a required key refuses naming `what` it should hold. With
    `none`, not set is None itself (for a key whose default is checked too: pydantic has no
    default to fall back on while it checks the default)."""

    def read(raw: Any) -> str | None:
        if none and raw in (None, ""):
            return None
        return check_text(raw, check=check, what=what, required=required)

    return BeforeValidator(read)


def check_text(
    raw: Any,
    *,
    check: Callable[[str], str | None] | None = None,
    what: str = "a string",
    required: bool = False,
) -> str:
    if raw is None or raw == "":
        raise refuse(f"is required ({what})") if required else PydanticUseDefault()
    if not isinstance(raw, str):
        raise refuse(f"{show(raw)} is not {what}")
    problem = check(raw) if check is not None else None
    if problem:
        raise refuse(f"{show(raw)} {problem}")
    return raw


def a_list(what: str) -> BeforeValidator:
    """A list (or its JSON); `what` completes "is not a list of ..."."""

    def read(raw: Any) -> Any:
        if raw is None:
            raise PydanticUseDefault()
        value = structured(raw)
        if not isinstance(value, list):
            raise refuse(f"{show(value)} is not a list of {what}")
        return value

    return BeforeValidator(read)


def listed_once(values: Sequence[Any], title: str) -> None:
    """Refuse a value a list holds twice, at each later place."""
    seen: set[Any] = set()
    twice: list[tuple[tuple[str | int, ...], str]] = []
    for index, value in enumerate(values):
        if value in seen:
            twice.append(((index,), f"{show(value)} is listed twice"))
        seen.add(value)
    if twice:
        raise refuse_all(twice, title)


def stack_file_context(region: str = "") -> dict[str, Any]:
    """The context a stack file's values are validated in: read by key only, and the stack's region
    for the keys checked against it."""
    return {"stack_file": True, "region": region}


def from_stack_file(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("stack_file"))


def region_of(info: ValidationInfo) -> str:
    """The stack's region, when it is valid: the key's own check, or the context a migration entry
    is validated in."""
    if isinstance(info.context, dict) and info.context.get("region"):
        return str(info.context["region"])
    return str((info.data or {}).get("region") or "")


class Keys(BaseModel):
    """A map of the stack file: its keys spelt as there (the fields' camelCase aliases), no others,
    frozen once read. Python code may build one by field name; a stack file is read by alias only
    (`model_validate(..., by_name=False)`), so `api_version` is an unknown key there."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )
    # What else is wrong with a value that is not a map, after "is not a map".
    map_of: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _a_map_whose_missing_keys_are_empty(cls, data: Any, info: ValidationInfo) -> Any:
        """A missing required key reads as an empty value, so that its field refuses it in its own
        words (`is required (the claim's namespace)`) and in the order of the fields."""
        if not isinstance(data, dict):
            raise refuse(f"{show(data)} is not a map{cls.map_of}")
        by_name = not from_stack_file(info)
        missing = {
            field.alias or name: None
            for name, field in cls.model_fields.items()
            if field.is_required() and (field.alias or name) not in data and not (by_name and name in data)
        }
        return {**data, **missing}


def moved(error: ValidationError, *prefix: str | int) -> list[InitErrorDetails]:
    """The problems of a validation done by hand (one migration entry), placed under `prefix`."""
    details: list[InitErrorDetails] = []
    for line in error.errors(include_url=False):
        loc = (*prefix, *line["loc"])
        if line["type"] == PROBLEM:
            details.append(InitErrorDetails(type=refuse(str(line["ctx"]["problem"])), loc=loc, input=line["input"]))
        else:
            details.append(InitErrorDetails(type=line["type"], loc=loc, input=line["input"], ctx=line.get("ctx", {})))
    return details
