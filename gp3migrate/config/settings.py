"""The stack config, read once into frozen, validated settings.

Every key is declared in Pulumi.yaml (type, description, and the default of an optional key);
the values are validated here. `load_settings` either returns complete settings or raises
ConfigError listing every problem: the program registers nothing before it.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gp3migrate import naming, versions
from gp3migrate.config.migration_entry import MigrationSettings, parse_migrations
from gp3migrate.config.problems import (
    Problems,
    parse_bool,
    parse_choice,
    parse_int,
    parse_str,
    parse_structured,
    show,
    unknown_keys,
)
from gp3migrate.volume_types.sizing import (
    DEFAULT_PERFORMANCE_POLICY,
    GP3_LIMITS,
    PERFORMANCE_POLICIES,
    Gp3Limits,
    PerformancePolicy,
    gp3_limits_for,
)

PROJECT = "eks-gp3-migration"

DriverInstall = Literal["helm", "addon", "present"]
DriverIdentity = Literal["irsa", "pod-identity"]
ManagedPolicy = Literal["v1", "v2"]
SnapshotSupport = Literal["manifests", "addon", "present"]
FsType = Literal["ext4", "xfs", "ext3", "ext2"]

# present: the driver already running is kept as it is (not managed by this stack).
DRIVER_INSTALLS: tuple[DriverInstall, ...] = ("helm", "addon", "present")
DRIVER_IDENTITIES: tuple[DriverIdentity, ...] = ("irsa", "pod-identity")
MANAGED_POLICIES: tuple[ManagedPolicy, ...] = ("v1", "v2")
SNAPSHOT_SUPPORTS: tuple[SnapshotSupport, ...] = ("manifests", "addon", "present")
# Filesystems the EBS CSI driver formats (driver README, "csi.storage.k8s.io/fstype").
FS_TYPES: tuple[FsType, ...] = ("ext4", "xfs", "ext3", "ext2")

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_SNAPSHOTTER_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
# EKS add-on versions look like v1.53.0-eksbuild.1 (DescribeAddonVersions).
_ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
_IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_AWS_TAG_KEY_RESERVED = "aws:"


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """The existing EKS cluster being migrated, and how to reach its API."""

    name: str
    region: str
    # A kubeconfig (path or content) that replaces the one built from the cluster lookup.
    kubeconfig: str | None = None
    kube_context: str | None = None
    # Passed to `aws eks get-token --role-arn` in the built kubeconfig.
    kubeconfig_role_arn: str | None = None


@dataclass(frozen=True, kw_only=True)
class DriverSettings:
    install: DriverInstall = "helm"
    # Import the Helm release / EKS add-on already running, with the settings it has now.
    adopt: bool = False
    chart_version: str = versions.EBS_CSI_CHART_VERSION
    addon_version: str | None = None
    # With `present`: the version that runs (discovery records it); checked against the minimum.
    running_version: str | None = None
    identity: DriverIdentity = "irsa"
    create_oidc_provider: bool = False
    managed_policy: ManagedPolicy = "v1"
    kms_key_arns: tuple[str, ...] = ()
    # Sorted (key, value) pairs: a deterministic order for the chart values.
    extra_volume_tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class SnapshotSettings:
    support: SnapshotSupport = "manifests"
    snapshotter_version: str = versions.SNAPSHOTTER_VERSION
    addon_version: str | None = None


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    gp3_class_name: str = "gp3"
    fs_type: FsType = "ext4"
    encrypted: bool = True
    kms_key_id: str | None = None
    iops: int = 3000
    throughput: int = 125
    demote_gp2: bool = True
    gp2_class_name: str = "gp2"
    snapshot_class_name: str = "ebs-csi-aws"


@dataclass(frozen=True, kw_only=True)
class RehearsalSettings:
    """A throwaway cluster the program creates itself (pulumi-eks), with the demo workload."""

    # The stack's `region`: the cluster is built through an explicit provider for it.
    region: str
    node_type: str = "t3.medium"
    node_count: int = 2
    kubernetes_version: str = versions.REHEARSAL_KUBERNETES_VERSION
    # An existing VPC and its subnets; without them the program creates a small VPC.
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PromotionSettings:
    """This stack may only do what the named stack has already done (see gp3migrate/promotion)."""

    from_stack: str
    # A non-empty reason lets the stack go ahead anyway; it is logged and published.
    override_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Settings:
    cluster: ClusterSettings
    driver: DriverSettings
    snapshots: SnapshotSettings
    storage: StorageSettings
    migrations: tuple[MigrationSettings, ...] = ()
    rehearsal: RehearsalSettings | None = None
    promotion: PromotionSettings | None = None
    # `<namespace>/<claim>` keys of migrations removed from `migrations` on purpose although their
    # last applied phase needs them (gp3migrate/config/transitions.py check_forgotten).
    forget: tuple[str, ...] = ()
    # What the gp3 plan matches of gp2 (gp3migrate/volume_types/sizing.py); a migration entry may override it.
    performance: PerformancePolicy = DEFAULT_PERFORMANCE_POLICY

    @property
    def gp3_limits(self) -> Gp3Limits:
        return gp3_limits_for(self.cluster.region)


# Every key this program reads, without the project prefix; each is declared in Pulumi.yaml.
SCALAR_KEYS = (
    "clusterName",
    "region",
    "kubeconfig",
    "kubeContext",
    "kubeconfigRoleArn",
    "driverInstall",
    "driverVersion",
    "driverAdopt",
    "driverChartVersion",
    "driverAddonVersion",
    "driverIdentity",
    "createOidcProvider",
    "managedPolicy",
    "snapshotSupport",
    "snapshotterVersion",
    "snapshotControllerAddonVersion",
    "gp3ClassName",
    "gp3FsType",
    "gp3Encrypted",
    "gp3KmsKeyId",
    "gp3Iops",
    "gp3Throughput",
    "demoteGp2",
    "gp2ClassName",
    "snapshotClassName",
    "rehearsal",
    "rehearsalNodeType",
    "rehearsalNodeCount",
    "rehearsalKubernetesVersion",
    "rehearsalVpcId",
    "promoteFrom",
    "promotionOverride",
    "performance",
)
STRUCTURED_KEYS = ("kmsKeyArns", "extraVolumeTags", "migrations", "rehearsalSubnetIds", "forget")
ALL_KEYS = SCALAR_KEYS + STRUCTURED_KEYS

# What Pulumi.yaml declares as the default of each optional key. The Pulumi CLI refuses every
# preview and up of a stack that leaves out a declared key without a default ("Stack 'dev' is
# missing configuration value", pulumi/pulumi pkg/workspace/config.go mergeConfig), and hands a
# default to the program as if the stack had set it. So each optional key declares one, and the
# program reads a value equal to it as not set: strings and lists declare the empty value (the
# program's own default, which Pulumi.yaml's description names, then applies), booleans and
# integers the program's own default (tests/test_project_config.py holds them equal).
UNSET_DEFAULTS: Mapping[str, str | bool | int | list[Any] | dict[str, Any]] = {
    **{key: "" for key in SCALAR_KEYS if key not in ("clusterName", "region")},
    "driverAdopt": False,
    "createOidcProvider": False,
    "gp3Encrypted": True,
    "gp3Iops": 3000,
    "gp3Throughput": 125,
    "demoteGp2": True,
    "rehearsal": False,
    "rehearsalNodeCount": 2,
    "kmsKeyArns": [],
    "extraVolumeTags": {},
    "migrations": [],
    "rehearsalSubnetIds": [],
    "forget": [],
}


def project_values(all_config: Mapping[str, Any], project: str = PROJECT) -> dict[str, Any]:
    """This project's keys without their `<project>:` prefix; other namespaces are not ours."""
    prefix = f"{project}:"
    return {k[len(prefix) :]: v for k, v in all_config.items() if k.startswith(prefix)}


