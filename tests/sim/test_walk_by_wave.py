"""`simulate --walk` on a stack with waves walks them as `advance` runs them: wave by wave, one `up`
per wave and phase, earlier waves done, later ones not started (issue 24 item 6)."""

import re
from pathlib import Path

import pytest

from gp3migrate import cli
from gp3migrate.sim.fleet_world import fleet_config, write_stack_file


def test_a_waved_fleet_is_walked_wave_by_wave(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = write_stack_file(10, tmp_path)
    _, groups = fleet_config(10)
    assert cli.main(["simulate", "--stack", stack, "--walk", "--project-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wave by wave ({len(groups)} groups)" in out
    ups = re.findall(r"^== up \d+: phase group (\d+) of \d+ \((\d+) volumes\): (\w+) ==$", out, re.M)
    expected = [
        (str(number), str(len(keys)), phase)
        for number, keys in enumerate(groups, 1)
        for phase in ("precopy", "cutover", "finalize", "cleanup")
    ]
    assert ups == expected
    assert "all invariants held" in out
