"""Reads this stack's config from the Pulumi runtime; the validation itself is pure (gp3migrate)."""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from gp3migrate.config import Settings, load_settings, project_values
from gp3migrate.validation import ConfigError


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
