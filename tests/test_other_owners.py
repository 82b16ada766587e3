"""No owner can act during the window (issue 22 item 3): the steps each phase declares for an entry
with a GitOps owner or an autoscaler, exactly; the gates that check the owners held, hold and
resume them, and re-check the window right before a claim is deleted, on a fake Kubernetes API
returning the client's own model objects and on moto for the volume's attachment.

Not proven: how Argo CD, Flux or KEDA react to the patches (the simulation models them, with the
upstream sources); the real API server's merge-patch handling of custom objects."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from moto import mock_aws

from gp3migrate.checks import preconditions
from gp3migrate.checks.preconditions import GateError, Window
from gp3migrate.config.phases import Applied
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings
from gp3migrate.planning import strategies
from gp3migrate.planning.plan import plan_migration
from gp3migrate.planning.strategies.common import Context
from tests.kube_fixtures import REGION

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}
PV = "pvc-00000000-0000-4000-8000-000000000000"
VOLUME = "vol-00000000000000001"
ARGO = {"kind": "Application", "name": "shop", "namespace": "argocd"}
FLUX = {"kind": "Kustomization", "name": "apps", "namespace": "flux-system"}
KEDA = {"kind": "ScaledObject", "name": "web", "namespace": "apps"}


def entry(**extra: Any) -> dict[str, Any]:
    return {
        "namespace": "apps",
        "claim": "data",
        "pv": PV,
        "volumeId": VOLUME,
        "zone": "eu-central-1a",
        "sizeGiB": 100,
        "workload": {"kind": "Deployment", "name": "web", "replicas": 2},
        **extra,
    }


def plan(phase: str, previous: Applied | None, **extra: Any) -> Any:
    settings = load_settings({**BASE, "migrations": [entry(phase=phase, **extra)]})
    return strategies.plan_phase(Context(plan_migration(settings.migrations[0], settings), settings, "dev", previous))


PRECOPY = Applied(phase="precopy", strategy="rehome")
CUTOVER = Applied(phase="cutover", strategy="rehome", cutovers=1)


# -- the steps -----------------------------------------------------------------------------------


def test_a_gitops_owned_cutover_checks_its_owners_held_right_before_the_stop():
    phase = plan("cutover", PRECOPY, owners=[{**ARGO, "autoSync": True}])
    assert phase.names()[-7:] == [
        "owners-held",
        "quiesce",
        "detached",
        "csi-pv",
        "release-old-claim",
        "claim",
        "scale-back",
    ]
    gate = phase.step("owners-held")
    assert (gate.kind, gate.body, gate.after) == ("owners-held", {"owners": [ARGO]}, ("volume-modify",))
    assert phase.step("quiesce").after == ("owners-held",)
    # Again right before the claim is deleted, with the workload, the volume and the owners.
    assert phase.step("release-old-claim").body["window"] == {
        "workload": {"kind": "Deployment", "name": "web"},
        "volume_id": VOLUME,
        "region": "eu-central-1",
        "owners": [ARGO],
    }


def test_every_release_rechecks_the_window_even_without_an_owner():
    phase = plan("cutover", PRECOPY)
    assert "owners-held" not in phase.names()
    assert phase.step("release-old-claim").body["window"] == {
        "workload": {"kind": "Deployment", "name": "web"},
        "volume_id": VOLUME,
        "region": "eu-central-1",
    }
    manual = plan("cutover", PRECOPY, quiesce="manual")
    assert manual.step("release-old-claim").body["window"] == {"volume_id": VOLUME, "region": "eu-central-1"}


def test_a_helm_release_or_an_hpa_needs_no_hold():
    owners = [
        {"kind": "Helm", "name": "shop", "namespace": "apps"},
        {"kind": "HorizontalPodAutoscaler", "name": "web", "namespace": "apps"},
    ]
    phase = plan("cutover", PRECOPY, owners=owners)
    assert not [n for n in phase.names() if "owners" in n]
    assert "owners" not in phase.step("release-old-claim").body["window"]


def test_hold_owners_holds_them_and_resumes_them_after_the_workload_is_back():
    phase = plan("cutover", PRECOPY, owners=[ARGO, KEDA], holdOwners=True)
    assert phase.names()[-9:] == [
        "hold-owners",
        "owners-held",
        "quiesce",
        "detached",
        "csi-pv",
        "release-old-claim",
        "claim",
        "scale-back",
        "resume-owners",
    ]
    hold, held, resume = phase.step("hold-owners"), phase.step("owners-held"), phase.step("resume-owners")
    assert (hold.kind, hold.body, hold.after) == (
        "owners-hold",
        {"owners": [ARGO, KEDA], "action": "hold"},
        ("volume-modify",),
    )
    assert held.after == ("hold-owners",)
    assert (resume.kind, resume.body, resume.after) == (
        "owners-hold",
        {"owners": [ARGO, KEDA], "action": "resume", "namespace": "apps", "claims": ["data"]},
        ("scale-back",),
    )


def test_the_rollback_of_a_cutover_holds_checks_and_resumes_under_its_own_names():
    phase = plan("rollback", CUTOVER, owners=[FLUX], holdOwners=True)
    assert phase.names()[-9:] == [
        "rollback-hold-owners",
        "rollback-owners-held",
        "rollback-quiesce",
        "release-csi-claim",
        "csi-pv-delete",
        "rebind",
        "rollback-claim",
        "rollback-scale-back",
        "rollback-resume-owners",
    ]
    assert phase.step("rollback-quiesce").after == ("rollback-owners-held",)
    assert phase.step("release-csi-claim").body["window"] == {
        "workload": {"kind": "Deployment", "name": "web"},
        "owners": [FLUX],
    }
    assert phase.step("rollback-resume-owners").after == ("rollback-scale-back",)


def test_a_same_name_copy_cutover_checks_its_autoscaler_held():
    phase = plan(
        "cutover",
        Applied(phase="precopy", strategy="copy"),
        strategy="copy",
        claimNaming="same-name",
        owners=[KEDA],
    )
    assert phase.step("owners-held").after == ("precopy-snapshot",)
    assert phase.step("quiesce").after == ("owners-held",)
    assert phase.step("release-old-claim").body["window"]["owners"] == [KEDA]


def refusal(**extra: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings({**BASE, "migrations": [entry(**extra)]})
    return str(raised.value)


def test_a_cutover_of_a_statefulset_whose_retention_deletes_claims_is_refused_with_both_commands():
    workload = {"kind": "StatefulSet", "name": "db", "replicas": 1, "claimRetention": {"whenScaled": "Delete"}}
    message = refusal(phase="cutover", workload=workload)
    assert (
        "migrations[0].workload: StatefulSet apps/db has persistentVolumeClaimRetentionPolicy whenScaled: Delete"
        in (message)
    )
    assert (
        "kubectl patch sts db -n apps --type merge -p "
        """'{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain","whenScaled":"Retain"}}}'"""
    ) in message
    assert (
        "restore it after the cutover: kubectl patch sts db -n apps --type merge -p "
        """'{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain","whenScaled":"Delete"}}}'"""
    ) in message
    # The precopy changes nothing of the workload: allowed.
    load_settings({**BASE, "migrations": [entry(phase="precopy", workload=workload)]})


def test_hold_owners_needs_a_workload_the_program_starts_again():
    message = refusal(owners=[ARGO], holdOwners=True, quiesce="manual")
    assert "migrations[0].holdOwners: true needs quiesce: scale (this entry's is manual)" in message


# -- the gates, on a fake API --------------------------------------------------------------------


def application(*, automated: bool, skip: str | None = None) -> dict[str, Any]:
    annotations = {"argocd.argoproj.io/skip-reconcile": skip} if skip is not None else {}
    policy = {"automated": {"prune": True, "selfHeal": True}} if automated else {}
    return {
        "metadata": {"name": "shop", "namespace": "argocd", "annotations": annotations},
        "spec": {"syncPolicy": policy},
    }


class Custom:
    """CustomObjectsApi over a few objects; merge patches applied as RFC 7386 says (null removes)."""

    def __init__(self, objects: dict[tuple[str, str, str], dict[str, Any]]):
        self.objects = objects  # (plural, namespace, name) -> object
        self.patches: list[tuple[str, str, str, str, dict[str, Any]]] = []

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
        found = self.objects.get((plural, namespace, name))
        if found is None:
            raise ApiException(status=404)
        return copy.deepcopy(found)

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.patches.append((f"{group}/{version}", plural, namespace, name, body))
        _merge(self.objects[(plural, namespace, name)], body)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            _merge(target.setdefault(key, {}), value)
        else:
            target[key] = value


def test_an_auto_synced_application_is_refused_with_the_commands_to_hold_and_resume_it():
    custom = Custom({("applications", "argocd", "shop"): application(automated=True)})
    with pytest.raises(GateError) as raised:
        preconditions.check_owners_held(custom, [ARGO], step="the stop of the window")
    assert str(raised.value) == (
        "refusing to start the stop of the window: Application argocd/shop syncs automatically: hold it with "
        '`kubectl annotate application shop -n argocd argocd.argoproj.io/skip-reconcile="true" --overwrite` and '
        "resume it after the cutover with `kubectl annotate application shop -n argocd "
        "argocd.argoproj.io/skip-reconcile-`. While it runs, it would restore the workload's replicas and recreate a "
        "deleted claim from its source, on a new, empty volume. Or set holdOwners: true on the entry to let the "
        "program hold and resume it. Nothing was changed."
    )


@pytest.mark.parametrize(
    ("owner", "obj", "held"),
    [
        (ARGO, application(automated=True, skip="true"), True),
        (ARGO, application(automated=False), True),
        (ARGO, {**application(automated=True), "spec": {"syncPolicy": {"automated": {"enabled": False}}}}, True),
        (FLUX, {"spec": {"suspend": True}}, True),
        (FLUX, {"spec": {}}, False),
        (KEDA, {"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}}, True),
        (KEDA, {"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "2"}}}, False),
        (KEDA, {"metadata": {}}, False),
    ],
)
def test_what_counts_as_held(owner: dict[str, str], obj: dict[str, Any], held: bool):
    plural = {"Application": "applications", "Kustomization": "kustomizations", "ScaledObject": "scaledobjects"}
    custom = Custom({(plural[owner["kind"]], owner["namespace"], owner["name"]): obj})
    if held:
        preconditions.check_owners_held(custom, [owner], step="x")
    else:
        with pytest.raises(GateError, match="hold it with"):
            preconditions.check_owners_held(custom, [owner], step="x")


def test_a_flux_owner_is_refused_with_flux_suspend_and_resume():
    custom = Custom({("kustomizations", "flux-system", "apps"): {"spec": {}}})
    with pytest.raises(GateError) as raised:
        preconditions.check_owners_held(custom, [FLUX], step="x")
    assert (
        "Kustomization flux-system/apps is not suspended: hold it with `flux suspend kustomization apps -n "
        "flux-system` and resume it after the cutover with `flux resume kustomization apps -n flux-system`"
    ) in str(raised.value)


def test_an_owner_that_is_gone_is_refused_naming_discover():
    with pytest.raises(GateError, match=r"Application argocd/shop was not found: .* run `gp3migrate discover`"):
        preconditions.check_owners_held(Custom({}), [ARGO], step="x")


class Core:
    """CoreV1Api: one claim (or none), its PV, and pods."""

    def __init__(self, *, claim: bool = True, pv_policy: str = "Retain", pv_phase: str = "Bound"):
        self.claim = (
            k8s.V1PersistentVolumeClaim(
                metadata=k8s.V1ObjectMeta(name="data", namespace="apps"),
                spec=k8s.V1PersistentVolumeClaimSpec(volume_name=PV),
                status=k8s.V1PersistentVolumeClaimStatus(phase="Bound"),
            )
            if claim
            else None
        )
        self.pv = k8s.V1PersistentVolume(
            metadata=k8s.V1ObjectMeta(name=PV),
            spec=k8s.V1PersistentVolumeSpec(
                persistent_volume_reclaim_policy=pv_policy,
                claim_ref=k8s.V1ObjectReference(namespace="apps", name="data-new"),
            ),
            status=k8s.V1PersistentVolumeStatus(phase=pv_phase),
        )
        self.pods: list[Any] = []
        self.calls: list[str] = []

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> Any:
        if self.claim is None:
            raise ApiException(status=404)
        return self.claim

    def patch_persistent_volume(self, name: str, body: Any) -> None:
        self.calls.append(f"patch {name}")

    def read_persistent_volume(self, name: str) -> Any:
        return self.pv

    def list_namespaced_pod(self, namespace: str) -> Any:
        return k8s.V1PodList(items=self.pods)

    def delete_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> None:
        self.calls.append(f"delete {namespace}/{name}")
        self.claim = None


def a_pod(name: str, claim: str, *, terminating: bool = False) -> Any:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(
            name=name, deletion_timestamp=datetime(2024, 1, 1, tzinfo=UTC) if terminating else None
        ),
        spec=k8s.V1PodSpec(
            containers=[],
            volumes=[
                k8s.V1Volume(
                    name="d", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=claim)
                )
            ],
        ),
        status=k8s.V1PodStatus(phase="Running"),
    )


class Apps:
    def __init__(self, replicas: int, retention: dict[str, str] | None = None):
        self.replicas, self.retention = replicas, retention
        self.patches: list[Any] = []

    def _read(self, name: str, namespace: str) -> Any:
        policy = (
            k8s.V1StatefulSetPersistentVolumeClaimRetentionPolicy(
                when_deleted=self.retention.get("whenDeleted"), when_scaled=self.retention.get("whenScaled")
            )
            if self.retention
            else None
        )
        spec = k8s.V1StatefulSetSpec(
            replicas=self.replicas,
            selector=k8s.V1LabelSelector(),
            service_name=name,
            template=k8s.V1PodTemplateSpec(),
            persistent_volume_claim_retention_policy=policy,
        )
        return k8s.V1StatefulSet(spec=spec)

    read_namespaced_deployment = _read
    read_namespaced_stateful_set = _read

    def patch_namespaced_stateful_set_scale(self, name: str, namespace: str, body: Any) -> None:
        self.patches.append(body)


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def volume(ec2: Any, *, attached: bool) -> str:
    volume_id = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=10, VolumeType="gp2")["VolumeId"]
    if attached:
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": f"{REGION}a"}
        )
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["Instances"][0]["InstanceId"], Device="/dev/sdf")
    return volume_id


def release(core: Core, window: Window | None, timeout: int = 10) -> str | None:
    return preconditions.release_claim(
        core,
        namespace="apps",
        claim="data",
        timeout_seconds=timeout,
        bound_to=PV,
        window=window,
        sleep=lambda _s: None,
    )


WORKLOAD = {"kind": "StatefulSet", "name": "db"}


def test_the_release_deletes_when_the_window_is_still(ec2):
    core = Core()
    core.pods = [a_pod("db-0", "data", terminating=True), a_pod("other-0", "other")]
    window = Window(workload=WORKLOAD, volume_id=volume(ec2, attached=False), apps=Apps(0), ec2=ec2)
    assert release(core, window) == PV
    assert core.calls == [f"patch {PV}", "delete apps/data"]


def test_a_workload_scaled_up_in_the_window_stops_the_release_at_once():
    core = Core()
    with pytest.raises(GateError) as raised:
        release(core, Window(workload=WORKLOAD, apps=Apps(1)))
    assert str(raised.value).startswith(
        "refusing to delete apps/data: StatefulSet db was scaled to 1 during the window. Without its claim a "
        "StatefulSet's controller creates it again on a new, empty volume"
    )
    assert not any(c.startswith("delete") for c in core.calls)


def test_a_pod_on_the_claim_or_an_attached_volume_stops_the_release(ec2):
    core = Core()
    core.pods = [a_pod("debug", "data")]
    attached = volume(ec2, attached=True)
    with pytest.raises(GateError) as raised:
        release(core, Window(workload=WORKLOAD, volume_id=attached, apps=Apps(0), ec2=ec2))
    assert str(raised.value) == (
        f"refusing to delete apps/data after 10s: pods still use it: debug; {attached} is in-use. Something started "
        "the application in the window; stop it, then run `pulumi up` again. Nothing was deleted."
    )
    assert not any(c.startswith("delete") for c in core.calls)


def test_an_owner_resumed_mid_window_stops_the_release():
    custom = Custom({("applications", "argocd", "shop"): application(automated=True)})
    core = Core()
    with pytest.raises(GateError, match="refusing to start deleting the claim apps/data: Application argocd/shop"):
        release(core, Window(owners=(ARGO,), custom=custom))
    assert not any(c.startswith("delete") for c in core.calls)


@pytest.mark.parametrize(
    ("policy", "phase", "said"),
    [
        ("Delete", "Released", f"its PV {PV} is Delete, not Retain"),
        ("Retain", "Bound", f"its PV {PV} is Bound again (to apps/data-new)"),
    ],
)
def test_a_claim_already_gone_goes_on_only_over_a_retained_free_pv(policy: str, phase: str, said: str):
    core = Core(claim=False, pv_policy=policy, pv_phase=phase)
    with pytest.raises(GateError, match=f"apps/data is already gone.*{re.escape(said)}"):
        release(core, None)


def test_a_claim_already_gone_over_a_retained_released_pv_goes_on():
    assert release(Core(claim=False, pv_phase="Released"), None) is None


def test_a_statefulset_whose_retention_deletes_claims_is_not_stopped():
    apps = Apps(2, retention={"whenScaled": "Delete"})
    with pytest.raises(GateError, match=r"refusing to scale it to 0: StatefulSet apps/db has .*whenScaled: Delete"):
        preconditions.scale_workload(apps, kind="StatefulSet", namespace="apps", name="db", replicas=0, wait_seconds=0)
    assert apps.patches == []


def test_hold_and_resume_patch_as_the_documented_commands_do():
    custom = Custom(
        {
            ("applications", "argocd", "shop"): application(automated=True),
            ("kustomizations", "flux-system", "apps"): {"spec": {}},
            ("scaledobjects", "apps", "web"): {"metadata": {}},
        }
    )
    owners = [ARGO, FLUX, KEDA]
    held = preconditions.hold_owners(Core(), custom, owners, action="hold")
    assert held == ["Application argocd/shop", "Kustomization flux-system/apps", "ScaledObject apps/web"]
    assert [(*p[0:2], p[4]) for p in custom.patches] == [
        (
            "argoproj.io/v1alpha1",
            "applications",
            {"metadata": {"annotations": {"argocd.argoproj.io/skip-reconcile": "true"}}},
        ),
        ("kustomize.toolkit.fluxcd.io/v1", "kustomizations", {"spec": {"suspend": True}}),
        (
            "keda.sh/v1alpha1",
            "scaledobjects",
            {"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}},
        ),
    ]
    preconditions.check_owners_held(custom, owners, step="x")
    preconditions.hold_owners(Core(), custom, owners, action="resume", namespace="apps", claims=["data"])
    with pytest.raises(GateError, match="syncs automatically"):
        preconditions.check_owners_held(custom, [ARGO], step="x")
    assert custom.objects[("kustomizations", "flux-system", "apps")]["spec"] == {"suspend": False}
    assert custom.objects[("scaledobjects", "apps", "web")]["metadata"] == {"annotations": {}}


def test_resume_waits_for_the_claim_to_be_bound():
    custom = Custom({("applications", "argocd", "shop"): application(automated=True)})
    with pytest.raises(GateError, match="apps/data does not exist"):
        preconditions.hold_owners(Core(claim=False), custom, [ARGO], action="resume", namespace="apps", claims=["data"])
    assert custom.patches == []
