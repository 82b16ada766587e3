"""The rehearsed `up`s behind `gp3migrate simulate`: one `up` applied with its plan, each
workload's downtime and the invariants' verdicts (`apply_up`, also what sim/follow.py applies the
stack file with), and the walk of every migration through its strategy's phases (`walk`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gp3migrate.sim import invariants
from gp3migrate.sim.clock import TICK_SECONDS
from gp3migrate.sim.engine import Step
from gp3migrate.sim.rerun_check import RerunChecks
from gp3migrate.sim.scenario import DriverSetup, Faults, Simulation, UpResult

FORWARD = ("precopy", "cutover", "finalize", "cleanup")


@dataclass
class PhaseReport:
    phase: str
    plan: list[Step]
    result: UpResult
    # Per workload: simulated seconds from its stop to its pods running again (DowntimeMeter).
    downtime_seconds: dict[str, int]
    violations: list[invariants.Violation]
    # GiB restored from snapshots into new volumes during this `up` (0 for rehome and modify).
    copied_gib: int = 0
    # Each migration's outputs after the `up` (strategy, plan, price, downtime steps).
    migrations: dict[str, Any] = field(default_factory=dict)
    user_actions: list[str] = field(default_factory=list)
    # The preview's own failure (a refused edit fails here first, as `pulumi preview` would).
    preview_error: BaseException | None = None
    # How the report is headed when it is not one phase of a walk.
    title: str = ""


@dataclass
class Rehearsal:
    stack: str
    seed: int
    phases: list[PhaseReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.result.ok and not p.violations for p in self.phases)


class DowntimeMeter:
    """Counts, per workload, the ticks with fewer running pods than it should have, from the tick
    something first stopped it (its `spec.replicas` below what it runs with) in this `up`: pods
    that are not up for another reason are the "workload runs" invariant's business, not downtime
    a step caused. `seconds`: the same in simulated seconds — the window from the stop (its pods
    terminating) to its pods Running again, on the new claim after a cutover. Steps run in
    parallel on the simulated clock (gp3migrate/sim/program.py) and take the durations of
    gp3migrate/sim/durations.py, so this is the time the window would last, to the tick (5 s)."""

    def __init__(self, sim: Simulation, config: dict[str, Any]):
        self.sim = sim
        self.expected = {
            (e["namespace"], e["workload"]["name"]): int(e["workload"]["replicas"])
            for e in config.get("migrations") or []
            if e.get("workload")
        }
        self.ticks: dict[str, int] = {f"{ns}/{name}": 0 for ns, name in self.expected}
        self.stopped: set[tuple[str, str]] = set()
        self._original = sim.world.tick

    def _desired(self, namespace: str, name: str) -> int | None:
        for kind in ("Deployment", "StatefulSet"):
            workload = self.sim.world.kube.peek(kind, namespace, name)
            if workload is not None:
                return int(workload["spec"].get("replicas") or 0)
        return None

    def __enter__(self) -> DowntimeMeter:
        original = self._original

        def tick(n: int = 1) -> None:
            for _ in range(n):
                original(1)
                for (namespace, name), replicas in self.expected.items():
                    desired = self._desired(namespace, name)
                    if desired is not None and desired < replicas:
                        self.stopped.add((namespace, name))
                    if (namespace, name) not in self.stopped:
                        continue
                    if len(self.sim.world.running_pods(namespace, name)) < replicas:
                        self.ticks[f"{namespace}/{name}"] += 1

        self.sim.world.tick = tick  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.world.tick = self._original  # type: ignore[method-assign]

    @property
    def seconds(self) -> dict[str, int]:
        return {workload: ticks * TICK_SECONDS for workload, ticks in self.ticks.items()}


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


INVARIANTS = (
    invariants.NO_WRITE_LOST,
    invariants.NO_ONLY_COPY_DELETED,
    invariants.WORKLOAD_RUNS,
    invariants.SERVED_BY_SOURCE,
    invariants.OWN_FILESYSTEM,
    invariants.RETAIN_BEFORE_ONE_WAY,
    invariants.KEPT_WHEN_LET_GO,
    invariants.ONE_DEFAULT_CLASS,
    invariants.SOURCE_KEPT_UNTIL_COPY_IN_USE,
    invariants.RESTORE_KEPT_UNTIL_COPY_BOUND,
    invariants.ONLY_OWN_CLAIMS_DELETED,
    invariants.DRIVER_CAN_MANAGE,
    invariants.PV_IN_VOLUME_ZONE,
    invariants.MOUNTED_AS_SAID,
    invariants.PHASE_COMPLETES,
    invariants.NO_CHANGE_ON_RERUN,
)
NOT_CHECKED_AFTER_FAILURE = {
    invariants.WORKLOAD_RUNS: "the up failed: a failed cutover may leave the workload stopped",
    invariants.NO_CHANGE_ON_RERUN: "the up failed: the next up has work left to do",
    invariants.DRIVER_CAN_MANAGE: "the up failed: it may have stopped before tagging the volume for the driver",
    invariants.PHASE_COMPLETES: "checked by --walk only: a refusal of this stack file may be by design",
}
# After a failed `up` the others still hold for what it left: a failure must lose nothing.
HOLD_AFTER_FAILURE = tuple(name for name in INVARIANTS if name not in NOT_CHECKED_AFTER_FAILURE)


def strategy_path(entry: dict[str, Any]) -> tuple[str, ...]:
    """The phases an entry walks through: modify has one (the PV stays in-tree, nothing to cut over)."""
    return ("precopy",) if entry.get("strategy") == "modify" else FORWARD


def walk_configs(config: dict[str, Any], phases: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One config per `up`: each entry on its own strategy's path (or on `phases`), and an entry
    whose path is done stays at its last phase."""
    entries = config.get("migrations") or []
    paths = [phases or strategy_path(e) for e in entries] or [("platform",)]
    configs = []
    for number in range(max(len(p) for p in paths)):
        step = copy.deepcopy(config)
        for entry, path in zip(step.get("migrations") or [], paths, strict=False):
            entry["phase"] = path[min(number, len(path) - 1)]
        configs.append(step)
    return configs


