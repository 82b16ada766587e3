"""The rehearsal stack under mocks: the pulumi-eks cluster is one opaque component here, so the
tests assert what it is given (and which provider); the VPC and node group are plain resources,
asserted exactly. Then the demo workload, and that the platform and migrations talk to the
rehearsal cluster (its kubeconfig), not to a cluster found by name alone.

Not proven here: that pulumi-eks builds a working cluster in that VPC, that nodes join through the
NAT gateway, that EKS accepts the chosen zones (the opt-in live test does that)."""

import hashlib
import json
from collections import Counter

import pulumi_aws as aws
import pulumi_eks as eks
import pytest

from gp3migrate import versions
from gp3migrate.planning.demo_manifests import WRITER_COMMAND
from tests import rehearsal_mocks
from tests.mock_cloud import Run, run_program, stack_config, stack_name

REHEARSAL = stack_config("rehearsal")
KEY = "eks-gp3-migration"
EXISTING_VPC = {
    f"{KEY}:rehearsalVpcId": "vpc-0123456789abcdef0",
    f"{KEY}:rehearsalSubnetIds": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
}
REHEARSAL_PROVIDER = (
    "urn:pulumi:rehearsal::eks-gp3-migration::eks-gp3-migration:index:RehearsalCluster"
    "$pulumi:providers:aws::rehearsal-aws::rehearsal-aws-id"
)
ALLOCATION_ID = f"eipalloc-{hashlib.sha256(b'rehearsal-nat-ip').hexdigest()[:17]}"
NETWORK_TYPES = (
    "aws:ec2/vpc:Vpc",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/eip:Eip",
    "aws:ec2/natGateway:NatGateway",
)


@pytest.fixture(autouse=True)
def cloud(monkeypatch):
    return rehearsal_mocks.install(monkeypatch)


def rehearsal_run(config=None) -> Run:
    run = run_program(config or REHEARSAL, stack="rehearsal")
    assert run.error is None, run.error
    return run


def children_of(run: Run, component: str):
    """Every registration below `component`, at any depth."""
    parents = {run.named(component).urn}
    found = []
    for registration in run.registrations:  # a parent registers before its children
        if registration.parent in parents:
            parents.add(registration.urn)
            found.append(registration)
    return found


def test_every_rehearsal_resource_goes_through_one_provider_for_the_stacks_region(cloud):
    run = rehearsal_run()
    provider = run.named("rehearsal-aws")
    assert provider.type == "pulumi:providers:aws"
    assert provider.inputs["region"] == "eu-west-1"
    assert f"{provider.urn}::{provider.name}-id" == REHEARSAL_PROVIDER
    children = children_of(run, "rehearsal")
    custom = sorted(r.name for r in children if r.custom and r.name != "rehearsal-aws")
    assert custom == sorted(
        [
            "rehearsal-vpc",
            "rehearsal-igw",
            "rehearsal-public-routes",
            "rehearsal-public-1",
            "rehearsal-public-2",
            "rehearsal-public-1-routes",
            "rehearsal-public-2-routes",
            "rehearsal-nat-ip",
            "rehearsal-nat",
            "rehearsal-private-routes",
            "rehearsal-private-1",
            "rehearsal-private-2",
            "rehearsal-private-1-routes",
            "rehearsal-private-2-routes",
            "rehearsal-node-role",
            "rehearsal-node-AmazonEKSWorkerNodePolicy",
            "rehearsal-node-AmazonEKS_CNI_Policy",
            "rehearsal-node-AmazonEC2ContainerRegistryReadOnly",
            "rehearsal-nodes",
        ]
    )
    for name in custom:
        assert run.named(name).provider == REHEARSAL_PROVIDER, name
    # A component does not take one provider; pulumi-eks gets the map it hands to its children.
    assert [(r.name, cloud.providers[r.name]) for r in children if not r.custom] == [
        ("rehearsal-eks", {"aws": REHEARSAL_PROVIDER})
    ]
    assert [provider for _, provider in cloud.zone_lookups] == [REHEARSAL_PROVIDER]
    # Nothing AWS in the whole program falls back to the default provider (ambient region).
    assert [r.name for r in run.registrations if r.type.startswith("aws:") and not r.provider] == []
    assert [token for token, ref in cloud.invoke_providers if token.startswith("aws:") and not ref] == []


