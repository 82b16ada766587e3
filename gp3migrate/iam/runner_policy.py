"""`gp3migrate iam-policy --stack <stack>`: the IAM policy the identity that runs
`pulumi up` for a stack needs, printed as JSON; `iam-policy --for discover`: the read-only policy
`gp3migrate discover` needs, the same for every stack.

Built from data, not by hand: what the pulumi-aws provider (the Terraform AWS provider underneath)
calls to create, read, update and delete each AWS resource type this program registers, what each
provider function (invoke) it calls needs, and the AWS calls of the program's own code (boto3). The
proof steps (components/gate_providers.py) are dynamic resources, which the engine runs with the runner's
credentials (Pulumi docs, "Dynamic Resource Providers"), so their boto3 calls belong here too.

A stack's phases change one `up` at a time (precopy -> cutover -> finalize, or rollback) and
discovery adds volumes between two `up`s, so the policy covers every phase of every strategy
(rehome, modify, copy) whether or not `migrations` lists a volume yet: it changes only with the
platform settings (driver install and identity, managed policy, KMS keys, a rehearsal cluster).
One exception: a driver kept with `driverInstall: present` is checked against the KMS keys in use,
which include an encrypted listed volume's key (gp3migrate/checks/driver_readiness.py keys_in_use); on a
stack without kmsKeyArns or gp3KmsKeyId the check's rights come with the first such volume.
tests/test_runner_policy.py runs the real program under mocks for the dev, prod and rehearsal stacks
and through every phase, and fails when it registers or calls anything this table does not grant;
it also scans the source for boto3 calls without an entry here.

Action lists: AWS Service Authorization Reference (the "API operations" tables of EC2, EKS and IAM,
including the actions an operation also needs, e.g. CreateAddon -> iam:PassRole) and the operations
the Terraform AWS provider's resources call (a read after every create and update, tagging on
create).

Resources and conditions (issue 23): every write goes to what the program names or owns, through
SCOPES below. IAM writes only on the roles it creates (the driver role by name, the rehearsal's by
the prefix their resource names give them), AttachRolePolicy only of the managed policies it
attaches (`iam:PolicyARN`), PassRole only to EKS (`iam:PassedToService`); EC2 writes on volumes only
on in-tree provisioned ones (`kubernetes.io/created-for/pvc/name`) and only the driver's tag, on
snapshots only on this stack's (its `eks-gp3-migration/migration` tag) or tags at their creation
(`ec2:CreateAction`); EKS writes on this stack's cluster. A Deny keeps the runner from assuming the
roles it may write. What stays on `*` is reads and the rehearsal network's creation
(tests/test_iam_analyzer.py lists each with why).
"""

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gp3migrate.checks import driver_readiness
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import PROJECT, Settings, load_settings, project_values
from gp3migrate.iam import driver_policies
from gp3migrate.versions import DRIVER_MANAGED_TAG


@dataclass(frozen=True)
class Grant:
    actions: tuple[str, ...]
    # Where the need comes from, for a reader checking the table.
    source: str
    # (scope, actions): those of `actions` granted only on a scope's resources and conditions
    # (SCOPES); the others are on `*`, which only reads and unscopable creations may be.
    scoped: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def unscoped(self) -> tuple[str, ...]:
        limited = {a for _, actions in self.scoped for a in actions}
        return tuple(a for a in self.actions if a not in limited)


_ROLE = (
    "iam:CreateRole",
    "iam:TagRole",
    "iam:GetRole",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:UntagRole",
    "iam:ListInstanceProfilesForRole",
    "iam:DeleteRole",
)
_EC2_TAGS = ("ec2:CreateTags", "ec2:DeleteTags")
_EKS_TAGS = ("eks:TagResource", "eks:UntagResource")
_OIDC = (
    "iam:CreateOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:GetOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:UntagOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
)
_ADDON = ("eks:CreateAddon", "eks:DescribeAddon", "eks:UpdateAddon", "eks:DeleteAddon", *_EKS_TAGS)
_POD_IDENTITY = (
    "eks:CreatePodIdentityAssociation",
    "eks:DescribePodIdentityAssociation",
    "eks:UpdatePodIdentityAssociation",
    "eks:DeletePodIdentityAssociation",
    *_EKS_TAGS,
)
_CLUSTER = (
    "eks:CreateCluster",
    "eks:DescribeCluster",
    "eks:UpdateClusterConfig",
    "eks:UpdateClusterVersion",
    "eks:DescribeUpdate",
    "eks:DeleteCluster",
    *_EKS_TAGS,
)
_NODEGROUP = (
    "eks:CreateNodegroup",
    "eks:DescribeNodegroup",
    "eks:UpdateNodegroupConfig",
    "eks:UpdateNodegroupVersion",
    "eks:DescribeUpdate",
    "eks:DeleteNodegroup",
    *_EKS_TAGS,
)


