"""`gp3migrate status` (issue 24 item 2): the rows and wave summaries of a small stack, read from a
stack file and the outputs the program itself published under mocks, through a fake at the
Automation API's boundary (select_stack) and through an --outputs file; --json parsed, the table's
text checked; every user error one line with exit code 2.

Not proven here: the live Automation API against a real backend (tests/live covers `up` that way);
what the pulumi CLI prints for a stack it does not know (the fake raises the SDK's own error)."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.automation import OutputValue
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import StackNotFoundError

from gp3migrate.cli import main
from gp3migrate.config.phases import parse_history
from gp3migrate.config.settings import load_settings
from gp3migrate.config.transitions import may_advance, next_phase
from gp3migrate.fleet import stack_outputs
from tests.mock_cloud import run_program, stack_config

PROJECT = "eks-gp3-migration"
DEV_ENTRY = stack_config("dev")[f"{PROJECT}:migrations"][0]


def _entry(namespace: str, claim: str, n: int, workload: str | None, **keys: Any) -> dict[str, Any]:
    found = copy.deepcopy(DEV_ENTRY)
    found.update(namespace=namespace, claim=claim, pv=f"pvc-{n:08x}", volumeId=f"vol-{n:017x}", **keys)
    found.pop("phase")
    if workload is None:
        found.pop("workload")
        found["quiesce"] = "manual"
    else:
        found["workload"] = {"kind": "Deployment", "name": workload, "replicas": 1}
    return found


ENTRIES = [
    _entry("shop", "cache", 1, "cache"),
    _entry("billing", "ledger-a", 2, "ledger"),
    _entry("billing", "ledger-b", 3, "ledger"),
    _entry("tools", "scratch", 4, None),
]


def small_stack(canary_phase: str) -> dict[str, Any]:
    """Four volumes: a canary wave, a wave of one two-claim workload, and one volume in no wave."""
    return {
        **{k: v for k, v in stack_config("dev").items() if not k.endswith(":migrations")},
        f"{PROJECT}:waves": [
            {"name": "canary", "select": {"namespaces": ["shop"]}, "phase": canary_phase},
            {"name": "billing", "select": {"workloads": ["billing/Deployment/ledger"]}, "phase": "precopy"},
        ],
        f"{PROJECT}:migrations": copy.deepcopy(ENTRIES),
    }


@pytest.fixture(scope="module")
def applied_outputs() -> dict[str, Any]:
    """What the program published after its precopy `up` of the small stack (under mocks)."""
    config = small_stack("precopy")
    config[f"{PROJECT}:migrations"][3]["phase"] = "precopy"
    run = run_program(config)
    assert run.error is None, run.error
    return json.loads(json.dumps(run.outputs, default=str))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The stack file now asks the canary for cutover; the rest as applied."""
    (tmp_path / "Pulumi.small.yaml").write_text(yaml.safe_dump({"config": small_stack("cutover")}, sort_keys=False))
    return tmp_path