def load_settings(values: Mapping[str, Any]) -> Settings:
    """Validate this project's config values (prefix removed) into Settings, or raise ConfigError.
    A value equal to the key's declared default is read as not set (UNSET_DEFAULTS)."""
    values = {key: value for key, value in values.items() if not _is_declared_default(key, value)}
    problems = Problems()
    unknown_keys(problems, "", values, ALL_KEYS)

    cluster = _cluster(problems, values)
    driver = _driver(problems, values, cluster.region)
    snapshots = _snapshots(problems, values)
    storage = _storage(problems, values, driver, cluster.region)
    raw_migrations = parse_structured(values.get("migrations"))
    migrations = parse_migrations(problems, raw_migrations, region=cluster.region)
    _check_source_keys(problems, migrations, driver, cluster.region)
    rehearsal = _rehearsal(problems, values, cluster, driver)
    promotion = _promotion(problems, values)
    forget = _forget(problems, values)
    performance = parse_choice(
        problems, "performance", values.get("performance"), DEFAULT_PERFORMANCE_POLICY, PERFORMANCE_POLICIES
    )
    problems.raise_if_any()
    return Settings(
        cluster=cluster,
        driver=driver,
        snapshots=snapshots,
        storage=storage,
        migrations=migrations,
        rehearsal=rehearsal,
        promotion=promotion,
        forget=forget,
        performance=performance,
    )


