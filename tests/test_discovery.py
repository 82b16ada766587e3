"""Discovery on exports shaped like a real cluster's (tests/kube_fixtures.py `real_cluster`): what it
proposes, what it leaves out and why, the warnings, what it detects of the platform, and that the
program accepts its output unchanged; the AWS and Kubernetes reads stay paged (moto, botocore
Stubber for the EKS add-on calls moto lacks, a fake Kubernetes API).

Not proven: the shape of every real cluster's objects beyond these builders, a real API server's
paging, and that EKS labels its add-on's objects `managed-by=EKS` (used as a hint only).
"""

import copy
import json
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from gp3migrate.config.migration_entry import ENTRY_KEYS
from gp3migrate.config.settings import load_settings
from gp3migrate.discovery.inventory import (
    IDS_PER_FILTER,
    KubeApis,
    describe_addons,
    describe_volumes,
    list_kube_items,
    list_pages,
)
from gp3migrate.discovery.platform_scan import decode_helm_release, detect_platform
from gp3migrate.discovery.volumes import (
    StackContext,
    discover,
    drop_refused,
    natural_key,
    parse_volume_id,
    region_problem,
    volume_ids_to_describe,
    zone_problem,
)
from gp3migrate.planning.plan import plan_all
from gp3migrate.volume_types.sizing import Performance
from tests.kube_fixtures import (
    ACCOUNT,
    OTHER_KEY,
    REGION,
    STACK_KEY,
    Export,
    FakeKube,
    addon,
    claim,
    csi_pv,
    deployment,
    driver_objects,
    ebs_volume,
    fleet,
    helm_release_secret,
    in_tree_pv,
    owner_ref,
    pod,
    real_cluster,
    snapshot_controller,
    snapshot_crds,
    statefulset,
    storage_class,
    vol,
)
from tests.mock_cloud import run_program

CONTEXT = StackContext(region=REGION, kms_key_arns=(STACK_KEY,))
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ebs-csi-driver"


def discovered(export: Export | None = None, context: StackContext = CONTEXT):
    export = export or real_cluster()
    result = discover(export.items, export.volumes, context=context)
    drop_refused(result, REGION)
    return result


def small(*objects, volumes=()) -> Export:
    """A cluster of the given objects (with the in-tree gp2 class)."""
    return Export(items=[storage_class("gp2", default=True), *objects], volumes=list(volumes))


# --- what a real cluster's export gives ------------------------------------------------------


def test_every_volume_it_can_migrate_is_proposed_with_each_workloads_claims_together():
    result = discovered()
    assert [f"{e['namespace']}/{e['claim']}" for e in result.entries] == [
        "db/backup-scratch",
        "db/pgdata-pg-0",
        "db/pgdata-pg-1",
        "ops/legacy",
        "ops/no-zone",
        "ops/trailing",
        "search/data-es-0",
        "shop/reports-cache",
        "shop/web-uploads",
        "streams/data-kafka-0",
    ]


def test_every_other_volume_is_left_out_with_its_reason():
    result = discovered()
    assert {s.claim: (s.pv, s.volume_id, s.reason) for s in result.skipped} == {
        "edge/ber": (
            "pvc-ber",
            vol("pvc-ber"),
            "in Wavelength Zone eu-central-1-wl1-ber-wlz-1: gp3 is not offered in every Local Zone or Wavelength "
            "Zone; this tool migrates volumes in the region's availability zones only",
        ),
        "edge/ham": (
            "pvc-ham",
            vol("pvc-ham"),
            "in Local Zone eu-central-1-ham-1a: gp3 is not offered in every Local Zone or Wavelength Zone; this tool "
            "migrates volumes in the region's availability zones only",
        ),
        "apps/new": ("pvc-csi", vol("csi"), "already a CSI volume (ebs.csi.aws.com)"),
        "analytics/fast": (
            "pvc-io1",
            vol("pvc-io1"),
            "not gp2 or gp3: io1; this tool migrates in-tree gp2 and gp3 volumes only",
        ),
        "analytics/shared-fast": (
            "pvc-io2",
            vol("pvc-io2"),
            "multi-attach volume (a snapshot cannot keep several writers consistent)",
        ),
        "apps/lost": ("pvc-missing", vol("missing"), "EBS volume not found in this region/account"),
        "ops/odd-id": (
            "pvc-odd-id",
            None,
            "volume id 'aws://eu-central-1a/volume-7' is not an EBS volume id (expected aws://<zone>/vol-… or vol-…)",
        ),
        "apps/gone": ("pvc-released", vol("pvc-released"), "no bound claim (nothing mounts it through a PVC)"),
        "apps/shared": ("pvc-rwx", vol("pvc-rwx"), "ReadWriteMany claim (EBS attaches to one node)"),
    }


