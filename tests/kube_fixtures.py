"""Builders of `kubectl get -o json`, `aws ec2 describe-volumes` and `aws eks describe-addon` output
shaped like real exports (metadata, ownerReferences with controller flags, in-tree PV annotations,
labels and node affinity, Helm release Secrets with their double-encoded payload), and moto EBS
volumes. `real_cluster()` is a whole messy cluster: several in-tree classes (one of them called
`gp3`), an operator-owned StatefulSet, an old StatefulSet using the beta class annotation, a static
PV without a class, odd volume ids, Local and Wavelength Zone volumes, io1 and multi-attach volumes,
and a KMS key the stack does not list. Written for these tests; not copied from a cluster."""

import base64
import gzip
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3

CLUSTER = "dev-eks"
REGION = "eu-central-1"
ACCOUNT = "123456789012"
CREATED = "2023-03-14T09:26:53Z"
STACK_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f3b7c1e-5a2d-4e8f-9b6a-1c2d3e4f5a6b"
OTHER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"


def uid(*parts: str) -> str:
    return str(uuid.UUID(hashlib.md5("/".join(parts).encode()).hexdigest()))


def vol(name: str, short: bool = False) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f"vol-{digest[:8]}" if short else f"vol-0{digest[:16]}"


def owner_ref(api_version: str, kind: str, name: str, *, controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid(kind, name),
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def meta(
    name: str,
    namespace: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owners: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "uid": uid(namespace or "", name),
        "resourceVersion": str(int(hashlib.md5(name.encode()).hexdigest()[:6], 16)),
        "creationTimestamp": CREATED,
    }
    if namespace:
        data["namespace"] = namespace
    if labels:
        data["labels"] = labels
    if annotations:
        data["annotations"] = annotations
    if owners:
        data["ownerReferences"] = owners
    return data


# --- storage ---------------------------------------------------------------------------------


def storage_class(
    name: str,
    provisioner: str = "kubernetes.io/aws-ebs",
    *,
    default: bool = False,
    parameters: dict[str, str] | None = None,
    managers: tuple[str, ...] = ("kubectl-client-side-apply",),
) -> dict[str, Any]:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    metadata = meta(name, annotations=annotations)
    metadata["managedFields"] = [
        {"manager": m, "operation": "Update", "apiVersion": "storage.k8s.io/v1"} for m in managers
    ]
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": metadata,
        "provisioner": provisioner,
        "parameters": parameters or {"type": "gp2", "fsType": "ext4"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def in_tree_pv(
    name: str,
    volume_id: str,
    namespace: str,
    claim: str,
    *,
    zone: str | None = "eu-central-1a",
    phase: str = "Bound",
    migrated: bool = False,
    size: int = 10,
    capacity: str | None = None,
    storage_class: str | None = "gp2",
    class_in_annotation: bool = False,
    raw_volume_id: str | None = None,
    old_labels: bool = False,
    fs_type: str = "ext4",
) -> dict[str, Any]:
    """A PV the in-tree provisioner made (or, with storage_class None, one written by hand)."""
    # A PV written by hand (no class) has none of the provisioner's annotations.
    annotations = (
        {
            "kubernetes.io/createdby": "aws-ebs-dynamic-provisioner",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "pv.kubernetes.io/provisioned-by": "kubernetes.io/aws-ebs",
        }
        if storage_class
        else {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    )
    if migrated:
        annotations["pv.kubernetes.io/migrated-to"] = "ebs.csi.aws.com"
    if storage_class and class_in_annotation:
        annotations["volume.beta.kubernetes.io/storage-class"] = storage_class
    zone_label = "failure-domain.beta.kubernetes.io/zone" if old_labels else "topology.kubernetes.io/zone"
    region_label = "failure-domain.beta.kubernetes.io/region" if old_labels else "topology.kubernetes.io/region"
    labels = {zone_label: zone, region_label: REGION} if zone else {}
    metadata = meta(name, labels=labels, annotations=annotations)
    metadata["finalizers"] = ["kubernetes.io/pv-protection"]
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "awsElasticBlockStore": {
            "fsType": fs_type,
            "volumeID": raw_volume_id or (f"aws://{zone}/{volume_id}" if zone else volume_id),
        },
        "capacity": {"storage": capacity or f"{size}Gi"},
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": namespace,
            "name": claim,
            "uid": uid(namespace, claim),
            "resourceVersion": "4711",
        },
        "persistentVolumeReclaimPolicy": "Delete",
        "volumeMode": "Filesystem",
    }
    if storage_class and not class_in_annotation:
        spec["storageClassName"] = storage_class
    if zone:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": zone_label, "operator": "In", "values": [zone]}]}]
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase},
    }


