"""The cluster's other owners during a migration, on today's program (issue 22 item 5): Argo CD,
Flux, Helm, KEDA and a one-off scale-up, as modelled in gp3migrate/sim/kube/gitops.py,
autoscalers.py, helm.py and workloads.py (tests/sim/test_other_owners_world.py pins each rule).

Where today's program loses data or the application, or starts a window an owner can undo, the
scenario is a strict xfail naming issue 22 item 3 (the program's refusals and holds): fixing it
turns the test red until the marker goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gp3migrate.discovery.volumes import claim_metadata
from gp3migrate.sim import clock, invariants
from gp3migrate.sim.engine import Resource
from gp3migrate.sim.kube import HelmError
from gp3migrate.sim.scenario import Faults, Simulation
from tests.sim.test_scenarios import broken, dev, statefulset, up


def item3(what: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"issue 22 item 3: {what}")


class AtStep(Faults):
    """Something outside the program acts once, as the step named `step` starts (a step boundary of
    the window): a person, a controller resumed, an autoscaler. The world then moves one tick before
    the step goes on: between two of the engine's API calls the cluster's controllers run (the
    simulation otherwise gives a step that does not wait no time at all)."""

    def __init__(self, step: str, action: Callable[[], None]):
        super().__init__()
        self.step, self.action, self.done = step, action, False

    def __call__(self, world: Any) -> Callable[[Resource, Any], None]:
        def hook(resource: Resource, op: Any) -> None:
            if not self.done and resource.name == self.step and op != "delete":
                self.done = True
                self.action()
                clock.wait(world, 1)

        return hook


@contextmanager
def owned(
    config: dict[str, Any], seed: int, own: Callable[[Simulation, list[tuple[str, str, str]]], None]
) -> Iterator[Simulation]:
    """A simulation whose first entry's workload and claim `own` gives an owner; every entry records
    its claim's labels and annotations as discovery does (claimMetadata)."""
    with Simulation(config, seed=seed) as sim:
        entry = sim.config["migrations"][0]
        kind, ns, name = entry["workload"]["kind"], entry["namespace"], entry["workload"]["name"]
        own(sim, [(kind, ns, name), *(("PersistentVolumeClaim", ns, e["claim"]) for e in sim.config["migrations"])])
        for item in sim.config["migrations"]:
            recorded = claim_metadata(
                sim.world.kube.peek("PersistentVolumeClaim", item["namespace"], item["claim"]) or {}
            )
            if recorded:
                item["claimMetadata"] = recorded
        yield sim


def problems(sim: Simulation, result: Any) -> list[str]:
    found = broken(sim, result, rerun=False)
    if not result.ok:
        found.append(f"up failed: {result.error}")
    sim.world.tick(20)  # the owners act on after the window
    found += [f"later: {v}" for v in invariants.after_phase(sim, sim.config)]
    return found


def argocd(sim: Simulation, objects: list[tuple[str, str, str]], **kwargs: Any) -> None:
    sim.world.add_argocd_application("app", objects, **kwargs)


def resume_argocd(sim: Simulation) -> Callable[[], None]:
    def resume() -> None:
        body = {"metadata": {"annotations": None}}
        sim.world.kube.patch("argoproj.io/v1alpha1", "Application", "argocd", "app", body, "kubectl")

    return resume


@item3(
    "an Argo CD self-healing owner is not detected: the cutover stops the app, Argo CD starts it "
    "again within a tick, and the detach gate fails after 900 s blaming a terminating pod"
)
def test_an_argocd_self_healing_deployment_is_refused_before_the_stop_naming_argocd() -> None:
    with owned(dev(), 60, argocd) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert "argocd" in str(result.error).lower()


@item3(
    "Argo CD resumed mid-window recreates the released claim from git: a new empty gp2 volume under "
    "the claim's name, the app starts on it"
)
def test_argocd_resumed_after_the_old_claim_is_released_loses_nothing() -> None:
    with owned(dev(), 61, lambda sim, objs: argocd(sim, objs, skip_reconcile=True)) as sim:
        assert up(sim, "precopy").ok
        at = AtStep(f"migrate-default-{sim.config['migrations'][0]['claim']}-csi-pv", resume_argocd(sim))
        result = up(sim, "cutover", faults=at)
        assert at.done
        assert problems(sim, result) == []


