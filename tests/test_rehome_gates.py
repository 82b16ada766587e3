"""The one-way steps of the `rehome` strategy (issue 10): tag the in-tree volume for the CSI
driver, modify it to gp3 in place, delete a Retain PV object. Tags and the happy modification run on
moto; the modification's states and refusals on botocore's Stubber (exact requests and their order,
so an extra ModifyVolume fails the test) and on the simulation's EBS model; the PV deletes against a
fake CoreV1Api returning the client's own model objects.

Not proven: real EC2 timing or the exact wording of its refusals, and the API server's handling of
delete preconditions (the fake enforces them as the apiserver documents)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from moto import mock_aws

from gp3migrate.checks import preconditions
from gp3migrate.checks.preconditions import GateError
from tests.kube_fixtures import REGION, create_in_tree_volume, in_tree_tags

ZONE = "eu-central-1a"


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
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def record_calls(ec2: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` call the client makes, as sent."""
    calls: list[dict[str, Any]] = []
    ec2.meta.events.register(f"provide-client-params.ec2.{operation}", lambda params, **_: calls.append(dict(params)))
    return calls


def tags_of(ec2: Any, volume_id: str) -> dict[str, str]:
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    return {t["Key"]: t["Value"] for t in volume.get("Tags", [])}


# -- tag_volume ---------------------------------------------------------------------------------------


def test_tagging_adds_the_driver_tag_and_keeps_the_in_tree_tags(ec2: Any) -> None:
    volume_id = create_in_tree_volume(ec2, size=10, pv="pv-a", namespace="apps", claim_name="data")
    before = tags_of(ec2, volume_id)
    calls = record_calls(ec2, "CreateTags")
    added = preconditions.tag_volume(ec2, volume_id, preconditions.DRIVER_VOLUME_TAGS)
    assert added == {"ebs.csi.aws.com/cluster": "true"}
    assert calls == [{"Resources": [volume_id], "Tags": [{"Key": "ebs.csi.aws.com/cluster", "Value": "true"}]}]
    assert tags_of(ec2, volume_id) == {**before, "ebs.csi.aws.com/cluster": "true"}
    assert before == in_tree_tags("pv-a", "apps", "data")


def test_tagging_again_makes_no_create_tags_call(ec2: Any) -> None:
    volume_id = create_in_tree_volume(ec2, size=10, pv="pv-a", namespace="apps", claim_name="data")
    preconditions.tag_volume(ec2, volume_id, preconditions.DRIVER_VOLUME_TAGS)
    calls = record_calls(ec2, "CreateTags")
    assert preconditions.tag_volume(ec2, volume_id, preconditions.DRIVER_VOLUME_TAGS) == {}
    assert calls == []


def test_tagging_sends_only_the_missing_keys(ec2: Any) -> None:
    volume_id = create_in_tree_volume(ec2, size=10, pv="pv-a", namespace="apps", claim_name="data")
    ec2.create_tags(Resources=[volume_id], Tags=[{"Key": "team", "Value": "db"}])
    calls = record_calls(ec2, "CreateTags")
    added = preconditions.tag_volume(ec2, volume_id, {"team": "db", "ebs.csi.aws.com/cluster": "true"})
    assert added == {"ebs.csi.aws.com/cluster": "true"}
    assert calls[0]["Tags"] == [{"Key": "ebs.csi.aws.com/cluster", "Value": "true"}]


def test_tagging_refuses_to_overwrite_a_different_value(ec2: Any) -> None:
    volume_id = create_in_tree_volume(ec2, size=10, pv="pv-a", namespace="apps", claim_name="data")
    ec2.create_tags(Resources=[volume_id], Tags=[{"Key": "ebs.csi.aws.com/cluster", "Value": "false"}])
    before = tags_of(ec2, volume_id)
    calls = record_calls(ec2, "CreateTags")
    with pytest.raises(GateError, match=r"already has ebs.csi.aws.com/cluster='false' \(wanted 'true'\); no tag"):
        preconditions.tag_volume(ec2, volume_id, {**preconditions.DRIVER_VOLUME_TAGS, "other": "x"})
    assert calls == [] and tags_of(ec2, volume_id) == before