def _network(source: str, *actions: str) -> Grant:
    """A rehearsal network resource: its tags only on the network's resource types, the rest on `*`
    (a VPC, subnet or gateway has no ARN before it exists; see test_iam_analyzer.py)."""
    return Grant((*actions, *_EC2_TAGS), source, scoped=(("RehearsalNetworkTags", _EC2_TAGS),))


# Resource type -> what creating, reading, updating and deleting it calls.
RESOURCES: dict[str, Grant] = {
    "aws:iam/role:Role": Grant(
        _ROLE,
        "driver role (components/driver_identity.py), rehearsal node role",
        scoped=(("ProgramRoles", _ROLE),),
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Grant(
        ("iam:AttachRolePolicy", "iam:ListAttachedRolePolicies", "iam:DetachRolePolicy"),
        "managed policy on the driver role; node policies of the rehearsal",
        scoped=(
            ("ProgramRoles", ("iam:ListAttachedRolePolicies",)),
            ("AttachOnlyTheDriverPolicy", ("iam:AttachRolePolicy", "iam:DetachRolePolicy")),
            ("AttachOnlyTheRehearsalPolicies", ("iam:AttachRolePolicy", "iam:DetachRolePolicy")),
        ),
    ),
    "aws:iam/rolePolicy:RolePolicy": Grant(
        ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
        "KMS grants on the driver role",
        scoped=(("DriverRoleKmsPolicy", ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy")),),
    ),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": Grant(
        _OIDC, "createOidcProvider: true; pulumi-eks's createOidcProvider", scoped=(("EksOidcProviders", _OIDC),)
    ),
    # CreateAddon also needs iam:PassRole for the role it is given (Service Authorization Reference).
    "aws:eks/addon:Addon": Grant(
        (*_ADDON, "iam:PassRole"),
        "driverInstall: addon, snapshotSupport: addon; pulumi-eks's vpc-cni, kube-proxy, coredns",
        scoped=(("ThisCluster", _ADDON), ("PassProgramRolesToEks", ("iam:PassRole",))),
    ),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": Grant(
        (*_POD_IDENTITY, "iam:PassRole"),
        "driverIdentity: pod-identity with the Helm install",
        scoped=(("ThisCluster", _POD_IDENTITY), ("PassProgramRolesToEks", ("iam:PassRole",))),
    ),
    # Created with its tags (CreateSnapshot with TagSpecifications: CreateTags on the new snapshot,
    # ec2:CreateAction), of the source volume; finalize deletes it; a tag edit (extraVolumeTags)
    # updates it in place.
    "aws:ebs/snapshot:Snapshot": Grant(
        ("ec2:CreateSnapshot", "ec2:DescribeSnapshots", "ec2:DeleteSnapshot", *_EC2_TAGS),
        "pre-copy and final snapshots (components/volume_migration.py)",
        scoped=(
            ("SnapshotInTreeVolumes", ("ec2:CreateSnapshot",)),
            ("CreateOwnSnapshots", ("ec2:CreateSnapshot",)),
            ("TagSnapshotsAtCreation", ("ec2:CreateTags",)),
            ("OwnSnapshots", ("ec2:DeleteSnapshot", *_EC2_TAGS)),
        ),
    ),
    # Its AWS calls are the boto3 calls in BOTO3_CALLS and DRIVER_CHECK_CALLS; the resource itself
    # needs nothing.
    "pulumi-python:dynamic:Resource": Grant(
        (), "the proof steps of components/gate_providers.py, the driver check of components/driver_check_provider.py"
    ),
    # The provider checks its credentials with sts:GetCallerIdentity, which needs no permission
    # (AWS STS API reference).
    "pulumi:providers:aws": Grant((), "explicit providers for the cluster's region"),
    # The rehearsal cluster and its network.
    "aws:eks/cluster:Cluster": Grant(
        (*_CLUSTER, "iam:PassRole", "iam:CreateServiceLinkedRole"),
        "pulumi-eks's control plane",
        scoped=(
            # CreateCluster has no resource type to scope to (Service Authorization Reference).
            ("ThisCluster", tuple(a for a in _CLUSTER if a != "eks:CreateCluster")),
            ("PassProgramRolesToEks", ("iam:PassRole",)),
            ("EksServiceLinkedRoles", ("iam:CreateServiceLinkedRole",)),
        ),
    ),
    "aws:eks/nodeGroup:NodeGroup": Grant(
        (*_NODEGROUP, "iam:PassRole", "iam:CreateServiceLinkedRole"),
        "rehearsal nodes; EKS creates AWSServiceRoleForAmazonEKSNodegroup on first use",
        scoped=(
            ("ThisCluster", _NODEGROUP),
            ("PassProgramRolesToEks", ("iam:PassRole",)),
            ("EksServiceLinkedRoles", ("iam:CreateServiceLinkedRole",)),
        ),
    ),
    "aws:ec2/securityGroup:SecurityGroup": _network(
        "pulumi-eks's cluster and node security groups",
        "ec2:CreateSecurityGroup",
        "ec2:DescribeSecurityGroups",
        # The provider replaces the default allow-all egress rule and revokes rules on delete.
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteSecurityGroup",
    ),
    "aws:ec2/securityGroupRule:SecurityGroupRule": Grant(
        (
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
        ),
        "pulumi-eks's security group rules",
    ),
    # The provider also reads the VPC's default security group, network ACL and route table.
    "aws:ec2/vpc:Vpc": _network(
        "rehearsal VPC (components/rehearsal_cluster.py)",
        "ec2:CreateVpc",
        "ec2:DescribeVpcs",
        "ec2:DescribeVpcAttribute",
        "ec2:ModifyVpcAttribute",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeNetworkAcls",
        "ec2:DescribeRouteTables",
        "ec2:DeleteVpc",
    ),
    "aws:ec2/subnet:Subnet": _network(
        "rehearsal subnets", "ec2:CreateSubnet", "ec2:DescribeSubnets", "ec2:ModifySubnetAttribute", "ec2:DeleteSubnet"
    ),
    "aws:ec2/internetGateway:InternetGateway": _network(
        "rehearsal internet gateway",
        "ec2:CreateInternetGateway",
        "ec2:AttachInternetGateway",
        "ec2:DescribeInternetGateways",
        "ec2:DetachInternetGateway",
        "ec2:DeleteInternetGateway",
    ),
    "aws:ec2/routeTable:RouteTable": _network(
        "rehearsal public and private route tables",
        "ec2:CreateRouteTable",
        "ec2:DescribeRouteTables",
        "ec2:CreateRoute",
        "ec2:ReplaceRoute",
        "ec2:DeleteRoute",
        "ec2:DeleteRouteTable",
    ),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": Grant(
        (
            "ec2:AssociateRouteTable",
            "ec2:DescribeRouteTables",
            "ec2:ReplaceRouteTableAssociation",
            "ec2:DisassociateRouteTable",
        ),
        "rehearsal subnet routes",
    ),
    "aws:ec2/eip:Eip": _network(
        "the rehearsal NAT gateway's address",
        "ec2:AllocateAddress",
        "ec2:DescribeAddresses",
        "ec2:DescribeAddressesAttribute",
        "ec2:DisassociateAddress",
        "ec2:ReleaseAddress",
    ),
    "aws:ec2/natGateway:NatGateway": _network(
        "rehearsal NAT gateway", "ec2:CreateNatGateway", "ec2:DescribeNatGateways", "ec2:DeleteNatGateway"
    ),
}

