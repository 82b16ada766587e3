"""The cutover's proof steps, their boto3 logic on moto and the claim release against a fake
Kubernetes API. Not proven: the real detach timing of EBS or the PVC protection finalizer."""

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from moto import mock_aws

from gp3migrate.checks import preconditions
from gp3migrate.checks.preconditions import GateError
from tests.kube_fixtures import REGION, create_in_tree_volume


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def ec2():
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def attached_volume(ec2):
    volume_id = create_in_tree_volume(ec2, size=1, pv="pv-a", namespace="default", claim_name="a")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "eu-central-1a"})
    instance_id = instance["Instances"][0]["InstanceId"]
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    return volume_id, instance_id


def test_detached_volume_passes_at_once(ec2):
    volume_id = create_in_tree_volume(ec2, size=1, pv="pv-a", namespace="default", claim_name="a")
    clock = FakeClock()
    volume = preconditions.wait_until_detached(ec2, volume_id, timeout_seconds=60, sleep=clock.sleep, clock=clock.time)
    assert volume["State"] == "available" and clock.sleeps == []


def test_attached_volume_waits_then_fails_naming_the_instance(ec2):
    volume_id, instance_id = attached_volume(ec2)
    clock = FakeClock()
    with pytest.raises(preconditions.GateError) as caught:
        preconditions.wait_until_detached(
            ec2, volume_id, timeout_seconds=60, poll_seconds=10, sleep=clock.sleep, clock=clock.time
        )
    message = str(caught.value)
    assert f"{volume_id} is still in-use (attached to: {instance_id}) after 60s" in message
    assert "nothing after this step has been done" in message
    assert clock.sleeps == [10] * 6


def test_volume_detached_while_waiting_proceeds(ec2):
    volume_id, instance_id = attached_volume(ec2)
    clock = FakeClock()

    def sleep_then_detach(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:
            ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id)

    volume = preconditions.wait_until_detached(
        ec2, volume_id, timeout_seconds=600, sleep=sleep_then_detach, clock=clock.time
    )
    assert volume["State"] == "available" and len(clock.sleeps) == 2


CLAIM_TAGS = [
    {"Key": "kubernetes.io/created-for/pvc/name", "Value": "data-gp3"},
    {"Key": "kubernetes.io/created-for/pvc/namespace", "Value": "apps"},
]