def test_tagging_refuses_past_fifty_tags_before_calling_ec2(ec2: Any) -> None:
    volume_id = create_in_tree_volume(ec2, size=10, pv="pv-a", namespace="apps", claim_name="data")
    filler = [{"Key": f"k{i}", "Value": "v"} for i in range(50 - len(tags_of(ec2, volume_id)))]
    ec2.create_tags(Resources=[volume_id], Tags=filler)
    calls = record_calls(ec2, "CreateTags")
    with pytest.raises(GateError, match="has 50 tags and needs 1 more"):
        preconditions.tag_volume(ec2, volume_id, preconditions.DRIVER_VOLUME_TAGS)
    assert calls == []


def test_tagging_an_absent_volume_names_it(ec2: Any) -> None:
    with pytest.raises(GateError, match="tagging: vol-0123456789abcdef0 does not exist"):
        preconditions.tag_volume(ec2, "vol-0123456789abcdef0", preconditions.DRIVER_VOLUME_TAGS)


# -- modify_to_gp3 on moto ---------------------------------------------------------------------------


def modify(ec2: Any, volume_id: str, **overrides: Any) -> dict[str, Any]:
    clock = FakeClock()
    args: dict[str, Any] = {
        "iops": 4000,
        "throughput": 250,
        "expected_zone": ZONE,
        "timeout_seconds": 60,
        "poll_seconds": 10,
        "sleep": clock.sleep,
        "clock": clock.time,
        **overrides,
    }
    return preconditions.modify_to_gp3(ec2, volume_id, **args)


def test_gp2_becomes_gp3_with_iops_and_throughput_sent_explicitly(ec2: Any) -> None:
    volume_id = create_in_tree_volume(ec2, size=1000, pv="pv-a", namespace="apps", claim_name="data")
    calls = record_calls(ec2, "ModifyVolume")
    result = modify(ec2, volume_id)
    assert calls == [{"VolumeId": volume_id, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250}]
    assert result == {"volumeType": "gp3", "iops": 4000, "throughput": 250, "state": "completed", "modified": True}
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert (volume["VolumeType"], volume["Iops"], volume["Throughput"]) == ("gp3", 4000, 250)


def test_modifying_again_makes_no_modify_volume_call(ec2: Any) -> None:
    volume_id = create_in_tree_volume(ec2, size=1000, pv="pv-a", namespace="apps", claim_name="data")
    modify(ec2, volume_id)
    calls = record_calls(ec2, "ModifyVolume")
    result = modify(ec2, volume_id)
    assert calls == []
    assert result == {"volumeType": "gp3", "iops": 4000, "throughput": 250, "state": "completed", "modified": False}


def test_a_gp3_volume_at_other_values_is_modified_to_these(ec2: Any) -> None:
    volume_id = create_in_tree_volume(
        ec2, size=1000, volume_type="gp3", Iops=3000, Throughput=125, pv="pv-a", namespace="apps", claim_name="d"
    )
    calls = record_calls(ec2, "ModifyVolume")
    assert modify(ec2, volume_id)["modified"] is True
    assert calls == [{"VolumeId": volume_id, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250}]


def test_a_never_modified_gp3_volume_at_these_values_is_left_alone(ec2: Any) -> None:
    volume_id = create_in_tree_volume(
        ec2, size=1000, volume_type="gp3", Iops=4000, Throughput=250, pv="pv-a", namespace="apps", claim_name="d"
    )
    calls = record_calls(ec2, "ModifyVolume")
    assert modify(ec2, volume_id)["state"] == "unmodified"
    assert calls == []


def test_a_volume_in_another_zone_is_refused_untouched(ec2: Any) -> None:
    volume_id = create_in_tree_volume(
        ec2, size=10, zone="eu-central-1b", pv="pv-a", namespace="apps", claim_name="data"
    )
    calls = record_calls(ec2, "ModifyVolume")
    with pytest.raises(GateError, match=f"{volume_id} is in eu-central-1b, not eu-central-1a as planned"):
        modify(ec2, volume_id)
    assert calls == []


def test_a_volume_of_another_type_is_refused_untouched(ec2: Any) -> None:
    volume_id = create_in_tree_volume(
        ec2, size=100, volume_type="io1", Iops=1000, pv="pv-a", namespace="apps", claim_name="data"
    )
    calls = record_calls(ec2, "ModifyVolume")
    with pytest.raises(GateError, match="is io1, not gp2 or gp3: refusing"):
        modify(ec2, volume_id)
    assert calls == []


def test_an_absent_volume_is_named(ec2: Any) -> None:
    with pytest.raises(GateError, match="gp3 modification: vol-0123456789abcdef0 does not exist"):
        modify(ec2, "vol-0123456789abcdef0")


