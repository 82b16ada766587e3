"""Pinned versions and upstream constants, each with where it comes from.

A stack overrides a version in its own config; nothing here resolves "latest" at deploy time.
"""

# aws-ebs-csi-driver Helm chart 2.64.0 (driver 1.64.0): the chart whose values schema the tests
# validate against (shared/fixtures/aws-ebs-csi-driver-2.64.0/Chart.yaml).
EBS_CSI_CHART_VERSION = "2.64.0"
EBS_CSI_CHART_NAME = "aws-ebs-csi-driver"
EBS_CSI_CHART_REPO = "https://kubernetes-sigs.github.io/aws-ebs-csi-driver"
EBS_CSI_ADDON_NAME = "aws-ebs-csi-driver"

# external-snapshotter v8.6.0: the snapshot.storage.k8s.io/v1 CRDs and the snapshot-controller.
SNAPSHOTTER_VERSION = "v8.6.0"
SNAPSHOT_CONTROLLER_ADDON_NAME = "snapshot-controller"

CSI_DRIVER = "ebs.csi.aws.com"
IN_TREE_PROVISIONER = "kubernetes.io/aws-ebs"
DRIVER_NAMESPACE = "kube-system"
# The chart's default controller service account (values.yaml controller.serviceAccount.name).
CONTROLLER_SERVICE_ACCOUNT = "ebs-csi-controller-sa"

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# Tag the driver's managed policies key DeleteSnapshot / CreateVolume-from-snapshot on
# (example-iam-policy.json and AmazonEBSCSIDriverPolicyV2.json in the chart fixtures).
DRIVER_MANAGED_TAG = "ebs.csi.aws.com/cluster"


def snapshotter_manifest_urls(version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The release manifests of external-snapshotter: (CRDs, controller RBAC + Deployment)."""
    base = f"https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/{version}"
    crds = tuple(
        f"{base}/client/config/crd/snapshot.storage.k8s.io_{kind}.yaml"
        for kind in ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")
    )
    controller = (
        f"{base}/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml",
        f"{base}/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml",
    )
    return crds, controller


# The oldest EBS CSI driver `driverInstall: present` accepts: v1.33.0 made topology.kubernetes.io/zone
# its topology key, which the static CSI PVs of a rehome name (aws-ebs-csi-driver CHANGELOG, v1.33.0).
EBS_CSI_MIN_DRIVER_VERSION = "v1.33.0"


def driver_version_problem(value: str) -> str | None:
    """`v1.53.0` or `v1.53.0-eksbuild.1`, and not older than the minimum."""
    import re

    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)(-eksbuild\.\d+)?", value)
    if match is None:
        return "is not a driver version such as v1.53.0 or v1.53.0-eksbuild.1"
    minimum = tuple(int(p) for p in EBS_CSI_MIN_DRIVER_VERSION[1:].split("."))
    if tuple(int(g) for g in match.groups()[:3]) < minimum:
        return (
            f"is older than {EBS_CSI_MIN_DRIVER_VERSION}, the oldest driver this migration works with: upgrade it first"
        )
    return None


# Amazon EKS Kubernetes versions by support status on EKS_VERSIONS_AS_OF, each with the day that
# status ends (EKS user guide, "Understand the Kubernetes version lifecycle on EKS", release
# calendar; 1.36: EKS release notes "Kubernetes versions on standard support", on EKS since June 2,
# 2026). Past end of extended support EKS creates no cluster on a version.
EKS_VERSIONS_AS_OF = "2026-11-23"
EKS_STANDARD_SUPPORT_UNTIL = {"1.34": "2026-12-02", "1.35": "2027-03-27", "1.36": "2027-08-02"}
EKS_EXTENDED_SUPPORT_UNTIL = {"1.31": "2026-11-26", "1.32": "2027-03-23", "1.33": "2027-07-29"}
# The rehearsal cluster's version: in standard support until 2027-03-27, on EKS since January 2026.
REHEARSAL_KUBERNETES_VERSION = "1.35"
# EKS control plane, per cluster and hour (AWS containers blog, "Amazon EKS extended support for
# Kubernetes versions pricing", April 2024; the rates 2026 pricing guides still quote).
EKS_STANDARD_SUPPORT_USD_PER_HOUR = 0.10
EKS_EXTENDED_SUPPORT_USD_PER_HOUR = 0.60
