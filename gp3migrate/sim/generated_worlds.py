"""Generated worlds (issue 21 item 1): clusters and stack files drawn from what discovery meets on
real clusters, walked through random legal phase sequences with faults, every invariant checked
after every `up`.

A world is rebuilt from its world seed alone, a walk from its walk seed and the world: the pair
replays exactly (`gp3migrate simulate --world-seed N --walk-seed M`).

What a world holds: 1-3 workloads, each a Deployment (1-3 claims, every pod mounts all of them) or a
StatefulSet (1-3 volumeClaimTemplates, one claim per template and ordinal), with 1-5 replicas or 0
(a StatefulSet at 0 keeps the claims of the ordinals it had); each workload's volumes share a zone
(its pods must attach all of them on one node), a filesystem (ext4, xfs or ext3), an encryption
(none, or a KMS key of the stack's `kmsKeyArns`), a strategy (rehome, modify or copy; the stack mixes
them) and a quiesce (an operator's workload is `manual`: the user stops it through the operator);
sizes are log-uniform from 1 GiB to 16 TiB. At most MAX_CLAIMS claims, so a walk stays within the
test budget: a workload that would pass it gets fewer replicas.

What a walk does, each `up` one of: advance some workloads one phase along their strategy's path
(rehearsal.strategy_path), the same with one step failing once (an injected AWS error or timeout),
`up --refresh` of what is applied, an edit (keepSnapshots), a rollback. Every `up` is a move the
program's phase rules allow (config/phases.py), so an `up` that fails without an injected fault, or a
stack the program refuses, is a finding (or a generator bug).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from gp3migrate.sim import invariants
from gp3migrate.sim.rehearsal import PhaseReport, Rehearsal, apply_up, strategy_path
from gp3migrate.sim.scenario import Faults, Simulation

MAX_CLAIMS = 8
MAX_SIZE_GIB = 16 * 1024  # gp2's largest volume (EBS volume types)
ACCOUNT = "123456789012"  # the simulated world's account (World's default)
REGIONS = ("eu-central-1", "us-east-1", "ap-southeast-2")
NAMESPACES = ("default", "data", "payments")
DEPLOYMENT_NAMES = ("web", "queue", "cache", "search")
STATEFULSET_NAMES = ("db", "kafka", "etcd", "mongo")
CLAIM_TEMPLATES = ("data", "wal", "logs")
FS_TYPES = ("ext4", "xfs", "ext3")
STRATEGIES = ("rehome", "modify", "copy")
# Steps that can fail once, per phase, as resource-name suffixes (gp3migrate/planning/strategies/;
# a name the up does not register never fires).
FAULT_STEPS = {
    "precopy": ("retain", "safety-snapshot", "volume-modify", "precopy-snapshot"),
    "cutover": (
        "quiesce",
        "detached",
        "final-snapshot",
        "content",
        "volume-snapshot",
        "release-old-claim",
        "csi-pv",
        "claim",
        "scale-back",
    ),
    "finalize": ("claim-bound", "source-released"),
    "cleanup": ("safety-snapshot", "precopy-snapshot", "final-snapshot"),
}
# How long the user waits for a workload they started again (what `kubectl rollout status` does).
START_WAIT_TICKS = 200
Move = Literal["advance", "fault", "refresh", "edit", "rollback"]


@dataclass(frozen=True)
class Shape:
    """One workload of a generated world and how its volumes migrate."""

    namespace: str
    name: str
    kind: Literal["Deployment", "StatefulSet"]
    replicas: int
    claims: tuple[str, ...]
    strategy: str
    claim_naming: str  # copy only
    quiesce: str
    operator: str | None


@dataclass(frozen=True)
class GeneratedWorld:
    world_seed: int
    config: dict[str, Any]
    shapes: tuple[Shape, ...]

    def describe(self) -> list[str]:
        lines = [f"generated world {self.world_seed} ({self.config['region']}):"]
        for shape in self.shapes:
            entries = [e for e in self.config["migrations"] if e["workload"]["name"] == shape.name]
            first = entries[0]
            sizes = ", ".join(f"{e['claim']} {e['sizeGiB']} GiB" for e in entries)
            lines.append(
                f"  {shape.kind} {shape.namespace}/{shape.name} x{shape.replicas}, {len(shape.claims)} claim(s) "
                f"({sizes}), {first['fsType']}, "
                f"{'encrypted' if first['encrypted'] else 'unencrypted'}, {shape.strategy}"
                + (f" {shape.claim_naming}" if shape.strategy == "copy" else "")
                + f", quiesce {shape.quiesce}"
                + (f" (operator {shape.operator})" if shape.operator else "")
            )
        return lines


def _hex(rng: random.Random, digits: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(digits))


def _uuid(rng: random.Random) -> str:
    return f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}"


def _size(rng: random.Random) -> int:
    """Log-uniform from 1 GiB to 16 TiB: most volumes are small, some are huge."""
    return max(1, min(MAX_SIZE_GIB, int(math.exp(rng.uniform(0, math.log(MAX_SIZE_GIB))))))


def generate(world_seed: int) -> GeneratedWorld:
    """The stack config of a generated cluster (each entry's volumeId a placeholder that the
    Simulation replaces with the id of the volume it seeds, as discovery would have written it)."""
    rng = random.Random(world_seed)
    region = rng.choice(REGIONS)
    config: dict[str, Any] = {
        "clusterName": f"gen-{world_seed % 1000}",
        "region": region,
        "driverInstall": "present",
        "driverVersion": "v1.53.0-eksbuild.1",
        "driverIdentity": "irsa",
        "managedPolicy": "v1",
        "snapshotSupport": "manifests",
        "snapshotterVersion": "v8.6.0",
        "gp3Encrypted": True,
        "demoteGp2": True,
        "performance": rng.choice(("sustained", "peak")),
        "migrations": [],
    }
    keys: list[str] = []
    shapes: list[Shape] = []
    budget = MAX_CLAIMS
    used: set[str] = set()
    for _ in range(rng.randint(1, 3)):
        if budget <= 0:
            break
        kind: Literal["Deployment", "StatefulSet"] = rng.choice(("Deployment", "StatefulSet"))
        namespace = rng.choice(NAMESPACES)
        name = rng.choice(DEPLOYMENT_NAMES if kind == "Deployment" else STATEFULSET_NAMES)
        if name in used:
            continue
        used.add(name)
        replicas = 0 if rng.random() < 0.2 else rng.randint(1, 5)
        per_pod = min(rng.randint(1, 3), budget)
        if kind == "Deployment":
            claims = tuple(f"{name}-{t}" for t in CLAIM_TEMPLATES[:per_pod])
        else:
            # At 0 replicas a StatefulSet keeps the claims of the ordinals it had (scale-down keeps them).
            ordinals = max(1, replicas) if replicas else rng.randint(1, 3)
            ordinals = max(1, min(ordinals, budget // per_pod))
            replicas = min(replicas, ordinals)
            templates = CLAIM_TEMPLATES[:per_pod]
            claims = tuple(f"{t}-{name}-{i}" for i in range(ordinals) for t in templates)
        budget -= len(claims)
        zone = f"{region}{rng.choice('abc')}"
        fs_type = rng.choice(FS_TYPES)
        key = None
        if rng.random() < 0.4:
            key = f"arn:aws:kms:{region}:{ACCOUNT}:key/{_uuid(rng)}"
            keys.append(key)
        # A copy's restored claim binds only once a pod uses it (WaitForFirstConsumer), and finalize
        # waits for that: a workload whose claims are not all mounted gets a zero-copy strategy.
        all_mounted = replicas > 0 and (kind == "Deployment" or len(claims) == replicas * per_pod)
        strategy = rng.choice(STRATEGIES if all_mounted else STRATEGIES[:2])
        # A StatefulSet's claim names come from its templates: it cannot be pointed at a renamed claim.
        claim_naming = rng.choice(("same-name", "rename")) if kind == "Deployment" else "same-name"
        operator = f"{name}-operator" if rng.random() < 0.25 else None
        quiesce = "manual" if operator or rng.random() < 0.15 else "scale"
        shape = Shape(namespace, name, kind, replicas, claims, strategy, claim_naming, quiesce, operator)
        shapes.append(shape)
        for claim in claims:
            config["migrations"].append(_entry(rng, shape, claim, zone, fs_type, key))
    if keys:
        config["kmsKeyArns"] = sorted(keys)
    return GeneratedWorld(world_seed, config, tuple(shapes))


def _entry(rng: random.Random, shape: Shape, claim: str, zone: str, fs_type: str, key: str | None) -> dict[str, Any]:
    size = _size(rng)
    workload: dict[str, Any] = {"kind": shape.kind, "name": shape.name, "replicas": shape.replicas}
    if shape.operator:
        workload["owner"] = {"apiVersion": "operator.example.com/v1", "kind": "Operated", "name": shape.operator}
    entry: dict[str, Any] = {
        "namespace": shape.namespace,
        "claim": claim,
        "pv": f"pvc-{_uuid(rng)}",
        "volumeId": f"vol-0{_hex(rng, 16)}",
        "zone": zone,
        "sizeGiB": size,
        "fsType": fs_type,
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "volumeType": "gp2",
        # gp2's baseline as describe-volumes reports it: 3 IOPS per GiB, 100 to 16,000.
        "iops": max(100, min(16_000, 3 * size)),
        "encrypted": key is not None,
        "workload": workload,
        "strategy": shape.strategy,
        "phase": "precopy",
        "quiesce": shape.quiesce,
    }
    if key is not None:
        entry["kmsKeyId"] = key
    if shape.strategy == "copy":
        entry["claimNaming"] = shape.claim_naming
    return entry


# -- the walk ------------------------------------------------------------------------------------


@dataclass
class Walk:
    """A walk of one generated world: the moves made, each `up`'s report, and what broke."""

    world: GeneratedWorld
    walk_seed: int
    moves: list[str] = field(default_factory=list)
    rehearsal: Rehearsal | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def replay(self) -> str:
        return f"gp3migrate simulate --world-seed {self.world.world_seed} --walk-seed {self.walk_seed}"