# -- modify_to_gp3: states and refusals, exact requests on Stubber ------------------------------------

VOLUME = "vol-0aaaaaaaaaaaaaaaa"
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def described(volume_type: str = "gp2", iops: int = 3000, throughput: int | None = None) -> dict[str, Any]:
    volume: dict[str, Any] = {
        "VolumeId": VOLUME,
        "AvailabilityZone": ZONE,
        "VolumeType": volume_type,
        "Size": 1000,
        "Iops": iops,
        "State": "in-use",
    }
    if throughput is not None:
        volume["Throughput"] = throughput
    return {"Volumes": [volume]}


def modification(state: str, *, iops: int = 4000, throughput: int = 250, start: datetime = T0) -> dict[str, Any]:
    return {
        "VolumeId": VOLUME,
        "ModificationState": state,
        "TargetVolumeType": "gp3",
        "TargetIops": iops,
        "TargetThroughput": throughput,
        "OriginalVolumeType": "gp2",
        "Progress": {"modifying": 0, "optimizing": 40}.get(state, 100),
        "StartTime": start,
        "StatusMessage": "Internal error" if state == "failed" else "",
    }


class Ec2Script:
    """A real boto3 EC2 client whose calls must come in exactly the order stubbed."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.stub = Stubber(self.client)

    def volume(self, **kwargs: Any) -> Ec2Script:
        self.stub.add_response("describe_volumes", described(**kwargs), {"VolumeIds": [VOLUME]})
        return self

    def modifications(self, *found: dict[str, Any]) -> Ec2Script:
        self.stub.add_response(
            "describe_volumes_modifications", {"VolumesModifications": list(found)}, {"VolumeIds": [VOLUME]}
        )
        return self

    def polled(self, *found: dict[str, Any]) -> Ec2Script:
        """One poll of the wait, as the process's poller makes it (volume_poller.describe_modifications)."""
        self.stub.add_response(
            "describe_volumes_modifications",
            {"VolumesModifications": list(found)},
            {"Filters": [{"Name": "volume-id", "Values": [VOLUME]}], "MaxResults": 500},
        )
        return self

    def never_modified(self) -> Ec2Script:
        self.stub.add_client_error(
            "describe_volumes_modifications",
            "InvalidVolumeModification.NotFound",
            f"Modification for volume '{VOLUME}' does not exist.",
            expected_params={"VolumeIds": [VOLUME]},
        )
        return self

    def modify_accepted(self) -> Ec2Script:
        self.stub.add_response(
            "modify_volume",
            {"VolumeModification": modification("modifying")},
            {"VolumeId": VOLUME, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250},
        )
        return self

    def modify_refused(self, code: str, message: str) -> Ec2Script:
        self.stub.add_client_error(
            "modify_volume",
            code,
            message,
            expected_params={"VolumeId": VOLUME, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250},
        )
        return self

    def run(self, clock: FakeClock | None = None, timeout_seconds: int = 60) -> dict[str, Any]:
        clock = clock or FakeClock()
        with self.stub:
            result = preconditions.modify_to_gp3(
                self.client,
                VOLUME,
                iops=4000,
                throughput=250,
                expected_zone=ZONE,
                timeout_seconds=timeout_seconds,
                poll_seconds=10,
                sleep=clock.sleep,
                clock=clock.time,
            )
            self.stub.assert_no_pending_responses()
        return result


def test_waits_through_modifying_and_returns_at_optimizing() -> None:
    clock = FakeClock()
    script = Ec2Script().volume().never_modified().modify_accepted()
    script.polled(modification("modifying")).polled(modification("optimizing"))
    result = script.run(clock)
    assert result == {"volumeType": "gp3", "iops": 4000, "throughput": 250, "state": "optimizing", "modified": True}
    assert clock.sleeps == [10]


def test_a_modification_to_these_values_in_flight_is_waited_for_not_repeated() -> None:
    """A re-run after a timeout: the stubbed order has no ModifyVolume, so one would fail the test."""
    script = Ec2Script().volume(volume_type="gp3", iops=4000, throughput=250)
    script.modifications(modification("modifying")).polled(modification("modifying"))
    script.polled(modification("completed"))
    assert script.run()["modified"] is False