# Provider function (invoke) token -> what it calls.
INVOKES: dict[str, Grant] = {
    "aws:eks/getCluster:getCluster": Grant(
        ("eks:DescribeCluster",),
        "the cluster lookup (cluster_access.py)",
        scoped=(("ThisCluster", ("eks:DescribeCluster",)),),
    ),
    # Looked up by URL: the provider lists the account's providers, then reads the match.
    "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider": Grant(
        ("iam:ListOpenIDConnectProviders", "iam:GetOpenIDConnectProvider"),
        "IRSA trust without createOidcProvider",
        scoped=(("EksOidcProviders", ("iam:GetOpenIDConnectProvider",)),),
    ),
    # Looked up by name; the document comes from its default version.
    "aws:iam/getPolicy:getPolicy": Grant(
        ("iam:ListPolicies", "iam:GetPolicy", "iam:GetPolicyVersion"), "managedPolicy: v2"
    ),
    "aws:index/getAvailabilityZones:getAvailabilityZones": Grant(
        ("ec2:DescribeAvailabilityZones",), "zones of the rehearsal VPC"
    ),
    "aws:eks/getAddonVersion:getAddonVersion": Grant(
        ("eks:DescribeAddonVersions",), "pulumi-eks picks its add-ons' versions"
    ),
    # Answered from the provider's configuration and credentials, no permission needed.
    "aws:index/getPartition:getPartition": Grant((), "pulumi-eks"),
    "aws:index/getRegion:getRegion": Grant((), "pulumi-eks"),
    "aws:index/getCallerIdentity:getCallerIdentity": Grant((), "pulumi-eks (sts:GetCallerIdentity)"),
}