def test_warnings_name_what_the_program_cannot_do_for_the_user():
    assert discovered().warnings == [
        "claim db/backup-scratch is mounted by Pod backup-28391-abcde (owned by Job backup-28391): the program "
        "cannot scale that, so its entry gets quiesce: manual; stop it yourself before the cutover",
        "claim ops/legacy is mounted by Pod legacy-runner (which no controller owns): the program cannot scale that, "
        "so its entry gets quiesce: manual; stop it yourself before the cutover",
        "StatefulSet db/pg is controlled by postgresql pg (acid.zalan.do/v1): the operator resets replicas, so its "
        "claims get quiesce: manual; stop it through the operator before the cutover",
        "StatefulSet db/pg names the in-tree class 'gp2' in its volumeClaimTemplate 'pgdata' (storageClassName): new "
        "replicas would get in-tree volumes. Templates are immutable: re-create it with `kubectl delete sts pg -n db "
        "--cascade=orphan` and apply it with the gp3 class.",
        "StatefulSet search/es names the in-tree class 'gp3' in its volumeClaimTemplate 'data' (storageClassName): "
        "new replicas would get in-tree volumes. Templates are immutable: re-create it with `kubectl delete sts es -n "
        "search --cascade=orphan` and apply it with the gp3 class.",
        "StatefulSet streams/kafka names the in-tree class 'gp2' in its volumeClaimTemplate 'data' (the "
        "volume.beta.kubernetes.io/storage-class annotation): new replicas would get in-tree volumes. Templates are "
        "immutable: re-create it with `kubectl delete sts kafka -n streams --cascade=orphan` and apply it with the "
        "gp3 class.",
        f"shop/reports-cache: volume {vol('pvc-reports')} is encrypted with KMS key {OTHER_KEY}, which the stack "
        "does not list in kmsKeyArns: if it is a customer-managed key, add it so the driver may use it (the AWS "
        "managed key aws/ebs needs no entry)",
    ]


def entry_of(result, key: str) -> dict:
    return next(e for e in result.entries if f"{e['namespace']}/{e['claim']}" == key)


def test_an_operator_owned_statefulset_gets_manual_quiesce_and_its_owner_recorded():
    result = discovered()
    assert entry_of(result, "db/pgdata-pg-1") == {
        "namespace": "db",
        "claim": "pgdata-pg-1",
        "pv": "pvc-pg-1",
        "volumeId": vol("pvc-pg-1"),
        "zone": "eu-central-1b",
        "sizeGiB": 100,
        "fsType": "ext4",
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "volumeType": "gp2",
        "iops": 300,
        "encrypted": True,
        "kmsKeyId": STACK_KEY,
        "pvStorageClass": "gp2",
        "pvCapacity": "100Gi",
        "workload": {
            "kind": "StatefulSet",
            "name": "pg",
            "replicas": 2,
            "templateStorageClass": "gp2",
            "owner": {"apiVersion": "acid.zalan.do/v1", "kind": "postgresql", "name": "pg"},
        },
        # No claimNaming: rehome (the default) keeps the claim names a StatefulSet needs.
        "quiesce": "manual",
    }
    first, second = entry_of(result, "db/pgdata-pg-0"), entry_of(result, "db/pgdata-pg-1")
    assert first["workload"] == second["workload"]
    assert first["workload"] is not second["workload"]  # YAML would write an alias for a shared object


def test_a_static_pv_without_class_records_an_empty_class_and_its_capacity_as_written():
    entry = entry_of(discovered(), "ops/legacy")
    assert (entry["pvStorageClass"], entry["pvCapacity"], entry["sizeGiB"], entry["zone"]) == (
        "",
        "500Mi",
        1,
        "eu-central-1a",
    )
    assert "workload" not in entry and "quiesce" not in entry  # a bare pod: quiesce defaults to manual


def test_an_old_statefulset_using_the_beta_annotation_is_read_like_a_new_one():
    entry = entry_of(discovered(), "streams/data-kafka-0")
    assert (entry["volumeId"], entry["pvStorageClass"], "claimNaming" in entry) == (
        vol("kafka", short=True),
        "gp2",
        False,
    )
    assert entry["workload"] == {"kind": "StatefulSet", "name": "kafka", "replicas": 1, "templateStorageClass": "gp2"}


def test_odd_volume_ids_are_normalized():
    result = discovered()
    assert entry_of(result, "ops/trailing")["volumeId"] == vol("pvc-trailing")
    assert (entry_of(result, "ops/no-zone")["volumeId"], entry_of(result, "ops/no-zone")["zone"]) == (
        vol("pvc-no-zone"),
        "eu-central-1c",
    )


def test_discovery_writes_only_keys_the_program_knows():
    for entry in discovered().entries:
        assert set(entry) <= set(ENTRY_KEYS), entry


