"""The scoped runner policy still allows every call the program makes, on the resources it makes
them on, with the tags and conditions they carry; and refuses the same calls on what is not the
program's (issue 23 items 1 and 2).

test_runner_policy.py checks that each action is granted; here each call becomes an IAM request
(tests/iam_model.py evaluate): what the program registers under mocks (the provider's calls for
each resource, with the ARN and tags the registration gives), and the program's own boto3 calls,
run for real against moto and caught as botocore sends them.

Modelled, not proven live: the request context AWS builds (which ARN an action is authorized on,
the keys it sets: Service Authorization Reference), which `iam:PassedToService` EKS sends, and the
in-tree volume's tags (kubernetes pkg/volume/util CloudVolumeCreatedForClaim*Tag, as
tests/kube_fixtures.py writes them). Pulumi names an unnamed resource `<name>-<7 hex>` (Pulumi
docs, "Resource names"); the mocks leave it unnamed, so the requests name it that way.
"""

from typing import Any

import boto3
import pytest
from moto import mock_aws

from gp3migrate.checks import driver_readiness, preconditions
from gp3migrate.iam import runner_policy
from gp3migrate.planning import restore
from gp3migrate.planning.plan import plan_all
from gp3migrate.versions import DRIVER_MANAGED_TAG
from tests import kube_fixtures, rehearsal_mocks
from tests.iam_model import Request, evaluate
from tests.mock_cloud import ACCOUNT, Registration, Run, run_program, stack_name
from tests.test_runner_policy import (
    DEV,
    KEY,
    LIFECYCLES,
    PROD,
    PROD_ENTRY,
    REHEARSAL,
    REHEARSAL_ENTRY,
    settings_of,
    walk,
)

AUTONAME = "0a1b2c3"
KMS = "arn:aws:kms:eu-central-1:123456789012:key/4f2c9a7e-1b3d-4c5e-8f90-a1b2c3d4e5f6"
ADDON = {"driverInstall": "addon", "driverAddonVersion": "v1.53.0-eksbuild.1"}
HELM = {"driverInstall": "helm", "driverChartVersion": "2.64.0"}
# Every stack shape the issue names: dev, prod, rehearsal, and a Helm + Pod Identity + KMS stack,
# with the add-on branches besides.
SHAPES: dict[str, dict[str, Any]] = {
    "helm-pod-identity-kms": {**HELM, "driverIdentity": "pod-identity", "kmsKeyArns": [KMS], "gp3KmsKeyId": KMS},
    "addon-irsa-v2-oidc": {
        **ADDON,
        "createOidcProvider": True,
        "managedPolicy": "v2",
        "snapshotSupport": "addon",
        "snapshotControllerAddonVersion": "v8.3.0-eksbuild.1",
    },
    "addon-pod-identity-kms": {**ADDON, "driverIdentity": "pod-identity", "kmsKeyArns": [KMS]},
}


def in_tree_tags(claim: str, namespace: str, pv: str) -> dict[str, str]:
    """What the in-tree provisioner tags a volume with."""
    return kube_fixtures.in_tree_tags(pv, namespace, claim)


def tag_context(prefix: str, tags: dict[str, str]) -> dict[str, Any]:
    return {f"{prefix}/{k}": v for k, v in tags.items()}


def request_tags(tags: dict[str, str]) -> dict[str, Any]:
    return {**tag_context("aws:RequestTag", tags), "aws:TagKeys": sorted(tags)}


class World:
    """The ARNs one run's registrations stand for."""

    def __init__(self, run: Run, region: str):
        self.run, self.region = run, region

    def arn(self, service: str, resource: str, region: str | None = None, account: str = ACCOUNT) -> str:
        return f"arn:aws:{service}:{self.region if region is None else region}:{account}:{resource}"

    def role_name(self, role: Registration) -> str:
        return str(role.inputs.get("name") or f"{role.name}-{AUTONAME}")

    def role_of(self, registration: Registration, key: str) -> str:
        """The role a registration names in `key`: by name, or by the role it depends on there."""
        # An unnamed role's name is unknown under mocks: the input is left out, its dependency kept.
        for urn in registration.property_dependencies.get(key, []):
            role = self.run.by_urn(urn)
            if role.type == "aws:iam/role:Role":
                return self.role_name(role)
        if key not in registration.inputs:  # nor even the dependency: the one unnamed role beside it
            (role,) = [
                r
                for r in self.run.of_type("aws:iam/role:Role")
                if r.parent == registration.parent and "name" not in r.inputs
            ]
            return self.role_name(role)
        value = str(registration.inputs[key])
        return value.rsplit("/", 1)[-1]

    def role_arn(self, name: str) -> str:
        return self.arn("iam", f"role/{name}", region="")


