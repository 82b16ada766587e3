"""The platform under mocks: for each config branch, exactly what is registered, with which inputs
and options, in which order, and what is not registered at all.

Not proven here: that the chart installs, that AWS accepts the role, that the patch applies on a
real API server. Those need the opt-in live test.
"""

import hashlib
import json
import logging

import pytest

from gp3migrate.iam import driver_policies
from tests.mock_cloud import ACCOUNT, advance, run_program, stack_config, stack_name

KMS = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ISSUER_HOST_PREFIX = "oidc.eks.eu-central-1.amazonaws.com/id/"

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}


def run(**overrides):
    result = run_program({**BASE, **overrides})
    assert result.error is None, result.error
    return result


def platform_types(result) -> list[tuple[str, str]]:
    return sorted((r.type, r.name) for r in result.registrations)


def test_default_config_registers_exactly_the_helm_irsa_manifests_platform():
    result = run()
    assert platform_types(result) == sorted(
        [
            ("eks-gp3-migration:index:ClusterAccess", "cluster"),
            ("pulumi:providers:aws", "cluster-aws"),
            ("pulumi:providers:kubernetes", "cluster-k8s"),
            ("eks-gp3-migration:index:EbsCsiPlatform", "platform"),
            ("eks-gp3-migration:index:SnapshotSupport", "platform-snapshots"),
            ("kubernetes:yaml/v2:ConfigGroup", "platform-snapshots-crds"),
            ("kubernetes:yaml/v2:ConfigGroup", "platform-snapshots-controller"),
            ("eks-gp3-migration:index:DriverIdentity", "platform-identity"),
            ("aws:iam/role:Role", "platform-identity-role"),
            ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "platform-identity-managed-policy"),
            ("eks-gp3-migration:index:EbsCsiDriver", "platform-driver"),
            ("kubernetes:helm.sh/v3:Release", "platform-driver-release"),
            ("eks-gp3-migration:index:StorageClasses", "platform-classes"),
            ("kubernetes:storage.k8s.io/v1:StorageClassPatch", "platform-classes-gp2-demotion"),
            ("kubernetes:storage.k8s.io/v1:StorageClass", "platform-classes-gp3"),
            ("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass", "platform-classes-snapshot-class"),
        ]
    )
    # Looked up, never created: no OIDC provider, no KMS policy, no add-on, no association.
    assert result.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert result.of_type("aws:iam/rolePolicy:RolePolicy") == []
    assert result.of_type("aws:eks/addon:Addon") == []
    assert result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") == []
    assert [i.token for i in result.invocations] == [
        "aws:eks/getCluster:getCluster",
        "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider",
    ]


def test_cluster_access_pins_provider_identity_to_the_cluster_arn_and_region():
    result = run()
    assert result.named("cluster-aws").inputs["region"] == "eu-central-1"
    k8s = result.named("cluster-k8s").inputs
    assert k8s["clusterIdentifier"] == f"arn:aws:eks:eu-central-1:{ACCOUNT}:cluster/dev-eks"
    kubeconfig = json.loads(k8s["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "aws"
    assert kubeconfig["users"][0]["user"]["exec"]["args"] == [
        "--region",
        "eu-central-1",
        "eks",
        "get-token",
        "--cluster-name",
        "dev-eks",
        "--output",
        "json",
    ]
    # Every platform resource goes through the explicit providers, never an ambient default.
    for reg in result.registrations:
        if reg.custom and not reg.type.startswith("pulumi:providers:"):
            assert "cluster-aws" in reg.provider or "cluster-k8s" in reg.provider, reg.name


SECRET_SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def test_kubeconfig_override_and_role_arn():
    role = "arn:aws:iam::123456789012:role/platform-admin"
    built = run(kubeconfigRoleArn=role)
    args = json.loads(built.named("cluster-k8s").inputs["kubeconfig"])["users"][0]["user"]["exec"]["args"]
    assert args[-2:] == ["--role-arn", role]
    given = run(kubeconfig="/home/me/.kube/config", kubeContext="dev")
    inputs = given.named("cluster-k8s").inputs
    # Secret (issue 23 item 5): the SDK's wire form of a secret value.
    assert inputs["kubeconfig"] == {SECRET_SIG_KEY: SECRET_SIG, "value": "/home/me/.kube/config"}
    assert inputs["context"] == "dev"


def test_irsa_trust_policy_is_exact():
    result = run()
    trust = json.loads(result.named("platform-identity-role").inputs["assumeRolePolicy"])
    statement = trust["Statement"][0]
    host = statement["Principal"]["Federated"].split("oidc-provider/")[1]
    assert host.startswith(ISSUER_HOST_PREFIX)
    assert trust == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host}:aud": "sts.amazonaws.com",
                        f"{host}:sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
                    }
                },
            }
        ],
    }
    role = result.named("platform-identity-role").inputs
    assert role["name"] == "dev-eks-ebs-csi-driver"