def _is_declared_default(key: str, value: Any) -> bool:
    """Whether `value` is the key's declared default, as a Python value or as the runtime's text
    of it (`false`, `3000`, `[]`: the CLI hands lists and maps over as JSON)."""
    if key not in UNSET_DEFAULTS:
        return False
    default = UNSET_DEFAULTS[key]
    if isinstance(value, str):
        if isinstance(default, list | dict):
            return parse_structured(value) == default
        return value == (json.dumps(default) if isinstance(default, bool) else str(default))
    # `type` too: 0 == False and 1 == True in Python, but not in a stack file.
    return type(value) is type(default) and value == default


def _cluster(problems: Problems, values: Mapping[str, Any]) -> ClusterSettings:
    name = parse_str(
        problems,
        "clusterName",
        values.get("clusterName"),
        required=True,
        check=naming.eks_cluster_name_problem,
        what="the name of the existing EKS cluster",
    )
    region = parse_str(
        problems,
        "region",
        values.get("region"),
        required=True,
        check=naming.region_problem,
        what="the cluster's AWS region, e.g. eu-central-1",
    )
    role = parse_str(
        problems,
        "kubeconfigRoleArn",
        values.get("kubeconfigRoleArn"),
        check=lambda v: None if _IAM_ROLE_ARN.match(v) else "is not an IAM role ARN",
        what="an IAM role ARN",
    )
    return ClusterSettings(
        name=name or "",
        region=region or "",
        kubeconfig=parse_str(problems, "kubeconfig", values.get("kubeconfig")),
        kube_context=parse_str(problems, "kubeContext", values.get("kubeContext")),
        kubeconfig_role_arn=role,
    )


def _driver(problems: Problems, values: Mapping[str, Any], region: str) -> DriverSettings:
    install = parse_choice(problems, "driverInstall", values.get("driverInstall"), "helm", DRIVER_INSTALLS)
    chart_version = (
        parse_str(
            problems,
            "driverChartVersion",
            values.get("driverChartVersion"),
            check=lambda v: None if _SEMVER.match(v) else "is not a chart version such as 2.64.0",
        )
        or versions.EBS_CSI_CHART_VERSION
    )
    addon_version = parse_str(
        problems,
        "driverAddonVersion",
        values.get("driverAddonVersion"),
        check=lambda v: None if _ADDON_VERSION.match(v) else "is not an add-on version such as v1.53.0-eksbuild.1",
    )
    if install == "addon" and addon_version is None and "driverAddonVersion" not in values:
        problems.add(
            "driverAddonVersion",
            "is required when driverInstall is 'addon' (pin it, e.g. v1.53.0-eksbuild.1; "
            "list them with `aws eks describe-addon-versions --addon-name aws-ebs-csi-driver`)",
        )
    running_version = parse_str(
        problems,
        "driverVersion",
        values.get("driverVersion"),
        check=versions.driver_version_problem,
    )
    kms_key_arns = _kms_key_arns(problems, values, region)
    adopt = parse_bool(problems, "driverAdopt", values.get("driverAdopt"), False)
    if adopt and install == "present":
        problems.add(
            "driverAdopt",
            "true needs driverInstall helm or addon (the install to import); "
            "present keeps the running driver unmanaged",
        )
    return DriverSettings(
        install=install,
        adopt=adopt,
        chart_version=chart_version,
        addon_version=addon_version,
        running_version=running_version,
        identity=parse_choice(problems, "driverIdentity", values.get("driverIdentity"), "irsa", DRIVER_IDENTITIES),
        create_oidc_provider=parse_bool(problems, "createOidcProvider", values.get("createOidcProvider"), False),
        managed_policy=parse_choice(problems, "managedPolicy", values.get("managedPolicy"), "v1", MANAGED_POLICIES),
        kms_key_arns=kms_key_arns,
        extra_volume_tags=_extra_volume_tags(problems, values),
    )


