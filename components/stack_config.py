"""Reads this stack's config and what its last `up` applied, from the Pulumi runtime; the
validation itself is pure (gp3migrate)."""

from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env
from pulumi.runtime.sync_await import _sync_await

from gp3migrate.class_changes import check_class_changes
from gp3migrate.config import Settings, load_settings, project_values
from gp3migrate.phases import Applied, parse_history
from gp3migrate.promotion import promotion_problems
from gp3migrate.transitions import check_transitions
from gp3migrate.validation import ConfigError

HISTORY_OUTPUT = "migrationPhases"


def read_settings() -> Settings:
    """All of the project's config keys (set ones only), validated; RunError names every problem.

    The runtime's full map is read, not key by key, so a misspelt key is reported instead of
    silently falling back to a default.
    """
    all_config = {**get_config_env(), **CONFIG.get()}
    try:
        return load_settings(project_values(all_config, pulumi.get_project()))
    except ConfigError as err:
        # RunError prints the message without a Python traceback.
        raise pulumi.RunError(str(err)) from err


def stack_outputs(stack: str) -> dict[str, Any]:
    """The outputs of a stack's last `up`, read through a StackReference and awaited here, before
    any resource is declared, so a refusal leaves nothing registered. A reference to the running
    stack reads its own last checkpoint."""
    if stack.count("/") == 0:
        stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}"
    reference = pulumi.StackReference(f"outputs-of-{stack.replace('/', '-')}", stack_name=stack)
    outputs = _sync_await(reference.outputs.future())
    return dict(outputs or {})


def read_checked_settings() -> tuple[Settings, dict[str, Any]]:
    """Settings that passed every check, and this stack's previous outputs.

    Raises RunError (nothing registered) for bad config, an unsafe phase edit, or a promotion the
    upstream stack has not proven; an override reason lets the last through, logged.
    """
    settings = read_settings()
    previous = stack_outputs(pulumi.get_stack())
    try:
        check_transitions(settings.migrations, history_of(previous))
        class_warnings = check_class_changes(settings, previous)
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from err
    for warning in class_warnings:
        pulumi.log.warn(warning)
    if settings.promotion is not None:
        problems = promotion_problems(settings, stack_outputs(settings.promotion.from_stack))
        if problems and not settings.promotion.override_reason:
            raise pulumi.RunError(str(ConfigError(problems)))
        for problem in problems:
            pulumi.log.warn(f"promotion gate OVERRIDDEN ({settings.promotion.override_reason}): {problem}")
    return settings, previous


def history_of(previous_outputs: dict[str, Any]) -> dict[str, Applied]:
    return parse_history(previous_outputs.get(HISTORY_OUTPUT))
