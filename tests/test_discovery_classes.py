"""Which classes discovery takes as in-tree, and what it says of a class named like the stack's
gp3 class (issue 22 item 7 a, b).

GIVEN an export without StorageClass objects (`kubectl get pv,pvc,sts` without `sc`), WHEN
discovery reads it, THEN the classes the in-tree PVs name are in-tree too: a StatefulSet whose
template names one of them is warned. Not proven here: that a class named by no PV is in-tree
(nothing in such an export says so; the warning asks for `sc`).
"""

from gp3migrate.discovery.volumes import StackContext, discover, in_tree_classes
from tests.kube_fixtures import REGION, claim, ebs_volume, in_tree_pv, statefulset, storage_class, vol

CONTEXT = StackContext(region=REGION, gp2_class_name="gp2")


def wazuh_export(*extra):
    """One in-tree volume of class wazuh-storage, its claim, and the StatefulSet whose template names it."""
    volume_id = vol("wazuh")
    claim_name = "wazuh-data-wazuh-manager-0"
    items = [
        in_tree_pv("pv-wazuh", volume_id, "security", claim_name, storage_class="wazuh-storage"),
        claim("security", claim_name, "pv-wazuh", storage_class="wazuh-storage"),
        *statefulset("security", "wazuh-manager", {"wazuh-data": "wazuh-storage"}, 1),
        *extra,
    ]
    return items, [ebs_volume(volume_id, size=50)]


def test_without_storage_class_objects_the_in_tree_pvs_name_the_in_tree_classes():
    items, volumes = wazuh_export()
    classes, warnings = in_tree_classes(items, CONTEXT)
    assert classes == frozenset({"gp2", "wazuh-storage"})
    assert warnings == [
        "the export has no StorageClass objects: 'gp2' and the classes in-tree PVs name ('wazuh-storage') are "
        "taken as in-tree; add `sc` to the kubectl export to check every class"
    ]
    result = discover(items, volumes, context=CONTEXT)
    flagged = [w for w in result.warnings if w.startswith("StatefulSet security/wazuh-manager names")]
    assert flagged == [
        "StatefulSet security/wazuh-manager names the in-tree class 'wazuh-storage' in its volumeClaimTemplate "
        "'wazuh-data' (storageClassName): new replicas would get in-tree volumes. Templates are immutable: "
        "re-create it with `kubectl delete sts wazuh-manager -n security --cascade=orphan` and apply it with the "
        "gp3 class."
    ]


def test_a_csi_pv_or_a_classless_pv_adds_no_class():
    items, _ = wazuh_export()
    hand_written = in_tree_pv("pv-static", vol("static"), "apps", "static", storage_class=None)
    classes, _ = in_tree_classes([items[0], hand_written], CONTEXT)
    assert classes == frozenset({"gp2", "wazuh-storage"})
    classes, warnings = in_tree_classes([hand_written], CONTEXT)
    assert classes == frozenset({"gp2"})
    assert warnings == [
        "the export has no StorageClass objects: only 'gp2' is taken as in-tree; add `sc` to the kubectl export to "
        "check every class"
    ]


def test_with_storage_class_objects_they_decide():
    items, _ = wazuh_export(storage_class("wazuh-storage", "ebs.csi.aws.com"))
    classes, warnings = in_tree_classes(items, CONTEXT)
    assert classes == frozenset() and warnings == []


IN_TREE_GP3 = {
    "namespace": "apps",
    "claim": "data",
    "pv": "pvc-1",
    "volumeId": "vol-0123456789abcdef0",
    "zone": "eu-central-1a",
    "sizeGiB": 10,
    "pvStorageClass": "gp3",
}


def test_an_in_tree_class_named_like_gp3classname_is_a_problem_naming_the_key():
    from gp3migrate.config.settings import gp3_class_problems, load_settings

    stack = {"clusterName": "dev-eks", "region": REGION, "migrations": [IN_TREE_GP3]}
    assert gp3_class_problems(load_settings(stack)) == [
        "gp3ClassName: 'gp3' is the in-tree class of migrations[0] (apps/data, pvStorageClass): the cluster has "
        "an in-tree StorageClass of that name, so the stack's gp3 class would fail with AlreadyExists; set "
        "gp3ClassName to another name, e.g. gp3-csi"
    ]
    assert gp3_class_problems(load_settings({**stack, "gp3ClassName": "gp3-csi"})) == []


def test_the_program_refuses_it_before_registering_anything():
    from tests.mock_cloud import run_program

    run = run_program({"clusterName": "dev-eks", "region": REGION, "migrations": [IN_TREE_GP3]}, preview=True)
    assert run.registrations == [] and "gp3ClassName: 'gp3' is the in-tree class" in str(run.error)
