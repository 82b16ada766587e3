"""The stack config, read once into frozen, validated settings.

`StackConfig` is the one model of the stack's keys (`eks-gp3-migration:<key>` in
`Pulumi.<stack>.yaml`): their types, defaults and descriptions, the check of each value, and the
rules between keys. README "Config reference" and schema/stack-file.schema.json are generated from
it (gp3migrate/config/reference.py), and Pulumi.yaml declares the same keys. A rule between keys
sits on the key it names and reads the keys declared before it, so it is checked, and reported
with every other problem, whenever those keys are valid; the fields are declared in that order.

`load_settings` either returns complete settings or raises ConfigError listing every problem: the
program registers nothing before it. `Settings` is the program's grouped view of the keys.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails

from gp3migrate import naming, versions
from gp3migrate.config.field_readers import (
    Keys,
    a_list,
    check_whole_number,
    flag,
    listed_once,
    moved,
    one_of,
    raise_all,
    refuse,
    refuse_all,
    region_of,
    stack_file_context,
    structured,
    text,
    whole_number,
)
from gp3migrate.config.migration_entry import FsType, MigrationSettings, driver_fs_type, read_entry
from gp3migrate.config.problems import PROBLEM, ConfigError, problems_of, show
from gp3migrate.config.waves import WaveSettings, assign
from gp3migrate.volume_types.sizing import (
    DEFAULT_PERFORMANCE_POLICY,
    GP3_LIMITS,
    Gp3Limits,
    PerformancePolicy,
    gp3_limits_for,
)

PROJECT = "eks-gp3-migration"

# present: the driver already running is kept as it is (not managed by this stack).
DriverInstall = Literal["helm", "addon", "present"]
DriverIdentity = Literal["irsa", "pod-identity"]
ManagedPolicy = Literal["v1", "v2"]
SnapshotSupport = Literal["manifests", "addon", "present"]

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_SNAPSHOTTER_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
# EKS add-on versions look like v1.53.0-eksbuild.1 (DescribeAddonVersions).
_ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
_IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_AWS_TAG_KEY_RESERVED = "aws:"
# Tag keys extraVolumeTags may not set (issue 23): what this program writes and its runner policy's
# conditions trust (`eks-gp3-migration/` on snapshots, gp3migrate/planning/restore.py snapshot_tags;
# the driver's `ebs.csi.aws.com/cluster`; `kubernetes.io/cluster/<cluster>`; the in-tree
# `kubernetes.io/created-for/*`), and what the driver itself refuses as extra tags and will not
# start with (aws-ebs-csi-driver pkg/driver/validation.go validateExtraTags: CSIVolumeName,
# CSIVolumeSnapshotName, the `kubernetes.io` and `ebs.csi.aws.com/` prefixes). Compared without case.
RESERVED_TAG_PREFIXES = ("aws:", "kubernetes.io", f"{versions.CSI_DRIVER}/", "eks-gp3-migration/")
RESERVED_TAG_KEYS = ("CSIVolumeName", "CSIVolumeSnapshotName")
_VPC_ID = re.compile(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_MIGRATION_KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_K8S_MINOR = re.compile(r"^1\.\d{2}$")
# What a StackReference accepts: `stack`, or `org/project/stack` (Pulumi docs, "Stacks": stack
# names hold letters, digits, hyphens, underscores and periods). `project/stack` would be read as
# `org/stack`, so it is refused.
_STACK_PART = r"[A-Za-z0-9_.-]+"
_STACK_NAME = re.compile(rf"(?:{_STACK_PART}/{_STACK_PART}/)?{_STACK_PART}")


def _minor(version: str) -> int:
    return int(version.split(".")[1])


# HonorPVReclaimPolicy, on by default from Kubernetes 1.31 (KEP-2644; kubernetes blog "Kubernetes
# 1.31: Prevent PersistentVolume Leaks When Deleting out of Order"): only then is a PV's reclaim
# policy honoured whatever is deleted first; before it, a PV object deleted before its claim leaks
# its volume, and the PV controller has no deleter for a statically provisioned CSI PV.
HONOR_RECLAIM_POLICY_SINCE = "1.31"


def _k8s_minor_problem(version: str) -> str | None:
    return None if _K8S_MINOR.fullmatch(version) else "is not a Kubernetes minor version such as 1.31"


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


def _matches(pattern: re.Pattern[str], problem: str) -> Any:
    return lambda value: None if pattern.fullmatch(value) else problem


def _kms_key_arn(raw: Any, info: ValidationInfo) -> str:
    if not isinstance(raw, str) or naming.kms_key_arn_problem(raw):
        raise refuse(f"{show(raw)} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
    region = region_of(info)
    if region and f":kms:{region}:" not in raw:
        raise refuse(f"{show(raw)} is not in the cluster's region {region}")
    return raw


def _subnet_id(raw: Any) -> str:
    if not isinstance(raw, str) or not _SUBNET_ID.fullmatch(raw):
        raise refuse(f"{show(raw)} is not a subnet id (subnet- and 8 or 17 hex digits)")
    return raw


def _migration_key(raw: Any) -> str:
    if not isinstance(raw, str) or not _MIGRATION_KEY.fullmatch(raw):
        raise refuse(f"{show(raw)} is not a migration key (<namespace>/<claim>)")
    return raw


def _volume_tags(raw: Any) -> Any:
    tags = structured(raw)
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise refuse(f"{show(tags)} is not a map of tag keys to values")
    problems = []
    for key, value in tags.items():
        # EC2 tag limits: key 1-128 characters, value up to 256, no "aws:" prefix (EC2 tagging docs).
        if not 1 <= len(key) <= 128 or key.lower().startswith(_AWS_TAG_KEY_RESERVED):
            problems.append(((key,), "is not an allowed tag key (1-128 characters, not starting with 'aws:')"))
        elif key.lower().startswith(RESERVED_TAG_PREFIXES) or key.lower() in {k.lower() for k in RESERVED_TAG_KEYS}:
            reserved = ", ".join([*(f"{p}*" for p in RESERVED_TAG_PREFIXES[1:]), *RESERVED_TAG_KEYS])
            problems.append(
                ((key,), f"is reserved: this program or the EBS CSI driver writes it ({reserved}); use another key")
            )
        elif not isinstance(value, str) or len(value) > 256:
            problems.append(((key,), f"{show(value)} is not a tag value (a string of at most 256 characters)"))
    if problems:
        raise refuse_all(problems, "extraVolumeTags")
    return tags


def _gp3_limits(info: ValidationInfo) -> Gp3Limits:
    region = region_of(info)
    return gp3_limits_for(region) if region else GP3_LIMITS


def _gp3_iops(raw: Any, info: ValidationInfo) -> int:
    limits = _gp3_limits(info)
    return check_whole_number(raw, limits.base_iops, limits.max_iops)


def _gp3_throughput(raw: Any, info: ValidationInfo) -> int:
    limits = _gp3_limits(info)
    return check_whole_number(raw, limits.base_throughput, limits.max_throughput)


def _only_with_rehearsal(raw: Any, info: ValidationInfo) -> Any:
    """Before the key's own check: without rehearsal: true the key means nothing, whatever it holds."""
    if raw is not None and (info.data or {}).get("rehearsal") is False:
        raise refuse("is only used with rehearsal: true")
    return raw


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """The existing EKS cluster being migrated, and how to reach its API."""

    name: str
    region: str
    # A kubeconfig (path or content) that replaces the one built from the cluster lookup.
    kubeconfig: str | None
    kube_context: str | None
    # Passed to `aws eks get-token --role-arn` in the built kubeconfig.
    kubeconfig_role_arn: str | None


