"""Every manifest and value set the program declares, validated against the real upstream schema:
chart values.schema.json 2.64.0, the snapshot CRDs of external-snapshotter v8.6.0, and the
Kubernetes OpenAPI schemas shipped by kubernetes-validate (strict: unknown fields fail).

Not proven: admission webhooks and CEL rules (x-kubernetes-validations) a live API server applies.
"""

import hashlib
import json

import jsonschema
import pytest

from gp3migrate.naming import dns1123_subdomain_problem
from tests.mock_cloud import advance, copy_stack_config, run_program, stack_config, with_phase
from tests.schemas import merged, validate_crd, validate_kubernetes

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}

# The gp2 class as EKS creates it (before 1.30, with the default annotation).
EKS_GP2_CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "gp2", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kubernetes.io/aws-ebs",
    "parameters": {"fsType": "ext4", "type": "gp2"},
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "WaitForFirstConsumer",
}

# The runbook's in-tree PV (shared/seeds runbook, `kubectl get pv -o yaml`).
IN_TREE_PV = {
    "apiVersion": "v1",
    "kind": "PersistentVolume",
    "metadata": {"name": "pvc-646fef81-c677-46f4-8f27-9d394618f236"},
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "awsElasticBlockStore": {"fsType": "ext4", "volumeID": "aws://eu-central-1c/vol-03d3cd818a2c2def3"},
        "capacity": {"storage": "1Gi"},
        "claimRef": {"namespace": "default", "name": "ebs-gp2-claim"},
        "persistentVolumeReclaimPolicy": "Delete",
        "storageClassName": "gp2",
    },
}


def with_wire_shape(reg):
    return {"apiVersion": reg.inputs["apiVersion"], "kind": reg.inputs["kind"], **reg.inputs}


@pytest.mark.parametrize(
    "config",
    [
        BASE,
        {**BASE, "driverIdentity": "pod-identity", "extraVolumeTags": {"team": "a", "cost-center": "42"}},
    ],
)
def test_helm_values_are_valid_against_the_chart_schema(chart_values_schema, config):
    result = run_program(config)
    values = result.named("platform-driver-release").inputs["values"]
    jsonschema.Draft7Validator(chart_values_schema).validate(values)


def test_addon_configuration_is_valid_against_the_chart_schema(chart_values_schema):
    result = run_program({**BASE, "driverInstall": "addon", "driverAddonVersion": "v1.53.0-eksbuild.1"})
    configuration = json.loads(result.named("platform-driver-addon").inputs["configurationValues"])
    jsonschema.Draft7Validator(chart_values_schema).validate(configuration)