def test_oidc_provider_created_only_when_asked():
    result = run(createOidcProvider=True)
    oidc = result.named("platform-identity-oidc-provider")
    assert oidc.type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert oidc.inputs["url"].startswith("https://" + ISSUER_HOST_PREFIX)
    assert "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider" not in [i.token for i in result.invocations]
    trust = json.loads(result.named("platform-identity-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"]["Federated"].startswith(f"arn:aws:iam::{ACCOUNT}:oidc-provider/")


def test_managed_policy_v1_by_arn_and_v2_looked_up_by_name_never_both():
    v1 = run()
    attachments = v1.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert [a.inputs["policyArn"] for a in attachments] == [
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    ]
    v2 = run(managedPolicy="v2")
    attachments = v2.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert [a.inputs["policyArn"] for a in attachments] == ["arn:aws:iam::aws:policy/AmazonEBSCSIDriverPolicyV2"]
    lookups = [i for i in v2.invocations if i.token == "aws:iam/getPolicy:getPolicy"]
    assert [i.args["name"] for i in lookups] == ["AmazonEBSCSIDriverPolicyV2"]


def test_kms_statement_only_with_keys_and_scoped_to_them():
    result = run(kmsKeyArns=[KMS], gp3KmsKeyId=KMS)
    policy = result.named("platform-identity-kms")
    assert policy.type == "aws:iam/rolePolicy:RolePolicy"
    assert json.loads(policy.inputs["policy"]) == driver_policies.kms_policy([KMS])
    for statement in json.loads(policy.inputs["policy"])["Statement"]:
        assert statement["Resource"] == [KMS]
    assert result.named("platform-classes-gp3").inputs["parameters"]["kmsKeyId"] == KMS


def test_pod_identity_with_helm_creates_association_and_no_irsa_annotation():
    result = run(driverIdentity="pod-identity")
    trust = json.loads(result.named("platform-identity-role").inputs["assumeRolePolicy"])
    assert trust == driver_policies.pod_identity_trust_policy(f"arn:aws:eks:eu-central-1:{ACCOUNT}:cluster/dev-eks")
    # Only the controller's service account of this cluster (issue 23).
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-arn": f"arn:aws:eks:eu-central-1:{ACCOUNT}:cluster/dev-eks",
        "aws:RequestTag/kubernetes-namespace": "kube-system",
        "aws:RequestTag/kubernetes-service-account": "ebs-csi-controller-sa",
    }
    association = result.named("platform-identity-pod-identity")
    assert association.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation"
    assert association.inputs == {
        "clusterName": "dev-eks",
        "namespace": "kube-system",
        "serviceAccount": "ebs-csi-controller-sa",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/dev-eks-ebs-csi-driver",
    }
    values = result.named("platform-driver-release").inputs["values"]
    assert "serviceAccount" not in values["controller"]
    assert result.depends_on("platform-driver-release", "platform-identity-pod-identity")
    # No OIDC lookup or provider for Pod Identity.
    assert [i.token for i in result.invocations] == ["aws:eks/getCluster:getCluster"]


def test_helm_release_inputs_and_options():
    result = run(extraVolumeTags={"team": "platform", "env": "dev"})
    release = result.named("platform-driver-release")
    assert release.inputs == {
        "name": "aws-ebs-csi-driver",
        "chart": "aws-ebs-csi-driver",
        "version": "2.64.0",
        "namespace": "kube-system",
        "repositoryOpts": {"repo": "https://kubernetes-sigs.github.io/aws-ebs-csi-driver"},
        "values": {
            "controller": {
                "k8sTagClusterId": "dev-eks",
                "extraVolumeTags": {"env": "dev", "team": "platform"},
                "serviceAccount": {
                    "create": True,
                    "name": "ebs-csi-controller-sa",
                    "annotations": {
                        "eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/dev-eks-ebs-csi-driver"
                    },
                },
            },
            "sidecars": {"snapshotter": {"forceEnable": True}},
            "defaultStorageClass": {"enabled": False},
            "storageClasses": [],
            "volumeSnapshotClasses": [],
        },
        "compat": "true",
    }
    assert release.retain_on_delete is True
    assert release.protect is False


def test_addon_install_with_irsa():
    result = run(driverInstall="addon", driverAddonVersion="v1.53.0-eksbuild.1")
    assert result.of_type("kubernetes:helm.sh/v3:Release") == []
    addon = result.named("platform-driver-addon")
    assert addon.type == "aws:eks/addon:Addon"
    assert addon.inputs == {
        "clusterName": "dev-eks",
        "addonName": "aws-ebs-csi-driver",
        "addonVersion": "v1.53.0-eksbuild.1",
        "configurationValues": json.dumps(
            {
                "controller": {"extraVolumeTags": {}, "k8sTagClusterId": "dev-eks"},
                "defaultStorageClass": {"enabled": False},
                "sidecars": {"snapshotter": {"forceEnable": True}},
                "storageClasses": [],
                "volumeSnapshotClasses": [],
            },
            sort_keys=True,
            separators=(",", ":"),
        ),
        "serviceAccountRoleArn": f"arn:aws:iam::{ACCOUNT}:role/dev-eks-ebs-csi-driver",
        "resolveConflictsOnCreate": "OVERWRITE",
        "resolveConflictsOnUpdate": "PRESERVE",
        "preserve": True,
    }
    assert result.depends_on("platform-driver-addon", "platform-snapshots-crds")


