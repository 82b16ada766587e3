"""The claim keeps its identity (issue 22 item 1): the claim a cutover or rollback creates carries
the source claim's labels and annotations (but the controllers' binding ones and kubectl's
last-applied-configuration), discovery records them in the entry, and the step that deletes a
claim refuses when the live claim's ownership keys (Helm, Argo CD, Flux) differ from the record.

Exact manifests from the pure plan, the release gate against a fake CoreV1Api returning the
kubernetes client's own model objects, and one program run under mocks for what preview shows.
Not proven here: what Helm, Argo CD or Flux then do with the claim (the simulation's part).
"""

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from components.gate_providers import OneWayStep
from gp3migrate.checks import preconditions
from gp3migrate.checks.preconditions import GateError
from gp3migrate.config.phases import Applied
from gp3migrate.config.settings import load_settings
from gp3migrate.discovery.volumes import discover
from gp3migrate.planning import strategies
from gp3migrate.planning.plan import plan_migration
from gp3migrate.planning.strategies.common import Context
from tests import kube_fixtures as kf
from tests.mock_cloud import advance, stack_config

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}
PV = "pvc-00000000-0000-4000-8000-000000000000"
HELM_LABELS = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "shop", "tier": "db"}
HELM_ANNOTATIONS = {"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": "apps"}
ARGO = {"argocd.argoproj.io/tracking-id": "shop:/PersistentVolumeClaim:apps/data-db-0"}
# What the live claim carries besides: the controllers' and kubectl's, never copied.
CONTROLLERS = {
    "pv.kubernetes.io/bind-completed": "yes",
    "pv.kubernetes.io/bound-by-controller": "yes",
    "volume.beta.kubernetes.io/storage-provisioner": "kubernetes.io/aws-ebs",
    "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
    "volume.kubernetes.io/selected-node": "ip-10-0-1-1.eu-central-1.compute.internal",
    "volume.beta.kubernetes.io/storage-class": "gp2",
    "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1","kind":"PersistentVolumeClaim"}',
}
RECORDED = {"labels": HELM_LABELS, "annotations": {**HELM_ANNOTATIONS, **ARGO}}
PROGRAM_ANNOTATIONS = {
    "eks-gp3-migration/source-pv": PV,
    "eks-gp3-migration/source-volume": "vol-00000000000000001",
}


def entry(**extra: Any) -> dict[str, Any]:
    return {
        "namespace": "apps",
        "claim": "data-db-0",
        "pv": PV,
        "volumeId": "vol-00000000000000001",
        "zone": "eu-central-1a",
        "sizeGiB": 100,
        "workload": {"kind": "StatefulSet", "name": "db", "replicas": 2},
        "claimMetadata": RECORDED,
        **extra,
    }


def plan(phase: str, previous: Applied | None, **extra: Any) -> Any:
    settings = load_settings({**BASE, "migrations": [entry(phase=phase, **extra)]})
    return strategies.plan_phase(Context(plan_migration(settings.migrations[0], settings), settings, "dev", previous))


def metadata(phase: str, previous: Applied | None, step: str, **extra: Any) -> dict[str, Any]:
    return dict(plan(phase, previous, **extra).step(step).body["metadata"])


# -- the claims a cutover or rollback creates --------------------------------------------------


def test_the_rehomed_claim_carries_the_source_claims_labels_and_annotations():
    assert metadata("cutover", Applied(phase="precopy", strategy="rehome"), "claim") == {
        "name": "data-db-0",
        "namespace": "apps",
        "labels": {**HELM_LABELS, "eks-gp3-migration/claim": "data-db-0"},
        "annotations": {**HELM_ANNOTATIONS, **ARGO, **PROGRAM_ANNOTATIONS},
    }


def test_the_programs_own_labels_win_over_a_recorded_one():
    recorded = {"labels": {"eks-gp3-migration/claim": "someone-else", "tier": "db"}}
    found = metadata("cutover", Applied(phase="precopy", strategy="rehome"), "claim", claimMetadata=recorded)
    assert found["labels"] == {"eks-gp3-migration/claim": "data-db-0", "tier": "db"}


def test_controller_annotations_and_last_applied_are_never_carried():
    recorded = {"labels": HELM_LABELS, "annotations": {**HELM_ANNOTATIONS, **CONTROLLERS}}
    found = metadata("cutover", Applied(phase="precopy", strategy="rehome"), "claim", claimMetadata=recorded)
    assert found["annotations"] == {**HELM_ANNOTATIONS, **PROGRAM_ANNOTATIONS}