def test_an_argocd_application_held_by_skip_reconcile_lets_the_cutover_pass() -> None:
    with owned(dev(), 62, lambda sim, objs: argocd(sim, objs, skip_reconcile=True)) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert problems(sim, result) == []


def test_a_flux_suspended_kustomization_lets_the_cutover_pass() -> None:
    def flux(sim: Simulation, objects: list[tuple[str, str, str]]) -> None:
        sim.world.add_flux_kustomization("app", objects, suspend=True)

    with owned(dev(), 63, flux) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert problems(sim, result) == []


def test_a_helm_owned_claim_keeps_its_release_and_helm_upgrade_needs_the_new_class_in_the_chart() -> None:
    """The claim identity (item 1) keeps Helm's ownership metadata, so no "invalid ownership
    metadata"; what fails an unchanged chart's upgrade is the claim's immutable class, until the
    chart names the class now serving the claim (item 4 says so)."""

    def helm(sim: Simulation, objects: list[tuple[str, str, str]]) -> None:
        sim.world.add_helm_release("app", objects[0][1], objects)

    with owned(dev(), 64, helm) as sim:
        ns, claim = sim.config["migrations"][0]["namespace"], sim.config["migrations"][0]["claim"]
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert problems(sim, result) == []
        with pytest.raises(HelmError, match="spec is immutable") as failed:
            sim.world.helm_upgrade("app", ns)
        assert "ownership" not in str(failed.value)
        live = sim.world.kube.peek("PersistentVolumeClaim", ns, claim)
        assert live is not None
        for manifest in sim.world.helm_releases[(ns, "app")]:
            if manifest["kind"] == "PersistentVolumeClaim":
                manifest["spec"]["storageClassName"] = live["spec"]["storageClassName"]
        sim.world.helm_upgrade("app", ns)
        sim.world.tick(5)
        assert [str(v) for v in invariants.after_phase(sim, sim.config)] == []


@item3(
    "a KEDA ScaledObject is not detected: the cutover's stop is undone on the next event and the "
    "detach gate fails after 900 s"
)
def test_a_keda_scaled_deployment_is_refused_unless_paused() -> None:
    def keda(sim: Simulation, objects: list[tuple[str, str, str]]) -> None:
        sim.world.add_scaled_object(objects[0][1], "app", objects[0][2])
        sim.world.keda_active.add((objects[0][1], "app"))

    with owned(dev(), 65, keda) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert "keda" in str(result.error).lower()


def test_a_paused_keda_scaled_object_lets_the_cutover_pass() -> None:
    def keda(sim: Simulation, objects: list[tuple[str, str, str]]) -> None:
        sim.world.add_scaled_object(objects[0][1], "app", objects[0][2], paused_replicas=0)
        sim.world.keda_active.add((objects[0][1], "app"))

    with owned(dev(), 66, keda) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert problems(sim, result) == []


@item3(
    "a one-off scale-up after the old claim is released: the StatefulSet controller creates the claim "
    "from its template on a new empty volume, the program's claim step fails with AlreadyExists, the "
    "app writes to the empty volume"
)
@pytest.mark.parametrize("boundary", ["csi-pv", "claim"])
def test_a_one_off_scale_up_after_the_release_loses_nothing(boundary: str) -> None:
    config = statefulset(replicas=1)
    for entry in config["migrations"]:
        for key in ("strategy", "claimNaming"):
            entry.pop(key, None)
    with owned(config, 67, lambda sim, objs: None) as sim:
        entry = sim.config["migrations"][0]
        assert up(sim, "precopy").ok
        scale = lambda: sim.world.scale_up_once(entry["namespace"], "db", 1, who="someone")  # noqa: E731
        at = AtStep(f"migrate-{entry['namespace']}-{entry['claim']}-{boundary}", scale)
        result = up(sim, "cutover", faults=at)
        assert at.done
        assert problems(sim, result) == []