def test_addon_install_with_pod_identity_uses_the_addon_association():
    result = run(driverInstall="addon", driverAddonVersion="v1.53.0-eksbuild.1", driverIdentity="pod-identity")
    addon = result.named("platform-driver-addon").inputs
    assert "serviceAccountRoleArn" not in addon
    assert addon["podIdentityAssociations"] == [
        {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/dev-eks-ebs-csi-driver", "serviceAccount": "ebs-csi-controller-sa"}
    ]
    assert result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") == []


def test_snapshot_manifests_are_pinned_release_urls_retained_and_installed_before_the_driver():
    result = run(snapshotterVersion="v8.6.0")
    crds = result.named("platform-snapshots-crds")
    base = "https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/v8.6.0"
    assert crds.inputs["files"] == [
        f"{base}/client/config/crd/snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
        f"{base}/client/config/crd/snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
        f"{base}/client/config/crd/snapshot.storage.k8s.io_volumesnapshots.yaml",
    ]
    controller = result.named("platform-snapshots-controller")
    assert controller.inputs["files"] == [
        f"{base}/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml",
        f"{base}/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml",
    ]
    assert crds.retain_on_delete and controller.retain_on_delete
    assert result.depends_on("platform-snapshots-controller", "platform-snapshots-crds")
    assert result.depends_on("platform-driver-release", "platform-snapshots-crds")
    assert result.depends_on("platform-driver-release", "platform-snapshots-controller")


def test_snapshot_addon_mode():
    result = run(snapshotSupport="addon", snapshotControllerAddonVersion="v8.3.0-eksbuild.1")
    assert result.of_type("kubernetes:yaml/v2:ConfigGroup") == []
    addon = result.named("platform-snapshots-addon")
    assert addon.inputs == {
        "clusterName": "dev-eks",
        "addonName": "snapshot-controller",
        "addonVersion": "v8.3.0-eksbuild.1",
        "resolveConflictsOnCreate": "OVERWRITE",
        "resolveConflictsOnUpdate": "PRESERVE",
        "preserve": True,
    }
    assert result.depends_on("platform-driver-release", "platform-snapshots-addon")


def test_snapshot_present_mode_declares_nothing_for_snapshots():
    result = run(snapshotSupport="present")
    children = [r for r in result.registrations if r.parent.endswith("::platform-snapshots")]
    assert children == []
    assert result.of_type("aws:eks/addon:Addon") == []


def test_gp3_becomes_default_only_after_gp2_is_demoted():
    result = run()
    demotion = result.named("platform-classes-gp2-demotion")
    assert demotion.inputs == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "gp2",
            "annotations": {
                "storageclass.kubernetes.io/is-default-class": "false",
                "pulumi.com/patchForce": "true",
            },
        },
    }
    assert demotion.retain_on_delete is True
    gp3 = result.named("platform-classes-gp3")
    assert gp3.inputs == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "gp3", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {
            "csi.storage.k8s.io/fstype": "ext4",
            "encrypted": "true",
            "iops": "3000",
            "throughput": "125",
            "type": "gp3",
        },
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }
    # Kept on delete; never replaced in place (a changed field is refused or gets a new name), so
    # no delete_before_replace: with the object kept, a replacement would fail in either order.
    assert gp3.retain_on_delete is True
    assert gp3.delete_before_replace is False
    assert gp3.import_id == ""
    assert result.depends_on("platform-classes-gp3", "platform-classes-gp2-demotion")
    assert result.depends_on("platform-classes-gp3", "platform-driver-release")


def test_without_demotion_gp2_is_untouched_and_gp3_is_not_default():
    result = run(demoteGp2=False)
    assert result.of_type("kubernetes:storage.k8s.io/v1:StorageClassPatch") == []
    annotations = result.named("platform-classes-gp3").inputs["metadata"]["annotations"]
    assert annotations == {"storageclass.kubernetes.io/is-default-class": "false"}


@pytest.mark.parametrize("demote", [True, False])
def test_exactly_one_default_class_is_left_when_asked(demote):
    """Model the classes after apply: gp2 starts as the EKS default (pre-1.30 clusters)."""
    result = run(demoteGp2=demote)
    defaults = {"gp2": "true"}
    for reg in result.of_type("kubernetes:storage.k8s.io/v1:StorageClassPatch") + result.of_type(
        "kubernetes:storage.k8s.io/v1:StorageClass"
    ):
        metadata = reg.inputs["metadata"]
        defaults[metadata["name"]] = metadata["annotations"]["storageclass.kubernetes.io/is-default-class"]
    assert sorted(name for name, value in defaults.items() if value == "true") == (["gp3"] if demote else ["gp2"])


def test_volume_snapshot_class_inputs():
    result = run(snapshotClassName="ebs-snapshots")
    vsc = result.named("platform-classes-snapshot-class")
    assert vsc.type == "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass"
    assert vsc.inputs == {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": "ebs-snapshots"},
        "driver": "ebs.csi.aws.com",
        "deletionPolicy": "Delete",
    }
    assert result.depends_on("platform-classes-snapshot-class", "platform-snapshots-crds")
    assert result.outputs["volumeSnapshotClass"] == "ebs-snapshots"


