"""The offline rehearsal behind `python -m gp3migrate simulate`: a stack's migrations walked through
their phases in the simulation, with the plan of each `up`, each workload's downtime and the
invariants' verdicts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gp3migrate.sim import invariants
from gp3migrate.sim.engine import Step
from gp3migrate.sim.scenario import DriverSetup, Simulation, UpResult

FORWARD = ("precopy", "cutover", "finalize", "cleanup")


@dataclass
class PhaseReport:
    phase: str
    plan: list[Step]
    result: UpResult
    downtime_ticks: dict[str, int]
    violations: list[invariants.Violation]
    # GiB restored from snapshots into new volumes during this `up` (0 for rehome and modify).
    copied_gib: int = 0
    # Each migration's outputs after the `up` (strategy, plan, price, downtime steps).
    migrations: dict[str, Any] = field(default_factory=dict)
    user_actions: list[str] = field(default_factory=list)


@dataclass
class Rehearsal:
    stack: str
    seed: int
    phases: list[PhaseReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.result.ok and not p.violations for p in self.phases)


class DowntimeMeter:
    """Counts, per workload, the ticks with fewer running pods than it should have."""

    def __init__(self, sim: Simulation, config: dict[str, Any]):
        self.sim = sim
        self.expected = {
            (e["namespace"], e["workload"]["name"]): int(e["workload"]["replicas"])
            for e in config.get("migrations") or []
            if e.get("workload")
        }
        self.ticks: dict[str, int] = {f"{ns}/{name}": 0 for ns, name in self.expected}
        self._original = sim.world.tick

    def __enter__(self) -> DowntimeMeter:
        original = self._original

        def tick(n: int = 1) -> None:
            for _ in range(n):
                original(1)
                for (namespace, name), replicas in self.expected.items():
                    if len(self.sim.world.running_pods(namespace, name)) < replicas:
                        self.ticks[f"{namespace}/{name}"] += 1

        self.sim.world.tick = tick  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.world.tick = self._original  # type: ignore[method-assign]


def repoint_renamed_workloads(sim: Simulation, config: dict[str, Any]) -> list[str]:
    """What the README asks of the user after a `rename` cutover (copy strategy): point the
    workload at the gp3 claim and start it again. Entries are read as the program reads them, so
    the strategy and claim name are the ones it chose."""
    actions = []
    for raw, entry in zip(config.get("migrations") or [], invariants.parsed_entries(config), strict=True):
        workload = raw.get("workload")
        if not workload or entry is None or entry.phase != "cutover" or entry.target_claim_name == entry.claim:
            continue
        new_claim = entry.target_claim_name
        sim.world.repoint_workload(entry.namespace, workload["name"], entry.claim, new_claim)
        sim.world.scale_workload(entry.namespace, workload["name"], int(workload["replicas"]))
        actions.append(
            f"user: point {workload['kind']} {entry.namespace}/{workload['name']} at {new_claim} and scale it to "
            f"{workload['replicas']}"
        )
    if actions:
        sim.world.tick(6)
    return actions


def walk(
    sim: Simulation,
    phases: tuple[str, ...] = FORWARD,
    *,
    edit: Callable[[dict[str, Any], str], dict[str, Any]] | None = None,
) -> Rehearsal:
    """Each phase: a preview (the plan), the `up`, the user's part, then the invariants."""
    rehearsal = Rehearsal(sim.stack, sim.seed)
    for phase in phases:
        config = sim.with_entries(phase=phase)
        if edit is not None:
            config = edit(config, phase)
        plan = sim.preview(config)
        copied_before = sim.world.ebs.copied_gib
        with DowntimeMeter(sim, config) as meter:
            result = sim.up(config)
        copied = sim.world.ebs.copied_gib - copied_before
        actions = repoint_renamed_workloads(sim, config) if result.ok else []
        violations = list(result.violations)
        if result.ok:
            sim.config = copy.deepcopy(config)
            violations += invariants.after_phase(sim, config)
            violations += invariants.rerun_plans_nothing(sim, config)
        rehearsal.phases.append(
            PhaseReport(
                phase,
                plan.changes(),
                result,
                dict(meter.ticks),
                violations,
                user_actions=actions,
                copied_gib=copied,
                migrations=dict(sim.checkpoint.outputs.get("migrations") or {}),
            )
        )
        if not result.ok:
            break
    return rehearsal


def render(rehearsal: Rehearsal, tick_seconds: int) -> str:
    lines = [f"Simulated rehearsal of stack {rehearsal.stack!r} (seed {rehearsal.seed}); one step = {tick_seconds} s"]
    for number, report in enumerate(rehearsal.phases, 1):
        lines.append("")
        lines.append(f"== up {number}: phase {report.phase} ==")
        lines.append("plan:")
        lines += [f"  {step.describe()}" for step in report.plan] or ["  (no changes)"]
        status = "succeeded" if report.result.ok else f"FAILED: {report.result.error}"
        lines.append(f"up {status}")
        for warning in report.result.warnings:
            lines.append(f"  warning: {warning}")
        for action in report.user_actions:
            lines.append(f"  {action}")
        for workload, ticks in sorted(report.downtime_ticks.items()):
            lines.append(f"  downtime {workload}: {ticks} steps ({ticks * tick_seconds} s simulated)")
        for key, out in sorted(report.migrations.items()):
            lines.append(
                f"  {key}: {out.get('strategy')} -> gp3 {int(out.get('plannedIops') or 0)} IOPS / "
                f"{int(out.get('plannedThroughput') or 0)} "
                f"MiB/s, ${out.get('monthlyPriceGp2') or 0:.3f} -> ${out.get('monthlyPriceGp3') or 0:.3f} a month; "
                f"downtime steps: {', '.join(out.get('downtimeSteps') or []) or 'none'}"
            )
        copied = report.copied_gib
        lines.append(f"  bytes copied: {copied * 1024**3:,} ({copied} GiB restored from snapshots)")
        lines.append("invariants:")
        broken = {v.invariant for v in report.violations}
        for name in (
            invariants.NO_WRITE_LOST,
            invariants.NO_ONLY_COPY_DELETED,
            invariants.WORKLOAD_RUNS,
            invariants.ONE_DEFAULT_CLASS,
            invariants.NO_CHANGE_ON_RERUN,
        ):
            lines.append(f"  [{'BROKEN' if name in broken else 'ok'}] {name}")
        lines += [f"    - {v.detail}" for v in report.violations]
    lines.append("")
    total = sum(p.copied_gib for p in rehearsal.phases)
    lines.append(f"in all: {total * 1024**3:,} bytes copied")
    lines.append("all invariants held" if rehearsal.ok else "an invariant broke or an up failed (exit 1)")
    return "\n".join(lines)


def rehearse(config: dict[str, Any], *, stack: str, seed: int, driver: DriverSetup) -> Rehearsal:
    with Simulation(config, stack=stack, seed=seed, driver=driver) as sim:
        return walk(sim)
