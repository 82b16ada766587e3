"""What the cluster already runs for the platform half, and the config keys that keep or adopt it.

DESIGN invariant 10: the EBS CSI driver and the snapshot controller that a real cluster runs are
detected and kept or adopted, never installed twice. The evidence, strongest first:
- the EKS add-ons (`eks:ListAddons` / `DescribeAddon`): version, status, role, configuration;
- Helm releases: Secrets of type `helm.sh/release.v1` named `sh.helm.release.v1.<release>.v<N>`
  (labels `name`, `owner=helm`, `status`, `version`), whose `release` payload is base64 of the
  gzipped release JSON (helm `pkg/storage/driver/util.go`), itself base64 again in the Secret;
- plain objects: the chart's names (`ebs-csi-controller` Deployment, `ebs-csi-node` DaemonSet),
  the `ebs.csi.aws.com` CSIDriver, and the chart's labels (`app.kubernetes.io/managed-by`,
  `helm.sh/chart`, `app.kubernetes.io/instance`: chart `templates/_helpers.tpl`);
- the three `snapshot.storage.k8s.io` CRDs and a `snapshot-controller` image.

Pure: the inputs are exported or listed objects; nothing here calls a cluster or AWS.
"""

import base64
import binascii
import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gp3migrate.checks import driver_readiness
from gp3migrate.versions import (
    CSI_DRIVER,
    DRIVER_NAMESPACE,
    EBS_CSI_ADDON_NAME,
    EBS_CSI_CHART_NAME,
    IN_TREE_PROVISIONER,
    SNAPSHOT_CONTROLLER_ADDON_NAME,
)

HELM_RELEASE_TYPE = "helm.sh/release.v1"
DRIVER_CONTROLLER = "ebs-csi-controller"
DRIVER_NODE = "ebs-csi-node"
SNAPSHOT_CRDS = tuple(
    f"{plural}.snapshot.storage.k8s.io"
    for plural in ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")
)
_MANAGED_BY = "app.kubernetes.io/managed-by"
_HELM_CHART = "helm.sh/chart"
_INSTANCE = "app.kubernetes.io/instance"
_IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
_GZIP_MAGIC = b"\x1f\x8b"
# Pulumi's Kubernetes provider names its server-side apply field manager `pulumi-kubernetes-<id>`.
_PULUMI_MANAGER_PREFIX = "pulumi-kubernetes"


@dataclass(frozen=True)
class HelmRelease:
    namespace: str
    name: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str
    values: Mapping[str, Any]


@dataclass
class PlatformProposal:
    """Config keys (without the project prefix) discovery proposes, and why."""

    keys: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"proposed": dict(self.keys), "evidence": list(self.evidence)}


def decode_helm_release(secret: Mapping[str, Any]) -> HelmRelease:
    """The release a Helm Secret holds; ValueError saying why when it cannot be read."""
    meta = secret.get("metadata") or {}
    payload = (secret.get("data") or {}).get("release")
    if not isinstance(payload, str):
        raise ValueError("it has no data.release")
    try:
        helm_encoded = base64.b64decode(payload, validate=True)  # the Secret's own base64
        raw = base64.b64decode(helm_encoded, validate=True)  # Helm's base64 of the (gzipped) JSON
    except binascii.Error:
        raise ValueError("its payload is not a Helm release (not base64 twice)") from None
    try:
        release = json.loads(gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw)
    except (OSError, EOFError):
        raise ValueError("its payload is not a Helm release (broken gzip)") from None
    except ValueError:
        raise ValueError("its payload is not a Helm release (not JSON)") from None
    if not isinstance(release, dict):
        raise ValueError("its payload is not a Helm release (not a JSON object)")
    chart = (release.get("chart") or {}).get("metadata") or {}
    labels = meta.get("labels") or {}
    return HelmRelease(
        namespace=str(release.get("namespace") or meta.get("namespace", "")),
        name=str(release.get("name") or labels.get("name", "")),
        revision=int(release.get("version") or labels.get("version") or 0),
        status=str((release.get("info") or {}).get("status") or labels.get("status", "")),
        chart=str(chart.get("name", "")),
        chart_version=str(chart.get("version", "")),
        app_version=str(chart.get("appVersion", "")),
        values=release.get("config") or {},
    )


