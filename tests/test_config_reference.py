"""What is generated from the model of the stack's keys stays what the model generates, and the
stack files are checked by it: the committed JSON Schema and README's "Config reference" tables
equal the generator's output (regenerate with `venv/bin/python -m gp3migrate.config.reference`),
each stack file names the schema on its first line and validates against it (jsonschema), a bad
one fails, and `discover --write` keeps the first line.

The stack files read are the copies in tests/fixtures/stacks (tests/test_tests_own_their_fixtures.py:
no test reads the working tree's). Not proven here: that an editor applies the modeline (the
yaml-language-server's convention), nor that the schema refuses everything the program refuses
(rules between keys and checks against the region are the program's only; the schema holds
types, enums, required and known keys).
"""

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gp3migrate import cli
from gp3migrate.config import reference
from gp3migrate.config.settings import ALL_KEYS, PROJECT, StackConfig
from gp3migrate.config.stack_file import MODELINE, SCHEMA_FILE
from tests.kube_fixtures import REGION
from tests.mock_cloud import PROJECT_DIR, STACKS_DIR
from tests.test_stack_file import exports

STACK_FILES = sorted(STACKS_DIR.glob("Pulumi.*.yaml"))
SCHEMA = json.loads((PROJECT_DIR / SCHEMA_FILE).read_text())


def problems(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def test_the_committed_schema_is_the_models():
    assert (PROJECT_DIR / SCHEMA_FILE).read_text() == reference.schema_text(), (
        "regenerate: venv/bin/python -m gp3migrate.config.reference"
    )


def test_the_readme_config_reference_is_the_models():
    readme = (PROJECT_DIR / "README.md").read_text()
    assert readme == reference.readme_with_reference(readme), (
        "regenerate: venv/bin/python -m gp3migrate.config.reference"
    )


def test_the_schema_is_a_valid_json_schema_naming_every_key():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    keys = SCHEMA["properties"]["config"]["properties"]
    assert list(keys) == [f"{PROJECT}:{key}" for key in ALL_KEYS]
    assert all(isinstance(keys[k].get("description"), str) for k in keys)
    assert SCHEMA["properties"]["config"]["required"] == [f"{PROJECT}:clusterName", f"{PROJECT}:region"]


def test_the_readme_names_every_key():
    table = reference.config_reference()
    for key in StackConfig.model_fields.values():
        assert f"| `{key.alias}` |" in table


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_each_stack_file_names_the_schema_on_its_first_line(path: Path):
    first = path.read_text().splitlines()[0]
    assert first == reference.modeline(path)
    assert (path.parent / first.removeprefix(MODELINE)).resolve() == (PROJECT_DIR / SCHEMA_FILE).resolve()


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_each_stack_file_validates_against_the_schema(path: Path):
    assert problems(yaml.safe_load(path.read_text())) == []


DEV = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())


def dev_with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(DEV)
    for key, value in changes.items():
        if value is None:
            del document["config"][f"{PROJECT}:{key}"]
        else:
            document["config"][f"{PROJECT}:{key}"] = value
    return document


def entry_with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(DEV)
    entry = document["config"][f"{PROJECT}:migrations"][0]
    for key, value in changes.items():
        if value is None:
            del entry[key]
        else:
            entry[key] = value
    return document


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (dev_with(demoteGP2=False), "'eks-gp3-migration:demoteGP2' does not match any of the regexes"),
        (dev_with(driverInstall="helmm"), "'helmm' is not one of ['helm', 'addon', 'present']"),
        (dev_with(gp3Iops="fast"), "'fast' is not of type 'integer'"),
        (dev_with(demoteGp2="maybe"), "'maybe' is not of type 'boolean'"),
        (dev_with(clusterName=None), "'eks-gp3-migration:clusterName' is a required property"),
        (dev_with(kmsKeyArns="arn:aws:kms:eu-central-1:123456789012:key/abc"), "is not of type 'array'"),
        (dev_with(region={"secure": "AAABAK..."}), "is not of type 'string'"),
        (entry_with(sizegib=1), "'sizegib' was unexpected"),
        (entry_with(sizeGiB=None), "'sizeGiB' is a required property"),
        (entry_with(phase="cutvoer"), "'cutvoer' is not one of"),
        (entry_with(workload={"kind": "DaemonSet", "name": "x", "replicas": 1}), "'DaemonSet' is not one of"),
    ],
)
def test_a_bad_stack_file_fails_the_schema(document: dict[str, Any], fragment: str):
    found = problems(document)
    assert any(fragment in problem for problem in found), found


def test_other_namespaces_and_a_secret_kubeconfig_are_allowed():
    document = dev_with(kubeconfig={"secure": "v1:AAABAK..."})
    document["config"]["aws:region"] = "eu-central-1"
    document["config"]["pulumi:tags"] = {"team": "platform"}
    assert problems(document) == []
    assert problems(dev_with(kubeconfig="~/.kube/config")) == []


def test_discover_write_keeps_the_first_line(tmp_path: Path):
    # GIVEN a project directory with the dev stack file, which names the schema on its first line
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", project / "Pulumi.yaml")
    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
    first = text.splitlines()[0]
    stack = project / "Pulumi.dev.yaml"
    stack.write_text(first.replace("../../../", "") + "\n" + text.split("\n", 1)[1])

    # WHEN discovery rewrites it
    argv = ["discover", "--stack", "dev", *exports(tmp_path), "--project-dir", str(project), "--write"]
    assert cli.main(argv) == 0

    # THEN the file changed, and its first line is still the schema's modeline
    after = stack.read_text()
    assert after != text
    assert after.splitlines()[0] == f"{MODELINE}{SCHEMA_FILE}"
    assert problems(yaml.safe_load(after)) == []


def test_discover_create_starts_a_stack_file_with_the_modeline(tmp_path: Path):
    argv = ["discover", "--stack", "qa", "--cluster", "dev-eks", "--region", REGION, *exports(tmp_path)]
    argv += ["--create", "--write"]
    assert cli.main(argv) == 0
    text = (tmp_path / "Pulumi.qa.yaml").read_text()
    assert text.splitlines()[0] == f"{MODELINE}{SCHEMA_FILE}"
    assert problems(yaml.safe_load(text)) == []
