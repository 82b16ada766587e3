"""The simulated world's rules, one test per rule (in the manner of Kubernetes' pv_controller_test.go:
objects before, ticks, objects expected after). Each rule's upstream source is cited where the rule
is encoded (gp3migrate/sim/ebs.py, kube/, world.py)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from botocore.exceptions import ClientError
from kubernetes.client.exceptions import ApiException

from gp3migrate.checks import preconditions
from gp3migrate.sim import kube as k8s
from gp3migrate.sim.clock import DAY_TICKS
from gp3migrate.sim.kube import FALLBACK_CRD_RULES, SNAPSHOT_CRDS, KubeError, load_crd_rules
from gp3migrate.sim.kube.names import PROVISIONER_FINALIZER
from gp3migrate.sim.world import World

REGION, ZONE_A, ZONE_B = "us-east-1", "us-east-1a", "us-east-1b"
NS = "default"
GP2: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "gp2", "annotations": {k8s.DEFAULT_CLASS: "true"}},
    "provisioner": "kubernetes.io/aws-ebs",
    "volumeBindingMode": "WaitForFirstConsumer",
    "parameters": {"type": "gp2", "fsType": "ext4"},
}
GP3: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "gp3"},
    "provisioner": "ebs.csi.aws.com",
    "volumeBindingMode": "WaitForFirstConsumer",
    "reclaimPolicy": "Retain",
    "allowVolumeExpansion": True,
    "parameters": {"type": "gp3", "csi.storage.k8s.io/fstype": "ext4", "iops": "3000", "throughput": "125"},
}
MIGRATION_TAGS = {"ebs.csi.aws.com/cluster": "true"}


def make_world(seed: int = 7, driver_policy: Literal["v1", "v2"] = "v1") -> World:
    world = World(seed=seed, region=REGION, cluster_name="dev", driver_policy=driver_policy)
    world.add_storage_class(GP2)
    world.add_storage_class(GP3)
    world.install_snapshot_api()
    world.install_ebs_csi_driver(how="addon", version="v1.53.0")
    world.add_node("node-a", ZONE_A)
    return world


@pytest.fixture
def world() -> Iterator[World]:
    with make_world() as built:
        yield built


def claim(name: str, size: str = "10Gi", storage_class: str | None = "gp3", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}
    if storage_class is not None:
        body.setdefault("storageClassName", storage_class)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def static_pv(name: str, volume_id: str, size: str = "10Gi", storage_class: str = "gp3", **spec: Any) -> dict[str, Any]:
    """A static CSI PV for an existing volume (aws-ebs-csi-driver examples/kubernetes/static-provisioning)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume_id, "fsType": "ext4"},
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "persistentVolumeReclaimPolicy": "Retain",
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": k8s.ZONE_LABEL, "operator": "In", "values": [ZONE_A]}]}
                    ]
                }
            },
            **spec,
        },
    }


def content(name: str, handle: str, snapshot: str, **spec: Any) -> dict[str, Any]:
    """A pre-provisioned VolumeSnapshotContent for an EBS snapshot."""
    return {
        "apiVersion": k8s.SNAPSHOT_API,
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": name},
        "spec": {
            "deletionPolicy": "Retain",
            "driver": "ebs.csi.aws.com",
            "source": {"snapshotHandle": handle},
            "sourceVolumeMode": "Filesystem",
            "volumeSnapshotRef": {"name": snapshot, "namespace": NS},
            **spec,
        },
    }


def volume_snapshot(name: str, content_name: str) -> dict[str, Any]:
    return {
        "apiVersion": k8s.SNAPSHOT_API,
        "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"source": {"volumeSnapshotContentName": content_name}},
    }


def restore_claim(name: str, snapshot: str, size: str = "10Gi", storage_class: str = "gp3") -> dict[str, Any]:
    source = {"apiGroup": k8s.SNAPSHOT_GROUP, "kind": "VolumeSnapshot", "name": snapshot}
    return claim(name, size, storage_class, dataSource=source)


def get(world: World, kind: str, name: str, namespace: str = NS) -> dict[str, Any] | None:
    api_version = k8s.KINDS[kind][0]
    return world.kube.get(api_version, kind, namespace if k8s.KINDS[kind][1] else "", name)


def phase(world: World, kind: str, name: str) -> str | None:
    obj = get(world, kind, name)
    return None if obj is None else (obj.get("status") or {}).get("phase")


def reasons(world: World, kind: str, name: str, namespace: str = NS) -> list[str]:
    return [e.reason for e in world.events_for(kind, namespace if k8s.KINDS[kind][1] else "", name)]


def in_tree(world: World, claim_name: str = "data", pv: str = "pvc-data", **kwargs: Any) -> str:
    return world.add_in_tree_volume(namespace=NS, claim=claim_name, pv=pv, size_gib=10, zone=ZONE_A, **kwargs)


def snapshot_of(world: World, volume_id: str, tags: dict[str, str] | None = None) -> str:
    return world.ebs.create_snapshot(volume_id, "migration", MIGRATION_TAGS if tags is None else tags)


def restored_objects(world: World, handle: str, *, snapshot: str = "snap", content_name: str = "snapcontent") -> None:
    world.kube.create(content(content_name, handle, snapshot))
    world.kube.create(volume_snapshot(snapshot, content_name))


# -- PV controller ----------------------------------------------------------------------------------

