"""The cluster's other owners during a migration (issue 22 items 3 and 5): Argo CD, Flux, Helm,
KEDA and a one-off scale-up, as modelled in gp3migrate/sim/kube/gitops.py, autoscalers.py, helm.py
and workloads.py (tests/sim/test_other_owners_world.py pins each rule), against the program with
each entry's `owners` recorded as discovery writes them (gp3migrate/discovery/other_owners.py, run
on the world's objects): the owners-held gate refuses an owner that would act in the window,
`holdOwners` holds and resumes it, the release re-checks the window right before its delete.

An owner acting right after the release (the old claim deleted, the program's claim not yet
created) recreates the claim; it binds the CSI PV, created before the release and pre-bound to the
claim's name, so it is served by the same volume, and the program's claim step stops on
AlreadyExists with nothing lost (`RightAfterTheRelease`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gp3migrate.config import window_owners
from gp3migrate.discovery.other_owners import OwnerIndex, owners_of
from gp3migrate.discovery.volumes import claim_metadata
from gp3migrate.sim import clock, invariants
from gp3migrate.sim.engine import Resource
from gp3migrate.sim.kube import HelmError
from gp3migrate.sim.scenario import Faults, Simulation
from tests.sim.test_scenarios import broken, dev, statefulset, up


class AtStep(Faults):
    """Something outside the program acts once, as the step named `step` starts (a step boundary of
    the window): a person, a controller resumed, an autoscaler. The world then moves one tick before
    the step goes on: between two of the engine's API calls the cluster's controllers run (the
    simulation otherwise gives a step that does not wait no time at all)."""

    def __init__(self, step: str, action: Callable[[], None]):
        super().__init__()
        self.step, self.action, self.done = step, action, False
        self.at = ""  # the step it fired at

    def due(self, resource: Resource) -> bool:
        return resource.name == self.step

    def __call__(self, world: Any) -> Callable[[Resource, Any], None]:
        def hook(resource: Resource, op: Any) -> None:
            if not self.done and op != "delete" and self.due(resource):
                self.done, self.at = True, resource.name
                self.action()
                clock.wait(world, 1)

        return hook


class RightAfterTheRelease(AtStep):
    """Fires as the first step after the release of the entry's old claim starts (the claim is gone
    and the program's claim not there yet), whichever step that is in the plan's order: the boundary
    where anything that recreates the claim used to get a new, empty volume."""

    def __init__(self, sim: Simulation, action: Callable[[], None]):
        super().__init__("", action)
        self.sim, self.entry = sim, sim.config["migrations"][0]

    def due(self, resource: Resource) -> bool:
        claim = (self.entry["namespace"], self.entry["claim"])
        return self.sim.world.kube.peek("PersistentVolumeClaim", *claim) is None


# What discovery lists to find the owners (gp3migrate/discovery/inventory.py): the owner kinds,
# HPAs and the workloads.
LISTED = [
    *((f"{r.group}/{r.version}", kind) for kind, r in window_owners.RESOURCES.items()),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
]


def discovered_owners(sim: Simulation, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's `owners` as `gp3migrate discover` writes them, from the world's objects now."""
    index = OwnerIndex([obj for api, kind in LISTED for obj in sim.world.kube.list(api, kind)])
    claim = sim.world.kube.peek("PersistentVolumeClaim", item["namespace"], item["claim"]) or {}
    return owners_of(claim, item.get("workload"), index, [])


@contextmanager
def owned(
    config: dict[str, Any], seed: int, own: Callable[[Simulation, list[tuple[str, str, str]]], None]
) -> Iterator[Simulation]:
    """A simulation whose first entry's workload and claim `own` gives an owner; every entry records
    its claim's labels and annotations (claimMetadata) and its owners as discovery does."""
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
            owners = discovered_owners(sim, item)
            if owners:
                item["owners"] = owners
        yield sim


def live(sim: Simulation, kind: str, namespace: str, name: str) -> dict[str, Any]:
    found = sim.world.kube.peek(kind, namespace, name)
    assert found is not None
    return found