def test_an_entry_without_recorded_metadata_declares_what_earlier_versions_did():
    found = metadata("cutover", Applied(phase="precopy", strategy="rehome"), "claim", claimMetadata=None)
    assert found == {
        "name": "data-db-0",
        "namespace": "apps",
        "labels": {"eks-gp3-migration/claim": "data-db-0"},
        "annotations": PROGRAM_ANNOTATIONS,
    }
    rollback = metadata("rollback", Applied(phase="cutover", strategy="rehome"), "rollback-claim", claimMetadata=None)
    assert rollback == {"name": "data-db-0", "namespace": "apps", "labels": {"eks-gp3-migration/claim": "data-db-0"}}


def test_the_rehome_rollback_claim_carries_them_too():
    assert metadata("rollback", Applied(phase="cutover", strategy="rehome"), "rollback-claim") == {
        "name": "data-db-0",
        "namespace": "apps",
        "labels": {**HELM_LABELS, "eks-gp3-migration/claim": "data-db-0"},
        "annotations": {**HELM_ANNOTATIONS, **ARGO},
    }


def test_the_same_name_copy_claim_and_its_rollback_carry_them():
    copy = {"strategy": "copy", "claimNaming": "same-name"}
    claim = metadata("cutover", Applied(phase="precopy", strategy="copy"), "claim", **copy)
    assert claim["labels"] == {**HELM_LABELS, "eks-gp3-migration/claim": "data-db-0"}
    assert claim["annotations"] == {**HELM_ANNOTATIONS, **ARGO, **PROGRAM_ANNOTATIONS}
    rollback = metadata(
        "rollback", Applied(phase="cutover", strategy="copy"), "rollback-claim", deleteRestoredClaim=True, **copy
    )
    assert rollback["labels"] == {**HELM_LABELS, "eks-gp3-migration/claim": "data-db-0"}
    assert rollback["annotations"] == {**HELM_ANNOTATIONS, **ARGO}


def test_a_renamed_copy_claim_carries_them_but_no_ownership_key():
    """Not in its owner's source: Argo CD label tracking would list it as the Application's and
    prune it (gp3migrate/config/claim_identity.py without_ownership)."""
    claim = metadata("cutover", Applied(phase="precopy", strategy="copy"), "claim", strategy="copy")
    assert claim["name"] == "data-db-0-gp3"
    assert claim["labels"] == {"app.kubernetes.io/name": "shop", "tier": "db", "eks-gp3-migration/claim": "data-db-0"}
    assert claim["annotations"] == PROGRAM_ANNOTATIONS


# -- the release step: recorded ownership, checked live ---------------------------------------------


def test_each_release_step_carries_the_ownership_the_claim_must_still_have():
    ownership = {"labels": {"app.kubernetes.io/managed-by": "Helm"}, "annotations": {**HELM_ANNOTATIONS, **ARGO}}
    rehome = plan("cutover", Applied(phase="precopy", strategy="rehome")).step("release-old-claim")
    assert rehome.body["ownership"] == ownership
    back = plan("rollback", Applied(phase="cutover", strategy="rehome")).step("release-csi-claim")
    assert back.body["ownership"] == ownership
    renamed = plan(
        "rollback", Applied(phase="cutover", strategy="copy"), strategy="copy", deleteRestoredClaim=True
    ).step("release-gp3-claim")
    assert renamed.body["ownership"] == {"labels": {}, "annotations": {}}
    unrecorded = plan("cutover", Applied(phase="precopy", strategy="rehome"), claimMetadata=None)
    assert "ownership" not in unrecorded.step("release-old-claim").body


class Core:
    """The CoreV1Api calls release_claim makes, over one claim (the client's model) and its PV."""

    def __init__(self, labels: dict[str, str] | None, annotations: dict[str, str] | None):
        self.claim = k8s.V1PersistentVolumeClaim(
            metadata=k8s.V1ObjectMeta(name="data-db-0", namespace="apps", labels=labels, annotations=annotations),
            spec=k8s.V1PersistentVolumeClaimSpec(volume_name=PV),
        )
        self.calls: list[str] = []
        self.gone = False

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> Any:
        if self.gone:
            raise ApiException(status=404)
        return self.claim

    def patch_persistent_volume(self, name: str, body: Any) -> None:
        self.calls.append(f"patch {name}")

    def read_persistent_volume(self, name: str) -> Any:
        return k8s.V1PersistentVolume(spec=k8s.V1PersistentVolumeSpec(persistent_volume_reclaim_policy="Retain"))

    def delete_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> None:
        self.calls.append(f"delete {namespace}/{name}")
        self.gone = True


