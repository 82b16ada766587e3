"""The README's CI example ("In CI") is a workflow that runs: it parses as YAML, previews with the
official Pulumi action on pull requests, runs `gp3migrate advance --yes` on a push to main, and each
`gp3migrate` line in it parses with the CLI's own parser once its `ADVANCE_*` values are put in."""

import re
import shlex
from typing import Any

import yaml

from gp3migrate import cli
from tests.mock_cloud import PROJECT_DIR


def workflow() -> dict[str, Any]:
    text = (PROJECT_DIR / "README.md").read_text()
    section = text.split("### In CI", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None, "README: no yaml block under 'In CI'"
    parsed = yaml.safe_load(block.group(1))
    assert isinstance(parsed, dict)
    return parsed


def triggers(flow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads a bare `on` key as True.
    found = flow.get("on") or flow.get(True)
    assert isinstance(found, dict)
    return found


def steps(flow: dict[str, Any], event: str) -> list[dict[str, Any]]:
    jobs = [job for job in flow["jobs"].values() if event in job.get("if", "")]
    assert len(jobs) == 1, f"one job for {event}"
    return list(jobs[0]["steps"])


def gp3migrate_lines(flow: dict[str, Any], event: str) -> list[list[str]]:
    lines = []
    for step in steps(flow, event):
        run = step.get("run", "")
        if "gp3migrate" in run:
            for name, value in flow["env"].items():
                run = run.replace(f'"${name}"', value)
            lines.append(shlex.split(run.removeprefix("venv/bin/")))
    return lines


def test_pull_requests_preview_with_the_official_action_and_pushes_to_main_advance() -> None:
    flow = workflow()
    on = triggers(flow)
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    preview = [s for s in steps(flow, "pull_request") if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert len(preview) == 1 and preview[0]["with"]["command"] == "preview"
    assert preview[0]["with"]["comment-on-pr"] is True
    pushed = gp3migrate_lines(flow, "push")
    assert len(pushed) == 1 and pushed[0][:2] == ["gp3migrate", "advance"] and "--yes" in pushed[0]
    # The merge installs the CLI that advance drives through the Automation API.
    assert any(str(s.get("uses", "")).startswith("pulumi/actions@") for s in steps(flow, "push"))


def test_every_gp3migrate_line_parses() -> None:
    flow = workflow()
    lines = gp3migrate_lines(flow, "pull_request") + gp3migrate_lines(flow, "push")
    assert len(lines) == 2
    parser = cli._parser()
    for words in lines:
        args, unknown = parser.parse_known_args(words[1:])
        assert unknown == [], words
        assert args.command == "advance" and args.stack == flow["env"]["ADVANCE_STACK"]
        assert args.to == flow["env"]["ADVANCE_TO"] and args.wave == flow["env"]["ADVANCE_WAVE"]