def apply_up(
    sim: Simulation,
    config: dict[str, Any],
    label: str,
    *,
    faults: Faults | None = None,
    refresh_first: bool = False,
    user: Callable[[], list[str]] | None = None,
    rerun_checks: RerunChecks | None = None,
) -> PhaseReport:
    """A preview (the plan), the `up` (with `faults` injected; `up --refresh` with `refresh_first`),
    the user's part (repointing a renamed claim's workload, then `user`), then the invariants. With
    `rerun_checks`, the rerun previews may still be running when this returns (sim/rerun_check.py):
    their violations join the report's by the time the checks are drained."""
    plan = sim.preview(config, refresh_first=refresh_first)
    copied_before = sim.world.ebs.copied_gib
    with DowntimeMeter(sim, config) as meter:
        # `pulumi up` previews first and stops where its preview fails.
        result = sim.up(config, faults=faults, refresh_first=refresh_first) if plan.ok else plan
    copied = sim.world.ebs.copied_gib - copied_before
    actions = repoint_renamed_workloads(sim, config) if result.ok else []
    if result.ok and user is not None:
        actions += user()
    violations = list(result.violations)
    if result.ok:
        sim.config = copy.deepcopy(config)
        violations += invariants.after_phase(sim, config)
        (rerun_checks or RerunChecks(background=False)).submit(sim, config, into=violations)
    else:
        violations += [v for v in invariants.after_phase(sim, config) if v.invariant in HOLD_AFTER_FAILURE]
    return PhaseReport(
        label,
        plan.changes() if plan.ok else [],
        result,
        meter.seconds,
        violations,
        user_actions=actions,
        copied_gib=copied,
        migrations=dict(sim.checkpoint.outputs.get("migrations") or {}),
        preview_error=plan.error,
    )


def walk(
    sim: Simulation,
    phases: tuple[str, ...] | None = None,
    *,
    edit: Callable[[dict[str, Any], str], dict[str, Any]] | None = None,
) -> Rehearsal:
    """Every entry through its strategy's phases (or through `phases`), one `up` each, stopping
    at the first that fails."""
    ups = []
    for config in walk_configs(sim.config, phases):
        label = ", ".join(sorted({str(e["phase"]) for e in config.get("migrations") or []})) or "platform"
        ups.append((label, edit(config, label) if edit is not None else config))
    return walk_ups(sim, ups)


