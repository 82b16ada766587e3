"""Steps every strategy shares: the Retain patch, snapshots, the workload's stop and start, claim
releases, and the phase record."""

from dataclasses import dataclass

from gp3migrate.config.entry_facts import entry_facts
from gp3migrate.config.phases import Applied, Phase
from gp3migrate.config.settings import Settings
from gp3migrate.planning import restore
from gp3migrate.planning.plan import MigrationPlan
from gp3migrate.planning.steps import Step

DETACH_TIMEOUT_SECONDS = 15 * 60
RELEASE_TIMEOUT_SECONDS = 10 * 60
SCALE_BACK_TIMEOUT_SECONDS = 10 * 60
MODIFY_TIMEOUT_SECONDS = 30 * 60


@dataclass(frozen=True)
class Context:
    """What a strategy reads besides the plan: the stack's settings, its name, and what the last
    `up` applied for this volume (None: never applied)."""

    plan: MigrationPlan
    settings: Settings
    stack: str
    previous: Applied | None

    @property
    def phase(self) -> Phase:
        return self.plan.entry.phase

    @property
    def region(self) -> str:
        return self.settings.cluster.region


def retain(ctx: Context, *, after: tuple[str, ...] = (), reclaim: str = "Retain") -> Step:
    """Retain on the source PV first: from here on, deleting a claim cannot delete the volume.
    Kept on destroy: removing the Patch would hand the field back (pulumi-kubernetes Patch docs)."""
    body = restore.retain_patch(ctx.plan)
    body["spec"]["persistentVolumeReclaimPolicy"] = reclaim
    return Step(
        "retain",
        "pv-patch",
        {"metadata": body["metadata"], "spec": body["spec"]},
        after=after,
        after_platform=True,
        retain_on_delete=True,
    )


def snapshot(ctx: Context, purpose: str, *, after: tuple[str, ...], downtime: bool = False) -> Step:
    """An EBS snapshot of the source, protected until finalize; in finalize, kept in AWS when the
    stack lets go of it if asked to keep them (retainOnDelete is read from the old state:
    pulumi/pulumi 13428, so cleanup is a later edit)."""
    entry = ctx.plan.entry
    unprotected = entry.phase == "finalize"
    return Step(
        f"{purpose}-snapshot",
        "ebs-snapshot",
        {
            "volume_id": entry.volume_id,
            "description": f"eks-gp3-migration {ctx.stack} {entry.key} {purpose} ({entry.pv})",
            "tags": restore.snapshot_tags(ctx.plan, ctx.settings, ctx.stack, purpose=purpose),
        },
        after=after,
        protect=not unprotected,
        retain_on_delete=unprotected and entry.keep_snapshots,
        create_timeout=f"{ctx.plan.snapshot_timeout_minutes}m",
        downtime=downtime,
    )


def _owners(ctx: Context, *, resumable_only: bool = False) -> list[dict[str, str]]:
    """The entry's owners that act during the window, as the gates read them; `resumable_only`:
    without those a resume would let delete and recreate the claim (window_owners.recreates_claim)."""
    return [
        {"kind": o.kind, "name": o.name, "namespace": o.namespace}
        for o in ctx.plan.entry.window_owners
        if not (resumable_only and o.resume_recreates_claim)
    ]


def hold_owners(ctx: Context, prefix: str, *, after: tuple[str, ...]) -> tuple[list[Step], tuple[str, ...]]:
    """Before a stop: with holdOwners, the program holds the owners; then, always, a gate proves
    them held right before the stop (a controller resumed since is caught). Returns the steps and
    what the stop must wait for (`after` when there is no owner)."""
    owners = _owners(ctx)
    if not owners:
        return [], after
    steps = []
    gate_after = after
    if ctx.plan.entry.hold_owners:
        steps.append(Step(f"{prefix}hold-owners", "owners-hold", {"owners": owners, "action": "hold"}, after=after))
        gate_after = (f"{prefix}hold-owners",)
    steps.append(Step(f"{prefix}owners-held", "owners-held", {"owners": owners}, after=gate_after))
    return steps, (f"{prefix}owners-held",)


def resume_owners(ctx: Context, prefix: str, claim: str, *, after: tuple[str, ...]) -> Step | None:
    """With holdOwners, the owners resumed once the claim is bound and the workload is back (after
    its scale-back, which waits for ready pods); the step proves the claim bound first. An owner
    whose recorded sync options would delete and recreate the claim from its old source is left
    held (window_owners.recreates_claim says why; the followUp output and a warning name it)."""
    owners = _owners(ctx, resumable_only=True)
    if not owners or not ctx.plan.entry.hold_owners:
        return None
    body = {"owners": owners, "action": "resume", "namespace": ctx.plan.entry.namespace, "claims": [claim]}
    return Step(f"{prefix}resume-owners", "owners-hold", body, after=after)


def window(ctx: Context, *, volume_id: str | None) -> dict[str, object]:
    """What the release step re-checks right before its delete (preconditions.Window)."""
    entry = ctx.plan.entry
    body: dict[str, object] = {}
    if entry.workload is not None and entry.quiesce == "scale":
        body["workload"] = {"kind": entry.workload.kind, "name": entry.workload.name}
    if volume_id:
        body["volume_id"] = volume_id
        body["region"] = ctx.region
    owners = _owners(ctx)
    if owners:
        body["owners"] = owners
    return body


