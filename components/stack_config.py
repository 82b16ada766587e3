"""Reads this stack's config and what its last `up` applied, from the Pulumi runtime; the
validation itself is pure (gp3migrate)."""

import importlib.metadata
from typing import Any, TypeVar

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from gp3migrate.config.phases import Applied, parse_history
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.promotion import promotion_problems
from gp3migrate.config.settings import Settings, gp3_class_problems, load_settings, project_values
from gp3migrate.config.transitions import check_forgotten, check_transitions
from gp3migrate.planning.class_changes import check_class_changes

HISTORY_OUTPUT = "migrationPhases"
T = TypeVar("T")


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
    stack reads its own last checkpoint. `stack` is `name` or `org/project/name` (config.py)."""
    if stack.count("/") == 0:
        stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}"
    reference = pulumi.StackReference(f"outputs-of-{stack.replace('/', '-')}", stack_name=stack)
    return dict(resolved_now(reference.outputs) or {})


def resolved_now(output: pulumi.Output[T]) -> T | None:
    """The value of an Output (None while unknown), blocking the program until it resolves.

    The one use of a private SDK function in this program. The program body runs inside the SDK's
    event loop and must decide before it registers anything, and no public synchronous API gives
    a stack's outputs there: StackReference's `outputs` / `get_output` / `require_output` are
    Outputs, `get_output_details` is a coroutine, and `pulumi.runtime.invoke` blocks but only the
    engine's builtin `pulumi:pulumi:readStackOutputs` (undocumented; the Python SDK never calls it)
    returns outputs. The supported way is an async entrypoint, `pulumi.run(main)` (pulumi 3.254+,
    pulumi/pulumi PR 23945) awaiting `get_output_details`; moving to it means an async
    `__main__.py` and test harnesses that run the program through `run_in_stack` (set_mocks
    finishes the root stack, which closes `pulumi.run`). Until then `_sync_await`, which the SDK
    itself uses for blocking invokes (`runtime/invoke.py`), is called here only, and
    tests/test_promotion.py fails, naming the SDK version, if it disappears or changes signature.
    """
    try:
        from pulumi.runtime.sync_await import _sync_await
    except ImportError as err:
        raise pulumi.RunError(
            f"pulumi {importlib.metadata.version('pulumi')} has no pulumi.runtime.sync_await._sync_await, "
            "which this program needs to read the previous outputs before it declares anything: "
            "install pulumi 3.272 (what its tests ran on) or move to pulumi.run (components/stack_config.py)"
        ) from err
    return _sync_await(output.future())


def read_checked_settings() -> tuple[Settings, dict[str, Any]]:
    """Settings that passed every check, and this stack's previous outputs.

    Raises RunError (nothing registered) for bad config, an unsafe phase edit, or a promotion the
    upstream stack has not proven; an override reason lets the last through, logged.
    """
    settings = read_settings()
    previous = stack_outputs(pulumi.get_stack())
    try:
        check_transitions(settings.migrations, history_of(previous))
        check_forgotten(settings.migrations, history_of(previous), settings.forget)
        if gp3_class_problems(settings):
            raise ConfigError(gp3_class_problems(settings))
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
