"""Pulumi.yaml's `config:` block as the Pulumi CLI reads it: every key the program accepts is
declared with a type and a description, each shipped stack passes the CLI's checks, and the
program reads what the CLI hands it (the stack's values plus the declared defaults) as the stack
file alone.

The CLI's rules, modelled below from pulumi/pulumi:
- `sdk/go/common/workspace/project.json`: a declaration holds `type` (string, integer, boolean,
  array with `items`, or object: object since v3.187.0, PRs 20129 and 20132), `description`,
  `default`, `secret`; a default must match the type (`project.go` Project.Validate);
- `pkg/workspace/settings.go` mergeConfig: a declared key without a default that the stack does not
  set stops every preview and up ("Stack 'dev' is missing configuration value ..."); a default is
  handed to the program as if the stack had set it (scalars as text, lists and maps as JSON);
- `sdk/go/common/workspace/project.go` ValidateConfigValue: a stack's value must match the
  declared type, a scalar checked as its text, a list or map as its JSON.

Not proven here: that the installed CLI still behaves so (no Pulumi CLI on this machine; the
opt-in live test runs the real one).
"""

from typing import Any

import pytest
import yaml

from gp3migrate.config import settings
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import ALL_KEYS, UNSET_DEFAULTS, load_settings, project_values
from tests.mock_cloud import PROJECT_DIR, as_runtime_config, stack_config

PROJECT = settings.PROJECT
DECLARED: dict[str, dict[str, Any]] = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
STACKS = ("dev", "prod", "rehearsal")
ATTRIBUTES = {"type", "items", "description", "default", "secret"}
TYPES = {"string", "integer", "boolean", "array", "object"}


def cli_accepts(type_: str, items: dict[str, Any] | None, value: Any) -> bool:
    """ValidateConfigValue: whether the CLI takes `value` for a key declared with this type."""
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "integer":
        if isinstance(value, str):
            return value.lstrip("-").isdigit()
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if type_ == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_ == "object":
        return isinstance(value, dict)
    if type_ == "array":
        return (
            isinstance(value, list)
            and items is not None
            and all(cli_accepts(items["type"], items.get("items"), v) for v in value)
        )
    return False


