"""The migration's EBS snapshot tags against the conditions of both managed policies (fixtures of
chart 2.64.0): the driver can restore a volume from the snapshot and later delete it."""

import pytest

from tests.iam_model import allowed
from tests.mock_cloud import advance, copy_stack_config

SNAPSHOT_ARN = "arn:aws:ec2:eu-central-1::snapshot/snap-0123456789abcdef0"
RUNBOOK_TAGS = {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}


@pytest.fixture(scope="module", params=["precopy", "final"])
def snapshot_tags(request):
    result = advance(copy_stack_config("dev"), ["precopy", "cutover"])[-1]
    return result.named(f"migrate-default-ebs-gp2-claim-{request.param}-snapshot").inputs["tags"]


def test_snapshot_tags_are_exact(snapshot_tags):
    assert snapshot_tags["eks-gp3-migration/purpose"] in ("precopy", "final")
    assert snapshot_tags == {
        "ebs.csi.aws.com/cluster": "true",
        "kubernetes.io/cluster/dev-eks": "owned",
        "eks-gp3-migration/migration": "dev/default/ebs-gp2-claim",
        "eks-gp3-migration/purpose": snapshot_tags["eks-gp3-migration/purpose"],
        "eks-gp3-migration/source-pv": "pvc-646fef81-c677-46f4-8f27-9d394618f236",
        "eks-gp3-migration/source-pvc": "default/ebs-gp2-claim",
        "eks-gp3-migration/source-volume": "vol-03d3cd818a2c2def3",
        "environment": "dev",
        "team": "platform",
    }


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("action", ["ec2:CreateVolume", "ec2:DeleteSnapshot"])
def test_driver_may_restore_from_and_delete_our_snapshot(iam_policies, snapshot_tags, version, action):
    assert allowed(iam_policies[version], action, SNAPSHOT_ARN, snapshot_tags)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_runbook_tag_does_not_let_the_driver_delete(iam_policies, version):
    """The runbook's tag key is an IAM condition key, not a tag (DESIGN invariant 4)."""
    assert not allowed(iam_policies[version], "ec2:DeleteSnapshot", SNAPSHOT_ARN, RUNBOOK_TAGS)


def test_runbook_tag_does_not_let_the_v2_driver_restore(iam_policies):
    assert not allowed(iam_policies["v2"], "ec2:CreateVolume", SNAPSHOT_ARN, RUNBOOK_TAGS)