def test_stack_outputs():
    result = run()
    assert result.outputs["driverRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/dev-eks-ebs-csi-driver"
    assert result.outputs["driver"] == {"kind": "helm", "version": "2.64.0"}
    assert result.outputs["gp3StorageClass"] == "gp3"
    assert result.outputs["volumeSnapshotClass"] == "ebs-csi-aws"


def test_dev_and_prod_stack_files_run_and_differ_where_they_should():
    dev = run_program(stack_config("dev"), stack="dev")
    assert dev.error is None, dev.error
    # Both keep the driver their cluster runs: no Helm release, no add-on, no driver role.
    assert not dev.has("platform-driver-release") and not dev.has("platform-identity-role")
    assert dev.outputs["driver"] == {"kind": "present", "version": "v1.53.0-eksbuild.1"}
    assert dev.named("cluster-aws").inputs["region"] == "eu-central-1"
    prod = run_program(stack_config("prod"), stack="prod", other_stacks={stack_name("dev"): dev.outputs})
    assert prod.error is None, prod.error
    assert prod.named("cluster-aws").inputs["region"] == "us-east-1"
    assert not prod.has("platform-driver-release") and not prod.has("platform-identity-pod-identity")
    assert prod.outputs["platformVersions"] == dev.outputs["platformVersions"]


def test_two_runs_register_identical_resources():
    first, second = run_program(stack_config("dev")), run_program(stack_config("dev"))

    def fingerprint(result):
        return [
            (
                r.type,
                r.name,
                json.dumps(r.inputs, sort_keys=True),
                r.protect,
                r.retain_on_delete,
                sorted(r.dependencies),
                r.custom_timeouts,
            )
            for r in result.registrations
        ]

    assert sorted(fingerprint(first)) == sorted(fingerprint(second))


def test_present_keeps_the_running_driver_and_creates_no_install_or_identity():
    """Every EKS >= 1.23 cluster with working in-tree volumes runs the driver already (EKS 1.23
    release notes); installing it again fails (simulation:
    test_a_cluster_whose_driver_runs_already_keeps_it)."""
    result = run(driverInstall="present", driverVersion="v1.53.0-eksbuild.1")
    assert result.error is None
    types = {r.type for r in result.registrations}
    for absent in (
        "kubernetes:helm.sh/v3:Release",
        "aws:eks/addon:Addon",
        "aws:iam/role:Role",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    ):
        assert absent not in types
    assert result.outputs["driver"] == {"kind": "present", "version": "v1.53.0-eksbuild.1"}
    assert result.outputs["driverRoleArn"] is None
    gp3 = result.named("platform-classes-gp3")
    assert gp3.type == "kubernetes:storage.k8s.io/v1:StorageClass"
    # The default class still waits for gp2's demotion; there is no driver install to wait for.
    assert result.depends_on("platform-classes-gp3", "platform-classes-gp2-demotion")


DRIVER_CHECK = "platform-driver-check"
# The Pulumi SDK's marker of a secret value on the wire (pulumi.runtime.rpc _special_secret_sig).
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def test_present_checks_the_running_driver_before_any_migration_step():
    """GIVEN the dev stack (driverInstall: present, one volume in precopy) WHEN the program runs
    THEN one driver check is declared, with exactly these inputs, after the snapshot support and
    before every step of the migration (the check itself: tests/test_driver_check.py; what it
    stops: tests/sim/test_driver_present.py)."""
    result = run_program(stack_config("dev"))
    assert result.error is None, result.error
    check = result.named(DRIVER_CHECK)
    assert check.type == "pulumi-python:dynamic:Resource"
    assert check.parent.endswith("eks-gp3-migration:index:EbsCsiPlatform::platform")
    inputs = {k: v for k, v in check.inputs.items() if k not in ("__provider", "kubeconfig")}
    assert inputs == {"clusterName": "dev-eks", "region": "eu-central-1", "namespace": "kube-system", "kmsKeyArns": []}
    kubeconfig = check.inputs["kubeconfig"]
    assert SECRET_SIG in kubeconfig.values()
    assert json.loads(kubeconfig["value"])["clusters"][0]["name"] == "dev-eks"
    assert result.depends_on(DRIVER_CHECK, "platform-snapshots-crds")
    assert result.depends_on(DRIVER_CHECK, "platform-snapshots-controller")
    steps = [r for r in result.registrations if r.custom and r.parent.endswith("::migrate-default-ebs-gp2-claim")]
    assert len(steps) >= 2
    for step in steps:
        assert result.depends_on(step.name, DRIVER_CHECK), step.name
    assert [r.name for r in result.of_type("pulumi-python:dynamic:Resource") if r.name.startswith("platform")] == [
        DRIVER_CHECK
    ]


def test_present_checks_every_key_in_use_once_sorted():
    result = run(
        driverInstall="present",
        driverVersion="v1.53.0",
        kmsKeyArns=[KEY_B, KEY_A],
        gp3KmsKeyId=KEY_B,
        migrations=[volume(1, encrypted=True, kmsKeyId=KEY_A), volume(2)],
    )
    assert result.named(DRIVER_CHECK).inputs["kmsKeyArns"] == [KEY_A, KEY_B]


@pytest.mark.parametrize(
    ("install", "extra"),
    [("helm", {}), ("addon", {"driverAddonVersion": "v1.53.0-eksbuild.1"})],
)
def test_an_installed_driver_gets_no_check_an_adopted_one_does(install, extra):
    """An installed driver gets the sidecar (forceEnable) and the role's KMS policy from the stack;
    an adopted one runs with its own settings until driverAdopt is false (components/ebs_csi_driver.py)."""
    installed = run(driverInstall=install, kmsKeyArns=[KEY_A], **extra)
    assert not installed.has(DRIVER_CHECK)
    assert [r for r in installed.of_type("pulumi-python:dynamic:Resource") if r.name.startswith("platform")] == []
    adopted = run(driverInstall=install, driverAdopt=True, kmsKeyArns=[KEY_A], **extra)
    check = adopted.named(DRIVER_CHECK)
    assert check.inputs["adopted"] is True and check.inputs["kmsKeyArns"] == [KEY_A]


def test_a_kept_driver_check_has_no_adopted_input():
    """The inputs a `present` stack's check was created with stay as they were (no re-run)."""
    check = run(driverInstall="present", driverVersion="v1.53.0").named(DRIVER_CHECK)
    assert "adopted" not in check.inputs


@pytest.mark.parametrize(
    ("install", "extra", "name", "import_id", "ignored"),
    [
        (
            "helm",
            {"driverChartVersion": "2.53.0"},
            "platform-driver-release",
            "kube-system/aws-ebs-csi-driver",
            ["version", "values"],
        ),
        (
            "addon",
            {"driverAddonVersion": "v1.53.0-eksbuild.1"},
            "platform-driver-addon",
            "dev-eks:aws-ebs-csi-driver",
            ["addonVersion", "configurationValues", "serviceAccountRoleArn", "podIdentityAssociations"],
        ),
    ],
)
def test_adopt_imports_the_running_driver_and_changes_nothing_that_runs(install, extra, name, import_id, ignored):
    """Issue 21 item 5: the engine updates an import to its declared inputs in the same `up`
    (pulumi 3.174+, continueStepsFromImport), so what decides the running driver is ignored while
    adopting; `driverAdopt: false` later is the visible move to the pinned version and values."""
    adopted = run(driverInstall=install, driverAdopt=True, **extra).named(name)
    assert (adopted.import_id, adopted.ignore_changes, adopted.retain_on_delete) == (import_id, ignored, True)
    managed = run(driverInstall=install, **extra).named(name)
    assert (managed.import_id, managed.ignore_changes, managed.retain_on_delete) == ("", [], True)
    # Everything else is declared the same either way: the move changes only those inputs.
    assert adopted.inputs == managed.inputs


# --- StorageClasses: what restores need, and what may change -------------------------------------

KEY_A = "arn:aws:kms:eu-central-1:123456789012:key/aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
KEY_B = "arn:aws:kms:eu-central-1:123456789012:key/bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
DIGEST_A = hashlib.sha256(KEY_A.encode()).hexdigest()[:8]
CLASS_TYPE = "kubernetes:storage.k8s.io/v1:StorageClass"
CLAIM_TYPE = "kubernetes:core/v1:PersistentVolumeClaim"


def volume(i: int, performance: str | None = "peak", **facts) -> dict:
    """A 10 GiB gp2 source planned for gp2's peak: 3,000 IOPS and 128 MiB/s (burst and small-volume
    peak), a tier apart from the main class's 3,000 / 125. These tests are about what a tier class
    carries, not about the policy, so they pin it (`performance: peak`, per entry); under the
    default (sustained) such a volume restores into the main class. None: the stack's policy."""
    entry = {
        "namespace": "apps",
        "claim": f"data-{i}",
        "pv": f"pvc-{i:08x}-0000-4000-8000-000000000000",
        "volumeId": f"vol-{i:017x}",
        "zone": "eu-central-1a",
        "sizeGiB": 10,
        # The restore class is what a copy restores into.
        "strategy": "copy",
        **facts,
    }
    return entry | ({"performance": performance} if performance else {})


def parameters(iops=3000, throughput=128, fs="ext4", encrypted=True, key=None) -> dict:
    out = {
        "csi.storage.k8s.io/fstype": fs,
        "encrypted": "true" if encrypted else "false",
        "iops": str(iops),
        "throughput": str(throughput),
        "type": "gp3",
    }
    if key:
        out["kmsKeyId"] = key
    return out


def classes_of(result) -> dict[str, dict]:
    """StorageClass name -> parameters, for every class registered."""
    return {r.inputs["metadata"]["name"]: r.inputs["parameters"] for r in result.of_type(CLASS_TYPE)}


def claim_classes_of(result) -> dict[str, str]:
    return {r.inputs["metadata"]["name"]: r.inputs["spec"]["storageClassName"] for r in result.of_type(CLAIM_TYPE)}


def class_record_entry(params: dict, role: str, declared: bool = True) -> dict:
    return {
        "provisioner": "ebs.csi.aws.com",
        "parameters": params,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "role": role,
        "declared": declared,
    }


def test_a_restore_class_carries_the_sources_fs_type_and_kms_key():
    """Issue 9 item 12: node staging formats only a blank device, so an xfs volume restored into an
    ext4 class would not mount; a source encrypted with a key keeps it (the class names it)."""
    config = {
        **BASE,
        "kmsKeyArns": [KEY_A],
        "migrations": [
            volume(0),
            volume(1, fsType="xfs"),
            volume(2, encrypted=True, kmsKeyId=KEY_A),
            volume(3, fsType="xfs", encrypted=True, kmsKeyId=KEY_A),
            # Block volumes have no filesystem: any fsType serves, so no class of their own.
            volume(4, fsType="xfs", volumeMode="Block"),
            # Encrypted with a key discovery did not record: the class names none, EBS keeps the
            # snapshot's, and that is what the main class's encryption already does.
            volume(5, encrypted=True),
        ],
    }
    result = advance(config, ["precopy", "cutover"])[-1]
    assert classes_of(result) == {
        "gp3": parameters(throughput=125),
        "gp3-3000iops-128mibs": parameters(),
        "gp3-3000iops-128mibs-xfs": parameters(fs="xfs"),
        f"gp3-3000iops-128mibs-enc-{DIGEST_A}": parameters(key=KEY_A),
        f"gp3-3000iops-128mibs-xfs-enc-{DIGEST_A}": parameters(fs="xfs", key=KEY_A),
    }
    assert claim_classes_of(result) == {
        "data-0-gp3": "gp3-3000iops-128mibs",
        "data-1-gp3": "gp3-3000iops-128mibs-xfs",
        "data-2-gp3": f"gp3-3000iops-128mibs-enc-{DIGEST_A}",
        "data-3-gp3": f"gp3-3000iops-128mibs-xfs-enc-{DIGEST_A}",
        "data-4-gp3": "gp3-3000iops-128mibs",
        "data-5-gp3": "gp3-3000iops-128mibs",
    }
    for reg in result.of_type(CLASS_TYPE):
        assert reg.retain_on_delete is True and reg.delete_before_replace is False, reg.name
        assert reg.import_id == "", reg.name
    # Each migration waits for its own class and no other.
    assert result.depends_on("migrate-apps-data-1-claim", "platform-classes-gp3-3000iops-128mibs-xfs")
    assert not result.depends_on("migrate-apps-data-1-claim", "platform-classes-gp3-3000iops-128mibs")
    assert not result.depends_on("migrate-apps-data-0-claim", "platform-classes-gp3-3000iops-128mibs-xfs")


def test_the_main_class_is_reused_when_everything_matches():
    config = {
        **BASE,
        "kmsKeyArns": [KEY_A],
        "gp3FsType": "xfs",
        "gp3KmsKeyId": KEY_A,
        "gp3Throughput": 128,
        "migrations": [volume(0, fsType="xfs", encrypted=True, kmsKeyId=KEY_A), volume(1, fsType="xfs")],
    }
    result = advance(config, ["precopy", "cutover"])[-1]
    # The unencrypted source gets the stack's encryption for new volumes (gp3KmsKeyId): same class.
    assert classes_of(result) == {"gp3": parameters(fs="xfs", key=KEY_A)}
    assert claim_classes_of(result) == {"data-0-gp3": "gp3", "data-1-gp3": "gp3"}


def test_an_encrypted_source_keeps_its_key_not_the_key_for_new_volumes():
    """gp3KmsKeyId is for new volumes. Restoring KEY_A's data into the main class would
    re-encrypt it under KEY_B (CreateVolume with KmsKeyId re-encrypts)."""
    config = {
        **BASE,
        "kmsKeyArns": [KEY_A, KEY_B],
        "gp3KmsKeyId": KEY_B,
        "gp3Throughput": 128,
        "migrations": [volume(0), volume(1, encrypted=True, kmsKeyId=KEY_A)],
    }
    result = advance(config, ["precopy", "cutover"])[-1]
    assert classes_of(result) == {
        "gp3": parameters(key=KEY_B),
        f"gp3-3000iops-128mibs-enc-{DIGEST_A}": parameters(key=KEY_A),
    }
    assert claim_classes_of(result) == {"data-0-gp3": "gp3", "data-1-gp3": f"gp3-3000iops-128mibs-enc-{DIGEST_A}"}


def test_unencrypted_stacks_name_their_tiers_so():
    result = run(gp3Encrypted=False, migrations=[volume(0)])
    assert classes_of(result) == {
        "gp3": parameters(throughput=125, encrypted=False),
        "gp3-3000iops-128mibs-unencrypted": parameters(encrypted=False),
    }


def test_the_record_of_applied_classes_is_published():
    result = run(migrations=[volume(0)])
    assert result.outputs["storageClassParameters"] == {
        "gp3": class_record_entry(parameters(throughput=125), "main"),
        "gp3-3000iops-128mibs": class_record_entry(parameters(), "tier"),
    }


@pytest.mark.parametrize(
    ("changes", "lines"),
    [
        (
            {"gp3Iops": 4000},
            [
                "gp3Iops: 4000, but StorageClass 'gp3' was created with 3000; a StorageClass's parameters cannot "
                "change, and the class is kept on delete, so Pulumi's replacement would fail with AlreadyExists. "
                "Set a new gp3ClassName (class 'gp3' stays, no longer default, for the claims that name it), or "
                "set gp3Iops back to 3000",
            ],
        ),
        (
            {"gp3FsType": "xfs", "gp3Encrypted": False},
            [
                "gp3FsType: 'xfs', but StorageClass 'gp3' was created with 'ext4'; a StorageClass's parameters "
                "cannot change, and the class is kept on delete, so Pulumi's replacement would fail with "
                "AlreadyExists. Set a new gp3ClassName (class 'gp3' stays, no longer default, for the claims that "
                "name it), or set gp3FsType back to 'ext4'",
                "gp3Encrypted: false, but StorageClass 'gp3' was created with true; a StorageClass's parameters "
                "cannot change, and the class is kept on delete, so Pulumi's replacement would fail with "
                "AlreadyExists. Set a new gp3ClassName (class 'gp3' stays, no longer default, for the claims that "
                "name it), or set gp3Encrypted back to true",
            ],
        ),
        (
            {"kmsKeyArns": [KEY_A], "gp3KmsKeyId": KEY_A},
            [
                f"gp3KmsKeyId: '{KEY_A}', but StorageClass 'gp3' was created with none; a StorageClass's "
                "parameters cannot change, and the class is kept on delete, so Pulumi's replacement would fail "
                "with AlreadyExists. Set a new gp3ClassName (class 'gp3' stays, no longer default, for the claims "
                "that name it), or remove gp3KmsKeyId",
            ],
        ),
    ],
    ids=["iops", "fstype-and-encryption", "key"],
)
def test_an_immutable_change_to_the_main_class_is_refused_before_anything_is_registered(changes, lines):
    """Issue 9 item 10: the replacement of a named, retained class fails with AlreadyExists."""
    first = run()
    refused = run_program({**BASE, **changes}, previous_outputs=first.outputs)
    assert str(refused.error) == "invalid stack config:\n" + "\n".join(f"  - {line}" for line in lines)
    assert refused.registrations == []


def test_what_the_program_itself_declares_differently_is_refused_naming_gp3_class_name():
    """A later version of the program with another reclaimPolicy must not replace the class either."""
    first = run()
    previous = dict(first.outputs)
    previous["storageClassParameters"] = {
        "gp3": {**class_record_entry(parameters(throughput=125), "main"), "reclaimPolicy": "Retain"}
    }
    refused = run_program(BASE, previous_outputs=previous)
    assert str(refused.error) == (
        "invalid stack config:\n  - gp3ClassName: StorageClass 'gp3' was created with other fields than this "
        "version of the program declares (reclaimPolicy 'Retain' -> 'Delete'); a StorageClass's parameters cannot "
        "change, and the class is kept on delete, so Pulumi's replacement would fail with AlreadyExists. Set a "
        "new gp3ClassName (class 'gp3' stays)"
    )
    assert refused.registrations == []


def test_a_main_class_name_of_the_tier_form_is_refused():
    refused = run_program({**BASE, "gp3ClassName": "gp3-3000iops-128mibs"})
    assert str(refused.error) == (
        "invalid stack config:\n  - gp3ClassName: 'gp3-3000iops-128mibs' has the form of a tier class name "
        "(gp3-<iops>iops-<mibs>mibs...), which this program gives to the classes it creates per performance, "
        "fsType and key: choose another name"
    )
    assert refused.registrations == []


def test_a_new_gp3_class_name_keeps_the_old_class_declared_non_default_with_its_fields():
    first = run(migrations=[volume(0)])
    renamed_config = {**BASE, "gp3Iops": 4000, "gp3ClassName": "gp3-fast", "migrations": [volume(0)]}
    renamed = run_program(renamed_config, previous_outputs=first.outputs)
    assert renamed.error is None, renamed.error
    old, new = renamed.named("platform-classes-gp3"), renamed.named("platform-classes-gp3-fast")
    # Same resource, same fields: an in-place update of the annotation only.
    assert old.inputs["parameters"] == first.named("platform-classes-gp3").inputs["parameters"]
    assert old.inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "false"}
    assert new.inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert new.inputs["parameters"] == parameters(iops=4000, throughput=125)
    # One default at every moment: the new default waits for the old one to be demoted.
    assert renamed.depends_on("platform-classes-gp3-fast", "platform-classes-gp3")
    assert not renamed.depends_on("platform-classes-gp3", "platform-classes-gp3-fast")
    # The tier is named after its own fields, not after gp3ClassName: it does not move.
    assert renamed.named("platform-classes-gp3-3000iops-128mibs").inputs == (
        first.named("platform-classes-gp3-3000iops-128mibs").inputs
    )
    assert renamed.outputs["storageClassParameters"] == {
        "gp3": class_record_entry(parameters(throughput=125), "retired"),
        "gp3-3000iops-128mibs": class_record_entry(parameters(), "tier"),
        "gp3-fast": class_record_entry(parameters(iops=4000, throughput=125), "main"),
    }
    # The next run with no edit declares the same (DESIGN invariant 9).
    again = run_program(renamed_config, previous_outputs=renamed.outputs)
    assert sorted((r.name, json.dumps(r.inputs, sort_keys=True), r.import_id) for r in again.registrations) == sorted(
        (r.name, json.dumps(r.inputs, sort_keys=True), r.import_id) for r in renamed.registrations
    )
    # Going back to 'gp3' with 4000 IOPS would change the kept class: refused.
    back = run_program({**renamed_config, "gp3ClassName": "gp3"}, previous_outputs=renamed.outputs)
    assert str(back.error).splitlines()[1].startswith("  - gp3Iops: 4000, but StorageClass 'gp3' was created with 3000")
    assert back.registrations == []