def problems(sim: Simulation, result: Any, *, healthy: bool = True) -> list[str]:
    """What broke. In a world the program is told how to handle (every owner held, by a person or
    by holdOwners) a failed `up` breaks PHASE_COMPLETES; where a refusal is the design, it is
    listed as such."""
    found = broken(sim, result, rerun=False)
    if not result.ok and healthy:
        found.append(str(invariants.Violation(invariants.PHASE_COMPLETES, f"cutover: {result.error}")))
    elif not result.ok:
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


def replicas(sim: Simulation) -> int:
    entry = sim.config["migrations"][0]
    workload = live(sim, entry["workload"]["kind"], entry["namespace"], entry["workload"]["name"])
    return int(workload["spec"]["replicas"])


def test_a_keda_scaled_statefulset_whose_events_come_mid_window_is_refused_before_the_stop() -> None:
    """No event yet as the cutover starts, so nothing scales; a held gate that let it through would
    leave KEDA to scale the StatefulSet from 0 on the first event after the release: its controller
    creates the released claim from the template, on a new, empty volume (SERVED_BY_SOURCE)."""
    config = statefulset(replicas=1)
    for entry in config["migrations"]:
        for key in ("strategy", "claimNaming"):
            entry.pop(key, None)

    def keda_on_statefulset(sim: Simulation, objects: list[tuple[str, str, str]]) -> None:
        kind, ns, name = objects[0]
        sim.world.add_scaled_object(ns, "db", name)
        body = {"spec": {"scaleTargetRef": {"kind": kind, "name": name}}}
        sim.world.kube.patch("keda.sh/v1alpha1", "ScaledObject", ns, "db", body, "kubectl")

    with owned(config, 68, keda_on_statefulset) as sim:
        entry = sim.config["migrations"][0]
        ns = entry["namespace"]
        assert [o["kind"] for o in entry["owners"]] == ["ScaledObject"]
        assert up(sim, "precopy").ok
        at = AtStep(f"migrate-{ns}-{entry['claim']}-claim", lambda: sim.world.keda_active.add((ns, "db")))
        result = up(sim, "cutover", faults=at)
        caught(sim, result, by=f"ScaledObject {ns}/db scales the workload (it is not paused)")
        assert not at.done
        # Refused before the stop, not after it: the StatefulSet still runs its replica.
        assert replicas(sim) == 1
        assert [s.name for s in result.steps if s.name.endswith("-quiesce") and s.op == "create"] == []


def test_an_argocd_self_healing_deployment_is_refused_before_the_stop_naming_argocd() -> None:
    with owned(dev(), 60, argocd) as sim:
        assert [o["kind"] for o in sim.config["migrations"][0]["owners"]] == ["Application"]
        assert up(sim, "precopy").ok
        before = replicas(sim)
        result = up(sim, "cutover")
        assert not result.ok
        message = str(result.error)
        assert "Application argocd/app syncs automatically" in message, message
        assert window_owners.hold_command("Application", "app", "argocd") in message, message
        assert "holdOwners" in message, message
        # Refused before the stop: the app still runs on its claim.
        assert replicas(sim) == before > 0
        assert [s.name for s in result.steps if s.name.endswith("-quiesce") and s.op == "create"] == []
        assert problems(sim, result, healthy=False) == [f"up failed: {result.error}"]


def test_an_argocd_self_healing_deployment_held_by_the_program_passes_and_is_resumed_after() -> None:
    with owned(dev(), 60, argocd) as sim:
        assert up(sim, "precopy", holdOwners=True).ok
        result = up(sim, "cutover", holdOwners=True)
        assert problems(sim, result) == []
        held_around_the_window(result)
        app = live(sim, "Application", "argocd", "app")
        assert window_owners.ARGO_SKIP_RECONCILE not in (app["metadata"].get("annotations") or {})


def held_around_the_window(result: Any) -> None:
    """The program's hold comes first and is checked before the stop; the resume only after the
    workload was started again on its claim (a resume mid-window would let the owner undo it)."""
    started = [s.name.removeprefix("migrate-default-ebs-gp2-claim-") for s in result.steps if s.op == "create"]
    order = [n for n in ("hold-owners", "owners-held", "quiesce", "scale-back", "resume-owners") if n in started]
    assert order == ["hold-owners", "owners-held", "quiesce", "scale-back", "resume-owners"], started
    assert [started.index(n) for n in order] == sorted(started.index(n) for n in order), started


