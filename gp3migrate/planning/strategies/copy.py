"""`copy`: the runbook's snapshot restore, for what the in-place strategies cannot do (another
zone, encrypting an unencrypted volume). The data moves to a new volume through EBS snapshots.

    precopy:  Retain patch -> pre-copy snapshot (the full copy, app running)
    cutover:  + quiesce -> detached -> final snapshot -> content -> VolumeSnapshot
                -> [release old claim] -> gp3 claim -> [scale-back]
    finalize: claim bound? -> restore objects removed; snapshots unprotected
              deleteSource: claim served by the final snapshot's copy, in use, source PV Released?
                -> reclaim policy Delete
    cleanup:  snapshots leave the stack (deleted, or kept with keepSnapshots)
    rollback: [quiesce -> release gp3 claim -> rebind PV -> old claim] -> scale-back
"""

from gp3migrate.planning import restore
from gp3migrate.planning.steps import PhasePlan, Ref, Step
from gp3migrate.planning.strategies import common
from gp3migrate.planning.strategies.common import Context


def final_purpose(generation: int) -> str:
    """Purpose (and name part) of the final snapshot of the n-th cutover."""
    return "final" if generation == 1 else f"final-{generation}"


def final_key(generation: int) -> str:
    return "finalSnapshotId" if generation == 1 else f"final{generation}SnapshotId"


def plan_phase(ctx: Context) -> PhasePlan:
    entry, phase = ctx.plan.entry, ctx.phase
    steps: list[Step] = []
    published: dict[str, str] = {}

    cutovers = common.cutover_count(ctx)
    in_use = None
    if phase == "finalize" and entry.delete_source:
        # Before the source may be deleted: the claim is served by the volume restored from the last
        # cutover's final snapshot (its id from the state), attached to a node; the source PV Released.
        in_use = Step(
            "in-use",
            "in-use",
            {
                "namespace": entry.namespace,
                "claim": entry.target_claim_name,
                "region": ctx.region,
                "snapshot_id": Ref(f"{final_purpose(cutovers)}-snapshot"),
                "source_volume_id": entry.volume_id,
                "source_pv": entry.pv,
            },
        )
        steps.append(in_use)
    # With deleteSource, Delete once the restored volume is in use: the PV controller then deletes
    # the released PV and its EBS volume.
    steps.append(common.retain(ctx, after=("in-use",) if in_use else (), reclaim="Delete" if in_use else "Retain"))

    # Snapshots stay declared (protected) until finalize unprotects them; cleanup lets go of them
    # (Pulumi refuses to delete a resource protected in its state: two edits).
    if phase != "cleanup":
        steps.append(common.snapshot(ctx, "precopy", after=("retain",)))
        published["precopySnapshotId"] = "precopy-snapshot"
        # Each cutover's final snapshot stays declared (protected) until finalize.
        for generation in range(1, cutovers + (0 if phase == "cutover" else 1)):
            # The in-use gate reads the last one's id, so that one cannot wait for the patch the
            # gate guards (it exists since its cutover; finalize only unprotects it).
            read_by_gate = in_use is not None and generation == cutovers
            after = () if read_by_gate else ("retain",)
            steps.append(common.snapshot(ctx, final_purpose(generation), after=after))
            published[final_key(generation)] = f"{final_purpose(generation)}-snapshot"

    claim = entry.target_claim_name
    if phase == "cutover":
        final = final_purpose(cutovers)
        steps += _cutover(ctx, final)
        published[final_key(cutovers)] = f"{final}-snapshot"
    elif phase in ("finalize", "cleanup"):
        # The restore objects go only once the claim no longer restores from them.
        steps.append(common.claim_bound(ctx, claim, after=("retain",)))
        steps.append(_gp3_claim(ctx, claim, snapshot_name=_last_restore(ctx), after=("retain", "claim-bound")))
    elif phase == "rollback":
        claim = entry.claim
        steps += _rollback(ctx)
    return PhasePlan(tuple(steps), published, claim=f"{entry.namespace}/{claim}")


