"""IAM documents for the EBS CSI driver's role, built from plain data.

Built in Python rather than with `aws.iam.get_policy_document` so the exact JSON is reviewable and
testable (that invoke returns nothing under Pulumi mocks).
"""

import hashlib
from collections.abc import Sequence
from typing import Any

from gp3migrate.versions import CONTROLLER_SERVICE_ACCOUNT, DRIVER_NAMESPACE

PolicyDocument = dict[str, Any]

_IAM_ROLE_NAME_MAX = 64


def role_name(cluster_name: str) -> str:
    """The driver role's name: deterministic (no random suffix), so the runner's policy can name it
    (gp3migrate/iam/runner_policy.py); shortened with a digest past IAM's 64 characters."""
    name = f"{cluster_name}-ebs-csi-driver"
    if len(name) <= _IAM_ROLE_NAME_MAX:
        return name
    digest = hashlib.sha256(cluster_name.encode()).hexdigest()[:8]
    return f"{cluster_name[: _IAM_ROLE_NAME_MAX - len('-ebs-csi-') - 8]}-ebs-csi-{digest}"


def managed_policy_v1_arn(partition: str) -> str:
    return f"arn:{partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


# V2's ARN is printed differently in two AWS sources (DESIGN "Facts"), so it is looked up by name.
MANAGED_POLICY_V2_NAME = "AmazonEBSCSIDriverPolicyV2"


def partition_of(arn: str) -> str:
    """`aws`, `aws-cn` or `aws-us-gov`: the second field of any ARN."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[1]


def issuer_host(issuer_url: str) -> str:
    """The OIDC issuer without its scheme: the prefix IAM uses for the `:sub`/`:aud` condition keys."""
    return issuer_url.removeprefix("https://")


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str) -> PolicyDocument:
    """Only the controller's service account, and only for STS, may assume the role.

    Both `:sub` and `:aud` are checked with StringEquals (EKS IRSA docs; terraform-aws-iam does the
    same): `:sub` alone would accept tokens minted for other audiences.
    """
    host = issuer_host(issuer_url)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host}:aud": "sts.amazonaws.com",
                        f"{host}:sub": f"system:serviceaccount:{DRIVER_NAMESPACE}:{CONTROLLER_SERVICE_ACCOUNT}",
                    }
                },
            }
        ],
    }


def pod_identity_trust_policy(cluster_arn: str) -> PolicyDocument:
    """EKS Pod Identity: the agent assumes the role and tags the session, and only for the
    controller's service account in this cluster.

    Without conditions any Pod Identity association in the account could use the role. EKS tags
    the AssumeRole request with the pod's cluster ARN, namespace and service account (EKS user guide,
    "Create IAM role with trust policy required by EKS Pod Identity", Setting Conditions, and "Grant
    Pods access to AWS resources based on tags", the session tags list); the trust checks all three.
    Both actions carry the condition, as in the guide's example.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-arn": cluster_arn,
                        "aws:RequestTag/kubernetes-namespace": DRIVER_NAMESPACE,
                        "aws:RequestTag/kubernetes-service-account": CONTROLLER_SERVICE_ACCOUNT,
                    }
                },
            }
        ],
    }


def kms_policy(key_arns: Sequence[str]) -> PolicyDocument:
    """Use of the named customer-managed keys for encrypted volumes, and nothing else.

    Grants are limited to AWS resources (EBS attaches volumes through grants): the form of the EKS
    user guide, "Create an Amazon EBS CSI driver IAM role" (custom KMS key step). The driver's own
    docs/install.md ("Encrypted EBS Volumes via KMS") shows a shorter list (Decrypt,
    GenerateDataKeyWithoutPlaintext, CreateGrant) without the grant condition.
    """
    if not key_arns:
        raise ValueError("a KMS policy needs at least one key")
    keys = sorted(key_arns)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GrantsForEbs",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": keys,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Sid": "UseKeysForVolumes",
                "Effect": "Allow",
                "Action": [
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:Encrypt",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                ],
                "Resource": keys,
            },
        ],
    }