def caught(sim: Simulation, result: Any, *, by: str) -> None:
    """The `up` stopped on the program's own check (`by` in its error), and nothing else broke:
    the claim is still served by its source (SERVED_BY_SOURCE), nothing lost."""
    # What broke first: a defect that lets the window go on shows here, as the invariant it broke.
    assert problems(sim, result, healthy=False) == [f"up failed: {result.error}"]
    assert by in str(result.error), result.error


def recreated_on_the_csi_pv(sim: Simulation, result: Any, at: AtStep, *, source: str, volumes: set[str]) -> None:
    """Something recreated the claim right after the release, from a source naming the in-tree
    class. It bound the CSI PV, pre-bound to the claim's name before the release (the PV controller
    matches a pre-bound PV before any class check: component-helpers pv_helpers.go
    FindMatchingVolume), so the app runs on its own volume; the program's claim step stopped on
    AlreadyExists; no volume was provisioned; nothing broke (SERVED_BY_SOURCE, NO_WRITE_LOST...)."""
    entry = sim.config["migrations"][0]
    ns, name = entry["namespace"], entry["claim"]
    # pulumi-kubernetes await.go Creation: a create of an existing object fails (no upsert). What
    # broke first shows here (a new, empty volume: SERVED_BY_SOURCE).
    caught(sim, result, by=f"creating PersistentVolumeClaim {ns}/{name}: AlreadyExists")
    claim = live(sim, "PersistentVolumeClaim", ns, name)
    pv = live(sim, "PersistentVolume", "", claim["spec"]["volumeName"])
    assert claim["spec"]["storageClassName"] == "gp2" != pv["spec"]["storageClassName"]
    assert claim["status"]["phase"] == "Bound" and pv["metadata"]["name"] == f"{entry['pv']}-csi"
    assert pv["spec"]["csi"]["volumeHandle"] == source == sim.world.claim_volume(ns, name)
    assert ebs_volumes(sim) == volumes, "a volume was provisioned for the recreated claim"
    # The boundary right after the release is the program's own claim (the CSI PV exists already).
    assert at.done and at.at == f"migrate-{ns}-{name}-claim", at.at


def ebs_volumes(sim: Simulation) -> set[str]:
    return {v["VolumeId"] for v in sim.world.ec2().describe_volumes()["Volumes"]}


# The release's window re-check (gp3migrate/checks/preconditions.py wait_for_still_window) runs as
# the release starts and refuses an owner resumed by then; one resumed right after the release
# recreates the claim from git (the in-tree class, no volumeName), and it binds the CSI PV.
@pytest.mark.parametrize("boundary", ["release-old-claim", "right after the release"])
def test_argocd_resumed_by_a_person_mid_window_loses_nothing(boundary: str) -> None:
    with owned(dev(), 61, lambda sim, objs: argocd(sim, objs, skip_reconcile=True)) as sim:
        assert up(sim, "precopy").ok
        entry = sim.config["migrations"][0]
        source, volumes = sim.world.claim_volume(entry["namespace"], entry["claim"]), ebs_volumes(sim)
        if boundary == "release-old-claim":
            at = AtStep(f"migrate-default-{entry['claim']}-{boundary}", resume_argocd(sim))
            result = up(sim, "cutover", faults=at)
            assert at.done
            caught(sim, result, by="Application argocd/app syncs automatically")
            return
        at = RightAfterTheRelease(sim, resume_argocd(sim))
        result = up(sim, "cutover", faults=at)
        assert source is not None
        recreated_on_the_csi_pv(sim, result, at, source=source, volumes=volumes)


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


def keda(sim: Simulation, objects: list[tuple[str, str, str]]) -> None:
    sim.world.add_scaled_object(objects[0][1], "app", objects[0][2])
    sim.world.keda_active.add((objects[0][1], "app"))


