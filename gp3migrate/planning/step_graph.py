"""All migrations' steps as one graph, with one stop and one start per workload.

Each strategy plans one volume; a workload that mounts several migrated claims (a StatefulSet's
replicas, a Deployment with two claims) must still be stopped once, before any of its volumes is
cut over, and started once, after every one of them (issue 9 item 1: a scale-back per claim
restarted the pods while other claims were mid-cutover, and their writes landed on old volumes
after the final snapshot). The workload's steps (gp3migrate/planning/steps.py WORKLOAD_STEPS) are merged
here: one resource, owned by the workload's first migration (by key, so a single-claim workload
keeps the resource names it always had), waiting for what every member's copy waited for; and
every member's steps that waited for it wait for the one.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from gp3migrate.config.migration_entry import MigrationSettings
from gp3migrate.planning.steps import WORKLOAD_STEPS, PhasePlan, Ref, Step


@dataclass(frozen=True)
class Member:
    """One migration's phase plan, with the component name its resources are named after."""

    resource_name: str
    entry: MigrationSettings
    plan: PhasePlan


@dataclass(frozen=True)
class Node:
    owner: str  # the migration component that parents the resource
    name: str  # the resource name: `<owner>-<step>`
    step: Step
    after: tuple[str, ...]  # resource names


@dataclass(frozen=True)
class StepGraph:
    nodes: tuple[Node, ...]  # in an order where every node comes after what it waits for
    # Migration key -> resource names of every step its phase needs (shared ones included).
    steps_of: dict[str, tuple[str, ...]]


def _workload_key(entry: MigrationSettings) -> tuple[str, str, str] | None:
    if entry.workload is None:
        return None
    return (entry.namespace, entry.workload.kind, entry.workload.name)


def build(members: Sequence[Member]) -> StepGraph:
    # (workload, step name) -> owner resource name: the first member by key that declares it.
    owners: dict[tuple[tuple[str, str, str], str], str] = {}
    for member in sorted(members, key=lambda m: m.entry.key):
        workload = _workload_key(member.entry)
        for step in member.plan.steps:
            if workload is not None and step.name in WORKLOAD_STEPS:
                owners.setdefault((workload, step.name), member.resource_name)

    def owner_of(member: Member, step_name: str) -> str:
        workload = _workload_key(member.entry)
        if workload is not None and step_name in WORKLOAD_STEPS:
            return owners[(workload, step_name)]
        return member.resource_name

    nodes: dict[str, Node] = {}
    order: list[str] = []
    steps_of: dict[str, list[str]] = {}
    for member in members:
        declared = set(member.plan.names())
        names = steps_of.setdefault(member.entry.key, [])
        for step in member.plan.steps:
            # An output used as an input is a dependency too (as in Pulumi itself).
            waits_for = tuple(dict.fromkeys(step.after + _refs(step.body)))
            unknown = [dep for dep in waits_for if dep not in declared]
            if unknown:
                raise ValueError(f"{member.resource_name}-{step.name} waits for undeclared {', '.join(unknown)}")
            owner = owner_of(member, step.name)
            full = f"{owner}-{step.name}"
            after = tuple(f"{owner_of(member, dep)}-{dep}" for dep in waits_for)
            names.append(full)
            existing = nodes.get(full)
            if existing is None:
                nodes[full] = Node(owner, full, step, after)
                order.append(full)
                continue
            if existing.step.body != step.body:
                raise ValueError(
                    f"{full}: the migrations of one workload disagree on {step.name} "
                    f"({existing.step.body} and {step.body})"
                )
            nodes[full] = Node(owner, full, existing.step, tuple(dict.fromkeys(existing.after + after)))
    return StepGraph(_topological(nodes, order), {k: tuple(v) for k, v in steps_of.items()})


def _refs(value: object) -> tuple[str, ...]:
    if isinstance(value, Ref):
        return (value.step,)
    if isinstance(value, dict):
        return tuple(name for v in value.values() for name in _refs(v))
    if isinstance(value, (list, tuple)):
        return tuple(name for v in value for name in _refs(v))
    return ()


def _topological(nodes: dict[str, Node], order: list[str]) -> tuple[Node, ...]:
    """Kahn's order, stable in declaration order; a cycle is a planning bug, said as such."""
    placed: list[Node] = []
    done: set[str] = set()
    pending = list(order)
    while pending:
        ready = [name for name in pending if all(dep in done or dep not in nodes for dep in nodes[name].after)]
        if not ready:
            raise ValueError(f"steps wait for each other in a cycle: {', '.join(pending)}")
        for name in ready:
            placed.append(nodes[name])
            done.add(name)
        pending = [name for name in pending if name not in done]
    return tuple(placed)
