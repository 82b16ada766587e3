"""The cluster's other owners in the simulated world (issue 22 item 5), one rule per test: objects
before, ticks, objects after. Each rule cites its upstream source where it is encoded
(gp3migrate/sim/kube/gitops.py, autoscalers.py, helm.py, workloads.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gp3migrate.sim.kube import HelmError
from gp3migrate.sim.kube.gitops import FLUX_RECONCILE, SKIP_RECONCILE
from gp3migrate.sim.world import World
from tests.sim.test_world_rules import NS, ZONE_A, make_world

APP = [("Deployment", NS, "app"), ("PersistentVolumeClaim", NS, "data")]


@pytest.fixture
def world() -> Iterator[World]:
    """A Deployment `app` (1 replica) writing to claim `data` on an in-tree gp2 volume."""
    with make_world() as built:
        built.add_in_tree_volume(namespace=NS, claim="data", pv="pv-data", size_gib=10, zone=ZONE_A)
        built.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
        built.tick(6)
        assert built.running_pods(NS, "app")
        yield built


def replicas(world: World, name: str = "app", kind: str = "Deployment") -> int:
    found = world.kube.peek(kind, NS, name)
    assert found is not None
    return int(found["spec"]["replicas"])


def delete_claim_stopped(world: World) -> str:
    """Scale the app to 0, wait for its pod to go, delete its claim: what a cutover does. Returns
    the source volume."""
    source = world.claim_volume(NS, "data")
    assert source is not None
    world.scale_workload(NS, "app", 0)
    world.tick(6)
    world.core_api().patch_persistent_volume("pv-data", {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
    world.tick(1)
    assert world.kube.peek("PersistentVolumeClaim", NS, "data") is None
    return source


# -- Argo CD -------------------------------------------------------------------------------------------


def test_argocd_self_heal_brings_replicas_back_and_a_deleted_claim_back_on_a_new_empty_volume(world: World) -> None:
    world.add_argocd_application("app", APP, skip_reconcile=True)
    source = delete_claim_stopped(world)
    # Resumed (the annotation removed) while the claim is gone:
    world.kube.patch(
        "argoproj.io/v1alpha1", "Application", "argocd", "app", {"metadata": {"annotations": None}}, "kubectl"
    )
    world.tick(12)
    assert replicas(world) == 1
    volume = world.claim_volume(NS, "data")
    assert volume is not None and volume != source
    assert world.volume_content(volume)[:1] != world.volume_content(source)[:1]
    assert not any(r in world.volume_content(volume) for r in world.volume_content(source))
    assert world.running_pods(NS, "app")


@pytest.mark.parametrize("held", ["skip-reconcile", "automated off", "no self-heal"])
def test_a_held_argocd_application_changes_nothing(world: World, held: str) -> None:
    world.add_argocd_application(
        "app",
        APP,
        skip_reconcile=held == "skip-reconcile",
        automated=held != "automated off",
        self_heal=held != "no self-heal",
    )
    delete_claim_stopped(world)
    world.tick(12)
    assert replicas(world) == 0
    assert world.kube.peek("PersistentVolumeClaim", NS, "data") is None
    app = world.kube.peek("Application", "argocd", "app")
    assert app is not None
    if held != "skip-reconcile":
        assert app["status"]["sync"]["status"] == "OutOfSync"
    else:
        assert SKIP_RECONCILE in app["metadata"]["annotations"]


def test_argocd_applying_the_old_claim_over_a_claim_of_another_class_fails_and_is_not_retried(world: World) -> None:
    world.add_argocd_application("app", APP)
    world.add_storage_class(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "other"},
            "provisioner": "ebs.csi.aws.com",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    # The claim now names another class (as after a cutover to gp3): git still says gp2.
    with world.kube.edit("PersistentVolumeClaim", NS, "data", "test") as claim:
        claim["spec"]["storageClassName"] = "other"
    world.tick(3)
    events = [e for e in world.events_for("Application", "argocd", "app") if e.reason == "SyncError"]
    assert events and "immutable" in events[0].message and events[0].count == 1
    app = world.kube.peek("Application", "argocd", "app")
    assert app is not None and app["status"]["operationState"]["phase"] == "Failed"
    # Failed once for this revision: not retried, even when the replicas drift afterwards.
    world.scale_workload(NS, "app", 0)
    world.tick(10)
    assert replicas(world) == 0
    app = world.kube.peek("Application", "argocd", "app")
    assert app is not None and "Failed last sync attempt" in app["status"]["conditions"][0]["message"]


# -- Flux -----------------------------------------------------------------------------------------------


def test_flux_reverts_on_its_interval_only(world: World) -> None:
    world.add_flux_kustomization("app", APP, interval="1m")  # 12 ticks
    world.scale_workload(NS, "app", 0)
    world.tick(1)
    assert replicas(world) == 0
    world.tick(12)
    assert replicas(world) == 1


@pytest.mark.parametrize("held", ["suspend", "reconcile disabled"])
def test_a_held_flux_kustomization_keeps_replicas_and_only_suspend_keeps_a_deleted_claim_away(
    world: World, held: str
) -> None:
    world.add_flux_kustomization("app", APP, interval="30s", suspend=held == "suspend")
    if held == "reconcile disabled":
        for kind, namespace, name in APP:
            world.kube.patch(
                "apps/v1" if kind == "Deployment" else "v1",
                kind,
                namespace,
                name,
                {"metadata": {"annotations": {FLUX_RECONCILE: "disabled"}}},
                "kubectl",
            )
    delete_claim_stopped(world)
    world.tick(20)
    assert replicas(world) == 0
    # The annotation is read on the live object (or in git): a claim deleted meanwhile has none, so
    # kustomize-controller creates it again from git unless the Kustomization is suspended.
    recreated = world.kube.peek("PersistentVolumeClaim", NS, "data") is not None
    assert recreated == (held == "reconcile disabled")


def test_argocd_self_heal_reverts_a_scale_to_zero_within_a_tick(world: World) -> None:
    world.add_argocd_application("app", APP)
    world.scale_workload(NS, "app", 0)
    world.tick(1)
    assert replicas(world) == 1


def test_flux_recreates_a_deleted_claim_on_a_new_volume(world: World) -> None:
    world.add_flux_kustomization("app", APP, interval="30s", suspend=True)
    source = delete_claim_stopped(world)
    world.kube.patch(
        "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system", "app", {"spec": {"suspend": False}}, "flux"
    )
    world.tick(20)
    volume = world.claim_volume(NS, "data")
    assert volume is not None and volume != source
    assert replicas(world) == 1


# -- Helm -----------------------------------------------------------------------------------------------


def test_helm_upgrade_refuses_an_object_it_adds_that_exists_without_its_ownership_metadata(world: World) -> None:
    world.add_helm_release("app", NS, [APP[0]])
    manifests = world.helm_releases[(NS, "app")]
    world.helm_releases[(NS, "app")] = [*manifests, *world._manifests([APP[1]], "gp2")]
    # The release's last revision did not render the claim: the new one adds it.
    from gp3migrate.sim.kube.helm import helm_upgrade

    with pytest.raises(HelmError, match="invalid ownership metadata; label validation error: missing key"):
        helm_upgrade(world, release="app", namespace=NS, manifests=world.helm_releases[(NS, "app")], previous=manifests)


def test_helm_upgrade_of_an_unchanged_chart_patches_nothing_and_recreates_a_deleted_claim(world: World) -> None:
    world.add_helm_release("app", NS, APP)
    assert world.helm_upgrade("app", NS) == []
    source = delete_claim_stopped(world)
    # The chart's replicas come back too: the upgrade starts the app on the new claim.
    assert world.helm_upgrade("app", NS) == ["Deployment/app patched", "PersistentVolumeClaim/data created"]
    world.tick(10)
    volume = world.claim_volume(NS, "data")
    assert volume is not None and volume != source


def test_helm_upgrade_fails_on_a_claim_whose_class_changed(world: World) -> None:
    world.add_helm_release("app", NS, APP)
    world.add_storage_class(
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "x"}, "provisioner": "p"}
    )
    with world.kube.edit("PersistentVolumeClaim", NS, "data", "test") as claim:
        claim["spec"]["storageClassName"] = "x"
    with pytest.raises(HelmError, match='cannot patch "data" with kind PersistentVolumeClaim: Invalid'):
        world.helm_upgrade("app", NS)


# -- KEDA and HPA ----------------------------------------------------------------------------------------


def test_keda_scales_a_deployment_from_zero_on_the_next_event_unless_paused(world: World) -> None:
    world.add_scaled_object(NS, "app", "app")
    world.scale_workload(NS, "app", 0)
    world.tick(3)
    assert replicas(world) == 0  # no event: nothing
    world.keda_active.add((NS, "app"))
    world.tick(1)
    assert replicas(world) == 1
    world.kube.patch(
        "keda.sh/v1alpha1",
        "ScaledObject",
        NS,
        "app",
        {"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}},
        "kubectl",
    )
    world.scale_workload(NS, "app", 0)
    world.tick(3)
    assert replicas(world) == 0


def test_an_hpa_leaves_a_zero_replica_target_alone_and_holds_minreplicas_otherwise(world: World) -> None:
    world.add_hpa(NS, "app", "app", min_replicas=2)
    world.tick(1)
    assert replicas(world) == 2
    world.scale_workload(NS, "app", 0)
    world.tick(5)
    assert replicas(world) == 0
    hpa = world.kube.peek("HorizontalPodAutoscaler", NS, "app")
    assert hpa is not None and hpa["status"]["conditions"][0]["reason"] == "ScalingDisabled"


# -- StatefulSet claims ----------------------------------------------------------------------------------


@pytest.fixture
def stateful() -> Iterator[World]:
    with make_world() as built:
        built.add_in_tree_volume(namespace=NS, claim="data-db-0", pv="pv-db-0", size_gib=10, zone=ZONE_A)
        built.add_workload(kind="StatefulSet", namespace=NS, name="db", replicas=1, claim_template="data")
        built.tick(6)
        yield built


def set_policy(world: World, when_scaled: str, when_deleted: str) -> None:
    policy = {"whenScaled": when_scaled, "whenDeleted": when_deleted}
    with world.kube.edit("StatefulSet", NS, "db", "kubectl") as changed:
        changed["spec"]["persistentVolumeClaimRetentionPolicy"] = policy


def test_the_statefulset_controller_creates_a_missing_claim_from_its_template(stateful: World) -> None:
    source = stateful.claim_volume(NS, "data-db-0")
    stateful.scale_workload(NS, "db", 0)
    stateful.tick(6)
    stateful.core_api().patch_persistent_volume("pv-db-0", {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
    stateful.kube.delete("v1", "PersistentVolumeClaim", NS, "data-db-0")
    stateful.tick(2)
    stateful.scale_up_once(NS, "db", 1, who="someone")
    stateful.tick(10)
    volume = stateful.claim_volume(NS, "data-db-0")
    assert volume is not None and volume != source
    assert stateful.running_pods(NS, "db") == ["db-0"]


@pytest.mark.parametrize(
    ("when_scaled", "when_deleted", "after_scale_to_zero", "after_delete"),
    [("Retain", "Retain", True, True), ("Delete", "Retain", False, False), ("Retain", "Delete", True, False)],
)
def test_persistent_volume_claim_retention_policy(
    stateful: World, when_scaled: str, when_deleted: str, after_scale_to_zero: bool, after_delete: bool
) -> None:
    set_policy(stateful, when_scaled, when_deleted)
    stateful.tick(1)
    stateful.scale_workload(NS, "db", 0)
    stateful.tick(10)
    assert (stateful.kube.peek("PersistentVolumeClaim", NS, "data-db-0") is not None) == after_scale_to_zero
    stateful.kube.delete("apps/v1", "StatefulSet", NS, "db")
    stateful.tick(3)
    assert (stateful.kube.peek("PersistentVolumeClaim", NS, "data-db-0") is not None) == after_delete