def csi_pv(name: str, volume_id: str, namespace: str, claim: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": meta(name, annotations={"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com"}),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "10Gi"},
            "csi": {"driver": "ebs.csi.aws.com", "fsType": "ext4", "volumeHandle": volume_id},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace, "name": claim},
            "storageClassName": "ebs-sc",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound"},
    }


def claim(
    namespace: str,
    name: str,
    pv: str,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    *,
    storage_class: str | None = "gp2",
    class_in_annotation: bool = False,
    size: str = "10Gi",
    owner_pod: str | None = None,
) -> dict[str, Any]:
    annotations = {
        "pv.kubernetes.io/bind-completed": "yes",
        "pv.kubernetes.io/bound-by-controller": "yes",
        "volume.beta.kubernetes.io/storage-provisioner": "kubernetes.io/aws-ebs",
    }
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, "volumeName": pv}
    if class_in_annotation and storage_class:
        annotations["volume.beta.kubernetes.io/storage-class"] = storage_class
    elif storage_class is not None:
        spec["storageClassName"] = storage_class
    else:
        spec["storageClassName"] = ""  # a static PV's claim: no class, no provisioning
    owners = [owner_ref("v1", "Pod", owner_pod)] if owner_pod else None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {**meta(name, namespace, annotations=annotations, owners=owners), "uid": uid(namespace, name)},
        "spec": spec,
        "status": {"phase": "Bound", "accessModes": list(modes), "capacity": {"storage": size}},
    }


# --- workloads -------------------------------------------------------------------------------


def _pod_spec(claims: list[str]) -> dict[str, Any]:
    return {
        "containers": [{"name": "app", "image": "public.ecr.aws/docker/library/busybox:1.36"}],
        "volumes": [{"name": f"data-{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)],
    }


def pod(namespace: str, name: str, claims: list[str], owner: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, namespace, owners=[owner] if owner else None),
        "spec": {**_pod_spec(claims), "nodeName": "ip-10-0-1-23.eu-central-1.compute.internal"},
        "status": {"phase": "Running"},
    }


def deployment(
    namespace: str, name: str, claims: list[str], replicas: int = 1, *, running: bool = True
) -> list[dict[str, Any]]:
    """The Deployment, its ReplicaSet and (when running) one pod, as `kubectl get deploy,rs,pods` shows them."""
    replica_set = f"{name}-5d8f7b9c4"
    objects = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(name, namespace, labels={"app": name}),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": _pod_spec(claims)},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": meta(replica_set, namespace, owners=[owner_ref("apps/v1", "Deployment", name)]),
            "spec": {"replicas": replicas},
        },
    ]
    if running:
        objects.append(pod(namespace, f"{replica_set}-x7k2p", claims, owner_ref("apps/v1", "ReplicaSet", replica_set)))
    return objects


def statefulset(
    namespace: str,
    name: str,
    templates: dict[str, str | None],
    replicas: int,
    *,
    owner: dict[str, Any] | None = None,
    class_in_annotation: bool = False,
    running: bool = True,
) -> list[dict[str, Any]]:
    """The StatefulSet (claim templates: name -> class) and its running pods."""
    claim_templates = []
    for template, class_name in templates.items():
        spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
        template_meta: dict[str, Any] = {"name": template}
        if class_name and class_in_annotation:
            template_meta["annotations"] = {"volume.beta.kubernetes.io/storage-class": class_name}
        elif class_name:
            spec["storageClassName"] = class_name
        claim_templates.append(
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": template_meta, "spec": spec}
        )
    objects = [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta(name, namespace, labels={"app": name}, owners=[owner] if owner else None),
            "spec": {
                "replicas": replicas,
                "serviceName": name,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": _pod_spec([])},
                "volumeClaimTemplates": claim_templates,
            },
        }
    ]
    if running:
        for ordinal in range(replicas):
            claims = [f"{t}-{name}-{ordinal}" for t in templates]
            objects.append(pod(namespace, f"{name}-{ordinal}", claims, owner_ref("apps/v1", "StatefulSet", name)))
    return objects