def test_chart_schema_rejects_a_misspelt_value(chart_values_schema):
    """The schema is strict enough for the validation above to mean something."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(chart_values_schema).validate({"controller": {"k8sTagClusterID": "x"}})


def test_storage_classes_are_valid_kubernetes_objects():
    result = run_program(stack_config("dev"))
    classes = result.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    # gp3 only: the example volume's sustained plan (3000/125) is the main class's; test below
    # validates the tiers.
    assert len(classes) == 1
    for reg in classes:
        validate_kubernetes(with_wire_shape(reg))


KEY = "arn:aws:kms:eu-central-1:123456789012:key/aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def _volume(i: int, size: int, **facts) -> dict:
    return {
        "namespace": "apps",
        "claim": f"data-{i}",
        "pv": f"pvc-{i:08x}-0000-4000-8000-000000000000",
        "volumeId": f"vol-{i:017x}",
        "zone": "eu-central-1a",
        "sizeGiB": size,
        **facts,
    }


def test_every_kind_of_generated_class_is_a_valid_kubernetes_object():
    """Main, tiers per performance, fsType and key, an unencrypted stack's tiers, and a former main
    class kept after a rename: each valid (strict), and its name a DNS-1123 name."""
    fleet = [
        _volume(0, 10),
        _volume(1, 500, fsType="xfs"),
        _volume(2, 2000, fsType="ext3", encrypted=True, kmsKeyId=KEY),
        _volume(3, 16384, fsType="ext3", encrypted=True),
    ]
    first = run_program({**BASE, "kmsKeyArns": [KEY], "migrations": fleet})
    renamed = run_program(
        {**BASE, "kmsKeyArns": [KEY], "gp3ClassName": "gp3-xfs", "gp3FsType": "xfs", "migrations": fleet},
        previous_outputs=first.outputs,
    )
    unencrypted = run_program({**BASE, "gp3Encrypted": False, "migrations": fleet[:2]})
    seen = set()
    for result in (first, renamed, unencrypted):
        assert result.error is None, result.error
        for reg in result.of_type("kubernetes:storage.k8s.io/v1:StorageClass"):
            validate_kubernetes(with_wire_shape(reg))
            name = reg.inputs["metadata"]["name"]
            assert dns1123_subdomain_problem(name) is None, name
            seen.add(name)
    # Sustained (the default): the 10 GiB volume's 3000/125 is the main class's when fsType and
    # encryption match, and a tier of its own (3000/125, ext4) once the main class is xfs.
    assert sorted(seen) == [
        "gp3",
        "gp3-16000iops-250mibs-ext3",
        "gp3-3000iops-125mibs",
        "gp3-3000iops-250mibs-xfs",
        "gp3-3000iops-250mibs-xfs-unencrypted",
        f"gp3-6000iops-250mibs-ext3-enc-{hashlib.sha256(KEY.encode()).hexdigest()[:8]}",
        "gp3-xfs",
    ]


def test_gp2_demotion_patch_applied_to_the_eks_class_is_valid():
    result = run_program(BASE)
    patch = result.named("platform-classes-gp2-demotion").inputs
    validate_kubernetes(merged(EKS_GP2_CLASS, patch))


def test_volume_snapshot_class_is_valid_against_its_crd(snapshot_crd_schemas):
    result = run_program(BASE)
    validate_crd(result.named("platform-classes-snapshot-class").inputs, snapshot_crd_schemas["VolumeSnapshotClass"])


def test_crd_validation_rejects_a_wrong_field(snapshot_crd_schemas):
    bad = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {},
        "driver": "ebs.csi.aws.com",
        "deletionPolicy": "Keep",
    }
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(bad, snapshot_crd_schemas["VolumeSnapshotClass"])


def test_restore_objects_are_valid_against_the_crds(snapshot_crd_schemas):
    result = advance(copy_stack_config("dev"), ["precopy", "cutover"])[-1]
    validate_crd(
        result.named("migrate-default-ebs-gp2-claim-content").inputs, snapshot_crd_schemas["VolumeSnapshotContent"]
    )
    validate_crd(
        result.named("migrate-default-ebs-gp2-claim-volume-snapshot").inputs, snapshot_crd_schemas["VolumeSnapshot"]
    )


def test_restored_claim_and_retain_patch_are_valid_kubernetes_objects():
    result = advance(copy_stack_config("dev"), ["precopy", "cutover"])[-1]
    validate_kubernetes(result.named("migrate-default-ebs-gp2-claim-claim").inputs)
    patch = result.named("migrate-default-ebs-gp2-claim-retain").inputs
    patched = merged(IN_TREE_PV, patch)
    validate_kubernetes(patched)
    assert patched["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_cutover_and_rollback_objects_are_valid_kubernetes_objects():
    """The rebind patch applied to the in-tree PV, and the claim that takes the old name back
    (same-name rollback). Scaling goes through the Scale subresource: no manifest to validate."""
    config = copy_stack_config("dev")
    runs = advance(config, ["precopy", "cutover"], claimNaming="same-name")
    rollback = run_program(
        with_phase(config, "rollback", claimNaming="same-name", deleteRestoredClaim=True),
        previous_outputs=runs[-1].outputs,
    )
    assert rollback.error is None, rollback.error
    rebind = rollback.named("migrate-default-ebs-gp2-claim-rebind").inputs
    validate_kubernetes(merged(IN_TREE_PV, {"metadata": rebind["metadata"], "spec": rebind["spec"]}))
    validate_kubernetes(rollback.named("migrate-default-ebs-gp2-claim-rollback-claim").inputs)


def test_the_rehome_objects_are_valid_kubernetes_objects():
    """The CSI PV of the same EBS volume and the claim bound to it by volumeName (the dev
    example's default strategy), and the rollback's claim on the in-tree PV again."""
    config = stack_config("dev")
    runs = advance(config, ["precopy", "cutover"])
    cutover = runs[-1]
    pv = cutover.named("migrate-default-ebs-gp2-claim-csi-pv").inputs
    assert pv["spec"]["csi"]["volumeHandle"] == "vol-03d3cd818a2c2def3"
    validate_kubernetes({k: v for k, v in pv.items() if not k.startswith("__")})
    validate_kubernetes(cutover.named("migrate-default-ebs-gp2-claim-claim").inputs)
    rollback = run_program(with_phase(config, "rollback"), previous_outputs=cutover.outputs)
    assert rollback.error is None, rollback.error
    validate_kubernetes(rollback.named("migrate-default-ebs-gp2-claim-rollback-claim").inputs)
