"""Proof steps of the cutover, run by the dynamic resources in components/gate_providers.py.

- Detached: a scaled-down workload is not proof that nothing writes (terminating pods still hold
  the mount); the EBS volume being `available`, as AWS reports it, is (DESIGN "Facts").
- In use: before the source may be deleted, the volume serving the new claim (claim -> PV ->
  volume) must be the one restored from this migration's final snapshot, and attached to a node;
  and the source PV must be Released. Tags prove nothing: the CSI driver tags every volume it
  creates with the claim's name and namespace (`extraCreateMetadata`, default true in the chart).
- Claim release: deletes a claim only after making sure its volume survives (Retain), and that
  nothing can use the claim's name meanwhile: the workload still at 0 with no pod on the claim,
  the volume still detached, its GitOps owners and autoscaler still held (issue 22 item 3).
- Owners held: an Argo CD Application, Flux Kustomization or HelmRelease, or KEDA ScaledObject
  that would undo the window is held (gp3migrate/config/window_owners.py), checked right before
  the stop; with holdOwners the program holds them itself and resumes them at the end.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gp3migrate.checks import aws_clients
from gp3migrate.checks.volume_poller import MODIFICATIONS, VolumePoller
from gp3migrate.config import claim_identity, window_owners


class GateError(RuntimeError):
    pass


def _boto3_ec2(region: str) -> Any:
    return aws_clients.client("ec2", region)


@dataclass
class Runtime:
    """Where the gates reach AWS and how they wait. Real runs use boto3 and the wall clock; the
    simulation (gp3migrate/sim) swaps in its moto-backed clients and its simulated clock, so the
    same gate code runs in both."""

    ec2: Callable[[str], Any] = _boto3_ec2
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Seconds since the epoch, for what a step records of when it ran (a workload's stop and start:
    # its downtime); the simulation's clock in the simulation.
    now: Callable[[], float] = time.time
    # Build a CoreV1Api / AppsV1Api from (kubeconfig, context); None: from the kubeconfig
    # (components/gate_providers.py).
    core_api: Callable[[str, str | None], Any] | None = None
    apps_api: Callable[[str, str | None], Any] | None = None
    # KMS and IAM clients by region for the driver check (components/driver_check_provider.py); None: boto3.
    kms: Callable[[str], Any] | None = None
    iam: Callable[[str], Any] | None = None
    # A CustomObjectsApi from (kubeconfig, context), for Argo CD, Flux and KEDA objects; None: from the kubeconfig.
    custom_api: Callable[[str, str | None], Any] | None = None
    # The process's waits on volumes, batched into one DescribeVolumes (volume_poller.py).
    poller: VolumePoller = field(default_factory=VolumePoller)


RUNTIME = Runtime()


def wait_until_detached(
    ec2: Any,
    volume_id: str,
    *,
    timeout_seconds: int,
    poll_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    poller: VolumePoller | None = None,
) -> dict[str, Any]:
    """Return the volume once it is `available`; raise GateError naming what still holds it. Polls
    through `poller`, with the other waits of the process (None: a poller of its own)."""
    start = clock()
    deadline = start + timeout_seconds
    with (poller or VolumePoller()).watch(ec2, volume_id, now=start) as watch:
        while True:
            volume = watch.look(clock)
            if volume is None:
                raise GateError(f"{volume_id} does not exist in this region; nothing after this step has been done")
            if volume["State"] == "available":
                return dict(volume)
            if clock() >= deadline:
                holders = ", ".join(a.get("InstanceId", "?") for a in volume.get("Attachments", [])) or "none listed"
                raise GateError(
                    f"{volume_id} is still {volume['State']} (attached to: {holders}) after {timeout_seconds}s: "
                    "the workload has not released it. Check for pods still terminating or another mount, "
                    "then run `pulumi up` again; nothing after this step has been done."
                )
            sleep(poll_seconds)


def restored_volume_in_use(
    ec2: Any, *, core: Any, namespace: str, claim: str, snapshot_id: str, source_volume_id: str
) -> str:
    """The id of the volume now serving the claim, proved to be this migration's copy; GateError
    naming what differs otherwise. Read when the step runs, right before the source PV turns Delete:
    the claim -> the PV it is bound to -> that PV's EBS volume, which must be created from
    `snapshot_id` (the last cutover's final snapshot, the id in the stack's state), not the source,
    and attached to a node (so the new claim is mounted).

    Tags prove nothing: the EBS CSI driver tags every volume it provisions with the claim's name and
    namespace (`extraCreateMetadata`), so a claim deleted and created again under the same name (a
    restore from backup, a GitOps sync) is served by a new, empty volume with the very same tags.
    """
    from botocore.exceptions import ClientError
    from kubernetes.client.exceptions import ApiException

    where = f"refusing to hand the source volume {source_volume_id} to deletion"
    try:
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
    except ApiException as err:
        if err.status == 404:
            raise GateError(
                f"{where}: the restored claim {namespace}/{claim} does not exist. Nothing was changed."
            ) from err
        raise
    pv_name = pvc.spec.volume_name if pvc.spec else None
    if not pv_name:
        raise GateError(
            f"{where}: the restored claim {namespace}/{claim} is not bound, so it is not mounted by any node: start "
            "the workload on it and verify the data, then run `pulumi up` again. Nothing was changed."
        )
    serving_pv = _read_pv(core, pv_name)
    if serving_pv is None:
        raise GateError(f"{where}: {namespace}/{claim}'s PV {pv_name} does not exist. Nothing was changed.")
    serving = _pv_volume(serving_pv)
    if serving is None:
        raise GateError(f"{where}: {namespace}/{claim}'s PV {pv_name} points at no EBS volume. Nothing was changed.")
    if serving == _bare_volume_id(source_volume_id):
        raise GateError(
            f"{where}: {namespace}/{claim} is served by the source volume itself (through PV {pv_name}), not by "
            f"its copy restored from {snapshot_id}. Nothing was changed."
        )
    try:
        volume = ec2.describe_volumes(VolumeIds=[serving])["Volumes"][0]
    except ClientError as err:
        if err.response["Error"]["Code"] == "InvalidVolume.NotFound":
            raise GateError(
                f"{where}: {namespace}/{claim}'s PV {pv_name} points at {serving}, which does not exist in this "
                "region. Nothing was changed."
            ) from err
        raise
    restored_from = volume.get("SnapshotId") or ""
    if restored_from != snapshot_id:
        raise GateError(
            f"{where}: {namespace}/{claim} is served by {serving} (PV {pv_name}), which was "
            f"{f'created from {restored_from}' if restored_from else 'created empty, from no snapshot'}, not from "
            f"this migration's final snapshot {snapshot_id}: the claim no longer holds the copy this migration "
            "made. Check what replaced it and where its data is; nothing was changed."
        )
    if volume["State"] != "in-use":
        raise GateError(
            f"{where}: the restored claim {namespace}/{claim} is not mounted by any node ({serving} is "
            f"{volume['State']}): start the workload on it and verify the data, then run `pulumi up` again. "
            "Nothing was changed."
        )
    return serving


def source_pv_released(core: Any, *, pv: str, volume_id: str) -> str:
    """Right before the source PV's reclaim policy becomes Delete (deleteSource): the PV must point at
    the source volume and be Released, its claim gone. The PV controller deletes a Released PV's
    volume once its policy is Delete (pv_controller.go reclaimVolume), and a Bound or Available PV
    with Delete loses it as soon as its claim goes: a claim that still holds the source (the old
    claim of a `rename` copy), or one that may bind it, would have its data deleted later. Returns
    the PV's phase, or "already gone" (nothing left to hand over)."""
    found = _read_pv(core, pv)
    if found is None:
        return "already gone"
    where = f"refusing to set the source PV {pv} to Delete"
    points_at, source = _pv_volume(found), _bare_volume_id(volume_id)
    if points_at != source:
        raise GateError(
            f"{where}: it points at {points_at or 'no EBS volume'}, not the source volume {source}. "
            "Nothing was changed."
        )
    phase = found.status.phase if found.status else None
    if phase == "Released":
        return phase
    ref = found.spec.claim_ref
    holder = f"{ref.namespace}/{ref.name}" if ref is not None and ref.name else None
    if phase == "Bound" and holder:
        why = (
            f"it is Bound to {holder}, not Released: a claim still holds the source. Once nothing uses {holder}, "
            f"delete it (the PV is Retain, the volume stays), then run `pulumi up` again"
        )
    elif phase == "Available":
        why = (
            f"it is Available{f' and reserved for {holder}' if holder else ''}, not Released: a claim may bind it. "
            "Find out why it was freed before deleting its volume"
        )
    else:
        why = f"it is {phase or 'without a phase'}, not Released"
    raise GateError(f"{where}: {why}. Nothing was changed.")