def test_the_region_comes_from_the_stacks_config(cloud):
    run = rehearsal_run({**REHEARSAL, f"{KEY}:region": "us-east-2"})
    assert run.named("rehearsal-aws").inputs["region"] == "us-east-2"
    assert [
        run.named(f"rehearsal-{kind}-{i}").inputs["availabilityZone"] for kind in ("public", "private") for i in (1, 2)
    ] == [
        "us-east-2a",
        "us-east-2b",
        "us-east-2a",
        "us-east-2b",
    ]


def test_without_a_vpc_in_config_a_small_one_is_created_with_nodes_in_private_subnets(cloud):
    run = rehearsal_run()
    assert cloud.zone_lookups[0][0] == {
        "state": "available",
        "filters": [{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
    }
    assert Counter(r.type for r in run.registrations if r.type.startswith("aws:ec2/")) == Counter(
        {
            "aws:ec2/vpc:Vpc": 1,
            "aws:ec2/internetGateway:InternetGateway": 1,
            "aws:ec2/subnet:Subnet": 4,
            "aws:ec2/routeTable:RouteTable": 2,
            "aws:ec2/routeTableAssociation:RouteTableAssociation": 4,
            "aws:ec2/eip:Eip": 1,
            "aws:ec2/natGateway:NatGateway": 1,
        }
    )
    assert run.named("rehearsal-vpc").inputs == {
        "cidrBlock": "10.0.0.0/16",
        "enableDnsHostnames": True,
        "enableDnsSupport": True,
        "tags": {"Name": "gp3-rehearsal-vpc"},
    }
    # The zone lookup answered c, a, b: the first two by name are used.
    subnets = {r.name: r.inputs for r in run.of_type("aws:ec2/subnet:Subnet")}
    assert subnets == {
        f"rehearsal-{kind}-{i}": {
            "vpcId": "rehearsal-vpc-id",
            "cidrBlock": cidr,
            "availabilityZone": f"eu-west-1{'ab'[i - 1]}",
            "tags": {"Name": f"gp3-rehearsal-{kind}-{i}"},
        }
        for kind, cidrs in (("public", ("10.0.0.0/20", "10.0.16.0/20")), ("private", ("10.0.32.0/20", "10.0.48.0/20")))
        for i, cidr in ((1, cidrs[0]), (2, cidrs[1]))
    }
    assert run.named("rehearsal-public-routes").inputs["routes"] == [
        {"cidrBlock": "0.0.0.0/0", "gatewayId": "rehearsal-igw-id"}
    ]
    assert run.named("rehearsal-private-routes").inputs["routes"] == [
        {"cidrBlock": "0.0.0.0/0", "natGatewayId": "rehearsal-nat-id"}
    ]
    assert {
        r.name: (r.inputs["subnetId"], r.inputs["routeTableId"])
        for r in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    } == {
        f"rehearsal-{kind}-{i}-routes": (f"rehearsal-{kind}-{i}-id", f"rehearsal-{kind}-routes-id")
        for kind in ("public", "private")
        for i in (1, 2)
    }
    assert run.named("rehearsal-nat-ip").inputs == {"domain": "vpc", "tags": {"Name": "gp3-rehearsal-nat"}}
    nat = run.named("rehearsal-nat")
    assert nat.inputs == {
        "allocationId": ALLOCATION_ID,
        "subnetId": "rehearsal-public-1-id",
        "tags": {"Name": "gp3-rehearsal-nat"},
    }
    assert nat.property_dependencies["allocationId"] == [run.named("rehearsal-nat-ip").urn]
    assert run.depends_on("rehearsal-nat", "rehearsal-igw")
    cluster = run.named("rehearsal-eks")
    assert cluster.type == "eks:index:Cluster"
    assert cluster.inputs == {
        "name": "gp3-rehearsal",
        "version": versions.REHEARSAL_KUBERNETES_VERSION,
        "vpcId": "rehearsal-vpc-id",
        "publicSubnetIds": ["rehearsal-public-1-id", "rehearsal-public-2-id"],
        "privateSubnetIds": ["rehearsal-private-1-id", "rehearsal-private-2-id"],
        "createOidcProvider": True,
        "authenticationMode": "API",
        "skipDefaultNodeGroup": True,
    }
    nodes = run.named("rehearsal-nodes")
    assert nodes.inputs["subnetIds"] == ["rehearsal-private-1-id", "rehearsal-private-2-id"]
    # Nodes boot only once their subnets route out through the NAT gateway.
    for earlier in ("rehearsal-private-1-routes", "rehearsal-private-2-routes", "rehearsal-private-routes"):
        assert run.depends_on("rehearsal-nodes", earlier), earlier


def test_an_existing_vpc_in_config_is_used_and_nothing_network_is_created(cloud):
    run = rehearsal_run({**REHEARSAL, **EXISTING_VPC})
    assert [r.name for r in run.registrations if r.type in NETWORK_TYPES] == []
    assert cloud.zone_lookups == []
    subnets = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    assert run.named("rehearsal-eks").inputs == {
        "name": "gp3-rehearsal",
        "version": versions.REHEARSAL_KUBERNETES_VERSION,
        "vpcId": "vpc-0123456789abcdef0",
        "subnetIds": subnets,
        "createOidcProvider": True,
        "authenticationMode": "API",
        "skipDefaultNodeGroup": True,
    }
    assert run.named("rehearsal-nodes").inputs["subnetIds"] == subnets


def test_the_cluster_gets_a_managed_node_group_of_the_configured_size():
    run = rehearsal_run()
    nodes = run.named("rehearsal-nodes")
    assert nodes.type == "aws:eks/nodeGroup:NodeGroup"
    assert nodes.inputs == {
        "clusterName": "gp3-rehearsal",
        "nodeRoleArn": "arn:aws:iam::123456789012:role/rehearsal-node-role",
        "subnetIds": ["rehearsal-private-1-id", "rehearsal-private-2-id"],
        "amiType": "AL2023_x86_64_STANDARD",
        "instanceTypes": ["t3.medium"],
        "scalingConfig": {"desiredSize": 2.0, "minSize": 2.0, "maxSize": 2.0},
    }
    for earlier in (
        "rehearsal-eks",
        *(f"rehearsal-node-{p}" for p in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy")),
    ):
        assert run.depends_on("rehearsal-nodes", earlier), earlier
    policies = sorted(r.inputs["policyArn"] for r in run.registrations if r.name.startswith("rehearsal-node-Amazon"))
    assert policies == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]
    assert run.of_type("eks:index:ManagedNodeGroup") == []


def test_the_default_version_is_in_standard_support():
    assert versions.REHEARSAL_KUBERNETES_VERSION in versions.EKS_STANDARD_SUPPORT_UNTIL
    assert REHEARSAL[f"{KEY}:rehearsalKubernetesVersion"] == versions.REHEARSAL_KUBERNETES_VERSION
    without = {k: v for k, v in REHEARSAL.items() if k != f"{KEY}:rehearsalKubernetesVersion"}
    assert rehearsal_run(without).named("rehearsal-eks").inputs["version"] == versions.REHEARSAL_KUBERNETES_VERSION


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            "1.33",
            "rehearsalKubernetesVersion: '1.33' is in EKS extended support (as of 2026-11-23), which bills the "
            "control plane $0.60/h instead of $0.10/h: use one in standard support (1.34, 1.35, 1.36)",
        ),
        (
            "1.31",
            "rehearsalKubernetesVersion: '1.31' is in EKS extended support (as of 2026-11-23), which bills the "
            "control plane $0.60/h instead of $0.10/h: use one in standard support (1.34, 1.35, 1.36)",
        ),
        (
            "1.29",
            "rehearsalKubernetesVersion: '1.29' is past the end of EKS support (as of 2026-11-23); EKS creates no "
            "cluster on it: use one of 1.34, 1.35, 1.36",
        ),
        (
            "1.37",
            "rehearsalKubernetesVersion: '1.37' is not a version EKS offers as of 2026-11-23 (standard support: "
            "1.34, 1.35, 1.36); if it is now, add it to EKS_STANDARD_SUPPORT_UNTIL in gp3migrate/versions.py",
        ),
        ("1.3", "rehearsalKubernetesVersion: '1.3' is not a Kubernetes minor version such as 1.35"),
    ],
)
def test_a_version_outside_standard_support_is_refused_before_anything_is_registered(version, message, cloud):
    run = run_program({**REHEARSAL, f"{KEY}:rehearsalKubernetesVersion": version}, stack="rehearsal")
    assert run.error is not None
    assert message in str(run.error).splitlines()[1], run.error
    assert run.registrations == [] and run.reads == [] and cloud.zone_lookups == []