def walk_ups(sim: Simulation, ups: list[tuple[str, dict[str, Any]]]) -> Rehearsal:
    """Each (label, config) applied in turn, one `up` each, stopping at the first that fails (a
    fleet's walk, group by group: gp3migrate/sim/fleet_world.py walk_configs)."""
    rehearsal = Rehearsal(sim.stack, sim.seed)
    with RerunChecks() as checks:
        for label, config in ups:
            report = apply_up(sim, config, label, rerun_checks=checks)
            if not report.result.ok:
                # A walk injects no fault into a healthy world: each phase must go through.
                failed = f"{label}: {report.result.error}"
                report.violations.append(invariants.Violation(invariants.PHASE_COMPLETES, failed))
            rehearsal.phases.append(report)
            if not report.result.ok:
                break
    return rehearsal


def verdicts(report: PhaseReport) -> list[tuple[str, str, str]]:
    """(invariant, verdict, note): verdict ok, BROKEN or "not checked"; the note says against what."""
    broken = {v.invariant for v in report.violations}
    out = []
    for name in INVARIANTS:
        if name in broken:
            out.append((name, "BROKEN", ""))
        elif report.result.ok:
            out.append((name, "ok", ""))
        elif name in NOT_CHECKED_AFTER_FAILURE:
            out.append((name, "not checked", NOT_CHECKED_AFTER_FAILURE[name]))
        else:
            out.append((name, "ok", "checked against what the failed up left"))
    return out


def render_up(number: int, report: PhaseReport, tick_seconds: int) -> list[str]:
    lines = ["", f"== up {number}: {report.title or 'phase ' + report.phase} ==", "plan:"]
    if report.preview_error is not None:
        lines.append(f"  preview FAILED: {report.preview_error}")
    else:
        lines += [f"  {step.describe()}" for step in report.plan] or ["  (no changes)"]
    if report.result.preview:
        lines.append("up not run: it stops where its preview fails")
    else:
        lines.append("up succeeded" if report.result.ok else f"up FAILED: {report.result.error}")
    for warning in report.result.warnings:
        lines.append(f"  warning: {warning}")
    for action in report.user_actions:
        lines.append(f"  {action}")
    for workload, seconds in sorted(report.downtime_seconds.items()):
        lines.append(f"  downtime {workload}: {seconds} s simulated, from its stop to its pods running again")
    for key, out in sorted(report.migrations.items()):
        # No price for a region outside the dated table (volume_types/prices.py): say so, not $0.
        gp2, gp3 = out.get("monthlyPriceGp2"), out.get("monthlyPriceGp3")
        price = "price not in the table for this region" if gp2 is None else f"${gp2:.3f} -> ${gp3 or 0:.3f} a month"
        lines.append(
            f"  {key}: {out.get('strategy')} -> gp3 {int(out.get('plannedIops') or 0)} IOPS / "
            f"{int(out.get('plannedThroughput') or 0)} "
            f"MiB/s, {price}; "
            f"downtime steps: {', '.join(out.get('downtimeSteps') or []) or 'none'}"
        )
    copied = report.copied_gib
    lines.append(f"  bytes copied: {copied * 1024**3:,} ({copied} GiB restored from snapshots)")
    lines.append("invariants:")
    for name, verdict, note in verdicts(report):
        lines.append(f"  [{verdict}] {name}" + (f" ({note})" if note else ""))
    lines += [f"    - {v.detail}" for v in report.violations]
    return lines


def render(rehearsal: Rehearsal, tick_seconds: int, *, header: list[str] | None = None) -> str:
    lines = [
        f"Simulated rehearsal of stack {rehearsal.stack!r} (seed {rehearsal.seed}); clock ticks of {tick_seconds} s"
    ]
    lines += header or []
    for number, report in enumerate(rehearsal.phases, 1):
        lines += render_up(number, report, tick_seconds)
    lines.append("")
    total = sum(p.copied_gib for p in rehearsal.phases)
    lines.append(f"in all: {total * 1024**3:,} bytes copied")
    lines.append("all invariants held" if rehearsal.ok else "an invariant broke or an up failed (exit 1)")
    return "\n".join(lines)


def rehearse(config: dict[str, Any], *, stack: str, seed: int, driver: DriverSetup) -> Rehearsal:
    with Simulation(config, stack=stack, seed=seed, driver=driver) as sim:
        return walk(sim)