def eks_cluster_children(reg: Registration, world: World) -> list[Request]:
    """What pulumi-eks's Cluster creates with this program's options (nodejs/eks/cluster/cluster.ts
    createCore; servicerole.ts): its service role with AmazonEKSClusterPolicy, passed to EKS, the
    control plane, its security groups, the OIDC provider and the default add-ons."""
    cluster = str(reg.inputs["name"])
    role = world.role_arn(f"{reg.name}-eksRole-role-{AUTONAME}")
    grant = runner_policy.grant_for
    requests = [Request(a, role) for a in grant("aws:iam/role:Role").actions]
    policy_arn = {"iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"}
    requests += [Request(a, role, policy_arn) for a in ("iam:AttachRolePolicy", "iam:DetachRolePolicy")]
    requests += [Request("iam:ListAttachedRolePolicies", role)]
    requests += [Request("iam:PassRole", role, {"iam:PassedToService": "eks.amazonaws.com"})]
    cluster_arn = world.arn("eks", f"cluster/{cluster}")
    requests += [Request(a, cluster_arn) for a in grant("aws:eks/cluster:Cluster").actions if a.startswith("eks:")]
    requests += service_linked_role("eks.amazonaws.com", "AWSServiceRoleForAmazonEKS", world)
    for addon in ("vpc-cni", "kube-proxy", "coredns"):
        addon_arn = world.arn("eks", f"addon/{cluster}/{addon}/0000")
        requests += [Request(a, addon_arn) for a in grant("aws:eks/addon:Addon").actions if a.startswith("eks:")]
    oidc = world.arn("iam", f"oidc-provider/oidc.eks.{world.region}.amazonaws.com/id/EXAMPLE", region="")
    requests += [Request(a, oidc) for a in grant("aws:iam/openIdConnectProvider:OpenIdConnectProvider").actions]
    for sg in ("eksClusterSecurityGroup", "nodeSecurityGroup"):
        requests += network_resource("aws:ec2/securityGroup:SecurityGroup", f"security-group/sg-{sg}", world)
    requests += [Request(a, "*") for a in grant("aws:ec2/securityGroupRule:SecurityGroupRule").actions]
    return requests


def service_linked_role(service: str, name: str, world: World) -> list[Request]:
    arn = world.role_arn(f"aws-service-role/{service}/{name}")
    return [Request("iam:CreateServiceLinkedRole", arn, {"iam:AWSServiceName": service})]


def network_resource(token: str, resource: str, world: World, tags: dict[str, str] | None = None) -> list[Request]:
    """A rehearsal network resource: its own actions on `*` (created without an ARN), its tags at
    creation and on later edits on its own ARN."""
    tags = tags or {"Name": "gp3-rehearsal-x"}
    arn = world.arn("ec2", resource)
    grant = runner_policy.grant_for(token)
    requests = [Request(a, "*") for a in grant.unscoped]
    requests += [Request("ec2:CreateTags", arn, {**request_tags(tags), "ec2:CreateAction": "CreateVpc"})]
    requests += [Request(a, arn, tag_context("ec2:ResourceTag", tags)) for a in ("ec2:CreateTags", "ec2:DeleteTags")]
    return requests


NETWORK_TYPES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "internet-gateway",
    "aws:ec2/routeTable:RouteTable": "route-table",
    "aws:ec2/eip:Eip": "elastic-ip",
    "aws:ec2/natGateway:NatGateway": "natgateway",
}