# boto3 `<service>.<operation>` the program's own code calls (waiters and paginators by the
# operation they call) -> the IAM action.
BOTO3_CALLS: dict[str, Grant] = {
    "ec2.describe_volumes": Grant(
        ("ec2:DescribeVolumes",), "gp3migrate/checks/preconditions.py (detach and in-use proof steps)"
    ),
    # The rehome and modify strategies' steps (gp3migrate/checks/preconditions.py, issue 10). Granted to every
    # stack, as the other gate calls are: any stack may come to list such a volume.
    "ec2.create_tags": Grant(
        ("ec2:CreateTags",),
        "gp3migrate/checks/preconditions.py (tag_volume: the driver's cluster tag)",
        scoped=(("TagInTreeVolumesForTheDriver", ("ec2:CreateTags",)),),
    ),
    "ec2.modify_volume": Grant(
        ("ec2:ModifyVolume",),
        "gp3migrate/checks/preconditions.py (modify_to_gp3)",
        scoped=(("ModifyInTreeVolumes", ("ec2:ModifyVolume",)),),
    ),
    "ec2.describe_volumes_modifications": Grant(
        ("ec2:DescribeVolumesModifications",),
        "gp3migrate/checks/preconditions.py (modify_to_gp3: in flight, done, cooldown)",
    ),
}

# What any strategy's steps register or call (components/volume_migration.py, gp3migrate/checks/preconditions.py):
# snapshots (copy; rehome's safety snapshot), the proof steps as dynamic resources, their boto3.
MIGRATION_TOKENS = frozenset({"aws:ebs/snapshot:Snapshot", "pulumi-python:dynamic:Resource", *BOTO3_CALLS})

# The check of a driver kept with `driverInstall: present` (components/driver_check_provider.py, a dynamic
# resource run with the runner's credentials): only when KMS keys are in use, to find the driver's
# role (Pod Identity, when its ServiceAccount has no IRSA annotation), skip AWS managed keys and
# ask the policy simulator what the role may do with the others. The ServiceAccount and the
# controller Deployment are read through the cluster's RBAC.
DRIVER_CHECK_CALLS: dict[str, Grant] = {
    "eks.describe_pod_identity_association": Grant(
        ("eks:DescribePodIdentityAssociation",),
        "gp3migrate/checks/driver_readiness.py (the driver's role)",
        scoped=(("ThisCluster", ("eks:DescribePodIdentityAssociation",)),),
    ),
    "eks.list_pod_identity_associations": Grant(
        ("eks:ListPodIdentityAssociations",),
        "gp3migrate/checks/driver_readiness.py (the driver's role)",
        scoped=(("ThisCluster", ("eks:ListPodIdentityAssociations",)),),
    ),
    # The role is the running driver's, found at run time (its ServiceAccount's annotation or
    # association): no name to scope to. Reads policies, changes nothing.
    "iam.simulate_principal_policy": Grant(
        ("iam:SimulatePrincipalPolicy",), "gp3migrate/checks/driver_readiness.py (the role's rights on the KMS keys)"
    ),
    "kms.describe_key": Grant(
        ("kms:DescribeKey",),
        "gp3migrate/checks/driver_readiness.py (customer or AWS managed key)",
        scoped=(("KeysInUse", ("kms:DescribeKey",)),),
    ),
}

# Every call `gp3migrate discover` makes, with the credentials of whoever runs it: the policy
# `iam-policy --for discover` prints, apart from the runner's. Read-only, and the same for every
# stack (a stack names the cluster and region, never what is read there).
DISCOVERY_CALLS: dict[str, Grant] = {
    "ec2.describe_volumes": Grant(("ec2:DescribeVolumes",), "gp3migrate/discovery/inventory.py (the listed volumes)"),
    "eks.describe_cluster": Grant(
        ("eks:DescribeCluster",), "gp3migrate/discovery/cli.py (the kubeconfig points at the cluster)"
    ),
    "eks.describe_addon": Grant(("eks:DescribeAddon",), "gp3migrate/discovery/inventory.py (driver detection)"),
    "eks.list_addons": Grant(("eks:ListAddons",), "gp3migrate/discovery/inventory.py (driver detection)"),
}