BINDING_CASES = [
    # (rule, PV spec changes, claim spec changes, expected claim phase, expected claim event)
    ("binds to the PV whose claimRef names it", {"claimRef": {"name": "c", "namespace": NS}}, {}, "Bound", None),
    ("binds to the PV its volumeName names", {}, {"volumeName": "pv"}, "Bound", None),
    (
        "binds to an Available PV of its class",
        {"storageClassName": "manual"},
        {"storageClassName": "manual"},
        "Bound",
        None,
    ),
    (
        "does not bind to an Available PV of another class",
        {"storageClassName": "other"},
        {"storageClassName": "manual"},
        "Pending",
        "ProvisioningFailed",
    ),
    (
        "leaves an Available PV of a WaitForFirstConsumer class to the scheduler",
        {},
        {},
        "Pending",
        "WaitForFirstConsumer",
    ),
    (
        "does not bind when the class differs",
        {"storageClassName": "other"},
        {"volumeName": "pv"},
        "Pending",
        "VolumeMismatch",
    ),
    (
        "does not bind to a smaller PV",
        {"capacity": {"storage": "5Gi"}},
        {"volumeName": "pv"},
        "Pending",
        "VolumeMismatch",
    ),
    (
        "does not bind without the access mode",
        {"accessModes": ["ReadOnlyMany"]},
        {"volumeName": "pv"},
        "Pending",
        "VolumeMismatch",
    ),
    (
        "does not bind when volume modes differ",
        {"volumeMode": "Block"},
        {"volumeName": "pv"},
        "Pending",
        "VolumeMismatch",
    ),
    (
        "does not bind to a PV bound to another claim",
        {"claimRef": {"name": "other", "namespace": NS, "uid": "x"}},
        {"volumeName": "pv"},
        "Pending",
        "FailedBinding",
    ),
]


@pytest.mark.parametrize(
    ("rule", "pv_spec", "claim_spec", "claim_phase", "event"), BINDING_CASES, ids=[c[0] for c in BINDING_CASES]
)
def test_claim_binding(
    world: World, rule: str, pv_spec: dict[str, Any], claim_spec: dict[str, Any], claim_phase: str, event: str | None
) -> None:
    volume_id = world.ebs.create_volume(zone=ZONE_A, size_gib=10, volume_type="gp3", tags=MIGRATION_TAGS)
    world.kube.create(static_pv("pv", volume_id, **pv_spec))
    world.kube.create(claim("c", **claim_spec))
    world.tick(2)
    assert phase(world, "PersistentVolumeClaim", "c") == claim_phase, rule
    assert (get(world, "PersistentVolumeClaim", "c") or {})["spec"].get("volumeName") == (
        "pv" if claim_phase == "Bound" else claim_spec.get("volumeName")
    )
    if claim_phase == "Bound":
        pv = get(world, "PersistentVolume", "pv") or {}
        assert pv["status"]["phase"] == "Bound"
        assert pv["spec"]["claimRef"]["uid"] == (get(world, "PersistentVolumeClaim", "c") or {})["metadata"]["uid"]
        assert world.claim_volume(NS, "c") == volume_id
    if event:
        assert event in reasons(world, "PersistentVolumeClaim", "c")


def test_released_retain_keeps_the_volume_until_claim_ref_uid_is_cleared(world: World) -> None:
    volume_id = in_tree(world, reclaim_policy="Retain")
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
    world.tick(2)
    assert phase(world, "PersistentVolume", "pvc-data") == "Released"
    assert world.ebs.exists(volume_id)
    # A new claim of the same name does not get the PV back: claimRef names the old uid.
    world.kube.create(claim("data", storage_class="gp2", volumeName="pvc-data"))
    world.tick(2)
    assert phase(world, "PersistentVolumeClaim", "data") == "Pending"
    # syncVolume: a claimRef without uid is a reservation, and the PV is Available to that claim.
    world.kube.patch("v1", "PersistentVolume", "", "pvc-data", {"spec": {"claimRef": {"uid": None}}}, "admin")
    world.tick(2)
    assert phase(world, "PersistentVolume", "pvc-data") == "Bound"
    assert world.claim_volume(NS, "data") == volume_id


@pytest.mark.parametrize("driver", [True, False], ids=["with the driver", "without the driver"])
def test_released_delete_deletes_the_pv_and_its_volume_through_the_driver(driver: bool) -> None:
    with make_world() as world:
        if not driver:
            world.installed["driver"] = None
        volume_id = in_tree(world)
        world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
        world.tick(3)
        assert world.ebs.exists(volume_id) is not driver
        assert (get(world, "PersistentVolume", "pvc-data") is None) is driver
        if not driver:  # migrated: the PV controller stands down and nobody else deletes it
            assert phase(world, "PersistentVolume", "pvc-data") == "Released"


def test_a_released_delete_pv_whose_object_was_deleted_first_still_deletes_its_volume(world: World) -> None:
    """HonorPVReclaimPolicy: the provisioner's finalizer keeps the PV until its volume is deleted."""
    volume_id = in_tree(world)
    world.tick()
    world.kube.delete("v1", "PersistentVolume", "", "pvc-data")
    world.tick(2)
    assert get(world, "PersistentVolume", "pvc-data") is not None  # Bound: pv-protection holds it
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
    world.tick(3)
    assert get(world, "PersistentVolume", "pvc-data") is None
    assert not world.ebs.exists(volume_id)