def requests_of(reg: Registration, world: World, settings: Any) -> list[Request]:
    """The provider's calls for one registration, as requests (RESOURCES lists the actions)."""
    grant = runner_policy.grant_for(reg.type)
    cluster = settings.cluster.name
    if reg.type == "aws:iam/role:Role":
        return [Request(a, world.role_arn(world.role_name(reg))) for a in grant.actions]
    if reg.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        role = world.role_arn(world.role_of(reg, "role"))
        policy_arn = {"iam:PolicyARN": str(reg.inputs["policyArn"])}
        return [Request(a, role, policy_arn if a != "iam:ListAttachedRolePolicies" else {}) for a in grant.actions]
    if reg.type == "aws:iam/rolePolicy:RolePolicy":
        return [Request(a, world.role_arn(world.role_of(reg, "role"))) for a in grant.actions]
    if reg.type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        host = str(reg.inputs["url"]).removeprefix("https://")
        return [Request(a, world.arn("iam", f"oidc-provider/{host}", region="")) for a in grant.actions]
    if reg.type == "aws:eks/addon:Addon":
        arn = world.arn("eks", f"addon/{cluster}/{reg.inputs['addonName']}/0000")
        requests = [Request(a, arn) for a in grant.actions if a.startswith("eks:")]
        roles = [world.role_of(reg, "serviceAccountRoleArn")] if reg.inputs.get("serviceAccountRoleArn") else []
        roles += [str(p["roleArn"]).rsplit("/", 1)[-1] for p in reg.inputs.get("podIdentityAssociations") or []]
        passed = {"iam:PassedToService": "eks.amazonaws.com"}
        return requests + [Request("iam:PassRole", world.role_arn(r), passed) for r in roles]
    if reg.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
        arn = world.arn("eks", f"podidentityassociation/{cluster}/a-0000")
        requests = [Request(a, arn) for a in grant.actions if a.startswith("eks:")]
        passed = {"iam:PassedToService": "pods.eks.amazonaws.com"}
        return [*requests, Request("iam:PassRole", world.role_arn(world.role_of(reg, "roleArn")), passed)]
    if reg.type == "aws:ebs/snapshot:Snapshot":
        return snapshot_requests(reg, world, settings)
    if reg.type == "aws:eks/nodeGroup:NodeGroup":
        arn = world.arn("eks", f"nodegroup/{cluster}/{reg.name}-{AUTONAME}/0000")
        requests = [Request(a, arn) for a in grant.actions if a.startswith("eks:")]
        passed = {"iam:PassedToService": "eks.amazonaws.com"}
        requests += [Request("iam:PassRole", world.role_arn(world.role_of(reg, "nodeRoleArn")), passed)]
        return requests + service_linked_role(
            "eks-nodegroup.amazonaws.com", "AWSServiceRoleForAmazonEKSNodegroup", world
        )
    if reg.type == "eks:index:Cluster":
        return eks_cluster_children(reg, world)
    if reg.type in NETWORK_TYPES:
        return network_resource(reg.type, f"{NETWORK_TYPES[reg.type]}/{reg.name}", world, reg.inputs.get("tags"))
    # Nothing of it scoped (route table associations, providers, dynamic resources).
    assert not grant.scoped, f"{reg.type}: scoped actions without a request model here"
    return [Request(a, "*") for a in grant.actions]


def snapshot_requests(reg: Registration, world: World, settings: Any) -> list[Request]:
    """CreateSnapshot of the in-tree source with its tags (TagSpecifications: CreateTags on the new
    snapshot, ec2:CreateAction), reads, a tag edit in place, and the delete in finalize."""
    tags = dict(reg.inputs["tags"])
    entry = next(m for m in settings.migrations if m.volume_id == reg.inputs["volumeId"])
    volume = world.arn("ec2", f"volume/{entry.volume_id}")
    snapshot = world.arn("ec2", "snapshot/snap-0123456789abcdef0", account="")
    source = tag_context("ec2:ResourceTag", in_tree_tags(entry.claim, entry.namespace, entry.pv))
    owned = tag_context("ec2:ResourceTag", tags)
    edit = request_tags({"team": "storage"})
    return [
        Request("ec2:CreateSnapshot", volume, {**source, **request_tags(tags)}),
        Request("ec2:CreateSnapshot", snapshot, request_tags(tags)),
        Request("ec2:CreateTags", snapshot, {**request_tags(tags), "ec2:CreateAction": "CreateSnapshot"}),
        Request("ec2:DescribeSnapshots", "*"),
        Request("ec2:CreateTags", snapshot, {**owned, **edit}),
        Request("ec2:DeleteTags", snapshot, {**owned, **edit}),
        Request("ec2:DeleteSnapshot", snapshot, owned),
    ]


def invocation_requests(run: Run, world: World, settings: Any) -> list[Request]:
    requests = []
    for invocation in run.invocations:
        if invocation.token.startswith(runner_policy.NOT_AWS_PREFIXES):
            continue
        grant = runner_policy.grant_for(invocation.token)
        if invocation.token == "aws:eks/getCluster:getCluster":
            requests.append(Request("eks:DescribeCluster", world.arn("eks", f"cluster/{invocation.args['name']}")))
        elif invocation.token == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            host = str(invocation.args["url"]).removeprefix("https://")
            requests.append(Request("iam:GetOpenIDConnectProvider", world.arn("iam", f"oidc-provider/{host}", "")))
            requests.append(Request("iam:ListOpenIDConnectProviders", "*"))
        else:
            assert not grant.scoped, f"{invocation.token}: scoped actions without a request model here"
            requests += [Request(a, "*") for a in grant.actions]
    return requests


