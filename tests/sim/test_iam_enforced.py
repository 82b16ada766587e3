"""The gates and the snapshot provider keep working under the narrowed runner policy, and a call
the policy does not allow fails where it is made (issue 23 item 2).

While a simulated `up` or `destroy` runs, the world's EC2 evaluates every call the program's proof
steps make through boto3 and every call of the `aws:ebs/snapshot` provider against the policy
`gp3migrate iam-policy --stack <stack>` prints for that config (gp3migrate/sim/ebs.py `runner`,
gp3migrate/iam/policy_evaluation.py). Not proven: that AWS builds the request context as modelled
(the ARN and condition keys per action come from the Service Authorization Reference); the IAM,
EKS and KMS calls of other providers and the driver check are not evaluated here
(tests/test_iam_requests.py evaluates them against the same policy under mocks).
"""

import copy
from typing import Any

from gp3migrate.sim.ebs import printed_runner_policy
from gp3migrate.sim.rehearsal import walk
from gp3migrate.sim.scenario import Simulation
from tests.stacks import dev_config


def dev(**entry: Any) -> dict[str, Any]:
    config = dev_config()
    for item in config["migrations"]:
        item.update(entry)
    return config


def without(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    """The printed policy with one statement dropped: what a reviewer's narrower copy would be."""
    planted = copy.deepcopy(policy)
    planted["Statement"] = [s for s in planted["Statement"] if s["Sid"] != sid]
    assert len(planted["Statement"]) == len(policy["Statement"]) - 1, f"no statement {sid}"
    return planted


def problems(report: Any) -> list[str]:
    return [f"{p.phase}: {p.result.error}" for p in report.phases if not p.result.ok] + [
        f"{p.phase}: {v}" for p in report.phases for v in p.violations
    ]


def test_every_strategy_walks_under_the_printed_policy_and_its_calls_are_evaluated():
    for strategy, expected in (
        ("rehome", {"ec2:CreateTags", "ec2:ModifyVolume", "ec2:DescribeVolumes", "ec2:CreateSnapshot"}),
        ("copy", {"ec2:CreateSnapshot", "ec2:DeleteSnapshot", "ec2:DescribeVolumes"}),
    ):
        with Simulation(dev(strategy=strategy), seed=3) as sim:
            report = walk(sim)
            assert problems(report) == [], strategy
            assert sim.world.ebs.refused == []
            assert expected <= set(sim.world.ebs.authorized), (strategy, sim.world.ebs.authorized)


def test_a_policy_without_the_modify_right_fails_the_rehome_precopy_up():
    config = dev()
    with Simulation(config, seed=3) as sim:
        printed = printed_runner_policy(sim.config, sim.stack)
        assert printed is not None
        sim.world.ebs.planted_policy = without(printed, "ModifyInTreeVolumes")
        result = sim.up(sim.with_entries(phase="precopy"))
        assert not result.ok
        assert "UnauthorizedOperation" in str(result.error) and "ec2:ModifyVolume" in str(result.error)
        assert [r.action for r in sim.world.ebs.refused] == ["ec2:ModifyVolume"]
        # The volume was not modified: the refusal happened before EC2 acted.
        volume = sim.world.ebs.volume(sim.config["migrations"][0]["volumeId"])
        assert volume["VolumeType"] == "gp2"


def test_a_policy_without_the_snapshot_tagging_at_creation_fails_the_copy_precopy():
    with Simulation(dev(strategy="copy"), seed=3) as sim:
        printed = printed_runner_policy(sim.config, sim.stack)
        assert printed is not None
        sim.world.ebs.planted_policy = without(printed, "TagSnapshotsAtCreation")
        result = sim.up(sim.with_entries(phase="precopy"))
        assert not result.ok
        assert "UnauthorizedOperation" in str(result.error)
        assert {r.action for r in sim.world.ebs.refused} == {"ec2:CreateTags"}
        assert sim.world.ebs.snapshot_source == {}, "no snapshot was taken"


def test_a_policy_without_the_own_snapshots_right_fails_cleanup_and_keeps_the_snapshots():
    with Simulation(dev(strategy="copy"), seed=3) as sim:
        report = walk(sim, ("precopy", "cutover", "finalize"))
        assert problems(report) == []
        snapshots = set(sim.world.ebs.snapshot_content)
        printed = printed_runner_policy(sim.config, sim.stack)
        assert printed is not None
        sim.world.ebs.planted_policy = without(printed, "OwnSnapshots")
        result = sim.up(sim.with_entries(phase="cleanup"))
        assert not result.ok
        assert {r.action for r in sim.world.ebs.refused} == {"ec2:DeleteSnapshot"}
        assert snapshots <= set(sim.world.ebs.snapshot_content)


def test_the_real_policy_refuses_the_gates_on_a_volume_the_in_tree_provisioner_did_not_make():
    """The scoping bites in the world too: the same rehome on a volume without the in-tree tags."""
    with Simulation(dev(), seed=3) as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        tags = sim.world.ebs.tags(volume)
        sim.world.ebs.ec2.delete_tags(
            Resources=[volume], Tags=[{"Key": k} for k in tags if k.startswith("kubernetes.io/created-for/")]
        )
        result = sim.up(sim.with_entries(phase="precopy"))
        assert not result.ok
        assert "UnauthorizedOperation" in str(result.error)
        assert sim.world.ebs.refused and all(
            r.action in ("ec2:CreateTags", "ec2:ModifyVolume", "ec2:CreateSnapshot") for r in sim.world.ebs.refused
        )