def latest_helm_releases(items: Iterable[Mapping[str, Any]]) -> tuple[list[HelmRelease], list[str]]:
    """The last revision of every Helm release among the Secrets, and a warning per unreadable one."""
    latest: dict[tuple[str, str], tuple[int, Mapping[str, Any]]] = {}
    for item in items:
        if item.get("kind") != "Secret" or item.get("type") != HELM_RELEASE_TYPE:
            continue
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get("owner") != "helm":
            continue
        key = (str(meta.get("namespace", "")), str(labels.get("name", "")))
        try:
            revision = int(labels.get("version", 0))
        except (TypeError, ValueError):
            revision = 0
        if key not in latest or revision > latest[key][0]:
            latest[key] = (revision, item)
    releases, warnings = [], []
    for (namespace, _), (_, secret) in sorted(latest.items()):
        try:
            releases.append(decode_helm_release(secret))
        except ValueError as err:
            name = (secret.get("metadata") or {}).get("name", "?")
            warnings.append(f"Helm release Secret {namespace}/{name} was not read: {err}")
    return releases, warnings


def image_tag(image: str) -> str:
    """`v1.35.0` of `registry/path/aws-ebs-csi-driver:v1.35.0` ("" without a tag)."""
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1].split("@", 1)[0] if ":" in name else ""