@pytest.mark.parametrize(
    ("then", "survives"),
    [("nothing", False), ("Retain restored", True), ("PV object deleted", True)],
)
def test_a_released_pv_set_to_delete_deletes_the_volume_another_pv_serves_once_it_detaches(
    world: World, then: str, survives: bool
) -> None:
    """Rehome's two PVs for one volume: the old one Released as Retain, then set to Delete. It gets no
    provisioner finalizer (handleProtectionFinalizer: Bound PVs only); shouldDelete (Released, Delete)
    retries DeleteVolume, which EC2 refuses while the volume is attached through the new PV
    (VolumeInUse; canDeleteVolume looks only for a VolumeAttachment naming the old PV), and succeeds
    at the detach. Restoring Retain, or deleting the old PV object (no finalizer: it is simply gone),
    ends the pending delete."""
    volume_id = in_tree(world, reclaim_policy="Retain")
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
    world.kube.create(static_pv("csi-data", volume_id))
    world.kube.create(claim("moved", volumeName="csi-data"))
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["moved"])
    world.tick(6)
    assert phase(world, "PersistentVolume", "pvc-data") == "Released"
    assert world.running_pods(NS, "app") == ["app-0"] and world.ebs.attached_to(volume_id)
    world.kube.patch(
        "v1", "PersistentVolume", "", "pvc-data", {"spec": {"persistentVolumeReclaimPolicy": "Delete"}}, "kubectl"
    )
    world.tick(3)
    old = get(world, "PersistentVolume", "pvc-data") or {}
    assert PROVISIONER_FINALIZER not in (old["metadata"].get("finalizers") or [])
    assert world.ebs.exists(volume_id)
    failures = [
        e.message for e in world.events_for("PersistentVolume", "", "pvc-data") if e.reason == "VolumeFailedDelete"
    ]
    assert failures and "VolumeInUse" in failures[-1]
    if then == "Retain restored":
        world.kube.patch(
            "v1", "PersistentVolume", "", "pvc-data", {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}, "kubectl"
        )
    elif then == "PV object deleted":
        world.kube.delete("v1", "PersistentVolume", "", "pvc-data")
        world.tick(2)
        assert get(world, "PersistentVolume", "pvc-data") is None
    world.scale_workload(NS, "app", 0)
    world.tick(12)
    assert not world.ebs.attached_to(volume_id) if world.ebs.exists(volume_id) else True
    assert world.ebs.exists(volume_id) is survives


# -- protection ---------------------------------------------------------------------------------------


def test_pvc_protection_holds_a_claim_a_pod_uses(world: World) -> None:
    in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(4)
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
    world.tick(3)
    assert get(world, "PersistentVolumeClaim", "data") is not None
    world.scale_workload(NS, "app", 0)
    world.tick(6)
    assert get(world, "PersistentVolumeClaim", "data") is None


def test_pv_protection_holds_a_bound_pv(world: World) -> None:
    in_tree(world, reclaim_policy="Retain")
    world.kube.delete("v1", "PersistentVolume", "", "pvc-data")
    world.tick(2)
    assert k8s.PV_PROTECTION in (get(world, "PersistentVolume", "pvc-data") or {})["metadata"]["finalizers"]


# -- workloads, nodes and writes ---------------------------------------------------------------------


def test_a_terminating_pod_still_writes(world: World) -> None:
    volume_id = in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(4)
    assert world.running_pods(NS, "app") == ["app-0"]
    world.scale_workload(NS, "app", 0)
    world.tick()
    deployment = get(world, "Deployment", "app") or {}
    assert deployment["status"]["readyReplicas"] == 0 and deployment["status"]["replicas"] == 0
    assert (get(world, "Pod", "app-0") or {})["metadata"].get("deletionTimestamp") is not None
    assert world.writes[-1].tick == world.ticks and world.writes[-1].volume_id == volume_id


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_volume_detaches_only_after_the_pod_is_gone(seed: int) -> None:
    with make_world(seed) as world:
        volume_id = in_tree(world)
        world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
        world.tick(4)
        assert world.ebs.volume(volume_id)["State"] == "in-use"
        world.scale_workload(NS, "app", 0)
        while world.ebs.volume(volume_id)["State"] != "available":
            world.tick()
            assert world.ticks < 100
        assert get(world, "Pod", "app-0") is None
        last = world.writes[-1]
        assert last.tick < world.ticks and world.volume_content(volume_id)[-1] == last.record


def test_the_detach_gate_returns_once_nothing_can_write(world: World) -> None:
    """The project's own gate, on the world's EC2 client and clock."""
    volume_id = in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(4)
    world.scale_workload(NS, "app", 0)
    with pytest.raises(preconditions.GateError, match="still in-use"):
        preconditions.wait_until_detached(
            world.ec2(), volume_id, timeout_seconds=0, sleep=world.sleep, clock=world.clock
        )
    detached = preconditions.wait_until_detached(
        world.ec2(), volume_id, timeout_seconds=300, poll_seconds=5, sleep=world.sleep, clock=world.clock
    )
    assert detached["State"] == "available"
    writes = len(world.writes)
    world.tick(5)
    assert len(world.writes) == writes


