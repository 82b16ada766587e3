"""The simulated world: an EKS cluster's storage controllers and workloads over EBS, in ticks.

Each tick runs, in this order (one function per rule, each citing what it follows):
1. workloads: Deployments and StatefulSets keep their pods at `spec.replicas`; a pod runs once its
   claims are bound and its volumes attached on a node in their zone; a running pod writes one
   record per tick to each of its volumes; a deleted pod keeps running (and writing) for its grace
   period, then goes; its node detaches the volume some ticks later (kubelet / attach-detach
   controller) — so zero ready replicas is no proof that nothing writes (DESIGN Facts);
2. the PV controller (`pkg/controller/volume/persistentvolume/pv_controller.go` syncClaim /
   syncVolume): binds a pending claim to the PV it names (`volumeName`) or that is reserved for it
   (`claimRef` without a uid), or to any Available PV that fits (class, capacity, access modes,
   volume mode); a bound PV whose claim is gone is Released; Released + Delete: the PV and its volume
   are deleted; Released + Retain stays until an admin clears `claimRef.uid`;
3. pvc-protection / pv-protection (`pkg/controller/volume/pvcprotection`, `pvprotection`): a claim
   used by a pod that still exists keeps its finalizer; a PV keeps its own while Bound;
4. the snapshot controller (external-snapshotter `pkg/common-controller/snapshot_controller.go`):
   binds a VolumeSnapshot to the pre-provisioned content it names only if the content's
   `volumeSnapshotRef` names it back (and its uid, once set, matches: a bound content never rebinds,
   issues 274/321/345); `readyToUse` once the EBS snapshot is completed; the content keeps
   `volumesnapshotcontent-bound-protection` until its VolumeSnapshot is gone; a VolumeSnapshot keeps
   `volumesnapshot-as-source-protection` while a claim that is not yet bound restores from it;
5. the external-provisioner with the EBS CSI driver (`kubernetes-csi/external-provisioner`
   `pkg/controller/controller.go`; aws-ebs-csi-driver `pkg/driver/controller.go`): provisions a
   pending claim of an `ebs.csi.aws.com` class (WaitForFirstConsumer: once a pod is scheduled, in its
   node's zone), restoring from a VolumeSnapshot only under the rules of tests/cluster_model.py, with
   the class's parameters and the driver's created-for tags;
and mounting formats only a blank device (mount-utils `formatAndMount`): a volume whose filesystem
differs from the PV's fsType fails to mount.
"""

from __future__ import annotations

import copy
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Literal

from gp3migrate.sim.ebs_model import Ebs
from gp3migrate.sim.kube_store import KubeError, Store

TICK_SECONDS = 5
CSI_DRIVER = "ebs.csi.aws.com"
ZONE_KEY = "topology.kubernetes.io/zone"
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
AS_SOURCE = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
VS_BOUND = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
CONTENT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
GI = 1024**3


