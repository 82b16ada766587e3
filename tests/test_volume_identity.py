"""The volume keeps its identity (issue 22 item 6, the program and discovery side): the CSI PV says
what the in-tree PV said about the volume (partition, readOnly, mountOptions), as CSI migration's
translation does (kubernetes csi-translation-lib plugins/aws_ebs.go TranslateInTreePVToCSI);
filesystems the driver refuses at NodeStage (aws-ebs-csi-driver pkg/driver/node.go ValidFSTypes)
are refused at discovery and at preview; finalReclaimPolicy Delete needs Kubernetes 1.31.

Not proven here: how the driver stages the volume (the simulation's mount model, issue 22 item 6).
"""

from typing import Any

import pytest

from gp3migrate.config.phases import Applied
from gp3migrate.config.problems import ConfigError, Problems
from gp3migrate.config.settings import load_settings
from gp3migrate.discovery.volumes import discover, drop_refused
from gp3migrate.planning.csi_volume import csi_persistent_volume
from gp3migrate.planning.plan import plan_migration
from tests import kube_fixtures as kf

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}
PV = "pvc-00000000-0000-4000-8000-000000000000"


def entry(**extra: Any) -> dict[str, Any]:
    return {
        "namespace": "apps",
        "claim": "data-db-0",
        "pv": PV,
        "volumeId": "vol-00000000000000001",
        "zone": "eu-central-1a",
        "sizeGiB": 100,
        **extra,
    }


def csi_spec(**extra: Any) -> dict[str, Any]:
    settings = load_settings({**BASE, "migrations": [entry(**extra)]})
    return dict(csi_persistent_volume(plan_migration(settings.migrations[0], settings))["spec"])


def refusals(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    return list(refused.value.problems)


def test_the_csi_pv_carries_partition_read_only_and_mount_options():
    spec = csi_spec(partition=2, readOnly=True, mountOptions=["noatime", "nodiscard"])
    assert spec["csi"] == {
        "driver": "ebs.csi.aws.com",
        "volumeHandle": "vol-00000000000000001",
        "fsType": "ext4",
        "volumeAttributes": {"partition": "2"},
        "readOnly": True,
    }
    assert spec["mountOptions"] == ["noatime", "nodiscard"]


def test_without_them_the_csi_pv_is_what_earlier_versions_declared():
    spec = csi_spec()
    assert spec["csi"] == {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-00000000000000001", "fsType": "ext4"}
    assert "mountOptions" not in spec


def in_tree(**source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    pv = kf.in_tree_pv("pvc-a", kf.vol("a"), "apps", "data-db-0", fs_type=source.pop("fs_type", "ext4"))
    pv["spec"]["awsElasticBlockStore"].update(source.pop("ebs", {}))
    pv["spec"].update(source)
    return pv, kf.claim("apps", "data-db-0", "pvc-a")


def test_discovery_records_what_the_in_tree_pv_says_about_mounting():
    pv, claim = in_tree(ebs={"partition": 1, "readOnly": True}, mountOptions=["noatime"])
    (found,) = discover([pv, claim], [kf.ebs_volume(kf.vol("a"), size=10)]).entries
    assert (found["partition"], found["readOnly"], found["mountOptions"]) == (1, True, ["noatime"])
    # Partition 0 is the whole disk (the driver ignores "0": node.go NodeStageVolume).
    pv, claim = in_tree(ebs={"partition": 0, "readOnly": False})
    (plain,) = discover([pv, claim], [kf.ebs_volume(kf.vol("a"), size=10)]).entries
    assert not {"partition", "readOnly", "mountOptions"} & set(plain)


def test_discovery_leaves_out_a_volume_whose_filesystem_the_driver_refuses():
    pv, claim = in_tree(fs_type="ext2")
    result = discover([pv, claim], [kf.ebs_volume(kf.vol("a"), size=10)])
    drop_refused(result, "eu-central-1")
    assert result.entries == []
    (skipped,) = result.skipped
    assert skipped.reason.startswith("the program would refuse its entry: fsType: 'ext2' is not one of ext4, xfs, ext3")
    assert "ValidFSTypes" in skipped.reason


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({**BASE, "migrations": [entry(fsType="ext2")]}, "migrations[0].fsType"),
        ({**BASE, "gp3FsType": "ext2"}, "gp3FsType"),
        ({**BASE, "migrations": [entry(fsType="ntfs")]}, "migrations[0].fsType"),
    ],
)
def test_preview_refuses_a_filesystem_the_driver_refuses_naming_the_key(config, key):
    (problem,) = refusals(config)
    assert problem.startswith(f"{key}: ")
    assert "the EBS CSI driver mounts no other filesystem" in problem


@pytest.mark.parametrize(("key", "value"), [("partition", 1), ("readOnly", True), ("mountOptions", ["noatime"])])
def test_copy_refuses_what_its_class_provisioned_pv_cannot_carry(key, value):
    (problem,) = refusals({**BASE, "migrations": [entry(strategy="copy", **{key: value})]})
    assert problem.startswith(f"migrations[0].{key}: ")
    assert "only rehome keeps what the in-tree PV said" in problem


def test_final_reclaim_policy_delete_needs_kubernetes_1_31():
    delete = entry(finalReclaimPolicy="Delete")
    (unknown,) = refusals({**BASE, "migrations": [delete]})
    assert unknown.startswith("migrations[0].finalReclaimPolicy: 'Delete' needs Kubernetes 1.31 or later; set the")
    (old,) = refusals({**BASE, "kubernetesVersion": "1.30", "migrations": [delete]})
    assert "the stack's kubernetesVersion is 1.30" in old
    accepted = load_settings({**BASE, "kubernetesVersion": "1.31", "migrations": [delete]})
    assert accepted.migrations[0].final_reclaim_policy == "Delete"


def test_a_partition_set_after_the_cutover_is_refused():
    from gp3migrate.config.entry_facts import add_fact_problems, entry_facts

    settings = load_settings({**BASE, "migrations": [entry(phase="precopy")]})
    previous = Applied(phase="cutover", strategy="rehome", facts=entry_facts(settings.migrations[0]))
    later = load_settings({**BASE, "migrations": [entry(phase="finalize", partition=1)]}).migrations[0]
    problems = Problems()
    add_fact_problems(problems, "migrations[0]", later, previous)
    with pytest.raises(ConfigError) as refused:
        problems.raise_if_any()
    (problem,) = refused.value.problems
    assert problem.startswith("migrations[0].partition: is 1 but the cutover applied")
