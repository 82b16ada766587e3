"""Per-volume migrations under mocks: exact objects and options, the restore binding model, the
dependency graph, independence between volumes, and what removing an entry would do.

Not proven here: that EBS completes the snapshot in time, that the snapshot controller and the
provisioner behave as the model says on a real cluster (the opt-in live test does that).
"""

import copy

import pytest

from tests.cluster_model import GI, Cluster, WillNotBindError, restore
from tests.mock_cloud import Run, advance, run_program, stack_config, with_phase

PREFIX = "migrate-default-ebs-gp2-claim"
DATA_BEARING = {
    "kubernetes:core/v1:PersistentVolumePatch",
    "aws:ebs/snapshot:Snapshot",
    "kubernetes:core/v1:PersistentVolumeClaim",
}


def entry(i: int, size: int = 20, namespace: str = "apps") -> dict:
    return {
        "namespace": namespace,
        "claim": f"data-db-{i}",
        "pv": f"pvc-{i:08x}-0000-4000-8000-000000000000",
        "volumeId": f"vol-{i:017x}",
        "zone": "eu-central-1a",
        "sizeGiB": size,
        # This module pins the snapshot copy's objects (tests/test_rehome.py: the default).
        "strategy": "copy",
    }


def fleet(n: int, **extra) -> dict:
    return {"clusterName": "dev-eks", "region": "eu-central-1", "migrations": [entry(i) for i in range(n)], **extra}


def cutover(config: dict) -> Run:
    """The run that cuts over (after the precopy run), for every entry of the config."""
    return advance(config, ["precopy", "cutover"])[-1]


def dev_copy() -> dict:
    """The dev stack's example, migrated by copy (its default is rehome)."""
    return with_phase(stack_config("dev"), "precopy", strategy="copy", claimNaming="rename")


@pytest.fixture(scope="module")
def dev():
    return cutover(dev_copy())


def test_dev_example_registers_the_migration_graph_exactly(dev):
    children = sorted((r.type, r.name) for r in dev.registrations if r.parent.endswith(f"::{PREFIX}"))
    assert children == sorted(
        [
            ("kubernetes:core/v1:PersistentVolumePatch", f"{PREFIX}-retain"),
            ("aws:ebs/snapshot:Snapshot", f"{PREFIX}-precopy-snapshot"),
            ("pulumi-python:dynamic:Resource", f"{PREFIX}-quiesce"),
            ("pulumi-python:dynamic:Resource", f"{PREFIX}-detached"),
            ("aws:ebs/snapshot:Snapshot", f"{PREFIX}-final-snapshot"),
            ("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotContent", f"{PREFIX}-content"),
            ("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshot", f"{PREFIX}-volume-snapshot"),
            ("kubernetes:core/v1:PersistentVolumeClaim", f"{PREFIX}-claim"),
        ]
    )
    assert dev.named(PREFIX).type == "eks-gp3-migration:index:VolumeMigration"


def test_retain_patch_is_exact_and_kept_on_delete(dev):
    retain = dev.named(f"{PREFIX}-retain")
    assert retain.inputs == {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": "pvc-646fef81-c677-46f4-8f27-9d394618f236",
            "annotations": {"pulumi.com/patchForce": "true"},
        },
        "spec": {"persistentVolumeReclaimPolicy": "Retain"},
    }
    assert retain.retain_on_delete is True


def test_snapshots_are_protected_timed_and_ordered(dev):
    precopy, final = dev.named(f"{PREFIX}-precopy-snapshot"), dev.named(f"{PREFIX}-final-snapshot")
    for snapshot, purpose in ((precopy, "precopy"), (final, "final")):
        assert snapshot.inputs["volumeId"] == "vol-03d3cd818a2c2def3"
        assert snapshot.inputs["description"] == (
            f"eks-gp3-migration dev default/ebs-gp2-claim {purpose} (pvc-646fef81-c677-46f4-8f27-9d394618f236)"
        )
        assert snapshot.inputs["tags"]["eks-gp3-migration/purpose"] == purpose
        assert snapshot.protect is True and snapshot.retain_on_delete is False
        assert snapshot.custom_timeouts == {"create": "31m"}
    assert dev.named(f"{PREFIX}-retain").urn in precopy.dependencies
    assert dev.named(f"{PREFIX}-detached").urn in final.dependencies