def release(
    core: Core, ownership: dict[str, dict[str, str]] | None, window: preconditions.Window | None = None
) -> str | None:
    return preconditions.release_claim(
        core,
        namespace="apps",
        claim="data-db-0",
        timeout_seconds=10,
        bound_to=PV,
        ownership=ownership,
        window=window,
        sleep=lambda _s: None,
    )


OWNERSHIP = {"labels": {"app.kubernetes.io/managed-by": "Helm"}, "annotations": {**HELM_ANNOTATIONS, **ARGO}}


def test_the_release_deletes_a_claim_whose_ownership_is_as_recorded():
    core = Core({**HELM_LABELS, "extra": "x"}, {**HELM_ANNOTATIONS, **ARGO, **CONTROLLERS})
    assert release(core, OWNERSHIP) == PV
    assert core.calls == [f"patch {PV}", "delete apps/data-db-0"]


@pytest.mark.parametrize(
    ("labels", "annotations", "named"),
    [
        # Helm's release annotation gone (someone re-created the claim by hand).
        (HELM_LABELS, ARGO, "annotation meta.helm.sh/release-name (Helm): recorded 'shop', now absent"),
        # Argo CD now tracks it from another Application.
        (
            HELM_LABELS,
            {**HELM_ANNOTATIONS, "argocd.argoproj.io/tracking-id": "other:/PersistentVolumeClaim:apps/data-db-0"},
            "annotation argocd.argoproj.io/tracking-id (Argo CD): recorded "
            "'shop:/PersistentVolumeClaim:apps/data-db-0', now 'other:/PersistentVolumeClaim:apps/data-db-0'",
        ),
        # A Flux Kustomization adopted it since discovery.
        (
            {**HELM_LABELS, "kustomize.toolkit.fluxcd.io/name": "apps"},
            {**HELM_ANNOTATIONS, **ARGO},
            "label kustomize.toolkit.fluxcd.io/name (Flux): recorded absent, now 'apps'",
        ),
    ],
)
def test_the_release_refuses_naming_the_ownership_key_that_differs(labels, annotations, named):
    core = Core(labels, annotations)
    with pytest.raises(GateError, match="its ownership changed") as refused:
        release(core, OWNERSHIP)
    assert named in str(refused.value)
    assert core.calls == []


def test_without_a_record_the_release_refuses_a_claim_an_owner_manages():
    core = Core({"app.kubernetes.io/instance": "shop"}, None)
    with pytest.raises(GateError, match="its entry does not record") as refused:
        release(core, None)
    assert "label app.kubernetes.io/instance (Argo CD): recorded absent, now 'shop'" in str(refused.value)
    assert core.calls == []
    plain = Core({"app": "db"}, {"note": "x"})
    assert release(plain, None) == PV


class TerminatingCore(Core):
    """The claim as this step's earlier attempt left it: deleted, held by pvc-protection until its
    pod goes; it is gone after `reads` more reads. Pods and the workload for the window re-check."""

    def __init__(self, labels: dict[str, str] | None, annotations: dict[str, str] | None, *, reads: int = 2):
        super().__init__(labels, annotations)
        assert self.claim.metadata is not None
        self.claim.metadata.deletion_timestamp = datetime(2024, 1, 1, tzinfo=UTC)
        self.reads = reads
        self.pods: list[Any] = []

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> Any:
        self.reads -= 1
        if self.reads < 0:
            raise ApiException(status=404)
        return self.claim

    def list_namespaced_pod(self, namespace: str) -> Any:
        return k8s.V1PodList(items=self.pods)


class Apps:
    def __init__(self, replicas: int):
        self.replicas = replicas

    def read_namespaced_deployment(self, name: str, namespace: str) -> Any:
        return k8s.V1Deployment(
            spec=k8s.V1DeploymentSpec(
                replicas=self.replicas, selector=k8s.V1LabelSelector(), template=k8s.V1PodTemplateSpec()
            )
        )