def test_a_statefulset_with_two_replicas_writes_to_two_volumes(world: World) -> None:
    volumes = [in_tree(world, f"data-db-{i}", f"pvc-db-{i}") for i in range(2)]
    world.add_workload(kind="StatefulSet", namespace=NS, name="db", replicas=2, claim_template="data")
    world.tick(10)
    assert world.running_pods(NS, "db") == ["db-0", "db-1"]
    assert {w.volume_id for w in world.writes} == set(volumes)
    for ordinal, volume_id in enumerate(volumes):
        assert all(
            record.startswith(f"{NS}/db-{ordinal}/data-db-{ordinal}@") for record in world.volume_content(volume_id)
        )


def test_a_statefulset_with_two_claim_templates_mounts_one_claim_of_each_per_pod(world: World) -> None:
    """stateful_set_utils.go getPersistentVolumeClaims: one claim per template and ordinal."""
    volumes = {
        f"{t}-db-{i}": in_tree(world, f"{t}-db-{i}", f"pvc-{t}-db-{i}") for i in range(2) for t in ("data", "wal")
    }
    world.add_workload(kind="StatefulSet", namespace=NS, name="db", replicas=2, claim_templates=["data", "wal"])
    world.tick(10)
    assert world.running_pods(NS, "db") == ["db-0", "db-1"]
    for claim, volume_id in volumes.items():
        ordinal = claim.rsplit("-", 1)[1]
        assert world.volume_content(volume_id), claim
        assert all(r.startswith(f"{NS}/db-{ordinal}/{claim}@") for r in world.volume_content(volume_id))


def test_the_user_stops_an_operators_workload_through_the_operator(world: World) -> None:
    in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"], owner="app-cr")
    world.tick(3)
    world.scale_through_operator(NS, "app", 0)
    world.tick(6)
    assert (get(world, "Deployment", "app") or {})["spec"]["replicas"] == 0
    assert world.running_pods(NS, "app") == []
    world.scale_through_operator(NS, "app", 1)
    world.tick(6)
    assert world.running_pods(NS, "app") == ["app-0"]


def test_a_volume_attaches_to_one_node_only(world: World) -> None:
    world.add_node("node-a2", ZONE_A)
    in_tree(world)
    for name, node in (("first", "node-a"), ("second", "node-a2")):
        world.add_workload(kind="Deployment", namespace=NS, name=name, replicas=1, claims=["data"])
        world.kube.patch(
            "apps/v1",
            "Deployment",
            NS,
            name,
            {"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": node}}}}},
            "test",
        )
        world.tick(4)
    assert world.running_pods(NS, "first") == ["first-0"] and world.running_pods(NS, "second") == []
    messages = [e.message for e in world.events_for("Pod", NS, "second-0") if e.reason == "FailedAttachVolume"]
    assert messages and "Multi-Attach error" in messages[-1]


def test_an_operator_resets_replicas(world: World) -> None:
    in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"], owner="app-cr")
    world.tick(3)
    world.apps_api().patch_namespaced_deployment_scale("app", NS, {"spec": {"replicas": 0}})
    world.tick()
    assert (get(world, "Deployment", "app") or {})["spec"]["replicas"] == 1
    assert world.running_pods(NS, "app") == ["app-0"]


def test_wait_for_first_consumer_provisions_only_after_a_pod_is_scheduled(world: World) -> None:
    world.kube.create(claim("fresh"))
    world.tick(3)
    assert phase(world, "PersistentVolumeClaim", "fresh") == "Pending"
    assert "WaitForFirstConsumer" in reasons(world, "PersistentVolumeClaim", "fresh")
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["fresh"])
    world.tick(6)
    volume_id = world.claim_volume(NS, "fresh")
    assert volume_id is not None
    volume = world.ebs.volume(volume_id)
    assert (volume["VolumeType"], volume["AvailabilityZone"], volume["State"]) == ("gp3", ZONE_A, "in-use")
    assert {"CSIVolumeName", "ebs.csi.aws.com/cluster", "kubernetes.io/created-for/pvc/name"} <= set(
        world.ebs.tags(volume_id)
    )
    pv = get(
        world, "PersistentVolume", f"pvc-{(get(world, 'PersistentVolumeClaim', 'fresh') or {})['metadata']['uid']}"
    )
    assert (
        pv is not None
        and pv["spec"]["csi"]["fsType"] == "ext4"
        and pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    )
    assert world.running_pods(NS, "app") == ["app-0"]


def test_a_new_gp2_claim_is_provisioned_through_the_driver_as_a_migrated_in_tree_pv(world: World) -> None:
    world.kube.create(claim("fresh", storage_class="gp2"))
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["fresh"])
    world.tick(6)
    volume_id = world.claim_volume(NS, "fresh")
    assert volume_id is not None and world.ebs.volume(volume_id)["VolumeType"] == "gp2"
    pv_name = (get(world, "PersistentVolumeClaim", "fresh") or {})["spec"]["volumeName"]
    pv = get(world, "PersistentVolume", pv_name) or {}
    assert pv["spec"]["awsElasticBlockStore"]["volumeID"] == f"aws://{ZONE_A}/{volume_id}"
    assert pv["metadata"]["annotations"][k8s.MIGRATED_TO] == "ebs.csi.aws.com"
    assert world.running_pods(NS, "app") == ["app-0"]


def test_without_the_driver_a_migrated_volume_does_not_attach() -> None:
    with make_world() as world:
        world.installed["driver"] = None
        volume_id = in_tree(world)
        world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
        world.tick(5)
        assert world.running_pods(NS, "app") == [] and world.ebs.volume(volume_id)["State"] == "available"
        assert "FailedAttachVolume" in reasons(world, "Pod", "app-0")
        world.install_ebs_csi_driver(how="helm", version="2.53.0")
        world.tick(4)
        assert world.running_pods(NS, "app") == ["app-0"]


