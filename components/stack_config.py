"""Reads this stack's config and what its last `up` applied, from the Pulumi runtime; the
validation itself is pure (gp3migrate)."""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env
from pulumi.runtime.sync_await import _sync_await

from gp3migrate.config import Settings, load_settings, project_values
from gp3migrate.phases import Applied, parse_history
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


def read_history() -> dict[str, Applied]:
    """The phases this stack's last `up` applied, read from its own outputs.

    A StackReference to the running stack reads its last checkpoint. It is awaited here, before
    any resource is declared, so an unsafe phase edit is refused before anything is registered.
    """
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    reference = pulumi.StackReference(f"self-{pulumi.get_stack()}", stack_name=name)
    details = _sync_await(reference.get_output_details(HISTORY_OUTPUT))
    return parse_history(details.value if details.value is not None else details.secret_value)


def read_checked_settings() -> tuple[Settings, dict[str, Applied]]:
    settings = read_settings()
    history = read_history() if settings.migrations else {}
    try:
        check_transitions(settings.migrations, history)
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from err
    return settings, history