def test_platform_and_demo_use_the_rehearsal_clusters_kubeconfig(monkeypatch):
    # The SDK issues invokes from several threads, so their order varies run to run: the lookup's
    # wiring is checked where it is made (its depends_on), the invokes as a multiset.
    lookups = []
    real_get_cluster = aws.eks.get_cluster_output

    def recording_get_cluster(*args, **kwargs):
        lookups.append(kwargs)
        return real_get_cluster(*args, **kwargs)

    monkeypatch.setattr(aws.eks, "get_cluster_output", recording_get_cluster)
    run = rehearsal_run()
    k8s = run.named("cluster-k8s").inputs
    # Secret (issue 23 item 5): the SDK's wire form, {<signature key>: <secret signature>, "value": ...}.
    assert "1b47061264138c4ac30d75fd1eb44270" in k8s["kubeconfig"].values()
    kubeconfig = k8s["kubeconfig"]["value"]
    assert json.loads(kubeconfig)["clusters"][0]["name"] == "gp3-rehearsal"
    assert "exec" not in kubeconfig  # not the lookup-built one
    assert k8s["clusterIdentifier"] == "arn:aws:eks:eu-west-1:123456789012:cluster/gp3-rehearsal"
    for name in ("platform-driver-release", "platform-classes-gp3", "demo-claim", "demo-writer"):
        assert "cluster-k8s" in run.named(name).provider, name
    # The lookup of the created cluster's ARN and issuer waits for pulumi-eks to create it.
    assert [(kw["name"], [(type(d), d._name) for d in kw["opts"].depends_on]) for kw in lookups] == [
        ("gp3-rehearsal", [(eks.Cluster, "rehearsal-eks")])
    ]
    assert Counter(i.token for i in run.invocations) == Counter(
        {
            "aws:index/getAvailabilityZones:getAvailabilityZones": 1,
            "aws:eks/getCluster:getCluster": 1,
            "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider": 1,
        }
    )


