"""Reads what discovery joins: from a live cluster and AWS, or from exported files.

AWS: DescribeVolumes filtered by the PVs' volume ids, 200 ids per filter and up to 500 results a
page, so the number of calls grows with pages, not with volumes; ListAddons is paged and
DescribeAddon is called for the two add-ons discovery looks at only. Kubernetes: list calls with
`limit`/`continue` pages, one kind at a time; the snapshot CRDs are read by name (listing every
CRD returns every schema in the cluster), Helm release Secrets by label.

A file that is missing, not JSON, or another export than the one expected raises InputError
saying what it is and what was expected; the CLI names the flag.
"""

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gp3migrate.config import window_owners
from gp3migrate.discovery.platform_scan import DRIVER_CONTROLLER, DRIVER_NODE, HELM_RELEASE_TYPE, SNAPSHOT_CRDS
from gp3migrate.versions import EBS_CSI_ADDON_NAME, EBS_CSI_CHART_NAME, SNAPSHOT_CONTROLLER_ADDON_NAME

# EC2 accepts at most 200 values in one filter (EC2 API reference, "Filter").
IDS_PER_FILTER = 200
_VOLUMES_PAGE = 500
KUBE_PAGE = 500
ADDONS = (EBS_CSI_ADDON_NAME, SNAPSHOT_CONTROLLER_ADDON_NAME)

KUBE_EXPORT = "`kubectl get pv,pvc,pods,deploy,rs,sts,ds,sc,csidriver,hpa -A -o json` output (see README)"
VOLUMES_EXPORT = "`aws ec2 describe-volumes --output json` output"
ADDONS_EXPORT = "`aws eks describe-addon --output json` outputs, one after another (see README)"

Progress = Callable[[str], None]


class InputError(Exception):
    """An input that is not what it should be: what is wrong, and what is expected instead."""

    def __init__(self, what: str, expected: str):
        super().__init__(what)
        self.what = what
        self.expected = expected


def stderr_progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


# --- files ---------------------------------------------------------------------------------


