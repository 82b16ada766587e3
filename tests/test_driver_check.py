"""gp3migrate/checks/driver_readiness.py: what a `present` driver must have, on fake Deployments, moto (KMS)
and botocore's Stubber (IAM SimulatePrincipalPolicy and EKS Pod Identity, which moto does not
implement).

Not proven here: what the real policy simulator answers for a given role (the stubbed answers
have its documented shape, IAM API reference EvaluationResult / ResourceSpecificResult; only a
live run shows the verdict on a real role), and whether a key policy that names the role directly
is enough on its own (the simulator does not read key policies: the check asks for the IAM
statement regardless).
"""

import json
import os

import boto3
import pytest
from botocore.stub import Stubber
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from moto import mock_aws

from gp3migrate.checks import driver_readiness
from gp3migrate.config.settings import load_settings

ROLE = "arn:aws:iam::123456789012:role/ebs-csi-driver"
KEY_A = "arn:aws:kms:eu-central-1:123456789012:key/aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
KEY_B = "arn:aws:kms:eu-central-1:123456789012:key/bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
VOLUME = {
    "namespace": "apps",
    "pv": "pvc-1",
    "volumeId": "vol-0000000000000000a",
    "zone": "eu-central-1a",
    "sizeGiB": 10,
}
CHART_CONTAINERS = ["ebs-plugin", "csi-provisioner", "csi-attacher", "csi-snapshotter", "csi-resizer", "liveness-probe"]


def controller(containers=CHART_CONTAINERS, service_account="ebs-csi-controller-sa") -> dict:
    """The chart's controller Deployment as `kubectl get -o json` exports it (the fields read)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ebs-csi-controller", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "ebs-csi-controller"}},
            "template": {
                "metadata": {"labels": {"app": "ebs-csi-controller"}},
                "spec": {
                    "serviceAccountName": service_account,
                    "containers": [{"name": n, "image": f"example/{n}:v1"} for n in containers],
                },
            },
        },
    }


class FakeApps:
    """AppsV1Api.read_namespaced_deployment over stored dicts, returning the client's models."""

    def __init__(self, *deployments: dict):
        self.client = ApiClient()
        self.objects = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in deployments}

    def read_namespaced_deployment(self, name, namespace):
        if (namespace, name) not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        return self.client.deserialize(json.dumps(self.objects[(namespace, name)]), "V1Deployment", "application/json")


class FakeCore:
    def __init__(self, annotations=None, exists=True):
        self.annotations, self.exists, self.reads = annotations, exists, []

    def read_namespaced_service_account(self, name, namespace):
        self.reads.append((namespace, name))
        if not self.exists:
            raise ApiException(status=404, reason="Not Found")
        from kubernetes.client import V1ObjectMeta, V1ServiceAccount

        return V1ServiceAccount(metadata=V1ObjectMeta(name=name, namespace=namespace, annotations=self.annotations))


def iam_client():
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def evaluation(action, decisions: dict[str, str]) -> dict:
    """The current response shape: one result per action, a decision per resource."""
    worst = "allowed" if set(decisions.values()) == {"allowed"} else sorted(set(decisions.values()) - {"allowed"})[0]
    return {
        "EvalActionName": action,
        "EvalDecision": worst,
        "ResourceSpecificResults": [
            {"EvalResourceName": key, "EvalResourceDecision": d} for key, d in sorted(decisions.items())
        ],
    }


def simulate(stubber, results, keys):
    stubber.add_response(
        "simulate_principal_policy",
        {"EvaluationResults": results, "IsTruncated": False},
        {
            "PolicySourceArn": ROLE,
            "ActionNames": list(driver_readiness.KMS_ACTIONS),
            "ResourceArns": sorted(keys),
            "ContextEntries": [
                {
                    "ContextKeyName": "kms:GrantIsForAWSResource",
                    "ContextKeyValues": ["true"],
                    "ContextKeyType": "boolean",
                }
            ],
        },
    )


# --- the snapshotter sidecar ------------------------------------------------------------------


def test_the_charts_controller_passes_and_one_without_the_sidecar_is_named_with_the_fix():
    assert driver_readiness.snapshotter_problems(controller()) == []
    without = [c for c in CHART_CONTAINERS if c != "csi-snapshotter"]
    (problem,) = driver_readiness.snapshotter_problems(controller(without))
    assert problem.startswith(
        "Deployment kube-system/ebs-csi-controller runs no csi-snapshotter container (ebs-plugin,"
    )
    assert "sidecars.snapshotter.forceEnable=true" in problem and "EKS add-on" in problem