def test_restore_objects_are_exact(dev):
    handle = dev.outputs["migrations"]["default/ebs-gp2-claim"]["finalSnapshotId"]
    content = dev.named(f"{PREFIX}-content")
    assert content.inputs == {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": {
            # Named after the snapshot it carries (issue 9 item 9).
            "name": f"default-ebs-gp2-claim-{handle}",
            "labels": {"eks-gp3-migration/claim": "ebs-gp2-claim"},
        },
        "spec": {
            "deletionPolicy": "Retain",
            "driver": "ebs.csi.aws.com",
            "source": {"snapshotHandle": handle},
            "sourceVolumeMode": "Filesystem",
            "volumeSnapshotClassName": "ebs-csi-aws",
            "volumeSnapshotRef": {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "name": f"ebs-gp2-claim-{handle}",
                "namespace": "default",
            },
        },
    }
    snapshot = dev.named(f"{PREFIX}-volume-snapshot")
    assert snapshot.inputs == {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": f"ebs-gp2-claim-{handle}",
            "namespace": "default",
            "annotations": {
                "pulumi.com/waitFor": "jsonpath={.status.readyToUse}=true",
                "eks-gp3-migration/snapshot-handle": handle,
            },
            "labels": {"eks-gp3-migration/claim": "ebs-gp2-claim"},
        },
        "spec": {
            "volumeSnapshotClassName": "ebs-csi-aws",
            "source": {"volumeSnapshotContentName": f"default-ebs-gp2-claim-{handle}"},
        },
    }
    # A new snapshot means new names: replaced create-before-delete, never delete-before-replace
    # (the content's delete would wait on its VolumeSnapshot, deleted after it: issue 9 item 9).
    for reg in (content, snapshot):
        assert reg.delete_before_replace is False


def test_restored_claim_is_exact_and_retained(dev):
    handle = dev.outputs["migrations"]["default/ebs-gp2-claim"]["finalSnapshotId"]
    claim = dev.named(f"{PREFIX}-claim")
    assert claim.inputs == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "ebs-gp2-claim-gp3",
            "namespace": "default",
            "labels": {"eks-gp3-migration/claim": "ebs-gp2-claim"},
            "annotations": {
                "eks-gp3-migration/source-pv": "pvc-646fef81-c677-46f4-8f27-9d394618f236",
                "eks-gp3-migration/source-volume": "vol-03d3cd818a2c2def3",
            },
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Filesystem",
            # Sustained (the stack's policy): 3,000 / 125 is the main class's, so no tier of its own.
            "storageClassName": "gp3",
            "resources": {"requests": {"storage": "1Gi"}},
            "dataSource": {
                "apiGroup": "snapshot.storage.k8s.io",
                "kind": "VolumeSnapshot",
                "name": f"ebs-gp2-claim-{handle}",
            },
        },
    }
    assert claim.retain_on_delete is True
    assert claim.ignore_changes == ["spec.dataSource", "spec.dataSourceRef"]


def test_per_migration_outputs_and_fleet_saving(dev):
    out = dev.outputs["migrations"]["default/ebs-gp2-claim"]
    assert out["sourceVolume"] == "vol-03d3cd818a2c2def3"
    assert out["phase"] == "cutover"
    assert out["precopySnapshotId"].startswith("snap-") and out["finalSnapshotId"].startswith("snap-")
    assert out["precopySnapshotId"] != out["finalSnapshotId"]
    assert out["claim"] == "default/ebs-gp2-claim-gp3"
    # Sustained: gp2's 1 GiB gives 100 IOPS and 25 MiB/s without burst, under gp3's included 3000/125.
    assert (out["plannedIops"], out["plannedThroughput"]) == (3000, 125)
    # eu-central-1: gp2 $0.119/GB; gp3 $0.0952/GB and nothing else (peak would add 3 MiB/s x $0.048
    # for gp2's burst 128 MiB/s, $0.2392 in all: issue 10).
    assert out["monthlyPriceGp2"] == pytest.approx(0.119)
    assert out["monthlyPriceGp3"] == pytest.approx(0.0952)
    assert dev.outputs["fleetMonthlySaving"] == pytest.approx(0.119 - 0.0952)


def test_peak_buys_gp2s_burst_throughput_for_the_runbook_volume():
    """The same volume with `performance: peak` (issue 10's figures): gp2's burst 128 MiB/s, 3 above
    gp3's included 125, for $0.2392 a month instead of $0.0952, in a tier class of its own."""
    config = stack_config("dev") | {"eks-gp3-migration:performance": "peak"}
    out = cutover(config).outputs["migrations"]["default/ebs-gp2-claim"]
    assert (out["plannedIops"], out["plannedThroughput"], out["storageClass"]) == (3000, 128, "gp3-3000iops-128mibs")
    assert out["monthlyPriceGp3"] == pytest.approx(0.0952 + 3 * 0.048)


