"""EC2's request throttling in the simulation (issue 24 item 5; gp3migrate/sim/ebs.py): per-API
token buckets refilled on the simulated clock, a throttled request answered with EC2's 503
RequestLimitExceeded, botocore's own retries sleeping on the simulated clock, and a wave of
workloads through precopy and cutover in an account whose other callers leave the program a small
part of each bucket."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from gp3migrate.sim.ebs import TokenBucket
from gp3migrate.sim.wave_rehearsal import measure
from gp3migrate.sim.world import World

REGION = "eu-central-1"


def test_150_describe_volumes_in_one_simulated_second_are_throttled_at_the_buckets_size() -> None:
    with World(seed=1, region=REGION, cluster_name="dev") as world:
        allowed = [world.ebs.allow_request("DescribeVolumes") for _ in range(150)]
        assert allowed.count(True) == 100  # the bucket's size, at one instant
        assert not world.ebs.allow_request("DescribeVolumes")
        world.tick(1)  # 5 s at 20 tokens a second
        assert [world.ebs.allow_request("DescribeVolumes") for _ in range(150)].count(True) == 100
        # Each API has its own bucket: a mutating one is 50.
        assert [world.ebs.allow_request("ModifyVolume") for _ in range(60)].count(True) == 50


def test_a_burst_through_the_client_is_throttled_and_botocores_retries_wait_on_the_simulated_clock() -> None:
    with World(seed=1, region=REGION, cluster_name="dev") as world:
        start_tick, start_wall = world.ticks, time.monotonic()
        for _ in range(150):
            world.ec2().describe_volumes()
        assert world.ebs.throttled["DescribeVolumes"] >= 1
        # The retry slept on the simulated clock (the bucket refilled), not on the wall clock.
        assert world.ticks > start_tick
        assert time.monotonic() - start_wall < 30


def test_a_request_throttled_past_its_retries_fails_with_request_limit_exceeded_and_ec2_does_nothing() -> None:
    with World(seed=1, region=REGION, cluster_name="dev") as world:
        volume = world.ebs.create_volume(zone=f"{REGION}a", size_gib=4, tags={"team": "platform"})
        assert world.ebs.buckets is not None
        world.ebs.buckets["ModifyVolume"] = TokenBucket(0, 0.0, 0.0, 0.0)  # an account with no budget left
        with pytest.raises(ClientError) as raised:
            world.ec2().modify_volume(VolumeId=volume, VolumeType="gp3")
        assert raised.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert world.ebs.throttled["ModifyVolume"] >= 2  # botocore retried it
        assert world.ebs.volume(volume)["VolumeType"] == "gp2"  # moto never saw the request
        assert world.ebs.modification_state(volume) is None


@pytest.mark.parametrize(
    ("workloads", "share"),
    [
        # The account's whole budget: the host's 4 workers bound the program's calls well below it.
        (100, 1.0),
        # Other callers leave the program a tenth of each bucket.
        # Other callers leave the program a tenth of each bucket: the stated retries (standard mode,
        # 10 attempts: gp3migrate/checks/aws_clients.py) and the batched polls (volume_poller.py)
        # carry it through; with botocore's 3 attempts and a call per volume and poll, a VolumeTags
        # gate failed with RequestLimitExceeded in precopy.
        (100, 0.1),
    ],
)
def test_a_wave_through_precopy_and_cutover_under_throttling_fails_no_gate_and_loses_no_write(
    workloads: int, share: float
) -> None:
    seen: list[World] = []

    def busy_account(sim: object) -> None:
        world = sim.world  # type: ignore[attr-defined]
        world.ebs.bucket_share = share
        seen.append(world)

    run = measure(workloads, per_up=None, prepare=busy_account)

    # No up failed (no gate), and no invariant broke: no write lost, every workload running.
    assert run.problems == [], run.problems[:3]
    assert len(run.seconds) == workloads
