"""One volume's migration, declared for its current phase (gp3migrate/phases.py).

    precopy:  Retain patch -> pre-copy snapshot
    cutover:  + quiesce -> detached gate -> final snapshot -> content -> VolumeSnapshot
                -> [release old claim] -> gp3 claim -> [scale back]
    finalize: gp3 claim bound? -> restore objects removed; snapshots unprotected
              deleteSource: in-use gate -> reclaim policy Delete
    cleanup:  snapshots leave the stack (deleted, or kept with keepSnapshots)
    rollback: [quiesce -> release gp3 claim -> rebind PV -> old claim on the source PV] -> scale back

Scaling is a one-way step (components/gates.py WorkloadScale), never a declared `replicas`: a
declared value is read back by `up --refresh` and applied again by the next `up`.

Each migration depends on the platform only, never on another volume, so volumes migrate in
parallel. Child names derive from the component's name and never change for a step, so a phase
change shows in `pulumi preview` as exactly the creates and deletes it makes.
"""

from dataclasses import dataclass, field
from typing import TypeVar

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import type_token
from components.gates import ClaimBound, ClaimRelease, DetachedGate, InUseGate, WorkloadScale
from components.k8s_object import KubernetesObject
from gp3migrate import restore
from gp3migrate.config import Settings
from gp3migrate.phases import Applied
from gp3migrate.plan import MigrationPlan

T = TypeVar("T", bound=pulumi.CustomResource)

DETACH_TIMEOUT_SECONDS = 15 * 60
RELEASE_TIMEOUT_SECONDS = 10 * 60
SCALE_BACK_TIMEOUT_SECONDS = 10 * 60


@dataclass(frozen=True)
class VolumeMigrationArgs:
    settings: Settings
    plan: MigrationPlan
    stack: str
    # The driver, snapshot API, snapshot class and the class this volume restores into.
    platform: list[pulumi.Resource] = field(default_factory=list)
    # What the last `up` applied for this volume (None: never applied).
    previous: Applied | None = None
    kubeconfig: pulumi.Input[str] = ""
    kube_context: str | None = None


def _final(generation: int) -> str:
    """Snapshot purpose (and name part) of the final snapshot of the n-th cutover."""
    return "final" if generation == 1 else f"final-{generation}"


def _final_key(generation: int) -> str:
    return "finalSnapshotId" if generation == 1 else f"final{generation}SnapshotId"