# --- AWS -------------------------------------------------------------------------------------


def ebs_volume(
    volume_id: str,
    *,
    size: int,
    zone: str = "eu-central-1a",
    volume_type: str = "gp2",
    iops: int | None = None,
    throughput: int | None = None,
    encrypted: bool = False,
    kms_key_id: str | None = None,
    multi_attach: bool = False,
    state: str = "in-use",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One `aws ec2 describe-volumes --output json` volume."""
    volume: dict[str, Any] = {
        "Attachments": []
        if state != "in-use"
        else [
            {
                "AttachTime": "2024-01-08T10:11:12+00:00",
                "Device": "/dev/xvdba",
                "InstanceId": "i-0a1b2c3d4e5f60718",
                "State": "attached",
                "VolumeId": volume_id,
                "DeleteOnTermination": False,
            }
        ],
        "AvailabilityZone": zone,
        "CreateTime": "2023-03-14T09:26:50.123000+00:00",
        "Encrypted": encrypted,
        "Size": size,
        "SnapshotId": "",
        "State": state,
        "VolumeId": volume_id,
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        "VolumeType": volume_type,
        "MultiAttachEnabled": multi_attach,
    }
    if volume_type in ("gp2", "gp3", "io1", "io2"):
        volume["Iops"] = iops if iops is not None else max(100, 3 * size)
    if throughput is not None:
        volume["Throughput"] = throughput
    if kms_key_id:
        volume["KmsKeyId"] = kms_key_id
    return volume


def in_tree_tags(pv: str, namespace: str, claim_name: str) -> dict[str, str]:
    return {
        "kubernetes.io/created-for/pv/name": pv,
        "kubernetes.io/created-for/pvc/name": claim_name,
        "kubernetes.io/created-for/pvc/namespace": namespace,
        f"kubernetes.io/cluster/{CLUSTER}": "owned",
        "KubernetesCluster": CLUSTER,
    }


def addon(
    name: str, version: str, *, status: str = "ACTIVE", role: str | None = None, configuration: str | None = None
) -> dict[str, Any]:
    """The `addon` of `aws eks describe-addon --output json`."""
    data: dict[str, Any] = {
        "addonName": name,
        "clusterName": CLUSTER,
        "status": status,
        "addonVersion": version,
        "health": {"issues": []},
        "addonArn": f"arn:aws:eks:{REGION}:{ACCOUNT}:addon/{CLUSTER}/{name}/a6c5e1f2",
        "createdAt": "2024-02-01T08:00:00+00:00",
        "modifiedAt": "2024-06-01T08:00:00+00:00",
        "tags": {},
    }
    if role:
        data["serviceAccountRoleArn"] = role
    if configuration:
        data["configurationValues"] = configuration
    return data


# --- platform objects ------------------------------------------------------------------------


def driver_objects(
    *,
    managed_by: str | None,
    version: str = "v1.35.0",
    release: str = "aws-ebs-csi-driver",
    chart: str = "2.35.1",
    snapshotter: bool = True,
) -> list[dict[str, Any]]:
    """The driver's objects; the controller runs csi-snapshotter unless `snapshotter` is False (the
    chart renders it only when the snapshot API existed at install: templates/controller.yaml)."""
    labels = {"app.kubernetes.io/name": "aws-ebs-csi-driver", "app.kubernetes.io/component": "csi-driver"}
    if managed_by:
        labels |= {"app.kubernetes.io/managed-by": managed_by, "app.kubernetes.io/instance": release}
    if managed_by == "Helm":
        labels["helm.sh/chart"] = f"aws-ebs-csi-driver-{chart}"
    image = f"public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:{version}"
    containers = [
        {"name": "ebs-plugin", "image": image},
        {"name": "liveness-probe", "image": "x/livenessprobe:v2.14.0"},
    ]
    template = {"metadata": {"labels": labels}, "spec": {"containers": containers}}
    sidecar = [{"name": "csi-snapshotter", "image": "x/csi-snapshotter:v8.2.0"}] if snapshotter else []
    controller = {"metadata": {"labels": labels}, "spec": {"containers": [*containers, *sidecar]}}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("ebs-csi-controller", "kube-system", labels=labels),
            "spec": {"replicas": 2, "template": controller},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta("ebs-csi-node", "kube-system", labels=labels),
            "spec": {"template": template},
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIDriver",
            "metadata": meta("ebs.csi.aws.com", labels=labels),
            "spec": {"attachRequired": True, "podInfoOnMount": False},
        },
    ]


def helm_release_secret(
    release: str,
    revision: int,
    *,
    chart: str = "aws-ebs-csi-driver",
    chart_version: str = "2.35.1",
    app_version: str = "1.35.0",
    status: str = "deployed",
    namespace: str = "kube-system",
    values: dict[str, Any] | None = None,
    payload: str | None = None,
) -> dict[str, Any]:
    """A Helm 3 release Secret: data.release is base64 (Kubernetes) of base64 (Helm) of gzipped JSON."""
    body = {
        "name": release,
        "namespace": namespace,
        "version": revision,
        "info": {"status": status, "first_deployed": "2024-01-08T10:00:00Z", "description": "Upgrade complete"},
        "chart": {"metadata": {"name": chart, "version": chart_version, "appVersion": app_version, "apiVersion": "v2"}},
        "config": values or {},
        "manifest": "---\n# Source: aws-ebs-csi-driver/templates/controller.yaml\n",
    }
    helm_encoded = base64.b64encode(gzip.compress(json.dumps(body).encode())).decode()
    data = payload if payload is not None else base64.b64encode(helm_encoded.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": meta(
            f"sh.helm.release.v1.{release}.v{revision}",
            namespace,
            labels={"name": release, "owner": "helm", "status": status, "version": str(revision)},
        ),
        "data": {"release": data},
    }


def snapshot_crds(served: tuple[str, ...] = ("v1",), kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    plurals = kinds or ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": meta(f"{plural}.snapshot.storage.k8s.io"),
            "spec": {
                "group": "snapshot.storage.k8s.io",
                "versions": [{"name": v, "served": True, "storage": v == served[-1]} for v in served],
            },
        }
        for plural in plurals
    ]


def snapshot_controller(version: str = "v8.1.0") -> dict[str, Any]:
    image = f"registry.k8s.io/sig-storage/snapshot-controller:{version}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("snapshot-controller", "kube-system"),
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "snapshot-controller", "image": image}]}},
        },
    }


# --- a whole cluster -------------------------------------------------------------------------


@dataclass
class Export:
    items: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    addons: list[dict[str, Any]] = field(default_factory=list)

    def kube_json(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": self.items}

    def volumes_json(self) -> dict[str, Any]:
        return {"Volumes": self.volumes}

    def add_volume(self, pv: str, namespace: str, claim_name: str, **volume: Any) -> str:
        volume_id = volume.pop("volume_id", None) or vol(pv)
        self.volumes.append(ebs_volume(volume_id, tags=in_tree_tags(pv, namespace, claim_name), **volume))
        return volume_id


def real_cluster() -> Export:
    """A cluster as exported from a real one that grew over the years (see the module docstring)."""
    x = Export()
    x.items += [
        storage_class("gp2", default=True),
        storage_class("gp3", parameters={"type": "gp3", "fsType": "ext4"}),  # in-tree, named gp3
        storage_class("io1-fast", parameters={"type": "io1", "iopsPerGB": "50"}),
        storage_class("ebs-sc", "ebs.csi.aws.com", parameters={"type": "gp3"}),
    ]
    # shop: two Deployments; one volume encrypted with a key the stack does not list.
    web = x.add_volume("pvc-web", "shop", "web-uploads", size=20, zone="eu-central-1a")
    x.items += [
        in_tree_pv("pvc-web", web, "shop", "web-uploads", size=20, migrated=True),
        claim("shop", "web-uploads", "pvc-web", size="20Gi"),
        *deployment("shop", "web", ["web-uploads"], replicas=2),
    ]
    reports = x.add_volume(
        "pvc-reports", "shop", "reports-cache", size=50, zone="eu-central-1b", encrypted=True, kms_key_id=OTHER_KEY
    )
    x.items += [
        in_tree_pv("pvc-reports", reports, "shop", "reports-cache", zone="eu-central-1b", size=50),
        claim("shop", "reports-cache", "pvc-reports", size="50Gi"),
        *deployment("shop", "reports", ["reports-cache"]),
    ]
    # db: a Postgres operator's StatefulSet (two claims) and a Job's scratch claim.
    operator = owner_ref("acid.zalan.do/v1", "postgresql", "pg")
    x.items += statefulset("db", "pg", {"pgdata": "gp2"}, 2, owner=operator)
    for ordinal, zone in ((0, "eu-central-1a"), (1, "eu-central-1b")):
        name = f"pgdata-pg-{ordinal}"
        volume_id = x.add_volume(
            f"pvc-pg-{ordinal}", "db", name, size=100, zone=zone, encrypted=True, kms_key_id=STACK_KEY
        )
        x.items += [
            in_tree_pv(f"pvc-pg-{ordinal}", volume_id, "db", name, zone=zone, size=100),
            claim("db", name, f"pvc-pg-{ordinal}"),
        ]
    scratch = x.add_volume("pvc-scratch", "db", "backup-scratch", size=5)
    x.items += [
        in_tree_pv("pvc-scratch", scratch, "db", "backup-scratch", size=5),
        claim("db", "backup-scratch", "pvc-scratch"),
        pod("db", "backup-28391-abcde", ["backup-scratch"], owner_ref("batch/v1", "Job", "backup-28391")),
    ]
    # streams: a StatefulSet from before storageClassName (beta annotation), an 8-digit volume id.
    kafka = x.add_volume(
        "pvc-kafka", "streams", "data-kafka-0", size=200, zone="eu-central-1b", volume_id=vol("kafka", short=True)
    )
    x.items += [
        *statefulset("streams", "kafka", {"data": "gp2"}, 1, class_in_annotation=True),
        in_tree_pv(
            "pvc-kafka",
            kafka,
            "streams",
            "data-kafka-0",
            zone="eu-central-1b",
            size=200,
            class_in_annotation=True,
            old_labels=True,
        ),
        claim("streams", "data-kafka-0", "pvc-kafka", class_in_annotation=True, size="200Gi"),
    ]
    # search: a StatefulSet on the in-tree class called gp3 (its volume is gp3 already).
    es = x.add_volume("pvc-es", "search", "data-es-0", size=30, volume_type="gp3", iops=3000, throughput=125)
    x.items += [
        *statefulset("search", "es", {"data": "gp3"}, 1),
        in_tree_pv("pvc-es", es, "search", "data-es-0", size=30, storage_class="gp3"),
        claim("search", "data-es-0", "pvc-es", storage_class="gp3", size="30Gi"),
    ]
    # ops: a static PV without a class used by a bare pod; odd volume ids.
    legacy = x.add_volume("legacy-data", "ops", "legacy", size=1)
    x.items += [
        in_tree_pv("legacy-data", legacy, "ops", "legacy", zone=None, capacity="500Mi", storage_class=None),
        claim("ops", "legacy", "legacy-data", storage_class=None, size="500Mi"),
        pod("ops", "legacy-runner", ["legacy"]),
    ]
    trailing = x.add_volume("pvc-trailing", "ops", "trailing", size=8)
    no_zone = x.add_volume("pvc-no-zone", "ops", "no-zone", size=8, zone="eu-central-1c")
    x.items += [
        in_tree_pv(
            "pvc-trailing", trailing, "ops", "trailing", raw_volume_id=f"aws://eu-central-1a/{trailing}/", size=8
        ),
        claim("ops", "trailing", "pvc-trailing"),
        in_tree_pv("pvc-no-zone", no_zone, "ops", "no-zone", raw_volume_id=f"aws:///{no_zone}", size=8),
        claim("ops", "no-zone", "pvc-no-zone"),
        in_tree_pv("pvc-odd-id", "vol-x", "ops", "odd-id", raw_volume_id="aws://eu-central-1a/volume-7"),
        claim("ops", "odd-id", "pvc-odd-id"),
    ]
    # edge: Local Zone and Wavelength Zone volumes.
    for pv, zone in (("pvc-ham", "eu-central-1-ham-1a"), ("pvc-ber", "eu-central-1-wl1-ber-wlz-1")):
        volume_id = x.add_volume(pv, "edge", pv.removeprefix("pvc-"), size=10, zone=zone)
        x.items += [
            in_tree_pv(pv, volume_id, "edge", pv.removeprefix("pvc-"), zone=zone),
            claim("edge", pv.removeprefix("pvc-"), pv),
        ]
    # analytics: io1, and io2 with multi-attach.
    io1 = x.add_volume("pvc-io1", "analytics", "fast", size=100, volume_type="io1", iops=5000)
    io2 = x.add_volume("pvc-io2", "analytics", "shared-fast", size=100, volume_type="io2", iops=8000, multi_attach=True)
    x.items += [
        in_tree_pv("pvc-io1", io1, "analytics", "fast", size=100, storage_class="io1-fast"),
        claim("analytics", "fast", "pvc-io1", storage_class="io1-fast"),
        in_tree_pv("pvc-io2", io2, "analytics", "shared-fast", size=100, storage_class=None),
        claim("analytics", "shared-fast", "pvc-io2", storage_class=None),
    ]
    # apps: already CSI, released, missing from AWS, ReadWriteMany.
    rwx = x.add_volume("pvc-rwx", "apps", "shared", size=5)
    released = x.add_volume("pvc-released", "apps", "gone", size=5, state="available")
    x.items += [
        csi_pv("pvc-csi", vol("csi"), "apps", "new"),
        claim("apps", "new", "pvc-csi", storage_class="ebs-sc"),
        in_tree_pv("pvc-released", released, "apps", "gone", phase="Released"),
        in_tree_pv("pvc-missing", vol("missing"), "apps", "lost"),
        claim("apps", "lost", "pvc-missing"),
        in_tree_pv("pvc-rwx", rwx, "apps", "shared"),
        claim("apps", "shared", "pvc-rwx", ("ReadWriteMany",)),
    ]
    # Platform: the driver as an EKS add-on, snapshot CRDs and controller installed by hand.
    x.items += [*driver_objects(managed_by="EKS"), *snapshot_crds(), snapshot_controller()]
    x.addons = [
        addon("aws-ebs-csi-driver", "v1.35.0-eksbuild.1", role=f"arn:aws:iam::{ACCOUNT}:role/ebs-csi-driver"),
        addon("vpc-cni", "v1.18.3-eksbuild.2"),
    ]
    return x


# --- moto ------------------------------------------------------------------------------------


def create_in_tree_volume(
    ec2: Any,
    *,
    size: int,
    zone: str = "eu-central-1a",
    volume_type: str = "gp2",
    pv: str,
    namespace: str,
    claim_name: str,
    **extra: Any,
) -> str:
    """A moto volume tagged as the in-tree provisioner tags them."""
    tags = [{"Key": k, "Value": v} for k, v in in_tree_tags(pv, namespace, claim_name).items()]
    response = ec2.create_volume(
        AvailabilityZone=zone,
        Size=size,
        VolumeType=volume_type,
        TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
        **extra,
    )
    return str(response["VolumeId"])


def fleet(n: int) -> tuple[Any, list[dict[str, Any]]]:
    """n gp2 volumes each bound to a claim mounted by a Deployment (inside an active mock_aws)."""
    ec2 = boto3.client("ec2", region_name=REGION)
    items: list[dict[str, Any]] = []
    for i in range(n):
        pv, name = f"pvc-{i:08x}", f"data-{i}"
        volume_id = create_in_tree_volume(ec2, size=10 + i % 50, pv=pv, namespace="apps", claim_name=name)
        items += [in_tree_pv(pv, volume_id, "apps", name), claim("apps", name, pv)]
        items += deployment("apps", f"app-{i}", [name])
    return ec2, items


# --- a Kubernetes API -------------------------------------------------------------------------


class FakeKube:
    """A Kubernetes API answering list calls from fixed objects, `limit` at a time, counting calls."""

    def __init__(self, objects: dict[str, list[Any]], crds: list[dict]):
        self.objects, self.crds = objects, {c["metadata"]["name"]: c for c in crds}
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, method: str):
        if method == "read_custom_resource_definition":
            return self._read_crd
        if not method.startswith("list_"):
            raise AttributeError(method)

        def call(limit: int, _continue: str | None = None, **selectors):
            self.calls.append((method, selectors))
            start = int(_continue or 0)
            found = self.objects.get(method, [])
            token = str(start + limit) if start + limit < len(found) else None
            return SimpleNamespace(items=found[start : start + limit], metadata=SimpleNamespace(_continue=token))

        return call

    def _read_crd(self, name: str):
        self.calls.append(("read_custom_resource_definition", {"name": name}))
        if name not in self.crds:
            raise NotFoundError()
        return self.crds[name]


class NotFoundError(Exception):
    status = 404