@dataclass(frozen=True, kw_only=True)
class DriverSettings:
    install: DriverInstall
    # Import the Helm release / EKS add-on already running, changing nothing of it until false again.
    adopt: bool
    chart_version: str
    addon_version: str | None
    # With `present`: the version that runs (discovery records it); checked against the minimum.
    running_version: str | None
    identity: DriverIdentity
    create_oidc_provider: bool
    managed_policy: ManagedPolicy
    kms_key_arns: tuple[str, ...]
    # Sorted (key, value) pairs: a deterministic order for the chart values.
    extra_volume_tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class SnapshotSettings:
    support: SnapshotSupport
    snapshotter_version: str
    addon_version: str | None


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    gp3_class_name: str
    fs_type: FsType
    encrypted: bool
    kms_key_id: str | None
    iops: int
    throughput: int
    demote_gp2: bool
    gp2_class_name: str
    snapshot_class_name: str


@dataclass(frozen=True, kw_only=True)
class RehearsalSettings:
    """A throwaway cluster the program creates itself (pulumi-eks), with the demo workload."""

    # The stack's `region`: the cluster is built through an explicit provider for it.
    region: str
    node_type: str
    node_count: int
    kubernetes_version: str
    # An existing VPC and its subnets; without them the program creates a small VPC.
    vpc_id: str | None
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PromotionSettings:
    """This stack may only do what the named stack has already done (see gp3migrate/promotion)."""

    from_stack: str
    # A non-empty reason lets the stack go ahead anyway; it is logged and published.
    override_reason: str | None


@dataclass(frozen=True, kw_only=True)
class Settings:
    cluster: ClusterSettings
    driver: DriverSettings
    snapshots: SnapshotSettings
    storage: StorageSettings
    migrations: tuple[MigrationSettings, ...]
    # In order, the canary first (gp3migrate/config/waves.py); each entry names its own (`entry.wave`).
    waves: tuple[WaveSettings, ...]
    rehearsal: RehearsalSettings | None
    promotion: PromotionSettings | None
    # `<namespace>/<claim>` keys of migrations removed from `migrations` on purpose although their
    # last applied phase needs them (gp3migrate/config/transitions.py check_forgotten).
    forget: tuple[str, ...]
    # What the gp3 plan matches of gp2 (gp3migrate/volume_types/sizing.py); a migration entry may override it.
    performance: PerformancePolicy

    @property
    def gp3_limits(self) -> Gp3Limits:
        return gp3_limits_for(self.cluster.region)


