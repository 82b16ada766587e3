"""A simulated stack: a world seeded from the stack's config, and `up` / `preview` / `refresh` on it.

The world is what the stack's `migrations` entries describe (each volume an in-tree gp2 PV bound to
its claim, mounted by its workload, which writes a record every tick), on a cluster that runs what
every EKS >= 1.23 cluster with working in-tree volumes runs: the EBS CSI driver (CSI migration routes
in-tree volumes through it; EKS 1.23 release notes), unless the scenario asks for a bare cluster.
Volume ids are the world's own: the config handed to the program is the stack's with each entry's
`volumeId` replaced by the id of the volume seeded for it, as discovery would have written it.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gp3migrate.checks import preconditions
from gp3migrate.checks.volume_poller import VolumePoller
from gp3migrate.sim import clock, invariants
from gp3migrate.sim.ebs import printed_runner_policy
from gp3migrate.sim.engine import (
    Bailed,
    Checkpoint,
    Deployment,
    Op,
    Resource,
    Step,
    StepFailed,
    TimedOut,
    destroy,
    refresh,
)
from gp3migrate.sim.program import PROJECT, PROJECT_DIR, fully_qualified, run_program
from gp3migrate.sim.providers import SimProviders, parse_duration

FaultKind = Literal["error", "timeout"]
DYNAMIC = "pulumi-python:dynamic:Resource"
DriverSetup = Literal["addon", "helm", "none"]
# Operator time between two `up`s: the user reads the plan, runs the next command.
TICKS_BETWEEN_UPS = 3


def stack_file_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The `config:` map of Pulumi.<stack>.yaml, keys without the project prefix."""
    data = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    return {k.removeprefix(f"{PROJECT}:"): v for k, v in (data.get("config") or {}).items()}


def _wait_until(world: Any, deadline: float) -> None:
    """The rest of a timed-out await, yielding to the other steps in flight (clock.wait)."""
    if deadline > world.clock():
        clock.sleep(world, deadline - world.clock())


@dataclass
class Faults:
    """Failures to inject, each once: (resource name, operation) -> error or timeout."""

    planned: dict[tuple[str, Op], FaultKind] = field(default_factory=dict)
    fired: list[tuple[str, Op, FaultKind]] = field(default_factory=list)

    def __call__(self, world: Any) -> Callable[[Resource, Op], None]:
        def fault(resource: Resource, op: Op) -> None:
            kind = self.planned.pop((resource.name, op), None)
            if kind is None:
                return
            self.fired.append((resource.name, op, kind))
            if kind == "timeout":
                budget = parse_duration(resource.custom_timeouts.get("update" if op == "update" else "create"), 10 * 60)
                message = f"{resource.name}: injected timeout after {int(budget)}s ({op})"
                if resource.type != DYNAMIC:
                    # The object is created (or updated), then its await runs out of the budget: the
                    # engine saves it with init errors (engine.TimedOut; pulumi-kubernetes
                    # `partialError`, the terraform bridge's partial state).
                    deadline = world.clock() + budget
                    raise TimedOut(message, wait=lambda: _wait_until(world, deadline))
                # A dynamic provider has no partial state (pulumi `dynamic/__main__.py` Create
                # returns an id or an error): the project's gate waits out its budget, then fails.
                clock.sleep(world, budget)
                raise StepFailed(message)
            raise StepFailed(f"{resource.name}: injected AWS error (RequestLimitExceeded) during {op}")

        return fault


@dataclass
class UpResult:
    steps: list[Step]
    error: BaseException | None
    warnings: list[str]
    violations: list[invariants.Violation]
    preview: bool = False
    refreshed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.op not in ("same", "refresh", "read")]