def _documents(path: Path, expected: str) -> list[Any]:
    """The JSON documents in a file, one or several one after another (a shell loop's output)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("no such file", expected) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read it ({type(err).__name__}: {err})", expected) from None
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return documents
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise InputError(f"not JSON (line {err.lineno} column {err.colno}: {err.msg})", expected) from None
        documents.append(document)


def _shape(document: Any) -> str:
    """What an export is, to tell a swapped file from a broken one."""
    if isinstance(document, dict):
        if "Volumes" in document:
            return "an EBS volume list (describe-volumes output)"
        if "addon" in document or "addons" in document:
            return "an EKS add-on description"
        if "items" in document or ("kind" in document and "apiVersion" in document):
            return f"a Kubernetes export (kind {document.get('kind', '?')})"
        if "config" in document:
            return "a stack file"
    return f"a JSON {type(document).__name__}"


def read_kube_items(path: Path) -> list[dict[str, Any]]:
    """`kubectl get … -o json` output: a List, several, or single objects."""
    items: list[dict[str, Any]] = []
    for document in _documents(path, KUBE_EXPORT):
        if not _shape(document).startswith("a Kubernetes export"):
            raise InputError(f"this is {_shape(document)}, not a Kubernetes export", KUBE_EXPORT)
        found = document.get("items", [document]) if "items" in document else [document]
        items.extend(item for item in found or [] if isinstance(item, dict))
    return items


def read_volumes(path: Path) -> list[dict[str, Any]]:
    documents = _documents(path, VOLUMES_EXPORT)
    if len(documents) != 1 or not _shape(documents[0]).startswith("an EBS volume list"):
        what = _shape(documents[0]) if documents else "empty"
        raise InputError(f"this is {what}, not an EBS volume list", VOLUMES_EXPORT)
    return [v for v in documents[0]["Volumes"] if isinstance(v, dict)]


def read_addons(path: Path) -> list[dict[str, Any]]:
    """DescribeAddon outputs (`{"addon": {...}}`), one after another; an empty file means none."""
    addons = []
    for document in _documents(path, ADDONS_EXPORT):
        if not (isinstance(document, dict) and isinstance(document.get("addon"), dict)):
            raise InputError(f"this is {_shape(document)}, not a describe-addon output", ADDONS_EXPORT)
        addons.append(document["addon"])
    return addons


# --- AWS -----------------------------------------------------------------------------------


def describe_volumes(
    ec2: Any, volume_ids: Sequence[str], progress: Progress | None = None, *, ids_per_call: int = IDS_PER_FILTER
) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = []
    paginator = ec2.get_paginator("describe_volumes")
    for start in range(0, len(volume_ids), ids_per_call):
        chunk = list(volume_ids[start : start + ids_per_call])
        pages = paginator.paginate(
            Filters=[{"Name": "volume-id", "Values": chunk}], PaginationConfig={"PageSize": _VOLUMES_PAGE}
        )
        for page in pages:
            volumes.extend(page.get("Volumes", []))
        if progress:
            progress(f"described {min(start + ids_per_call, len(volume_ids))}/{len(volume_ids)} EBS volumes")
    return volumes


def describe_addons(eks: Any, cluster: str) -> list[dict[str, Any]]:
    """The add-ons discovery looks at (the driver, the snapshot controller), if installed."""
    names = [name for page in eks.get_paginator("list_addons").paginate(clusterName=cluster) for name in page["addons"]]
    return [eks.describe_addon(clusterName=cluster, addonName=name)["addon"] for name in ADDONS if name in names]


# --- Kubernetes ----------------------------------------------------------------------------


def list_pages(list_call: Callable[..., Any], *, page_size: int = KUBE_PAGE, **kwargs: Any) -> Iterator[Any]:
    """Every item of a list call, `page_size` at a time (the API server's `limit`/`continue`)."""
    token = None
    while True:
        response = (
            list_call(limit=page_size, _continue=token, **kwargs) if token else list_call(limit=page_size, **kwargs)
        )
        yield from response.items
        token = response.metadata._continue
        if not token:
            return


@dataclass(frozen=True)
class KubeApis:
    """The Kubernetes client APIs discovery reads through (the real ones, or fakes in tests)."""

    core: Any
    apps: Any
    storage: Any
    apiextensions: Any
    # Turns a client model into the JSON `kubectl get -o json` shows (ApiClient.sanitize_for_serialization).
    to_json: Callable[[Any], Any]
    # CustomObjectsApi (Argo CD, Flux, KEDA objects) and AutoscalingV2Api (HPAs); None: not read.
    custom: Any = None
    autoscaling: Any = None


def _is_not_found(err: Exception) -> bool:
    return getattr(err, "status", None) == 404


def list_kube_items(
    apis: KubeApis, progress: Progress | None = None, *, page_size: int = KUBE_PAGE
) -> list[dict[str, Any]]:
    """The objects discovery needs, as a kubectl export would hold them."""
    calls: dict[str, Callable[..., Any]] = {
        "PersistentVolume": apis.core.list_persistent_volume,
        "PersistentVolumeClaim": apis.core.list_persistent_volume_claim_for_all_namespaces,
        "Pod": apis.core.list_pod_for_all_namespaces,
        "Deployment": apis.apps.list_deployment_for_all_namespaces,
        "StatefulSet": apis.apps.list_stateful_set_for_all_namespaces,
        "DaemonSet": apis.apps.list_daemon_set_for_all_namespaces,
        "StorageClass": apis.storage.list_storage_class,
        "CSIDriver": apis.storage.list_csi_driver,
    }
    items: list[dict[str, Any]] = []
    for kind, call in calls.items():
        found = [dict(apis.to_json(obj), kind=kind) for obj in list_pages(call, page_size=page_size)]
        items.extend(found)
        if progress:
            progress(f"listed {len(found)} {kind} objects")
    for name in SNAPSHOT_CRDS:
        try:
            crd = apis.apiextensions.read_custom_resource_definition(name)
        except Exception as err:  # the client's ApiException; 404: not installed
            if not _is_not_found(err):
                raise
            continue
        items.append(dict(apis.to_json(crd), kind="CustomResourceDefinition"))
    items += list_owner_items(apis, progress, page_size=page_size)
    # Only the releases that can be the driver: its default name and whatever the driver's
    # objects say they were installed as (label app.kubernetes.io/instance).
    releases = {EBS_CSI_CHART_NAME} | {
        str(label)
        for item in items
        if item["kind"] in ("Deployment", "DaemonSet")
        and (item.get("metadata") or {}).get("name") in (DRIVER_CONTROLLER, DRIVER_NODE)
        and (label := ((item.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/instance"))
    }
    secrets = list_pages(
        apis.core.list_secret_for_all_namespaces,
        page_size=page_size,
        label_selector=f"owner=helm,name in ({','.join(sorted(releases))})",
        field_selector=f"type={HELM_RELEASE_TYPE}",
    )
    found = [dict(apis.to_json(secret), kind="Secret") for secret in secrets]
    items.extend(found)
    if progress:
        progress(f"read {len(found)} Helm release Secrets of {', '.join(sorted(releases))}")
    return items


def _served_version(crd: Mapping[str, Any], default: str) -> str:
    """The CRD's storage version if served (what `kubectl get` reads), else the first served one."""
    versions = [v for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]
    stored = [v for v in versions if v.get("storage")]
    chosen = stored or versions
    return str(chosen[0]["name"]) if chosen else default


def list_owner_items(
    apis: KubeApis, progress: Progress | None = None, *, page_size: int = KUBE_PAGE
) -> list[dict[str, Any]]:
    """The other owners' objects (gp3migrate/discovery/other_owners.py): HPAs, and the Argo CD, Flux
    and KEDA kinds whose CRD exists (read by name, as the snapshot CRDs; the CRD is kept, so that
    none listed reads as none there)."""
    items: list[dict[str, Any]] = []
    if apis.autoscaling is not None:
        call = apis.autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces
        found = [dict(apis.to_json(o), kind="HorizontalPodAutoscaler") for o in list_pages(call, page_size=page_size)]
        items += found
        if progress:
            progress(f"listed {len(found)} HorizontalPodAutoscaler objects")
    if apis.custom is None:
        return items
    for kind, resource in window_owners.RESOURCES.items():
        try:
            crd = apis.to_json(apis.apiextensions.read_custom_resource_definition(resource.crd))
        except Exception as err:  # the client's ApiException; 404: not installed
            if not _is_not_found(err):
                raise
            continue
        items.append(dict(crd, kind="CustomResourceDefinition"))
        version = _served_version(crd, resource.version)
        token: str | None = None
        owned: list[dict[str, Any]] = []
        while True:
            extra: dict[str, Any] = {"_continue": token} if token else {}
            page = apis.custom.list_cluster_custom_object(
                resource.group, version, resource.plural, limit=page_size, **extra
            )
            owned += [dict(o, kind=kind) for o in page.get("items") or []]
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        items += owned
        if progress:
            progress(f"listed {len(owned)} {kind} objects ({resource.group})")
    return items


def live_kube_items(
    kubeconfig: str | None, context: str | None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """The objects discovery needs, from the cluster the kubeconfig (and context) points at."""
    return list_kube_items(connect(kubeconfig, context).apis, progress)


@dataclass(frozen=True)
class KubeConnection:
    apis: KubeApis
    host: str  # the API server URL the kubeconfig points at
    context: str


def connect(kubeconfig: str | None, context: str | None) -> KubeConnection:
    """The cluster the user's kubeconfig (and context) points at; the client's ConfigException
    when there is no usable kubeconfig."""
    from kubernetes import client, config  # imported here: offline use needs no cluster client

    config.load_kube_config(config_file=kubeconfig, context=context)
    _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    api = client.ApiClient()
    apis = KubeApis(
        core=client.CoreV1Api(api),
        apps=client.AppsV1Api(api),
        storage=client.StorageV1Api(api),
        apiextensions=client.ApiextensionsV1Api(api),
        to_json=api.sanitize_for_serialization,
        custom=client.CustomObjectsApi(api),
        autoscaling=client.AutoscalingV2Api(api),
    )
    return KubeConnection(apis, str(api.configuration.host), context or str((active or {}).get("name", "")))


def same_endpoint(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()
