"""The rehearsal stack under mocks: the pulumi-eks cluster is one opaque component here, so the
tests assert what it is given; then the demo workload, and that the platform and migrations talk
to the rehearsal cluster (its kubeconfig), not to a cluster found by name alone."""

import json
from collections import Counter

import pulumi_aws as aws
import pulumi_eks as eks

from gp3migrate.demo import WRITER_COMMAND
from tests.mock_cloud import run_program, stack_config, stack_name

REHEARSAL = stack_config("rehearsal")
# Not a call of the program: the mock monitor rebuilding a resource reference it was sent.
GET_RESOURCE = "pulumi:pulumi:getResource"


def rehearsal_run():
    run = run_program(REHEARSAL, stack="rehearsal")
    assert run.error is None, run.error
    return run


def test_the_cluster_is_created_with_pulumi_eks_and_a_managed_node_group():
    run = rehearsal_run()
    cluster = run.named("rehearsal-eks")
    assert cluster.type == "eks:index:Cluster"
    assert cluster.inputs == {
        "name": "gp3-rehearsal",
        "version": "1.31",
        "createOidcProvider": True,
        "authenticationMode": "API",
        "skipDefaultNodeGroup": True,
    }
    nodes = run.named("rehearsal-nodes")
    assert nodes.type == "eks:index:ManagedNodeGroup"
    assert nodes.inputs["instanceTypes"] == ["t3.medium"]
    assert nodes.inputs["scalingConfig"] == {"desiredSize": 2, "minSize": 2, "maxSize": 2}
    policies = sorted(r.inputs["policyArn"] for r in run.registrations if r.name.startswith("rehearsal-node-Amazon"))
    assert policies == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]


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
    assert json.loads(k8s["kubeconfig"])["clusters"][0]["name"] == "gp3-rehearsal"
    assert "exec" not in k8s["kubeconfig"]  # not the lookup-built one
    assert k8s["clusterIdentifier"] == "arn:aws:eks:eu-west-1:123456789012:cluster/gp3-rehearsal"
    for name in ("platform-driver-release", "platform-classes-gp3", "demo-claim", "demo-writer"):
        assert "cluster-k8s" in run.named(name).provider, name
    # The lookup of the created cluster's ARN and issuer waits for pulumi-eks to create it.
    assert [(kw["name"], [(type(d), d._name) for d in kw["opts"].depends_on]) for kw in lookups] == [
        ("gp3-rehearsal", [(eks.Cluster, "rehearsal-eks")])
    ]
    assert Counter(i.token for i in run.invocations if i.token != GET_RESOURCE) == Counter(
        {"aws:eks/getCluster:getCluster": 1, "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider": 1}
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


def test_dev_and_prod_create_no_cluster():
    dev = run_program(stack_config("dev"))
    prod = run_program(stack_config("prod"), stack="prod", other_stacks={stack_name("dev"): dev.outputs})
    for run in (dev, prod):
        assert run.error is None, run.error
        assert run.of_type("eks:index:Cluster") == [] and not run.has("demo-writer")
        assert run.of_type("eks:index:ManagedNodeGroup") == []


def test_rehearsal_migrates_the_demo_volume_with_the_same_components():
    entry = {
        "namespace": "default",
        "claim": "ebs-gp2-claim",
        "pv": "pvc-0b1c2d3e",
        "volumeId": "vol-0123456789abcdef0",
        "zone": "eu-west-1a",
        "sizeGiB": 1,
        "workload": {"kind": "Deployment", "name": "app-gp2-in-tree", "replicas": 1},
        "claimNaming": "same-name",
    }
    run = run_program({**REHEARSAL, "eks-gp3-migration:migrations": [entry]}, stack="rehearsal")
    assert run.error is None, run.error
    assert run.named("migrate-default-ebs-gp2-claim").type == "eks-gp3-migration:index:VolumeMigration"
    assert "cluster-k8s" in run.named("migrate-default-ebs-gp2-claim-retain").provider
    assert "cluster-aws" in run.named("migrate-default-ebs-gp2-claim-precopy-snapshot").provider


def test_rehearsal_config_errors():
    for changes, fragment in (
        ({"eks-gp3-migration:rehearsalNodeCount": "9"}, "rehearsalNodeCount: 9 is out of range (allowed: 1 to 5)"),
        ({"eks-gp3-migration:rehearsalNodeType": "big"}, "rehearsalNodeType: 'big' is not an EC2 instance type"),
        ({"eks-gp3-migration:createOidcProvider": True}, "createOidcProvider: must be false with rehearsal: true"),
        ({"eks-gp3-migration:rehearsal": False}, "rehearsalNodeType: is only used with rehearsal: true"),
    ):
        run = run_program({**REHEARSAL, **changes}, stack="rehearsal")
        assert run.error is not None and fragment in str(run.error), (changes, run.error)
        assert run.registrations == []