def test_another_modification_in_flight_is_refused_before_any_modify_call() -> None:
    script = Ec2Script().volume().modifications(modification("optimizing", iops=3000, throughput=125))
    with pytest.raises(GateError) as caught:
        script.run()
    message = str(caught.value)
    assert f"{VOLUME} was left unchanged: another modification (to gp3 3000 IOPS 125 MiB/s, started " in message
    assert "2026-05-04T08:00:00+00:00) is optimizing at 40%" in message
    assert "Retry after `aws ec2 describe-volumes-modifications` shows it completed" in message


def test_refused_while_one_is_in_flight_says_unchanged_and_when() -> None:
    """The race: nothing in flight when read, one started before ModifyVolume (e.g. the driver's)."""
    script = Ec2Script().volume().never_modified()
    script.modify_refused(
        "IncorrectModificationState", f"Volume {VOLUME} cannot be modified in modification state MODIFYING"
    )
    script.modifications(modification("modifying", iops=3000, throughput=125))
    with pytest.raises(GateError) as caught:
        script.run()
    message = str(caught.value)
    assert message.startswith(f"{VOLUME} was left unchanged: another modification (to gp3 3000 IOPS 125 MiB/s")
    assert message.endswith(
        f"(EC2 IncorrectModificationState: Volume {VOLUME} cannot be modified in modification state MODIFYING)"
    )


def test_rate_exceeded_names_when_the_oldest_of_the_last_four_leaves_the_window() -> None:
    starts = [T0 + timedelta(hours=h) for h in (0, 3, 6, 9, 12)]
    done = [modification("completed", iops=3000 + 100 * i, start=s) for i, s in enumerate(starts)]
    script = Ec2Script().volume().modifications(*done)
    script.modify_refused("VolumeModificationRateExceeded", "You've reached the maximum modification rate")
    script.modifications(*done)
    with pytest.raises(GateError) as caught:
        script.run()
    message = str(caught.value)
    assert f"{VOLUME} was left unchanged: EC2 allows 4 modifications of a volume per rolling 24 hours" in message
    # The last four started at 11:00, 14:00, 17:00 and 20:00: the fifth may start at 11:00 the next day.
    assert "Retry after 2026-05-05T11:00:00+00:00, then run `pulumi up` again." in message
    assert "(EC2 VolumeModificationRateExceeded: You've reached the maximum modification rate)" in message


def test_rate_exceeded_with_only_the_latest_listed_gives_the_latest_possible_time() -> None:
    latest = modification("completed", iops=3500, start=T0)
    script = Ec2Script().volume().modifications(latest)
    script.modify_refused("VolumeModificationRateExceeded", "rate")
    script.modifications(latest)
    with pytest.raises(GateError, match=r"Retry at the latest after 2026-05-05T08:00:00\+00:00"):
        script.run()


def test_other_refusals_say_the_volume_was_left_unchanged() -> None:
    script = Ec2Script().volume().never_modified()
    script.modify_refused("InvalidParameterValue", "Iops out of range")
    with pytest.raises(GateError, match=rf"{VOLUME} was left unchanged: .*InvalidParameterValue: Iops out of range"):
        script.run()


def test_a_failed_modification_names_the_volume() -> None:
    script = Ec2Script().volume().never_modified().modify_accepted().polled(modification("failed"))
    with pytest.raises(GateError, match=rf"the modification of {VOLUME} to gp3 4000 IOPS 250 MiB/s failed"):
        script.run()


def test_a_failed_earlier_attempt_is_retried() -> None:
    """AWS: a `failed` modification is a transient fault, retry it (EBS user guide, monitor progress)."""
    script = Ec2Script().volume().modifications(modification("failed")).modify_accepted()
    script.polled(modification("failed", start=T0 - timedelta(hours=1)), modification("optimizing"))
    assert script.run()["state"] == "optimizing"


def test_a_wait_that_finds_no_modification_listed_yet_polls_again() -> None:
    """EC2's eventual consistency: right after ModifyVolume the filtered answer may be empty."""
    clock = FakeClock()
    script = Ec2Script().volume().never_modified().modify_accepted()
    script.polled().polled(modification("optimizing"))
    assert script.run(clock)["state"] == "optimizing"
    assert clock.sleeps == [10]


def test_timeout_says_the_modification_goes_on() -> None:
    script = Ec2Script().volume().never_modified().modify_accepted()
    for _ in range(4):
        script.polled(modification("modifying"))
    with pytest.raises(GateError, match="is still modifying after 30s; EC2 carries on with it"):
        script.run(timeout_seconds=30)