def test_an_unknown_class_parameter_fails_provisioning(world: World) -> None:
    broken = copy.deepcopy(GP3)
    broken["metadata"]["name"] = "typo"
    broken["parameters"]["throughputMiBps"] = "250"
    world.add_storage_class(broken)
    world.kube.create(claim("c", storage_class="typo"))
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["c"])
    world.tick(4)
    assert phase(world, "PersistentVolumeClaim", "c") == "Pending"
    assert "ProvisioningFailed" in reasons(world, "PersistentVolumeClaim", "c")


def test_a_filesystem_other_than_the_pvs_fs_type_fails_the_mount(world: World) -> None:
    volume_id = in_tree(world, fs_type="xfs", reclaim_policy="Retain")
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
    world.tick(2)
    world.kube.create(static_pv("pv", volume_id, claimRef={"name": "data", "namespace": NS}))  # fsType ext4
    world.kube.create(claim("data", volumeName="pv"))
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(6)
    assert world.claim_volume(NS, "data") == volume_id
    assert world.running_pods(NS, "app") == []
    assert "FailedMount" in reasons(world, "Pod", "app-0")
    assert world.ebs.filesystem[volume_id] == "xfs"


# -- EBS ----------------------------------------------------------------------------------------------


def test_a_snapshot_copies_the_content_at_that_instant(world: World) -> None:
    volume_id = in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(5)
    before = world.volume_content(volume_id)
    snapshot_id = snapshot_of(world, volume_id)
    world.tick(3)
    assert world.ebs.snapshot_content[snapshot_id] == before
    assert len(world.volume_content(volume_id)) > len(before)


def test_snapshots_are_pending_then_completed_in_moto_too(world: World) -> None:
    volume_id = in_tree(world)
    snapshot_id = snapshot_of(world, volume_id)
    described = world.ec2().describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert (world.ebs.snapshot_state(snapshot_id), described["State"]) == ("pending", "pending")
    world.tick(6)
    described = world.ec2().describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert (world.ebs.snapshot_state(snapshot_id), described["State"]) == ("completed", "completed")


def test_modify_volume_progresses_one_at_a_time_and_four_times_a_day(world: World) -> None:
    volume_id = in_tree(world)
    world.ebs.modify_volume(volume_id, volume_type="gp3")
    seen = []
    while world.ebs.modification_state(volume_id) != "completed":
        seen.append(world.ebs.modification_state(volume_id))
        with pytest.raises(ClientError, match="IncorrectModificationState"):
            world.ebs.modify_volume(volume_id, iops=4000)
        world.tick()
    assert seen[0] == "modifying" and "optimizing" in seen
    described = world.ec2().describe_volumes_modifications(VolumeIds=[volume_id])["VolumesModifications"][-1]
    assert described["ModificationState"] == "completed"
    volume = world.ebs.volume(volume_id)
    assert (volume["VolumeType"], volume["Iops"], volume["Throughput"]) == ("gp3", 3000, 125)
    for iops in (3500, 4000, 4500):
        world.ebs.modify_volume(volume_id, iops=iops)
        world.tick(10)
    with pytest.raises(ClientError, match="VolumeModificationRateExceeded"):
        world.ebs.modify_volume(volume_id, iops=5000)
    world.ticks += DAY_TICKS  # a day later the first modification is out of the window
    world.ebs.modify_volume(volume_id, iops=5000)


def test_fail_next_fails_the_next_call_once(world: World) -> None:
    volume_id = in_tree(world)
    world.ebs.fail_next("CreateSnapshot", "RequestLimitExceeded", "slow down")
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        world.ec2().create_snapshot(VolumeId=volume_id)
    assert snapshot_of(world, volume_id)
    world.ebs.fail_next("DescribeVolumes", "InternalError", "oops")
    with pytest.raises(ClientError, match="InternalError"):
        world.ebs.check_fault("DescribeVolumes")
    world.ec2().describe_volumes(VolumeIds=[volume_id])


def test_what_code_under_test_does_through_ec2_enters_the_model(world: World) -> None:
    volume_id = in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(4)
    ec2 = world.ec2()
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    assert world.ebs.snapshot_state(snapshot_id) == "pending"
    assert world.ebs.snapshot_content[snapshot_id] == world.volume_content(volume_id)
    restored = ec2.create_volume(SnapshotId=snapshot_id, AvailabilityZone=ZONE_B, VolumeType="gp3")["VolumeId"]
    assert world.volume_content(restored) == world.ebs.snapshot_content[snapshot_id]
    assert ec2.describe_volumes(VolumeIds=[restored])["Volumes"][0]["Throughput"] == 125
    ec2.modify_volume(VolumeId=volume_id, VolumeType="gp3")
    assert world.ebs.modification_state(volume_id) == "modifying"
    with pytest.raises(ClientError, match="IncorrectModificationState"):
        ec2.modify_volume(VolumeId=volume_id, Iops=4000)


# -- snapshot controller ------------------------------------------------------------------------------