def test_the_program_accepts_discovery_output_unchanged():
    result = discovered()
    # With the class name discovery proposes: this cluster has an in-tree class called gp3.
    proposed = detect_platform(real_cluster().items, addons=[]).keys["gp3ClassName"]
    run = run_program(
        {
            "clusterName": "dev-eks",
            "region": REGION,
            "kmsKeyArns": [STACK_KEY],
            "gp3ClassName": proposed,
            "migrations": result.entries,
        }
    )
    assert run.error is None, run.error
    assert len(run.of_type("eks-gp3-migration:index:VolumeMigration")) == len(result.entries) == 10


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("aws://eu-central-1a/vol-0123456789abcdef0", ("vol-0123456789abcdef0", "eu-central-1a")),
        ("vol-0123456789abcdef0", ("vol-0123456789abcdef0", None)),
        ("aws://eu-central-1a/vol-0123456789abcdef0/", ("vol-0123456789abcdef0", "eu-central-1a")),
        ("vol-0123456789abcdef0/", ("vol-0123456789abcdef0", None)),
        ("aws:///vol-0123456789abcdef0", ("vol-0123456789abcdef0", None)),
        ("aws://eu-central-1a/vol-1a2b3c4d", ("vol-1a2b3c4d", "eu-central-1a")),
        ("aws://eu-central-1a/", None),
        ("vol-0123456789ABCDEF0", None),
        ("snap-0123456789abcdef0", None),
        ("aws://eu-central-1a/vol-0123456789abcdef0/extra", None),
        ("", None),
    ],
)
def test_volume_ids_in_every_form_kubernetes_accepts(raw, parsed):
    assert parse_volume_id(raw) == parsed


@pytest.mark.parametrize(
    ("zone", "problem"),
    [
        ("eu-central-1a", None),
        (None, "no availability zone is known for it"),
        ("us-east-1a", "zone us-east-1a is not in region eu-central-1"),
        ("use1-az1", "zone 'use1-az1' is not an availability zone name"),
        ("eu-central-1ab", "zone 'eu-central-1ab' is not an availability zone name"),
        (
            "eu-central-1-ham-1a",
            "in Local Zone eu-central-1-ham-1a: gp3 is not offered in every Local Zone or Wavelength Zone; this tool "
            "migrates volumes in the region's availability zones only",
        ),
    ],
)
def test_zones(zone, problem):
    assert zone_problem(zone, REGION) == problem


def test_a_zone_with_a_trailing_newline_is_not_an_availability_zone():
    """`re.match` with `...$` let `eu-central-1a\n` through (`$` matches before a final newline)."""
    assert zone_problem("eu-central-1a\n", REGION) == "zone 'eu-central-1a\\n' is not an availability zone name"


def test_local_and_wavelength_zones_of_other_regions_are_told_apart():
    assert (zone_problem("us-west-2-lax-1a", "us-west-2") or "").startswith("in Local Zone us-west-2-lax-1a:")
    assert (zone_problem("us-east-1-wl1-bos-wlz-1", "us-east-1") or "").startswith(
        "in Wavelength Zone us-east-1-wl1-bos-wlz-1:"
    )


# --- workloads -------------------------------------------------------------------------------


def one_volume(name: str, namespace: str = "apps", **pv_changes) -> tuple[list[dict], list[dict]]:
    volume_id = vol(name)
    return [in_tree_pv(name, volume_id, namespace, name, **pv_changes), claim(namespace, name, name)], [
        ebs_volume(volume_id, size=10)
    ]


def test_workloads_scaled_to_zero_are_found_from_their_templates():
    objects, volumes = one_volume("uploads")
    objects += deployment("apps", "web", ["uploads"], replicas=0, running=False)
    more, more_volumes = one_volume("data-db-0")
    objects += more + statefulset("apps", "db", {"data": "gp2"}, 0, running=False)
    result = discovered(small(*objects, volumes=volumes + more_volumes))
    assert [e["workload"] for e in result.entries] == [
        {"kind": "StatefulSet", "name": "db", "replicas": 0, "templateStorageClass": "gp2"},
        {"kind": "Deployment", "name": "web", "replicas": 0},
    ]
    assert [w.split(":")[0] for w in result.warnings if "replicas: 0" in w] == [
        "Deployment apps/web has replicas",
        "StatefulSet apps/db has replicas",
    ]


def test_a_claim_several_workloads_mount_gets_no_workload_and_a_warning():
    objects, volumes = one_volume("shared")
    objects += deployment("apps", "reader", ["shared"]) + deployment("apps", "writer", ["shared"])
    result = discovered(small(*objects, volumes=volumes))
    assert "workload" not in result.entries[0]
    assert result.warnings == [
        "claim apps/shared is mounted by several workloads (Deployment reader, Deployment writer): none is recorded, "
        "so its entry gets quiesce: manual; stop all of them yourself before the cutover"
    ]


def test_a_daemonset_pod_is_named_as_what_must_be_stopped():
    objects, volumes = one_volume("node-cache")
    objects.append(pod("apps", "agent-7xk2p", ["node-cache"], owner_ref("apps/v1", "DaemonSet", "agent")))
    result = discovered(small(*objects, volumes=volumes))
    assert result.warnings == [
        "claim apps/node-cache is mounted by Pod agent-7xk2p (owned by DaemonSet agent): the program cannot scale "
        "that, so its entry gets quiesce: manual; stop it yourself before the cutover"
    ]


def test_a_deployment_an_operator_controls_gets_manual_quiesce_too():
    objects, volumes = one_volume("uploads")
    web = deployment("apps", "web", ["uploads"])
    web[0]["metadata"]["ownerReferences"] = [owner_ref("apps.example.com/v1", "WebApp", "web")]
    result = discovered(small(*objects, *web, volumes=volumes))
    (entry,) = result.entries
    assert entry["workload"]["owner"] == {"apiVersion": "apps.example.com/v1", "kind": "WebApp", "name": "web"}
    assert (entry["quiesce"], "claimNaming" in entry) == ("manual", False)