# -- modify_to_gp3 on the simulation's EBS model ------------------------------------------------------


@pytest.fixture
def world() -> Iterator[Any]:
    from gp3migrate.sim.world import World

    with World(seed=3, region="us-east-1", cluster_name="dev") as built:
        yield built


def sim_modify(world: Any, volume_id: str, iops: int = 4000, throughput: int = 250) -> dict[str, Any]:
    return preconditions.modify_to_gp3(
        world.ec2(),
        volume_id,
        iops=iops,
        throughput=throughput,
        expected_zone="us-east-1a",
        timeout_seconds=3600,
        poll_seconds=5,
        sleep=world.sleep,
        clock=world.clock,
    )


def test_on_the_simulation_it_returns_once_the_volume_is_usable(world: Any) -> None:
    volume_id = world.ebs.create_volume(zone="us-east-1a", size_gib=1000, tags=preconditions.DRIVER_VOLUME_TAGS)
    result = sim_modify(world, volume_id)
    assert result["state"] == "optimizing" and world.ebs.modification_state(volume_id) == "optimizing"
    assert world.ebs.calls["ModifyVolume"] == 1
    sim_modify(world, volume_id)
    assert world.ebs.calls["ModifyVolume"] == 1


def test_on_the_simulation_a_fifth_modification_in_a_day_is_refused(world: Any) -> None:
    volume_id = world.ebs.create_volume(zone="us-east-1a", size_gib=1000, tags=preconditions.DRIVER_VOLUME_TAGS)
    for iops in (3100, 3200, 3300, 3400):
        world.ebs.modify_volume(volume_id, volume_type="gp3", iops=iops, throughput=125)
        while world.ebs.modification_state(volume_id) != "completed":
            world.tick()
    with pytest.raises(GateError, match=f"{volume_id} was left unchanged: EC2 allows 4 modifications") as caught:
        sim_modify(world, volume_id)
    assert "VolumeModificationRateExceeded" in str(caught.value)
    volume = world.ebs.volume(volume_id)
    assert (volume["Iops"], volume["Throughput"]) == (3400, 125)


def test_on_the_simulation_an_injected_refusal_leaves_the_volume_gp2(world: Any) -> None:
    volume_id = world.ebs.create_volume(zone="us-east-1a", size_gib=1000, tags=preconditions.DRIVER_VOLUME_TAGS)
    world.ebs.fail_next("ModifyVolume", "IncorrectModificationState", "busy")
    with pytest.raises(GateError, match=f"{volume_id} was left unchanged: a modification is in flight"):
        sim_modify(world, volume_id)
    assert world.ebs.volume(volume_id)["VolumeType"] == "gp2"


# -- delete_retained_pv -------------------------------------------------------------------------------


def in_tree_pv(
    *, volume: str = f"aws://{ZONE}/{VOLUME}", policy: str = "Retain", phase: str = "Released"
) -> k8s.V1PersistentVolume:
    return k8s.V1PersistentVolume(
        metadata=k8s.V1ObjectMeta(name="pvc-old", uid="uid-1", resource_version="41"),
        spec=k8s.V1PersistentVolumeSpec(
            aws_elastic_block_store=k8s.V1AWSElasticBlockStoreVolumeSource(volume_id=volume, fs_type="ext4"),
            persistent_volume_reclaim_policy=policy,
            claim_ref=k8s.V1ObjectReference(namespace="apps", name="data"),
        ),
        status=k8s.V1PersistentVolumeStatus(phase=phase),
    )


def csi_pv(*, handle: str = VOLUME, driver: str = "ebs.csi.aws.com", phase: str = "Released") -> Any:
    return k8s.V1PersistentVolume(
        metadata=k8s.V1ObjectMeta(name="data-csi", uid="uid-2", resource_version="77"),
        spec=k8s.V1PersistentVolumeSpec(
            csi=k8s.V1CSIPersistentVolumeSource(driver=driver, volume_handle=handle),
            persistent_volume_reclaim_policy="Retain",
        ),
        status=k8s.V1PersistentVolumeStatus(phase=phase),
    )


