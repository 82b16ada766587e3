"""One volume's migration: the component that parents the steps its strategy plans for the
current phase (gp3migrate/planning/strategies/), and publishes what it did.

The runbook of each strategy is in its own module (copy, rehome, modify); this module only asks
for the steps, merges every migration's into one graph (a workload's stop and start are shared:
gp3migrate/planning/step_graph.py) and turns them into resources (components/step_resources.py).

Each migration depends on the platform and on its workload's shared steps only, never on another
volume's steps, so volumes of different workloads migrate in parallel.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import type_token
from components.gate_providers import WorkloadScale
from components.step_resources import StepBuilder
from gp3migrate.config.phases import Applied
from gp3migrate.config.settings import Settings
from gp3migrate.planning import step_graph, strategies
from gp3migrate.planning.plan import MigrationPlan
from gp3migrate.planning.strategies import common

GIB = 1024**3


@dataclass(frozen=True)
class VolumeMigrationArgs:
    settings: Settings
    plan: MigrationPlan
    stack: str
    # What the last `up` applied for this volume (None: never applied).
    previous: Applied | None = None
    # The downtime the last cutover or rollback measured (the stack's outputs), kept by phases
    # without a window.
    previous_downtime: float | None = None


def _seconds_between(moments: list[Any]) -> float | None:
    began, ended = moments
    if not isinstance(began, int | float) or not isinstance(ended, int | float):
        return None  # a step recorded before it kept the time (an earlier release's state)
    return float(round(ended - began))


class VolumeMigration(pulumi.ComponentResource):
    applied: Applied
    outputs: dict[str, object]
    # Every step of this run, shared workload steps included: the phase record is published only
    # once all of them completed.
    steps: list[pulumi.CustomResource]

    def __init__(self, name: str, args: VolumeMigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("VolumeMigration"), name, None, opts)
        self.args = args
        ctx = common.Context(args.plan, args.settings, args.stack, args.previous)
        self.phase_plan = strategies.plan_phase(ctx)
        self.applied = common.applied(ctx)
        self.steps = []
        self.outputs = {}
        self._warn_about_templates()
        self._warn_about_unrecorded_cutovers()

    def _warn_about_templates(self) -> None:
        entry, settings = self.args.plan.entry, self.args.settings
        workload = entry.workload
        if entry.phase != "cutover" or workload is None:
            return
        if workload.template_storage_class == settings.storage.gp2_class_name:
            pulumi.log.warn(
                f"{entry.key}: StatefulSet {workload.name} still names {workload.template_storage_class!r} "
                "in its volumeClaimTemplates: new replicas would get gp2 volumes. The templates are immutable: "
                f"re-create the StatefulSet (kubectl delete sts {workload.name} --cascade=orphan, then apply "
                f"it with storageClassName: {self.args.plan.storage_class}).",
                resource=self,
            )

    def _warn_about_unrecorded_cutovers(self) -> None:
        entry, previous = self.args.plan.entry, self.args.previous
        if entry.phase == "rollback" and previous is not None and previous.phase == "precopy":
            # A cutover that failed part-way records nothing (issue 9 item 7), so this rollback
            # plans for a precopy: it would not undo what such a cutover created.
            does = "restarts the workload only"
            if entry.strategy == "rehome":
                # rehome._unused_csi_pv_delete: the one thing such a cutover leaves that is undone here.
                does = "restarts the workload and deletes the CSI PV a cutover left unused, nothing else"
            pulumi.log.warn(
                f"{entry.key}: rolling back from precopy {does}. If a cutover failed "
                "part-way since, set phase: cutover and run `pulumi up` to finish it first, then roll back.",
                resource=self,
            )

    def _downtime(self, steps: Sequence[pulumi.CustomResource]) -> pulumi.Output[float | None] | float | None:
        """Seconds from the workload's stop starting to its start being done (both scale steps
        record when: components/gate_providers.py _ScaleProvider); a phase without a window keeps
        the last one measured."""
        for stop_name, start_name in (("rollback-quiesce", "rollback-scale-back"), ("quiesce", "scale-back")):
            stop, start = _window_step(steps, stop_name), _window_step(steps, start_name)
            if stop is not None and start is not None:
                return pulumi.Output.all(stop.startedAt, start.completedAt).apply(_seconds_between)
        return self.args.previous_downtime

    def publish(self, steps: list[pulumi.CustomResource], by_name: Mapping[str, pulumi.CustomResource]) -> None:
        plan, entry = self.args.plan, self.args.plan.entry
        self.steps = steps
        prefix = f"{self._name}-"
        snapshot_ids = {key: by_name[prefix + step].id for key, step in self.phase_plan.published_ids.items()}
        self.outputs = {
            "phase": entry.phase,
            "strategy": entry.strategy,
            "strategyReason": entry.strategy_reason,
            "sourceVolume": entry.volume_id,
            "sourcePv": entry.pv,
            **snapshot_ids,
            "claim": self.phase_plan.claim,
            "storageClass": plan.storage_class,
            "plannedIops": plan.performance.iops,
            "plannedThroughput": plan.performance.throughput,
            "monthlyPriceGp2": plan.cost.gp2 if plan.cost else None,
            "monthlyPriceGp3": plan.cost.gp3 if plan.cost else None,
            # At most: a snapshot copies the blocks ever written; rehome and modify copy nothing.
            "bytesCopied": entry.size_gib * GIB if entry.strategy == "copy" else 0,
            # The steps of this phase inside the workload's downtime window (between stop and start).
            "downtimeSteps": self.phase_plan.downtime_steps(),
            "downtimeSeconds": self._downtime(steps),
        }
        self.register_outputs(self.outputs)


def _window_step(steps: Sequence[pulumi.CustomResource], step_name: str) -> WorkloadScale | None:
    """The workload's scale step of that name (shared: owned by the workload's first migration)."""
    for step in steps:
        name = step._name
        rollback_twin = not step_name.startswith("rollback-") and name.endswith(f"-rollback-{step_name}")
        if isinstance(step, WorkloadScale) and name.endswith(f"-{step_name}") and not rollback_twin:
            return step
    return None


def measured_downtime(previous_outputs: Mapping[str, Any]) -> dict[str, float]:
    """Migration key -> the downtime the stack's outputs last recorded for it."""
    recorded = previous_outputs.get("migrations")
    if not isinstance(recorded, Mapping):
        return {}
    found = {}
    for key, outputs in recorded.items():
        value = outputs.get("downtimeSeconds") if isinstance(outputs, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[str(key)] = float(value)
    return found


def declare_migrations(
    plans: Sequence[MigrationPlan],
    *,
    settings: Settings,
    stack: str,
    history: Mapping[str, Applied],
    previous_downtime: Mapping[str, float] | None = None,
    platform_for: Mapping[str, Sequence[pulumi.Resource]],
    kubeconfig: pulumi.Input[str],
    kube_context: str | None,
    opts: pulumi.ResourceOptions,
) -> dict[str, VolumeMigration]:
    """One VolumeMigration per plan, their steps built as one graph. `platform_for`: the platform
    resources each storage class's migrations wait for."""
    migrations = {
        plan.entry.key: VolumeMigration(
            plan.entry.resource_name,
            VolumeMigrationArgs(
                settings,
                plan,
                stack=stack,
                previous=history.get(plan.entry.key),
                previous_downtime=(previous_downtime or {}).get(plan.entry.key),
            ),
            opts=opts,
        )
        for plan in plans
    }
    graph = step_graph.build([step_graph.Member(m._name, m.args.plan.entry, m.phase_plan) for m in migrations.values()])
    builder = StepBuilder(
        parents={m._name: m for m in migrations.values()},
        platform_of={m._name: platform_for[m.args.plan.storage_class] for m in migrations.values()},
        kubeconfig=kubeconfig,
        kube_context=kube_context,
    )
    resources = builder.build(graph.nodes)
    for key, migration in migrations.items():
        migration.publish([resources[name] for name in graph.steps_of.get(key, ())], resources)
    return migrations