def as_the_cli_checks_it(value: Any) -> Any:
    """A stack file's value as ValidateConfigValue sees it: lists and maps decoded from their
    JSON, every scalar as its text."""
    if isinstance(value, list | dict):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cli_merge(stack: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """mergeConfig and validateStackConfigValues: the config the program gets, and the CLI's
    refusals (none means the CLI runs the program)."""
    merged, refusals = dict(stack), []
    for key, declaration in sorted(DECLARED.items()):
        full = f"{PROJECT}:{key}"
        if full not in stack:
            if "default" in declaration:
                merged[full] = declaration["default"]
            else:
                refusals.append(f"missing configuration value '{key}'")
        elif not cli_accepts(declaration["type"], declaration.get("items"), as_the_cli_checks_it(stack[full])):
            refusals.append(f"configuration key '{key}' must be of type '{declaration['type']}'")
    return merged, refusals


def settings_of(stack: dict[str, Any]) -> settings.Settings:
    return load_settings(project_values(as_runtime_config(stack)))


def test_every_key_the_program_accepts_is_declared_and_nothing_else():
    assert sorted(DECLARED) == sorted(ALL_KEYS)


@pytest.mark.parametrize("key", sorted(DECLARED))
def test_each_declaration_is_one_the_cli_loads(key):
    declaration = DECLARED[key]
    assert set(declaration) <= ATTRIBUTES, set(declaration) - ATTRIBUTES
    assert declaration.get("type") in TYPES
    assert isinstance(declaration.get("description"), str) and len(declaration["description"]) > 20
    if declaration["type"] == "array":
        assert declaration.get("items", {}).get("type") in TYPES, "an array declares the type of its items"
    else:
        assert "items" not in declaration
    if "default" in declaration:
        assert cli_accepts(declaration["type"], declaration.get("items"), declaration["default"])


def test_only_the_keys_the_program_requires_have_no_default():
    """Every other key needs a default, or the CLI refuses each stack that leaves it out."""
    with pytest.raises(ConfigError) as caught:
        load_settings({})
    required = {problem.split(":")[0] for problem in caught.value.problems if ": is required" in problem}
    assert required == {"clusterName", "region"}
    assert {key for key, declaration in DECLARED.items() if "default" not in declaration} == required


def test_the_declared_defaults_are_the_ones_the_program_reads_as_unset():
    assert {key: d["default"] for key, d in DECLARED.items() if "default" in d} == dict(UNSET_DEFAULTS)


def test_a_stack_setting_every_key_to_its_declared_default_is_a_stack_setting_none():
    base = {"clusterName": "dev-eks", "region": "eu-central-1"}
    defaults = project_values(as_runtime_config({f"{PROJECT}:{k}": v for k, v in UNSET_DEFAULTS.items()}))
    assert load_settings({**base, **defaults}) == load_settings(base)


# The program's own default of each key whose declared default is not an empty value: a value
# equal to the declared default is read as unset, so the two must be the same.
PROGRAM_DEFAULTS = {
    "driverAdopt": lambda s: s.driver.adopt,
    "createOidcProvider": lambda s: s.driver.create_oidc_provider,
    "gp3Encrypted": lambda s: s.storage.encrypted,
    "gp3Iops": lambda s: s.storage.iops,
    "gp3Throughput": lambda s: s.storage.throughput,
    "demoteGp2": lambda s: s.storage.demote_gp2,
    "rehearsal": lambda s: s.rehearsal is not None,
    "rehearsalNodeCount": lambda s: s.rehearsal.node_count,
}


def test_a_declared_default_that_is_a_value_is_the_programs_own():
    assert set(PROGRAM_DEFAULTS) == {k for k, d in UNSET_DEFAULTS.items() if d not in ("", [], {})}
    plain = load_settings({"clusterName": "dev-eks", "region": "eu-central-1"})
    rehearsal = load_settings({"clusterName": "dev-eks", "region": "eu-central-1", "rehearsal": "true"})
    for key, read in PROGRAM_DEFAULTS.items():
        assert read(rehearsal if key.startswith("rehearsalNode") else plain) == UNSET_DEFAULTS[key], key


@pytest.mark.parametrize("stack", STACKS)
def test_each_shipped_stack_passes_the_clis_checks(stack):
    _, refusals = cli_merge(stack_config(stack))
    assert refusals == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_reads_what_the_cli_hands_it_as_the_stack_file_alone(stack):
    merged, _ = cli_merge(stack_config(stack))
    assert settings_of(merged) == settings_of(stack_config(stack))


def test_the_cli_model_refuses_what_the_cli_refuses():
    """The model above is what the three tests before it rest on."""
    assert cli_merge({f"{PROJECT}:region": "eu-west-1"})[1][0] == "missing configuration value 'clusterName'"
    assert cli_accepts("array", {"type": "object"}, [{"claim": "a"}])
    assert not cli_accepts("array", {"type": "string"}, [{"claim": "a"}])
    assert not cli_accepts("string", None, {"team": "x"})
    assert cli_accepts("integer", None, "2") and not cli_accepts("integer", None, "two")
    assert cli_accepts("boolean", None, "true") and not cli_accepts("boolean", None, "yes")


def test_the_pinned_versions_the_descriptions_name_are_the_programs():
    from gp3migrate import versions

    named = {
        "driverChartVersion": versions.EBS_CSI_CHART_VERSION,
        "snapshotterVersion": versions.SNAPSHOTTER_VERSION,
        "rehearsalKubernetesVersion": versions.REHEARSAL_KUBERNETES_VERSION,
    }
    for key, version in named.items():
        assert f"(default {version})" in DECLARED[key]["description"], key
