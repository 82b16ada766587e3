"""One `migrations[]` entry of the stack config: the facts discovery recorded about a volume, and
what the user asks of its migration. The model is the entry's reference: its fields are the keys
(README "Config reference" and schema/stack-file.schema.json are generated from them), their
readers the checks of one value, and `_rules` the checks between keys of one entry.

The stack config is the only source of the set of volumes to migrate (DESIGN invariant 1): the
program never asks the cluster which volumes exist, so a volume that vanishes from a query can never
become a planned delete.
"""

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticUseDefault

from gp3migrate import naming
from gp3migrate.config import claim_identity, window_owners
from gp3migrate.config.field_readers import (
    Keys,
    check_text,
    flag,
    one_of,
    refuse,
    refuse_all,
    region_of,
    stack_file_context,
    structured,
    text,
    whole_number,
)
from gp3migrate.config.phases import ClaimNaming, Phase, Quiesce
from gp3migrate.config.problems import show
from gp3migrate.volume_types.sizing import GP2_MAX_SIZE_GIB, PerformancePolicy

AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"]
VolumeMode = Literal["Filesystem", "Block"]
WorkloadKind = Literal["Deployment", "StatefulSet"]
Strategy = Literal["rehome", "modify", "copy"]
ReclaimPolicy = Literal["Retain", "Delete"]
SourceType = Literal["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"]
# Filesystems the EBS CSI driver mounts on Linux nodes: NodeStageVolume and NodePublishVolume refuse
# any other with InvalidArgument (aws-ebs-csi-driver pkg/driver/node.go ValidFSTypes: ext3, ext4,
# xfs, ntfs, the last for Windows nodes only; ext2 was dropped in commit 25703137, "Fix supported
# filesystem types"). A volume of another filesystem would leave its pod in ContainerCreating after
# the cutover, and a rollback goes through the same driver (CSI migration).
FsType = Literal["ext4", "xfs", "ext3"]


def driver_fs_type() -> BeforeValidator:
    """One of FsType, and why another is refused."""

    def read(raw: Any) -> Any:
        if raw is None:
            raise PydanticUseDefault()
        if raw not in _args(FsType):
            raise refuse(
                f"{show(raw)} is not one of {', '.join(_args(FsType))}: the EBS CSI driver mounts no other "
                "filesystem on Linux nodes (NodeStageVolume refuses it: aws-ebs-csi-driver pkg/driver/node.go "
                "ValidFSTypes), so its pods would never start; move the data to a volume with one of these first"
            )
        return raw

    return BeforeValidator(read)