def test_a_restore_copies_the_snapshots_content(world: World) -> None:
    source = in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(5)
    snapshot_id = snapshot_of(world, source)
    taken = world.ebs.snapshot_content[snapshot_id]
    restored_objects(world, snapshot_id)
    world.tick(7)
    world.kube.create(restore_claim("restored", "snap"))
    world.add_workload(kind="Deployment", namespace=NS, name="reader", replicas=1, claims=["restored"])
    world.tick(6)
    volume_id = world.claim_volume(NS, "restored")
    assert volume_id is not None and volume_id != source
    assert world.volume_content(volume_id)[: len(taken)] == taken
    assert world.ebs.restored_from(volume_id) == source
    assert world.running_pods(NS, "reader") == ["reader-0"]


def test_readiness_follows_the_ebs_snapshot(world: World) -> None:
    snapshot_id = snapshot_of(world, in_tree(world))
    restored_objects(world, snapshot_id)
    world.tick()
    status = (get(world, "VolumeSnapshot", "snap") or {})["status"]
    assert status["boundVolumeSnapshotContentName"] == "snapcontent" and status["readyToUse"] is False
    while world.ebs.snapshot_state(snapshot_id) != "completed":
        assert not (get(world, "VolumeSnapshot", "snap") or {})["status"]["readyToUse"]
        world.tick()
    world.tick()
    status = (get(world, "VolumeSnapshot", "snap") or {})["status"]
    assert status["readyToUse"] is True and status["restoreSize"] == "10Gi"


CONTENT_REFS = [
    ("names it", {"name": "snap", "namespace": NS}, True),
    ("names another snapshot", {"name": "other", "namespace": NS}, False),
    ("names another namespace", {"name": "snap", "namespace": "kube-system"}, False),
    ("names another uid", {"name": "snap", "namespace": NS, "uid": "not-it"}, False),
]


@pytest.mark.parametrize(("rule", "ref", "binds"), CONTENT_REFS, ids=[c[0] for c in CONTENT_REFS])
def test_a_preprovisioned_content_binds_only_to_the_snapshot_it_names(
    world: World, rule: str, ref: dict[str, str], binds: bool
) -> None:
    snapshot_id = snapshot_of(world, in_tree(world))
    world.kube.create(content("snapcontent", snapshot_id, "snap", volumeSnapshotRef=ref))
    world.kube.create(volume_snapshot("snap", "snapcontent"))
    world.tick(8)
    status = (get(world, "VolumeSnapshot", "snap") or {}).get("status") or {}
    assert bool(status.get("readyToUse")) is binds, rule
    assert ("SnapshotContentMisbound" in reasons(world, "VolumeSnapshot", "snap")) is not binds


def test_a_dynamic_snapshot_is_taken_through_the_driver_of_csi_volumes_only(world: World) -> None:
    world.kube.create(
        {
            "apiVersion": k8s.SNAPSHOT_API,
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": "ebs", "annotations": {k8s.DEFAULT_SNAPSHOT_CLASS: "true"}},
            "driver": "ebs.csi.aws.com",
            "deletionPolicy": "Delete",
        }
    )
    in_tree(world)
    world.kube.create(claim("fresh"))
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["fresh", "data"])
    world.tick(6)
    for name, source in (("of-csi", "fresh"), ("of-in-tree", "data")):
        world.kube.create(
            {
                "apiVersion": k8s.SNAPSHOT_API,
                "kind": "VolumeSnapshot",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"source": {"persistentVolumeClaimName": source}},
            }
        )
    world.tick(8)
    status = (get(world, "VolumeSnapshot", "of-csi") or {})["status"]
    assert status["readyToUse"] is True
    handle = (get(world, "VolumeSnapshotContent", status["boundVolumeSnapshotContentName"]) or {})["status"]
    assert world.ebs.snapshot_tags(handle["snapshotHandle"])["ebs.csi.aws.com/cluster"] == "true"
    assert "SnapshotContentCreationFailed" in reasons(world, "VolumeSnapshot", "of-in-tree")


def test_a_bound_content_never_rebinds_to_a_recreated_snapshot(world: World) -> None:
    """external-snapshotter issues 274, 321, 345."""
    snapshot_id = snapshot_of(world, in_tree(world))
    restored_objects(world, snapshot_id)
    world.tick(8)
    world.kube.delete(k8s.SNAPSHOT_API, "VolumeSnapshot", NS, "snap")
    world.tick(2)
    assert get(world, "VolumeSnapshot", "snap") is None
    assert get(world, "VolumeSnapshotContent", "snapcontent") is not None  # Retain
    world.kube.create(volume_snapshot("snap", "snapcontent"))
    world.tick(3)
    assert not ((get(world, "VolumeSnapshot", "snap") or {}).get("status") or {}).get("readyToUse")
    assert "SnapshotContentMisbound" in reasons(world, "VolumeSnapshot", "snap")


def test_a_bound_content_cannot_be_deleted_while_its_snapshot_exists(world: World) -> None:
    snapshot_id = snapshot_of(world, in_tree(world))
    restored_objects(world, snapshot_id)
    world.tick(8)
    world.kube.delete(k8s.SNAPSHOT_API, "VolumeSnapshotContent", "", "snapcontent")
    world.tick(3)
    assert get(world, "VolumeSnapshotContent", "snapcontent") is not None
    world.kube.delete(k8s.SNAPSHOT_API, "VolumeSnapshot", NS, "snap")
    world.tick(3)
    assert get(world, "VolumeSnapshotContent", "snapcontent") is None
    assert world.ebs.snapshot_exists(snapshot_id)  # deletionPolicy Retain keeps the EBS snapshot


