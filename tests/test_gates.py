"""The cutover's proof steps, their boto3 logic on moto and the claim release against a fake
Kubernetes API. Not proven: the real detach timing of EBS or the PVC protection finalizer."""

from types import SimpleNamespace

import boto3
import pytest
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


def test_in_use_gate_finds_the_attached_restored_volume(ec2):
    restored = ec2.create_volume(
        AvailabilityZone="eu-central-1a",
        Size=1,
        VolumeType="gp3",
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": [
                    {"Key": "kubernetes.io/created-for/pvc/name", "Value": "data-gp3"},
                    {"Key": "kubernetes.io/created-for/pvc/namespace", "Value": "apps"},
                ],
            }
        ],
    )["VolumeId"]
    with pytest.raises(preconditions.GateError, match=f"not mounted by any node \\({restored}=available\\)"):
        preconditions.restored_volume_in_use(ec2, namespace="apps", claim="data-gp3")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.attach_volume(VolumeId=restored, InstanceId=instance, Device="/dev/sdg")
    assert preconditions.restored_volume_in_use(ec2, namespace="apps", claim="data-gp3") == restored


def test_in_use_gate_without_any_restored_volume(ec2):
    with pytest.raises(preconditions.GateError, match="no gp3 volume found"):
        preconditions.restored_volume_in_use(ec2, namespace="apps", claim="data-gp3")


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
