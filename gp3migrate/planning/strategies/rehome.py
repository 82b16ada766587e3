"""`rehome`: the same EBS volume, made gp3 in place, then served by the CSI driver under the same
claim name. Zero bytes copied; the downtime is one pod restart.

    precopy (prepare): Retain patch -> [safety snapshot] -> driver tags -> ModifyVolume to gp3
    cutover:  + quiesce -> detached -> CSI PV (pre-bound) -> old claim released -> claim (same name) ->
              scale-back
    finalize: claim bound? -> old in-tree PV object deleted (only while Retain); safety snapshot
              unprotected; the CSI PV's reclaim policy as asked (finalReclaimPolicy)
    cleanup:  the safety snapshot leaves the stack (deleted, or kept with keepSnapshots)
    rollback: [quiesce -> CSI claim released -> CSI PV object deleted -> old PV rebound -> old
              claim] -> scale-back. The volume stays gp3, which the in-tree path serves too.
"""

from gp3migrate.planning.csi_volume import csi_persistent_volume, csi_pv_name, rehomed_claim
from gp3migrate.planning.steps import PhasePlan, Step
from gp3migrate.planning.strategies import common
from gp3migrate.planning.strategies.common import MODIFY_TIMEOUT_SECONDS, Context
from gp3migrate.versions import DRIVER_MANAGED_TAG


def plan_phase(ctx: Context) -> PhasePlan:
    entry, phase = ctx.plan.entry, ctx.phase
    steps: list[Step] = []
    published: dict[str, str] = {}
    if phase not in ("finalize", "cleanup"):
        # Until finalize deletes the old PV object: a released claim must not delete the volume.
        steps.append(common.retain(ctx))
    before_modify: tuple[str, ...] = ("volume-tags",)
    if entry.safety_snapshot and phase != "cleanup":
        steps.append(common.snapshot(ctx, "safety", after=("retain",) if phase not in ("finalize",) else ()))
        published["safetySnapshotId"] = "safety-snapshot"
        before_modify += ("safety-snapshot",)
    steps += prepare_volume(
        ctx, after=("retain",) if phase not in ("finalize", "cleanup") else (), before_modify=before_modify
    )

    claim = entry.claim
    if phase == "cutover":
        steps += _cutover(ctx)
    elif phase in ("finalize", "cleanup"):
        steps += _finalize(ctx)
    elif phase == "rollback":
        steps += _rollback(ctx)
    return PhasePlan(tuple(steps), published, claim=f"{entry.namespace}/{claim}")


def prepare_volume(ctx: Context, *, after: tuple[str, ...], before_modify: tuple[str, ...]) -> list[Step]:
    """Tags the driver's policy needs, then gp3 online with the planned IOPS and throughput set
    explicitly (a type change alone falls back to 3,000 / 125: EC2 ModifyVolume)."""
    entry, performance = ctx.plan.entry, ctx.plan.performance
    return [
        Step(
            "volume-tags",
            "volume-tags",
            # AmazonEBSCSIDriverPolicyV2 acts only on volumes tagged for the driver; volumes
            # the in-tree plugin created lack it (shared/fixtures, both managed policies).
            {"volume_id": entry.volume_id, "region": ctx.region, "tags": {DRIVER_MANAGED_TAG: "true"}},
            after=after,
        ),
        Step(
            "volume-modify",
            "volume-modify",
            {
                "volume_id": entry.volume_id,
                "region": ctx.region,
                "zone": entry.zone,
                "iops": performance.iops,
                "throughput": performance.throughput,
                "timeout_seconds": MODIFY_TIMEOUT_SECONDS,
            },
            after=before_modify,
        ),
    ]


def _csi_pv(ctx: Context, *, after: tuple[str, ...], reclaim_policy: str = "Retain", downtime: bool = False) -> Step:
    body = csi_persistent_volume(ctx.plan, reclaim_policy)
    return Step(
        "csi-pv",
        "persistent-volume",
        {"metadata": body["metadata"], "spec": body["spec"]},
        after=after,
        after_platform=True,
        retain_on_delete=True,
        # The PV controller fills in the claim's uid once bound; applying it empty again on a
        # later `up` would unbind it (as for the rollback's rebind).
        ignore_changes=("spec.claimRef.uid", "spec.claimRef.resourceVersion"),
        downtime=downtime,
    )


def _claim(ctx: Context, *, after: tuple[str, ...], downtime: bool = False) -> Step:
    body = rehomed_claim(ctx.plan)
    return Step(
        "claim",
        "claim",
        {"metadata": body["metadata"], "spec": body["spec"]},
        after=after,
        after_platform=True,
        retain_on_delete=True,
        downtime=downtime,
    )