def test_snapshot_deletion_waits_while_a_claim_restores_from_it(world: World) -> None:
    snapshot_id = snapshot_of(world, in_tree(world))
    restored_objects(world, snapshot_id)
    world.tick(8)
    world.kube.create(restore_claim("restored", "snap"))  # WaitForFirstConsumer: Pending, no pod yet
    world.kube.delete(k8s.SNAPSHOT_API, "VolumeSnapshot", NS, "snap")
    world.tick(3)
    assert get(world, "VolumeSnapshot", "snap") is not None
    assert "SnapshotDeletePending" in reasons(world, "VolumeSnapshot", "snap")
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "restored")
    world.tick(3)
    assert get(world, "VolumeSnapshot", "snap") is None


REFUSED_RESTORES = [
    ("a content of another driver", {"driver": "other.csi.example.com"}, "10Gi", "different CSI driver"),
    ("a request below the restore size", {}, "5Gi", "is less than the size"),
    ("another volume mode", {"sourceVolumeMode": "Block"}, "10Gi", "modifies the mode"),
]


@pytest.mark.parametrize(
    ("rule", "content_spec", "size", "message"), REFUSED_RESTORES, ids=[c[0] for c in REFUSED_RESTORES]
)
def test_a_restore_is_refused_for(
    world: World, rule: str, content_spec: dict[str, Any], size: str, message: str
) -> None:
    snapshot_id = snapshot_of(world, in_tree(world))
    world.kube.create(content("snapcontent", snapshot_id, "snap", **content_spec))
    world.kube.create(volume_snapshot("snap", "snapcontent"))
    world.tick(8)
    world.kube.create(restore_claim("restored", "snap", size=size))
    world.add_workload(kind="Deployment", namespace=NS, name="reader", replicas=1, claims=["restored"])
    world.tick(5)
    assert phase(world, "PersistentVolumeClaim", "restored") == "Pending", rule
    failures = [
        e.message for e in world.events_for("PersistentVolumeClaim", NS, "restored") if e.reason == "ProvisioningFailed"
    ]
    assert failures and message in failures[-1]


@pytest.mark.parametrize(
    ("policy", "tags", "deleted"),
    [
        ("v1", MIGRATION_TAGS, True),
        ("v1", {"ebs.csi.aws.com/cluster-name": "dev"}, False),
        ("v2", MIGRATION_TAGS, True),
        ("v2", {"CSIVolumeSnapshotName": "x"}, False),
    ],
)
def test_a_delete_policy_content_deletes_its_snapshot_only_when_the_driver_may(
    policy: Literal["v1", "v2"], tags: dict[str, str], deleted: bool
) -> None:
    with make_world(driver_policy=policy) as world:
        snapshot_id = snapshot_of(world, in_tree(world), tags)
        world.kube.create(content("snapcontent", snapshot_id, "snap", deletionPolicy="Delete"))
        world.kube.create(volume_snapshot("snap", "snapcontent"))
        world.tick(8)
        world.kube.delete(k8s.SNAPSHOT_API, "VolumeSnapshot", NS, "snap")
        world.tick(4)
        assert world.ebs.snapshot_exists(snapshot_id) is not deleted
        assert (get(world, "VolumeSnapshotContent", "snapcontent") is None) is deleted
        if not deleted:
            assert "SnapshotDeleteError" in reasons(world, "VolumeSnapshotContent", "snapcontent")


