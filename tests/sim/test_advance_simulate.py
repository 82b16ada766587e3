"""`gp3migrate advance --simulate`: the runner's whole flow (checked edit, preview, `up`s split by
workload) against the simulation, continuing the stack's rehearsal record from one call to the next."""

import json
from pathlib import Path

import pytest

from gp3migrate import cli
from tests.fleet_fixtures import fleet_stack, phases_in, with_waves


def advance(tmp_path: Path, *args: str) -> int:
    return cli.main(["advance", "--stack", "dev", "--simulate", "--yes", "--project-dir", str(tmp_path), *args])


def test_consecutive_advances_continue_the_rehearsal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_stack(tmp_path, 5, claims_of={1: 2})
    assert advance(tmp_path, "--to", "precopy", "--select", "namespace=default") == 0
    assert advance(tmp_path, "--to", "cutover", "--select", "namespace=default") == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / ".gp3migrate" / "rehearsals" / "dev.json").read_text())
    # precopy in one up; the cutover of 6 volumes in two: 4 (app-0, app-1 with 2, app-2), then 2.
    assert len(record["ups"]) == 3
    cut = [sorted(e["claim"] for e in up["migrations"] if e["phase"] == "cutover") for up in record["ups"]]
    assert cut[1] == ["data-0-0", "data-1-0", "data-1-1", "data-2-0"]
    assert len(cut[2]) == 6
    applied = {k: v["phase"] for k, v in record["outputs"]["migrationPhases"].items()}
    assert applied == dict.fromkeys(phases_in(tmp_path / "Pulumi.dev.yaml"), "cutover")
    assert "up 2/2: default/data-3-0, default/data-4-0" in out
    assert "default/app-4: down" in out
    # The next call starts from the record: finalize is allowed now, and is one up.
    assert advance(tmp_path, "--to", "finalize", "--select", "workload=app-0") == 0
    record = json.loads((tmp_path / ".gp3migrate" / "rehearsals" / "dev.json").read_text())
    assert record["outputs"]["migrationPhases"]["default/data-0-0"]["phase"] == "finalize"
    assert len(record["ups"]) == 4


def test_a_refused_transition_is_exit_2_and_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fleet_stack(tmp_path, 2)
    before = path.read_text()
    assert advance(tmp_path, "--to", "cutover", "--select", "namespace=default") == 2
    err = capsys.readouterr().err
    assert "'cutover' skips 'precopy'" in err
    assert path.read_text() == before
    assert not (tmp_path / ".gp3migrate").exists()


def test_a_canary_wave_then_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fleet_stack(tmp_path, 3)
    with_waves(
        path,
        [
            {"name": "canary", "select": {"claims": ["default/data-0-0"]}, "phase": "precopy"},
            {"name": "rest", "select": {"workloads": ["default/Deployment/app-1", "default/Deployment/app-2"]}},
        ],
    )
    assert advance(tmp_path, "--to", "precopy", "--wave", "rest") == 0
    assert advance(tmp_path, "--to", "precopy", "--wave", "canary") == 0
    assert advance(tmp_path, "--to", "cutover", "--wave", "canary") == 0
    # The rest waits for the canary to finalize.
    assert advance(tmp_path, "--to", "cutover", "--wave", "rest") == 2
    assert "wave canary, applied: cutover" in capsys.readouterr().err
    assert advance(tmp_path, "--to", "finalize", "--wave", "canary") == 0
    assert advance(tmp_path, "--to", "cutover", "--wave", "rest") == 0
    record = json.loads((tmp_path / ".gp3migrate" / "rehearsals" / "dev.json").read_text())
    applied = {k: v["phase"] for k, v in record["outputs"]["migrationPhases"].items()}
    assert applied == {"default/data-0-0": "finalize", "default/data-1-0": "cutover", "default/data-2-0": "cutover"}
    # status --simulate reads the same record: the canary done, the rest cut over and ready to finalize.
    capsys.readouterr()
    assert cli.main(["status", "--stack", "dev", "--simulate", "--json", "--project-dir", str(tmp_path)]) == 0
    status = json.loads(capsys.readouterr().out)
    rows = {row["volume"]: row for row in status["volumes"]}
    assert rows["default/data-0-0"]["applied"] == "finalize"
    assert rows["default/data-1-0"]["applied"] == "cutover"
    assert rows["default/data-1-0"]["next"] == "advance to finalize"