def test_a_keda_scaled_deployment_is_refused_unless_paused() -> None:
    with owned(dev(), 65, keda) as sim:
        ns = sim.config["migrations"][0]["namespace"]
        assert up(sim, "precopy").ok
        before = replicas(sim)
        result = up(sim, "cutover")
        assert not result.ok
        message = str(result.error)
        assert f"ScaledObject {ns}/app scales the workload (it is not paused)" in message, message
        assert window_owners.hold_command("ScaledObject", "app", ns) in message, message
        assert replicas(sim) == before > 0
        assert problems(sim, result, healthy=False) == [f"up failed: {result.error}"]


def test_a_keda_scaled_deployment_held_by_the_program_passes_and_is_resumed_after() -> None:
    with owned(dev(), 65, keda) as sim:
        ns = sim.config["migrations"][0]["namespace"]
        assert up(sim, "precopy", holdOwners=True).ok
        result = up(sim, "cutover", holdOwners=True)
        assert problems(sim, result) == []
        held_around_the_window(result)
        scaled = live(sim, "ScaledObject", ns, "app")
        assert window_owners.KEDA_PAUSED_REPLICAS not in (scaled["metadata"].get("annotations") or {})


def test_a_paused_keda_scaled_object_lets_the_cutover_pass() -> None:
    def paused(sim: Simulation, objects: list[tuple[str, str, str]]) -> None:
        sim.world.add_scaled_object(objects[0][1], "app", objects[0][2], paused_replicas=0)
        sim.world.keda_active.add((objects[0][1], "app"))

    with owned(dev(), 66, paused) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert problems(sim, result) == []


def rehomed_statefulset() -> dict[str, Any]:
    config = statefulset(replicas=1)
    for entry in config["migrations"]:
        for key in ("strategy", "claimNaming"):
            entry.pop(key, None)
    return config


def test_a_one_off_scale_up_as_the_release_starts_is_refused_by_its_re_check() -> None:
    with owned(rehomed_statefulset(), 67, lambda sim, objs: None) as sim:
        entry = sim.config["migrations"][0]
        assert up(sim, "precopy").ok
        scale = lambda: sim.world.scale_up_once(entry["namespace"], "db", 1, who="someone")  # noqa: E731
        at = AtStep(f"migrate-{entry['namespace']}-{entry['claim']}-release-old-claim", scale)
        result = up(sim, "cutover", faults=at)
        assert at.done
        caught(sim, result, by="StatefulSet db was scaled to 1 during the window")


@pytest.mark.parametrize("seed", [67, 69])
def test_a_statefulset_scaled_up_by_a_person_right_after_the_release_keeps_its_volume(seed: int) -> None:
    """The StatefulSet controller creates the missing claim from its volumeClaimTemplate, which
    still names the in-tree class (kubernetes pkg/controller/statefulset
    createMissingPersistentVolumeClaims); it binds the CSI PV, not a new volume."""
    with owned(rehomed_statefulset(), seed, lambda sim, objs: None) as sim:
        entry = sim.config["migrations"][0]
        ns = entry["namespace"]
        templates = live(sim, "StatefulSet", ns, "db")["spec"]["volumeClaimTemplates"]
        assert [t["spec"]["storageClassName"] for t in templates] == ["gp2"]
        assert up(sim, "precopy").ok
        source, volumes = sim.world.claim_volume(ns, entry["claim"]), ebs_volumes(sim)
        assert source is not None
        at = RightAfterTheRelease(sim, lambda: sim.world.scale_up_once(ns, "db", 1, who="someone"))
        result = up(sim, "cutover", faults=at)
        recreated_on_the_csi_pv(sim, result, at, source=source, volumes=volumes)
        assert sim.world.running_pods(ns, "db") == ["db-0"]


