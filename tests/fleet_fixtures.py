"""A project directory with a stack of several workloads, and a fake of the Automation API boundary
(gp3migrate/fleet/stack_runner.py StackRunner) that records what each call saw in the stack file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from gp3migrate.config.settings import PROJECT
from gp3migrate.fleet.stack_runner import OnStep, RunFailedError, StepEvent

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = f"{PROJECT}:migrations"


def fleet_stack(folder: Path, workloads: int, *, claims_of: dict[int, int] | None = None, stack: str = "dev") -> Path:
    """Pulumi.<stack>.yaml: the dev stack with its one entry cloned into `workloads` Deployments
    (workload i mounting `claims_of[i]` claims, one by default), all at precopy."""
    document = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    template = document["config"][MIGRATIONS][0]
    entries = []
    for i in range(workloads):
        for c in range((claims_of or {}).get(i, 1)):
            entry = copy.deepcopy(template)
            entry.update(
                namespace="default",
                claim=f"data-{i}-{c}",
                pv=f"pvc-{i:04d}{c:02d}00-0000-4000-8000-000000000000",
                volumeId=f"vol-{i:08d}{c:09d}",
                phase="precopy",
            )
            entry["workload"] = {"kind": "Deployment", "name": f"app-{i}", "replicas": 1}
            entries.append(entry)
    document["config"][MIGRATIONS] = entries
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text("# the fleet under test\n" + yaml.safe_dump(document, sort_keys=False))
    return path


def phases_in(path: Path) -> dict[str, str]:
    document = yaml.safe_load(path.read_text())
    return {f"{e['namespace']}/{e['claim']}": e["phase"] for e in document["config"][MIGRATIONS]}


def applied(phases: dict[str, str], strategy: str = "rehome") -> dict[str, Any]:
    """Stack outputs recording each migration's last applied phase."""
    return {"migrationPhases": {k: {"phase": p, "strategy": strategy} for k, p in phases.items()}}


class FakeStack:
    """The StackRunner boundary: `preview_steps` are reported by every preview; each `up` records
    the phases the stack file asked for then, applies them to the outputs, and fails where
    `fail_up` says (1-based)."""

    def __init__(self, path: Path, outputs: dict[str, Any], *, preview_steps: list[StepEvent] | None = None):
        self.path = path
        self._outputs = outputs
        self.preview_steps = preview_steps or []
        self.previews: list[dict[str, str]] = []
        self.ups: list[dict[str, str]] = []
        self.fail_up: int | None = None

    def outputs(self) -> dict[str, Any]:
        return copy.deepcopy(self._outputs)

    def preview(self, on_step: OnStep) -> None:
        self.previews.append(effective_phases(self.path))
        for step in self.preview_steps:
            on_step(step)

    def up(self, on_step: OnStep) -> dict[str, Any]:
        asked = effective_phases(self.path)
        self.ups.append(asked)
        if self.fail_up == len(self.ups):
            raise RunFailedError("a gate timed out")
        record = self._outputs.setdefault("migrationPhases", {})
        for key, phase in asked.items():
            record[key] = {"phase": phase, "strategy": "rehome"}
        return self.outputs()


def with_waves(path: Path, waves: list[dict[str, Any]], *, drop_entry_phases: bool = True) -> None:
    """Adds `waves` to the stack file; entries' own `phase` keys dropped so the waves' phases count."""
    document = yaml.safe_load(path.read_text())
    document["config"][f"{PROJECT}:waves"] = waves
    if drop_entry_phases:
        for entry in document["config"][MIGRATIONS]:
            entry.pop("phase", None)
    path.write_text("# the fleet under test\n" + yaml.safe_dump(document, sort_keys=False))


def effective_phases(path: Path) -> dict[str, str]:
    """Each entry's phase as the program reads it (its own, else its wave's)."""
    from gp3migrate.config.settings import load_settings
    from gp3migrate.config.stack_file import read_stack

    settings = load_settings(read_stack(path).project_values())
    return {e.key: e.phase for e in settings.migrations}