def quantity(value: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": GI, "Ti": 1024**4}
    for suffix, factor in units.items():
        if str(value).endswith(suffix):
            return int(float(str(value)[: -len(suffix)]) * factor)
    return int(float(value))


def bare_volume_id(handle: str) -> str:
    """`aws://<zone>/vol-…`, `aws:///vol-…`, `vol-…/` -> `vol-…`."""
    return handle.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Write:
    tick: int
    namespace: str
    claim: str
    pod: str
    record: str
    volume_id: str


@dataclass
class _Pod:
    namespace: str
    name: str
    owner: str
    claims: list[str]
    node: str | None = None
    phase: str = "Pending"
    ready_at: int = 0
    terminate_at: int | None = None
    event: str = ""


class World:
    def __init__(self, *, seed: int, region: str, cluster_name: str, account: str = "123456789012"):
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_SECURITY_TOKEN="testing",
            AWS_SESSION_TOKEN="testing",
            AWS_DEFAULT_REGION=region,
        )
        import boto3
        from moto import mock_aws

        self._mock = mock_aws()
        self._mock.start()
        self.seed = seed
        self.rng = random.Random(seed)
        self.region = region
        self.cluster_name = cluster_name
        self.ticks = 0
        self._ec2 = boto3.client("ec2", region_name=region)
        self.ebs = Ebs(self._ec2, self.rng, lambda: self.ticks)
        self.kube = Store(lambda: self.ticks)
        self.nodes: dict[str, tuple[str, str]] = {}  # name -> (zone, instance id)
        self.pods: dict[tuple[str, str], _Pod] = {}
        self.pending_detach: dict[str, int] = {}  # volume -> tick
        self.devices: dict[str, int] = {}  # instance -> attachments made (device names)
        self.writes: list[Write] = []
        self.events: list[str] = []
        self.installed: dict[str, Any] = {"driver": None, "snapshot_crds": False, "snapshot_controller": False}
        self.api_calls: dict[str, int] = {}

    def close(self) -> None:
        self._mock.stop()

    # -- time --------------------------------------------------------------------------------

    def clock(self) -> float:
        return float(self.ticks * TICK_SECONDS)

    def sleep(self, seconds: float) -> None:
        self.tick(max(1, math.ceil(seconds / TICK_SECONDS)))

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.ticks += 1
            self._workloads()
            self._pods()
            self._pv_controller()
            self._protection()
            if self.installed["snapshot_controller"] and self.installed["snapshot_crds"]:
                self._snapshot_controller()
            if self.installed["driver"]:
                self._provisioner()
            self._detach()

    # -- clients for the project's gate code --------------------------------------------------

    def ec2(self) -> Any:
        return self._ec2

    def apps_api(self) -> Any:
        from gp3migrate.sim.gate_api import FakeAppsV1Api

        return FakeAppsV1Api(self)

    def core_api(self) -> Any:
        from gp3migrate.sim.gate_api import FakeCoreV1Api

        return FakeCoreV1Api(self)

    # -- seeding ---------------------------------------------------------------------------------

    def add_node(self, name: str, zone: str) -> None:
        image = self._ec2.describe_images()["Images"][0]["ImageId"]
        instance = self._ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium", Placement={"AvailabilityZone": zone}
        )["Instances"][0]["InstanceId"]
        self.nodes[name] = (zone, instance)

    def add_storage_class(self, manifest: dict[str, Any]) -> None:
        self.kube.create(manifest, manager="eks")

    def install_ebs_csi_driver(self, *, how: str, version: str) -> None:
        self.installed["driver"] = {"how": how, "version": version}

    def install_snapshot_api(self, *, crds: bool = True, controller: bool = True) -> None:
        self.installed["snapshot_crds"] = crds
        self.installed["snapshot_controller"] = controller
        self.kube.snapshot_api = crds

    def add_in_tree_volume(
        self,
        *,
        namespace: str,
        claim: str,
        pv: str,
        size_gib: int,
        zone: str,
        fs_type: str = "ext4",
        storage_class: str = "gp2",
        access_modes: tuple[str, ...] = ("ReadWriteOnce",),
        volume_mode: str = "Filesystem",
        reclaim_policy: str = "Delete",
        encrypted: bool = False,
        kms_key_id: str | None = None,
    ) -> str:
        """An in-tree gp2 volume as the in-tree provisioner left it (tags: aws-ebs-csi-driver
        `pkg/driver/constants.go`; PV: `spec.awsElasticBlockStore`, CSI-migrated)."""
        tags = {
            "kubernetes.io/created-for/pv/name": pv,
            "kubernetes.io/created-for/pvc/name": claim,
            "kubernetes.io/created-for/pvc/namespace": namespace,
            f"kubernetes.io/cluster/{self.cluster_name}": "owned",
            "KubernetesCluster": self.cluster_name,
        }
        volume_id = self.ebs.create_volume(
            zone=zone,
            size_gib=size_gib,
            volume_type="gp2",
            tags=tags,
            encrypted=encrypted,
            kms_key_id=kms_key_id,
            filesystem=fs_type,
        )
        claim_obj = self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": namespace},
                "spec": {
                    "accessModes": list(access_modes),
                    "volumeMode": volume_mode,
                    "storageClassName": storage_class,
                    "resources": {"requests": {"storage": f"{size_gib}Gi"}},
                },
            },
            manager="kubectl",
        )
        self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": pv,
                    "annotations": {
                        "pv.kubernetes.io/provisioned-by": "kubernetes.io/aws-ebs",
                        "pv.kubernetes.io/migrated-to": CSI_DRIVER,
                    },
                },
                "spec": {
                    "awsElasticBlockStore": {"volumeID": f"aws://{zone}/{volume_id}", "fsType": fs_type},
                    "capacity": {"storage": f"{size_gib}Gi"},
                    "accessModes": list(access_modes),
                    "volumeMode": volume_mode,
                    "storageClassName": storage_class,
                    "persistentVolumeReclaimPolicy": reclaim_policy,
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": namespace,
                        "name": claim,
                        "uid": claim_obj["metadata"]["uid"],
                    },
                    "nodeAffinity": {
                        "required": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": ZONE_KEY, "operator": "In", "values": [zone]}]}
                            ]
                        }
                    },
                },
            },
            manager="kube-controller-manager",
        )
        self._pv_controller()
        return volume_id

    def add_workload(
        self,
        *,
        kind: Literal["Deployment", "StatefulSet"],
        namespace: str,
        name: str,
        replicas: int,
        claims: list[str] | None = None,
        claim_template: str | None = None,
    ) -> None:
        spec: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": {"app": name}}}
        volumes = [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims or []]
        # The runbook's demo writer: one container appending a record every tick.
        containers = [{"name": "writer", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]
        spec["template"] = {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": containers, "volumes": volumes},
        }
        if kind == "StatefulSet":
            spec["volumeClaimTemplates"] = [{"metadata": {"name": claim_template or "data"}}]
        self.kube.create(
            {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec},
            manager="kubectl",
        )
        self.tick(4)

    def repoint_workload(self, namespace: str, name: str, old_claim: str, new_claim: str) -> None:
        """What a user does after a `rename` cutover: the pod template names the new claim."""
        for kind in ("Deployment", "StatefulSet"):
            workload = self.kube.live(kind, namespace, name)
            if workload is None:
                continue
            for volume in workload["spec"]["template"]["spec"]["volumes"]:
                if volume["persistentVolumeClaim"]["claimName"] == old_claim:
                    volume["persistentVolumeClaim"]["claimName"] = new_claim
                    volume["name"] = new_claim

    def scale_workload(self, namespace: str, name: str, replicas: int) -> None:
        for kind in ("Deployment", "StatefulSet"):
            workload = self.kube.live(kind, namespace, name)
            if workload is not None:
                workload["spec"]["replicas"] = replicas

    # -- observation -----------------------------------------------------------------------------

    def volume_content(self, volume_id: str) -> list[str]:
        return list(self.ebs.content.get(volume_id, []))

    def claim_volume(self, namespace: str, claim: str) -> str | None:
        pvc = self.kube.live("PersistentVolumeClaim", namespace, claim)
        if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
            return None
        pv = self.kube.live("PersistentVolume", "", pvc["spec"].get("volumeName", ""))
        return self._pv_volume(pv) if pv else None

    def running_pods(self, namespace: str, workload: str) -> list[str]:
        return sorted(
            p.name
            for p in self.pods.values()
            if p.namespace == namespace and p.owner == workload and p.phase == "Running" and p.terminate_at is None
        )

    def default_storage_classes(self) -> list[str]:
        return [
            c["metadata"]["name"]
            for c in self.kube.list("StorageClass")
            if (c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
        ]

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _pv_volume(pv: dict[str, Any]) -> str | None:
        spec = pv["spec"]
        if "csi" in spec:
            return bare_volume_id(spec["csi"]["volumeHandle"])
        if "awsElasticBlockStore" in spec:
            return bare_volume_id(spec["awsElasticBlockStore"]["volumeID"])
        return None

    def _claims_of(self, kind: str, workload: dict[str, Any], ordinal: int) -> list[str]:
        name = workload["metadata"]["name"]
        if kind == "StatefulSet":
            return [f"{t['metadata']['name']}-{name}-{ordinal}" for t in workload["spec"]["volumeClaimTemplates"]]
        return [v["persistentVolumeClaim"]["claimName"] for v in workload["spec"]["template"]["spec"]["volumes"]]

    # -- 1. workloads and pods -------------------------------------------------------------------

    def _workloads(self) -> None:
        for kind in ("Deployment", "StatefulSet"):
            for workload in self.kube.list(kind):
                namespace, name = workload["metadata"]["namespace"], workload["metadata"]["name"]
                wanted = int(workload["spec"].get("replicas", 1))
                for ordinal in range(wanted):
                    pod_name = f"{name}-{ordinal}"
                    if (namespace, pod_name) not in self.pods:
                        claims = self._claims_of(kind, workload, ordinal)
                        self.pods[(namespace, pod_name)] = _Pod(namespace, pod_name, name, claims)
                for (ns, pod_name), pod in sorted(self.pods.items()):
                    if ns != namespace or pod.owner != name or pod.terminate_at is not None:
                        continue
                    if int(pod_name.rsplit("-", 1)[1]) >= wanted:
                        # Graceful termination: the container keeps running until the grace period ends.
                        pod.terminate_at = self.ticks + self.rng.randint(1, 3)
                alive = [p for p in self.pods.values() if p.namespace == namespace and p.owner == name]
                running = [p for p in alive if p.phase == "Running" and p.terminate_at is None]
                workload["status"] = {
                    "replicas": len([p for p in alive if p.terminate_at is None]),
                    "readyReplicas": len(running),
                }

    def _pods(self) -> None:
        for key, pod in sorted(self.pods.items()):
            if pod.terminate_at is not None and self.ticks >= pod.terminate_at:
                del self.pods[key]
                for volume in self._pod_volumes(pod):
                    if not any(self._uses(p, volume) for p in self.pods.values()):
                        self.pending_detach[volume] = self.ticks + self.rng.randint(1, 4)
                continue
            if pod.phase == "Running":
                for claim in pod.claims:
                    target = self.claim_volume(pod.namespace, claim)
                    node = self.nodes.get(pod.node or "")
                    if target and node and self.ebs.attached_to(target) == node[1]:
                        record = f"{pod.namespace}/{pod.name}/{claim}@{self.ticks}"
                        self.ebs.write(target, record)
                        self.writes.append(Write(self.ticks, pod.namespace, claim, pod.name, record, target))
                continue
            if pod.terminate_at is None:
                self._start(pod)

    def _pod_volumes(self, pod: _Pod) -> list[str]:
        return [v for v in (self.claim_volume(pod.namespace, c) for c in pod.claims) if v]

    def _uses(self, pod: _Pod, volume: str) -> bool:
        return volume in self._pod_volumes(pod)

    def _start(self, pod: _Pod) -> None:
        """Scheduling, the WaitForFirstConsumer hand-off, attach and mount."""
        volumes = []
        for claim in pod.claims:
            pvc = self.kube.live("PersistentVolumeClaim", pod.namespace, claim)
            if pvc is None or pvc["metadata"].get("deletionTimestamp") is not None:
                pod.event = f"persistentvolumeclaim {claim!r} not found"
                return
            if pvc["status"].get("phase") != "Bound":
                if pod.node is None:
                    pod.node = sorted(self.nodes)[0]
                # volume.kubernetes.io/selected-node: the scheduler hands the claim to the provisioner.
                pvc["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = pod.node
                pod.event = f"waiting for claim {claim} to bind"
                return
            pv = self.kube.live("PersistentVolume", "", pvc["spec"]["volumeName"])
            if pv is None:
                return
            volumes.append((pv, self._pv_volume(pv)))
        zones = {self._pv_zone(pv) for pv, _ in volumes} - {None}
        if pod.node is None or (zones and self.nodes[pod.node][0] not in zones):
            candidates = [n for n, (z, _) in sorted(self.nodes.items()) if not zones or z in zones]
            if not candidates:
                pod.event = "no node in the volume's zone"
                return
            pod.node = candidates[0]
        instance = self.nodes[pod.node][1]
        for pv, volume in volumes:
            if volume is None or not self.ebs.exists(volume):
                pod.event = "volume does not exist"
                return
            if not self._driver_serves(pv):
                pod.event = "driver name ebs.csi.aws.com not found in the list of registered CSI drivers"
                return
            holder = self.ebs.attached_to(volume)
            if holder is None:
                self.devices[instance] = self.devices.get(instance, 0) + 1
                self.ebs.attach(volume, instance, f"/dev/xvd{chr(ord('f') + self.devices[instance] % 20)}")
                pod.event = "attaching"
                return
            if holder != instance:
                pod.event = f"Multi-Attach error for volume {volume}: attached to another node"
                return
            fs_type = self._pv_fs_type(pv)
            current = self.ebs.filesystem.get(volume)
            if current is None:
                self.ebs.filesystem[volume] = fs_type  # formatAndMount formats only a blank device
            elif current != fs_type:
                pod.event = f"MountVolume.MountDevice failed: {volume} has {current}, the PV says {fs_type}"
                self.events.append(pod.event)
                return
        pod.phase = "Running"
        pod.event = ""

    def _driver_serves(self, pv: dict[str, Any]) -> bool:
        # CSI migration: in-tree aws-ebs volumes are served by the CSI driver (EKS >= 1.23).
        return bool(self.installed["driver"])

    @staticmethod
    def _pv_zone(pv: dict[str, Any]) -> str | None:
        terms = (((pv["spec"].get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms")) or []
        for term in terms:
            for expression in term.get("matchExpressions") or []:
                if expression["key"] in (ZONE_KEY, "topology.ebs.csi.aws.com/zone"):
                    return str(expression["values"][0])
        return None

    @staticmethod
    def _pv_fs_type(pv: dict[str, Any]) -> str:
        spec = pv["spec"]
        source = spec.get("csi") or spec.get("awsElasticBlockStore") or {}
        return str(source.get("fsType") or "ext4")

    def _detach(self) -> None:
        for volume, at in sorted(self.pending_detach.items()):
            if self.ticks >= at:
                del self.pending_detach[volume]
                if self.ebs.exists(volume) and self.ebs.attached_to(volume):
                    self.ebs.detach(volume)

    # -- 2. PV controller ------------------------------------------------------------------------

    def _pv_controller(self) -> None:
        for pvc in self.kube.list("PersistentVolumeClaim"):
            if pvc["status"].get("phase") == "Bound" or pvc["metadata"].get("deletionTimestamp") is not None:
                continue
            pv = self._matching_pv(pvc)
            if pv is not None:
                self._bind(pv, pvc)
        for pv in self.kube.list("PersistentVolume"):
            ref = pv["spec"].get("claimRef")
            phase = pv["status"].get("phase")
            if not ref:
                pv["status"]["phase"] = "Available"
                continue
            claim = self.kube.live("PersistentVolumeClaim", ref["namespace"], ref["name"])
            if ref.get("uid") in (None, ""):
                pv["status"]["phase"] = "Available"  # pre-bound: reserved for that claim
                continue
            if claim is None or claim["metadata"]["uid"] != ref["uid"]:
                if phase != "Released":
                    pv["status"]["phase"] = "Released"
                if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
                    self._reclaim_delete(pv)

    def _matching_pv(self, pvc: dict[str, Any]) -> dict[str, Any] | None:
        namespace, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        wanted = pvc["spec"].get("volumeName")
        candidates = [self.kube.live("PersistentVolume", "", wanted)] if wanted else self.kube.list("PersistentVolume")
        for pv in candidates:
            if pv is None or pv["metadata"].get("deletionTimestamp") is not None:
                continue
            ref = pv["spec"].get("claimRef")
            if ref and (ref["namespace"], ref["name"]) != (namespace, name):
                continue
            if ref and ref.get("uid") not in (None, "", pvc["metadata"]["uid"]):
                continue
            if not ref and (wanted is None and pv["status"].get("phase") != "Available"):
                continue
            if (pv["spec"].get("storageClassName") or "") != (pvc["spec"].get("storageClassName") or ""):
                continue
            capacity = quantity(pv["spec"]["capacity"]["storage"])
            if capacity < quantity(pvc["spec"]["resources"]["requests"]["storage"]):
                continue
            if not set(pvc["spec"].get("accessModes") or []) <= set(pv["spec"].get("accessModes") or []):
                continue
            if (pv["spec"].get("volumeMode") or "Filesystem") != (pvc["spec"].get("volumeMode") or "Filesystem"):
                continue
            return pv
        return None

    def _bind(self, pv: dict[str, Any], pvc: dict[str, Any]) -> None:
        pv["spec"]["claimRef"] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": pvc["metadata"]["namespace"],
            "name": pvc["metadata"]["name"],
            "uid": pvc["metadata"]["uid"],
        }
        pv["status"]["phase"] = "Bound"
        pvc["spec"]["volumeName"] = pv["metadata"]["name"]
        pvc["status"] = {"phase": "Bound", "capacity": dict(pv["spec"]["capacity"])}
        pvc["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bind-completed"] = "yes"

    def _reclaim_delete(self, pv: dict[str, Any]) -> None:
        volume = self._pv_volume(pv)
        if volume and self.ebs.exists(volume):
            if self.ebs.attached_to(volume):
                return  # the driver retries DeleteVolume until the volume is detached
            self.ebs.delete_volume(volume)
        self.events.append(f"deleted PV {pv['metadata']['name']} and its volume {volume} (reclaim policy Delete)")
        self.kube.remove_finalizer(pv, "kubernetes.io/pv-protection")
        pv["metadata"].setdefault("deletionTimestamp", self.ticks)
        self.kube.collect(self.kube.key_of(pv))

    # -- 3. protection ---------------------------------------------------------------------------

    def _protection(self) -> None:
        for pvc in self.kube.list("PersistentVolumeClaim"):
            if pvc["metadata"].get("deletionTimestamp") is None:
                continue
            namespace, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
            in_use = any(p.namespace == namespace and name in p.claims for p in self.pods.values())
            if not in_use:
                self.kube.remove_finalizer(pvc, "kubernetes.io/pvc-protection")
        for pv in self.kube.list("PersistentVolume"):
            if pv["metadata"].get("deletionTimestamp") is not None and pv["status"].get("phase") != "Bound":
                self.kube.remove_finalizer(pv, "kubernetes.io/pv-protection")

    # -- 4. snapshot controller ----------------------------------------------------------------

    def _snapshot_controller(self) -> None:
        for snapshot in self.kube.list("VolumeSnapshot"):
            namespace, name = snapshot["metadata"]["namespace"], snapshot["metadata"]["name"]
            content_name = (snapshot["spec"].get("source") or {}).get("volumeSnapshotContentName")
            content = self.kube.live("VolumeSnapshotContent", "", content_name or "")
            status = snapshot.setdefault("status", {})
            if content is not None and snapshot["metadata"].get("deletionTimestamp") is None:
                ref = content["spec"].get("volumeSnapshotRef") or {}
                names_it = (ref.get("name"), ref.get("namespace")) == (name, namespace)
                uid_ok = ref.get("uid") in (None, "", snapshot["metadata"]["uid"])
                if names_it and uid_ok:
                    ref["uid"] = snapshot["metadata"]["uid"]
                    self.kube.add_finalizer(content, CONTENT_BOUND)
                    self.kube.add_finalizer(snapshot, VS_BOUND)
                    handle = content["spec"]["source"].get("snapshotHandle", "")
                    ready = self.ebs.snapshot_state(handle) == "completed"
                    content["status"] = {"snapshotHandle": handle, "readyToUse": ready}
                    status.update(boundVolumeSnapshotContentName=content_name, readyToUse=ready)
                    if ready:
                        size = self.ebs.volume(self.ebs.snapshot_source[handle]).get("Size", 0)
                        status["restoreSize"] = f"{size}Gi"
            restoring = [
                c
                for c in self.kube.list("PersistentVolumeClaim", namespace)
                if (c["spec"].get("dataSource") or {}).get("name") == name and c["status"].get("phase") != "Bound"
            ]
            if restoring:
                self.kube.add_finalizer(snapshot, AS_SOURCE)
            elif snapshot["metadata"].get("deletionTimestamp") is not None:
                self.kube.remove_finalizer(snapshot, AS_SOURCE)
                if self.kube.live("VolumeSnapshot", namespace, name) is not None:
                    self.kube.remove_finalizer(snapshot, VS_BOUND)
            else:
                self.kube.remove_finalizer(snapshot, AS_SOURCE)
        for content in self.kube.list("VolumeSnapshotContent"):
            ref = content["spec"].get("volumeSnapshotRef") or {}
            bound_to = self.kube.live("VolumeSnapshot", ref.get("namespace", ""), ref.get("name", ""))
            gone = bound_to is None or (ref.get("uid") and bound_to["metadata"]["uid"] != ref.get("uid"))
            if gone and CONTENT_BOUND in (content["metadata"].get("finalizers") or []):
                self.kube.remove_finalizer(content, CONTENT_BOUND)
            if content["metadata"].get("deletionTimestamp") is not None and not content["metadata"].get("finalizers"):
                handle = content["spec"]["source"].get("snapshotHandle", "")
                if content["spec"].get("deletionPolicy") == "Delete" and self.ebs.snapshot_exists(handle):
                    self.ebs.delete_snapshot(handle)

    # -- 5. provisioner --------------------------------------------------------------------------

    def _provisioner(self) -> None:
        for pvc in self.kube.list("PersistentVolumeClaim"):
            if pvc["status"].get("phase") == "Bound" or pvc["spec"].get("volumeName"):
                continue
            class_name = pvc["spec"].get("storageClassName")
            storage_class = self.kube.live("StorageClass", "", class_name or "")
            if storage_class is None or storage_class["provisioner"] != CSI_DRIVER:
                continue
            annotations = pvc["metadata"].get("annotations") or {}
            node = annotations.get("volume.kubernetes.io/selected-node")
            if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
                continue
            zone = self.nodes[node][0] if node else sorted(z for z, _ in self.nodes.values())[0]
            source = pvc["spec"].get("dataSource")
            snapshot_id = None
            if source:
                problem, snapshot_id = self._restore_source(pvc, storage_class)
                if problem:
                    self.events.append(f"{pvc['metadata']['name']}: {problem}")
                    continue
            self._provision(pvc, storage_class, zone, snapshot_id)

    def _restore_source(self, pvc: dict[str, Any], storage_class: dict[str, Any]) -> tuple[str, str | None]:
        """external-provisioner getSnapshotSource: the rules tests/cluster_model.py states."""
        namespace = pvc["metadata"]["namespace"]
        source = pvc["spec"]["dataSource"]
        if (source.get("apiGroup"), source.get("kind")) != (SNAPSHOT_GROUP, "VolumeSnapshot"):
            return "dataSource is not a VolumeSnapshot", None
        snapshot = self.kube.live("VolumeSnapshot", namespace, source["name"])
        if snapshot is None:
            return f"VolumeSnapshot {source['name']} not found", None
        status = snapshot.get("status") or {}
        content = self.kube.live("VolumeSnapshotContent", "", status.get("boundVolumeSnapshotContentName") or "")
        if content is None or not status.get("readyToUse"):
            return "snapshot is not bound or not ready to use", None
        if content["spec"]["driver"] != storage_class["provisioner"]:
            return "content driver differs from the class provisioner", None
        handle = content["spec"]["source"]["snapshotHandle"]
        size = self.ebs.volume(self.ebs.snapshot_source[handle]).get("Size", 0) * GI
        if quantity(pvc["spec"]["resources"]["requests"]["storage"]) < size:
            return "requested size is smaller than the snapshot's restore size", None
        mode = content["spec"].get("sourceVolumeMode")
        if mode is not None and mode != (pvc["spec"].get("volumeMode") or "Filesystem"):
            return "volume mode differs from the snapshot's source", None
        return "", handle

    def _provision(
        self, pvc: dict[str, Any], storage_class: dict[str, Any], zone: str, snapshot_id: str | None
    ) -> None:
        parameters = storage_class.get("parameters") or {}
        namespace, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        size_gib = max(1, math.ceil(quantity(pvc["spec"]["resources"]["requests"]["storage"]) / GI))
        tags = {
            "kubernetes.io/created-for/pvc/name": name,
            "kubernetes.io/created-for/pvc/namespace": namespace,
            "kubernetes.io/created-for/pv/name": pv_name,
            "ebs.csi.aws.com/cluster": "true",
            "CSIVolumeName": pv_name,
        }
        try:
            volume = self.ebs.create_volume(
                zone=zone,
                size_gib=size_gib,
                volume_type=parameters.get("type", "gp3"),
                tags=tags,
                iops=int(parameters["iops"]) if "iops" in parameters else None,
                throughput=int(parameters["throughput"]) if "throughput" in parameters else None,
                encrypted=str(parameters.get("encrypted", "false")).lower() == "true",
                kms_key_id=parameters.get("kmsKeyId"),
                snapshot_id=snapshot_id,
            )
        except Exception as err:
            self.events.append(f"{name}: CreateVolume failed: {err}")
            return
        fs_type = parameters.get("csi.storage.k8s.io/fstype") or parameters.get("fsType") or "ext4"
        pv = self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": CSI_DRIVER}},
                "spec": {
                    "csi": {"driver": CSI_DRIVER, "volumeHandle": volume, "fsType": fs_type},
                    "capacity": {"storage": f"{size_gib}Gi"},
                    "accessModes": list(pvc["spec"].get("accessModes") or ["ReadWriteOnce"]),
                    "volumeMode": pvc["spec"].get("volumeMode") or "Filesystem",
                    "storageClassName": storage_class["metadata"]["name"],
                    "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
                    "nodeAffinity": {
                        "required": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": ZONE_KEY, "operator": "In", "values": [zone]}]}
                            ]
                        }
                    },
                },
            },
            manager="csi-provisioner",
        )
        live_pv = self.kube.live("PersistentVolume", "", pv["metadata"]["name"])
        assert live_pv is not None
        self._bind(live_pv, pvc)

    # -- Kubernetes errors the gate API raises -----------------------------------------------

    def kube_error(self, err: KubeError) -> Exception:
        from kubernetes.client.exceptions import ApiException

        return ApiException(status=err.status, reason=err.reason)

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the cluster's objects (for determinism checks)."""
        return copy.deepcopy({"objects": self.kube.objects, "ticks": self.ticks, "writes": len(self.writes)})