def test_a_changed_tier_is_a_new_class_and_the_old_one_leaves_the_program_retained():
    """The old class's registration disappears; the engine then skips its delete because its *old*
    state says retainOnDelete (pulumi/pulumi pkg/resource/deploy/step.go, DeleteStep.Apply; issue
    13428), so the class stays in the cluster for any claim that names it. No claim moves."""
    first = run(migrations=[volume(0)])
    assert first.named("platform-classes-gp3-3000iops-128mibs").retain_on_delete is True
    xfs = run_program({**BASE, "migrations": [volume(0, fsType="xfs")]}, previous_outputs=first.outputs)
    assert xfs.error is None, xfs.error
    assert sorted(classes_of(xfs)) == ["gp3", "gp3-3000iops-128mibs-xfs"]
    assert not xfs.has("platform-classes-gp3-3000iops-128mibs")
    assert xfs.of_type(CLAIM_TYPE) == []
    assert xfs.outputs["storageClassParameters"]["gp3-3000iops-128mibs"]["declared"] is False
    # Needed again, the kept class is adopted (import), not created (which would fail: AlreadyExists),
    # with the inputs it was created with; once in the state again it is an ordinary resource.
    back = run_program({**BASE, "migrations": [volume(0)]}, previous_outputs=xfs.outputs)
    returned = back.named("platform-classes-gp3-3000iops-128mibs")
    assert returned.import_id == "gp3-3000iops-128mibs"
    assert returned.inputs == first.named("platform-classes-gp3-3000iops-128mibs").inputs
    assert returned.retain_on_delete is True
    assert not back.has("platform-classes-gp3-3000iops-128mibs-xfs")
    settled = run_program({**BASE, "migrations": [volume(0)]}, previous_outputs=back.outputs)
    assert settled.named("platform-classes-gp3-3000iops-128mibs").import_id == ""