def refused(document: dict[str, Any], requests: list[Request]) -> list[Request]:
    return [r for r in requests if not evaluate(document, r)]


def assert_allows_every_request(config: dict[str, Any], runs: list[Run], stack: str) -> None:
    settings = settings_of(config)
    document = runner_policy.policy(settings, stack)
    requests: list[Request] = []
    for run in runs:
        world = World(run, settings.cluster.region)
        for reg in run.registrations:
            if not reg.type.startswith(runner_policy.NOT_AWS_PREFIXES):
                requests += requests_of(reg, world, settings)
        requests += invocation_requests(run, world, settings)
    assert requests
    assert refused(document, requests) == []


@pytest.fixture(autouse=True)
def rehearsal_cloud(monkeypatch):
    return rehearsal_mocks.install(monkeypatch)


def with_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {**DEV, **{f"{KEY}:{k}": v for k, v in changes.items()}}


@pytest.mark.parametrize("shape", ["dev", *SHAPES])
def test_every_registered_resource_is_allowed_on_what_it_is(shape):
    config = DEV if shape == "dev" else with_changes(SHAPES[shape])
    assert_allows_every_request(config, walk(config, LIFECYCLES["rename, source deleted"]), "dev")


def test_prod_and_rehearsal_are_allowed_on_what_they_are():
    dev = walk(DEV, LIFECYCLES["rename"])[-1]
    prod = {**PROD, f"{KEY}:migrations": [PROD_ENTRY]}
    runs = walk(prod, LIFECYCLES["rename"], stack="prod", other_stacks={stack_name("dev"): dev.outputs})
    assert_allows_every_request(prod, runs, "prod")
    rehearsal = {**REHEARSAL, f"{KEY}:migrations": [REHEARSAL_ENTRY]}
    runs = [run_program(REHEARSAL, stack="rehearsal")]
    runs += walk(rehearsal, LIFECYCLES["rename, source deleted"], stack="rehearsal")
    assert_allows_every_request(rehearsal, runs, "rehearsal")


def test_the_scoped_tag_keys_are_the_ones_the_program_writes():
    """The policy's tag conditions name the keys the code writes: the snapshot's migration tag and
    the driver's tag on a rehomed or modified volume."""
    settings = settings_of(DEV)
    plan = plan_all(settings)[0]
    tags = restore.snapshot_tags(plan, settings, "dev", purpose="final")
    assert tags[runner_policy.MIGRATION_TAG].startswith("dev/")
    assert preconditions.DRIVER_VOLUME_TAGS == {DRIVER_MANAGED_TAG: "true"}


# --- The scoping bites: the same calls on what is not the program's -------------------------------