def test_a_missing_controller_is_a_problem_not_a_pass():
    (problem,) = driver_readiness.snapshotter_problems(None)
    assert problem.startswith("no Deployment kube-system/ebs-csi-controller")


def test_the_live_reader_reads_client_models_and_treats_404_as_missing():
    apps = FakeApps(controller(["ebs-plugin", "csi-provisioner"]))
    model = driver_readiness.read_controller(apps)
    assert driver_readiness.container_names(model) == ["ebs-plugin", "csi-provisioner"]
    assert driver_readiness.service_account(model) == "ebs-csi-controller-sa"
    assert driver_readiness.read_controller(FakeApps()) is None

    class Forbidden:
        def read_namespaced_deployment(self, name, namespace):
            raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiException):
        driver_readiness.read_controller(Forbidden())


# --- KMS rights -------------------------------------------------------------------------------


def test_a_role_allowed_everything_has_no_problem_and_the_request_carries_the_grant_context():
    iam = iam_client()
    with Stubber(iam) as stubber:
        simulate(
            stubber,
            [evaluation(a, {KEY_A: "allowed", KEY_B: "allowed"}) for a in driver_readiness.KMS_ACTIONS],
            [KEY_B, KEY_A],
        )
        assert driver_readiness.kms_problems(iam, ROLE, [KEY_B, KEY_A]) == []
        stubber.assert_no_pending_responses()


def test_the_drivers_documented_three_action_statement_is_not_enough_and_each_key_is_named():
    """aws-ebs-csi-driver docs/install.md allows Decrypt, GenerateDataKeyWithoutPlaintext and
    CreateGrant; EBS also needs DescribeKey and ReEncrypt* (EBS user guide)."""
    iam = iam_client()
    documented = {"kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext"}
    results = [
        evaluation(a, {KEY_A: "allowed" if a in documented else "implicitDeny", KEY_B: "allowed"})
        for a in driver_readiness.KMS_ACTIONS
    ]
    with Stubber(iam) as stubber:
        simulate(stubber, results, [KEY_A, KEY_B])
        (problem,) = driver_readiness.kms_problems(iam, ROLE, [KEY_A, KEY_B])
    assert problem.startswith(
        f"the driver's role {ROLE} may not kms:DescribeKey, kms:ReEncryptFrom, kms:ReEncryptTo on KMS key {KEY_A} "
        "(implicitDeny)"
    )
    assert "kms:GrantIsForAWSResource=true" in problem and "Deny" not in problem.split("(implicitDeny)")[1]


def test_the_older_one_result_per_resource_shape_and_an_explicit_deny():
    iam = iam_client()
    results = [
        {
            "EvalActionName": a,
            "EvalResourceName": key,
            "EvalDecision": "explicitDeny" if a == "kms:Decrypt" else "allowed",
        }
        for a in driver_readiness.KMS_ACTIONS
        for key in (KEY_A,)
    ]
    with Stubber(iam) as stubber:
        simulate(stubber, results, [KEY_A])
        (problem,) = driver_readiness.kms_problems(iam, ROLE, [KEY_A])
    assert "may not kms:Decrypt on KMS key" in problem and "remove the Deny" in problem


@pytest.mark.parametrize(
    ("role", "keys", "message"),
    [
        ("ebs-csi-driver", [KEY_A], "driver role: 'ebs-csi-driver' is not an IAM role ARN"),
        ("arn:aws:iam::123456789012:user/alice", [KEY_A], "is not an IAM role ARN"),
        (ROLE, ["alias/aws/ebs"], "KMS key 'alias/aws/ebs' is not a KMS key ARN"),
    ],
)
def test_bad_input_is_refused_with_what_was_wrong_before_any_call(role, keys, message):
    iam = iam_client()
    with Stubber(iam), pytest.raises(ValueError, match=message):  # no stubbed response: no call may be made
        driver_readiness.kms_problems(iam, role, keys)