def release_terminating(core: TerminatingCore, apps: Apps) -> str | None:
    return release(core, OWNERSHIP, preconditions.Window(workload={"kind": "Deployment", "name": "db"}, apps=apps))


def test_a_claim_already_terminating_from_an_earlier_attempt_is_let_go_whatever_its_keys_say():
    """The step's own delete ran, the `up` stopped before the claim was gone: a label written since
    (a Flux Kustomization adopting it) must not strand the step half way, with the claim going and
    no claim to replace it."""
    drifted = TerminatingCore({**HELM_LABELS, "kustomize.toolkit.fluxcd.io/name": "apps"}, {**HELM_ANNOTATIONS, **ARGO})
    assert release_terminating(drifted, Apps(0)) == PV
    assert drifted.calls == [f"patch {PV}"]  # Retain again, no second delete


def test_a_claim_already_terminating_still_waits_for_a_still_window():
    """Scaled up meanwhile: the claim goes anyway, but the step stops rather than let the claim
    step race a StatefulSet or a GitOps owner recreating it on an empty volume."""
    core = TerminatingCore(HELM_LABELS, {**HELM_ANNOTATIONS, **ARGO})
    with pytest.raises(GateError, match="was scaled to 2 during the window") as refused:
        release_terminating(core, Apps(2))
    assert "already being deleted by an earlier attempt" in str(refused.value)
    assert "Nothing was deleted" not in str(refused.value)


def test_a_recorded_ownership_changed_after_the_release_does_not_run_it_again():
    inputs = {"namespace": "apps", "claim": "data-db-0", "boundTo": PV, "ownership": OWNERSHIP}
    assert OneWayStep().diff("id", inputs, {**inputs, "ownership": {"labels": {}, "annotations": {}}}).changes is False
    without = {k: v for k, v in inputs.items() if k != "ownership"}
    assert OneWayStep().diff("id", without, inputs).changes is False


# -- discovery records them ---------------------------------------------------------------------


def test_discovery_records_the_claims_metadata_but_the_controllers_and_kubectls():
    pv = kf.in_tree_pv("pvc-a", kf.vol("a"), "apps", "data-db-0")
    claim = kf.claim("apps", "data-db-0", "pvc-a")
    claim["metadata"]["labels"] = HELM_LABELS
    claim["metadata"]["annotations"] = {**claim["metadata"]["annotations"], **HELM_ANNOTATIONS, **CONTROLLERS}
    found = discover([pv, claim], [kf.ebs_volume(kf.vol("a"), size=10)])
    (proposed,) = found.entries
    assert proposed["claimMetadata"] == {"labels": HELM_LABELS, "annotations": HELM_ANNOTATIONS}
    # The entry is valid as the program reads it.
    load_settings({**BASE, "migrations": found.entries})


def test_discovery_records_nothing_for_a_claim_with_only_controller_annotations():
    pv = kf.in_tree_pv("pvc-a", kf.vol("a"), "apps", "data-db-0")
    found = discover([pv, kf.claim("apps", "data-db-0", "pvc-a")], [kf.ebs_volume(kf.vol("a"), size=10)])
    assert "claimMetadata" not in found.entries[0]


def test_claim_metadata_must_be_a_map_of_strings():
    with pytest.raises(Exception, match=r"migrations\[0\]\.claimMetadata\.labels\.tier: 3 is not a string"):
        load_settings({**BASE, "migrations": [entry(claimMetadata={"labels": {"tier": 3}})]})


# -- what preview shows -------------------------------------------------------------------------


def test_preview_shows_the_carried_metadata_on_the_claim_the_cutover_creates():
    config = stack_config("dev")
    key = next(k for k in config if k.endswith("migrations"))
    config[key] = [{**config[key][0], "claimMetadata": RECORDED}]
    cutover = advance(config, ["precopy", "cutover"])[-1]
    (claim,) = cutover.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert claim.inputs["metadata"]["labels"] == {
        **HELM_LABELS,
        "eks-gp3-migration/claim": config[key][0]["claim"],
    }
    assert {k: v for k, v in claim.inputs["metadata"]["annotations"].items() if "eks-gp3-migration" not in k} == {
        **HELM_ANNOTATIONS,
        **ARGO,
    }
    (release_step,) = [r for r in cutover.registrations if r.name.endswith("-release-old-claim")]
    assert release_step.inputs["ownership"] == OWNERSHIP