class FakePvApi:
    """read_persistent_volume / delete_persistent_volume over one PV; the delete honours its
    preconditions as the apiserver does (409 Conflict on a uid or resourceVersion mismatch)."""

    def __init__(self, pv: Any | None, *, changed_before_delete: Any | None = None) -> None:
        self.pv, self.changed_before_delete = pv, changed_before_delete
        self.calls: list[str] = []
        self.delete_bodies: list[Any] = []

    def read_persistent_volume(self, name: str) -> Any:
        self.calls.append(f"read {name}")
        if self.pv is None:
            raise ApiException(status=404)
        return copy.deepcopy(self.pv)

    def delete_persistent_volume(self, name: str, body: Any = None) -> Any:
        self.calls.append(f"delete {name}")
        self.delete_bodies.append(body)
        if self.changed_before_delete is not None:
            self.pv = self.changed_before_delete
        if self.pv is None:
            raise ApiException(status=404)
        wanted = body.preconditions
        if (wanted.uid, wanted.resource_version) != (self.pv.metadata.uid, self.pv.metadata.resource_version):
            raise ApiException(status=409, reason="Conflict")
        self.pv = None


def test_a_released_retain_pv_of_the_volume_is_deleted_with_preconditions() -> None:
    core = FakePvApi(in_tree_pv())
    assert preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME) == "deleted"
    assert core.calls == ["read pvc-old", "delete pvc-old"] and core.pv is None
    delete_preconditions = core.delete_bodies[0].preconditions
    assert (delete_preconditions.uid, delete_preconditions.resource_version) == ("uid-1", "41")


@pytest.mark.parametrize("volume", [VOLUME, f"aws://{ZONE}/{VOLUME}"])
def test_both_volume_id_forms_match_either_way(volume: str) -> None:
    core = FakePvApi(in_tree_pv(volume=VOLUME))
    assert preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=volume) == "deleted"


def test_a_csi_pv_is_matched_by_its_volume_handle() -> None:
    core = FakePvApi(csi_pv(phase="Available"))
    assert preconditions.delete_retained_pv(core, pv="data-csi", volume_id=VOLUME) == "deleted"


def test_an_absent_pv_is_already_gone() -> None:
    core = FakePvApi(None)
    assert preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME) == "already gone"
    assert core.calls == ["read pvc-old"]


def test_a_pv_switched_to_delete_since_the_plan_is_not_deleted() -> None:
    core = FakePvApi(in_tree_pv(policy="Delete"))
    with pytest.raises(GateError) as caught:
        preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME)
    # The message says what keeping it at Delete does, and the exact command that makes it safe.
    assert str(caught.value) == (
        "refusing to delete PV pvc-old: its reclaim policy is Delete, not Retain. While it stays Released with "
        f"Delete, the EBS CSI driver deletes {VOLUME.split('/')[-1]} (which the workload may now use through "
        "another PV) the next time it detaches (a restart, a reschedule, a node drain). Set it back now: "
        """kubectl patch pv pvc-old -p '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'; """
        "then run `pulumi up` again. Nothing was deleted."
    )
    assert core.calls == ["read pvc-old"]


def test_a_pv_switched_to_delete_between_the_read_and_the_delete_is_not_deleted() -> None:
    switched = in_tree_pv(policy="Delete")
    switched.metadata = k8s.V1ObjectMeta(name="pvc-old", uid="uid-1", resource_version="42")
    core = FakePvApi(in_tree_pv(), changed_before_delete=switched)
    with pytest.raises(GateError, match=r"it changed between the check and the delete .* Nothing was deleted"):
        preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME)
    assert core.pv is switched


def test_a_pv_of_another_volume_is_not_deleted() -> None:
    core = FakePvApi(in_tree_pv(volume=f"aws://{ZONE}/vol-0bbbbbbbbbbbbbbbb"))
    with pytest.raises(GateError, match=f"points at vol-0bbbbbbbbbbbbbbbb, not {VOLUME}. Nothing was deleted."):
        preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME)
    assert core.calls == ["read pvc-old"]


def test_a_csi_pv_of_another_driver_is_not_deleted() -> None:
    core = FakePvApi(csi_pv(driver="efs.csi.aws.com"))
    with pytest.raises(GateError, match=f"points at no EBS volume, not {VOLUME}"):
        preconditions.delete_retained_pv(core, pv="data-csi", volume_id=VOLUME)


def test_a_bound_pv_is_not_deleted() -> None:
    core = FakePvApi(in_tree_pv(phase="Bound"))
    with pytest.raises(GateError, match=r"it is Bound to apps/data, not Released or Available\. Nothing was deleted\."):
        preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME)
    assert core.calls == ["read pvc-old"]