def _containers(workload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((((workload.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])


def _labels(item: Mapping[str, Any]) -> Mapping[str, str]:
    return (item.get("metadata") or {}).get("labels") or {}


def _ref(item: Mapping[str, Any]) -> str:
    meta = item.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))


def _by_kind(items: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    kinds: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        kinds.setdefault(str(item.get("kind", "")), []).append(item)
    return kinds


def _addon_line(addon: Mapping[str, Any]) -> str:
    parts = [
        f"EKS add-on {addon.get('addonName')} {addon.get('addonVersion')} ({addon.get('status', 'status unknown')})"
    ]
    if addon.get("serviceAccountRoleArn"):
        parts.append(f"role {addon['serviceAccountRoleArn']}")
    if addon.get("podIdentityAssociations"):
        parts.append(f"Pod Identity associations {', '.join(addon['podIdentityAssociations'])}")
    if addon.get("configurationValues"):
        parts.append(f"configuration {addon['configurationValues']}")
    return ", ".join(parts)


def _driver(
    kinds: Mapping[str, list[Mapping[str, Any]]],
    addons: Sequence[Mapping[str, Any]] | None,
    releases: Sequence[HelmRelease],
    proposal: PlatformProposal,
) -> None:
    addon = next((a for a in addons or () if a.get("addonName") == EBS_CSI_ADDON_NAME), None)
    chart_releases = [r for r in releases if r.chart == EBS_CSI_CHART_NAME]
    objects = [
        *(d for d in kinds.get("Deployment", []) if (d.get("metadata") or {}).get("name") == DRIVER_CONTROLLER),
        *(d for d in kinds.get("DaemonSet", []) if (d.get("metadata") or {}).get("name") == DRIVER_NODE),
    ]
    csi_driver = any((d.get("metadata") or {}).get("name") == CSI_DRIVER for d in kinds.get("CSIDriver", []))
    for obj in objects:
        images = [c.get("image", "") for c in _containers(obj) if c.get("name") == "ebs-plugin"]
        version = f" driver {image_tag(images[0])}" if images and image_tag(images[0]) else ""
        labels = _labels(obj)
        managed = f", labelled {_MANAGED_BY}={labels[_MANAGED_BY]}" if labels.get(_MANAGED_BY) else ""
        proposal.evidence.append(f"{obj.get('kind')} {_ref(obj)}{version}{managed}")
    if csi_driver:
        proposal.evidence.append(f"CSIDriver {CSI_DRIVER}")
    if addon:
        proposal.evidence.append(_addon_line(addon))
        issues = ((addon.get("health") or {}).get("issues")) or []
        if addon.get("status") not in (None, "ACTIVE") or issues:
            details = "; ".join(str(i.get("message", i)) for i in issues)
            proposal.warnings.append(
                f"EKS add-on {EBS_CSI_ADDON_NAME} is {addon.get('status')}{': ' + details if details else ''}: "
                "fix it before the migration (the driver serves every in-tree volume through CSI migration)"
            )
    for release in chart_releases:
        role = (((release.values.get("controller") or {}).get("serviceAccount") or {}).get("annotations") or {}).get(
            _IRSA_ANNOTATION
        )
        proposal.evidence.append(
            f"Helm release {release.namespace}/{release.name} revision {release.revision} ({release.status}): chart "
            f"{release.chart} {release.chart_version} (driver {release.app_version})"
            + (f", role {role}" if role else "")
        )

    if addon and chart_releases:
        proposal.keys["driverInstall"] = "present"
        proposal.warnings.append(
            "the EBS CSI driver is installed twice (EKS add-on and Helm release): proposed driverInstall: present "
            "(kept as it is); remove one of them before letting this stack manage the driver"
        )
    elif addon:
        proposal.keys.update(driverInstall="addon", driverAdopt=True, driverAddonVersion=addon.get("addonVersion"))
        proposal.evidence.append(
            "proposed: adopt the EKS add-on with the version it runs, changing nothing of it; driverAdopt: false "
            "later applies this stack's settings (or driverInstall: present to leave it unmanaged)"
        )
    elif chart_releases:
        release = chart_releases[0]
        if len(chart_releases) > 1 or release.status != "deployed":
            proposal.keys["driverInstall"] = "present"
            proposal.warnings.append(
                "the EBS CSI driver's Helm release is "
                + ("installed more than once" if len(chart_releases) > 1 else f"in status {release.status}")
                + ": proposed driverInstall: present (kept as it is); fix the release before adopting it"
            )
        else:
            proposal.keys.update(driverInstall="helm", driverAdopt=True, driverChartVersion=release.chart_version)
            proposal.evidence.append(
                "proposed: adopt the Helm release with the chart version it runs, changing nothing of it; "
                "driverAdopt: false later applies this stack's values (or driverInstall: present to leave it unmanaged)"
            )
    elif objects or csi_driver:
        proposal.keys["driverInstall"] = "present"
        managers = {_labels(o).get(_MANAGED_BY) for o in objects} - {None}
        if "EKS" in managers and addons is None:
            proposal.warnings.append(
                "the EBS CSI driver looks like the EKS add-on (labelled managed-by=EKS) but add-ons were not "
                "checked: give --addons-json (or --cluster on a live cluster) to propose adopting it"
            )
        elif "Helm" in managers:
            chart = next((_labels(o).get(_HELM_CHART) for o in objects if _labels(o).get(_HELM_CHART)), "?")
            proposal.warnings.append(
                f"the EBS CSI driver is labelled as Helm release {_labels(objects[0]).get(_INSTANCE, '?')} "
                f"(chart {chart}) but no release Secret was read: add the Helm release Secrets to the export "
                "to propose adopting it"
            )
        proposal.evidence.append("proposed: keep the driver as it runs (plain manifests cannot be adopted)")
    else:
        proposal.keys["driverInstall"] = "helm"
        proposal.evidence.append(
            "no EBS CSI driver found (no EKS add-on, Helm release, ebs-csi-controller or CSIDriver "
            f"{CSI_DRIVER}): proposed: install it with the pinned chart"
        )


def _present_driver(
    kinds: Mapping[str, list[Mapping[str, Any]]], proposal: PlatformProposal, kms_keys: Sequence[str], why: str
) -> None:
    """A driver kept as it runs, or adopted, must have what the migration needs (gp3migrate/checks/driver_readiness.py):
    the sidecar is read from the listed or exported controller Deployment; the role's KMS rights
    need IAM, which discovery does not ask (the `up` checks them before any migration step)."""
    controller = next(
        (
            d
            for d in kinds.get("Deployment", [])
            if (d.get("metadata") or {}).get("name") == DRIVER_CONTROLLER
            and (d.get("metadata") or {}).get("namespace") == DRIVER_NAMESPACE
        ),
        None,
    )
    problems = driver_readiness.snapshotter_problems(controller)
    if controller is not None and not problems:
        proposal.evidence.append(
            f"Deployment {DRIVER_NAMESPACE}/{DRIVER_CONTROLLER} runs {driver_readiness.SNAPSHOTTER_CONTAINER}"
        )
    proposal.warnings += [f"{why}: {p}" for p in problems]
    note = driver_readiness.offline_kms_note(kms_keys)
    if note:
        proposal.warnings.append(f"{why}: {note}")


def _snapshots(
    kinds: Mapping[str, list[Mapping[str, Any]]],
    addons: Sequence[Mapping[str, Any]] | None,
    proposal: PlatformProposal,
) -> None:
    crds = {str((c.get("metadata") or {}).get("name")): c for c in kinds.get("CustomResourceDefinition", [])}
    served_v1 = [
        name
        for name in SNAPSHOT_CRDS
        if name in crds
        and any(v.get("name") == "v1" and v.get("served") for v in (crds[name].get("spec") or {}).get("versions") or [])
    ]
    controllers = [
        (d, image)
        for d in kinds.get("Deployment", [])
        for image in (c.get("image", "") for c in _containers(d))
        if "/snapshot-controller:" in image or image.startswith("snapshot-controller:")
    ]
    addon = next((a for a in addons or () if a.get("addonName") == SNAPSHOT_CONTROLLER_ADDON_NAME), None)
    if served_v1:
        proposal.evidence.append(f"CRDs {', '.join(served_v1)} (v1 served)")
    for name in SNAPSHOT_CRDS:
        if name in crds and name not in served_v1:
            proposal.evidence.append(f"CRD {name} without v1 served (too old for snapshot.storage.k8s.io/v1)")
    for deployment, image in controllers:
        proposal.evidence.append(f"snapshot-controller Deployment {_ref(deployment)} {image_tag(image) or image}")
    if addon:
        proposal.evidence.append(_addon_line(addon))

    complete = len(served_v1) == len(SNAPSHOT_CRDS)
    if complete and (controllers or addon):
        proposal.keys["snapshotSupport"] = "present"
        proposal.evidence.append("proposed: snapshot support is present (installing it again would conflict)")
    elif not crds and not controllers and not addon:
        proposal.keys["snapshotSupport"] = "manifests"
        proposal.evidence.append("no snapshot CRDs or controller found: proposed: install the pinned release")
    else:
        missing = [n for n in SNAPSHOT_CRDS if n not in served_v1]
        if not (controllers or addon):
            missing.append("a snapshot-controller")
        proposal.warnings.append(
            f"snapshot support is partly installed (missing: {', '.join(missing)}): no snapshotSupport proposed; "
            "complete it (e.g. the EKS snapshot-controller add-on) and run discover again"
        )


def _gp3_class_collision(
    kinds: Mapping[str, list[Mapping[str, Any]]], gp3_class_name: str, proposal: PlatformProposal
) -> None:
    """An existing class with the stack's gp3 class name (an in-tree class called `gp3` exists in
    the wild) makes the program's StorageClass fail with AlreadyExists."""
    classes = {str((c.get("metadata") or {}).get("name")): c for c in kinds.get("StorageClass", [])}
    existing = classes.get(gp3_class_name)
    if existing is None:
        return
    managers = [str(m.get("manager", "")) for m in (existing.get("metadata") or {}).get("managedFields") or []]
    provisioner = existing.get("provisioner")
    if provisioner == CSI_DRIVER and any(m.startswith(_PULUMI_MANAGER_PREFIX) for m in managers):
        return  # written by Pulumi: most likely this stack's own class
    free = next(
        name
        for name in (f"{gp3_class_name}-csi", *(f"{gp3_class_name}-csi-{n}" for n in range(2, 100)))
        if name not in classes
    )
    what = "in-tree (kubernetes.io/aws-ebs)" if provisioner == IN_TREE_PROVISIONER else f"provisioner {provisioner}"
    proposal.keys["gp3ClassName"] = free
    proposal.warnings.append(
        f"StorageClass {gp3_class_name!r} already exists ({what}, not created by this stack): the stack's gp3 class "
        f"has that name and would fail with AlreadyExists; set gp3ClassName: {free} (proposed)"
    )


def detect_platform(
    items: Iterable[Mapping[str, Any]],
    addons: Sequence[Mapping[str, Any]] | None,
    *,
    gp3_class_name: str = "gp3",
    stack_driver_install: str | None = None,
    kms_keys: Sequence[str] = (),
) -> PlatformProposal:
    """`addons`: the DescribeAddon `addon` objects of the cluster, or None when not checked.
    `stack_driver_install`: the stack's driverInstall, if it has one; `kms_keys`: the keys of the
    stack and of the volumes found (what a present driver's role must be allowed to use)."""
    kinds = _by_kind(items)
    releases, warnings = latest_helm_releases(kinds.get("Secret", []))
    proposal = PlatformProposal(warnings=warnings)
    if addons is None:
        proposal.evidence.append("EKS add-ons not checked (no --addons-json, or no --cluster on a live cluster)")
    _driver(kinds, addons, releases, proposal)
    if "present" in (proposal.keys.get("driverInstall"), stack_driver_install):
        _present_driver(kinds, proposal, kms_keys, "driverInstall: present")
    elif proposal.keys.get("driverAdopt"):
        # Adopting changes nothing of the driver until driverAdopt is false (components/ebs_csi_driver.py).
        _present_driver(kinds, proposal, kms_keys, "driverAdopt: true")
    _snapshots(kinds, addons, proposal)
    _gp3_class_collision(kinds, gp3_class_name, proposal)
    return proposal