@dataclass(frozen=True)
class Window:
    """What must stay still while a claim is released and created again (issue 22 item 3): the
    workload at 0 with no pod on the claim, the volume detached, the owners held. Each part is
    checked only when given; `apps`, `ec2` and `custom` are the clients to check it with."""

    workload: Mapping[str, str] | None = None  # {"kind", "name"}
    volume_id: str | None = None
    owners: tuple[Mapping[str, Any], ...] = ()
    apps: Any = None
    ec2: Any = None
    custom: Any = None
    # Reads the volume with the process's other waits (None: a poller of its own), on this clock.
    poller: VolumePoller | None = None
    clock: Callable[[], float] = time.monotonic


def release_claim(
    core: Any,
    *,
    namespace: str,
    claim: str,
    timeout_seconds: int,
    bound_to: str | None = None,
    not_bound_to: str | None = None,
    ownership: Mapping[str, Mapping[str, str]] | None = None,
    window: Window | None = None,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Delete a claim after setting its PV to Retain, and wait until it is gone.

    One-way, so it re-checks the world first: the claim must be bound to `bound_to` (or to any PV
    but `not_bound_to`); otherwise the name now belongs to another volume and it refuses. Its
    ownership keys (Helm, Argo CD, Flux: gp3migrate/config/claim_identity.py) must be those
    `ownership` records, the ones the claim created in its place carries; None (nothing recorded)
    means none. Then, right before the delete, the `window`: a StatefulSet scaled up after the
    claim is gone creates it again from its template, on a new, empty volume (kubernetes
    pkg/controller/statefulset createMissingPersistentVolumeClaims), and a GitOps owner recreates it
    from its manifest. Returns the name of the PV that keeps the data (None when the claim was
    already gone); when it was, the PV it was bound to must be Retain and not Bound.
    """
    from kubernetes.client.exceptions import ApiException

    try:
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
    except ApiException as err:
        if err.status == 404:
            _check_released_pv(core, namespace, claim, bound_to)
            return None
        raise
    pv_name = pvc.spec.volume_name
    if bound_to and pv_name != bound_to:
        raise GateError(
            f"refusing to delete {namespace}/{claim}: it is bound to {pv_name or 'no volume'}, not to {bound_to} "
            "(the claim this step releases); the name now serves another volume"
        )
    if not_bound_to and pv_name == not_bound_to:
        raise GateError(f"refusing to delete {namespace}/{claim}: it is bound to the source volume's PV {not_bound_to}")
    # Terminating: this step's own delete from an earlier attempt (the binding check above proved it
    # is the claim this step releases). The delete cannot be taken back, so its keys decide nothing
    # any more; what still matters is that nothing acts while it goes (the window, below).
    terminating = pvc.metadata.deletion_timestamp is not None
    _check_ownership(pvc, namespace, claim, ownership, terminating=terminating)
    if pv_name:
        core.patch_persistent_volume(pv_name, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        pv = core.read_persistent_volume(pv_name)
        if pv.spec.persistent_volume_reclaim_policy != "Retain":
            raise GateError(f"PV {pv_name} of {namespace}/{claim} is not Retain; refusing to delete the claim")
    if window is not None:
        try:
            wait_for_still_window(
                core, window, namespace=namespace, claim=claim, timeout_seconds=timeout_seconds, sleep=sleep
            )
        except GateError as refused:
            if not terminating:
                raise
            raise GateError(
                f"{str(refused).removesuffix(' Nothing was deleted.')} The claim was already being deleted by an "
                "earlier attempt of this step: once the window is still, `pulumi up` again lets it go and creates "
                "it again bound to the volume."
            ) from None
    if not terminating:
        core.delete_namespaced_persistent_volume_claim(claim, namespace)
    waited = 0.0
    while waited < timeout_seconds:
        try:
            core.read_namespaced_persistent_volume_claim(claim, namespace)
        except ApiException as err:
            if err.status == 404:
                return str(pv_name) if pv_name else None
            raise
        sleep(poll_seconds)
        waited += poll_seconds
    raise GateError(
        f"{namespace}/{claim} still exists after {timeout_seconds}s (a pod still uses it: "
        "kubernetes.io/pvc-protection); stop the pod and run `pulumi up` again"
    )


def _check_released_pv(core: Any, namespace: str, claim: str, pv_name: str | None) -> None:
    """The claim is gone already (a run stopped after its delete, or a controller deleted it: a
    StatefulSet's whenScaled: Delete): its PV, if it still exists, must keep the volume (Retain) and
    be free (not Bound to a claim made meanwhile)."""
    if not pv_name:
        return
    pv = _read_pv(core, pv_name)
    if pv is None:
        return
    policy = pv.spec.persistent_volume_reclaim_policy
    phase = pv.status.phase if pv.status else None
    if policy != "Retain":
        raise GateError(
            f"{namespace}/{claim} is already gone and its PV {pv_name} is {policy}, not Retain: its volume may be "
            f"deleted. Set it back now: kubectl patch pv {pv_name} -p "
            """'{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'; then run `pulumi up` again. Nothing was done."""
        )
    if phase == "Bound":
        ref = pv.spec.claim_ref
        holder = f"{ref.namespace}/{ref.name}" if ref is not None else "a claim"
        raise GateError(
            f"{namespace}/{claim} is already gone, but its PV {pv_name} is Bound again (to {holder}): something "
            "created a claim in the window. Stop it, check which data that claim holds, then run `pulumi up` again. "
            "Nothing was done."
        )


def _claim_pods(core: Any, namespace: str, claim: str) -> list[str]:
    """The pods that use the claim and are not on their way out (no deletionTimestamp, not finished)."""
    pods = core.list_namespaced_pod(namespace).items
    found = []
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None or (pod.status and pod.status.phase in ("Succeeded", "Failed")):
            continue
        volumes = pod.spec.volumes or []
        if any(v.persistent_volume_claim and v.persistent_volume_claim.claim_name == claim for v in volumes):
            found.append(str(pod.metadata.name))
    return sorted(found)


def _workload_replicas(apps: Any, kind: str, namespace: str, name: str) -> int:
    read = apps.read_namespaced_deployment if kind == "Deployment" else apps.read_namespaced_stateful_set
    return int(read(name, namespace).spec.replicas or 0)


def wait_for_still_window(
    core: Any,
    window: Window,
    *,
    namespace: str,
    claim: str,
    timeout_seconds: int,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Refuse at once when an owner is no longer held or the workload was scaled up; wait (up to
    the timeout) for pods still on the claim to go and the volume to detach, then refuse naming them."""
    waited = 0.0
    while True:
        if window.owners:
            check_owners_held(window.custom, window.owners, step=f"deleting the claim {namespace}/{claim}")
        if window.workload is not None:
            kind, name = window.workload["kind"], window.workload["name"]
            replicas = _workload_replicas(window.apps, kind, namespace, name)
            if replicas:
                raise GateError(
                    f"refusing to delete {namespace}/{claim}: {kind} {name} was scaled to {replicas} during the "
                    "window. Without its claim a StatefulSet's controller creates it again on a new, empty volume, "
                    "and a Deployment's pods start on it. Find what scaled it (a GitOps sync, an autoscaler, a "
                    "person), hold it, scale the workload to 0, then run `pulumi up` again. Nothing was deleted."
                )
        pods = _claim_pods(core, namespace, claim)
        state = _window_volume_state(window)
        if not pods and state in (None, "available"):
            return
        if waited >= timeout_seconds:
            held = []
            if pods:
                held.append(f"pods still use it: {', '.join(pods)}")
            if state not in (None, "available"):
                held.append(f"{window.volume_id} is {state}")
            raise GateError(
                f"refusing to delete {namespace}/{claim} after {timeout_seconds}s: {'; '.join(held)}. Something "
                "started the application in the window; stop it, then run `pulumi up` again. Nothing was deleted."
            )
        sleep(poll_seconds)
        waited += poll_seconds


def _window_volume_state(window: Window) -> str | None:
    """The window's volume's state, read with the process's other waits; None: no volume to check."""
    if not window.volume_id or window.ec2 is None:
        return None
    now = window.clock()
    with (window.poller or VolumePoller()).watch(window.ec2, window.volume_id, now=now) as watch:
        volume = watch.look(window.clock)
    return str(volume["State"]) if volume is not None else "not found"


def _owner_object(custom: Any, owner: Mapping[str, Any]) -> Mapping[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    resource = window_owners.RESOURCES[str(owner["kind"])]
    try:
        found = custom.get_namespaced_custom_object(
            resource.group, resource.version, owner["namespace"], resource.plural, owner["name"]
        )
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return dict(found)


def _label(owner: Mapping[str, Any]) -> str:
    return f"{owner['kind']} {owner['namespace']}/{owner['name']}"


def check_owners_held(custom: Any, owners: Sequence[Mapping[str, Any]], *, step: str) -> None:
    """GateError naming every owner that would act during the window, with the command that holds
    it and the one that resumes it after."""
    problems = []
    for owner in owners:
        kind, name, namespace = str(owner["kind"]), str(owner["name"]), str(owner["namespace"])
        if not window_owners.acts_in_window(kind):
            continue
        found = _owner_object(custom, owner)
        if found is None:
            problems.append(
                f"{_label(owner)} was not found: if it no longer manages the claim, run `gp3migrate discover` "
                "again so the entry's owners say so"
            )
            continue
        reason = window_owners.not_held(kind, found)
        if reason:
            problems.append(
                f"{_label(owner)} {reason}: hold it with `{window_owners.hold_command(kind, name, namespace)}` "
                f"and resume it after the cutover with `{window_owners.resume_command(kind, name, namespace)}`"
            )
    if problems:
        raise GateError(
            f"refusing to start {step}: {'; '.join(problems)}. While it runs, it would restore the workload's "
            "replicas and recreate a deleted claim from its source, on a new, empty volume. Or set holdOwners: "
            "true on the entry to let the program hold and resume it. Nothing was changed."
        )


def hold_owners(
    core: Any,
    custom: Any,
    owners: Sequence[Mapping[str, Any]],
    *,
    action: str,
    namespace: str = "",
    claims: Sequence[str] = (),
) -> list[str]:
    """Hold (`action` "hold") or resume ("resume") each owner with the patch its documented command
    makes; a resume first proves every claim in `claims` bound. Returns what it patched."""
    if action == "resume":
        for claim in claims:
            claim_bound(core, namespace=namespace, claim=claim)
    patched = []
    for owner in owners:
        kind = str(owner["kind"])
        if not window_owners.acts_in_window(kind):
            continue
        resource = window_owners.RESOURCES[kind]
        body = window_owners.hold_patch(kind) if action == "hold" else window_owners.resume_patch(kind)
        custom.patch_namespaced_custom_object(
            resource.group, resource.version, owner["namespace"], resource.plural, owner["name"], body
        )
        patched.append(_label(owner))
    return patched


def _check_ownership(
    pvc: Any,
    namespace: str,
    claim: str,
    recorded: Mapping[str, Mapping[str, str]] | None,
    *,
    terminating: bool = False,
) -> None:
    """Refuse, naming each key, when the live claim's ownership keys differ from the record: the
    claim created in its place would carry the recorded ones, and its owner would no longer
    recognise it (Helm: "invalid ownership metadata" on the next upgrade), or an owner the plan does
    not know about now manages it. Not for a `terminating` claim: it is already being deleted, and
    refusing would leave it half gone without the claim that replaces it."""
    if terminating:
        return
    metadata = getattr(pvc, "metadata", None)
    live = claim_identity.ownership(getattr(metadata, "labels", None), getattr(metadata, "annotations", None))
    differences = claim_identity.ownership_differences(recorded or {}, live)
    if not differences:
        return
    if recorded is None:
        raise GateError(
            f"refusing to delete {namespace}/{claim}: it carries ownership keys its entry does not record "
            f"({'; '.join(differences)}): the claim created in its place would lose them and its owner would no "
            "longer recognise it. Record the claim's labels and annotations under the entry's claimMetadata "
            "(`gp3migrate discover` writes them), then run `pulumi up` again. Nothing was deleted."
        )
    raise GateError(
        f"refusing to delete {namespace}/{claim}: its ownership changed since its claimMetadata was recorded "
        f"({'; '.join(differences)}): the claim created in its place would carry the recorded keys, which its "
        "owner would not recognise. Check who owns the claim now, set the entry's claimMetadata to what it "
        "carries, then run `pulumi up` again. Nothing was deleted."
    )


def scale_workload(
    apps: Any,
    *,
    kind: str,
    namespace: str,
    name: str,
    replicas: int,
    wait_seconds: int,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Set a workload's replicas once, and with replicas > 0 wait until that many pods are ready.

    A one-way step rather than a declared `replicas`: a declared value is read back by
    `up --refresh` and applied again by the next `up` (pulumi-kubernetes Read/Diff on live state),
    which would stop a workload the cutover had started. Returns the replicas it found.
    """
    read, patch = (
        (apps.read_namespaced_deployment, apps.patch_namespaced_deployment_scale)
        if kind == "Deployment"
        else (apps.read_namespaced_stateful_set, apps.patch_namespaced_stateful_set_scale)
    )
    current = read(name, namespace)
    found = int(current.spec.replicas or 0)
    if replicas == 0 and kind == "StatefulSet":
        _check_claim_retention(current, namespace, name)
    if found != replicas:
        patch(name, namespace, {"spec": {"replicas": replicas}})
    if replicas == 0:
        return found
    deadline = clock() + wait_seconds
    while True:
        ready = int(read(name, namespace).status.ready_replicas or 0)
        if ready >= replicas:
            return found
        if clock() >= deadline:
            raise GateError(
                f"{kind} {namespace}/{name} has {ready} of {replicas} pods ready after {wait_seconds}s: check its "
                "pods and claims (kubectl describe), then run `pulumi up` again"
            )
        sleep(poll_seconds)


def _check_claim_retention(statefulset: Any, namespace: str, name: str) -> None:
    """Live, right before the stop: a retention policy set to Delete since discovery would have the
    garbage collector delete the claims this scale-down leaves."""
    policy = getattr(statefulset.spec, "persistent_volume_claim_retention_policy", None)
    if policy is None:
        return
    found = {"whenDeleted": policy.when_deleted or "Retain", "whenScaled": policy.when_scaled or "Retain"}
    refusal = window_owners.retention_refusal(namespace, name, found)
    if refusal:
        raise GateError(f"refusing to scale it to 0: {refusal}. Nothing was changed.")


def claim_bound(core: Any, *, namespace: str, claim: str) -> str:
    """The PV a claim is bound to; GateError when it is not bound (yet).

    Finalize removes the restore objects, and a VolumeSnapshot cannot be deleted while a claim
    still restores from it (external-snapshotter `volumesnapshot-as-source-protection`): the delete
    would hang until its timeout. Checking first stops the `up` before any delete, with the reason.
    """
    from kubernetes.client.exceptions import ApiException

    try:
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
    except ApiException as err:
        if err.status == 404:
            raise GateError(f"{namespace}/{claim} does not exist: nothing to finalize") from err
        raise
    phase = pvc.status.phase if pvc.status else None
    if phase != "Bound" or not pvc.spec.volume_name:
        raise GateError(
            f"{namespace}/{claim} is not bound ({phase or 'no status'}): start the workload on it so the "
            "volume is restored, verify the data, then run `pulumi up` again; nothing was removed"
        )
    return str(pvc.spec.volume_name)


# -- rehome: the same EBS volume, gp3 in place, served by a static CSI PV ------------------------------

# AmazonEBSCSIDriverPolicyV2 lets the driver snapshot a volume, and create volumes from or delete its
# snapshots, only when the volume carries this tag; attach, detach, modify and delete also accept
# `kubernetes.io/created-for/pvc/name`, which the in-tree provisioner set
# (shared/fixtures/aws-ebs-csi-driver-2.64.0/AmazonEBSCSIDriverPolicyV2.json, statements
# CreateSnapshotsFromManagedVolumes and ManageManagedVolumes). The policy forbids the driver itself
# to add it (ModifyTagsOnManagedVolumes excludes the key), so the migration does.
DRIVER_VOLUME_TAGS = {"ebs.csi.aws.com/cluster": "true"}
# EC2 user guide "Tag your Amazon EC2 resources", tag restrictions: 50 tags per resource.
MAX_TAGS_PER_RESOURCE = 50


def _volume(ec2: Any, volume_id: str, step: str) -> dict[str, Any]:
    """DescribeVolumes of one volume; GateError (nothing done) when EC2 does not know it."""
    from botocore.exceptions import ClientError

    try:
        return dict(ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])
    except ClientError as err:
        if err.response["Error"]["Code"] == "InvalidVolume.NotFound":
            raise GateError(f"{step}: {volume_id} does not exist in this region; nothing was changed") from err
        raise


def tag_volume(ec2: Any, volume_id: str, tags: dict[str, str]) -> dict[str, str]:
    """Add the tags the volume lacks and return them (empty when it has them all).

    Only CreateTags, of the missing keys: no tag is removed, and another key's value is never
    touched. A key already set to a different value is refused rather than overwritten (someone set
    it on purpose, and a second owner fighting over it would flip it on every run).
    """
    volume = _volume(ec2, volume_id, "tagging")
    found = {t["Key"]: t["Value"] for t in volume.get("Tags", [])}
    clashes = sorted(k for k in tags if k in found and found[k] != tags[k])
    if clashes:
        shown = ", ".join(f"{k}={found[k]!r} (wanted {tags[k]!r})" for k in clashes)
        raise GateError(
            f"refusing to tag {volume_id}: it already has {shown}; no tag was changed. Set the value by hand "
            "if the volume may be handed to the EBS CSI driver, then run `pulumi up` again"
        )
    missing = {k: tags[k] for k in sorted(tags) if k not in found}
    if not missing:
        return {}
    if len(found) + len(missing) > MAX_TAGS_PER_RESOURCE:
        raise GateError(
            f"refusing to tag {volume_id}: it has {len(found)} tags and needs {len(missing)} more "
            f"({', '.join(missing)}), over EC2's {MAX_TAGS_PER_RESOURCE} per resource; no tag was changed"
        )
    _through_throttling(
        lambda: ec2.create_tags(Resources=[volume_id], Tags=[{"Key": k, "Value": v} for k, v in missing.items()])
    )
    return missing


# How long an idempotent call keeps going through EC2's throttling once botocore's own retries are
# spent (10 attempts, about two minutes: aws_clients.py): a mutating bucket refills at a few tokens a
# second shared by the whole account (EC2 "Request throttling"), so a busy account can drain it for
# longer than one call's retries; a one-way step fails only after this, naming the throttling.
THROTTLED_FOR_SECONDS = 10 * 60
THROTTLED_PAUSE_SECONDS = 30


def _through_throttling(call: Callable[[], Any]) -> Any:
    """`call` (idempotent), again after a pause while EC2 answers RequestLimitExceeded."""
    from botocore.exceptions import ClientError

    runtime = RUNTIME
    deadline = runtime.clock() + THROTTLED_FOR_SECONDS
    while True:
        try:
            return call()
        except ClientError as err:
            throttled = err.response.get("Error", {}).get("Code") == "RequestLimitExceeded"
            if not throttled or runtime.clock() >= deadline:
                raise
        runtime.sleep(THROTTLED_PAUSE_SECONDS)


# ModifyVolume (EC2 API reference, and botocore's ec2 service model since 1.3x): "After you initiate
# a volume modification, you must wait for that modification to reach the completed state before
# you can initiate another modification for the same volume. You can modify a volume up to four
# times within a rolling 24-hour period [...] If you exceed this limit, you get an error message
# that indicates when you can perform your next modification." Older text: "wait at least six hours"
# between modifications. Refusals: IncorrectModificationState while one is modifying or optimizing
# ("cannot be modified in modification state OPTIMIZING"), VolumeModificationRateExceeded past the
# rate ("You've reached the maximum modification rate per volume limit", AWS re:Post knowledge
# center on EKS volume modifications).
MODIFICATIONS_PER_DAY = 4
_IN_FLIGHT = ("modifying", "optimizing")
# The volume serves I/O at the new type once the modification is `optimizing` (EBS user guide
# "Monitor the progress of volume modifications": performance is never below the source's then).
_USABLE = ("optimizing", "completed")


def _modifications(ec2: Any, volume_id: str) -> list[dict[str, Any]]:
    """The volume's modifications, oldest first. AWS answers InvalidVolumeModification.NotFound for a
    volume never modified (aws-ebs-csi-driver pkg/cloud isAWSErrorModificationNotFound); moto answers
    an empty list. AWS may list only the latest; moto lists them all."""
    from botocore.exceptions import ClientError

    try:
        found = ec2.describe_volumes_modifications(VolumeIds=[volume_id]).get("VolumesModifications", [])
    except ClientError as err:
        if err.response["Error"]["Code"] == "InvalidVolumeModification.NotFound":
            return []
        raise
    return _oldest_first(found)


def _oldest_first(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ordered = sorted(
        enumerate(found), key=lambda pair: (pair[1].get("StartTime") is not None, pair[1].get("StartTime"), pair[0])
    )
    return [m for _, m in ordered]


def _targets(modification: dict[str, Any]) -> str:
    return (
        f"{modification.get('TargetVolumeType', '?')} {modification.get('TargetIops', '?')} IOPS "
        f"{modification.get('TargetThroughput', '?')} MiB/s"
    )


def _is_to(modification: dict[str, Any], iops: int, throughput: int) -> bool:
    return (
        modification.get("TargetVolumeType") == "gp3"
        and modification.get("TargetIops") == iops
        and modification.get("TargetThroughput") == throughput
    )


def _utc(moment: Any) -> str:
    """A StartTime as UTC ISO 8601 (botocore parses EC2's timestamps into aware datetimes)."""
    from datetime import UTC

    return str(moment.astimezone(UTC).isoformat())


def _in_flight_refusal(volume_id: str, modification: dict[str, Any], aws_said: str = "") -> GateError:
    started = modification.get("StartTime")
    return GateError(
        f"{volume_id} was left unchanged: another modification (to {_targets(modification)}, started "
        f"{_utc(started) if started else 'at an unknown time'}) is {modification.get('ModificationState')} "
        f"at {modification.get('Progress', '?')}%, and EC2 takes no other until it is completed. Retry after "
        "`aws ec2 describe-volumes-modifications` shows it completed (a fully used 1 TiB volume takes about "
        f"6 hours), then run `pulumi up` again.{aws_said}"
    )


def _rate_refusal(volume_id: str, history: list[dict[str, Any]], aws_said: str) -> GateError:
    """When the rolling 24 hours let a fifth modification in: 24 h after the oldest of the last
    four starts; with fewer listed (AWS may list only the latest), 24 h after the latest start is
    the latest it can be."""
    from datetime import timedelta

    starts = sorted(m["StartTime"] for m in history if m.get("StartTime") is not None)
    if len(starts) >= MODIFICATIONS_PER_DAY:
        when = f"after {_utc(starts[-MODIFICATIONS_PER_DAY] + timedelta(hours=24))}"
    elif starts:
        when = f"at the latest after {_utc(starts[-1] + timedelta(hours=24))}"
    else:
        when = "after the time EC2 names above (no modification start time was listed)"
    return GateError(
        f"{volume_id} was left unchanged: EC2 allows {MODIFICATIONS_PER_DAY} modifications of a volume per "
        f"rolling 24 hours and this one has had them. Retry {when}, then run `pulumi up` again.{aws_said}"
    )


def modify_to_gp3(
    ec2: Any,
    volume_id: str,
    *,
    iops: int,
    throughput: int,
    expected_zone: str,
    timeout_seconds: int,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    poller: VolumePoller | None = None,
) -> dict[str, Any]:
    """Make the volume gp3 with exactly these IOPS and throughput, in place (Elastic Volumes), and
    wait until it serves I/O at them (`optimizing` or `completed`). The wait polls through `poller`,
    in one DescribeVolumesModifications with the process's other modification waits (None: a
    poller of its own).

    Re-checks the volume when it runs: it exists, lies in `expected_zone` (the PV's node affinity
    names that zone), and is gp2 or already gp3. Met again it does nothing: already gp3 at these
    values, or a modification to them in flight (then it only waits). IOPS and throughput are always
    sent: a type change alone falls back to 3,000 / 125 (DESIGN Facts), below a large gp2's baseline.

    Returns {"volumeType", "iops", "throughput", "state", "modified"}; `state` is the modification's
    (`optimizing`, `completed`) or "unmodified" for a volume that never needed one.
    """
    from botocore.exceptions import ClientError

    volume = _volume(ec2, volume_id, "gp3 modification")
    zone, kind = volume.get("AvailabilityZone"), volume.get("VolumeType")
    if zone != expected_zone:
        raise GateError(
            f"{volume_id} is in {zone}, not {expected_zone} as planned: refusing to modify it (its PV would "
            "pin pods to the wrong zone); nothing was changed"
        )
    if kind not in ("gp2", "gp3"):
        raise GateError(f"{volume_id} is {kind}, not gp2 or gp3: refusing to turn it into gp3; nothing was changed")
    history = _modifications(ec2, volume_id)
    latest = history[-1] if history else None
    in_flight = latest is not None and latest.get("ModificationState") in _IN_FLIGHT
    if latest is not None and in_flight and not _is_to(latest, iops, throughput):
        raise _in_flight_refusal(volume_id, latest)
    modified = False
    if not in_flight:
        if kind == "gp3" and volume.get("Iops") == iops and volume.get("Throughput") == throughput:
            state = latest.get("ModificationState") if latest is not None else None
            return {
                "volumeType": "gp3",
                "iops": iops,
                "throughput": throughput,
                "state": state or "unmodified",
                "modified": False,
            }
        try:
            ec2.modify_volume(VolumeId=volume_id, VolumeType="gp3", Iops=iops, Throughput=throughput)
        except ClientError as err:
            code, message = err.response["Error"]["Code"], err.response["Error"].get("Message", "")
            aws_said = f" (EC2 {code}: {message})"
            if code == "IncorrectModificationState":
                history = _modifications(ec2, volume_id)
                if history:
                    raise _in_flight_refusal(volume_id, history[-1], aws_said) from err
                raise GateError(
                    f"{volume_id} was left unchanged: a modification is in flight; retry once it is completed, "
                    f"then run `pulumi up` again.{aws_said}"
                ) from err
            if code == "VolumeModificationRateExceeded":
                raise _rate_refusal(volume_id, _modifications(ec2, volume_id), aws_said) from err
            raise GateError(
                f"{volume_id} was left unchanged: ModifyVolume to gp3 {iops} IOPS {throughput} MiB/s was "
                f"refused{aws_said}"
            ) from err
        modified = True
    start = clock()
    deadline = start + timeout_seconds
    with (poller or VolumePoller()).watch(ec2, volume_id, now=start, what=MODIFICATIONS) as watch:
        while True:
            history = _oldest_first(watch.look(clock) or [])
            current = history[-1] if history else None
            state = current.get("ModificationState") if current is not None else None
            if current is not None and state == "failed" and _is_to(current, iops, throughput):
                raise GateError(
                    f"the modification of {volume_id} to gp3 {iops} IOPS {throughput} MiB/s failed "
                    f"({current.get('StatusMessage') or 'no status message'}); AWS leaves the volume as it was "
                    "and advises a retry: run `pulumi up` again"
                )
            if current is not None and state in _USABLE and _is_to(current, iops, throughput):
                return {
                    "volumeType": "gp3",
                    "iops": iops,
                    "throughput": throughput,
                    "state": state,
                    "modified": modified,
                }
            if clock() >= deadline:
                raise GateError(
                    f"the modification of {volume_id} to gp3 {iops} IOPS {throughput} MiB/s is still "
                    f"{state or 'not listed'} after {timeout_seconds}s; EC2 carries on with it. Run `pulumi up` "
                    "again to wait for it; nothing after this step has been done"
                )
            sleep(poll_seconds)


def _read_pv(core: Any, name: str) -> Any:
    """The PV as the API server has it now, or None when it does not exist (404)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return core.read_persistent_volume(name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _bare_volume_id(value: str) -> str:
    """`aws://<zone>/vol-…` (in-tree PVs) or `vol-…` (either, and CSI volume handles) -> `vol-…`."""
    return value.rsplit("/", 1)[-1]


def _pv_volume(pv: Any) -> str | None:
    """The EBS volume a PV object points at (in-tree or EBS CSI), or None for any other source."""
    spec = pv.spec
    in_tree = getattr(spec, "aws_elastic_block_store", None)
    if in_tree is not None and in_tree.volume_id:
        return _bare_volume_id(str(in_tree.volume_id))
    csi = getattr(spec, "csi", None)
    if csi is not None and csi.driver == "ebs.csi.aws.com" and csi.volume_handle:
        return _bare_volume_id(str(csi.volume_handle))
    return None


def delete_retained_pv(
    core: Any,
    *,
    pv: str,
    volume_id: str,
    release_wait_seconds: int = 0,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Delete a PersistentVolume OBJECT whose EBS volume must survive it; return what happened:
    "deleted", "already gone" or "already being deleted".

    Rehome leaves two PV objects for one EBS volume (the in-tree one and the static CSI one). One
    left Released with reclaim policy Delete loses the volume the other one serves at its next
    detach (the external-provisioner's reclaim; EC2 refuses only while attached), and deleting a
    Delete PV that carries the provisioner's HonorPVReclaimPolicy finalizer deletes it too (added
    only to Bound PVs: sig-storage-lib-external-provisioner handleProtectionFinalizer).
    So, read right before the delete: the PV must point at `volume_id`, be Retain, and not be Bound
    (Released or Available). The delete carries the read's uid and resourceVersion as
    preconditions, so a PV switched to Delete between that read and the delete is refused by the
    API server (409) instead of deleted.

    It does not wait for the object to disappear. A PV with the `kubernetes.io/pv-protection`
    finalizer lingers (deletionTimestamp set) only while it is bound (pkg/controller/volume/
    pvprotection removes the finalizer once the PV is not Bound), and this step deletes only PVs
    that are not; a deletion, once accepted, cannot be undone, and nothing later in the plan needs
    the name free. Waiting would only add a way to time out.
    """
    from kubernetes.client import V1DeleteOptions, V1Preconditions
    from kubernetes.client.exceptions import ApiException

    # A claim released just before (rollback) leaves its PV Bound until the PV controller's next
    # sync marks it Released (pv_controller.go syncVolume): wait for that, up to release_wait_seconds.
    deadline = clock() + release_wait_seconds
    while True:
        found = _read_pv(core, pv)
        if found is None:
            return "already gone"
        if (found.status.phase if found.status else None) != "Bound" or clock() >= deadline:
            break
        sleep(poll_seconds)
    points_at = _pv_volume(found)
    wanted = _bare_volume_id(volume_id)
    policy = found.spec.persistent_volume_reclaim_policy
    phase = found.status.phase if found.status else None
    refusal = None
    if points_at != wanted:
        refusal = f"it points at {points_at or 'no EBS volume'}, not {wanted}"
    elif policy != "Retain":
        # Keeping it is the danger, not deleting it: a Released PV with Delete has its volume deleted
        # by the EBS CSI external-provisioner (migrated-to; sig-storage-lib-external-provisioner
        # shouldDelete), refused by EC2 only while attached (VolumeInUse), so at its next detach.
        # The program must not act on a PV someone changed: refuse, and say how to make it safe.
        refusal = (
            f"its reclaim policy is {policy}, not Retain. While it stays Released with {policy}, the EBS CSI "
            f"driver deletes {wanted} (which the workload may now use through another PV) the next time it "
            f"detaches (a restart, a reschedule, a node drain). Set it back now: kubectl patch pv {pv} -p "
            """'{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'; then run `pulumi up` again"""
        )
    elif phase not in ("Released", "Available"):
        claim = found.spec.claim_ref
        holder = f" to {claim.namespace}/{claim.name}" if claim is not None and phase == "Bound" else ""
        refusal = f"it is {phase or 'without a phase'}{holder}, not Released or Available"
    if refusal:
        raise GateError(f"refusing to delete PV {pv}: {refusal}. Nothing was deleted.")
    if found.metadata.deletion_timestamp is not None:
        return "already being deleted"
    options = V1DeleteOptions(
        preconditions=V1Preconditions(uid=found.metadata.uid, resource_version=found.metadata.resource_version)
    )
    try:
        core.delete_persistent_volume(pv, body=options)
    except ApiException as err:
        if err.status == 404:
            return "already gone"
        if err.status == 409:
            raise GateError(
                f"refusing to delete PV {pv}: it changed between the check and the delete (the API server "
                "refused the delete's preconditions). Nothing was deleted; run `pulumi up` again to re-check it."
            ) from err
        raise
    return "deleted"
