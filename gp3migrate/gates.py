"""Proof steps of the cutover, run by the dynamic resources in components/gates.py.

- Detached: a scaled-down workload is not proof that nothing writes (terminating pods still hold
  the mount); the EBS volume being `available`, as AWS reports it, is (DESIGN "Facts").
- In use: before the source may be deleted, the restored gp3 volume must be attached to a node,
  which means the new claim is bound and mounted. The CSI driver tags the volumes it creates with
  the claim's name and namespace (`extraCreateMetadata`, default true in the chart).
- Claim release: deletes a claim only after making sure its volume survives (Retain).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class GateError(RuntimeError):
    pass


def _boto3_ec2(region: str) -> Any:
    import boto3

    return boto3.client("ec2", region_name=region)


@dataclass
class Runtime:
    """Where the gates reach AWS and how they wait. Real runs use boto3 and the wall clock; the
    simulation (gp3migrate/sim) swaps in its moto-backed clients and its simulated clock, so the
    same gate code runs in both."""

    ec2: Callable[[str], Any] = _boto3_ec2
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Build a CoreV1Api / AppsV1Api from (kubeconfig, context); None: from the kubeconfig
    # (components/gates.py).
    core_api: Callable[[str, str | None], Any] | None = None
    apps_api: Callable[[str, str | None], Any] | None = None


RUNTIME = Runtime()


def wait_until_detached(
    ec2: Any,
    volume_id: str,
    *,
    timeout_seconds: int,
    poll_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Return the volume once it is `available`; raise GateError naming what still holds it."""
    deadline = clock() + timeout_seconds
    while True:
        volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
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


def restored_volume_in_use(ec2: Any, *, namespace: str, claim: str) -> str:
    """The id of the in-use gp3 volume created for the claim; GateError when there is none."""
    pages = ec2.get_paginator("describe_volumes").paginate(
        Filters=[
            {"Name": "tag:kubernetes.io/created-for/pvc/name", "Values": [claim]},
            {"Name": "tag:kubernetes.io/created-for/pvc/namespace", "Values": [namespace]},
            {"Name": "volume-type", "Values": ["gp3"]},
        ]
    )
    volumes = [v for page in pages for v in page.get("Volumes", [])]
    in_use = sorted(v["VolumeId"] for v in volumes if v["State"] == "in-use")
    if not in_use:
        states = ", ".join(f"{v['VolumeId']}={v['State']}" for v in volumes) or "no gp3 volume found"
        raise GateError(
            f"the restored claim {namespace}/{claim} is not mounted by any node ({states}): start the "
            "workload on it and verify the data before deleting the source"
        )
    return in_use[0]


def release_claim(
    core: Any,
    *,
    namespace: str,
    claim: str,
    timeout_seconds: int,
    bound_to: str | None = None,
    not_bound_to: str | None = None,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Delete a claim after setting its PV to Retain, and wait until it is gone.

    One-way, so it re-checks the world first: the claim must be bound to `bound_to` (or to any PV
    but `not_bound_to`); otherwise the name now belongs to another volume and it refuses. Returns
    the name of the PV that keeps the data (None when the claim was already gone).
    """
    from kubernetes.client.exceptions import ApiException

    try:
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
    except ApiException as err:
        if err.status == 404:
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
    if pv_name:
        core.patch_persistent_volume(pv_name, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        pv = core.read_persistent_volume(pv_name)
        if pv.spec.persistent_volume_reclaim_policy != "Retain":
            raise GateError(f"PV {pv_name} of {namespace}/{claim} is not Retain; refusing to delete the claim")
    if pvc.metadata.deletion_timestamp is None:
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
    found = int(read(name, namespace).spec.replicas or 0)
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