def test_a_pv_already_being_deleted_is_not_deleted_again() -> None:
    lingering = in_tree_pv()
    lingering.metadata = k8s.V1ObjectMeta(
        name="pvc-old", uid="uid-1", deletion_timestamp=T0, finalizers=["kubernetes.io/pv-protection"]
    )
    core = FakePvApi(lingering)
    assert preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME) == "already being deleted"
    assert core.calls == ["read pvc-old"]


def test_a_pv_gone_between_the_read_and_the_delete_is_already_gone() -> None:
    core = FakePvApi(in_tree_pv())
    core.changed_before_delete = None

    def vanish(name: str, body: Any = None) -> None:
        raise ApiException(status=404)

    core.delete_persistent_volume = vanish  # type: ignore[method-assign]
    assert preconditions.delete_retained_pv(core, pv="pvc-old", volume_id=VOLUME) == "already gone"


# -- the dynamic resources ----------------------------------------------------------------------------


def test_rehome_steps_do_not_rerun_for_what_they_found() -> None:
    from components.gate_providers import _RetainedPvDeleteProvider, _VolumeModifyProvider, _VolumeTagsProvider

    tags_in = {"volumeId": VOLUME, "region": REGION, "tags": {"ebs.csi.aws.com/cluster": "true"}}
    assert _VolumeTagsProvider().diff("id", {**tags_in, "added": {}}, tags_in).changes is False
    modify_in = {"volumeId": VOLUME, "region": REGION, "zone": ZONE, "iops": 4000, "throughput": 250}
    found = {**modify_in, "volumeType": "gp3", "modificationState": "completed", "modified": True}
    modify = _VolumeModifyProvider()
    assert modify.diff("id", found, modify_in).changes is False
    assert modify.diff("id", found, {**modify_in, "iops": 5000}).replaces == ["iops"]
    pv_in = {"pv": "pvc-old", "volumeId": VOLUME, "kubeconfig": "new", "context": None}
    assert (
        _RetainedPvDeleteProvider().diff("id", {**pv_in, "kubeconfig": "old", "result": "deleted"}, pv_in).changes
        is False
    )


@pytest.fixture
def runtime_on(ec2: Any) -> Iterator[FakeClock]:
    """preconditions.RUNTIME on moto and a fake clock, as the simulation swaps it (sim/scenario.py)."""
    clock, original = FakeClock(), preconditions.RUNTIME
    preconditions.RUNTIME = preconditions.Runtime(ec2=lambda region: ec2, sleep=clock.sleep, clock=clock.time)
    try:
        yield clock
    finally:
        preconditions.RUNTIME = original


def test_the_providers_pass_their_inputs_through_and_add_what_they_found(ec2: Any, runtime_on: FakeClock) -> None:
    from components.gate_providers import _RetainedPvDeleteProvider, _VolumeModifyProvider, _VolumeTagsProvider

    volume_id = create_in_tree_volume(ec2, size=1000, pv="pv-a", namespace="apps", claim_name="data")
    tags_in = {"volumeId": volume_id, "region": REGION, "tags": dict(preconditions.DRIVER_VOLUME_TAGS)}
    tagged = _VolumeTagsProvider().create(tags_in)
    assert (tagged.id, tagged.outs) == (f"tagged-{volume_id}", {**tags_in, "added": preconditions.DRIVER_VOLUME_TAGS})
    modify_in = {
        "volumeId": volume_id,
        "region": REGION,
        "zone": ZONE,
        "iops": 4000,
        "throughput": 250,
        "timeoutSeconds": 60,
    }
    modified = _VolumeModifyProvider().create(modify_in)
    assert modified.outs == {**modify_in, "volumeType": "gp3", "modificationState": "completed", "modified": True}

    core = FakePvApi(in_tree_pv(volume=f"aws://{ZONE}/{volume_id}"))
    original = preconditions.RUNTIME
    preconditions.RUNTIME = preconditions.Runtime(core_api=lambda kubeconfig, context: core)
    try:
        pv_in = {"pv": "pvc-old", "volumeId": volume_id, "kubeconfig": "{}", "context": None}
        deleted = _RetainedPvDeleteProvider().create(pv_in)
    finally:
        preconditions.RUNTIME = original
    assert (deleted.id, deleted.outs) == ("pv-deleted-pvc-old", {**pv_in, "result": "deleted"})