# What pulumi-eks's Cluster component creates and calls with this program's options (pulumi-eks
# 4.x nodejs/eks/cluster/cluster.ts: service role, cluster and node security groups, the control
# plane, the vpc-cni / kube-proxy / coredns add-ons, the OIDC provider). Its Kubernetes objects use
# the cluster's RBAC, not IAM.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "eks:index:Cluster": (
        "aws:iam/role:Role",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:eks/cluster:Cluster",
        "aws:eks/addon:Addon",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:eks/getAddonVersion:getAddonVersion",
        "aws:index/getPartition:getPartition",
        "aws:index/getRegion:getRegion",
        "aws:index/getCallerIdentity:getCallerIdentity",
    ),
}

# Registered by the program but acting through Kubernetes (the cluster's RBAC) or nowhere in AWS.
NOT_AWS_PREFIXES = ("kubernetes:", "pulumi:providers:kubernetes", f"{PROJECT}:index:", "pulumi:pulumi:")

# EKS creates these service-linked roles on first use, with the caller's permission (EKS user
# guide, "Using service-linked roles for Amazon EKS" and "... for Amazon EKS node groups").
EKS_SERVICE_LINKED_ROLES = ("eks-nodegroup.amazonaws.com", "eks.amazonaws.com")

# --- What the program names or owns, for the scopes --------------------------------------------

# The tag every migration snapshot carries, `<stack>/<namespace>/<claim>`
# (gp3migrate/planning/restore.py snapshot_tags; tests/test_iam_requests.py checks they agree).
MIGRATION_TAG = "eks-gp3-migration/migration"
# What the in-tree provisioner tags its volumes with (kubernetes pkg/volume/util
# CloudVolumeCreatedForClaimNameTag); AmazonEBSCSIDriverPolicyV2 accepts it as the sign of a volume
# the cluster made (gp3migrate/checks/preconditions.py DRIVER_VOLUME_TAGS). The volumes this
# program tags, modifies and snapshots are such in-tree volumes.
IN_TREE_VOLUME_TAG = "kubernetes.io/created-for/pvc/name"
# The rehearsal's roles have no `name`: Pulumi names them `<resource name>-<7 random hex>` (Pulumi
# docs, "Resource names", autonaming), after the names the program gives: __main__.py's
# RehearsalCluster("rehearsal"), its `<name>-node-role` (components/rehearsal_cluster.py _node_role)
# and pulumi-eks's service role `<cluster resource>-eksRole-role` (pulumi-eks nodejs/eks/cluster/
# cluster.ts createCore: ServiceRole(`${name}-eksRole`); servicerole.ts: Role(`${name}-role`)).
REHEARSAL_RESOURCE = "rehearsal"
REHEARSAL_ROLE_PREFIXES = (f"{REHEARSAL_RESOURCE}-node-role-", f"{REHEARSAL_RESOURCE}-eks-eksRole-role-")
# What the rehearsal attaches to them: the node policies (components/rehearsal_cluster.py
# NODE_POLICIES) and pulumi-eks's AmazonEKSClusterPolicy on its service role (cluster.ts).
REHEARSAL_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKSClusterPolicy",
)
# The services this program's roles are passed to: EKS (cluster, node group, add-on) and EKS Pod
# Identity (pod-identity associations).
EKS_SERVICES = ("eks.amazonaws.com", "pods.eks.amazonaws.com")
# Never on `*` (test_iam_analyzer.py): every action of these services that writes goes to a scope.
_REHEARSAL_NETWORK_TYPES = (
    "vpc",
    "subnet",
    "internet-gateway",
    "route-table",
    "elastic-ip",
    "natgateway",
    "security-group",
)


def partition_of_region(region: str) -> str:
    """The ARN partition of a region code: `aws-cn` for cn-*, `aws-us-gov` for us-gov-*."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class _Owned:
    """What one stack's policy scopes to, from its settings."""

    partition: str
    regions: tuple[str, ...]
    cluster: str
    stack: str
    driver_role: str | None
    rehearsal: bool
    managed_policy: str

    def arn(self, service: str, region: str, resource: str, account: str = "*") -> str:
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def role_arns(self) -> list[str]:
        roles = [self.driver_role] if self.driver_role else []
        roles += [f"{prefix}*" for prefix in REHEARSAL_ROLE_PREFIXES] if self.rehearsal else []
        return [self.arn("iam", "", f"role/{role}") for role in roles]


def _owned(settings: Settings, stack: str) -> _Owned:
    regions = {settings.cluster.region, *([settings.rehearsal.region] if settings.rehearsal else [])}
    return _Owned(
        partition=partition_of_region(settings.cluster.region),
        regions=tuple(sorted(regions)),
        cluster=settings.cluster.name,
        stack=stack,
        driver_role=driver_policies.role_name(settings.cluster.name) if settings.driver.install != "present" else None,
        rehearsal=settings.rehearsal is not None,
        managed_policy=settings.driver.managed_policy,
    )