def test_a_restored_claim_keeps_the_class_it_names(caplog):
    """A claim's storageClassName cannot change: a new class would replace the claim that holds the
    data. An edit after the cutover leaves the claim on its class, and says so. (An edit of the
    entry's own facts, such as fsType, is refused instead: gp3migrate/config/entry_facts.py.)"""
    config = {**BASE, "migrations": [volume(0)]}
    cut = advance(config, ["precopy", "cutover"])[-1]
    assert claim_classes_of(cut) == {"data-0-gp3": "gp3-3000iops-128mibs"}
    edited = {**BASE, "migrations": [volume(0, performance="sustained", phase="finalize")]}
    with caplog.at_level(logging.WARNING):
        finalize = run_program(edited, previous_outputs=cut.outputs)
    assert finalize.error is None, finalize.error
    assert claim_classes_of(finalize) == {"data-0-gp3": "gp3-3000iops-128mibs"}
    # Nobody needs a new class; the one the claim names left the program, kept in the cluster.
    assert sorted(classes_of(finalize)) == ["gp3"]
    assert finalize.outputs["migrations"]["apps/data-0"]["storageClass"] == "gp3-3000iops-128mibs"
    assert (
        "apps/data-0: stays on StorageClass 'gp3-3000iops-128mibs', which its gp3 claim already names, although "
        "the config now gives 'gp3': a claim's storageClassName cannot change (the claim "
        "would be replaced). To restore into 'gp3', roll back and cut over again"
    ) in caplog.messages