class VolumeMigration(pulumi.ComponentResource):
    applied: Applied
    outputs: dict[str, object]
    # Every step of this run: the phase record is published only once all of them completed.
    steps: list[pulumi.CustomResource]

    def __init__(self, name: str, args: VolumeMigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("VolumeMigration"), name, None, opts)
        self._name, self._args = name, args
        self.steps = []
        plan, entry = args.plan, args.plan.entry
        previous = args.previous
        phase = entry.phase

        # Retain first: from here on, deleting a claim cannot delete the source volume.
        in_use = self._in_use_gate() if phase == "finalize" and entry.delete_source else None
        retain = self._reclaim_policy(in_use)

        # Snapshots stay declared (protected) until finalize, which unprotects them; cleanup lets
        # go of them (Pulumi refuses to delete a resource protected in its state: two edits).
        finalize_cleanup = phase == "cleanup"
        precopy = None if finalize_cleanup else self._snapshot("precopy", depends_on=[retain])
        snapshot_ids: dict[str, pulumi.Output[str]] = {"precopySnapshotId": precopy.id} if precopy else {}

        # Each cutover takes its own final snapshot: a retry after a rollback must not restore
        # from the stale one. Earlier ones stay declared (protected) until finalize.
        cutovers = previous.cutovers if previous else 0
        if phase == "cutover" and not (previous and previous.phase == "cutover"):
            cutovers += 1
        kept_generations = range(1, cutovers + (0 if phase == "cutover" else 1))
        if not finalize_cleanup:
            for generation in kept_generations:
                snapshot_ids[_final_key(generation)] = self._snapshot(_final(generation), depends_on=[retain]).id

        claim_name = entry.new_claim_name
        if phase == "cutover":
            claim_name, final = self._cutover(retain, precopy, _final(cutovers))
            snapshot_ids[_final_key(cutovers)] = final.id
        if phase in ("finalize", "cleanup"):
            claim_name = entry.target_claim_name
            # The restore objects go only once the claim no longer restores from them.
            bound = self._track(
                ClaimBound(
                    f"{self._name}-claim-bound",
                    namespace=entry.namespace,
                    claim=claim_name,
                    kubeconfig=args.kubeconfig,
                    context=args.kube_context,
                    opts=self._child(depends_on=[retain]),
                )
            )
            self._gp3_claim(claim_name, depends_on=[retain, bound])
        rolled_back_cutover = (
            phase == "rollback"
            and previous is not None
            and (previous.phase == "cutover" or previous.rolled_back_cutover)
        )
        if phase == "rollback":
            claim_name = self._rollback(retain, after_cutover=rolled_back_cutover)

        self.applied = Applied(
            phase=phase,
            source_deleted=phase in ("finalize", "cleanup") and entry.delete_source,
            snapshots_unprotected=phase in ("finalize", "cleanup"),
            cutovers=cutovers,
            rolled_back_cutover=rolled_back_cutover,
            keep_snapshots=entry.keep_snapshots,
        )
        self.outputs = {
            "phase": phase,
            "sourceVolume": entry.volume_id,
            "sourcePv": entry.pv,
            **snapshot_ids,
            "claim": f"{entry.namespace}/{claim_name}",
            "storageClass": plan.storage_class,
            "plannedIops": plan.performance.iops,
            "plannedThroughput": plan.performance.throughput,
            "monthlyPriceGp2": plan.cost.gp2 if plan.cost else None,
            "monthlyPriceGp3": plan.cost.gp3 if plan.cost else None,
        }
        self.register_outputs(self.outputs)

    # -- steps ------------------------------------------------------------------------------

    def _track(self, resource: T) -> T:
        self.steps.append(resource)
        return resource

    def _child(self, **kwargs: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)  # type: ignore[arg-type]

    def _reclaim_policy(self, in_use: pulumi.Resource | None) -> k8s.core.v1.PersistentVolumePatch:
        """Retain on the source PV. With finalize + deleteSource, Delete, once the restored volume
        is in use: the PV controller then deletes the released PV and its EBS volume. Kept on
        destroy: removing the Patch would hand the field back (pulumi-kubernetes Patch docs)."""
        body = restore.retain_patch(self._args.plan)
        if in_use is not None:
            body["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
        depends = [*self._args.platform, *([in_use] if in_use else [])]
        resource = k8s.core.v1.PersistentVolumePatch(
            f"{self._name}-retain",
            metadata=body["metadata"],
            spec=body["spec"],
            opts=self._child(depends_on=depends, retain_on_delete=True),
        )
        return self._track(resource)

    def _snapshot(self, purpose: str, depends_on: list[pulumi.Resource]) -> aws.ebs.Snapshot:
        args, entry = self._args, self._args.plan.entry
        unprotected = entry.phase == "finalize"
        resource = aws.ebs.Snapshot(
            f"{self._name}-{purpose}-snapshot",
            volume_id=entry.volume_id,
            description=f"eks-gp3-migration {args.stack} {entry.key} {purpose} ({entry.pv})",
            tags=restore.snapshot_tags(args.plan, args.settings, args.stack, purpose=purpose),
            opts=self._child(
                depends_on=depends_on,
                protect=not unprotected,
                # In finalize, kept in AWS when the stack lets go of it, if asked to keep them.
                retain_on_delete=unprotected and entry.keep_snapshots,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{args.plan.snapshot_timeout_minutes}m"),
            ),
        )
        return self._track(resource)

    def _scale(self, step: str, replicas: int, depends_on: list[pulumi.Resource]) -> pulumi.Resource | None:
        entry = self._args.plan.entry
        if entry.quiesce != "scale" or entry.workload is None:
            return None
        resource = WorkloadScale(
            f"{self._name}-{step}",
            kind=entry.workload.kind,
            namespace=entry.namespace,
            workload=entry.workload.name,
            replicas=replicas,
            kubeconfig=self._args.kubeconfig,
            context=self._args.kube_context,
            timeout_seconds=SCALE_BACK_TIMEOUT_SECONDS if replicas else 0,
            opts=self._child(depends_on=depends_on),
        )
        return self._track(resource)

    def _cutover(
        self, retain: pulumi.Resource, precopy: aws.ebs.Snapshot | None, final_purpose: str
    ) -> tuple[str, aws.ebs.Snapshot]:
        args, entry = self._args, self._args.plan.entry
        if entry.workload and entry.workload.template_storage_class == args.settings.storage.gp2_class_name:
            pulumi.log.warn(
                f"{entry.key}: StatefulSet {entry.workload.name} still names {entry.workload.template_storage_class!r} "
                "in its volumeClaimTemplates: new replicas would get gp2 volumes. The templates are immutable: "
                f"re-create the StatefulSet (kubectl delete sts {entry.workload.name} --cascade=orphan, then apply "
                f"it with storageClassName: {args.plan.storage_class}).",
                resource=self,
            )
        # The downtime window starts here; the pre-copy is done by now (it was the precopy phase).
        quiesce = self._scale("quiesce", 0, depends_on=[precopy] if precopy else [retain])
        detached = DetachedGate(
            f"{self._name}-detached",
            volume_id=entry.volume_id,
            region=args.settings.cluster.region,
            timeout_seconds=DETACH_TIMEOUT_SECONDS,
            opts=self._child(depends_on=[quiesce] if quiesce else ([precopy] if precopy else [retain])),
        )
        self._track(detached)
        final = self._snapshot(final_purpose, depends_on=[detached])
        volume_snapshot = self._restore_objects(final)
        claim_after: list[pulumi.Resource] = [volume_snapshot]
        if entry.claim_naming == "same-name":
            # The old claim goes only once the restore source is ready; its PV stays Retain.
            claim_after.append(
                self._release("release-old-claim", entry.claim, depends_on=[volume_snapshot, retain], bound_to=entry.pv)
            )
        claim = self._gp3_claim(entry.target_claim_name, depends_on=claim_after)
        if entry.claim_naming == "same-name" and entry.workload is not None:
            # Same name: the workload finds its claim again. (Renamed claims need the workload
            # repointed first, so the user scales it back; see README.)
            self._scale("scale-back", entry.workload.replicas, depends_on=[claim])
        return entry.target_claim_name, final

    def _restore_objects(self, final: aws.ebs.Snapshot) -> KubernetesObject:
        args = self._args
        # Content and snapshot name each other with fixed names; both carry the snapshot id so a
        # new snapshot replaces both together (a bound content never rebinds).
        opts = self._child(depends_on=list(args.platform), delete_before_replace=True, replace_on_changes=["*"])
        content = KubernetesObject(
            f"{self._name}-content", restore.snapshot_content(args.plan, args.settings, final.id), opts=opts
        )
        self._track(content)
        resource = KubernetesObject(
            f"{self._name}-volume-snapshot",
            restore.volume_snapshot(args.plan, args.settings, final.id),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[content])),
        )
        return self._track(resource)

    def _gp3_claim(self, claim_name: str, depends_on: list[pulumi.Resource]) -> k8s.core.v1.PersistentVolumeClaim:
        """Kept on destroy and on removal from config; its data source is history once restored."""
        body = restore.restored_claim(self._args.plan, claim_name)
        resource = k8s.core.v1.PersistentVolumeClaim(
            f"{self._name}-claim",
            metadata=body["metadata"],
            spec=body["spec"],
            opts=self._child(
                depends_on=[*depends_on, *self._args.platform],
                retain_on_delete=True,
                ignore_changes=["spec.dataSource", "spec.dataSourceRef"],
            ),
        )
        return self._track(resource)

    def _in_use_gate(self) -> InUseGate:
        entry = self._args.plan.entry
        resource = InUseGate(
            f"{self._name}-in-use",
            namespace=entry.namespace,
            claim=entry.target_claim_name,
            region=self._args.settings.cluster.region,
            opts=self._child(),
        )
        return self._track(resource)

    def _release(
        self,
        step: str,
        claim: str,
        depends_on: list[pulumi.Resource],
        *,
        bound_to: str | None = None,
        not_bound_to: str | None = None,
    ) -> ClaimRelease:
        """Deletes one claim of this volume's namespace, its PV set to Retain first."""
        args = self._args
        resource = ClaimRelease(
            f"{self._name}-{step}",
            namespace=args.plan.entry.namespace,
            claim=claim,
            kubeconfig=args.kubeconfig,
            context=args.kube_context,
            timeout_seconds=RELEASE_TIMEOUT_SECONDS,
            bound_to=bound_to,
            not_bound_to=not_bound_to,
            opts=self._child(depends_on=depends_on),
        )
        return self._track(resource)

    def _rollback(self, retain: pulumi.Resource, *, after_cutover: bool) -> str:
        entry = self._args.plan.entry
        restart_after: list[pulumi.Resource] = [retain]
        if entry.delete_restored_claim and after_cutover:
            # The gp3 claim cannot go while a pod uses it (kubernetes.io/pvc-protection).
            stopped = self._scale("rollback-quiesce", 0, depends_on=[retain])
            released = self._release(
                "release-gp3-claim",
                entry.target_claim_name,
                depends_on=[stopped] if stopped else [retain],
                not_bound_to=entry.pv,
            )
            restart_after = [released]
            if entry.claim_naming == "same-name":
                restart_after = [self._rebind(released)]
        elif after_cutover:
            # Rename mode: the gp3 claim stays next to the old one.
            self._gp3_claim(entry.new_claim_name, depends_on=[retain])
        if entry.workload is not None:
            # Always: a cutover that failed after its quiesce is not recorded as applied, and the
            # workload must run again whatever step it stopped at. A no-op when it already runs.
            self._scale("rollback-scale-back", entry.workload.replicas, depends_on=restart_after)
        return entry.claim

    def _rebind(self, released: pulumi.Resource) -> pulumi.Resource:
        """The old claim name on the retained source PV: the PV reserved for it, then the claim."""
        args = self._args
        patch = restore.rebind_patch(args.plan)
        rebind = k8s.core.v1.PersistentVolumePatch(
            f"{self._name}-rebind",
            metadata=patch["metadata"],
            spec=patch["spec"],
            # The PV controller fills the uid in once the claim binds; `up --refresh` reads it back,
            # and applying "" again would unbind a bound PV (simulation: rollback after cutover).
            opts=self._child(depends_on=[released], retain_on_delete=True, ignore_changes=["spec.claimRef.uid"]),
        )
        self._track(rebind)
        claim = restore.rollback_claim(args.plan, args.settings.storage.gp2_class_name)
        resource = k8s.core.v1.PersistentVolumeClaim(
            f"{self._name}-rollback-claim",
            metadata=claim["metadata"],
            spec=claim["spec"],
            opts=self._child(depends_on=[rebind], retain_on_delete=True),
        )
        return self._track(resource)