def _check_source_keys(
    problems: Problems, migrations: tuple[MigrationSettings, ...], driver: DriverSettings, region: str
) -> None:
    """A source encrypted with a customer-managed key the driver may not use fails the restore in
    the downtime window (CreateVolume from the snapshot needs the key): refuse the cutover now.
    Precopy needs no driver access to the key, so discovery may propose the entry and report it."""
    for index, entry in enumerate(migrations):
        key = entry.kms_key_id
        if entry.phase != "cutover" or not entry.encrypted or not key or not key.startswith("arn:"):
            continue
        where = f"migrations[{index}].kmsKeyId"
        key_region = key.split(":")[3] if key.count(":") >= 5 else ""
        if key_region and key_region != region:
            problems.add(where, f"{show(key)} is in {key_region}, not in the stack's region {region}")
        elif key not in driver.kms_key_arns:
            problems.add(
                where,
                f"{show(key)} ({entry.key}) is not in kmsKeyArns: the driver could not read the snapshot to "
                "restore it; add the key to kmsKeyArns so the driver's role gets a grant for it",
            )


def _kms_key_arns(problems: Problems, values: Mapping[str, Any], region: str) -> tuple[str, ...]:
    raw = parse_structured(values.get("kmsKeyArns"))
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("kmsKeyArns", f"{show(raw)} is not a list of KMS key ARNs")
        return ()
    arns: list[str] = []
    for i, arn in enumerate(raw):
        key = f"kmsKeyArns[{i}]"
        if not isinstance(arn, str) or naming.kms_key_arn_problem(arn):
            problems.add(key, f"{show(arn)} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        elif region and f":kms:{region}:" not in arn:
            problems.add(key, f"{show(arn)} is not in the cluster's region {region}")
        elif arn in arns:
            problems.add(key, f"{show(arn)} is listed twice")
        else:
            arns.append(arn)
    return tuple(sorted(arns))


def _extra_volume_tags(problems: Problems, values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    raw = parse_structured(values.get("extraVolumeTags"))
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.add("extraVolumeTags", f"{show(raw)} is not a map of tag keys to values")
        return ()
    tags: list[tuple[str, str]] = []
    for tag_key, tag_value in raw.items():
        key = f"extraVolumeTags.{tag_key}"
        # EC2 tag limits: key 1-128 characters, value up to 256, no "aws:" prefix (EC2 tagging docs).
        if not 1 <= len(tag_key) <= 128 or tag_key.lower().startswith(_AWS_TAG_KEY_RESERVED):
            problems.add(key, "is not an allowed tag key (1-128 characters, not starting with 'aws:')")
        elif not isinstance(tag_value, str) or len(tag_value) > 256:
            problems.add(key, f"{show(tag_value)} is not a tag value (a string of at most 256 characters)")
        else:
            tags.append((tag_key, tag_value))
    return tuple(sorted(tags))


def _snapshots(problems: Problems, values: Mapping[str, Any]) -> SnapshotSettings:
    support = parse_choice(problems, "snapshotSupport", values.get("snapshotSupport"), "manifests", SNAPSHOT_SUPPORTS)
    snapshotter_version = (
        parse_str(
            problems,
            "snapshotterVersion",
            values.get("snapshotterVersion"),
            check=lambda v: None if _SNAPSHOTTER_VERSION.match(v) else "is not a release tag such as v8.6.0",
        )
        or versions.SNAPSHOTTER_VERSION
    )
    addon_version = parse_str(
        problems,
        "snapshotControllerAddonVersion",
        values.get("snapshotControllerAddonVersion"),
        check=lambda v: None if _ADDON_VERSION.match(v) else "is not an add-on version such as v8.2.0-eksbuild.1",
    )
    if support == "addon" and addon_version is None and "snapshotControllerAddonVersion" not in values:
        problems.add(
            "snapshotControllerAddonVersion",
            "is required when snapshotSupport is 'addon' (pin it; list them with "
            "`aws eks describe-addon-versions --addon-name snapshot-controller`)",
        )
    return SnapshotSettings(support=support, snapshotter_version=snapshotter_version, addon_version=addon_version)


def _storage(problems: Problems, values: Mapping[str, Any], driver: DriverSettings, region: str) -> StorageSettings:
    limits = gp3_limits_for(region) if region else GP3_LIMITS
    names = {}
    for key, default in (("gp3ClassName", "gp3"), ("gp2ClassName", "gp2"), ("snapshotClassName", "ebs-csi-aws")):
        names[key] = parse_str(problems, key, values.get(key), check=naming.dns1123_subdomain_problem) or default
    if names["gp3ClassName"] == names["gp2ClassName"]:
        problems.add("gp3ClassName", f"{show(names['gp3ClassName'])} must differ from gp2ClassName")
    kms_key_id = parse_str(
        problems,
        "gp3KmsKeyId",
        values.get("gp3KmsKeyId"),
        check=naming.kms_key_arn_problem,
    )
    encrypted = parse_bool(problems, "gp3Encrypted", values.get("gp3Encrypted"), True)
    if kms_key_id and not encrypted:
        problems.add("gp3KmsKeyId", "is set but gp3Encrypted is false; set gp3Encrypted: true or remove the key")
    if kms_key_id and kms_key_id not in driver.kms_key_arns:
        problems.add("gp3KmsKeyId", f"{show(kms_key_id)} must also be listed in kmsKeyArns so the driver may use it")
    iops = parse_int(problems, "gp3Iops", values.get("gp3Iops"), 3000, limits.base_iops, limits.max_iops)
    throughput = parse_int(
        problems, "gp3Throughput", values.get("gp3Throughput"), 125, limits.base_throughput, limits.max_throughput
    )
    if throughput > iops * limits.throughput_per_iops:
        problems.add(
            "gp3Throughput",
            f"{throughput} MiB/s needs at least {int(throughput / limits.throughput_per_iops)} IOPS "
            f"(gp3 allows {limits.throughput_per_iops} MiB/s per IOPS); gp3Iops is {iops}",
        )
    return StorageSettings(
        gp3_class_name=names["gp3ClassName"],
        fs_type=parse_choice(problems, "gp3FsType", values.get("gp3FsType"), "ext4", FS_TYPES),
        encrypted=encrypted,
        kms_key_id=kms_key_id,
        iops=iops,
        throughput=throughput,
        demote_gp2=parse_bool(problems, "demoteGp2", values.get("demoteGp2"), True),
        gp2_class_name=names["gp2ClassName"],
        snapshot_class_name=names["snapshotClassName"],
    )


_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_K8S_MINOR = re.compile(r"^1\.\d{2}$")
# What a StackReference accepts: `stack`, or `org/project/stack` (Pulumi docs, "Stacks": stack
# names hold letters, digits, hyphens, underscores and periods). `project/stack` would be read as
# `org/stack`, so it is refused.
_STACK_PART = r"[A-Za-z0-9_.-]+"
_STACK_NAME = re.compile(rf"(?:{_STACK_PART}/{_STACK_PART}/)?{_STACK_PART}")


_REHEARSAL_KEYS = (
    "rehearsalNodeType",
    "rehearsalNodeCount",
    "rehearsalKubernetesVersion",
    "rehearsalVpcId",
    "rehearsalSubnetIds",
)
_VPC_ID = re.compile(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")


def _rehearsal(
    problems: Problems, values: Mapping[str, Any], cluster: ClusterSettings, driver: DriverSettings
) -> RehearsalSettings | None:
    enabled = parse_bool(problems, "rehearsal", values.get("rehearsal"), False)
    if not enabled:
        for key in _REHEARSAL_KEYS:
            if key in values:
                problems.add(key, "is only used with rehearsal: true")
        return None
    if cluster.kubeconfig:
        problems.add("kubeconfig", "cannot be set with rehearsal: true (the program builds the cluster it talks to)")
    if driver.create_oidc_provider:
        problems.add("createOidcProvider", "must be false with rehearsal: true (pulumi-eks creates the provider)")
    node_type = parse_str(
        problems,
        "rehearsalNodeType",
        values.get("rehearsalNodeType"),
        check=lambda v: None if _INSTANCE_TYPE.match(v) else "is not an EC2 instance type such as t3.medium",
    )
    version = parse_str(
        problems,
        "rehearsalKubernetesVersion",
        values.get("rehearsalKubernetesVersion"),
        check=_eks_version_problem,
    )
    vpc_id, subnet_ids = _rehearsal_network(problems, values)
    return RehearsalSettings(
        region=cluster.region,
        node_type=node_type or "t3.medium",
        node_count=parse_int(problems, "rehearsalNodeCount", values.get("rehearsalNodeCount"), 2, 1, 5),
        kubernetes_version=version or versions.REHEARSAL_KUBERNETES_VERSION,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
    )


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def _eks_version_problem(version: str) -> str | None:
    """Refuse what would bill extended support or what EKS no longer (or not yet) offers, as of the
    dated table in versions.py."""
    if not _K8S_MINOR.fullmatch(version):
        return "is not a Kubernetes minor version such as 1.35"
    standard = ", ".join(sorted(versions.EKS_STANDARD_SUPPORT_UNTIL, key=_minor))
    as_of = versions.EKS_VERSIONS_AS_OF
    if version in versions.EKS_EXTENDED_SUPPORT_UNTIL:
        return (
            f"is in EKS extended support (as of {as_of}), which bills the control plane "
            f"${versions.EKS_EXTENDED_SUPPORT_USD_PER_HOUR:.2f}/h instead of "
            f"${versions.EKS_STANDARD_SUPPORT_USD_PER_HOUR:.2f}/h: use one in standard support ({standard})"
        )
    if version in versions.EKS_STANDARD_SUPPORT_UNTIL:
        return None
    if _minor(version) < min(_minor(v) for v in versions.EKS_EXTENDED_SUPPORT_UNTIL):
        return f"is past the end of EKS support (as of {as_of}); EKS creates no cluster on it: use one of {standard}"
    return (
        f"is not a version EKS offers as of {as_of} (standard support: {standard}); if it is now, "
        "add it to EKS_STANDARD_SUPPORT_UNTIL in gp3migrate/versions.py"
    )


def _rehearsal_network(problems: Problems, values: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """An existing VPC and at least two of its subnets, or neither (the program creates a VPC)."""
    vpc_id = parse_str(
        problems,
        "rehearsalVpcId",
        values.get("rehearsalVpcId"),
        check=lambda v: None if _VPC_ID.fullmatch(v) else "is not a VPC id (vpc- and 8 or 17 hex digits)",
    )
    raw = parse_structured(values.get("rehearsalSubnetIds"))
    subnet_ids: list[str] = []
    if raw is not None and not isinstance(raw, list):
        problems.add("rehearsalSubnetIds", f"{show(raw)} is not a list of subnet ids")
    for i, subnet in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(subnet, str) or not _SUBNET_ID.fullmatch(subnet):
            problems.add(
                f"rehearsalSubnetIds[{i}]", f"{show(subnet)} is not a subnet id (subnet- and 8 or 17 hex digits)"
            )
        elif subnet in subnet_ids:
            problems.add(f"rehearsalSubnetIds[{i}]", f"{show(subnet)} is listed twice")
        else:
            subnet_ids.append(subnet)
    if "rehearsalVpcId" in values and "rehearsalSubnetIds" not in values:
        problems.add("rehearsalSubnetIds", "is required with rehearsalVpcId (subnets of that VPC in two or more zones)")
    elif "rehearsalSubnetIds" in values and "rehearsalVpcId" not in values:
        problems.add("rehearsalVpcId", "is required with rehearsalSubnetIds (the VPC those subnets are in)")
    elif isinstance(raw, list) and len(raw) < 2:
        # EKS user guide, "VPC and subnet requirements": at least two subnets in different zones.
        problems.add("rehearsalSubnetIds", f"{show(raw)} lists fewer than 2 subnets; EKS needs two or more zones")
    return vpc_id, tuple(subnet_ids)


def _promotion(problems: Problems, values: Mapping[str, Any]) -> PromotionSettings | None:
    # An empty promoteFrom is not refused: it is what the Pulumi CLI hands over for a stack that
    # does not set the key (its declared default), so it cannot mean anything else.
    from_stack = parse_str(
        problems,
        "promoteFrom",
        values.get("promoteFrom"),
        check=lambda v: (
            None
            if _STACK_NAME.fullmatch(v)
            else "is not a stack name: use `stack` or `org/project/stack`, each part letters, digits, '-', '_' or '.'"
        ),
    )
    reason = parse_str(problems, "promotionOverride", values.get("promotionOverride"))
    if reason is not None and from_stack is None:
        problems.add("promotionOverride", "is only used with promoteFrom")
    elif reason is not None and len(reason.strip()) < 10:
        problems.add(
            "promotionOverride", f"{show(reason)} is too short: say why the gate is overridden (10+ characters)"
        )
    if from_stack is None:
        return None
    return PromotionSettings(from_stack=from_stack, override_reason=reason)


_MIGRATION_KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _forget(problems: Problems, values: Mapping[str, Any]) -> tuple[str, ...]:
    raw = parse_structured(values.get("forget"))
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("forget", f"{show(raw)} is not a list of migration keys (<namespace>/<claim>)")
        return ()
    keys: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not _MIGRATION_KEY.match(item):
            problems.add(f"forget[{i}]", f"{show(item)} is not a migration key (<namespace>/<claim>)")
        elif item in keys:
            problems.add(f"forget[{i}]", f"{show(item)} is listed twice")
        else:
            keys.append(item)
    return tuple(keys)