def test_demo_workload_writes_timestamps_to_a_gp2_claim_after_the_driver_is_up():
    run = rehearsal_run()
    claim = run.named("demo-claim")
    assert claim.inputs["spec"]["storageClassName"] == "gp2"
    assert claim.inputs["metadata"] == {"name": "ebs-gp2-claim", "namespace": "default"}
    assert claim.retain_on_delete
    writer = run.named("demo-writer")
    container = writer.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c", WRITER_COMMAND]
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert writer.inputs["spec"]["strategy"] == {"type": "Recreate"}
    assert writer.ignore_changes == ["spec.replicas"]
    assert run.depends_on("demo-claim", "platform-driver-release")
    assert run.depends_on("demo-writer", "demo-claim")


def test_dev_and_prod_create_no_cluster(cloud):
    dev = run_program(stack_config("dev"))
    prod = run_program(stack_config("prod"), stack="prod", other_stacks={stack_name("dev"): dev.outputs})
    for run in (dev, prod):
        assert run.error is None, run.error
        assert run.of_type("eks:index:Cluster") == [] and not run.has("demo-writer")
        assert [r.name for r in run.registrations if r.type in (*NETWORK_TYPES, "aws:eks/nodeGroup:NodeGroup")] == []
        assert not run.has("rehearsal-aws")
    assert cloud.zone_lookups == []