class _User:
    """The user's part of a walk: stopping a `quiesce: manual` workload before the `up` that needs
    it stopped, starting it again once that `up` is done, and pointing a renamed copy's workload
    back at its old claim before a rollback (README, "phase: cutover" and "rollback")."""

    def __init__(self, sim: Simulation, shapes: dict[str, Shape]):
        self.sim = sim
        self.shapes = shapes
        self.stopped: set[str] = set()

    def _scale(self, shape: Shape, replicas: int) -> None:
        world = self.sim.world
        if shape.operator:
            world.scale_through_operator(shape.namespace, shape.name, replicas)
        else:
            world.scale_workload(shape.namespace, shape.name, replicas)

    def before(self, name: str, phase: str, applied: str | None) -> list[str]:
        shape = self.shapes[name]
        actions = []
        if shape.strategy == "copy" and shape.claim_naming == "rename" and phase == "rollback" and applied == "cutover":
            for claim in shape.claims:
                self.sim.world.repoint_workload(shape.namespace, shape.name, f"{claim}-gp3", claim)
            actions.append(f"user: point {shape.name} back at its old claims")
        needs_stop = phase == "cutover" or (phase == "rollback" and applied == "cutover")
        if shape.quiesce == "manual" and needs_stop and name not in self.stopped:
            self._scale(shape, 0)
            self.stopped.add(name)
            actions.append(f"user: stop {shape.name}" + (f" through {shape.operator}" if shape.operator else ""))
        return actions

    def after(self) -> list[str]:
        world = self.sim.world
        started = [self.shapes[name] for name in sorted(self.stopped)]
        actions = []
        for name in sorted(self.stopped):
            shape = self.shapes[name]
            self._scale(shape, shape.replicas)
            actions.append(f"user: start {shape.name} again ({shape.replicas} replicas)")
        self.stopped.clear()
        for _ in range(START_WAIT_TICKS):
            if all(len(world.running_pods(s.namespace, s.name)) >= s.replicas for s in started):
                break
            world.tick()
        return actions