def _cutover(ctx: Context) -> list[Step]:
    entry = ctx.plan.entry
    steps, stop_after = common.hold_owners(ctx, "", after=("volume-modify",))
    quiesce = common.scale(ctx, "quiesce", 0, after=stop_after)
    if quiesce:
        steps.append(quiesce)
    steps.append(common.detached(ctx, after=("quiesce",) if quiesce else stop_after))
    # The CSI PV comes before the release: it is pre-bound (claimRef with no uid), and the PV
    # controller hands a pre-bound PV to any claim of that namespace/name before it looks at the
    # class (component-helpers storage/volume/pv_helpers.go FindMatchingVolume; pv_controller.go
    # syncUnboundClaim). So a claim recreated by its owner after the release (git, a
    # volumeClaimTemplate) binds this same volume rather than a new, empty one; the program's claim
    # then fails with AlreadyExists and nothing is lost. Until the release it stays Available: the
    # old claim is bound to the in-tree PV (pv_controller.go syncVolume).
    steps.append(_csi_pv(ctx, after=("detached",), downtime=True))
    steps.append(
        common.release(
            ctx,
            "release-old-claim",
            entry.claim,
            after=("detached", "csi-pv", "retain"),
            bound_to=entry.pv,
            downtime=True,
            detached_volume=entry.volume_id,
        )
    )
    steps.append(_claim(ctx, after=("release-old-claim", "csi-pv"), downtime=True))
    scale_back = common.restart(ctx, "scale-back", after=("claim",))
    if scale_back:
        steps.append(scale_back)
    resume = common.resume_owners(ctx, "", entry.claim, after=("scale-back",) if scale_back else ("claim",))
    if resume:
        steps.append(resume)
    return steps


def _finalize(ctx: Context) -> list[Step]:
    entry = ctx.plan.entry
    return [
        _csi_pv(ctx, after=("old-pv-delete",), reclaim_policy=entry.final_reclaim_policy),
        _claim(ctx, after=("csi-pv",)),
        common.claim_bound(ctx, entry.claim, after=()),
        # The old object points at the volume that now serves the app: deleted only while it is
        # Retain, checked right before the delete.
        Step("old-pv-delete", "pv-delete", {"pv": entry.pv, "volume_id": entry.volume_id}, after=("claim-bound",)),
    ]


def _unused_csi_pv_delete(ctx: Context) -> Step:
    """A cutover that stopped after its CSI PV (a release refused by its re-check) records nothing,
    so this rollback plans as from precopy and lets go of that PV kept (retain_on_delete): reserved
    for the claim's name, it would fail the next cutover's create (AlreadyExists). Deleted here
    only while Retain and not Bound (preconditions.delete_retained_pv); absent, nothing is done.
    A PV bound to a claim recreated after a release is refused: the app may run on it."""
    entry = ctx.plan.entry
    return Step(
        "csi-pv-delete", "pv-delete", {"pv": csi_pv_name(ctx.plan), "volume_id": entry.volume_id}, after=("retain",)
    )


def _rollback(ctx: Context) -> list[Step]:
    entry = ctx.plan.entry
    steps: list[Step] = []
    restart_after: tuple[str, ...] = ("retain",)
    if common.rolled_back_cutover(ctx):
        steps, stop_after = common.hold_owners(ctx, "rollback-", after=("retain",))
        stopped = common.scale(ctx, "rollback-quiesce", 0, after=stop_after)
        if stopped:
            steps.append(stopped)
        steps.append(
            common.release(
                ctx,
                "release-csi-claim",
                entry.claim,
                after=("rollback-quiesce",) if stopped else stop_after,
                bound_to=csi_pv_name(ctx.plan),
            )
        )
        # Both PV objects point at the one volume: the CSI one goes (only while Retain) before the
        # old one is bound again.
        steps.append(
            Step(
                "csi-pv-delete",
                "pv-delete",
                {"pv": csi_pv_name(ctx.plan), "volume_id": entry.volume_id},
                after=("release-csi-claim",),
            )
        )
        steps += common.rollback_claim(ctx, after=("csi-pv-delete",))
        restart_after = ("rollback-claim",)
    else:
        steps.append(_unused_csi_pv_delete(ctx))
    restart = common.restart(ctx, "rollback-scale-back", after=restart_after)
    if restart:
        steps.append(restart)
    if common.rolled_back_cutover(ctx):
        resume = common.resume_owners(
            ctx, "rollback-", entry.claim, after=("rollback-scale-back",) if restart else restart_after
        )
        if resume:
            steps.append(resume)
    return steps