class FakeClaims:
    """read_namespaced_persistent_volume_claim / read_persistent_volume over a few PVs and claims,
    as the in-use gate reads them (kubernetes client models)."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], str | None] = {}  # (namespace, name) -> bound PV
        self.pvs: dict[str, k8s.V1PersistentVolume] = {}

    def bind(self, namespace: str, claim: str, pv: str | None) -> None:
        self.claims[(namespace, claim)] = pv

    def add_pv(self, name: str, volume: str, *, phase: str = "Bound", holder: str | None = None, csi: bool = True):
        source = (
            {"csi": k8s.V1CSIPersistentVolumeSource(driver="ebs.csi.aws.com", volume_handle=volume)}
            if csi
            else {
                "aws_elastic_block_store": k8s.V1AWSElasticBlockStoreVolumeSource(volume_id=f"aws://{REGION}a/{volume}")
            }
        )
        ref = None
        if holder:
            namespace, claim = holder.split("/")
            ref = k8s.V1ObjectReference(namespace=namespace, name=claim)
        self.pvs[name] = k8s.V1PersistentVolume(
            metadata=k8s.V1ObjectMeta(name=name),
            spec=k8s.V1PersistentVolumeSpec(persistent_volume_reclaim_policy="Retain", claim_ref=ref, **source),
            status=k8s.V1PersistentVolumeStatus(phase=phase),
        )

    def read_namespaced_persistent_volume_claim(self, name, namespace):
        if (namespace, name) not in self.claims:
            raise ApiException(status=404)
        return k8s.V1PersistentVolumeClaim(
            spec=k8s.V1PersistentVolumeClaimSpec(volume_name=self.claims[(namespace, name)])
        )

    def read_persistent_volume(self, name):
        if name not in self.pvs:
            raise ApiException(status=404)
        return self.pvs[name]


def node(ec2) -> str:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    placement = {"AvailabilityZone": "eu-central-1a"}
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, Placement=placement)["Instances"][0]["InstanceId"]


def gp3_volume(ec2, *, snapshot: str | None = None, attach_to: str | None = None, device: str = "/dev/sdg") -> str:
    """A gp3 volume tagged as the CSI driver tags what it provisions for apps/data-gp3."""
    extra = {"SnapshotId": snapshot} if snapshot else {"Size": 1}
    volume = ec2.create_volume(
        AvailabilityZone="eu-central-1a",
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": CLAIM_TAGS}],
        **extra,
    )["VolumeId"]
    if attach_to:
        ec2.attach_volume(VolumeId=volume, InstanceId=attach_to, Device=device)
    return volume


@dataclass
class CopyWorld:
    """A copy after its cutover: the source (in-tree PV pv-source, Released), its final snapshot, and
    the claim apps/data-gp3 bound to pv-restored, on the volume restored from that snapshot."""

    ec2: Any
    core: FakeClaims
    source: str
    snapshot: str
    restored: str
    instance: str

    def in_use(self) -> str:
        return preconditions.restored_volume_in_use(
            self.ec2,
            core=self.core,
            namespace="apps",
            claim="data-gp3",
            snapshot_id=self.snapshot,
            source_volume_id=self.source,
        )


@pytest.fixture
def copy_world(ec2) -> CopyWorld:
    source = create_in_tree_volume(ec2, size=1, pv="pv-source", namespace="apps", claim_name="data")
    snapshot = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    instance = node(ec2)
    restored = gp3_volume(ec2, snapshot=snapshot, attach_to=instance)
    core = FakeClaims()
    core.add_pv("pv-source", source, phase="Released", holder="apps/data", csi=False)
    core.add_pv("pv-restored", restored, holder="apps/data-gp3")
    core.bind("apps", "data-gp3", "pv-restored")
    return CopyWorld(ec2, core, source, snapshot, restored, instance)


def test_in_use_gate_passes_for_the_attached_volume_restored_from_the_final_snapshot(copy_world):
    assert copy_world.in_use() == copy_world.restored
    assert preconditions.source_pv_released(copy_world.core, pv="pv-source", volume_id=copy_world.source) == "Released"


def test_in_use_gate_refuses_the_copy_while_no_node_mounts_it(copy_world):
    ec2 = copy_world.ec2
    ec2.detach_volume(VolumeId=copy_world.restored, InstanceId=copy_world.instance)
    with pytest.raises(GateError, match=f"not mounted by any node \\({copy_world.restored} is available\\)"):
        copy_world.in_use()


def test_in_use_gate_refuses_an_unbound_or_missing_claim(copy_world):
    copy_world.core.bind("apps", "data-gp3", None)
    with pytest.raises(GateError, match="apps/data-gp3 is not bound, so it is not mounted by any node"):
        copy_world.in_use()
    del copy_world.core.claims[("apps", "data-gp3")]
    with pytest.raises(GateError, match="the restored claim apps/data-gp3 does not exist"):
        copy_world.in_use()


def test_in_use_gate_refuses_a_look_alike_gp3_volume_with_the_claims_tags(copy_world):
    """The claim created again under its name (a restore from backup, a GitOps sync): the driver
    provisions a new, empty gp3 volume with the same tags, attached; the copy is left detached."""
    ec2, core = copy_world.ec2, copy_world.core
    ec2.detach_volume(VolumeId=copy_world.restored, InstanceId=copy_world.instance)
    look_alike = gp3_volume(ec2, attach_to=copy_world.instance, device="/dev/sdh")
    core.add_pv("pv-new", look_alike, holder="apps/data-gp3")
    core.bind("apps", "data-gp3", "pv-new")
    with pytest.raises(GateError) as caught:
        copy_world.in_use()
    message = str(caught.value)
    assert f"refusing to hand the source volume {copy_world.source} to deletion" in message
    assert f"served by {look_alike} (PV pv-new), which was created empty, from no snapshot" in message
    assert f"not from this migration's final snapshot {copy_world.snapshot}" in message


def test_in_use_gate_refuses_a_volume_restored_from_another_snapshot_of_the_source(copy_world):
    """The pre-copy snapshot is of the source too, but misses what was written before the final one."""
    ec2, core = copy_world.ec2, copy_world.core
    earlier = ec2.create_snapshot(VolumeId=copy_world.source)["SnapshotId"]
    ec2.detach_volume(VolumeId=copy_world.restored, InstanceId=copy_world.instance)
    other = gp3_volume(ec2, snapshot=earlier, attach_to=copy_world.instance, device="/dev/sdh")
    core.add_pv("pv-other", other, holder="apps/data-gp3")
    core.bind("apps", "data-gp3", "pv-other")
    with pytest.raises(GateError, match=f"{other} \\(PV pv-other\\), which was created from {earlier}, not from"):
        copy_world.in_use()


def test_in_use_gate_refuses_when_the_claim_is_served_by_the_source_itself(copy_world):
    copy_world.core.add_pv("pv-static", copy_world.source, holder="apps/data-gp3")
    copy_world.core.bind("apps", "data-gp3", "pv-static")
    with pytest.raises(
        GateError, match="apps/data-gp3 is served by the source volume itself \\(through PV pv-static\\)"
    ):
        copy_world.in_use()


def test_in_use_gate_refuses_a_pv_pointing_at_a_volume_ec2_does_not_know(copy_world):
    copy_world.core.add_pv("pv-stale", "vol-0123456789abcdef0", holder="apps/data-gp3")
    copy_world.core.bind("apps", "data-gp3", "pv-stale")
    with pytest.raises(GateError, match="points at vol-0123456789abcdef0, which does not exist in this region"):
        copy_world.in_use()


@pytest.mark.parametrize(
    ("phase", "holder", "expected"),
    [
        ("Bound", "apps/data", "it is Bound to apps/data, not Released: a claim still holds the source"),
        ("Available", "apps/data", "it is Available and reserved for apps/data, not Released"),
        ("Available", None, "it is Available, not Released: a claim may bind it"),
        ("Failed", "apps/data", "it is Failed, not Released"),
    ],
)
def test_the_source_pv_must_be_released_before_it_turns_delete(copy_world, phase, expected, holder):
    copy_world.core.add_pv("pv-source", copy_world.source, phase=phase, holder=holder, csi=False)
    with pytest.raises(GateError, match=f"refusing to set the source PV pv-source to Delete: {expected}"):
        preconditions.source_pv_released(copy_world.core, pv="pv-source", volume_id=copy_world.source)


def test_the_source_pv_must_still_point_at_the_source(copy_world):
    copy_world.core.add_pv("pv-source", copy_world.restored, phase="Released", holder="apps/data")
    with pytest.raises(
        GateError, match=f"it points at {copy_world.restored}, not the source volume {copy_world.source}"
    ):
        preconditions.source_pv_released(copy_world.core, pv="pv-source", volume_id=copy_world.source)


def test_a_source_pv_already_gone_has_nothing_left_to_hand_over(copy_world):
    del copy_world.core.pvs["pv-source"]
    assert (
        preconditions.source_pv_released(copy_world.core, pv="pv-source", volume_id=copy_world.source) == "already gone"
    )


class FakeCore:
    """The CoreV1Api calls release_claim makes, over one PVC and its PV."""

    def __init__(self, *, pv_policy: str = "Delete", lingers: int = 0, exists: bool = True, honours_patch=True):
        self.pv_policy, self.lingers, self.exists, self.honours_patch = pv_policy, lingers, exists, honours_patch
        self.calls: list[str] = []

    def read_namespaced_persistent_volume_claim(self, name, namespace):
        self.calls.append(f"read {namespace}/{name}")
        if not self.exists:
            raise ApiException(status=404)
        if self.lingers < 0:
            raise ApiException(status=404)
        return SimpleNamespace(
            spec=SimpleNamespace(volume_name="pv-1"), metadata=SimpleNamespace(deletion_timestamp=None)
        )

    def patch_persistent_volume(self, name, body):
        self.calls.append(f"patch {name} {body['spec']['persistentVolumeReclaimPolicy']}")
        if self.honours_patch:
            self.pv_policy = body["spec"]["persistentVolumeReclaimPolicy"]

    def read_persistent_volume(self, name):
        return SimpleNamespace(spec=SimpleNamespace(persistent_volume_reclaim_policy=self.pv_policy))

    def delete_namespaced_persistent_volume_claim(self, name, namespace):
        self.calls.append(f"delete {namespace}/{name}")
        self.lingers -= 1
        if self.lingers < 0:
            self.exists = False


def test_release_sets_retain_before_deleting_and_waits_until_gone():
    core = FakeCore()
    kept = preconditions.release_claim(core, namespace="apps", claim="data", timeout_seconds=10, sleep=lambda _s: None)
    assert kept == "pv-1"
    assert core.calls[:3] == ["read apps/data", "patch pv-1 Retain", "delete apps/data"]


def test_release_refuses_when_the_pv_will_not_retain():
    core = FakeCore(honours_patch=False)
    with pytest.raises(preconditions.GateError, match="not Retain; refusing to delete"):
        preconditions.release_claim(core, namespace="apps", claim="data", timeout_seconds=10, sleep=lambda _s: None)
    assert not any(c.startswith("delete") for c in core.calls)


def test_release_of_an_absent_claim_is_a_no_op():
    core = FakeCore(exists=False)
    assert preconditions.release_claim(core, namespace="apps", claim="data", timeout_seconds=10) is None
    assert core.calls == ["read apps/data"]


def test_release_times_out_when_a_pod_still_holds_the_claim():
    core = FakeCore(lingers=10**6)
    with pytest.raises(preconditions.GateError, match="still exists after 4s"):
        preconditions.release_claim(
            core, namespace="apps", claim="data", timeout_seconds=4, poll_seconds=2, sleep=lambda _s: None
        )


def test_one_way_steps_rerun_only_when_what_they_act_on_changes():
    from components.gate_providers import OneWayStep

    step = OneWayStep()
    same = step.diff("id", {"claim": "a", "kubeconfig": "old"}, {"claim": "a", "kubeconfig": "new"})
    assert (same.changes, same.replaces) == (False, [])
    moved = step.diff("id", {"claim": "a", "namespace": "x"}, {"claim": "b", "namespace": "x"})
    assert (moved.changes, moved.replaces, moved.delete_before_replace) == (True, ["claim"], True)


def test_every_step_provider_diffs_as_a_one_way_step():
    """Issue 9 item 2: one provider with a diff of its own over outputs would run again every `up`."""
    import inspect

    from pulumi.dynamic import ResourceProvider

    from components import driver_check_provider, gate_providers
    from components.gate_providers import OneWayStep

    providers = [
        cls
        for module in (gate_providers, driver_check_provider)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ResourceProvider)
        and cls not in (ResourceProvider, OneWayStep)
        and cls.__module__ == module.__name__
    ]
    assert len(providers) == 11
    assert [cls.__name__ for cls in providers if cls.diff is not OneWayStep.diff] == []


def test_release_refuses_a_claim_bound_to_another_volume_than_the_one_it_releases():
    """A later `up` must never delete the gp3 claim that now holds the old name (issue 9 item 2)."""
    core = FakeCore(pv_policy="Retain")
    with pytest.raises(GateError, match="bound to pv-1, not to pvc-source"):
        preconditions.release_claim(
            core, namespace="ns", claim="data", timeout_seconds=4, bound_to="pvc-source", sleep=lambda s: None
        )
    assert [c for c in core.calls if c.startswith("delete")] == []


def test_release_refuses_to_release_the_source_pv_when_it_should_release_the_gp3_claim():
    core = FakeCore(pv_policy="Retain")
    with pytest.raises(GateError, match="bound to the source volume's PV pv-1"):
        preconditions.release_claim(
            core, namespace="ns", claim="data", timeout_seconds=4, not_bound_to="pv-1", sleep=lambda s: None
        )
    assert [c for c in core.calls if c.startswith("delete")] == []


def test_a_gate_is_not_replaced_by_keys_it_added_to_its_outputs():
    from components.gate_providers import OneWayStep

    inputs = {"volumeId": "vol-1", "region": "eu-central-1", "timeoutSeconds": 900, "__provider": "x"}
    outputs = {**inputs, "state": "available"}
    assert OneWayStep().diff("id", outputs, inputs).changes is False
    assert OneWayStep().diff("id", outputs, {**inputs, "volumeId": "vol-2"}).replaces == ["volumeId"]


def test_tagging_goes_on_through_throttling_after_botocore_gives_up(monkeypatch):
    """CreateTags is idempotent: a RequestLimitExceeded after botocore's retries is waited out
    (preconditions.THROTTLED_FOR_SECONDS), and anything else is raised at once."""
    from botocore.exceptions import ClientError

    calls = []

    def create_tags(**_: object) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "CreateTags")

    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(preconditions, "RUNTIME", preconditions.Runtime(sleep=sleep, clock=lambda: sum(slept)))
    preconditions._through_throttling(lambda: create_tags())
    assert len(calls) == 3 and slept == [30, 30]

    def denied(**_: object) -> None:
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "CreateTags")

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        preconditions._through_throttling(lambda: denied())