class StackConfig(Keys):
    """The keys of `Pulumi.<stack>.yaml` (without the `eks-gp3-migration:` prefix)."""

    # --- the cluster -------------------------------------------------------------------------
    cluster_name: Annotated[
        str,
        text(required=True, check=naming.eks_cluster_name_problem, what="the name of the existing EKS cluster"),
    ] = Field(description="The existing EKS cluster (looked up, never changed).")
    region: Annotated[
        str, text(required=True, check=naming.region_problem, what="the cluster's AWS region, e.g. eu-central-1")
    ] = Field(description="Its AWS region, e.g. `eu-central-1`.")
    kubernetes_version: Annotated[str | None, text(check=_k8s_minor_problem)] = Field(
        default=None,
        description="The cluster's Kubernetes minor version, e.g. `1.31` (set it by hand: `kubectl version`): "
        f"`migrations[].finalReclaimPolicy: Delete` needs {HONOR_RECLAIM_POLICY_SINCE} or later and is refused "
        "without it.",
    )
    rehearsal: Annotated[bool, flag()] = Field(
        default=False,
        description="Create the cluster with pulumi-eks (with the demo workload) instead of looking it up; "
        "see the `rehearsal…` keys.",
    )
    kubeconfig: Annotated[str | None, text()] = Field(
        default=None,
        description="A kubeconfig (path or content) to use instead of the one built from the lookup; may be a "
        "secret. Not with `rehearsal`.",
    )
    kube_context: Annotated[str | None, text()] = Field(default=None, description="The kubeconfig context to use.")
    kubeconfig_role_arn: Annotated[
        str | None, text(check=_matches(_IAM_ROLE_ARN, "is not an IAM role ARN"), what="an IAM role ARN")
    ] = Field(default=None, description="Role for `aws eks get-token --role-arn` in the built kubeconfig.")
    # --- the EBS CSI driver ------------------------------------------------------------------
    driver_install: Annotated[DriverInstall, one_of(DriverInstall)] = Field(
        default="helm",
        description="`present` (keep the driver the cluster runs: no install, no driver role; what every EKS "
        ">= 1.23 cluster with working in-tree volumes needs, and what dev and prod use; before any migration step "
        "the `up` checks that its `ebs-csi-controller` runs the `csi-snapshotter` sidecar and, when KMS keys are "
        "in use, that its role may use them — `components/driver_check_provider.py`), `helm` (chart "
        "`aws-ebs-csi-driver`) or `addon` (EKS add-on) — the last two only on a cluster that runs no driver: "
        "installing over a running one fails.",
    )
    driver_version: Annotated[str | None, text(check=versions.driver_version_problem)] = Field(
        default=None,
        description=f"With `present`: the driver version that runs, e.g. `v1.53.0-eksbuild.1`; at least "
        f"`{versions.EBS_CSI_MIN_DRIVER_VERSION}`; published to the promotion gate.",
    )
    driver_adopt: Annotated[bool, flag()] = Field(
        default=False,
        description="`true`: import the Helm release / EKS add-on already running and change nothing of it: its "
        "version and values (add-on: version, configuration, role) are kept as they run, and checked as a `present` "
        "driver's are (helm or addon only; discovery proposes it with the running version). Set it back to `false` "
        "in a later `up` to move the driver to this stack's pinned version and values: an update `pulumi preview` "
        "shows.",
    )
    driver_chart_version: Annotated[str, text(check=_matches(_SEMVER, "is not a chart version such as 2.64.0"))] = (
        Field(default=versions.EBS_CSI_CHART_VERSION, description="Chart version (helm).")
    )
    driver_addon_version: Annotated[
        str | None,
        text(check=_matches(_ADDON_VERSION, "is not an add-on version such as v1.53.0-eksbuild.1"), none=True),
    ] = Field(
        default=None,
        validate_default=True,
        description="EKS add-on version, required with `addon`, e.g. `v1.53.0-eksbuild.1`.",
    )
    driver_identity: Annotated[DriverIdentity, one_of(DriverIdentity)] = Field(
        default="irsa", description="`irsa` or `pod-identity` (needs the EKS Pod Identity Agent add-on)."
    )
    create_oidc_provider: Annotated[bool, flag()] = Field(
        default=False, description="Create the IAM OIDC provider instead of looking it up (not with `rehearsal`)."
    )
    managed_policy: Annotated[ManagedPolicy, one_of(ManagedPolicy)] = Field(
        default="v1",
        description="`v1` (`service-role/AmazonEBSCSIDriverPolicy`) or `v2` (`AmazonEBSCSIDriverPolicyV2`, looked "
        "up by name); never both.",
    )
    kms_key_arns: Annotated[tuple[Annotated[str, BeforeValidator(_kms_key_arn)], ...], a_list("KMS key ARNs")] = Field(
        default=(),
        description="Customer-managed KMS key ARNs (in the cluster's region) the driver may use; a KMS policy is "
        "added only when set.",
    )
    extra_volume_tags: Annotated[dict[str, str], BeforeValidator(_volume_tags)] = Field(
        default_factory=dict,
        description="Tags (key to value) on every volume the driver creates (also on migration snapshots).",
    )
    # --- snapshots ---------------------------------------------------------------------------
    snapshot_support: Annotated[SnapshotSupport, one_of(SnapshotSupport)] = Field(
        default="manifests",
        description="`manifests` (the pinned external-snapshotter release), `addon` (EKS `snapshot-controller`), "
        "`present`.",
    )
    snapshotter_version: Annotated[
        str, text(check=_matches(_SNAPSHOTTER_VERSION, "is not a release tag such as v8.6.0"))
    ] = Field(default=versions.SNAPSHOTTER_VERSION, description="external-snapshotter release for `manifests`.")
    snapshot_controller_addon_version: Annotated[
        str | None,
        text(check=_matches(_ADDON_VERSION, "is not an add-on version such as v8.2.0-eksbuild.1"), none=True),
    ] = Field(
        default=None,
        validate_default=True,
        description="EKS `snapshot-controller` add-on version, required with `addon`, e.g. `v8.3.0-eksbuild.1`.",
    )
    # --- storage classes ---------------------------------------------------------------------
    demote_gp2: Annotated[bool, flag()] = Field(
        default=True,
        description="Patch `gp2` to non-default, then make gp3 the default; `false` leaves gp2 alone and gp3 "
        "non-default.",
    )
    gp2_class_name: Annotated[str, text(check=naming.dns1123_subdomain_problem)] = Field(
        default="gp2", description="The in-tree class to demote."
    )
    gp3_class_name: Annotated[str, text(check=naming.dns1123_subdomain_problem)] = Field(
        default="gp3", validate_default=True, description="The main gp3 class; not `gp2ClassName`."
    )
    gp3_fs_type: Annotated[FsType, driver_fs_type()] = Field(
        default="ext4",
        description="Filesystem of new gp3 volumes: ext4, xfs or ext3 (the ones the EBS CSI driver mounts).",
    )
    gp3_encrypted: Annotated[bool, flag()] = Field(default=True, description="Encrypt new gp3 volumes.")
    gp3_kms_key_id: Annotated[str | None, text(check=naming.kms_key_arn_problem)] = Field(
        default=None, description="Key ARN for new gp3 volumes; must be in `kmsKeyArns`."
    )
    gp3_iops: Annotated[int, BeforeValidator(_gp3_iops)] = Field(
        default=3000, description="IOPS of the main gp3 class (gp3's limits in the region)."
    )
    gp3_throughput: Annotated[int, BeforeValidator(_gp3_throughput)] = Field(
        default=125, description="Throughput in MiB/s of the main gp3 class (at most 0.25 MiB/s per IOPS)."
    )
    snapshot_class_name: Annotated[str, text(check=naming.dns1123_subdomain_problem)] = Field(
        default="ebs-csi-aws", description="The VolumeSnapshotClass."
    )
    performance: Annotated[PerformancePolicy, one_of(PerformancePolicy)] = Field(
        default=DEFAULT_PERFORMANCE_POLICY,
        description="What each volume's gp3 plan matches of gp2: `sustained` (gp2 without burst credits) or `peak` "
        "(gp2's burst included, all the time); `migrations[].performance` overrides it per volume; see "
        '"Performance and price".',
    )
    # --- the rehearsal cluster (rehearsal: true only) ----------------------------------------
    rehearsal_node_type: Annotated[
        str, text(check=_matches(_INSTANCE_TYPE, "is not an EC2 instance type such as t3.medium"))
    ] = Field(default="t3.medium", description="Instance type of the rehearsal cluster's managed node group.")
    rehearsal_node_count: Annotated[int, whole_number(1, 5)] = Field(
        default=2, description="Nodes in the rehearsal cluster (at most 5)."
    )
    rehearsal_kubernetes_version: Annotated[str, text(check=_eks_version_problem)] = Field(
        default=versions.REHEARSAL_KUBERNETES_VERSION,
        description="Kubernetes version of the rehearsal cluster; it must be in EKS standard support "
        f"({', '.join(sorted(versions.EKS_STANDARD_SUPPORT_UNTIL, key=_minor))} as of {versions.EKS_VERSIONS_AS_OF}, "
        f"`gp3migrate/versions.py`): extended support bills the control plane "
        f"${versions.EKS_EXTENDED_SUPPORT_USD_PER_HOUR:.2f}/h instead of "
        f"${versions.EKS_STANDARD_SUPPORT_USD_PER_HOUR:.2f}/h.",
    )
    rehearsal_vpc_id: Annotated[
        str | None, text(check=_matches(_VPC_ID, "is not a VPC id (vpc- and 8 or 17 hex digits)"))
    ] = Field(
        default=None,
        description="An existing VPC (`vpc-…`) for the rehearsal cluster, with `rehearsalSubnetIds` (default none: "
        "a VPC is created).",
    )
    rehearsal_subnet_ids: Annotated[tuple[Annotated[str, BeforeValidator(_subnet_id)], ...], a_list("subnet ids")] = (
        Field(
            default=(),
            description="Two or more subnets (`subnet-…`) of `rehearsalVpcId` in different zones, where nodes can "
            "reach the internet (NAT or public IPs); both or neither.",
        )
    )
    # --- promotion ---------------------------------------------------------------------------
    promote_from: Annotated[
        str | None,
        text(
            check=_matches(
                _STACK_NAME,
                "is not a stack name: use `stack` or `org/project/stack`, each part letters, digits, '-', '_' or '.'",
            )
        ),
    ] = Field(
        default=None, description="Stack whose proven versions and phases gate this one (`dev` or `org/project/dev`)."
    )
    promotion_override: Annotated[str | None, text()] = Field(
        default=None, description="Reason (10+ characters) to go ahead although the gate refuses (logged, published)."
    )
    # --- the volumes -------------------------------------------------------------------------
    waves: Annotated[tuple[WaveSettings, ...], a_list("waves (maps with name, select and phase)")] = Field(
        default=(),
        description="The entries in ordered groups that advance together, the first the canary; each a map "
        "(below). An entry's phase is its wave's unless it sets its own; an entry in two waves, or a workload "
        "split between waves, is refused; an entry in none is warned about.",
    )
    migrations: tuple[MigrationSettings, ...] = Field(
        default=(),
        description="The volumes to migrate, one map per volume (below); `gp3migrate discover --write` proposes them.",
    )
    forget: Annotated[
        tuple[Annotated[str, BeforeValidator(_migration_key)], ...],
        a_list("migration keys (<namespace>/<claim>)"),
    ] = Field(
        default=(),
        description="`<namespace>/<claim>` of entries removed from `migrations` on purpose although their last "
        "applied phase is `cutover` or `rollback` (otherwise refused at preview); an item naming nothing applied, "
        "or still in `migrations`, is refused.",
    )

    # --- rules between keys: each on the key it names, reading keys declared before it --------

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and info.data.get("rehearsal"):
            raise refuse("cannot be set with rehearsal: true (the program builds the cluster it talks to)")
        return value

    @field_validator("driver_adopt")
    @classmethod
    def _driver_adopt(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("driver_install") == "present":
            raise refuse(
                "true needs driverInstall helm or addon (the install to import); "
                "present keeps the running driver unmanaged"
            )
        return value

    @field_validator("driver_addon_version")
    @classmethod
    def _driver_addon_version(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("driver_install") == "addon":
            raise refuse(
                "is required when driverInstall is 'addon' (pin it, e.g. v1.53.0-eksbuild.1; "
                "list them with `aws eks describe-addon-versions --addon-name aws-ebs-csi-driver`)"
            )
        return value

    @field_validator("create_oidc_provider")
    @classmethod
    def _create_oidc_provider(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("rehearsal"):
            raise refuse("must be false with rehearsal: true (pulumi-eks creates the provider)")
        return value

    @field_validator("kms_key_arns")
    @classmethod
    def _kms_key_arns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        listed_once(value, "kmsKeyArns")
        return tuple(sorted(value))

    @field_validator("snapshot_controller_addon_version")
    @classmethod
    def _snapshot_controller_addon_version(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("snapshot_support") == "addon":
            raise refuse(
                "is required when snapshotSupport is 'addon' (pin it; list them with "
                "`aws eks describe-addon-versions --addon-name snapshot-controller`)"
            )
        return value

    @field_validator("gp3_class_name")
    @classmethod
    def _gp3_class_name(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("gp2_class_name"):
            raise refuse(f"{show(value)} must differ from gp2ClassName")
        return value

    @field_validator("gp3_kms_key_id")
    @classmethod
    def _gp3_kms_key_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        problems = []
        if value and info.data.get("gp3_encrypted") is False:
            problems.append(((), "is set but gp3Encrypted is false; set gp3Encrypted: true or remove the key"))
        if value and "kms_key_arns" in info.data and value not in info.data["kms_key_arns"]:
            problems.append(((), f"{show(value)} must also be listed in kmsKeyArns so the driver may use it"))
        if problems:
            raise refuse_all(problems, "gp3KmsKeyId")
        return value

    @field_validator("gp3_throughput")
    @classmethod
    def _gp3_throughput(cls, value: int, info: ValidationInfo) -> int:
        limits, iops = _gp3_limits(info), info.data.get("gp3_iops")
        if iops is not None and value > iops * limits.throughput_per_iops:
            raise refuse(
                f"{value} MiB/s needs at least {int(value / limits.throughput_per_iops)} IOPS "
                f"(gp3 allows {limits.throughput_per_iops} MiB/s per IOPS); gp3Iops is {iops}"
            )
        return value

    # Set without rehearsal: true, they would be silently ignored.
    _rehearsal_keys = field_validator(
        "rehearsal_node_type",
        "rehearsal_node_count",
        "rehearsal_kubernetes_version",
        "rehearsal_vpc_id",
        "rehearsal_subnet_ids",
        mode="before",
    )(_only_with_rehearsal)

    @field_validator("rehearsal_subnet_ids")
    @classmethod
    def _subnets_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        listed_once(value, "rehearsalSubnetIds")
        return value

    @field_validator("promotion_override")
    @classmethod
    def _promotion_override(cls, value: str | None, info: ValidationInfo) -> str | None:
        # An empty promoteFrom is not refused: it is what the Pulumi CLI hands over for a stack that
        # does not set the key (its declared default), so it cannot mean anything else.
        if value is not None and "promote_from" in info.data and info.data["promote_from"] is None:
            raise refuse("is only used with promoteFrom")
        if value is not None and len(value.strip()) < 10:
            raise refuse(f"{show(value)} is too short: say why the gate is overridden (10+ characters)")
        return value

    @field_validator("migrations", mode="wrap")
    @classmethod
    def _migrations(cls, raw: Any, handler: Any, info: ValidationInfo) -> tuple[MigrationSettings, ...]:
        """Each entry on its own, so one entry's problems do not hide another's; then the rules
        between entries, and between an entry and the stack's keys, on the entries that are valid."""
        items = structured(raw)
        if items is None:
            return ()
        if not isinstance(items, list):
            raise refuse(f"{show(items)} is not a list of migration entries")
        region = str(info.data.get("region") or "")
        problems: list[InitErrorDetails] = []
        indexed: list[tuple[int, MigrationSettings]] = []
        for index, item in enumerate(items):
            try:
                indexed.append((index, read_entry(item, region=region)))
            except ValidationError as err:
                problems += moved(err, index)
        indexed, wave_problems = _in_waves(items, indexed, info.data.get("waves"), region)
        problems += wave_problems
        problems += _shared_by_two(indexed)
        problems += _source_keys(indexed, info.data.get("kms_key_arns"), region, info.data.get("driver_install"))
        problems += _reclaim_delete(indexed, info.data.get("kubernetes_version"))
        raise_all(problems, "migrations")
        return tuple(entry for _, entry in indexed)

    @field_validator("waves")
    @classmethod
    def _wave_names_once(cls, value: tuple[WaveSettings, ...]) -> tuple[WaveSettings, ...]:
        seen: dict[str, int] = {}
        twice = []
        for index, wave in enumerate(value):
            if seen.setdefault(wave.name, index) != index:
                twice.append(((index, "name"), f"{show(wave.name)} is also the name of waves[{seen[wave.name]}]"))
        if twice:
            raise refuse_all(twice, "waves")
        return value

    @field_validator("forget")
    @classmethod
    def _forget_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        listed_once(value, "forget")
        return value

    @model_validator(mode="after")
    def _rehearsal_network(self) -> Self:
        """An existing VPC and at least two of its subnets, or neither (the program creates a VPC)."""
        given = self.model_fields_set
        if not self.rehearsal:
            return self
        if "rehearsal_vpc_id" in given and "rehearsal_subnet_ids" not in given:
            raise refuse_all(
                [
                    (
                        ("rehearsalSubnetIds",),
                        "is required with rehearsalVpcId (subnets of that VPC in two or more zones)",
                    )
                ],
                "StackConfig",
            )
        if "rehearsal_subnet_ids" in given and "rehearsal_vpc_id" not in given:
            raise refuse_all(
                [(("rehearsalVpcId",), "is required with rehearsalSubnetIds (the VPC those subnets are in)")],
                "StackConfig",
            )
        if "rehearsal_subnet_ids" in given and len(self.rehearsal_subnet_ids) < 2:
            # EKS user guide, "VPC and subnet requirements": at least two subnets in different zones.
            raise refuse_all(
                [
                    (
                        ("rehearsalSubnetIds",),
                        f"{show(list(self.rehearsal_subnet_ids))} lists fewer than 2 subnets; EKS needs two or more "
                        "zones",
                    )
                ],
                "StackConfig",
            )
        return self

    def settings(self) -> "Settings":
        """The program's grouped view of the keys."""
        cluster = ClusterSettings(
            name=self.cluster_name,
            region=self.region,
            kubeconfig=self.kubeconfig,
            kube_context=self.kube_context,
            kubeconfig_role_arn=self.kubeconfig_role_arn,
        )
        return Settings(
            cluster=cluster,
            driver=DriverSettings(
                install=self.driver_install,
                adopt=self.driver_adopt,
                chart_version=self.driver_chart_version,
                addon_version=self.driver_addon_version,
                running_version=self.driver_version,
                identity=self.driver_identity,
                create_oidc_provider=self.create_oidc_provider,
                managed_policy=self.managed_policy,
                kms_key_arns=self.kms_key_arns,
                extra_volume_tags=tuple(sorted(self.extra_volume_tags.items())),
            ),
            snapshots=SnapshotSettings(
                support=self.snapshot_support,
                snapshotter_version=self.snapshotter_version,
                addon_version=self.snapshot_controller_addon_version,
            ),
            storage=StorageSettings(
                gp3_class_name=self.gp3_class_name,
                fs_type=self.gp3_fs_type,
                encrypted=self.gp3_encrypted,
                kms_key_id=self.gp3_kms_key_id,
                iops=self.gp3_iops,
                throughput=self.gp3_throughput,
                demote_gp2=self.demote_gp2,
                gp2_class_name=self.gp2_class_name,
                snapshot_class_name=self.snapshot_class_name,
            ),
            migrations=self.migrations,
            waves=self.waves,
            rehearsal=(
                RehearsalSettings(
                    region=self.region,
                    node_type=self.rehearsal_node_type,
                    node_count=self.rehearsal_node_count,
                    kubernetes_version=self.rehearsal_kubernetes_version,
                    vpc_id=self.rehearsal_vpc_id,
                    subnet_ids=self.rehearsal_subnet_ids,
                )
                if self.rehearsal
                else None
            ),
            promotion=(
                PromotionSettings(from_stack=self.promote_from, override_reason=self.promotion_override)
                if self.promote_from
                else None
            ),
            forget=self.forget,
            performance=self.performance,
        )


def _in_waves(
    items: list[Any], indexed: list[tuple[int, MigrationSettings]], waves: Any, region: str
) -> tuple[list[tuple[int, MigrationSettings]], list[InitErrorDetails]]:
    """Each valid entry with its wave, and its wave's phase when it sets none of its own (read
    again with it, so every rule of the entry checks the phase it will run). With waves that are
    not valid (reported at `waves`), entries keep their own phases."""
    if not waves:
        return indexed, []
    membership = assign(waves, indexed)
    problems = _details(membership.problems)
    placed: list[tuple[int, MigrationSettings]] = []
    for index, entry in indexed:
        position = membership.wave_of.get(index)
        wave = waves[position] if position is not None else None
        if wave is not None and wave.phase is not None and "phase" not in entry.model_fields_set:
            try:
                entry = read_entry({**items[index], "phase": wave.phase}, region=region)
            except ValidationError as err:
                # The entry was valid with its own phase: every problem is the wave's phase's.
                problems += _details(
                    [
                        (
                            (index, *line["loc"]),
                            f"{line['ctx']['problem']} (phase from waves[{position}] ({wave.name!r}))",
                        )
                        for line in err.errors(include_url=False)
                        if line["type"] == PROBLEM
                    ]
                )
                continue
            entry._phase_from_wave = True
        if wave is not None:
            entry._wave = wave.name
        placed.append((index, entry))
    return placed, problems


def _shared_by_two(indexed: list[tuple[int, MigrationSettings]]) -> list[InitErrorDetails]:
    """Two entries for one claim, PV or volume would race on the same data."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    first_use: dict[tuple[str, str], int] = {}
    for index, entry in indexed:
        uses = {
            ("claim", entry.key),
            ("pv", entry.pv),
            ("volumeId", entry.volume_id),
            # A new claim name must not be any entry's claim or new claim in the same namespace.
            ("claim", f"{entry.namespace}/{entry.new_claim_name}"),
            # Resource names join namespace and claim with '-': a/b-c and a-b/c would collide.
            ("claim", entry.resource_name),
        }
        for what, value in sorted(uses):
            other = first_use.setdefault((what, value), index)
            if other != index:
                problems.append(((index, what), f"{show(value)} is also used by migrations[{other}]"))
    return _details(problems)


def _source_keys(
    indexed: list[tuple[int, MigrationSettings]],
    kms_key_arns: tuple[str, ...] | None,
    region: str,
    driver_install: str | None = None,
) -> list[InitErrorDetails]:
    """A source encrypted with a customer-managed key the driver may not use fails in the downtime
    window: a copy's restore (CreateVolume from the snapshot) and a rehome's attach of the same
    volume through the CSI PV (EC2 AttachVolume has EBS create a grant on the key for the instance,
    so the caller needs kms:CreateGrant: EBS user guide, "Requirements for Amazon EBS encryption").
    Refused now, with the reason of the entry's strategy. Precopy needs no driver access to the key,
    so discovery may propose the entry and report it.

    With driverInstall: present the stack grants nothing (it does not own the role), so kmsKeyArns
    proves nothing either way: the running role's rights on every listed volume's key are checked
    live by the driver check before any migration step (gp3migrate/checks/driver_readiness.py,
    keys_in_use), and that refuses instead."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, entry in indexed:
        key = entry.kms_key_id
        if entry.phase != "cutover" or not entry.encrypted or not key or not key.startswith("arn:"):
            continue
        key_region = key.split(":")[3] if key.count(":") >= 5 else ""
        if key_region and key_region != region:
            problems.append(
                ((index, "kmsKeyId"), f"{show(key)} is in {key_region}, not in the stack's region {region}")
            )
        elif kms_key_arns is not None and key not in kms_key_arns and driver_install != "present":
            problems.append(
                ((index, "kmsKeyId"), f"{show(key)} ({entry.key}) is not in kmsKeyArns: {_key_need(entry)}")
            )
    return _details(problems)


def _key_need(entry: MigrationSettings) -> str:
    """What the driver does with the source's key at this entry's cutover, and the fix."""
    grant = "add the key to kmsKeyArns so the driver's role gets a grant for it"
    if entry.strategy == "copy":
        return f"the driver could not read the snapshot to restore it; {grant}"
    return (
        "the driver could not attach the volume through its new CSI PV (attaching a volume encrypted with a "
        f"customer-managed key needs kms:CreateGrant on the key); {grant}"
    )


def gp3_class_problems(settings: Settings) -> list[str]:
    """A listed volume's in-tree class named like gp3ClassName (an in-tree class called `gp3`
    exists in the wild) is a class this stack did not create: declaring its own under that name
    fails with AlreadyExists at the first `up`. Known at preview from the entries' pvStorageClass,
    which discovery records; a class no listed volume names is left to discovery's warning
    (gp3migrate/discovery/platform_scan.py). Checked by the program (components/stack_config.py),
    not by load_settings: discovery prices its entries with the default name."""
    name = settings.storage.gp3_class_name
    named = [(i, m) for i, m in enumerate(settings.migrations) if m.pv_storage_class == name]
    if not named:
        return []
    index, entry = named[0]
    return [
        f"gp3ClassName: {show(name)} is the in-tree class of migrations[{index}] ({entry.key}, pvStorageClass): the "
        "cluster has an in-tree StorageClass of that name, so the stack's gp3 class would fail with AlreadyExists; "
        f"set gp3ClassName to another name, e.g. {name}-csi"
    ]


def _reclaim_delete(indexed: list[tuple[int, MigrationSettings]], version: str | None) -> list[InitErrorDetails]:
    """finalReclaimPolicy: Delete hands the volume to the reclaim of a static CSI PV, which only a
    cluster honouring reclaim policies (HONOR_RECLAIM_POLICY_SINCE) carries out."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    need = HONOR_RECLAIM_POLICY_SINCE
    for index, entry in indexed:
        if entry.strategy != "rehome" or entry.final_reclaim_policy != "Delete":
            continue
        if version is None:
            why = f"needs Kubernetes {need} or later; set the stack's kubernetesVersion to the cluster's"
        elif _minor(version) < _minor(need):
            why = f"needs Kubernetes {need} or later; the stack's kubernetesVersion is {version}"
        else:
            continue
        problems.append(
            (
                (index, "finalReclaimPolicy"),
                f"'Delete' {why} (HonorPVReclaimPolicy, on by default since {need}: before it the static CSI "
                "PV's reclaim may never delete the EBS volume, which then leaks unseen). Keep Retain (the "
                "default) and delete the volume yourself when it is no longer needed",
            )
        )
    return _details(problems)


def _details(problems: list[tuple[tuple[str | int, ...], str]]) -> list[InitErrorDetails]:
    return [InitErrorDetails(type=refuse(message), loc=loc, input=None) for loc, message in problems]


# Every key this program reads, without the project prefix; each is declared in Pulumi.yaml.
ALL_KEYS = tuple(field.alias or name for name, field in StackConfig.model_fields.items())
# Keys Pulumi.yaml may declare as secret, so a stack file may hold them encrypted (`secure:`).
SECRET_KEYS = ("kubeconfig",)


def _declared_default(default: Any) -> Any:
    if isinstance(default, bool | int):
        return default
    if isinstance(default, tuple | list):
        return []
    if isinstance(default, dict):
        return {}
    return ""


# What Pulumi.yaml declares as the default of each optional key. The Pulumi CLI refuses every
# preview and up of a stack that leaves out a declared key without a default ("Stack 'dev' is
# missing configuration value", pulumi/pulumi pkg/workspace/config.go mergeConfig), and hands a
# default to the program as if the stack had set it. So each optional key declares one, and the
# program reads a value equal to it as not set: strings and lists declare the empty value (the
# model's default, which Pulumi.yaml's description names, then applies), booleans and integers
# the model's own default (tests/test_project_config.py holds them equal).
UNSET_DEFAULTS: Mapping[str, str | bool | int | list[Any] | dict[str, Any]] = {
    field.alias or name: _declared_default(field.get_default(call_default_factory=True))
    for name, field in StackConfig.model_fields.items()
    if not field.is_required()
}


def project_values(all_config: Mapping[str, Any], project: str = PROJECT) -> dict[str, Any]:
    """This project's keys without their `<project>:` prefix; other namespaces are not ours."""
    prefix = f"{project}:"
    return {k[len(prefix) :]: v for k, v in all_config.items() if k.startswith(prefix)}


def read_stack_config(values: Mapping[str, Any]) -> StackConfig:
    """This project's config values (prefix removed) as the model, or ConfigError naming every
    problem. A value equal to the key's declared default is read as not set (UNSET_DEFAULTS)."""
    values = {key: value for key, value in values.items() if not _is_declared_default(key, value)}
    try:
        return StackConfig.model_validate(values, by_alias=True, by_name=False, context=stack_file_context())
    except ValidationError as err:
        raise ConfigError(problems_of(err, StackConfig)) from None


def load_settings(values: Mapping[str, Any]) -> Settings:
    """Validate this project's config values (prefix removed) into Settings, or raise ConfigError."""
    return read_stack_config(values).settings()


def _is_declared_default(key: str, value: Any) -> bool:
    """Whether `value` is the key's declared default, as a Python value or as the runtime's text
    of it (`false`, `3000`, `[]`: the CLI hands lists and maps over as JSON)."""
    if key not in UNSET_DEFAULTS:
        return False
    default = UNSET_DEFAULTS[key]
    if isinstance(value, str):
        if isinstance(default, list | dict):
            return structured(value) == default
        return value == (json.dumps(default) if isinstance(default, bool) else str(default))
    # `type` too: 0 == False and 1 == True in Python, but not in a stack file.
    return type(value) is type(default) and value == default