@pytest.mark.parametrize("migrated", [False, True])
def test_an_in_tree_pv_on_a_gp3_volume_is_proposed_for_the_move_to_csi(migrated):
    """After a rehome precopy (or an in-tree class of type gp3) the volume is gp3 but the PV is still
    in-tree: the move to CSI is still to do, so it is proposed (rehome, the default), never "done"."""
    objects, _ = one_volume("uploads", migrated=migrated)
    volumes = [ebs_volume(vol("uploads"), size=10, volume_type="gp3", iops=3000, throughput=125)]
    result = discovered(small(*objects, volumes=volumes))
    assert result.skipped == []
    (entry,) = result.entries
    assert {k: entry[k] for k in ("claim", "volumeType", "iops", "throughput")} == {
        "claim": "uploads",
        "volumeType": "gp3",
        "iops": 3000,
        "throughput": 125,
    }
    assert "strategy" not in entry
    settings = load_settings({"clusterName": "dev-eks", "region": REGION, "migrations": result.entries})
    assert settings.migrations[0].strategy == "rehome"
    # The plan asks for what the volume has, so its precopy's ModifyVolume step finds nothing to do
    # (gp3migrate/checks/preconditions.py modify_to_gp3: gp3 at the planned values is left unmodified).
    assert plan_all(settings)[0].performance == Performance(iops=3000, throughput=125)


def test_only_a_csi_pv_is_done():
    csi = [csi_pv("pvc-csi", vol("csi"), "apps", "new"), claim("apps", "new", "pvc-csi", storage_class="ebs-sc")]
    volumes = [ebs_volume(vol("csi"), size=10, volume_type="gp3", iops=3000, throughput=125)]
    result = discovered(small(*csi, volumes=volumes))
    assert result.entries == []
    assert [(s.claim, s.reason) for s in result.skipped] == [("apps/new", "already a CSI volume (ebs.csi.aws.com)")]


# --- the order people read -----------------------------------------------------------------


def test_claims_sort_with_their_numbers_compared_as_numbers():
    names = ["c100", "c10", "c2", "c1", "data-pg-10", "data-pg-9", "c01", "c", "b20"]
    assert sorted(names, key=natural_key) == ["b20", "c", "c01", "c1", "c2", "c10", "c100", "data-pg-9", "data-pg-10"]


@given(st.lists(st.text(alphabet="ab-/0129", max_size=8), max_size=12))
def test_the_natural_order_is_total_and_deterministic(names):
    """Any names sort (digits never meet letters in one comparison), in one order whatever the input order."""
    assert sorted(names, key=natural_key) == sorted(reversed(names), key=natural_key)


@given(st.text(alphabet="ab-/", max_size=4), st.lists(st.integers(0, 10_000), unique=True, max_size=12))
def test_names_differing_by_a_number_sort_by_that_number(prefix, numbers):
    assert sorted((f"{prefix}{n}" for n in numbers), key=natural_key) == [f"{prefix}{n}" for n in sorted(numbers)]


def test_proposed_and_skipped_claims_come_in_natural_order():
    objects, volumes = [], []
    for name in ("c100", "c10", "c2", "c1"):
        more, more_volumes = one_volume(name)
        objects += more
        volumes += more_volumes
    for name in ("io-10", "io-9"):
        more, _ = one_volume(name)
        objects += more
        volumes.append(ebs_volume(vol(name), size=10, volume_type="io1", iops=500))
    result = discovered(small(*objects, volumes=volumes))
    assert [e["claim"] for e in result.entries] == ["c1", "c2", "c10", "c100"]
    assert [s.claim for s in result.skipped] == ["apps/io-9", "apps/io-10"]


def test_an_ephemeral_claim_is_left_out():
    objects, volumes = one_volume("cache")
    objects[1] = claim("apps", "cache", "cache", owner_pod="runner-0")
    result = discovered(small(*objects, volumes=volumes))
    assert result.entries == []
    assert [s.reason for s in result.skipped] == [
        "ephemeral claim of Pod runner-0 (deleted with its pod: nothing to keep)"
    ]


def test_templates_naming_a_csi_class_are_not_flagged_and_without_classes_only_gp2_is_assumed():
    sets = statefulset("apps", "a", {"data": "ebs-sc"}, 1) + statefulset("apps", "b", {"data": "gp2"}, 1)
    with_classes = discovered(small(storage_class("ebs-sc", "ebs.csi.aws.com"), *sets))
    assert [w.split(" names ")[0] for w in with_classes.warnings] == ["StatefulSet apps/b"]
    without = discovered(Export(items=sets), StackContext(region=REGION, gp2_class_name="gp2"))
    assert without.warnings[0] == (
        "the export has no StorageClass objects: only 'gp2' is taken as in-tree; add `sc` to the kubectl export to "
        "check every class"
    )
    assert [w.split(" names ")[0] for w in without.warnings[1:]] == ["StatefulSet apps/b"]


