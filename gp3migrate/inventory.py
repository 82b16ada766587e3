"""Reads what discovery joins: from a live cluster and AWS, or from exported JSON files.

AWS: DescribeVolumes filtered by the PVs' volume ids, 200 ids per filter and up to 500 results a
page, so the number of calls grows with pages, not with volumes. Kubernetes: list calls with
`limit`/`continue` pages, one kind at a time.
"""

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# EC2 accepts at most 200 values in one filter (EC2 API reference, "Filter").
_IDS_PER_FILTER = 200
_PAGE_SIZE = 500
KUBE_KINDS = ("PersistentVolume", "PersistentVolumeClaim", "Pod", "ReplicaSet", "Deployment", "StatefulSet")

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def describe_volumes(ec2: Any, volume_ids: Sequence[str], progress: Progress | None = None) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = []
    paginator = ec2.get_paginator("describe_volumes")
    for start in range(0, len(volume_ids), _IDS_PER_FILTER):
        chunk = list(volume_ids[start : start + _IDS_PER_FILTER])
        pages = paginator.paginate(
            Filters=[{"Name": "volume-id", "Values": chunk}], PaginationConfig={"PageSize": _PAGE_SIZE}
        )
        for page in pages:
            volumes.extend(page.get("Volumes", []))
        if progress:
            progress(f"described {min(start + _IDS_PER_FILTER, len(volume_ids))}/{len(volume_ids)} EBS volumes")
    return volumes


def read_kube_items(path: Path) -> list[dict[str, Any]]:
    """`kubectl get pv,pvc,pods,rs,deploy,sts -A -o json` output: a List, or a single object."""
    data = json.loads(path.read_text())
    items = data.get("items", [data]) if isinstance(data, dict) else data
    return [item for item in items if isinstance(item, dict)]


def read_volumes(path: Path) -> list[dict[str, Any]]:
    """`aws ec2 describe-volumes --output json` output."""
    data = json.loads(path.read_text())
    return list(data.get("Volumes", data) if isinstance(data, dict) else data)


def _pages(list_call: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        response = list_call(limit=500, _continue=token, **kwargs) if token else list_call(limit=500, **kwargs)
        yield from response.items
        token = response.metadata._continue
        if not token:
            return


def live_kube_items(
    kubeconfig: str | None, context: str | None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """The kinds discovery needs, from the cluster the user's kubeconfig points at."""
    from kubernetes import client, config  # imported here: offline use needs no cluster client

    config.load_kube_config(config_file=kubeconfig, context=context)
    api = client.ApiClient()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    calls: dict[str, Callable[..., Any]] = {
        "PersistentVolume": core.list_persistent_volume,
        "PersistentVolumeClaim": core.list_persistent_volume_claim_for_all_namespaces,
        "Pod": core.list_pod_for_all_namespaces,
        "ReplicaSet": apps.list_replica_set_for_all_namespaces,
        "Deployment": apps.list_deployment_for_all_namespaces,
        "StatefulSet": apps.list_stateful_set_for_all_namespaces,
    }
    items: list[dict[str, Any]] = []
    for kind, call in calls.items():
        found = [dict(api.sanitize_for_serialization(obj), kind=kind) for obj in _pages(call)]
        items.extend(found)
        if progress:
            progress(f"listed {len(found)} {kind} objects")
    return items
