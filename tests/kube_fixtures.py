"""Self-written `kubectl get -o json` objects and moto EBS volumes for discovery tests."""

from typing import Any

import boto3

CLUSTER = "dev-eks"
REGION = "eu-central-1"


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
) -> dict[str, Any]:
    annotations = {"pv.kubernetes.io/provisioned-by": "kubernetes.io/aws-ebs"}
    if migrated:
        annotations["pv.kubernetes.io/migrated-to"] = "ebs.csi.aws.com"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "awsElasticBlockStore": {"fsType": "ext4", "volumeID": f"aws://{zone}/{volume_id}" if zone else volume_id},
            "capacity": {"storage": f"{size}Gi"},
            "claimRef": {"namespace": namespace, "name": claim},
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "gp2",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": phase},
    }


def csi_pv(name: str, volume_id: str, namespace: str, claim: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume_id},
            "claimRef": {"namespace": namespace, "name": claim},
        },
        "status": {"phase": "Bound"},
    }


def claim(namespace: str, name: str, pv: str, modes: tuple[str, ...] = ("ReadWriteOnce",)) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"accessModes": list(modes), "storageClassName": "gp2", "volumeName": pv},
        "status": {"phase": "Bound"},
    }


def deployment_mounting(namespace: str, name: str, claim_name: str, replicas: int = 1) -> list[dict[str, Any]]:
    rs = f"{name}-5d8f7b"
    return [
        {"kind": "Deployment", "metadata": {"namespace": namespace, "name": name}, "spec": {"replicas": replicas}},
        {
            "kind": "ReplicaSet",
            "metadata": {"namespace": namespace, "name": rs, "ownerReferences": [{"kind": "Deployment", "name": name}]},
        },
        {
            "kind": "Pod",
            "metadata": {
                "namespace": namespace,
                "name": f"{rs}-x1",
                "ownerReferences": [{"kind": "ReplicaSet", "name": rs}],
            },
            "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]},
        },
    ]


def statefulset_mounting(namespace: str, name: str, claim_name: str, replicas: int) -> list[dict[str, Any]]:
    template = {"metadata": {"name": "data"}, "spec": {"storageClassName": "gp2", "accessModes": ["ReadWriteOnce"]}}
    return [
        {
            "kind": "StatefulSet",
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"replicas": replicas, "volumeClaimTemplates": [template]},
        },
        {
            "kind": "Pod",
            "metadata": {
                "namespace": namespace,
                "name": f"{name}-0",
                "ownerReferences": [{"kind": "StatefulSet", "name": name}],
            },
            "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]},
        },
    ]


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
    """A volume tagged as the in-tree provisioner tags them."""
    tags = [
        {"Key": "kubernetes.io/created-for/pv/name", "Value": pv},
        {"Key": "kubernetes.io/created-for/pvc/name", "Value": claim_name},
        {"Key": "kubernetes.io/created-for/pvc/namespace", "Value": namespace},
        {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"},
        {"Key": "KubernetesCluster", "Value": CLUSTER},
    ]
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
        items += deployment_mounting("apps", f"app-{i}", name)
    return ec2, items