def test_only_customer_managed_keys_are_checked():
    with mock_aws():
        os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
        kms = boto3.client("kms", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
        key = kms.create_key()["KeyMetadata"]["Arn"]
        assert driver_readiness.customer_managed(kms, [key, key]) == [key]
    # moto reports aws/ebs as customer managed: the AWS answer, stubbed.
    kms = boto3.client("kms", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(kms) as stubber:
        stubber.add_response(
            "describe_key", {"KeyMetadata": {"KeyId": "k", "Arn": KEY_B, "KeyManager": "AWS"}}, {"KeyId": KEY_B}
        )
        assert driver_readiness.customer_managed(kms, [KEY_B]) == []


# --- the whole check --------------------------------------------------------------------------


class Clients:
    def __init__(self, **clients):
        self.clients, self.asked = clients, []

    def __call__(self, service):
        self.asked.append(service)
        return self.clients[service]


def test_without_keys_only_the_sidecar_is_checked_and_no_aws_client_is_made():
    aws = Clients()
    core = FakeCore()
    problems, role = driver_readiness.check_present_driver(
        FakeApps(controller()), key_arns=(), core=lambda: core, aws=aws, cluster="dev-eks"
    )
    assert (problems, role, aws.asked, core.reads) == ([], None, [], [])


def test_with_keys_the_irsa_role_of_the_controllers_service_account_is_simulated():
    iam, kms = (
        iam_client(),
        boto3.client("kms", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"),
    )
    core = FakeCore({driver_readiness.IRSA_ANNOTATION: ROLE})
    with Stubber(iam) as iam_stub, Stubber(kms) as kms_stub:
        kms_stub.add_response(
            "describe_key", {"KeyMetadata": {"KeyId": "k", "KeyManager": "CUSTOMER"}}, {"KeyId": KEY_A}
        )
        simulate(iam_stub, [evaluation(a, {KEY_A: "implicitDeny"}) for a in driver_readiness.KMS_ACTIONS], [KEY_A])
        problems, role = driver_readiness.check_present_driver(
            FakeApps(controller(service_account="custom-sa")),
            key_arns=(KEY_A,),
            core=lambda: core,
            aws=Clients(iam=iam, kms=kms),
            cluster="dev-eks",
        )
    assert role == ROLE and core.reads == [("kube-system", "custom-sa")]
    assert len(problems) == 1 and f"may not {', '.join(driver_readiness.KMS_ACTIONS)} on KMS key {KEY_A}" in problems[0]


def test_pod_identity_is_asked_when_there_is_no_irsa_annotation_and_no_role_is_a_problem():
    eks = boto3.client("eks", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(eks) as stub:
        stub.add_response(
            "list_pod_identity_associations",
            {"associations": [{"associationId": "a-1"}]},
            {"clusterName": "dev-eks", "namespace": "kube-system", "serviceAccount": "ebs-csi-controller-sa"},
        )
        stub.add_response(
            "describe_pod_identity_association",
            {"association": {"roleArn": "not-an-arn"}},
            {"clusterName": "dev-eks", "associationId": "a-1"},
        )
        stub.add_response("list_pod_identity_associations", {"associations": []}, None)
        bad, role = driver_readiness.check_present_driver(
            FakeApps(controller()), key_arns=(KEY_A,), core=lambda: FakeCore(), aws=Clients(eks=eks), cluster="dev-eks"
        )
        none, _ = driver_readiness.check_present_driver(
            FakeApps(controller([])),
            key_arns=(KEY_A,),
            core=lambda: FakeCore(exists=False),
            aws=Clients(eks=eks),
            cluster="dev-eks",
        )
    assert role == "not-an-arn"
    assert bad == [
        "the driver's role (ServiceAccount kube-system/ebs-csi-controller-sa): 'not-an-arn' is not an IAM role ARN "
        "(arn:aws:iam::<account>:role/<name>); fix what names it"
    ]
    assert none[0].startswith("Deployment kube-system/ebs-csi-controller runs no csi-snapshotter container (none)")
    assert "has no eks.amazonaws.com/role-arn annotation and no EKS Pod Identity association" in none[1]


def test_keys_in_use_are_the_union_once_each_and_the_offline_note():
    settings = load_settings(
        {
            "clusterName": "dev-eks",
            "region": "eu-central-1",
            "kmsKeyArns": [KEY_B],
            "gp3KmsKeyId": KEY_B,
            "migrations": [
                {**VOLUME, "claim": "a", "encrypted": True, "kmsKeyId": KEY_A},
                {**VOLUME, "claim": "b", "pv": "pvc-2", "volumeId": "vol-0000000000000000b", "encrypted": False},
            ],
        }
    )
    assert driver_readiness.keys_in_use(settings) == (KEY_A, KEY_B)
    assert driver_readiness.offline_kms_note([]) is None
    assert "needs live IAM access" in (driver_readiness.offline_kms_note([KEY_A]) or "")