def test_a_volume_not_usable_or_in_another_zone_than_its_id_says():
    objects, volumes = one_volume("broken")
    volumes[0]["State"] = "error"
    moved, moved_volumes = one_volume("moved", zone="eu-central-1b")  # the id says 1b, EBS says 1a
    result = discovered(small(*objects, *moved, volumes=volumes + moved_volumes))
    assert [s.reason for s in result.skipped] == [
        "volume state is 'error' (only in-use or available volumes are migrated)"
    ]
    assert result.warnings == [
        f"PV moved names zone eu-central-1b but EBS reports {vol('moved')} in eu-central-1a: eu-central-1a is used"
    ]


def test_a_malformed_object_is_one_skipped_volume_not_a_crash():
    objects, volumes = one_volume("fine")
    odd, odd_volumes = one_volume("odd")
    del odd_volumes[0]["Size"]
    result = discovered(small(*objects, *odd, volumes=volumes + odd_volumes))
    assert [e["claim"] for e in result.entries] == ["fine"]
    assert [(s.pv, s.reason) for s in result.skipped] == [
        ("odd", "unreadable PersistentVolume object (KeyError: 'Size')")
    ]


def test_kms_keys_are_checked_only_against_a_stack():
    export = real_cluster()
    assert not [w for w in discovered(export, StackContext(region=REGION)).warnings if "KMS" in w]


def test_entries_the_program_would_refuse_are_left_out_with_its_reason_and_the_rest_proposed():
    long_claim = "c" * 252  # valid itself, but `<claim>-gp3` would be 256 characters
    objects, volumes = one_volume("ok")
    for namespace, name in (("apps", long_claim), ("a-b", "c"), ("a", "b-c")):
        volume_id = vol(namespace + name)
        objects += [
            in_tree_pv(f"pv-{len(objects)}", volume_id, namespace, name),
            claim(namespace, name, f"pv-{len(objects)}"),
        ]
        volumes.append(ebs_volume(volume_id, size=1))
    result = discovered(small(*objects, volumes=volumes))
    assert [f"{e['namespace']}/{e['claim']}" for e in result.entries] == ["a/b-c", "apps/ok"]
    refused = {s.claim: s.reason for s in result.skipped}
    assert refused == {
        f"apps/{long_claim}": f"the program would refuse its entry: newClaimName: the default '{long_claim}-gp3' is "
        "256 characters; a Kubernetes name has at most 253; set a shorter newClaimName",
        "a-b/c": "the program would refuse its entry: claim: 'migrate-a-b-c' is also used by migrations[0]",
    }


def test_volumes_from_another_region_or_account_are_recognised():
    export = real_cluster()
    assert region_problem(export.items, export.volumes, REGION) is None
    elsewhere = [dict(v, AvailabilityZone="us-east-1a") for v in export.volumes]
    assert region_problem(export.items, elsewhere, REGION) == (
        "it lists volumes in us-east-1a, not in region eu-central-1"
    )
    assert region_problem(export.items, [], REGION) == (
        "none of the 17 EBS volumes the cluster's in-tree PVs name is in it (0 other volumes): another region or "
        "account"
    )
    assert region_problem([], [], REGION) is None  # a cluster without in-tree volumes


# --- the platform ----------------------------------------------------------------------------


def platform(*objects, addons=None, gp3_class_name="gp3"):
    return detect_platform(list(objects), addons, gp3_class_name=gp3_class_name)


def test_the_real_cluster_runs_the_driver_as_an_eks_add_on_and_snapshot_support_by_hand():
    export = real_cluster()
    found = detect_platform(export.items, export.addons)
    assert found.keys == {
        "driverInstall": "addon",
        "driverAdopt": True,
        "driverAddonVersion": "v1.35.0-eksbuild.1",
        "snapshotSupport": "present",
        "gp3ClassName": "gp3-csi",
    }
    assert found.evidence == [
        "Deployment kube-system/ebs-csi-controller driver v1.35.0, labelled app.kubernetes.io/managed-by=EKS",
        "DaemonSet kube-system/ebs-csi-node driver v1.35.0, labelled app.kubernetes.io/managed-by=EKS",
        "CSIDriver ebs.csi.aws.com",
        f"EKS add-on aws-ebs-csi-driver v1.35.0-eksbuild.1 (ACTIVE), role {ROLE}",
        "proposed: adopt the EKS add-on with the version it runs, changing nothing of it; driverAdopt: false "
        "later applies this stack's settings (or driverInstall: present to leave it unmanaged)",
        "Deployment kube-system/ebs-csi-controller runs csi-snapshotter",  # adopted: checked as it runs
        "CRDs volumesnapshotclasses.snapshot.storage.k8s.io, volumesnapshotcontents.snapshot.storage.k8s.io, "
        "volumesnapshots.snapshot.storage.k8s.io (v1 served)",
        "snapshot-controller Deployment kube-system/snapshot-controller v8.1.0",
        "proposed: snapshot support is present (installing it again would conflict)",
    ]
    assert found.warnings == [
        "StorageClass 'gp3' already exists (in-tree (kubernetes.io/aws-ebs), not created by this stack): the stack's "
        "gp3 class has that name and would fail with AlreadyExists; set gp3ClassName: gp3-csi (proposed)"
    ]


