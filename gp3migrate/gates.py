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
    # Builds a CoreV1Api from (kubeconfig, context); None: from the kubeconfig (components/gates.py).
    core_api: Callable[[str, str | None], Any] | None = None


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