def test_after_the_already_exists_the_documented_recovery_finishes_the_cutover() -> None:
    """What the user does next (README, "A cutover that stopped on AlreadyExists"). Re-running the
    cutover alone fails the same way: every step before the claim completed and is not run again,
    so only the claim's create runs, and the claim is there. The owner's claim is given back: hold
    the owner, stop the workload, wait for the detach, delete the claim (the CSI PV is Retain: the
    volume stays), clear the uid from the CSI PV's claimRef (Released -> Available, reserved for the
    name again: pv_controller.go syncVolume); then the unchanged cutover creates the program's
    claim, starts the workload and every invariant holds."""
    with owned(dev(), 61, lambda sim, objs: argocd(sim, objs, skip_reconcile=True)) as sim:
        assert up(sim, "precopy").ok
        entry = sim.config["migrations"][0]
        ns, name, workload = entry["namespace"], entry["claim"], entry["workload"]["name"]
        source, volumes = sim.world.claim_volume(ns, name), ebs_volumes(sim)
        assert source is not None
        at = RightAfterTheRelease(sim, resume_argocd(sim))
        recreated_on_the_csi_pv(sim, up(sim, "cutover", faults=at), at, source=source, volumes=volumes)

        again = up(sim, "cutover")
        assert [s.name.rsplit("-", 1)[-1] for s in again.steps if s.op == "create"] == ["claim"]
        caught(sim, again, by=f"creating PersistentVolumeClaim {ns}/{name}: AlreadyExists")

        csi_pv = live(sim, "PersistentVolumeClaim", ns, name)["spec"]["volumeName"]
        app = {"metadata": {"annotations": {window_owners.ARGO_SKIP_RECONCILE: "true"}}}
        sim.world.kube.patch("argoproj.io/v1alpha1", "Application", "argocd", "app", app, "kubectl")
        sim.world.scale_workload(ns, workload, 0)
        waited = 0
        while sim.world.ebs.attached_to(source) is not None:
            sim.world.tick()
            waited += 1
            assert waited < 100, "the volume never detached"
        sim.world.kube.delete("v1", "PersistentVolumeClaim", ns, name)
        sim.world.tick(2)
        assert sim.world.kube.peek("PersistentVolumeClaim", ns, name) is None
        clear = {"spec": {"claimRef": {"uid": None, "resourceVersion": None}}}
        sim.world.kube.patch("v1", "PersistentVolume", "", csi_pv, clear, "kubectl")
        sim.world.tick()
        assert live(sim, "PersistentVolume", "", csi_pv)["status"]["phase"] == "Available"

        finished = up(sim, "cutover")
        assert finished.ok, finished.error
        claim = live(sim, "PersistentVolumeClaim", ns, name)
        assert claim["spec"]["volumeName"] == csi_pv and claim["spec"]["storageClassName"] != "gp2"
        assert sim.world.claim_volume(ns, name) == source and ebs_volumes(sim) == volumes
        assert broken(sim, finished) == []
        assert sim.world.running_pods(ns, workload)


def test_a_rollback_after_a_cutover_refused_at_its_release_lets_the_next_cutover_pass() -> None:
    """The refused release leaves the CSI PV (created before it) unused and reserved for the
    claim's name; the rollback, planned as from precopy (nothing recorded), deletes it (Retain,
    not Bound), so the next cutover can create it again instead of failing on AlreadyExists."""
    with owned(dev(), 61, lambda sim, objs: argocd(sim, objs, skip_reconcile=True)) as sim:
        assert up(sim, "precopy").ok
        entry = sim.config["migrations"][0]
        source, csi_pv = sim.world.claim_volume(entry["namespace"], entry["claim"]), f"{entry['pv']}-csi"
        at = AtStep(f"migrate-default-{entry['claim']}-release-old-claim", resume_argocd(sim))
        caught(sim, up(sim, "cutover", faults=at), by="Application argocd/app syncs automatically")
        assert live(sim, "PersistentVolume", "", csi_pv)["status"]["phase"] == "Available"

        app = {"metadata": {"annotations": {window_owners.ARGO_SKIP_RECONCILE: "true"}}}
        sim.world.kube.patch("argoproj.io/v1alpha1", "Application", "argocd", "app", app, "kubectl")
        rollback = up(sim, "rollback")
        assert rollback.ok, rollback.error
        assert sim.world.kube.peek("PersistentVolume", "", csi_pv) is None
        assert broken(sim, rollback) == []
        assert up(sim, "precopy").ok
        cutover = up(sim, "cutover")
        assert cutover.ok, cutover.error
        assert broken(sim, cutover) == [] and sim.world.claim_volume(entry["namespace"], entry["claim"]) == source