def _cutover(ctx: Context, final: str) -> list[Step]:
    entry = ctx.plan.entry
    # The downtime window starts here; the pre-copy is done by now (it was the precopy phase).
    steps, stop_after = common.hold_owners(ctx, "", after=("precopy-snapshot",))
    quiesce = common.scale(ctx, "quiesce", 0, after=stop_after)
    if quiesce:
        steps.append(quiesce)
    steps.append(common.detached(ctx, after=("quiesce",) if quiesce else stop_after))
    steps.append(common.snapshot(ctx, final, after=("detached",), downtime=True))
    handle = Ref(f"{final}-snapshot")
    content_name = Ref(f"{final}-snapshot", restore.named_after_snapshot(f"{entry.namespace}-{entry.claim}"))
    snapshot_name = Ref(f"{final}-snapshot", restore.named_after_snapshot(entry.claim))
    content = restore.snapshot_content(ctx.plan, ctx.settings, handle, content_name, snapshot_name)
    volume_snapshot = restore.volume_snapshot(ctx.plan, ctx.settings, handle, content_name, snapshot_name)
    steps.append(Step("content", "restore-object", content, after_platform=True, downtime=True))
    steps.append(
        Step(
            "volume-snapshot", "restore-object", volume_snapshot, after=("content",), after_platform=True, downtime=True
        )
    )
    claim_after: tuple[str, ...] = ("volume-snapshot",)
    if entry.claim_naming == "same-name":
        # The old claim goes only once the restore source is ready; its PV stays Retain.
        steps.append(
            common.release(
                ctx,
                "release-old-claim",
                entry.claim,
                after=("volume-snapshot", "retain"),
                bound_to=entry.pv,
                downtime=True,
                detached_volume=entry.volume_id,
            )
        )
        claim_after += ("release-old-claim",)
    steps.append(_gp3_claim(ctx, entry.target_claim_name, snapshot_name=snapshot_name, after=claim_after))
    if entry.claim_naming == "same-name":
        # Same name: the workload finds its claim again. (A renamed claim needs the workload
        # repointed first, so the user starts it; see README.)
        scale_back = common.restart(ctx, "scale-back", after=("claim",))
        if scale_back:
            steps.append(scale_back)
            resume = common.resume_owners(ctx, "", entry.claim, after=("scale-back",))
            if resume:
                steps.append(resume)
    return steps


def _last_restore(ctx: Context) -> Ref | None:
    """The VolumeSnapshot name the claim restored from, while its snapshot is still declared
    (until cleanup): the claim's declared inputs then stay as they were at the cutover."""
    cutovers = common.cutover_count(ctx)
    if ctx.phase == "cleanup" or cutovers == 0:
        return None
    return Ref(f"{final_purpose(cutovers)}-snapshot", restore.named_after_snapshot(ctx.plan.entry.claim))


def _gp3_claim(ctx: Context, name: str, *, snapshot_name: Ref | None, after: tuple[str, ...]) -> Step:
    """Kept on destroy and on removal from config; its data source is history once restored."""
    body = restore.restored_claim(ctx.plan, name, snapshot_name)
    if snapshot_name is None:
        del body["spec"]["dataSource"]
    return Step(
        "claim",
        "claim",
        {"metadata": body["metadata"], "spec": body["spec"]},
        after=after,
        after_platform=True,
        retain_on_delete=True,
        ignore_changes=("spec.dataSource", "spec.dataSourceRef"),
        downtime=ctx.phase == "cutover",
    )


def _rollback(ctx: Context) -> list[Step]:
    entry = ctx.plan.entry
    after_cutover = common.rolled_back_cutover(ctx)
    steps: list[Step] = []
    restart_after: tuple[str, ...] = ("retain",)
    held = False
    if entry.delete_restored_claim and after_cutover:
        # The gp3 claim cannot go while a pod uses it (kubernetes.io/pvc-protection).
        steps, stop_after = common.hold_owners(ctx, "rollback-", after=("retain",))
        held = bool(steps)
        stopped = common.scale(ctx, "rollback-quiesce", 0, after=stop_after)
        if stopped:
            steps.append(stopped)
        steps.append(
            common.release(
                ctx,
                "release-gp3-claim",
                entry.target_claim_name,
                after=("rollback-quiesce",) if stopped else stop_after,
                not_bound_to=entry.pv,
            )
        )
        restart_after = ("release-gp3-claim",)
        if entry.claim_naming == "same-name":
            steps += common.rollback_claim(ctx, after=("release-gp3-claim",))
            restart_after = ("rollback-claim",)
    elif after_cutover:
        # Rename mode: the gp3 claim stays next to the old one.
        steps.append(_gp3_claim(ctx, entry.new_claim_name, snapshot_name=_last_restore(ctx), after=("retain",)))
    # Always: a cutover that failed after its quiesce is not recorded as applied, and the
    # workload must run again whatever step it stopped at. A no-op when it already runs.
    restart = common.restart(ctx, "rollback-scale-back", after=restart_after)
    if restart:
        steps.append(restart)
    if held and entry.claim_naming == "same-name":
        resume = common.resume_owners(
            ctx, "rollback-", entry.claim, after=("rollback-scale-back",) if restart else restart_after
        )
        if resume:
            steps.append(resume)
    return steps