def _cluster_from(result) -> Cluster:
    classes = {
        r.inputs["metadata"]["name"]: r.inputs for r in result.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    }
    contents = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in result.of_type("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotContent")
    }
    snapshots = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs
        for r in result.of_type("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshot")
    }
    sizes = {}
    for key, out in result.outputs["migrations"].items():
        size = next(
            r
            for r in result.of_type("kubernetes:core/v1:PersistentVolumeClaim")
            if r.inputs["metadata"]["labels"]["eks-gp3-migration/claim"] == key.split("/")[1]
        )
        sizes[out["finalSnapshotId"]] = (
            int(size.inputs["spec"]["resources"]["requests"]["storage"].removesuffix("Gi")) * GI
        )
    # Copies: negative tests edit the model, never the shared recording.
    return copy.deepcopy(Cluster(storage_classes=classes, contents=contents, snapshots=snapshots, ebs_snapshots=sizes))


def test_every_declared_claim_binds_in_the_model():
    result = cutover(fleet(5))
    cluster = _cluster_from(result)
    claims = result.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert len(claims) == 5
    finals = {out["finalSnapshotId"] for out in result.outputs["migrations"].values()}
    for claim in claims:
        content = restore(cluster, claim.inputs)
        assert [f for f in finals if content.endswith(f"-{f}")], content


def test_model_rejects_a_wrong_driver(dev):
    cluster = _cluster_from(dev)
    for content in cluster.contents.values():
        content["spec"]["driver"] = "kubernetes.io/aws-ebs"
    with pytest.raises(WillNotBindError, match="driver"):
        restore(cluster, dev.named(f"{PREFIX}-claim").inputs)


def test_model_rejects_a_too_small_request(dev):
    cluster = _cluster_from(dev)
    claim = copy.deepcopy(dev.named(f"{PREFIX}-claim").inputs)
    claim["spec"]["resources"]["requests"]["storage"] = "512Mi"
    with pytest.raises(WillNotBindError, match="smaller"):
        restore(cluster, claim)


def test_model_rejects_a_content_naming_another_snapshot(dev):
    cluster = _cluster_from(dev)
    for content in cluster.contents.values():
        content["spec"]["volumeSnapshotRef"]["name"] = "imported-aws-snapshot"
    with pytest.raises(WillNotBindError, match="another VolumeSnapshot"):
        restore(cluster, dev.named(f"{PREFIX}-claim").inputs)


def test_model_rejects_a_block_claim_from_a_filesystem_source(dev):
    cluster = _cluster_from(dev)
    claim = copy.deepcopy(dev.named(f"{PREFIX}-claim").inputs)
    claim["spec"]["volumeMode"] = "Block"
    with pytest.raises(WillNotBindError, match="volume mode"):
        restore(cluster, claim)


def test_dependencies_are_pinned(dev):
    assert dev.depends_on(f"{PREFIX}-precopy-snapshot", f"{PREFIX}-retain")
    assert dev.depends_on(f"{PREFIX}-quiesce", f"{PREFIX}-precopy-snapshot")
    assert dev.depends_on(f"{PREFIX}-detached", f"{PREFIX}-quiesce")
    assert dev.depends_on(f"{PREFIX}-final-snapshot", f"{PREFIX}-detached")
    assert dev.depends_on(f"{PREFIX}-volume-snapshot", f"{PREFIX}-content")
    assert dev.depends_on(f"{PREFIX}-claim", f"{PREFIX}-volume-snapshot")
    for child in (
        "retain",
        "precopy-snapshot",
        "quiesce",
        "detached",
        "final-snapshot",
        "content",
        "volume-snapshot",
        "claim",
    ):
        for platform in (
            "platform-snapshots-crds",
            "platform-snapshots-controller",
            "platform-classes-gp3",  # the class the claim names (the main one)
            "platform-classes-snapshot-class",
        ):
            assert dev.depends_on(f"{PREFIX}-{child}", platform), (child, platform)


def test_a_migration_waits_only_for_the_class_it_uses():
    """With many performance tiers, a volume must not wait on (or scale with) every class."""
    config = fleet(0)
    # Sustained: 200 GiB needs 150 MiB/s (600 IOPS x 256 KiB), 2000 GiB 6,000 IOPS: two tiers.
    config["migrations"] = [entry(0, size=200), entry(1, size=2000)]
    result = cutover(config)
    assert result.depends_on("migrate-apps-data-db-0-claim", "platform-classes-gp3-3000iops-150mibs")
    assert not result.depends_on("migrate-apps-data-db-0-claim", "platform-classes-gp3-6000iops-250mibs")
    assert not result.depends_on("migrate-apps-data-db-1-claim", "platform-classes-gp3-3000iops-150mibs")