def test_the_default_policy_moves_no_claim_past_precopy(caplog):
    """Stacks that cut over before the `performance` key planned for gp2's peak; the new default
    (sustained) computes the main class for the same volume. A claim already restored keeps the
    class it names (its storageClassName cannot change); one still in precopy follows the config."""

    def entries(*phases: str) -> list[dict]:
        return [volume(i, performance=None, phase=phase) for i, phase in enumerate(phases)]

    old = {**BASE, "performance": "peak"}
    first = run_program({**old, "migrations": entries("precopy", "precopy")})
    cut = run_program({**old, "migrations": entries("cutover", "precopy")}, previous_outputs=first.outputs)
    assert cut.error is None, cut.error
    assert claim_classes_of(cut) == {"data-0-gp3": "gp3-3000iops-128mibs"}
    with caplog.at_level(logging.WARNING):
        flipped = run_program({**BASE, "migrations": entries("finalize", "precopy")}, previous_outputs=cut.outputs)
    assert flipped.error is None, flipped.error
    assert claim_classes_of(flipped) == {"data-0-gp3": "gp3-3000iops-128mibs"}
    outputs = flipped.outputs["migrations"]
    assert (outputs["apps/data-0"]["storageClass"], outputs["apps/data-1"]["storageClass"]) == (
        "gp3-3000iops-128mibs",
        "gp3",
    )
    assert sorted(classes_of(flipped)) == ["gp3"]
    assert (
        "apps/data-0: stays on StorageClass 'gp3-3000iops-128mibs', which its gp3 claim already names, although "
        "the config now gives 'gp3': a claim's storageClassName cannot change (the claim would be replaced). "
        "To restore into 'gp3', roll back and cut over again"
    ) in caplog.messages


def test_a_migration_in_precopy_follows_the_config():
    first = run_program({**BASE, "migrations": [volume(0)]})
    edited = run_program({**BASE, "migrations": [volume(0, fsType="xfs")]}, previous_outputs=first.outputs)
    assert edited.outputs["migrations"]["apps/data-0"]["storageClass"] == "gp3-3000iops-128mibs-xfs"
