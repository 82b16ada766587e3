"""EC2 at scale (issue 24 item 5): the gates' polls of DescribeVolumes batched into one call for
every volume the process waits on (gp3migrate/checks/volume_poller.py), and every boto3 client with
the same retry configuration (gp3migrate/checks/aws_clients.py). On moto, counting the calls with
botocore's event hooks. Not proven: EC2's real throttling (the simulation models its buckets), nor
the engine's scheduling of gates onto the provider's 4 worker threads."""

import threading
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gp3migrate.checks import aws_clients, preconditions
from gp3migrate.checks.volume_poller import IDS_PER_CALL, MODIFICATIONS, VolumePoller
from tests.kube_fixtures import REGION


class Calls:
    """The DescribeVolumes (or another operation's) requests a client sends, with their parameters."""

    def __init__(self, ec2: Any, operation: str = "DescribeVolumes") -> None:
        self.params: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        ec2.meta.events.register(f"before-call.ec2.{operation}", self._on_call)

    def _on_call(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.params.append(dict(params["body"]))

    def __len__(self) -> int:
        return len(self.params)


@pytest.fixture
def ec2():
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def at(moment: float) -> Any:
    return lambda: moment


def volumes(ec2: Any, count: int) -> list[str]:
    return [ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"] for _ in range(count)]


def node(ec2: Any) -> str:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    placement = {"AvailabilityZone": f"{REGION}a"}
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, Placement=placement)["Instances"][0]["InstanceId"]


def test_fifty_waiters_looking_at_once_share_one_call(ec2):
    ids = volumes(ec2, 50)
    calls, poller = Calls(ec2), VolumePoller()
    watches = [poller.watch(ec2, v, now=0.0) for v in ids]
    found = [w.__enter__() for w in watches]
    assert [(w.look(at(0.0)) or {}).get("VolumeId") for w in found] == ids
    assert len(calls) == 1
    # Ten seconds on, each looks again: the first one's call serves the 49 others.
    assert all((w.look(at(10.0)) or {}).get("State") == "available" for w in found)
    assert len(calls) == 2
    for watch in watches:
        watch.__exit__(None, None, None)


def test_a_call_names_at_most_200_volumes_in_its_filter_and_pages_without_volume_ids(ec2):
    ids = volumes(ec2, IDS_PER_CALL + 50)
    calls, poller = Calls(ec2), VolumePoller()
    watches = [poller.watch(ec2, v, now=0.0) for v in ids]
    found = [w.__enter__() for w in watches]
    assert all(w.look(at(0.0)) is not None for w in found)
    assert len(calls) == 2
    for body in calls.params:
        assert not any(key.startswith("VolumeId.") for key in body)  # MaxResults and VolumeIds do not mix
        assert body["Filter.1.Name"] == "volume-id" and body["MaxResults"] == 500
    sizes = sorted(sum(1 for key in body if key.startswith("Filter.1.Value.")) for body in calls.params)
    assert sizes == [50, IDS_PER_CALL]


def test_modification_waits_share_one_filtered_paged_call_and_a_volume_never_modified_reads_none(ec2):
    ids = volumes(ec2, IDS_PER_CALL + 50)
    for volume in ids[1:]:
        ec2.modify_volume(VolumeId=volume, VolumeType="gp3", Iops=3000, Throughput=125)
    calls, poller = Calls(ec2, "DescribeVolumesModifications"), VolumePoller()
    volume_calls = Calls(ec2)
    watches = [poller.watch(ec2, v, now=0.0, what=MODIFICATIONS) for v in ids]
    found = [w.__enter__() for w in watches]
    answers = [w.look(at(0.0)) for w in found]
    assert answers[0] is None
    assert all(
        [m["VolumeId"] for m in a] == [v] and a[0]["TargetVolumeType"] == "gp3"
        for v, a in zip(ids[1:], answers[1:], strict=True)
    )
    assert len(calls) == 2 and len(volume_calls) == 0  # two filters of <= 200 ids; no DescribeVolumes
    for body in calls.params:
        assert not any(key.startswith("VolumeId.") for key in body)
        assert body["Filter.1.Name"] == "volume-id" and body["MaxResults"] == 500
    # A DescribeVolumes wait on the same client is a group of its own.
    with poller.watch(ec2, ids[0], now=0.0) as volume_watch:
        assert volume_watch.look(at(0.0))["VolumeId"] == ids[0]
    assert len(calls) == 2 and len(volume_calls) == 1
    for watch in watches:
        watch.__exit__(None, None, None)


def test_a_waiter_never_takes_an_answer_older_than_its_last_one(ec2):
    (first, second) = volumes(ec2, 2)
    calls, poller = Calls(ec2), VolumePoller()
    with poller.watch(ec2, first, now=0.0) as a, poller.watch(ec2, second, now=5.0) as b:
        a.look(at(0.0))  # made before b registered: b's first look cannot use it
        b.look(at(5.0))
        assert len(calls) == 2
        a.look(at(6.0))  # b's answer (at 5) is newer than a's last (at 0)
        assert len(calls) == 2
        a.look(at(7.0))  # nothing newer than a's last answer (at 5): a call
        assert len(calls) == 3


def test_fifty_gates_waiting_in_threads_make_a_handful_of_calls_not_one_per_poll(ec2):
    """As the provider process runs them: each gate in its own thread, polling every 50 ms on the wall
    clock, until all 50 volumes are detached 0.5 s in. One call per gate and poll would be about 500."""
    ids = volumes(ec2, 50)
    instance = node(ec2)
    devices = [f"/dev/xvd{a}{b}" for a in "bcd" for b in "abcdefghijklmnopqrstuvwxyz"]
    for volume, device in zip(ids, devices, strict=False):
        ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device=device)
    calls, poller = Calls(ec2), VolumePoller()
    results: dict[str, str] = {}

    def gate(volume: str) -> None:
        found = preconditions.wait_until_detached(ec2, volume, timeout_seconds=30, poll_seconds=0.05, poller=poller)
        results[volume] = found["State"]

    threads = [threading.Thread(target=gate, args=(v,)) for v in ids]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    detaching = len(calls)
    for volume in ids:
        ec2.detach_volume(VolumeId=volume, InstanceId=instance)
    for thread in threads:
        thread.join(timeout=60)
    assert results == dict.fromkeys(ids, "available")
    polls_each = 0.5 / 0.05
    # Unbatched: about 50 gates x 10 polls = 500 calls. Batched: about one per poll round; the
    # bounds leave room for a loaded machine's scheduling (each straggler round is one more call)
    # and still fail at a tenth of the unbatched count.
    assert detaching < polls_each * 6, (detaching, len(calls))
    assert len(calls) < 50, len(calls)


def test_a_volume_ec2_does_not_know_stops_the_wait_naming_it(ec2):
    with pytest.raises(preconditions.GateError, match="vol-0123456789abcdef0 does not exist in this region"):
        preconditions.wait_until_detached(ec2, "vol-0123456789abcdef0", timeout_seconds=60)


def test_every_client_retries_in_standard_mode_and_is_made_once_per_region():
    with mock_aws():
        first = aws_clients.client("ec2", REGION)
        assert aws_clients.client("ec2", REGION) is first
        assert aws_clients.client("ec2", "us-east-1") is not first
        assert first.meta.config.retries == {"mode": "standard", "total_max_attempts": 10}
        session = boto3.session.Session(region_name=REGION)
        assert aws_clients.client("eks", REGION, session=session).meta.config.retries == aws_clients.RETRIES
        assert preconditions.Runtime().ec2(REGION) is first


def test_the_runtime_of_each_process_has_its_own_poller():
    assert isinstance(preconditions.RUNTIME.poller, VolumePoller)
    assert preconditions.Runtime().poller is not preconditions.Runtime().poller