def _next_phase(shape: Shape, applied: str | None) -> str | None:
    """The next forward phase on the shape's strategy path after `applied` (None: at its end)."""
    path = strategy_path({"strategy": shape.strategy})
    if applied is None or applied == "rollback":
        return path[0]
    index = path.index(applied)
    return path[index + 1] if index + 1 < len(path) else None


def walk(world: GeneratedWorld, walk_seed: int, *, ups: int | None = None) -> Walk:
    """Up to `ups` (default 3-6, from the seed) legal moves on a fresh simulation of `world`."""
    rng = random.Random(walk_seed)
    result = Walk(world, walk_seed)
    shapes = {s.name: s for s in world.shapes}
    applied: dict[str, str | None] = {s.name: None for s in world.shapes}
    # The phase the stack file asks of each workload: after a failed `up` it stays there (the user
    # retries it, README "a cutover that failed part-way must be finished first").
    wanted: dict[str, str] = {s.name: "precopy" for s in world.shapes}
    keep: set[str] = set()
    with Simulation(world.config, stack="generated", seed=world.world_seed) as sim:
        user = _User(sim, shapes)
        rehearsal = Rehearsal(sim.stack, sim.seed)
        result.rehearsal = rehearsal
        for number in range(ups if ups is not None else rng.randint(3, 6)):
            kept = set(keep)
            move, phases, faults = _choose(rng, shapes, applied, wanted, keep)
            edited = ", ".join(sorted(keep - kept))
            wanted.update(phases)
            config = _config(sim.config, shapes, wanted, keep)
            moved = ", ".join(f"{n} {p}" for n, p in sorted(phases.items()))
            label = {"refresh": "up --refresh", "edit": f"keepSnapshots: true on {edited}"}.get(
                move, f"{move}: {moved}"
            )
            if faults is not None:
                label += f" ({', '.join(f'{r} {k}' for (r, _), k in faults.planned.items())} once)"
            result.moves.append(label)
            actions = [a for n, p in sorted(phases.items()) for a in user.before(n, p, applied[n])]
            report = apply_up(sim, config, label, faults=faults, refresh_first=move == "refresh", user=user.after)
            report.user_actions[:0] = actions
            report.title = label
            rehearsal.phases.append(report)
            fired = bool(faults and faults.fired)
            result.failures += _failures(number + 1, report, fired)
            if report.result.ok:
                applied.update(wanted)
    return result


