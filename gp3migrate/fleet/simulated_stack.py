"""`advance --simulate`: the same preview and `up`s against the simulation instead of Pulumi and AWS.

Where the stack is comes from the rehearsal record `simulate` keeps (`.gp3migrate/rehearsals/
<stack>.json` beside the stack files: every rehearsed `up`'s config, replayed from the seed on a
fresh world), so consecutive `advance --simulate` and `simulate --stack S` calls continue from
where the last one left off. The world is replayed once per command; the preview and every `up`
of the command then run on it in turn.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from gp3migrate.config.settings import load_settings
from gp3migrate.config.stack_file import read_stack, stack_path
from gp3migrate.fleet.stack_runner import OnStep, RunFailedError, StepEvent
from gp3migrate.sim import follow
from gp3migrate.sim.rehearsal import apply_up, repoint_renamed_workloads
from gp3migrate.sim.scenario import DriverSetup, Simulation, stack_file_config


def effective_config(project_dir: Path, stack: str) -> dict[str, Any]:
    """The stack file's config with each entry's phase as the program reads it (its own, else its
    wave's) written into the entry: the simulation's reports and invariants read entries' phases."""
    config = stack_file_config(stack, project_dir)
    settings = load_settings(read_stack(stack_path(project_dir, stack)).project_values())
    phases = {entry.key: entry.phase for entry in settings.migrations}
    for entry in config.get("migrations") or []:
        entry["phase"] = phases.get(f"{entry['namespace']}/{entry['claim']}", entry.get("phase"))
    return config


def as_filed(outputs: dict[str, Any], project_dir: Path, stack: str) -> dict[str, Any]:
    """A rehearsal's outputs with the stack file's volume ids where the world used its own (it
    seeds its own volumes: gp3migrate/sim/follow.py _WORLD_FACTS), so that the program's checks
    compare the file with itself, as they do against a real stack's outputs."""
    outputs = copy.deepcopy(outputs)
    current = stack_file_config(stack, project_dir)
    file_ids = {f"{e['namespace']}/{e['claim']}": e.get("volumeId") for e in current.get("migrations") or []}
    for key, record in (outputs.get("migrationPhases") or {}).items():
        facts = record.get("facts") if isinstance(record, dict) else None
        if isinstance(facts, dict) and "volumeId" in facts and file_ids.get(key):
            facts["volumeId"] = file_ids[key]
    return outputs


class SimulatedStack:
    def __init__(self, project_dir: Path, stack: str, *, driver: DriverSetup, seed: int = 0):
        self.project_dir = project_dir
        self.stack = stack
        self.driver = driver
        self.seed = seed
        self.path = follow.record_path(project_dir, stack)
        self.record = follow.load_record(self.path)
        self._sim: Simulation | None = None
        # Per workload (`namespace/name`), the simulated seconds it was down in the last `up`.
        self.last_downtime: dict[str, float] = {}

    @property
    def where(self) -> Path:
        return self.path.relative_to(self.project_dir)

    def outputs(self) -> dict[str, Any]:
        return as_filed(self.record.outputs, self.project_dir, self.stack)

    def _world(self, current: dict[str, Any]) -> Simulation:
        if self._sim is None:
            sim = Simulation(
                follow.seeding_config(current, self.record.ups), stack=self.stack, seed=self.seed, driver=self.driver
            )
            for up in self.record.ups:
                config = sim.localized(up)
                if sim.up(config).ok:
                    repoint_renamed_workloads(sim, config)
            self._sim = sim
        return self._sim

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None

    def preview(self, on_step: OnStep) -> None:
        current = effective_config(self.project_dir, self.stack)
        sim = self._world(current)
        result = sim.preview(sim.localized(current))
        for step in result.changes():
            on_step(StepEvent("pre", step.op, step.urn, step.type))
        if not result.ok:
            raise RunFailedError(f"preview failed: {result.error}")

    def up(self, on_step: OnStep) -> dict[str, Any]:
        current = effective_config(self.project_dir, self.stack)
        sim = self._world(current)
        config = sim.localized(current)
        phases = sorted({str(e.get("phase")) for e in current.get("migrations") or []})
        report = apply_up(sim, config, ", ".join(phases) or "platform")
        # The simulation reports steps once they ran: each as done, in the order they completed.
        for step in report.result.changes():
            on_step(StepEvent("done", step.op, step.urn, step.type))
        self.last_downtime = {k: float(s) for k, s in report.downtime_seconds.items() if s}
        changed_world = report.result.error is not None and bool(report.result.changes())
        if report.result.ok or changed_world:
            if not report.result.ok:
                self.record.failed.append(len(self.record.ups))
            self.record.ups.append(current)
            self.record.outputs = copy.deepcopy(sim.checkpoint.outputs)
            follow.save_record(self.path, self.record)
        if not report.result.ok:
            raise RunFailedError(str(report.result.error))
        if report.violations:
            broken = "; ".join(f"{v.invariant}: {v.detail}" for v in report.violations)
            raise RunFailedError(f"the up completed but the simulation's invariants did not hold: {broken}")
        return self.outputs()