def _driver_policy_arns(owned: _Owned) -> dict[str, Any]:
    """AttachRolePolicy's condition for the driver role: the one managed policy it gets. V2 is
    looked up by name (its path differs between AWS sources, DESIGN Facts): any path, AWS's account."""
    if owned.managed_policy == "v1":
        return {"ArnEquals": {"iam:PolicyARN": [driver_policies.managed_policy_v1_arn(owned.partition)]}}
    name = driver_policies.MANAGED_POLICY_V2_NAME
    prefix = f"arn:{owned.partition}:iam::aws:policy/"
    return {"ArnLike": {"iam:PolicyARN": [f"{prefix}{name}", f"{prefix}*/{name}"]}}


def _eks_kinds(actions: Iterable[str]) -> list[str]:
    """The EKS resource types these actions act on (Service Authorization Reference, EKS): an
    add-on's, node group's or association's own, the cluster for the rest (tags included)."""
    kinds = {"cluster"}
    for action in actions:
        for word, kind in (("Addon", "addon"), ("Nodegroup", "nodegroup"), ("PodIdentity", "podidentityassociation")):
            if word in action and action not in ("eks:TagResource", "eks:UntagResource"):
                kinds.add(kind)
    return sorted(kinds)


def _scope(
    name: str, actions: set[str], owned: _Owned, settings: Settings
) -> tuple[list[str], dict[str, Any] | None] | None:
    """A scope's resources and condition for this stack, or None where it has nothing to scope to."""
    p, regions = owned.partition, owned.regions
    in_tree = {"Null": {f"ec2:ResourceTag/{IN_TREE_VOLUME_TAG}": "false"}}
    volumes = [owned.arn("ec2", r, "volume/*") for r in regions]
    # Snapshot ARNs have no account (Service Authorization Reference, EC2 resource types).
    snapshots = [owned.arn("ec2", r, "snapshot/*", account="") for r in regions]
    ours = f"{owned.stack}/*"
    scopes: dict[str, tuple[list[str], dict[str, Any] | None] | None] = {
        "ProgramRoles": (owned.role_arns(), None) if owned.role_arns() else None,
        "AttachOnlyTheDriverPolicy": (
            ([owned.arn("iam", "", f"role/{owned.driver_role}")], _driver_policy_arns(owned))
            if owned.driver_role
            else None
        ),
        "AttachOnlyTheRehearsalPolicies": (
            (
                [owned.arn("iam", "", f"role/{prefix}*") for prefix in REHEARSAL_ROLE_PREFIXES],
                {"ArnEquals": {"iam:PolicyARN": [f"arn:{p}:iam::aws:policy/{x}" for x in REHEARSAL_MANAGED_POLICIES]}},
            )
            if owned.rehearsal
            else None
        ),
        "DriverRoleKmsPolicy": (
            ([owned.arn("iam", "", f"role/{owned.driver_role}")], None) if owned.driver_role else None
        ),
        "PassProgramRolesToEks": (
            (owned.role_arns(), {"StringEquals": {"iam:PassedToService": list(EKS_SERVICES)}})
            if owned.role_arns()
            else None
        ),
        "EksServiceLinkedRoles": (
            [owned.arn("iam", "", "role/aws-service-role/*")],
            {"StringEquals": {"iam:AWSServiceName": sorted(EKS_SERVICE_LINKED_ROLES)}},
        ),
        # The issuer host EKS gives each cluster (EKS user guide, "Create an IAM OIDC provider").
        "EksOidcProviders": (
            [
                owned.arn("iam", "", f"oidc-provider/oidc.eks.{r}.amazonaws.com{'.cn' if p == 'aws-cn' else ''}/id/*")
                for r in regions
            ],
            None,
        ),
        "ThisCluster": (
            [
                owned.arn("eks", r, f"{kind}/{owned.cluster}{'' if kind == 'cluster' else '/*'}")
                for r in regions
                for kind in _eks_kinds(actions)
            ],
            None,
        ),
        "TagInTreeVolumesForTheDriver": (
            volumes,
            {
                **in_tree,
                "StringEquals": {f"aws:RequestTag/{DRIVER_MANAGED_TAG}": "true"},
                "ForAllValues:StringEquals": {"aws:TagKeys": [DRIVER_MANAGED_TAG]},
            },
        ),
        "ModifyInTreeVolumes": (volumes, in_tree),
        "SnapshotInTreeVolumes": (volumes, in_tree),
        "CreateOwnSnapshots": (snapshots, {"StringLike": {f"aws:RequestTag/{MIGRATION_TAG}": ours}}),
        "TagSnapshotsAtCreation": (snapshots, {"StringEquals": {"ec2:CreateAction": "CreateSnapshot"}}),
        "OwnSnapshots": (snapshots, {"StringLike": {f"ec2:ResourceTag/{MIGRATION_TAG}": ours}}),
        "RehearsalNetworkTags": (
            [owned.arn("ec2", r, f"{kind}/*") for r in regions for kind in _REHEARSAL_NETWORK_TYPES],
            None,
        ),
        "KeysInUse": (list(driver_readiness.keys_in_use(settings)), None)
        if driver_readiness.keys_in_use(settings)
        else None,
    }
    return scopes[name]