def scale(ctx: Context, name: str, replicas: int, *, after: tuple[str, ...]) -> Step | None:
    """A one-way scale of the workload (never a declared `replicas`: `up --refresh` would read
    the live value back and the next `up` apply it again). None when the user stops the app."""
    entry = ctx.plan.entry
    if entry.quiesce != "scale" or entry.workload is None:
        return None
    return Step(
        name,
        "scale",
        {
            "kind": entry.workload.kind,
            "namespace": entry.namespace,
            "workload": entry.workload.name,
            "replicas": replicas,
            "timeout_seconds": SCALE_BACK_TIMEOUT_SECONDS if replicas else 0,
        },
        after=after,
    )


def restart(ctx: Context, name: str, *, after: tuple[str, ...]) -> Step | None:
    """The workload started again with the replicas discovery recorded."""
    workload = ctx.plan.entry.workload
    return scale(ctx, name, workload.replicas, after=after) if workload else None


def detached(ctx: Context, *, after: tuple[str, ...]) -> Step:
    """Proof that nothing writes: AWS reports the volume `available` (a scaled-down workload is
    not proof; terminating pods still hold the mount)."""
    return Step(
        "detached",
        "detached",
        {"volume_id": ctx.plan.entry.volume_id, "region": ctx.region, "timeout_seconds": DETACH_TIMEOUT_SECONDS},
        after=after,
        downtime=True,
    )


def release(
    ctx: Context,
    name: str,
    claim: str,
    *,
    after: tuple[str, ...],
    bound_to: str | None = None,
    not_bound_to: str | None = None,
    downtime: bool = False,
    detached_volume: str | None = None,
) -> Step:
    """Deletes one claim of this volume's namespace once its PV is Retain; re-checks what it is
    bound to, and that its ownership keys are the recorded ones, when it runs; and the window:
    the workload at 0 with no pod on the claim, `detached_volume` still detached, the owners held."""
    body: dict[str, object] = {
        "namespace": ctx.plan.entry.namespace,
        "claim": claim,
        "timeout_seconds": RELEASE_TIMEOUT_SECONDS,
        "bound_to": bound_to,
        "not_bound_to": not_bound_to,
    }
    checks = window(ctx, volume_id=detached_volume)
    if checks:
        body["window"] = checks
    expected = expected_ownership(ctx, claim)
    if expected is not None:
        body["ownership"] = expected
    return Step(
        name,
        "claim-release",
        body,
        after=after,
        downtime=downtime,
    )


def expected_ownership(ctx: Context, claim: str) -> dict[str, dict[str, str]] | None:
    """The ownership keys the claim `claim` carries when the plan is right: the source claim's as
    discovery recorded them, which the program's claims of the same name carry again, and none on a
    claim of another name (restore.carried_metadata). None: nothing recorded (older entries)."""
    recorded = ctx.plan.entry.claim_metadata
    if recorded is None:
        return None
    if claim != ctx.plan.entry.claim:
        return {"labels": {}, "annotations": {}}
    return recorded.ownership()


def claim_bound(ctx: Context, claim: str, *, after: tuple[str, ...]) -> Step:
    return Step("claim-bound", "claim-bound", {"namespace": ctx.plan.entry.namespace, "claim": claim}, after=after)


def rollback_claim(ctx: Context, *, after: tuple[str, ...]) -> list[Step]:
    """The old claim name on the retained source PV: the PV reserved for it, then the claim (its
    own class and capacity)."""
    patch = restore.rebind_patch(ctx.plan)
    claim = restore.rollback_claim(ctx.plan, ctx.settings.storage.gp2_class_name)
    return [
        Step(
            "rebind",
            "pv-patch",
            {"metadata": patch["metadata"], "spec": patch["spec"]},
            after=after,
            retain_on_delete=True,
            # The PV controller fills the uid in once the claim binds; `up --refresh` reads it
            # back, and applying "" again would unbind a bound PV (simulation: rollback).
            ignore_changes=("spec.claimRef.uid",),
        ),
        Step(
            "rollback-claim",
            "claim",
            {"metadata": claim["metadata"], "spec": claim["spec"]},
            after=("rebind",),
            retain_on_delete=True,
        ),
    ]


def cutover_count(ctx: Context) -> int:
    """Cutovers applied so far, this one included: each takes its own final snapshot, and a
    cutover after a rollback takes a new one rather than reusing a stale copy."""
    previous = ctx.previous
    cutovers = previous.cutovers if previous else 0
    if ctx.phase == "cutover" and not (previous and previous.phase == "cutover"):
        cutovers += 1
    return cutovers


def rolled_back_cutover(ctx: Context) -> bool:
    previous = ctx.previous
    return (
        ctx.phase == "rollback"
        and previous is not None
        and (previous.phase == "cutover" or previous.rolled_back_cutover)
    )


def applied(ctx: Context) -> Applied:
    """What this run records for the next one (published only once every step completed)."""
    entry = ctx.plan.entry
    return Applied(
        phase=entry.phase,
        source_deleted=entry.phase in ("finalize", "cleanup") and entry.delete_source,
        snapshots_unprotected=entry.phase in ("finalize", "cleanup"),
        cutovers=cutover_count(ctx),
        rolled_back_cutover=rolled_back_cutover(ctx),
        keep_snapshots=entry.keep_snapshots,
        strategy=entry.strategy,
        facts=entry_facts(entry),
    )