def dev_policy(stack="dev"):
    return runner_policy.policy(settings_of(with_changes(SHAPES["helm-pod-identity-kms"])), stack)


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (
            Request("iam:PutRolePolicy", "arn:aws:iam::123456789012:role/Admin"),
            "an inline policy on a role it did not create",
        ),
        (
            Request(
                "iam:AttachRolePolicy",
                "arn:aws:iam::123456789012:role/dev-eks-ebs-csi-driver",
                {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"},
            ),
            "AdministratorAccess on its own role",
        ),
        (
            Request("iam:UpdateAssumeRolePolicy", "arn:aws:iam::123456789012:role/Admin"),
            "another role's trust",
        ),
        (
            Request("sts:AssumeRole", "arn:aws:iam::123456789012:role/dev-eks-ebs-csi-driver"),
            "assuming the role it writes",
        ),
        (
            Request(
                "iam:PassRole",
                "arn:aws:iam::123456789012:role/dev-eks-ebs-csi-driver",
                {"iam:PassedToService": "ec2.amazonaws.com"},
            ),
            "passing its role to EC2",
        ),
        (
            Request(
                "ec2:CreateTags",
                "arn:aws:ec2:eu-central-1:123456789012:volume/vol-0ther",
                request_tags({DRIVER_MANAGED_TAG: "true"}),
            ),
            "the driver's tag on a volume the in-tree provisioner did not create",
        ),
        (
            Request(
                "ec2:CreateTags",
                "arn:aws:ec2:eu-central-1:123456789012:volume/vol-1ntree",
                {**tag_context("ec2:ResourceTag", in_tree_tags("c", "n", "p")), **request_tags({"owner": "x"})},
            ),
            "another tag than the driver's on an in-tree volume",
        ),
        (
            Request(
                "ec2:CreateTags",
                "arn:aws:ec2:eu-central-1::snapshot/snap-0ther",
                request_tags({DRIVER_MANAGED_TAG: "true"}),
            ),
            "the driver's tag on a snapshot that is not this stack's",
        ),
        (
            Request(
                "ec2:DeleteSnapshot",
                "arn:aws:ec2:eu-central-1::snapshot/snap-0ther",
                tag_context("ec2:ResourceTag", {runner_policy.MIGRATION_TAG: "prod/default/data"}),
            ),
            "another stack's snapshot",
        ),
        (
            Request("ec2:ModifyVolume", "arn:aws:ec2:eu-central-1:123456789012:volume/vol-0ther"),
            "a volume the in-tree provisioner did not create",
        ),
        (
            Request("eks:DeleteCluster", "arn:aws:eks:eu-central-1:123456789012:cluster/other"),
            "another cluster",
        ),
        (
            Request("kms:DescribeKey", "arn:aws:kms:eu-central-1:123456789012:key/other"),
            "a key not in use",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_same_calls_on_what_is_not_the_programs_are_refused(request_, why):
    assert not evaluate(dev_policy(), request_), why


# --- The program's own boto3 calls, run against moto ------------------------------------------------

REGION = "eu-central-1"


def captured_requests(client: Any, calls: list[Request]) -> None:
    """Turn each EC2 call the client sends into the request IAM would authorize."""
    reader = boto3.client("ec2", region_name=REGION)

    def tags_of(resource_id: str) -> dict[str, str]:
        found = reader.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    def on_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        action = f"ec2:{model.name}"
        body = params["body"]
        if model.name == "CreateTags":
            volume_id = body["ResourceId.1"]
            new = {body[f"Tag.{i}.Key"]: body[f"Tag.{i}.Value"] for i in range(1, 51) if f"Tag.{i}.Key" in body}
            context = {**tag_context("ec2:ResourceTag", tags_of(volume_id)), **request_tags(new)}
            calls.append(Request(action, f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/{volume_id}", context))
        elif model.name == "ModifyVolume":
            volume_id = body["VolumeId"]
            context = tag_context("ec2:ResourceTag", tags_of(volume_id))
            calls.append(Request(action, f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/{volume_id}", context))
        else:
            calls.append(Request(action, "*"))

    client.meta.events.register("before-call.ec2", on_call)


@pytest.mark.parametrize("in_tree", [True, False], ids=["in-tree volume", "volume without the in-tree tags"])
def test_the_rehome_and_modify_calls_are_allowed_on_in_tree_volumes_only(in_tree):
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        tags = in_tree_tags("data", "default", "pvc-1") if in_tree else {"Name": "hand-made"}
        volume = ec2.create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=10,
            VolumeType="gp2",
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["VolumeId"]
        calls: list[Request] = []
        captured_requests(ec2, calls)
        preconditions.tag_volume(ec2, volume, preconditions.DRIVER_VOLUME_TAGS)
        preconditions.modify_to_gp3(
            ec2, volume, iops=3000, throughput=125, expected_zone=f"{REGION}a", timeout_seconds=60, sleep=lambda _: None
        )
    made = {c.action for c in calls}
    # Every boto3 call of the proof steps in BOTO3_CALLS ran here.
    assert {f"ec2:{''.join(w.title() for w in c.split('.')[1].split('_'))}" for c in runner_policy.BOTO3_CALLS} <= made
    for stack, config in (("dev", DEV), ("prod", PROD), ("rehearsal", REHEARSAL)):
        settings = settings_of(config)
        document = runner_policy.policy(settings, stack)
        # The same calls in the stack's own region.
        moved = [
            Request(c.action, c.resource.replace(f":{REGION}:", f":{settings.cluster.region}:"), c.context)
            for c in calls
        ]
        refusals = {r.action for r in refused(document, moved)}
        assert refusals == (set() if in_tree else {"ec2:CreateTags", "ec2:ModifyVolume"}), stack


def test_the_present_drivers_check_reads_only_this_clusters_associations_and_the_keys_in_use():
    settings = settings_of(PROD)
    document = runner_policy.policy(settings, "prod")
    cluster = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/prod-eks"
    requests = [
        Request("eks:ListPodIdentityAssociations", cluster),
        Request(
            "eks:DescribePodIdentityAssociation", f"arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/prod-eks/a-1"
        ),
        Request("iam:SimulatePrincipalPolicy", f"arn:aws:iam::{ACCOUNT}:role/whatever-the-driver-runs-as"),
        *(Request("kms:DescribeKey", key) for key in driver_readiness.keys_in_use(settings)),
    ]
    assert refused(document, requests) == []