def test_rehearsal_migrates_the_demo_volume_with_the_same_components():
    entry = {
        "namespace": "default",
        "claim": "ebs-gp2-claim",
        "pv": "pvc-0b1c2d3e",
        "volumeId": "vol-0123456789abcdef0",
        "zone": "eu-west-1a",
        "sizeGiB": 1,
        "workload": {"kind": "Deployment", "name": "app-gp2-in-tree", "replicas": 1},
    }
    run = run_program({**REHEARSAL, f"{KEY}:migrations": [entry]}, stack="rehearsal")
    assert run.error is None, run.error
    assert run.named("migrate-default-ebs-gp2-claim").type == "eks-gp3-migration:index:VolumeMigration"
    assert "cluster-k8s" in run.named("migrate-default-ebs-gp2-claim-retain").provider
    assert "cluster-aws" in run.named("migrate-default-ebs-gp2-claim-safety-snapshot").provider


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({f"{KEY}:rehearsalNodeCount": "9"}, "rehearsalNodeCount: 9 is out of range (allowed: 1 to 5)"),
        ({f"{KEY}:rehearsalNodeType": "big"}, "rehearsalNodeType: 'big' is not an EC2 instance type"),
        ({f"{KEY}:createOidcProvider": True}, "createOidcProvider: must be false with rehearsal: true"),
        ({f"{KEY}:rehearsal": False}, "rehearsalNodeType: is only used with rehearsal: true"),
        ({f"{KEY}:rehearsal": False, **EXISTING_VPC}, "rehearsalVpcId: is only used with rehearsal: true"),
        (
            {f"{KEY}:rehearsalVpcId": "vpc-0123456789abcdef0"},
            "rehearsalSubnetIds: is required with rehearsalVpcId (subnets of that VPC in two or more zones)",
        ),
        (
            {f"{KEY}:rehearsalSubnetIds": EXISTING_VPC[f"{KEY}:rehearsalSubnetIds"]},
            "rehearsalVpcId: is required with rehearsalSubnetIds (the VPC those subnets are in)",
        ),
        (
            {**EXISTING_VPC, f"{KEY}:rehearsalVpcId": "vpc-12"},
            "rehearsalVpcId: 'vpc-12' is not a VPC id (vpc- and 8 or 17 hex digits)",
        ),
        (
            {**EXISTING_VPC, f"{KEY}:rehearsalSubnetIds": ["subnet-0123456789abcdef0"]},
            'rehearsalSubnetIds: ["subnet-0123456789abcdef0"] lists fewer than 2 subnets; EKS needs two or more zones',
        ),
        (
            {**EXISTING_VPC, f"{KEY}:rehearsalSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef0"]},
            "rehearsalSubnetIds[1]: 'subnet-0123456789abcdef0' is listed twice",
        ),
        (
            {**EXISTING_VPC, f"{KEY}:rehearsalSubnetIds": ["subnet-0123456789abcdef0", "sn-1"]},
            "rehearsalSubnetIds[1]: 'sn-1' is not a subnet id (subnet- and 8 or 17 hex digits)",
        ),
        (
            {**EXISTING_VPC, f"{KEY}:rehearsalSubnetIds": "subnet-0123456789abcdef0"},
            "rehearsalSubnetIds: 'subnet-0123456789abcdef0' is not a list of subnet ids",
        ),
    ],
)
def test_rehearsal_config_errors(changes, fragment, cloud):
    run = run_program({**REHEARSAL, **changes}, stack="rehearsal")
    assert run.error is not None and fragment in str(run.error), (changes, run.error)
    assert run.registrations == [] and cloud.zone_lookups == []
