"""The runbook's demo workload, for the rehearsal cluster: a claim on the in-tree gp2 class and a
pod that appends a UTC timestamp to /data/out.txt every 5 seconds. After a cutover every line
written before the quiesce must be on the gp3 volume (the live test reads them back)."""

from typing import Any

DEMO_NAMESPACE = "default"
DEMO_CLAIM = "ebs-gp2-claim"
DEMO_APP = "app-gp2-in-tree"
# A small image from a public registry mirror (the runbook used centos).
DEMO_IMAGE = "public.ecr.aws/docker/library/busybox:1.36"
WRITER_COMMAND = "while true; do date -u +%Y-%m-%dT%H:%M:%SZ >> /data/out.txt; sync; sleep 5; done"


def demo_claim(gp2_class_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": DEMO_CLAIM, "namespace": DEMO_NAMESPACE},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": gp2_class_name,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def demo_deployment() -> dict[str, Any]:
    labels = {"app": DEMO_APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEMO_APP, "namespace": DEMO_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            # One writer at a time: the old pod must let go of the volume before a new one mounts it.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "writer",
                            "image": DEMO_IMAGE,
                            "command": ["/bin/sh", "-c", WRITER_COMMAND],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": DEMO_CLAIM}}],
                },
            },
        },
    }
