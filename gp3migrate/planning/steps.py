"""A migration's runbook as data: the ordered steps one phase of one strategy declares.

The strategies (gp3migrate/planning/strategies/) are pure functions from (entry, plan, what the last `up`
applied, phase) to a list of Steps; components/step_resources.py turns each Step into the one
Pulumi resource its kind names. Nothing here imports Pulumi, so a strategy's runbook is tested
as plain values.

A step's name is the suffix of its resource name (`<migration>-<name>`): it never changes for a
step, so a phase change shows in `pulumi preview` as exactly the creates and deletes it makes.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

StepKind = Literal[
    "pv-patch",  # PersistentVolumePatch (server-side apply of a few fields of an existing PV)
    "ebs-snapshot",  # aws.ebs.Snapshot
    "restore-object",  # a whole manifest (VolumeSnapshotContent, VolumeSnapshot)
    "claim",  # PersistentVolumeClaim
    "persistent-volume",  # PersistentVolume (rehome: the CSI PV of the same EBS volume)
    "scale",  # one-way: a workload's replicas (components/gate_providers.py WorkloadScale)
    "detached",  # gate: AWS reports the volume detached
    "claim-release",  # one-way: delete a claim whose PV is Retain
    "claim-bound",  # gate: a claim is bound
    "in-use",  # gate: the restored volume is attached
    "volume-tags",  # one-way: tags the driver's IAM policy needs on a volume it did not create
    "volume-modify",  # one-way: ModifyVolume to gp3 with the planned IOPS and throughput
    "pv-delete",  # one-way: delete a PV object only while it is Retain
    "owners-held",  # gate: the GitOps owners and autoscaler are held (Argo CD, Flux, KEDA)
    "owners-hold",  # one-way (holdOwners): hold or resume them
]

# Steps of a workload rather than of a volume: all migrations of one workload share one of each
# (gp3migrate/planning/step_graph.py), so it stops once and starts once, after all its claims.
WORKLOAD_STEPS = ("quiesce", "scale-back", "rollback-quiesce", "rollback-scale-back")


@dataclass(frozen=True)
class Ref:
    """An output of an earlier step of the same migration, optionally formatted into a string
    (`template` with one `{}`): e.g. a snapshot's id as a content's snapshotHandle."""

    step: str
    template: str = "{}"


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    # The resource's inputs; values may be Refs. Gates take their arguments here.
    body: dict[str, Any]
    # Names of the steps (of this migration, or the workload's steps above) it waits for.
    after: tuple[str, ...] = ()
    # Waits for the platform too (the driver, the snapshot API, the class it uses).
    after_platform: bool = False
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    replace_on_changes: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()
    create_timeout: str | None = None
    # Inside the downtime window (between the quiesce and the scale-back).
    downtime: bool = False


@dataclass(frozen=True)
class PhasePlan:
    """What one `up` declares for one migration, and what it reports."""

    steps: tuple[Step, ...]
    # Output keys -> the step whose id they publish (snapshot ids).
    published_ids: dict[str, str] = field(default_factory=dict)
    # The claim the app uses after this phase (`namespace/name`).
    claim: str = ""

    def names(self) -> list[str]:
        return [step.name for step in self.steps]

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def downtime_steps(self) -> list[str]:
        return [step.name for step in self.steps if step.downtime]