def test_migrations_are_independent_subgraphs():
    n = 4
    result = cutover(fleet(n))
    for i in range(n):
        for j in range(n):
            if i != j:
                for child in ("retain", "final-snapshot", "content", "volume-snapshot", "claim"):
                    later = f"migrate-apps-data-db-{i}-{child}"
                    assert not result.depends_on(later, f"migrate-apps-data-db-{j}"), (later, j)
                    for other in ("retain", "precopy-snapshot", "final-snapshot", "claim"):
                        assert not result.depends_on(later, f"migrate-apps-data-db-{j}-{other}")


def test_a_volume_absent_from_config_is_never_touched():
    result = run_program(fleet(2))
    text = repr([r.inputs for r in result.registrations])
    assert f"vol-{2:017x}" not in text
    assert f"pvc-{2:08x}" not in text
    assert len(result.of_type("eks-gp3-migration:index:VolumeMigration")) == 2


def test_removing_an_entry_leaves_only_retained_or_protected_data_behind():
    before = cutover(fleet(3))
    # Past precopy, a removal must be said out loud (`forget`, tests/test_stack_file_forget.py).
    after = run_program(
        fleet(2)
        | {"migrations": [dict(e, phase="cutover") for e in fleet(2)["migrations"]], "forget": ["apps/data-db-2"]},
        previous_outputs=before.outputs,
    )
    assert after.error is None, after.error
    removed = {r.name for r in before.registrations} - {r.name for r in after.registrations}
    assert removed and all("data-db-2" in name for name in removed)
    for reg in before.registrations:
        if reg.name in removed and reg.type in DATA_BEARING:
            assert reg.protect or reg.retain_on_delete, reg.name
        if reg.name in removed and reg.type.endswith("VolumeSnapshotContent"):
            assert reg.inputs["spec"]["deletionPolicy"] == "Retain"
    # The platform is unchanged by the removal.
    platform = lambda r: {(x.name, repr(x.inputs)) for x in r.registrations if not x.name.startswith("migrate-")}  # noqa: E731
    assert platform(before) == platform(after)


def test_performance_tiers_are_deduplicated_classes():
    config = fleet(0)
    sizes = [10, 100, 200, 400, 500, 2000]
    config["migrations"] = [entry(i, size=size) for i, size in enumerate(sizes)]
    result = cutover(config)
    classes = {
        r.inputs["metadata"]["name"]: r.inputs["parameters"]
        for r in result.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    }
    assert sorted(classes) == ["gp3", "gp3-3000iops-150mibs", "gp3-3000iops-250mibs", "gp3-6000iops-250mibs"]
    assert classes["gp3-6000iops-250mibs"]["iops"] == "6000"
    claims = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["storageClassName"]
        for r in result.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    }
    # Sustained: gp2 without burst gives 10 and 100 GiB less than gp3's included 3000/125 (the main
    # class); 200 GiB 150 MiB/s; 400 and 500 GiB the 250 MiB/s cap; 2000 GiB 6,000 IOPS.
    assert claims == {
        "data-db-0-gp3": "gp3",
        "data-db-1-gp3": "gp3",
        "data-db-2-gp3": "gp3-3000iops-150mibs",
        "data-db-3-gp3": "gp3-3000iops-250mibs",
        "data-db-4-gp3": "gp3-3000iops-250mibs",
        "data-db-5-gp3": "gp3-6000iops-250mibs",
    }
    tier = result.named("platform-classes-gp3-6000iops-250mibs")
    assert tier.inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "false"}


def test_label_values_stay_valid_for_claims_of_253_characters():
    """The API server refuses label values over 63 characters (apimachinery IsValidLabelValue):
    long claim names, common for StatefulSets and operators, must not fail the cutover midway."""
    import re

    config = dev_copy()
    long_claim = "data-" + "x" * 243 + "-db-0"
    assert len(long_claim) == 253
    key = next(k for k in config if k.endswith("migrations"))
    config[key][0]["claim"] = long_claim
    runs = advance(config, ["precopy", "cutover"], claimNaming="same-name", newClaimName="data-gp3")
    objects = [r for r in runs[-1].registrations if r.type.startswith("kubernetes:") and "metadata" in r.inputs]
    labelled = [r for r in objects if (r.inputs["metadata"].get("labels") or {})]
    assert {r.name.rsplit("-", 1)[-1] for r in labelled} >= {"content", "snapshot", "claim"}
    valid = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
    for reg in labelled:
        for value in reg.inputs["metadata"]["labels"].values():
            assert len(value) <= 63 and valid.match(value), (reg.name, value)
        assert reg.inputs["metadata"]["annotations"]["eks-gp3-migration/claim"] == long_claim, reg.name