def test_a_helm_release_is_found_by_its_chart_whatever_its_name_at_its_last_revision():
    values = {"controller": {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": ROLE}}}}
    found = platform(
        *driver_objects(managed_by="Helm", release="ebs", chart="2.36.0"),
        helm_release_secret("ebs", 1, chart_version="2.30.0", status="superseded"),
        helm_release_secret("ebs", 2, chart_version="2.36.0", app_version="1.36.0", values=values),
        helm_release_secret("ingress", 4, chart="ingress-nginx", chart_version="4.11.0"),
        addons=[],
    )
    assert found.keys == {
        "driverInstall": "helm",
        "driverAdopt": True,
        "driverChartVersion": "2.36.0",
        "snapshotSupport": "manifests",
    }
    assert found.evidence[3:5] == [
        "Helm release kube-system/ebs revision 2 (deployed): chart aws-ebs-csi-driver 2.36.0 (driver 1.36.0), role "
        + ROLE,
        "proposed: adopt the Helm release with the chart version it runs, changing nothing of it; "
        "driverAdopt: false later applies this stack's values (or driverInstall: present to leave it unmanaged)",
    ]
    assert found.warnings == []


@pytest.mark.parametrize(
    ("objects", "addons", "install", "warning"),
    [
        (
            [*driver_objects(managed_by="Helm"), helm_release_secret("aws-ebs-csi-driver", 3, status="failed")],
            [],
            "present",
            "the EBS CSI driver's Helm release is in status failed: proposed driverInstall: present (kept as it is); "
            "fix the release before adopting it",
        ),
        (
            [*driver_objects(managed_by="Helm"), helm_release_secret("aws-ebs-csi-driver", 1)],
            [addon("aws-ebs-csi-driver", "v1.35.0-eksbuild.1")],
            "present",
            "the EBS CSI driver is installed twice (EKS add-on and Helm release): proposed driverInstall: present "
            "(kept as it is); remove one of them before letting this stack manage the driver",
        ),
        (
            driver_objects(managed_by="EKS"),
            None,
            "present",
            "the EBS CSI driver looks like the EKS add-on (labelled managed-by=EKS) but add-ons were not checked: give "
            "--addons-json (or --cluster on a live cluster) to propose adopting it",
        ),
        (
            driver_objects(managed_by="Helm", release="ebs"),
            [],
            "present",
            "the EBS CSI driver is labelled as Helm release ebs (chart aws-ebs-csi-driver-2.35.1) but no release "
            "Secret was read: add the Helm release Secrets to the export to propose adopting it",
        ),
        (driver_objects(managed_by=None), [], "present", None),
        ([], [], "helm", None),
        (
            [*driver_objects(managed_by="EKS")],
            [addon("aws-ebs-csi-driver", "v1.35.0-eksbuild.1", status="DEGRADED")],
            "addon",
            "EKS add-on aws-ebs-csi-driver is DEGRADED: fix it before the migration (the driver serves every in-tree "
            "volume through CSI migration)",
        ),
    ],
    ids=["helm-failed", "twice", "eks-label-only", "helm-label-only", "manifests", "none", "addon-degraded"],
)
def test_driver_proposals(objects, addons, install, warning):
    found = platform(*objects, *snapshot_crds(), snapshot_controller(), addons=addons)
    assert found.keys["driverInstall"] == install
    assert found.warnings == ([warning] if warning else [])


def test_no_driver_at_all_proposes_installing_it():
    found = platform(addons=[])
    assert found.keys == {"driverInstall": "helm", "snapshotSupport": "manifests"}
    assert found.evidence == [
        "no EBS CSI driver found (no EKS add-on, Helm release, ebs-csi-controller or CSIDriver ebs.csi.aws.com): "
        "proposed: install it with the pinned chart",
        "no snapshot CRDs or controller found: proposed: install the pinned release",
    ]


def test_an_unreadable_helm_secret_is_reported_not_fatal():
    broken = helm_release_secret("aws-ebs-csi-driver", 1, payload="bm90IGJhc2U2NA==")  # base64 of "not base64"
    found = platform(*driver_objects(managed_by=None), broken, addons=[])
    assert found.warnings == [
        "Helm release Secret kube-system/sh.helm.release.v1.aws-ebs-csi-driver.v1 was not read: its payload is not a "
        "Helm release (not base64 twice)"
    ]
    assert found.keys["driverInstall"] == "present"


def test_a_helm_payload_decodes_to_the_release():
    release = decode_helm_release(helm_release_secret("ebs", 7, chart_version="2.36.0", values={"a": 1}))
    assert (release.namespace, release.name, release.revision, release.status, release.chart, release.values) == (
        "kube-system",
        "ebs",
        7,
        "deployed",
        "aws-ebs-csi-driver",
        {"a": 1},
    )


@pytest.mark.parametrize(
    ("objects", "addons", "support", "warning"),
    [
        ([*snapshot_crds(), snapshot_controller()], [], "present", None),
        (snapshot_crds(), [addon("snapshot-controller", "v8.1.0-eksbuild.1")], "present", None),
        ([], [], "manifests", None),
        (
            snapshot_crds(kinds=("volumesnapshots",)),
            [],
            None,
            "snapshot support is partly installed (missing: volumesnapshotclasses.snapshot.storage.k8s.io, "
            "volumesnapshotcontents.snapshot.storage.k8s.io, a snapshot-controller): no snapshotSupport proposed; "
            "complete it (e.g. the EKS snapshot-controller add-on) and run discover again",
        ),
        (
            [*snapshot_crds(served=("v1beta1",)), snapshot_controller("v3.0.3")],
            [],
            None,
            "snapshot support is partly installed (missing: volumesnapshotclasses.snapshot.storage.k8s.io, "
            "volumesnapshotcontents.snapshot.storage.k8s.io, volumesnapshots.snapshot.storage.k8s.io): no "
            "snapshotSupport proposed; complete it (e.g. the EKS snapshot-controller add-on) and run discover again",
        ),
    ],
    ids=["by-hand", "addon", "none", "partial", "too-old"],
)
def test_snapshot_support_proposals(objects, addons, support, warning):
    found = platform(*driver_objects(managed_by=None), *objects, addons=addons)
    assert found.keys.get("snapshotSupport") == support
    assert found.warnings == ([warning] if warning else [])


def test_a_class_already_named_like_the_gp3_class_is_a_collision_with_a_free_name_proposed():
    taken = [storage_class("fast", "ebs.csi.aws.com"), storage_class("fast-csi")]
    found = platform(*taken, addons=[], gp3_class_name="fast")
    assert found.keys["gp3ClassName"] == "fast-csi-2"
    assert found.warnings == [
        "StorageClass 'fast' already exists (provisioner ebs.csi.aws.com, not created by this stack): the stack's gp3 "
        "class has that name and would fail with AlreadyExists; set gp3ClassName: fast-csi-2 (proposed)"
    ]
    ours = storage_class("gp3", "ebs.csi.aws.com", managers=("pulumi-kubernetes-7d4e6f2a",))
    assert "gp3ClassName" not in platform(ours, addons=[]).keys


# --- paged reads -----------------------------------------------------------------------------


class CallCounter:
    def __init__(self, client):
        self.calls: list[str] = []
        client.meta.events.register("before-call.ec2.*", lambda model, **_: self.calls.append(model.name))


@pytest.fixture(scope="module")
def moto_fleet():
    with mock_aws():
        yield fleet(21)


@pytest.mark.parametrize(("ids_per_call", "expected_calls"), [(2, 11), (10, 3), (21, 1), (200, 1)])
def test_describe_volumes_calls_grow_with_pages_not_volumes(moto_fleet, ids_per_call, expected_calls):
    ec2, items = moto_fleet
    counter = CallCounter(ec2)
    progress: list[str] = []
    found = describe_volumes(ec2, volume_ids_to_describe(items), progress.append, ids_per_call=ids_per_call)
    assert sorted(v["VolumeId"] for v in found) == volume_ids_to_describe(items)
    assert counter.calls == ["DescribeVolumes"] * expected_calls
    assert len(progress) == expected_calls and progress[-1] == "described 21/21 EBS volumes"


class RecordingPaginator:
    def __init__(self):
        self.filters: list[int] = []

    def paginate(self, Filters, PaginationConfig):  # noqa: N803 - boto3's argument names
        self.filters.append(len(Filters[0]["Values"]))
        assert PaginationConfig == {"PageSize": 500}
        return [{"Volumes": [{"VolumeId": v} for v in Filters[0]["Values"]]}]


def test_a_filter_holds_the_200_ids_ec2_accepts():
    paginator = RecordingPaginator()
    ec2 = SimpleNamespace(get_paginator=lambda name: paginator)
    progress: list[str] = []
    ids = [f"vol-{i:017x}" for i in range(401)]
    assert len(describe_volumes(ec2, ids, progress.append)) == 401
    assert (IDS_PER_FILTER, paginator.filters) == (200, [200, 200, 1])
    assert progress == [
        "described 200/401 EBS volumes",
        "described 400/401 EBS volumes",
        "described 401/401 EBS volumes",
    ]


def fake_kube(pvs: int) -> FakeKube:
    export = Export()
    for i in range(pvs):
        export.items += [in_tree_pv(f"pv-{i}", vol(str(i)), "apps", f"c-{i}"), claim("apps", f"c-{i}", f"pv-{i}")]
    by_kind = {
        "list_persistent_volume": [i for i in export.items if i["kind"] == "PersistentVolume"],
        "list_persistent_volume_claim_for_all_namespaces": [
            i for i in export.items if i["kind"] == "PersistentVolumeClaim"
        ],
        "list_deployment_for_all_namespaces": [driver_objects(managed_by="Helm", release="ebs")[0]],
        "list_secret_for_all_namespaces": [helm_release_secret("ebs", 1)],
    }
    return FakeKube(by_kind, snapshot_crds(kinds=("volumesnapshots", "volumesnapshotcontents")))


@pytest.mark.parametrize(("pvs", "pv_calls"), [(3, 1), (4, 2), (9, 3)])
def test_kubernetes_list_calls_grow_with_pages_not_objects(pvs, pv_calls):
    api = fake_kube(pvs)
    apis = KubeApis(core=api, apps=api, storage=api, apiextensions=api, to_json=copy.deepcopy)
    items = list_kube_items(apis, page_size=3)
    calls = [method for method, _ in api.calls]
    assert calls.count("list_persistent_volume") == pv_calls
    assert calls.count("list_persistent_volume_claim_for_all_namespaces") == pv_calls
    assert len(calls) == 2 * pv_calls + 6 + 3 + 1  # six kinds of one page each, three CRD reads, one Secret page
    assert sum(1 for i in items if i["kind"] == "PersistentVolume") == pvs
    assert sorted(i["metadata"]["name"] for i in items if i["kind"] == "CustomResourceDefinition") == [
        "volumesnapshotcontents.snapshot.storage.k8s.io",
        "volumesnapshots.snapshot.storage.k8s.io",
    ]
    # Only the driver's releases are read: its default name and the one its objects name.
    assert api.calls[-1] == (
        "list_secret_for_all_namespaces",
        {"label_selector": "owner=helm,name in (aws-ebs-csi-driver,ebs)", "field_selector": "type=helm.sh/release.v1"},
    )


def test_list_pages_passes_the_continue_token_on():
    api = FakeKube({"list_things": list(range(7))}, [])
    assert list(list_pages(api.list_things, page_size=3, label_selector="a=b")) == list(range(7))
    assert api.calls == [("list_things", {"label_selector": "a=b"})] * 3


def test_eks_add_ons_are_listed_in_pages_and_only_the_two_that_matter_described():
    # moto 5 has no EKS add-on API: botocore's Stubber answers these calls instead.
    eks = boto3.client("eks", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    driver = addon("aws-ebs-csi-driver", "v1.35.0-eksbuild.1", role=ROLE)
    with Stubber(eks) as stub:
        stub.add_response(
            "list_addons", {"addons": ["vpc-cni", "aws-ebs-csi-driver"], "nextToken": "t"}, {"clusterName": "dev-eks"}
        )
        stub.add_response("list_addons", {"addons": ["coredns"]}, {"clusterName": "dev-eks", "nextToken": "t"})
        stub.add_response(
            "describe_addon", {"addon": driver}, {"clusterName": "dev-eks", "addonName": "aws-ebs-csi-driver"}
        )
        found = describe_addons(eks, "dev-eks")
        stub.assert_no_pending_responses()
    assert [a["addonName"] for a in found] == ["aws-ebs-csi-driver"]
    assert json.loads(json.dumps(found, default=str))[0]["serviceAccountRoleArn"] == ROLE


# --- a present driver: what the migration needs --------------------------------------------

KMS_KEY = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_present_without_the_snapshotter_sidecar_warns_with_the_fix():
    """GIVEN plain manifests (proposed present) whose controller runs no csi-snapshotter."""
    found = platform(*driver_objects(managed_by=None, snapshotter=False), *snapshot_crds(), snapshot_controller())
    assert found.keys["driverInstall"] == "present"
    (warning,) = found.warnings
    assert warning.startswith(
        "driverInstall: present: Deployment kube-system/ebs-csi-controller runs no csi-snapshotter container "
        "(ebs-plugin, liveness-probe): snapshots would never become ready"
    )
    assert "sidecars.snapshotter.forceEnable=true" in warning


def test_present_with_the_sidecar_says_so_and_the_kms_check_is_left_to_the_up():
    objects = [*driver_objects(managed_by=None), *snapshot_crds(), snapshot_controller()]
    found = detect_platform(objects, [], kms_keys=[KMS_KEY])
    assert "Deployment kube-system/ebs-csi-controller runs csi-snapshotter" in found.evidence
    assert found.warnings == [
        f"driverInstall: present: the driver's rights on KMS keys {KMS_KEY} were not checked (discover does not "
        "ask IAM: the check needs live IAM access, iam:SimulatePrincipalPolicy on the driver's role); the `pulumi "
        "up` of a present driver checks it again before any migration step"
    ]


def test_a_stack_that_keeps_its_driver_is_checked_even_when_discovery_would_adopt_it():
    objects = [*driver_objects(managed_by="EKS", snapshotter=False), *snapshot_crds(), snapshot_controller()]
    addons = [addon("aws-ebs-csi-driver", "v1.35.0-eksbuild.1")]
    # Proposes adopting, which keeps the driver as it runs until driverAdopt is false: checked too.
    adopting = detect_platform(objects, addons)
    assert adopting.keys["driverAdopt"] is True
    assert [w.split(":")[0] for w in adopting.warnings] == ["driverAdopt"]
    assert "runs no csi-snapshotter container" in adopting.warnings[0]
    kept = detect_platform(objects, addons, stack_driver_install="present")
    assert kept.keys["driverInstall"] == "addon"
    assert [w.split(":")[0] for w in kept.warnings] == ["driverInstall"]
    assert "runs no csi-snapshotter container" in kept.warnings[0]


def test_present_without_a_controller_deployment_is_a_warning():
    csi_driver_only = [o for o in driver_objects(managed_by=None) if o["kind"] == "CSIDriver"]
    found = platform(*csi_driver_only, *snapshot_crds(), snapshot_controller())
    assert found.keys["driverInstall"] == "present"
    assert found.warnings[0].startswith("driverInstall: present: no Deployment kube-system/ebs-csi-controller")
