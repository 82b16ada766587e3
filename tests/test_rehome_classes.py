"""Why a rehome-only stack keeps its per-tier gp3 classes (issue 22 item 7 d): they are not unused.

The CSI PV and the claim of the old name name the tier class (binding needs equal classes), and a
claim can grow only through a class that exists and allows expansion (kubernetes
plugin/pkg/admission/storage/persistentvolume/resize/admission.go: a resize is refused unless the
claim's StorageClass has allowVolumeExpansion). Dropping the classes would leave claims naming a
class that does not exist. Upgrade safety: classes are retainOnDelete, so one that leaves the
program stays in the cluster (components/storage_classes.py).

Not proven here: the admission plugin's verdict on a live cluster.
"""

from tests.mock_cloud import advance

ENTRY = {
    "namespace": "apps",
    "claim": "data",
    "pv": "pvc-1",
    "volumeId": "vol-0123456789abcdef0",
    "zone": "eu-central-1a",
    "sizeGiB": 2000,  # gp2 gives 6,000 IOPS: above the main class's 3,000, so a tier class
}


def test_every_class_a_rehome_only_stack_declares_is_named_by_its_claim_and_expandable():
    _, cutover = advance(
        {"clusterName": "dev-eks", "region": "eu-central-1", "migrations": [ENTRY]}, ["precopy", "cutover"]
    )
    classes = {r.inputs["metadata"]["name"]: r for r in cutover.of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    claims = [r for r in cutover.of_type("kubernetes:core/v1:PersistentVolumeClaim")]
    named = {c.inputs["spec"]["storageClassName"] for c in claims}
    tiers = set(classes) - {"gp3"}
    assert tiers and tiers <= named, (tiers, named)
    for name in named:
        assert classes[name].inputs["allowVolumeExpansion"] is True
        assert classes[name].retain_on_delete