def status(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["status", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


EXPECTED_ROWS: list[tuple[Any, ...]] = [
    ("shop/cache", "Deployment/cache", "canary", "rehome", "cutover", "precopy", "cutover", True, []),
    ("billing/ledger-a", "Deployment/ledger", "billing", "rehome", "precopy", "precopy", "cutover", False, []),
    ("billing/ledger-b", "Deployment/ledger", "billing", "rehome", "precopy", "precopy", "cutover", False, []),
    ("tools/scratch", None, None, "rehome", "precopy", "precopy", "cutover", False, []),
]


def rows_of(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    keys = ("volume", "workload", "wave", "strategy", "asked", "applied", "next_phase", "pending", "refused")
    return [tuple(row[k] for k in keys) for row in data["volumes"]]


def test_json_from_an_outputs_file(capsys, project, applied_outputs, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(applied_outputs))
    code, out, err = status(
        capsys, "--stack", "small", "--project-dir", str(project), "--outputs", str(outputs), "--json"
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert rows_of(data) == EXPECTED_ROWS
    assert [row["downtime_seconds"] for row in data["volumes"]] == [None] * 4
    assert [(w["wave"], w["phase"], w["volumes"], w["workloads"], w["asked"], w["applied"]) for w in data["waves"]] == [
        ("canary", "cutover", 1, 1, {"cutover": 1}, {"precopy": 1}),
        ("billing", "precopy", 2, 1, {"precopy": 2}, {"precopy": 2}),
        ("(no wave)", None, 1, 0, {"precopy": 1}, {"precopy": 1}),
    ]
    assert data["warnings"] == [
        "migrations: tools/scratch is in no wave: it keeps its own phase; add it to a wave's select to advance with it"
    ]


class FakeStack:
    def __init__(self, outputs: dict[str, Any]):
        self._outputs = outputs

    def outputs(self) -> dict[str, OutputValue]:
        return {key: OutputValue(value, secret=False) for key, value in self._outputs.items()}


def test_the_table_through_a_fake_workspace(capsys, project, applied_outputs, monkeypatch):
    asked: list[dict[str, str]] = []

    def select(**kwargs: str) -> FakeStack:
        asked.append(kwargs)
        return FakeStack(applied_outputs)

    monkeypatch.setattr(stack_outputs, "_automation_select", select)
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda name: f"/usr/bin/{name}")
    code, out, err = status(capsys, "--stack", "small", "--project-dir", str(project))
    assert (code, err) == (0, "")
    assert asked == [{"stack_name": "small", "work_dir": str(project.resolve())}]
    lines = out.splitlines()
    header = next(line for line in lines if line.strip().startswith("volume"))
    assert header.split() == ["volume", "workload", "wave", "strategy", "asked", "applied", "next", "downtime"]
    rows = {line.split()[0]: line.split() for line in lines if line.strip().startswith(("shop/", "billing/", "tools/"))}
    canary = ["shop/cache", "Deployment/cache", "canary", "rehome", "cutover", "precopy", "up", "applies", "cutover"]
    assert rows["shop/cache"] == [*canary, "—"]
    assert rows["billing/ledger-b"][-4:] == ["advance", "to", "cutover", "—"]
    assert rows["tools/scratch"][1:3] == ["—", "—"]
    wave_header = next(line for line in lines if line.strip().startswith("wave "))
    assert wave_header.split() == [
        "wave",
        "phase",
        "volumes",
        "workloads",
        "asked",
        "applied",
        "ready",
        "refused",
        "done",
    ]
    assert any(line.split()[:4] == ["billing", "precopy", "2", "1"] for line in lines)
    assert lines[-1].startswith("warning: migrations: tools/scratch is in no wave")
    assert all(line == line.rstrip() for line in lines)


def test_a_refused_next_step_is_shown_with_the_programs_reason(capsys, project, applied_outputs, tmp_path):
    # The file asks billing/ledger-a alone for cutover: its workload's other claim stays behind.
    stack = small_stack("cutover")
    stack[f"{PROJECT}:migrations"][1]["phase"] = "cutover"
    stack[f"{PROJECT}:waves"][1] = {"name": "billing", "select": {"namespaces": ["billing"]}}
    (project / "Pulumi.small.yaml").write_text(yaml.safe_dump({"config": stack}, sort_keys=False))
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(applied_outputs))
    code, out, _ = status(capsys, "--stack", "small", "--project-dir", str(project), "--outputs", str(outputs))
    assert code == 0
    refused = [line for line in out.splitlines() if line.startswith("refused ")]
    assert refused and refused[0].startswith("refused billing/ledger-a -> cutover: migrations[1].phase: 'cutover' of ")
    assert "must include every claim it mounts" in refused[0]


# --- the one rule behind `next` and `advance` -------------------------------------------------


def test_next_phase_moves_a_whole_workload_and_ends_where_the_strategy_ends(applied_outputs):
    settings = load_settings(
        {k.removeprefix(f"{PROJECT}:"): v for k, v in small_stack("precopy").items()}
        | {"migrations": [dict(e, phase="precopy") for e in ENTRIES]}
    )
    history = parse_history(applied_outputs["migrationPhases"])
    ledger_a = settings.migrations[1]
    # Alone, ledger-a may not cut over; with its workload's other claim it may.
    assert any(
        "must include every claim" in p for p in may_advance(settings.migrations, history, {ledger_a.key}, "cutover")
    )
    assert may_advance(settings.migrations, history, {"billing/ledger-a", "billing/ledger-b"}, "cutover") == []
    step = next_phase(settings.migrations, history, ledger_a)
    assert (step.to, step.pending, step.problems) == ("cutover", False, ())
    # A strategy's own rule: modify has one phase.
    modify = load_settings(
        {"clusterName": "dev-eks", "region": "eu-central-1", "migrations": [dict(ENTRIES[3], strategy="modify")]}
    )
    done = next_phase(
        modify.migrations,
        parse_history({"tools/scratch": {"phase": "precopy", "strategy": "modify"}}),
        modify.migrations[0],
    )
    assert done.to is None
    assert may_advance(modify.migrations, {}, {"tools/scratch"}, "cutover")[0].startswith(
        "migrations[0].phase: 'cutover': strategy modify has one phase"
    )


# --- user errors: one line, exit 2, no traceback --------------------------------------------------


def test_no_stack_file(capsys, project):
    code, out, err = status(capsys, "--stack", "qa", "--project-dir", str(project), "--outputs", "x.json")
    assert (code, out) == (2, "")
    assert (
        err
        == f"gp3migrate status: error: no stack file {project / 'Pulumi.qa.yaml'} (--stack qa; stacks there: small)\n"
    )


def test_bad_outputs_json(capsys, project, tmp_path):
    bad = tmp_path / "outputs.json"
    bad.write_text('{"migrationPhases": ')
    code, _, err = status(capsys, "--stack", "small", "--project-dir", str(project), "--outputs", str(bad))
    assert code == 2
    assert err.startswith(f"gp3migrate status: error: {bad}: not JSON at line 1 column 21 (")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_outputs_of_another_shape(capsys, project, tmp_path):
    bad = tmp_path / "outputs.json"
    bad.write_text('{"migrationPhases": ["shop/cache"]}')
    code, _, err = status(capsys, "--stack", "small", "--project-dir", str(project), "--outputs", str(bad))
    assert code == 2
    assert err == (
        f"gp3migrate status: error: {bad}: output 'migrationPhases' is not a map of <namespace>/<claim> to records "
        "(list)\n"
    )


def test_no_cli_and_no_outputs_file(capsys, project, monkeypatch):
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda name: None)
    code, _, err = status(capsys, "--stack", "small", "--project-dir", str(project))
    assert code == 2
    assert err.startswith("gp3migrate status: error: the pulumi CLI is not on PATH") and "--outputs FILE" in err


def test_a_stack_the_backend_does_not_know(capsys, project, monkeypatch):
    def select(**kwargs: str) -> FakeStack:
        raise StackNotFoundError(CommandResult(stdout="", stderr="error: no stack named 'small' found", code=255))

    monkeypatch.setattr(stack_outputs, "_automation_select", select)
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda name: "/usr/bin/pulumi")
    code, _, err = status(capsys, "--stack", "small", "--project-dir", str(project))
    assert code == 2
    where = project.resolve()
    assert err == f"gp3migrate status: error: no stack 'small' in the Pulumi backend (pulumi stack ls, in {where})\n"


def test_a_stack_file_the_program_refuses(capsys, project, tmp_path):
    stack = small_stack("cutvoer")
    (project / "Pulumi.small.yaml").write_text(yaml.safe_dump({"config": stack}, sort_keys=False))
    code, _, err = status(
        capsys, "--stack", "small", "--project-dir", str(project), "--outputs", str(tmp_path / "o.json")
    )
    assert code == 2
    assert err == (
        f"gp3migrate status: error: {project / 'Pulumi.small.yaml'}: waves[0].phase: 'cutvoer' is not one of precopy, "
        "cutover, finalize, cleanup, rollback\n"
    )