def _choose(
    rng: random.Random,
    shapes: dict[str, Shape],
    applied: dict[str, str | None],
    wanted: dict[str, str],
    keep: set[str],
) -> tuple[Move, dict[str, str], Faults | None]:
    """A legal move, and the phase it asks of each workload it moves."""
    forward = {n: p for n in sorted(shapes) if (p := _next_phase(shapes[n], applied[n])) is not None}
    # Rollback from precopy or cutover, not over a phase that failed part-way (README: finish it first).
    can_roll = sorted(
        n
        for n in shapes
        if shapes[n].strategy != "modify" and applied[n] in ("precopy", "cutover") and wanted[n] == applied[n]
    )
    can_keep = sorted(
        n
        for n in shapes
        if shapes[n].strategy != "modify" and applied[n] in (None, "precopy", "cutover") and n not in keep
    )
    moves: list[Move] = ["refresh"]
    weights = [1.0]
    if forward:
        moves += ["advance", "fault"]
        weights += [4.0, 1.5]
    if can_roll:
        moves.append("rollback")
        weights.append(0.7)
    if can_keep:
        moves.append("edit")
        weights.append(0.5)
    move = rng.choices(moves, weights)[0]
    if move in ("advance", "fault"):
        names = sorted(rng.sample(sorted(forward), rng.randint(1, len(forward))))
        phases = {n: forward[n] for n in names}
        if move == "advance":
            return move, phases, None
        victim = shapes[rng.choice(names)]
        step = rng.choice(FAULT_STEPS[phases[victim.name]])
        resource = f"migrate-{victim.namespace}-{rng.choice(victim.claims)}-{step}"
        kind: Literal["error", "timeout"] = "timeout" if rng.random() < 0.2 else "error"
        return move, phases, Faults({(resource, "create"): kind})
    if move == "rollback":
        return move, {rng.choice(can_roll): "rollback"}, None
    if move == "edit":
        keep.add(rng.choice(can_keep))
    return move, {}, None


def _config(base: dict[str, Any], shapes: dict[str, Shape], wanted: dict[str, str], keep: set[str]) -> dict[str, Any]:
    """The stack file for the next `up`: every workload at the phase the user asks of it."""
    config = copy.deepcopy(base)
    for entry in config["migrations"]:
        name = entry["workload"]["name"]
        phase = wanted[name]
        entry["phase"] = phase
        entry.pop("deleteRestoredClaim", None)
        if phase == "rollback" and shapes[name].strategy == "copy":
            entry["deleteRestoredClaim"] = True
        if name in keep:
            entry["keepSnapshots"] = True
    return config


def _failures(number: int, report: PhaseReport, fault_fired: bool) -> list[str]:
    out = [f"up {number} ({report.phase}): {v}" for v in report.violations]
    if report.preview_error is not None:
        out.append(f"up {number} ({report.phase}): the program refused a legal stack: {report.preview_error}")
    elif not report.result.ok and not fault_fired:
        out.append(
            f"up {number} ({report.phase}): {invariants.PHASE_COMPLETES}: failed without an injected fault: "
            f"{report.result.error}"
        )
    return out


def run(world_seed: int, walk_seed: int, *, ups: int | None = None) -> Walk:
    return walk(generate(world_seed), walk_seed, ups=ups)
