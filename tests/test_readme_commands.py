"""Every `gp3migrate` command the README shows parses with the CLI's own argument parser, as
written: in its shell blocks and in its inline code. A renamed flag or subcommand fails here
before a user meets it. (What a command then does is tested where the command is.)"""

import re
import shlex

import pytest

from gp3migrate import cli
from tests.mock_cloud import PROJECT_DIR

PREFIXES = ("venv/bin/gp3migrate", "venv/bin/python -m gp3migrate", "gp3migrate ")


def readme_commands() -> list[str]:
    text = (PROJECT_DIR / "README.md").read_text()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith(PREFIXES):
                found.append(line)
    # A session shown as `$ gp3migrate ...` in any block.
    for line in re.findall(r"^\$ (gp3migrate .*)$", text, re.M):
        found.append(line.strip())
    for span in re.findall(r"`([^`\n]+)`", text):
        if span.startswith(PREFIXES):
            found.append(span.strip())
    return found


def test_the_readme_shows_each_subcommand() -> None:
    words = [shlex.split(c.removeprefix("venv/bin/python -m ").removeprefix("venv/bin/")) for c in readme_commands()]
    shown = {w[1] for w in words if len(w) > 1}
    subcommands = next(a for a in cli._parser()._actions if a.dest == "command").choices or {}
    assert set(subcommands) <= shown, f"not shown in the README: {set(subcommands) - shown}"


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_parses(command: str) -> None:
    words = shlex.split(command.removeprefix("venv/bin/python -m ").removeprefix("venv/bin/"))
    assert words[0] == "gp3migrate"
    if len(words) == 1 or words[-1] in ("--help", "-h") or words[1].startswith("<"):
        pytest.skip(f"not a full command: {command}")
    if words[1].endswith(":") or (len(words) == 2 and not command.startswith(PREFIXES[:2])):
        pytest.skip(f"names a command or quotes its message, in prose: {command}")
    parser = cli._parser()
    try:
        args, unknown = parser.parse_known_args(words[1:])
    except SystemExit as exit_:
        pytest.fail(f"README command does not parse ({exit_.code}): {command}")
    assert unknown == [], f"README command has unknown arguments {unknown}: {command}"
    assert callable(args.run)
