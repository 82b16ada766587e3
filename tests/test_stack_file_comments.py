"""The shipped stack files' comments say what their values do (issue 19 item 5).

A new user reads a stack file's comments before its values; each rule below is a claim a comment
made that its file's values contradicted (dev's header said "Helm install" over
`driverInstall: present`; a phase list named a phase the program does not have).

Not proven here: that every sentence is true; only the claims these rules can read.
"""

import re

import pytest
import yaml

from gp3migrate.config.phases import PHASES
from tests.mock_cloud import STACKS_DIR

KEY = "eks-gp3-migration"
STACKS = ("dev", "prod", "rehearsal")


def text_of(stack: str) -> str:
    return (STACKS_DIR / f"Pulumi.{stack}.yaml").read_text()


def config_of(stack: str) -> dict:
    return yaml.safe_load(text_of(stack))["config"]


def comments(stack: str) -> list[str]:
    return [line.strip()[1:].strip() for line in text_of(stack).splitlines() if line.strip().startswith("#")]


def header(stack: str) -> str:
    """The comment lines the file starts with."""
    lines = []
    for line in text_of(stack).splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)


@pytest.mark.parametrize("stack", STACKS)
def test_the_header_names_how_the_driver_is_installed(stack):
    install = config_of(stack)[f"{KEY}:driverInstall"]
    assert f"driverInstall: {install}" in header(stack)
    for other, words in {"helm": "Helm install", "addon": "add-on install"}.items():
        if other != install:
            assert words.lower() not in header(stack).lower(), f"{stack}: the header says {words!r}"


@pytest.mark.parametrize("stack", STACKS)
def test_a_phase_sequence_in_a_comment_names_only_the_programs_phases(stack):
    for comment in comments(stack):
        for chain in re.findall(r"\w+(?:\s*->\s*\w+)+", comment):
            named = [word.strip() for word in chain.split("->")]
            assert set(named) <= set(PHASES), f"{stack}: {chain!r} names {sorted(set(named) - set(PHASES))}"


@pytest.mark.parametrize("stack", STACKS)
def test_a_command_in_a_comment_names_the_stacks_cluster_region_and_stack(stack):
    values = config_of(stack)
    for comment in comments(stack):
        for flag, expected in (
            ("--cluster", values[f"{KEY}:clusterName"]),
            ("--region", values[f"{KEY}:region"]),
            ("--stack", stack),
        ):
            for named in re.findall(rf"{flag} (\S+)", comment):
                assert named == expected, f"{stack}: {comment!r}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_kept_driver_says_when_to_adopt_it_instead(stack):
    assert config_of(stack)[f"{KEY}:driverInstall"] == "present"
    assert any("driverAdopt: true" in comment for comment in comments(stack))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_role_keys_a_kept_driver_ignores_say_so(stack):
    """With present the stack creates no driver role (components/platform.py): driverIdentity and
    managedPolicy describe one only when the stack installs the driver."""
    text = " ".join(comments(stack))
    assert "driverIdentity" in text and "managedPolicy" in text
    assert "not used" in text