def test_policy_v2_refuses_a_restore_from_an_untagged_snapshot() -> None:
    with make_world(driver_policy="v2") as world:
        snapshot_id = snapshot_of(world, in_tree(world), {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"})
        restored_objects(world, snapshot_id)
        world.tick(8)
        world.kube.create(restore_claim("restored", "snap"))
        world.add_workload(kind="Deployment", namespace=NS, name="reader", replicas=1, claims=["restored"])
        world.tick(5)
        assert phase(world, "PersistentVolumeClaim", "restored") == "Pending"
        assert "ProvisioningFailed" in reasons(world, "PersistentVolumeClaim", "restored")


# -- the API server ----------------------------------------------------------------------------------

IMMUTABLE = [
    ("PersistentVolumeClaim", "data", {"spec": {"storageClassName": "gp3"}}, "spec is immutable"),
    (
        "PersistentVolume",
        "pvc-data",
        {"spec": {"awsElasticBlockStore": {"volumeID": "vol-0"}}},
        "persistentvolumesource",
    ),
    (
        "PersistentVolume",
        "pvc-data",
        {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": []}}}},
        "nodeAffinity",
    ),
    ("StorageClass", "gp2", {"parameters": {"type": "gp3"}}, "parameters"),
    ("VolumeSnapshot", "snap", {"spec": {"source": {"volumeSnapshotContentName": "other"}}}, "is immutable"),
    ("VolumeSnapshotContent", "snapcontent", {"spec": {"source": {"snapshotHandle": "snap-0"}}}, "is immutable"),
    ("StatefulSet", "db", {"spec": {"serviceName": "other"}}, "updates to statefulset spec"),
]


@pytest.mark.parametrize(("kind", "name", "change", "message"), IMMUTABLE, ids=[f"{c[0]} {c[3]}" for c in IMMUTABLE])
def test_immutable_fields_are_invalid_to_change(
    world: World, kind: str, name: str, change: dict[str, Any], message: str
) -> None:
    in_tree(world)
    in_tree(world, "data-db-0", "pvc-db-0")
    world.add_workload(kind="StatefulSet", namespace=NS, name="db", replicas=1, claim_template="data")
    restored_objects(world, snapshot_of(world, in_tree(world, "other", "pvc-other")))
    obj = get(world, kind, name)
    assert obj is not None
    desired = {k: v for k, v in obj.items() if k != "status"}  # the whole object, as pulumi-kubernetes sends it
    desired["metadata"] = {"name": name, "namespace": obj["metadata"].get("namespace", "")}
    k8s.merge_patch(desired, change)
    with pytest.raises(KubeError, match=message) as raised:
        world.kube.update(desired, manager="pulumi-kubernetes", force=True)
    assert raised.value.reason == "Invalid" and raised.value.status == 422


def test_server_side_apply_conflicts_forces_and_relinquishes(world: World) -> None:
    in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=2, claims=["data"])
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": NS},
        "spec": {"replicas": 0},
    }
    with pytest.raises(KubeError, match="conflict") as raised:
        world.kube.apply(patch, manager="pulumi-patch")
    assert raised.value.reason == "Conflict"
    world.kube.apply(patch, manager="pulumi-patch", force=True)
    assert world.kube.managers("apps/v1", "Deployment", NS, "app")["spec.replicas"] == "pulumi-patch"
    world.kube.relinquish("apps/v1", "Deployment", NS, "app", "pulumi-patch")
    assert (get(world, "Deployment", "app") or {})["spec"]["replicas"] == 1  # the apps/v1 default
    # A manager that alone owns a required field cannot relinquish it.
    world.kube.create(static_pv("pv", "vol-0"), manager="only-owner")
    with pytest.raises(KubeError, match="Required value"):
        world.kube.relinquish("v1", "PersistentVolume", "", "pv", "only-owner")


def test_create_is_refused_for_an_existing_name_even_terminating(world: World) -> None:
    in_tree(world)
    world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
    world.tick(3)
    world.kube.delete("v1", "PersistentVolumeClaim", NS, "data")
    with pytest.raises(KubeError) as raised:
        world.kube.create(claim("data"))
    assert (raised.value.reason, raised.value.status) == ("AlreadyExists", 409)


def test_snapshot_kinds_need_their_crds() -> None:
    with World(seed=1, region=REGION, cluster_name="dev") as world:
        with pytest.raises(KubeError) as raised:
            world.kube.create(volume_snapshot("snap", "snapcontent"))
        assert raised.value.reason == "NotFound" and "no matches for kind" in raised.value.message
        assert world.kube.get(k8s.SNAPSHOT_API, "VolumeSnapshot", NS, "snap") is None


def test_the_snapshot_crd_rules_are_the_upstream_ones() -> None:
    if not SNAPSHOT_CRDS.is_dir():
        pytest.skip(f"upstream fixture {SNAPSHOT_CRDS} is absent: this test needs ../shared beside the checkout")
    assert load_crd_rules(SNAPSHOT_CRDS) == FALLBACK_CRD_RULES


def test_a_claim_without_a_class_gets_the_newest_default(world: World) -> None:
    newer = copy.deepcopy(GP3)
    newer["metadata"] = {"name": "gp3-default", "annotations": {k8s.DEFAULT_CLASS: "true"}}
    world.tick()
    world.add_storage_class(newer)
    world.kube.create(claim("c", storage_class=None))
    assert (get(world, "PersistentVolumeClaim", "c") or {})["spec"]["storageClassName"] == "gp3-default"
    assert world.default_storage_classes() == ["gp2", "gp3-default"]


def test_the_fake_core_api_speaks_the_clients_models_and_the_gate_releases_a_claim(world: World) -> None:
    volume_id = in_tree(world)
    core = world.core_api()
    read = core.read_namespaced_persistent_volume_claim("data", NS)
    assert read.spec.volume_name == "pvc-data" and read.status.phase == "Bound"
    with pytest.raises(ApiException) as raised:
        core.read_persistent_volume("missing")
    assert (raised.value.status, raised.value.reason) == (404, "Not Found")
    released = preconditions.release_claim(
        core, namespace=NS, claim="data", timeout_seconds=60, poll_seconds=5, sleep=world.sleep
    )
    assert released == "pvc-data"
    assert core.read_persistent_volume("pvc-data").spec.persistent_volume_reclaim_policy == "Retain"
    world.tick(2)
    assert phase(world, "PersistentVolume", "pvc-data") == "Released" and world.ebs.exists(volume_id)
    assert world.api_calls["patch_persistent_volume"] == 1 and world.mutating_api_calls() == 2


# -- determinism --------------------------------------------------------------------------------------


def _history(seed: int) -> dict[str, Any]:
    with make_world(seed) as world:
        world.add_node("node-a2", ZONE_A)
        source = in_tree(world)
        world.add_workload(kind="Deployment", namespace=NS, name="app", replicas=1, claims=["data"])
        world.tick(6)
        restored_objects(world, snapshot_of(world, source))
        world.scale_workload(NS, "app", 0)
        world.tick(12)
        return world.history()


def test_the_same_seed_gives_the_same_history_and_another_seed_other_timings() -> None:
    first, again = _history(3), _history(3)
    assert first == again
    others = [_history(seed) for seed in (4, 5, 6)]
    assert any(
        [(w.tick, w.pod) for w in other["writes"]] != [(w.tick, w.pod) for w in first["writes"]]
        or other["snapshots"] != first["snapshots"]
        for other in others
    )