# EBS volumes attach to one node: ReadWriteMany is not possible with ebs.csi.aws.com (driver README),
# so AccessMode leaves it out.
# Elastic Volumes cannot change a previous-generation magnetic volume (EBS user guide, "Requirements
# for EBS volume modifications"): only a copy moves it.
NOT_MODIFIABLE_TYPES = ("standard",)
NEW_CLAIM_SUFFIX = "-gp3"
# A Kubernetes quantity as a PV's spec.capacity.storage holds it: 1Gi, 500Mi, 10G, 1073741824, 1e9.
_QUANTITY = re.compile(r"^\d+(\.\d+)?([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


class WorkloadOwner(Keys):
    """The controller of a Deployment or StatefulSet (an operator's custom resource): it resets
    replicas, so the program must not scale the workload itself."""

    map_of = " with apiVersion, kind and name"

    api_version: Annotated[str, text(required=True, what="the owner's apiVersion")] = Field(
        description="The owner's apiVersion, e.g. acid.zalan.do/v1."
    )
    kind: Annotated[str, text(required=True, what="the owner's kind")] = Field(description="The owner's kind.")
    name: Annotated[str, text(required=True, what="the owner's name")] = Field(description="The owner's name.")


RetentionPolicy = Literal["Retain", "Delete"]


class ClaimRetention(Keys):
    """A StatefulSet's persistentVolumeClaimRetentionPolicy as discovery found it."""

    map_of = " with whenDeleted and whenScaled"

    when_deleted: Annotated[RetentionPolicy, one_of(RetentionPolicy)] = Field(
        default="Retain", description="`Retain` or `Delete`: the claims when the StatefulSet is deleted."
    )
    when_scaled: Annotated[RetentionPolicy, one_of(RetentionPolicy)] = Field(
        default="Retain", description="`Retain` or `Delete`: the claims of the pods a scale-down removes."
    )


class Owner(Keys):
    """Another controller that acts on the claim or its workload (gp3migrate/config/window_owners.py)."""

    map_of = " with kind, name and namespace"

    kind: Annotated[window_owners.OwnerKind, one_of(window_owners.OwnerKind, required="the owner's kind")] = Field(
        description="`Helm` (a release), `Application` (Argo CD), `Kustomization` or `HelmRelease` (Flux), "
        "`ScaledObject` (KEDA) or `HorizontalPodAutoscaler`."
    )
    name: Annotated[str, text(required=True, what="the owner's name")] = Field(description="The owner's name.")
    namespace: Annotated[str, text(required=True, what="the owner's namespace")] = Field(
        description="The owner's namespace (a Helm release's: `meta.helm.sh/release-namespace`)."
    )
    found_by: Annotated[str | None, text()] = Field(
        default=None, description="What named it: the label, annotation or object discovery read."
    )
    auto_sync: Annotated[bool | None, flag()] = Field(
        default=None,
        description="(Application) Whether it syncs automatically, when discovery could read it.",
    )
    suspended: Annotated[bool | None, flag()] = Field(
        default=None, description="(Kustomization, HelmRelease) Whether it was suspended, when discovery read it."
    )

    @property
    def acts_in_window(self) -> bool:
        return window_owners.acts_in_window(self.kind)

    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _owners(raw: Any) -> Any:
    value = structured(raw)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise refuse(f"{show(value)} is not a list of owners (maps with kind, name and namespace)")
    return value


class Workload(Keys):
    """What mounts the claim, as discovery found it; replicas is what scale-back restores."""

    map_of = " with kind, name and replicas"

    kind: Annotated[WorkloadKind, one_of(WorkloadKind, required="one of Deployment, StatefulSet")] = Field(
        description="Deployment or StatefulSet."
    )
    name: Annotated[str, text(required=True, check=naming.dns1123_subdomain_problem)] = Field(
        description="The workload's name, in the claim's namespace."
    )
    replicas: Annotated[int, whole_number(0, 10_000, required="the replicas to restore after the cutover")] = Field(
        description="The replicas to restore after the cutover."
    )
    template_storage_class: Annotated[str | None, text()] = Field(
        default=None,
        description="For a StatefulSet: the class its volumeClaimTemplates name (new replicas get that class).",
    )
    owner: WorkloadOwner | None = Field(
        default=None,
        description="The operator's resource that controls the workload ({apiVersion, kind, name}): "
        "`quiesce: scale` is then refused.",
    )
    claim_retention: ClaimRetention | None = Field(
        default=None,
        description="For a StatefulSet: its `persistentVolumeClaimRetentionPolicy` (`whenDeleted`, `whenScaled`); "
        "a cutover or rollback is refused while either is `Delete`, with the commands to set Retain and restore it.",
    )


def _string_map(raw: Any) -> Any:
    """Labels or annotations: a map of strings to strings."""
    value = structured(raw)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise refuse(f"{show(value)} is not a map of keys to string values")
    wrong = [((key,), f"{show(item)} is not a string") for key, item in value.items() if not isinstance(item, str)]
    if wrong:
        raise refuse_all(wrong, "ClaimMetadata")
    return value


class ClaimMetadata(Keys):
    """The source claim's labels and annotations as discovery found them, without those the
    controllers write for binding and provisioning and kubectl's last-applied-configuration
    (gp3migrate/config/claim_identity.py says why)."""

    map_of = " with labels and annotations"

    labels: Annotated[dict[str, str], BeforeValidator(_string_map)] = Field(
        default_factory=dict, description="The claim's labels."
    )
    annotations: Annotated[dict[str, str], BeforeValidator(_string_map)] = Field(
        default_factory=dict, description="The claim's annotations."
    )

    def copied(self) -> tuple[dict[str, str], dict[str, str]]:
        """(labels, annotations) a claim created in the source claim's place carries."""
        return claim_identity.copied(self.labels), claim_identity.copied(self.annotations)

    def ownership(self) -> dict[str, dict[str, str]]:
        return claim_identity.ownership(self.labels, self.annotations)


def _mount_options(raw: Any) -> Any:
    value = structured(raw)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise refuse(f"{show(value)} is not a list of mount options (strings)")
    return tuple(value)


def _zone(zone: str, info: ValidationInfo) -> str:
    region = region_of(info)
    problem = naming.zone_problem(zone, region) if region else None
    if problem:
        raise refuse(f"{show(zone)} {problem}")
    return zone


def _pv_storage_class(raw: Any) -> Any:
    """The source PV's class; "" is a recorded fact (a static PV without a class), not a gap."""
    if raw == "":
        return ""
    return check_text(raw, check=naming.dns1123_subdomain_problem, what="a StorageClass name or ''")


def _access_modes(raw: Any) -> Any:
    if raw is None:
        return ("ReadWriteOnce",)
    if not isinstance(raw, list) or not raw:
        raise refuse(f"{show(raw)} is not a non-empty list (allowed: {', '.join(_args(AccessMode))})")
    return raw


def _args(literal: Any) -> tuple[str, ...]:
    return tuple(literal.__args__)


def _quantity_problem(value: str) -> str | None:
    return None if _QUANTITY.fullmatch(value) else "is not a Kubernetes quantity such as 1Gi or 500Mi"


# Keys that belong to one strategy only: set for another, they would be silently ignored.
_STRATEGY_KEYS: dict[str, tuple[Strategy, ...]] = {
    "claim_naming": ("copy",),
    "new_claim_name": ("copy",),
    "delete_source": ("copy",),
    "delete_restored_claim": ("copy",),
    "safety_snapshot": ("rehome",),
    "final_reclaim_policy": ("rehome",),
}


class MigrationSettings(Keys):
    """One volume to migrate. Keys discovery records (FACT_KEYS) come first; the rest are the
    user's (gp3migrate/discovery/merge.py keeps them on a re-run)."""

    map_of = ""

    namespace: Annotated[str, text(required=True, check=naming.dns1123_label_problem, what="the claim's namespace")] = (
        Field(description="The claim's namespace.")
    )
    claim: Annotated[
        str, text(required=True, check=naming.dns1123_subdomain_problem, what="the PersistentVolumeClaim name")
    ] = Field(description="The PersistentVolumeClaim's name.")
    pv: Annotated[
        str, text(required=True, check=naming.dns1123_subdomain_problem, what="the bound PersistentVolume name")
    ] = Field(description="The bound PersistentVolume's name.")
    volume_id: Annotated[
        str, text(required=True, check=naming.volume_id_problem, what="the EBS volume id, vol-...")
    ] = Field(description="The EBS volume id (`vol-…`).")
    zone: Annotated[str, text(required=True, what="the volume's availability zone"), AfterValidator(_zone)] = Field(
        description="The volume's availability zone, one of the stack's `region`."
    )
    size_gib: Annotated[int, whole_number(1, GP2_MAX_SIZE_GIB, required="the source volume's size in GiB")] = Field(
        alias="sizeGiB", description="The source volume's size in GiB."
    )
    fs_type: Annotated[FsType, driver_fs_type()] = Field(
        default="ext4",
        description="The volume's filesystem: ext4, xfs or ext3, the ones the EBS CSI driver mounts (ext2 is refused).",
    )
    # What the in-tree PV said about how the volume is mounted; the CSI PV says it again, as CSI
    # migration's translation does (kubernetes csi-translation-lib plugins/aws_ebs.go
    # TranslateInTreePVToCSI: readOnly, fsType and partition into the CSI source).
    partition: Annotated[int | None, whole_number(1, 2_147_483_647)] = Field(
        default=None,
        description="The in-tree PV's `awsElasticBlockStore.partition` (absent: the whole disk); the CSI PV "
        "names it as `volumeAttributes.partition`, which the driver stages instead of the whole disk.",
    )
    read_only: Annotated[bool, flag()] = Field(
        default=False, description="The in-tree PV's `awsElasticBlockStore.readOnly`; the CSI PV keeps it."
    )
    mount_options: Annotated[tuple[str, ...], BeforeValidator(_mount_options)] = Field(
        default=(), description="The in-tree PV's `spec.mountOptions`; the CSI PV keeps them."
    )
    access_modes: Annotated[tuple[Annotated[AccessMode, one_of(AccessMode)], ...], BeforeValidator(_access_modes)] = (
        Field(
            default=("ReadWriteOnce",), description="The claim's access modes (ReadWriteMany is not possible with EBS)."
        )
    )
    volume_mode: Annotated[VolumeMode, one_of(VolumeMode)] = Field(
        default="Filesystem", description="The claim's volume mode."
    )
    volume_type: Annotated[SourceType, one_of(SourceType)] = Field(
        default="gp2", description="The source volume's EBS type; `standard` can only be copied."
    )
    # Provisioned performance as describe-volumes reported it; the plan never goes below it.
    iops: Annotated[int | None, whole_number(100, 256_000)] = Field(
        default=None, description="The source's IOPS as AWS reports them (or measured); the plan never goes below them."
    )
    throughput: Annotated[int | None, whole_number(1, 4_000)] = Field(
        default=None, description="The source's throughput in MiB/s; the plan never goes below it."
    )
    encrypted: Annotated[bool, flag()] = Field(default=False, description="Whether the source volume is encrypted.")
    kms_key_id: Annotated[str | None, text(check=naming.kms_key_arn_problem)] = Field(
        default=None, description="The source's KMS key ARN; at cutover it must be in the stack's `kmsKeyArns`."
    )
    # The source PV's class ("" for a static PV without one) and capacity as written ("1Gi"):
    # what a rollback re-creates and what a restored claim must request at least.
    pv_storage_class: Annotated[str | None, BeforeValidator(_pv_storage_class)] = Field(
        default=None, description="The source PV's class; `''` for a static PV without one."
    )
    pv_capacity: Annotated[
        str | None, text(check=_quantity_problem, what="the source PV's spec.capacity.storage, e.g. 1Gi")
    ] = Field(default=None, description="The source PV's `spec.capacity.storage` as written, e.g. `500Mi`.")
    workload: Workload | None = Field(
        default=None, description="What mounts the claim: `kind`, `name`, `replicas`, `templateStorageClass`, `owner`."
    )
    claim_metadata: ClaimMetadata | None = Field(
        default=None,
        description="The source claim's `labels` and `annotations` (without the controllers' binding ones and "
        "kubectl's last-applied-configuration): the claim a cutover or rollback creates carries them, so its Helm, "
        "Argo CD or Flux owner still recognises it, and the step that deletes the claim refuses when an ownership "
        "key on the live claim differs from them. Absent (entries written before): the new claim carries only the "
        "program's labels, and the claim is released only if it has no ownership key.",
    )
    owners: Annotated[tuple[Owner, ...], BeforeValidator(_owners)] = Field(
        default=(),
        description="The claim's and workload's other owners discovery found (`kind`, `name`, `namespace`, and "
        "`autoSync` or `suspended` when it read them): a cutover or rollback of an entry with an `Application`, "
        "`Kustomization`, `HelmRelease` or `ScaledObject` refuses to start, and to delete the claim, unless each "
        "is held (see `holdOwners`). Absent (entries written before): none.",
    )
    # The user's keys, from here on.
    new_claim_name: Annotated[str, text(check=naming.dns1123_subdomain_problem)] = Field(
        default="",
        description="(copy) The gp3 claim's name with `claimNaming: rename`; default `<claim>-gp3`, "
        "a DNS-1123 name of at most 253 characters.",
    )
    phase: Annotated[Phase, one_of(Phase)] = Field(
        default="precopy",
        description="`precopy`, `cutover`, `finalize`, `cleanup` or `rollback`: one step per `pulumi up`.",
    )
    claim_naming: Annotated[ClaimNaming, one_of(ClaimNaming)] = Field(
        default="rename",
        description="(copy) `rename` (a new claim) or `same-name` (the old name, after the old claim).",
    )
    quiesce: Annotated[Quiesce, one_of(Quiesce)] = Field(
        default="manual",
        description="`scale` (the default when a workload is recorded), `manual` (you stop the app), or `none` "
        "(refused at cutover).",
    )
    keep_snapshots: Annotated[bool, flag()] = Field(
        default=False, description="Keep the migration's snapshots in AWS when the stack lets go of them."
    )
    # Opt-ins that remove data: the source volume (finalize), the restored claim (rollback).
    delete_source: Annotated[bool, flag()] = Field(
        default=False, description="(copy) Delete the source volume; allowed only in `finalize`."
    )
    delete_restored_claim: Annotated[bool, flag()] = Field(
        default=False, description="(copy) Delete the restored claim; allowed only in `rollback`."
    )
    # How the volume becomes gp3 (gp3migrate/planning/strategies/): in place and re-homed under CSI
    # (rehome), in place only (modify), or copied through snapshots (copy).
    strategy: Annotated[Strategy, one_of(Strategy)] = Field(
        default="rehome",
        description="`rehome` (gp3 in place, then the same volume under CSI), `modify` (in place only) or "
        "`copy` (through snapshots; the default when the entry asks for `encrypt` or the volume is `standard`). "
        "A key of another strategy is refused, naming it.",
    )
    encrypt: Annotated[bool, flag()] = Field(
        default=False,
        description="Encrypt an unencrypted source: needs `copy` (EBS encrypts a volume only when it is created).",
    )
    hold_owners: Annotated[bool, flag()] = Field(
        default=False,
        description="Let the program hold the entry's GitOps owners and autoscaler for the window (Argo CD "
        "skip-reconcile, Flux suspend, KEDA paused-replicas 0) and resume them once the claim is bound and the "
        "workload is back; false: hold them yourself, and the cutover checks they are.",
    )
    # rehome: a snapshot before the volume is modified (protected until finalize).
    safety_snapshot: Annotated[bool, flag()] = Field(
        default=True, description="(rehome) A protected snapshot before ModifyVolume."
    )
    # rehome: the CSI PV's reclaim policy from finalize on (Delete: like a provisioned volume).
    final_reclaim_policy: Annotated[ReclaimPolicy, one_of(ReclaimPolicy)] = Field(
        default="Retain", description="(rehome) The CSI PV's reclaim policy from `finalize` on."
    )
    # This volume's performance policy; None: the stack's `performance`.
    performance: Annotated[PerformancePolicy | None, one_of(PerformancePolicy)] = Field(
        default=None, description="`sustained` or `peak`; default the stack's `performance`."
    )
    # The user's labels for the stack's `waves` selectors (gp3migrate/config/waves.py); not the
    # claim's Kubernetes labels (claimMetadata), which discovery refreshes.
    labels: Annotated[dict[str, str], BeforeValidator(_string_map)] = Field(
        default_factory=dict,
        description="Labels of your own (key to value) that a wave's `select.labels` matches; the claim's "
        "Kubernetes labels are not read.",
    )
    # Why the strategy was chosen, when the program chose it (shown in preview).
    _strategy_reason: str = PrivateAttr("")
    # The wave that selects the entry (None: no wave), and whether its phase is that wave's
    # (the entry sets none of its own); set by the stack's `migrations` check (settings.py).
    _wave: str | None = PrivateAttr(None)
    _phase_from_wave: bool = PrivateAttr(False)

    @property
    def wave(self) -> str | None:
        return self._wave

    @property
    def phase_from_wave(self) -> bool:
        """Whether `phase` is the wave's (editing the wave's phase moves it) rather than the entry's own."""
        return self._phase_from_wave

    @property
    def strategy_reason(self) -> str:
        return self._strategy_reason

    @property
    def window_owners(self) -> tuple[Owner, ...]:
        """The owners that act during the window unless held."""
        return tuple(owner for owner in self.owners if owner.acts_in_window)

    @property
    def target_claim_name(self) -> str:
        """The name the gp3 claim gets: the old one (same-name) or the new one (rename)."""
        return self.claim if self.claim_naming == "same-name" else self.new_claim_name

    @property
    def key(self) -> str:
        """The stable identity of a migration: `<namespace>/<claim>`."""
        return f"{self.namespace}/{self.claim}"

    @property
    def resource_name(self) -> str:
        """Pulumi resource name of the migration component; never changes for a claim."""
        return f"migrate-{self.namespace}-{self.claim}"

    @model_validator(mode="after")
    def _rules(self) -> Self:
        """The defaults that depend on other keys, then the combinations refused whatever was
        applied before; every one of them is reported together."""
        given = self.model_fields_set
        problems: list[tuple[str, str]] = []
        new_claim_default = f"{self.claim}{NEW_CLAIM_SUFFIX}"
        if "new_claim_name" not in given:
            problem = naming.dns1123_subdomain_problem(new_claim_default)
            if problem:
                problems.append(
                    ("newClaimName", f"the default {show(new_claim_default)} {problem}; set a shorter newClaimName")
                )
            self._derive("new_claim_name", new_claim_default)
        elif self.new_claim_name == self.claim:
            problems.append(("newClaimName", f"{show(self.new_claim_name)} must differ from the claim it replaces"))
        if "quiesce" not in given and self.workload is not None:
            self._derive("quiesce", "scale")
        if self.quiesce == "scale" and self.workload is not None and self.workload.owner is not None:
            owner, workload = self.workload.owner, self.workload
            problems.append(
                (
                    "quiesce",
                    f"'scale' would fight {owner.kind} {owner.name} ({owner.api_version}), which controls "
                    f"{workload.kind} {workload.name} and resets its replicas: use quiesce: manual and stop it "
                    "through its operator",
                )
            )
        problems += self._strategy_rules(given)
        if self.strategy != "copy":
            # The claim keeps its name: the same volume is served under it.
            self._derive("claim_naming", "same-name")
        problems += self._volume_identity_rules()
        problems += self._phase_rules()
        if problems:
            raise refuse_all([((key,), message) for key, message in problems], type(self).__name__)
        return self

    def _derive(self, name: str, value: Any) -> None:
        """Set a default that depends on other keys (the model is frozen to everyone else)."""
        object.__setattr__(self, name, value)

    def _strategy_rules(self, given: set[str]) -> list[tuple[str, str]]:
        """The strategy asked for, or the program's choice with its reason: `rehome` unless the entry
        asks for what only a copy can do."""
        problems = []
        needs_copy = ""
        if self.encrypt and not self.encrypted:
            needs_copy = "encrypt: true on an unencrypted volume (EBS encrypts a volume only when it is created)"
        elif self.volume_type in NOT_MODIFIABLE_TYPES:
            needs_copy = f"volumeType {self.volume_type} cannot be modified in place (Elastic Volumes)"
        if "strategy" not in given:
            self._derive("strategy", "copy" if needs_copy else "rehome")
            reason = f"copy: {needs_copy}" if needs_copy else "rehome: same zone and encryption, so no copy is needed"
        else:
            reason = "asked for"
            if self.strategy != "copy" and needs_copy:
                problems.append(
                    ("strategy", f"{show(self.strategy)} keeps the volume as it is, but {needs_copy}: use copy")
                )
        self._strategy_reason = reason
        for name, allowed in _STRATEGY_KEYS.items():
            if name in given and self.strategy not in allowed:
                problems.append(
                    (
                        _key(name),
                        f"applies to strategy {' or '.join(allowed)} only; this entry's strategy is {self.strategy} "
                        f"({reason})",
                    )
                )
        if self.strategy == "modify" and self.phase != "precopy":
            problems.append(
                (
                    "phase",
                    f"{show(self.phase)}: strategy modify has one phase, precopy (the volume is gp3 once it is "
                    "applied; the PV stays in-tree, so there is nothing to cut over or roll back)",
                )
            )
        return problems

    def _volume_identity_rules(self) -> list[tuple[str, str]]:
        """A copy's claim is provisioned through a gp3 class, whose PVs name no partition, no
        readOnly and no mount options: the restored volume would be mounted otherwise than the
        in-tree PV said (a partitioned disk staged whole does not mount)."""
        if self.strategy != "copy":
            return []
        problems = []
        said = {"partition": self.partition, "readOnly": self.read_only, "mountOptions": self.mount_options}
        for key, value in said.items():
            if value:
                problems.append(
                    (
                        key,
                        f"{show(list(value) if isinstance(value, tuple) else value)}: strategy copy restores through "
                        "a gp3 class, whose PV cannot carry it; only rehome keeps what the in-tree PV said "
                        f"({self.strategy_reason})",
                    )
                )
        return problems

    def _window_owner_rules(self) -> list[tuple[str, str]]:
        """What no cutover may start with: a StatefulSet whose claims its retention policy deletes,
        and the program holding owners it cannot tell when to resume."""
        problems = []
        workload = self.workload
        retention = workload.claim_retention if workload is not None else None
        if self.phase == "cutover" and workload is not None and retention is not None:
            refusal = window_owners.retention_refusal(
                self.namespace,
                workload.name,
                {"whenDeleted": retention.when_deleted, "whenScaled": retention.when_scaled},
            )
            if refusal:
                problems.append(("workload", refusal))
        if self.hold_owners and self.window_owners and (self.quiesce != "scale" or self.workload is None):
            problems.append(
                (
                    "holdOwners",
                    f"true needs quiesce: scale (this entry's is {self.quiesce}): the program resumes "
                    f"{', '.join(o.label() for o in self.window_owners)} only once it has started the workload "
                    "again on the bound claim; with another quiesce, hold and resume them yourself",
                )
            )
        elif self.hold_owners and self.window_owners and self.strategy == "copy" and self.claim_naming == "rename":
            problems.append(
                (
                    "holdOwners",
                    "true needs claimNaming: same-name: with rename the program does not start the workload on the "
                    "new claim, so it could not tell when to resume its owners; hold and resume them yourself",
                )
            )
        return problems

    def _phase_rules(self) -> list[tuple[str, str]]:
        """Option combinations that are unsafe whatever was applied before."""
        problems = []
        strategy, phase = self.strategy, self.phase
        if self.quiesce == "none" and strategy != "modify" and (phase == "cutover" or self.claim_naming == "same-name"):
            problems.append(
                (
                    "quiesce",
                    (
                        "'none' would release the claim while the app still writes to it"
                        if strategy == "rehome"
                        else "'none' would copy the volume while the app writes (writes after the snapshot are lost)"
                    )
                    + ": use quiesce: scale (with workload) or manual (you stop the app; the program still waits "
                    "until AWS reports the volume detached)",
                )
            )
        if self.quiesce == "scale" and self.workload is None:
            problems.append(("quiesce", "'scale' needs migrations[].workload (kind, name, replicas) to scale"))
        problems += self._window_owner_rules()
        if self.delete_source and phase != "finalize":
            problems.append(
                (
                    "deleteSource",
                    f"true is only allowed in phase finalize (this entry is in {phase}); the source is the only "
                    "copy until the gp3 claim is verified",
                )
            )
        if self.delete_restored_claim and phase != "rollback":
            problems.append(
                ("deleteRestoredClaim", f"true is only allowed in phase rollback (this entry is in {phase})")
            )
        return problems


def _key(name: str) -> str:
    """A field's key in the stack file."""
    field = MigrationSettings.model_fields[name]
    return field.alias or name


# The keys discovery owns: what it found on the cluster. A re-run refreshes them (before a
# cutover); every other key belongs to the user (gp3migrate/discovery/merge.py).
FACT_KEYS = tuple(
    _key(name)
    for name in (
        "namespace",
        "claim",
        "pv",
        "volume_id",
        "zone",
        "size_gib",
        "fs_type",
        "access_modes",
        "volume_mode",
        "volume_type",
        "iops",
        "throughput",
        "encrypted",
        "kms_key_id",
        "pv_storage_class",
        "pv_capacity",
        "partition",
        "read_only",
        "mount_options",
        "workload",
        "claim_metadata",
        "owners",
    )
)
# In the order discovery writes an entry's keys (gp3migrate/discovery/merge.py).
ENTRY_KEYS = tuple(_key(name) for name in MigrationSettings.model_fields)


def read_entry(raw: Any, *, region: str) -> MigrationSettings:
    """One entry as the stack file holds it, checked against the stack's region; raises
    pydantic's ValidationError (gp3migrate/config/problems.py problems_of words it)."""
    return MigrationSettings.model_validate(raw, by_alias=True, by_name=False, context=stack_file_context(region))


def read_entry_or_none(raw: Any, *, region: str) -> MigrationSettings | None:
    """The entry, or None when it has any problem (for readers that only need the valid ones)."""
    try:
        return read_entry(raw, region=region)
    except ValidationError:
        return None