class Simulation:
    """One stack on one simulated world, across many `up`s."""

    def __init__(self, config: dict[str, Any], *, stack: str = "dev", seed: int = 0, driver: DriverSetup = "addon"):
        from gp3migrate.sim.world import World

        self.stack = stack
        self.seed = seed
        region = str(config["region"])
        cluster = str(config["clusterName"])
        self.world = World(seed=seed, region=region, cluster_name=cluster)
        self.providers = SimProviders(self.world, region=region, cluster_name=cluster)
        self.checkpoint = Checkpoint()
        self.other_stacks: dict[str, dict[str, Any]] = {}
        self.history: list[UpResult] = []
        # (namespace, claim) -> the id of the volume seeded for it (`localized`).
        self.volume_ids: dict[tuple[str, str], str] = {}
        # (namespace, workload) -> its replicas as the world started, before any cutover.
        self.replicas_before: dict[tuple[str, str], int] = {}
        self.config = self._seed(copy.deepcopy(config), driver)

    def close(self) -> None:
        self.world.close()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the world the config describes ----------------------------------------------------

    def _seed(self, config: dict[str, Any], driver: DriverSetup) -> dict[str, Any]:
        world = self.world
        world.add_storage_class(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": config.get("gp2ClassName", "gp2"),
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubernetes.io/aws-ebs",
                "parameters": {"type": "gp2", "fsType": "ext4"},
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
            }
        )
        if driver != "none":
            world.install_ebs_csi_driver(how=driver, version="v1.53.0" if driver == "addon" else "2.53.0")
        # Keys the stack names are keys that exist, and the user granted the driver's role on them.
        listed = {str(k) for k in (config.get("kmsKeyArns") or [])} | (
            {str(config["gp3KmsKeyId"])} if config.get("gp3KmsKeyId") else set()
        )
        world.kms_keys |= listed
        world.driver_kms_keys |= listed
        entries = config.get("migrations") or []
        zones = sorted({str(e["zone"]) for e in entries})
        for zone in zones:
            world.add_node(f"node-{zone}", zone)
        workloads: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in entries:
            volume_id = world.add_in_tree_volume(
                namespace=entry["namespace"],
                claim=entry["claim"],
                pv=entry["pv"],
                size_gib=int(entry["sizeGiB"]),
                zone=entry["zone"],
                fs_type=entry.get("fsType", "ext4"),
                access_modes=tuple(entry.get("accessModes") or ("ReadWriteOnce",)),
                volume_mode=entry.get("volumeMode", "Filesystem"),
                encrypted=bool(entry.get("encrypted", False)),
                kms_key_id=entry.get("kmsKeyId"),
                # What discovery read from the in-tree PV (gp3migrate/discovery/volumes.py).
                partition=int(entry.get("partition") or 0),
                read_only=bool(entry.get("readOnly", False)),
                mount_options=tuple(entry.get("mountOptions") or ()),
            )
            entry["volumeId"] = volume_id
            self.volume_ids[(entry["namespace"], entry["claim"])] = volume_id
            if entry.get("kmsKeyId"):
                world.kms_keys.add(str(entry["kmsKeyId"]))
                # The cluster works today: CSI migration attaches this volume through the driver.
                world.driver_kms_keys.add(str(entry["kmsKeyId"]))
            workload = entry.get("workload")
            if workload:
                key = (entry["namespace"], workload["name"])
                spec = workloads.setdefault(
                    key, {"kind": workload["kind"], "replicas": int(workload["replicas"]), "claims": []}
                )
                spec["claims"].append(entry["claim"])
                # An operator's workload (discovery records its controller): it resets the replicas.
                spec["owner"] = (workload.get("owner") or {}).get("name")
        for (namespace, name), spec in sorted(workloads.items()):
            self.replicas_before[(namespace, name)] = spec["replicas"]
            if spec["kind"] == "StatefulSet":
                world.add_workload(
                    kind="StatefulSet",
                    namespace=namespace,
                    name=name,
                    replicas=spec["replicas"],
                    claim_templates=_claim_templates(spec["claims"], name),
                    owner=spec["owner"],
                )
            else:
                world.add_workload(
                    kind="Deployment",
                    namespace=namespace,
                    name=name,
                    replicas=spec["replicas"],
                    claims=sorted(spec["claims"]),
                    owner=spec["owner"],
                )
        world.tick(TICKS_BETWEEN_UPS)
        return config

    # -- Pulumi operations -------------------------------------------------------------------

    def _deployment(
        self, checkpoint: Checkpoint, *, dry_run: bool, faults: Faults | None, on_step: Callable[[Step], None]
    ) -> Deployment:
        own = fully_qualified(self.stack)

        def outputs_of(name: str) -> dict[str, Any]:
            return (
                copy.deepcopy(checkpoint.outputs) if fully_qualified(name) == own else self.other_stacks.get(name, {})
            )

        return Deployment(
            checkpoint,
            self.providers,
            dry_run=dry_run,
            fault=faults(self.world) if faults else None,
            on_step=on_step,
            stack_outputs=outputs_of,
            invoke=self.providers.invoke,
            remote=self.providers.remote_component,
            rng=random.Random(self._order_seed()),
        )

    def _order_seed(self) -> int:
        """The seed of this `up`'s order of steps: the program's registrations, then its deletes."""
        return self.seed * 1000 + len(self.history)

    def up(
        self,
        config: dict[str, Any] | None = None,
        *,
        refresh_first: bool = False,
        faults: Faults | None = None,
        preview: bool = False,
    ) -> UpResult:
        """`pulumi up` (or `pulumi preview`) with this config; `refresh_first` is `--refresh`."""
        config = self.config if config is None else config
        steps: list[Step] = []
        violations: list[invariants.Violation] = []
        watched = invariants.one_way_steps(config) if not preview else {}
        let_go = invariants.source_deletions(config) if not preview else {}
        restores = invariants.restore_sources(config) if not preview else {}
        claims = invariants.ClaimsWatch(self, [config, self.config]) if not preview else None

        def on_step(step: Step) -> None:
            steps.append(step)
            if claims is not None:
                violations.extend(invariants.before_one_way_step(self, watched, step))
                violations.extend(invariants.before_source_let_go(self, let_go, step))
                violations.extend(invariants.before_restore_let_go(self, restores, step))
                violations.extend(claims.check(where=_since(steps)))
                violations.extend(invariants.after_step(self, step))

        # Entries the last applied config had and this one lets go of (removed, or under `forget`).
        kept = {(e["namespace"], e["claim"]) for e in config.get("migrations") or []}
        removed = [e for e in self.config.get("migrations") or [] if (e["namespace"], e["claim"]) not in kept]
        before = invariants.holdings(self, {"migrations": removed}) if removed and not preview else None
        checkpoint = self.checkpoint
        if refresh_first:
            checkpoint = refresh(checkpoint, self.providers, on_step)
            if not preview:
                self.checkpoint = checkpoint
        deployment = self._deployment(checkpoint, dry_run=preview, faults=faults, on_step=on_step)
        with self.gate_clients(), self.world.ebs.runner(printed_runner_policy(config, self.stack)):
            run = run_program(deployment, config, stack=self.stack, preview=preview, seed=self._order_seed())
            if run.error is not None and deployment.error is None:
                # A program that fails ends the update before the delete phase (step_generator.go
                # GenerateDeletes runs only after the program completed).
                deployment.error = run.error
            saved = deployment.finish()
        error = deployment.error or run.error
        if isinstance(error, Bailed) and deployment.error is not None:
            error = deployment.error
        if claims is not None:
            violations.extend(claims.check(where=_since(steps, end=True)))
        if before is not None:
            what = "an up without " + ", ".join(f"{e['namespace']}/{e['claim']}" for e in removed)
            violations += invariants.kept_when_let_go(self, before, what=what)
        result = UpResult(steps, error, run.warnings, violations, preview=preview, refreshed=refresh_first)
        if not preview:
            self.checkpoint = saved
            self.history.append(result)
            self.world.tick(TICKS_BETWEEN_UPS)
        return result

    def destroy(self, *, exclude_protected: bool = False) -> UpResult:
        """`pulumi destroy` (engine.destroy): no program; a protected resource fails its preview
        unless `exclude_protected` (`--exclude-protected`) leaves it and what it depends on."""
        steps: list[Step] = []
        violations: list[invariants.Violation] = []
        before = invariants.holdings(self, self.config)
        claims = invariants.ClaimsWatch(self, [self.config])

        def on_step(step: Step) -> None:
            steps.append(step)
            violations.extend(claims.check(where=_since(steps)))
            violations.extend(invariants.after_step(self, step))

        with self.world.ebs.runner(printed_runner_policy(self.config, self.stack)):
            self.checkpoint, error = destroy(
                self.checkpoint,
                self.providers,
                on_step,
                exclude_protected=exclude_protected,
                rng=random.Random(self._order_seed()),
            )
        violations += claims.check(where=_since(steps, end=True))
        self.world.tick(TICKS_BETWEEN_UPS)
        violations += invariants.kept_when_let_go(self, before, what="pulumi destroy")
        result = UpResult(steps, error, [], violations)
        self.history.append(result)
        return result

    def state_delete(self, name: str, *, force: bool = False, target_dependents: bool = False) -> list[str]:
        """`pulumi state delete <urn>`: the resource leaves the state and stays where it is. Refused
        for a protected one unless `--force`, and for one others depend on or are parented to
        unless `--target-dependents`, which takes them out too (pulumi
        `pkg/cmd/pulumi/state/state_delete.go`, `pkg/resource/edit` DeleteResource). Returns the
        names taken out of the state."""
        target = self.checkpoint.named(name)
        if target is None:
            raise StepFailed(f"no resource named {name!r} in the state")
        if target.protect and not force:
            raise StepFailed(f"{target.urn} can't be safely deleted because it is protected")
        condemned = {target.urn}
        while True:
            dependents = {
                r.urn
                for r in self.checkpoint.resources
                if r.urn not in condemned and (r.depends_on() | {r.provider.rsplit("::", 1)[0]}) & condemned
            }
            if not dependents:
                break
            if not target_dependents:
                raise StepFailed(f"{target.urn} can't be safely deleted because other resources depend on it")
            condemned |= dependents
        if not force and any(r.protect for r in self.checkpoint.resources if r.urn in condemned):
            raise StepFailed(f"{target.urn} can't be safely deleted: a dependent is protected")
        taken = [r.name for r in self.checkpoint.resources if r.urn in condemned]
        self.checkpoint.resources = [r for r in self.checkpoint.resources if r.urn not in condemned]
        return taken

    def remove_stack(self, *, force: bool = False) -> list[invariants.Violation]:
        """`pulumi stack rm`: refused while the state holds resources ("still has resources; removal
        rejected"), unless `--force`, which drops the state and leaves every resource where it is
        (pulumi `pkg/cmd/pulumi/stack/stack_remove.go`, backend RemoveStack)."""
        if self.checkpoint.resources and not force:
            raise StepFailed(f"{self.stack!r} still has resources; removal rejected")
        before = invariants.holdings(self, self.config)
        self.checkpoint = Checkpoint()
        self.world.tick(TICKS_BETWEEN_UPS)
        return invariants.kept_when_let_go(self, before, what="pulumi stack rm --force")

    @contextmanager
    def gate_clients(self) -> Iterator[None]:
        """The project's gate code (gp3migrate/checks/preconditions.py) on the world's clients and clock."""
        world = self.world
        original = preconditions.RUNTIME
        preconditions.RUNTIME = preconditions.Runtime(
            ec2=lambda region: world.ec2(),
            sleep=lambda seconds: clock.sleep(world, seconds),
            clock=world.clock,
            now=world.clock,
            # A waiter whose batch call is in flight lets a tick pass (volume_poller.py VolumePoller).
            poller=VolumePoller(pause=lambda: clock.sleep(world, clock.TICK_SECONDS)),
            core_api=lambda kubeconfig, context: world.core_api(),
            apps_api=lambda kubeconfig, context: world.apps_api(),
            custom_api=lambda kubeconfig, context: world.custom_api(),
            kms=lambda region: world.kms(),
            iam=lambda region: world.iam(),
        )
        try:
            yield
        finally:
            preconditions.RUNTIME = original

    def preview(self, config: dict[str, Any] | None = None, *, refresh_first: bool = False) -> UpResult:
        return self.up(config, refresh_first=refresh_first, preview=True)

    def localized(self, config: dict[str, Any]) -> dict[str, Any]:
        """A stack file's config with each entry's volumeId the one this world seeded for its claim."""
        config = copy.deepcopy(config)
        for entry in config.get("migrations") or []:
            entry["volumeId"] = self.volume_ids.get((entry["namespace"], entry["claim"]), entry.get("volumeId"))
        return config

    def with_entries(self, **changes: Any) -> dict[str, Any]:
        """The current config with every migration entry changed (e.g. phase="cutover")."""
        config = copy.deepcopy(self.config)
        for entry in config.get("migrations") or []:
            entry.update(changes)
        return config


def _since(steps: list[Step], *, end: bool = False) -> str:
    """Where a change seen as a step starts (or at the end) happened: after the step before it."""
    done = steps if end else steps[:-1]
    if not done:
        return "before the first step"
    last = f"after {done[-1].op} {done[-1].name}"
    return f"{last} (the last step)" if end else f"{last}, as {steps[-1].op} {steps[-1].name} started"


def _claim_templates(claims: list[str], statefulset: str) -> list[str]:
    """`<template>-<statefulset>-<ordinal>` -> each `<template>`, sorted (the StatefulSet claim naming,
    getPersistentVolumeClaimName; a StatefulSet may have several volumeClaimTemplates)."""
    marker = f"-{statefulset}-"
    return sorted({claim.rsplit(marker, 1)[0] if marker in claim else claim for claim in claims})