def needed_by(settings: Settings) -> set[str]:
    """Every resource type, invoke token and boto3 call a stack with these settings uses in any
    of its phases (the same branches as __main__.py and components/)."""
    driver = settings.driver
    needed = {"pulumi:providers:aws", "aws:eks/getCluster:getCluster"}
    # driverInstall: present keeps the running driver and its identity: no role of ours.
    if driver.install != "present":
        needed |= {"aws:iam/role:Role", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"}
        if driver.identity == "irsa":
            needed.add(
                "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
                if driver.create_oidc_provider
                else "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider"
            )
        elif driver.install == "helm":
            needed.add("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if driver.managed_policy == "v2":
            needed.add("aws:iam/getPolicy:getPolicy")
        if driver.kms_key_arns:
            needed.add("aws:iam/rolePolicy:RolePolicy")
    if driver.install == "addon" or settings.snapshots.support == "addon":
        needed.add("aws:eks/addon:Addon")
    # Every strategy's rights, with or without `migrations` entries: discovery adds the first
    # volumes between two `up`s (prod and rehearsal ship with none), and the policy must not
    # change then. Their scopes name no volume: the in-tree tag, this stack's snapshot tag.
    needed |= MIGRATION_TOKENS
    if driver.install == "present":
        needed.add("pulumi-python:dynamic:Resource")
        if driver_readiness.keys_in_use(settings):
            needed |= set(DRIVER_CHECK_CALLS)
    if settings.rehearsal is not None:
        needed |= {
            "eks:index:Cluster",
            "aws:eks/nodeGroup:NodeGroup",
            "aws:iam/role:Role",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        }
        if settings.rehearsal.vpc_id is None:
            needed |= {
                "aws:index/getAvailabilityZones:getAvailabilityZones",
                "aws:ec2/vpc:Vpc",
                "aws:ec2/subnet:Subnet",
                "aws:ec2/internetGateway:InternetGateway",
                "aws:ec2/routeTable:RouteTable",
                "aws:ec2/routeTableAssociation:RouteTableAssociation",
                "aws:ec2/eip:Eip",
                "aws:ec2/natGateway:NatGateway",
            }
    return needed


def grant_for(token: str) -> Grant:
    """The grant of one resource type, invoke or boto3 call; a component's is its children's."""
    for table in (RESOURCES, INVOKES, BOTO3_CALLS, DRIVER_CHECK_CALLS):
        if token in table:
            return table[token]
    if token in COMPONENTS:
        children = [grant_for(child) for child in COMPONENTS[token]]
        return Grant(
            tuple(a for g in children for a in g.actions),
            f"what {token} creates and calls",
            scoped=tuple(s for g in children for s in g.scoped),
        )
    raise KeyError(f"{token} has no entry in gp3migrate/iam/runner_policy.py")


def actions_for(tokens: Iterable[str]) -> set[str]:
    return {action for token in tokens for action in grant_for(token).actions}


def policy(settings: Settings, stack: str) -> dict[str, Any]:
    """The IAM policy document of a stack, deterministic: statements by Sid, actions sorted.

    One statement on `*` for what cannot be scoped (reads; the rehearsal network's creation), one
    per scope for the rest, and a Deny of assuming the roles the runner may write: their trust
    policy is the runner's to write, so without it the runner could make one trust itself."""
    owned = _owned(settings, stack)
    grants = [grant_for(token) for token in needed_by(settings)]
    anywhere = {action for grant in grants for action in grant.unscoped}
    by_scope: dict[str, set[str]] = defaultdict(set)
    for grant in grants:
        for name, actions in grant.scoped:
            by_scope[name] |= set(actions)
    statements: list[dict[str, Any]] = [
        {"Sid": "OnAnyResource", "Effect": "Allow", "Action": sorted(anywhere), "Resource": "*"}
    ]
    placed: set[str] = set()
    for name in sorted(by_scope):
        scope = _scope(name, by_scope[name], owned, settings)
        if scope is None:  # e.g. the rehearsal's attachments on a stack without a rehearsal
            continue
        resources, condition = scope
        statement: dict[str, Any] = {
            "Sid": name,
            "Effect": "Allow",
            "Action": sorted(by_scope[name]),
            "Resource": sorted(resources),
        }
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
        placed |= by_scope[name]
    lost = {a for actions in by_scope.values() for a in actions} - placed
    if lost:  # a table entry scoped to nothing this stack has: a bug here, not a user error
        raise AssertionError(f"scoped actions with no statement for this stack: {sorted(lost)}")
    if owned.role_arns():
        statements.append(
            {
                "Sid": "NeverAssumeTheRolesItWrites",
                "Effect": "Deny",
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Resource": sorted(owned.role_arns()),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def discover_policy() -> dict[str, Any]:
    """The IAM policy `gp3migrate discover` needs: what DISCOVERY_CALLS grant, sorted."""
    actions = {action for grant in DISCOVERY_CALLS.values() for action in grant.actions}
    statement = {"Sid": "EksGp3MigrationDiscover", "Effect": "Allow", "Action": sorted(actions), "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [statement]}


class StackFileError(Exception):
    """A stack file that cannot be read or holds config the program refuses; one line per problem."""


def _as_runtime_value(value: Any) -> Any:
    """A stack file's value as the Pulumi runtime hands it to the program: scalars as strings,
    lists and maps as JSON, secrets (which only the CLI can decrypt) as an opaque string."""
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return "(secret)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def read_stack_settings(project_dir: Path, stack: str) -> Settings:
    """The validated settings of `Pulumi.<stack>.yaml`, read the way the program reads them."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise StackFileError(f"{path}: no such stack file (stacks here: {_stacks(project_dir) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise StackFileError(f"{path}: not valid YAML{where}") from err
    config = data.get("config") if isinstance(data, Mapping) else None
    if not isinstance(config, Mapping):
        raise StackFileError(f"{path}: has no `config:` map")
    try:
        return load_settings(project_values({str(k): _as_runtime_value(v) for k, v in config.items()}, PROJECT))
    except ConfigError as err:
        raise StackFileError("\n".join(f"{path}: {problem}" for problem in err.problems)) from err


def _stacks(project_dir: Path) -> str:
    return ", ".join(sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml")))


# Who the printed policy is for: the identity running `pulumi up`, or the one running discover.
POLICY_FOR = ("runner", "discover")


def add_subcommand(commands: Any) -> None:
    """Registers `iam-policy` on the CLI's subcommands (gp3migrate/cli.py)."""
    command = commands.add_parser(
        "iam-policy", help="print the IAM policy `pulumi up` needs for a stack (--for discover: what `discover` needs)"
    )
    # Checked in run(), not by argparse `choices`/`required`, so a bad value is one line, not usage.
    command.add_argument(
        "--for",
        dest="policy_for",
        default="runner",
        metavar="{runner,discover}",
        help="runner (default): who runs `pulumi up` for --stack; discover: who runs `gp3migrate discover` "
        "(the same for every stack: no --stack)",
    )
    command.add_argument("--stack", help="stack whose Pulumi.<stack>.yaml decides the runner's policy")
    command.add_argument("--project-dir", type=Path, default=Path("."), help="where the stack files are")
    command.set_defaults(run=run, parser=command)


def _arguments_problem(policy_for: str, stack: str | None) -> str | None:
    """What is wrong with --for and --stack together, as `<flag>: <value> <what is allowed>`."""
    if policy_for not in POLICY_FOR:
        return f"--for: {policy_for!r} is not one of {', '.join(POLICY_FOR)}"
    if policy_for == "discover":
        if stack is not None:
            return (
                f"--stack: {stack!r} is not used with --for discover (discover's rights are the same for every stack)"
            )
        return None
    if stack is None:
        return "--stack: is required with --for runner (the stack whose Pulumi.<stack>.yaml decides the policy)"
    if not stack or not all(c.isalnum() or c in "-_." for c in stack):
        return f"--stack: {stack!r} is not a stack name (letters, digits, '-', '_' and '.')"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _arguments_problem(args.policy_for, args.stack)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.policy_for == "discover":
        document = discover_policy()
    else:
        try:
            document = policy(read_stack_settings(args.project_dir, args.stack), args.stack)
        except StackFileError as err:
            for line in str(err).splitlines():
                print(f"error: {line}", file=sys.stderr)
            return 2
    print(json.dumps(document, indent=2, sort_keys=True))
    return 0
