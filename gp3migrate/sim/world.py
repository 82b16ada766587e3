"""The simulated world: an EKS cluster's storage controllers, its nodes and a writing workload, over
EBS on moto, advanced in ticks of TICK_SECONDS and deterministic from a seed.

Each tick runs, in this order:
1. EBS: snapshots complete and volume modifications progress (gp3migrate/sim/ebs.py);
2. operators reset the replicas of the workloads they own; the GitOps owners (Argo CD, Flux) apply
   what their git holds, and the autoscalers (KEDA, HPA) set replicas (gp3migrate/sim/kube/gitops.py,
   autoscalers.py);
3. kube-controller-manager's garbage collector, Deployment/ReplicaSet and StatefulSet controllers,
   and the scheduler's volume binding (gp3migrate/sim/kube/);
4. the PV controller, pvc-protection and pv-protection;
5. the snapshot controller, and the driver's csi-snapshotter sidecar (when installed);
6. the external-provisioner with the EBS CSI driver (when installed);
7. the attach/detach controller (below);
8. each node's kubelet (below): mounts, writes, terminations.

The only randomness is `World.rng` (`random.Random(seed)`) — operation durations and node choices —
and moto's identifiers, which are seeded from the same seed.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from unittest import mock

import boto3
import botocore.endpoint
import botocore.session
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ec2.models import ec2_backends
from moto.moto_api._internal import mock_random

from gp3migrate.checks import aws_clients
from gp3migrate.sim import durations
from gp3migrate.sim import kube as k8s
from gp3migrate.sim.clock import TICK_SECONDS, BotocoreTime
from gp3migrate.sim.ebs import Ebs, driver_policy_allows
from gp3migrate.sim.kube import (
    CSI_DRIVER,
    DEFAULT_CLASS,
    IN_TREE_PLUGIN,
    ZONE_LABEL,
    Cluster,
    Event,
    autoscalers,
    gitops,
    helm,
)
from gp3migrate.sim.kube.cluster_state import Node
from gp3migrate.sim.kube.node_stage import DiskFacts, Mount, mount_request, stage_problem
from gp3migrate.sim.kube_api import FakeAppsV1Api, FakeCoreV1Api, FakeCustomObjectsApi

# In ticks, from the table of gp3migrate/sim/durations.py (each entry's source there).
ATTACH_TICKS = durations.tick_range(durations.VOLUME_ATTACH)  # AttachVolume until the volume is attached
DETACH_TICKS = durations.tick_range(durations.VOLUME_DETACH)  # from the pod being gone to the volume detached
GRACE_TICKS = durations.tick_range(durations.POD_TERMINATION)  # a deleted pod keeps running (and writing)
AMI = "ami-12c6146b"  # any image id: moto does not validate it (EC2_ENABLE_AMI_VALIDATION is off)
SEED_MANAGER = "kubectl-client-side-apply"  # how the seeded objects came to be (kubectl apply)
USER_AGENT_MANAGER = "OpenAPI-Generator"  # the kubernetes Python client's default field manager
# botocore's endpoint module, whose `time.sleep` is the retry sleep (clock.BotocoreTime).
_ENDPOINT: Any = botocore.endpoint


@functools.cache
def _ec2_clients(region: str) -> tuple[Any, Any]:
    """The world's own EC2 client and the one it hands to code under test, made once per region: a
    botocore client takes tens of milliseconds to build. They are made inside the first world, so
    they carry its fake credentials; moto answers them whenever a world is open."""
    session = boto3.session.Session(botocore_session=botocore.session.get_session(), region_name=region)
    # The one handed to the program carries the program's retry configuration (gp3migrate/checks/
    # aws_clients.py), so a throttled call meets the retries a real run has.
    return session.client("ec2"), aws_clients.client("ec2", region, session=session)


@dataclass(frozen=True)
class Write:
    """An acknowledged write: a running pod appended `record` to the volume it had mounted."""

    tick: int
    namespace: str
    claim: str
    pod: str
    record: str
    volume_id: str


@dataclass
class _PodRuntime:
    """What a kubelet knows of its pod: the volume mounted for each claim, how each volume was
    mounted, when it will be gone."""

    mounted: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, Mount] = field(default_factory=dict)  # by volume id
    gone_at: int | None = None


class World:
    """EBS (moto) plus a Kubernetes cluster's storage controllers and workloads, in ticks."""

    def __init__(
        self,
        *,
        seed: int,
        region: str,
        cluster_name: str,
        account: str = "123456789012",
        driver_policy: Literal["v1", "v2"] = "v1",
    ):
        self.seed = seed
        self.region = region
        self.cluster_name = cluster_name
        self.account = account
        self.rng = random.Random(seed)
        self.ticks = 0
        # Fake credentials and moto's account, for the world and any boto3 client code under test makes.
        self._env = mock.patch.dict(
            os.environ,
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_SECURITY_TOKEN": "testing",
                "AWS_DEFAULT_REGION": region,
                "MOTO_ACCOUNT_ID": account,
                # Nodes run a made-up image; loading moto's AMI catalogue would only cost time.
                "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            },
        )
        self._env.start()
        os.environ.pop("AWS_PROFILE", None)
        self._mock = mock_aws()
        self._mock.start()
        mock_random.seed(seed)  # moto's resource ids (vol-…, snap-…, i-…) follow the seed too
        self._own_ec2, self._ec2 = _ec2_clients(region)
        self.ebs = Ebs(
            ec2=self._own_ec2, backend=lambda: ec2_backends[account][region], rng=self.rng, now=lambda: self.ticks
        )
        events = self._ec2.meta.events
        events.register("before-parameter-build.ec2", self.ebs.before_call, unique_id="gp3migrate-sim-before")
        events.register("after-call.ec2", self.ebs.after_call, unique_id="gp3migrate-sim-after")
        events.register_first("before-send.ec2", self.ebs.before_send, unique_id="gp3migrate-sim-throttle")
        # botocore's retry sleeps (EC2 throttling) pass on this world's clock.
        self._endpoint_time = _ENDPOINT.time
        _ENDPOINT.time = BotocoreTime(self)
        self.kube = Cluster(lambda: self.ticks)
        # AmazonEBSCSIDriverPolicy ("v1") or AmazonEBSCSIDriverPolicyV2 ("v2") on the driver's role.
        self.driver_policy: str = driver_policy
        # CSI migration of kubernetes.io/aws-ebs (on in every EKS >= 1.23).
        self.csi_migration = True
        self.nodes: dict[str, Node] = {}
        self.installed: dict[str, Any] = {
            "driver": None,
            "snapshot_crds": False,
            "snapshot_controller": False,
            "snapshotter_sidecar": False,  # the driver's csi-snapshotter (install_ebs_csi_driver)
        }
        # The role the driver's ServiceAccount names (IRSA) and the KMS keys it may use
        # (gp3migrate/sim/driver_iam.py); the keys the world's volumes are encrypted with.
        self.driver_role_arn = f"arn:aws:iam::{account}:role/{cluster_name}-ebs-csi-driver"
        self.driver_kms_keys: set[str] = set()
        self.kms_keys: set[str] = set()
        self.writes: list[Write] = []
        self.events: list[Event] = []
        self.api_calls: Counter[str] = Counter()
        self._operators: dict[tuple[str, str, str], tuple[str, int]] = {}
        # The GitOps owners' git (kube/gitops.py git_key -> manifests), the ScaledObjects whose
        # trigger is active, and the Helm releases' rendered manifests ((namespace, release) -> list).
        self.git: dict[str, list[dict[str, Any]]] = {}
        self.keda_active: set[tuple[str, str]] = set()
        self.helm_releases: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._pods: dict[str, _PodRuntime] = {}  # by pod uid
        # What each in-tree PV said about its volume (kube/node_stage.py), by volume id.
        self.disks: dict[str, DiskFacts] = {}
        self._attaching: dict[tuple[str, str], int] = {}  # (volume, node) -> tick it attaches
        self._attached: dict[str, str] = {}  # volume -> node, as this world's nodes attached them
        self._detaching: dict[str, int] = {}  # volume -> tick it detaches
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop moto and restore the environment."""
        if not self._closed:
            self._closed = True
            self._ec2.meta.events.unregister("before-parameter-build.ec2", unique_id="gp3migrate-sim-before")
            self._ec2.meta.events.unregister("after-call.ec2", unique_id="gp3migrate-sim-after")
            self._ec2.meta.events.unregister("before-send.ec2", unique_id="gp3migrate-sim-throttle")
            _ENDPOINT.time = self._endpoint_time
            if self.ebs.throttled:
                # The client's standard-mode retry quota (botocore retries/quota.py) spent on
                # throttles would carry over into the next world's: give it a fresh client.
                _ec2_clients.cache_clear()
            self._mock.stop()
            self._env.stop()

    def __enter__(self) -> World:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- time -------------------------------------------------------------------------------------

    def clock(self) -> float:
        return float(self.ticks * TICK_SECONDS)

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass (at least one tick)."""
        self.tick(max(1, math.ceil(seconds / TICK_SECONDS)))

    def tick(self, n: int = 1) -> None:
        """Advance every controller, every pod's writes and EBS, n times."""
        for _ in range(n):
            self.ticks += 1
            self.ebs.advance()
            self._operators_reset_replicas()
            k8s.argocd_controller(self)
            k8s.flux_controller(self)
            k8s.keda_controller(self)
            k8s.hpa_controller(self)
            k8s.garbage_collector(self)
            k8s.deployment_controller(self)
            k8s.statefulset_controller(self)
            k8s.scheduler(self)
            k8s.pv_controller(self)
            k8s.pvc_protection(self)
            k8s.pv_protection(self)
            if self.installed["snapshot_crds"] and self.installed["snapshot_controller"]:
                k8s.snapshot_controller(self)
            driver = self.installed["driver"]
            if driver and self.installed["snapshotter_sidecar"] and self.installed["snapshot_crds"]:
                k8s.snapshotter_sidecar(self)
            if driver:
                k8s.external_provisioner(self)
            self._attach_detach()
            self._kubelets()

    # -- clients for code under test -----------------------------------------------------------------

    def ec2(self) -> Any:
        """A boto3 EC2 client on this world's moto backend (faults armed with `ebs.fail_next` apply)."""
        return self._ec2

    def core_api(self) -> Any:
        return FakeCoreV1Api(self)

    def apps_api(self) -> Any:
        return FakeAppsV1Api(self)

    def custom_api(self) -> Any:
        return FakeCustomObjectsApi(self)

    def kms(self) -> Any:
        from gp3migrate.sim.driver_iam import SimKms

        return SimKms(lambda: self.kms_keys)

    def iam(self) -> Any:
        from gp3migrate.sim.driver_iam import SimIam

        return SimIam(lambda: self.driver_role_arn, lambda: self.driver_kms_keys)

    def mutating_api_calls(self) -> int:
        """How many of `api_calls` changed something (reads are counted in `api_calls` too)."""
        return sum(n for method, n in self.api_calls.items() if not method.startswith(("read_", "list_")))

    # -- events -----------------------------------------------------------------------------------

    def event(self, kind: str, namespace: str, name: str, reason: str, message: str) -> None:
        """Record an Event; a repeat of an object's last event only counts up (the event recorder's
        aggregation), so controllers retrying every tick do not flood the list."""
        for previous in reversed(self.events):
            if (previous.kind, previous.namespace, previous.name) == (kind, namespace, name):
                if (previous.reason, previous.message) == (reason, message):
                    previous.count += 1
                    return
                break
        self.events.append(Event(self.ticks, kind, namespace, name, reason, message))

    def events_for(self, kind: str, namespace: str, name: str) -> list[Event]:
        return [e for e in self.events if (e.kind, e.namespace, e.name) == (kind, namespace, name)]

    # -- seeding ----------------------------------------------------------------------------------

    def add_node(self, name: str, zone: str) -> None:
        """A worker node: an EC2 instance in `zone` and its Node object."""
        reservation = self._own_ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", Placement={"AvailabilityZone": zone}
        )
        instance_id = str(reservation["Instances"][0]["InstanceId"])
        self.nodes[name] = Node(name, zone, instance_id)
        self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"kubernetes.io/hostname": name, ZONE_LABEL: zone, "topology.ebs.csi.aws.com/zone": zone},
                },
                "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
            },
            "kubelet",
        )

    def add_storage_class(self, manifest: dict[str, Any], manager: str = "eks") -> None:
        """A StorageClass as something else made it (EKS made `gp2`: it is not the program's)."""
        self.kube.create(manifest, manager=manager)

    def install_ebs_csi_driver(
        self, *, how: Literal["addon", "helm", "manifests"], version: str, snapshotter_sidecar: bool = True
    ) -> None:
        """The driver's controller (provisioner, attacher, csi-snapshotter) and node plugin run.

        The controller is also an object, what a `driverInstall: present` check reads: Deployment
        kube-system/ebs-csi-controller with the chart's container names, csi-snapshotter only with
        the sidecar (aws-ebs-csi-driver chart 2.64.0 templates/controller.yaml). Its pods are not
        modelled (replicas 0): the driver's rules in kube/provisioner.py and kube/snapshots.py stand
        for them. Installing again replaces its containers."""
        self.installed["driver"] = {"how": how, "version": version}
        self.installed["snapshotter_sidecar"] = snapshotter_sidecar
        names = ["ebs-plugin", "csi-provisioner", "csi-attacher", *(["csi-snapshotter"] if snapshotter_sidecar else [])]
        containers = [{"name": n, "image": f"public.ecr.aws/ebs-csi-driver/{n}:{version}"} for n in names]
        labels = {"app": "ebs-csi-controller"}
        if self.kube.peek("ServiceAccount", "kube-system", "ebs-csi-controller-sa") is None:
            # IRSA: the role the driver runs with (aws-ebs-csi-driver chart
            # `controller.serviceAccount.annotations`; the add-on's serviceAccountRoleArn).
            self.kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {
                        "name": "ebs-csi-controller-sa",
                        "namespace": "kube-system",
                        "annotations": {"eks.amazonaws.com/role-arn": self.driver_role_arn},
                    },
                },
                manager=SEED_MANAGER,
            )
        if self.kube.peek("Deployment", "kube-system", "ebs-csi-controller") is not None:
            body = {"spec": {"template": {"spec": {"containers": containers}}}}
            self.kube.patch("apps/v1", "Deployment", "kube-system", "ebs-csi-controller", body, SEED_MANAGER)
            return
        self.kube.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "ebs-csi-controller", "namespace": "kube-system", "labels": labels},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"serviceAccountName": "ebs-csi-controller-sa", "containers": containers},
                    },
                },
            },
            manager=SEED_MANAGER,
        )

    def install_snapshot_api(self, *, crds: bool = True, controller: bool = True) -> None:
        """The snapshot.storage.k8s.io/v1 CRDs and the snapshot-controller; removing the CRDs removes
        every object of their kinds."""
        self.installed["snapshot_crds"] = crds
        self.installed["snapshot_controller"] = controller
        self.kube.crds_installed = crds
        if not crds:
            self.kube.drop_kinds(k8s.SNAPSHOT_KINDS)

    def add_in_tree_volume(
        self,
        *,
        namespace: str,
        claim: str,
        pv: str,
        size_gib: int,
        zone: str,
        fs_type: str = "ext4",
        volume_type: str = "gp2",
        storage_class: str = "gp2",
        access_modes: tuple[str, ...] = ("ReadWriteOnce",),
        volume_mode: str = "Filesystem",
        reclaim_policy: str = "Delete",
        volume_id_format: str = "aws://{zone}/{id}",
        csi_migrated: bool = True,
        encrypted: bool = False,
        kms_key_id: str | None = None,
        partition: int = 0,
        read_only: bool = False,
        mount_options: tuple[str, ...] = (),
    ) -> str:
        """A volume the in-tree aws-ebs provisioner made, with its PV and bound claim; returns its id.

        `partition` is where the volume's filesystem lives (0: the whole disk), `read_only` and
        `mount_options` what its PV asks of every mount; the PV says all three
        (`awsElasticBlockStore.partition|readOnly`, `spec.mountOptions`) and the world keeps them as
        the volume's facts (kube/node_stage.py), which a PV serving it later must match.

        Tags as the in-tree provisioner set them (aws-ebs-csi-driver pkg/driver/constants.go PVCNameTag
        etc.; the legacy cloud provider's cluster tags); a filesystem volume holds `fs_type` already.
        `csi_migrated` is the PV's migrated-to annotation as found; while `csi_migration` is on the PV
        controller adds it to PVs the in-tree plugin provisioned."""
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
            volume_type=volume_type,
            tags=tags,
            encrypted=encrypted,
            kms_key_id=kms_key_id,
            filesystem=fs_type if volume_mode == "Filesystem" else None,
        )
        migrated = {k8s.MIGRATED_TO: CSI_DRIVER} if csi_migrated else {}
        created = self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": claim,
                    "namespace": namespace,
                    "annotations": {
                        k8s.BIND_COMPLETED: "yes",
                        k8s.BOUND_BY_CONTROLLER: "yes",
                        k8s.STORAGE_PROVISIONER: IN_TREE_PLUGIN,
                        k8s.BETA_STORAGE_PROVISIONER: IN_TREE_PLUGIN,
                        **migrated,
                    },
                },
                "spec": {
                    "accessModes": list(access_modes),
                    "volumeMode": volume_mode,
                    "storageClassName": storage_class,
                    "resources": {"requests": {"storage": f"{size_gib}Gi"}},
                    "volumeName": pv,
                },
            },
            manager=SEED_MANAGER,
        )
        self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": pv,
                    "labels": {ZONE_LABEL: zone, "topology.kubernetes.io/region": self.region},
                    "annotations": {k8s.PROVISIONED_BY: IN_TREE_PLUGIN, **migrated},
                },
                "spec": {
                    "awsElasticBlockStore": {
                        "volumeID": volume_id_format.format(zone=zone, id=volume_id),
                        **({"fsType": fs_type} if volume_mode == "Filesystem" else {}),
                        **({"partition": partition} if partition else {}),
                        **({"readOnly": True} if read_only else {}),
                    },
                    **({"mountOptions": list(mount_options)} if mount_options else {}),
                    "capacity": {"storage": f"{size_gib}Gi"},
                    "accessModes": list(access_modes),
                    "volumeMode": volume_mode,
                    "storageClassName": storage_class,
                    "persistentVolumeReclaimPolicy": reclaim_policy,
                    "claimRef": k8s.object_reference(created),
                    "nodeAffinity": {
                        "required": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [zone]}]}
                            ]
                        }
                    },
                },
            },
            k8s.CONTROLLER_MANAGER,
        )
        self.disks[volume_id] = DiskFacts(partition, read_only, tuple(mount_options))
        k8s.pv_controller(self)  # the claim is bound as the world starts, not a tick later
        return volume_id

    def disk_facts(self, volume_id: str) -> DiskFacts:
        """The volume's facts, or those of the volume it was restored from: a snapshot copies every
        block, the partition table too (EBS CreateSnapshot is of the whole device)."""
        seen = {volume_id}
        current: str | None = volume_id
        while current is not None:
            if current in self.disks:
                return self.disks[current]
            current = self.ebs.restored_from(current)
            if current in seen:
                break
            seen.add(str(current))
        return DiskFacts()

    def mounts_of_running_pods(self) -> list[tuple[str, str, str, Mount]]:
        """(namespace, pod, volume id, how it is mounted) for every mounted volume of every pod."""
        out = []
        for pod in self.kube.view("Pod"):
            runtime = self._pods.get(pod["metadata"]["uid"])
            for volume_id, mounted in sorted((runtime.mounts if runtime else {}).items()):
                out.append((pod["metadata"]["namespace"], pod["metadata"]["name"], volume_id, mounted))
        return out

    def add_workload(
        self,
        *,
        kind: Literal["Deployment", "StatefulSet"],
        namespace: str,
        name: str,
        replicas: int,
        claims: list[str] | None = None,
        claim_template: str | None = None,
        owner: str | None = None,
        claim_templates: list[str] | None = None,
    ) -> None:
        """A Deployment whose every pod mounts `claims`, or a StatefulSet whose pod <name>-<i> mounts
        <template>-<name>-<i> for each of `claim_templates` (or the one `claim_template`), in that
        order (each volumeClaimTemplate copies its claim 0's spec, so seed those).
        `owner` names an operator's custom resource that sets spec.replicas back to `replicas` every tick."""
        labels = {"app": name}
        spec: dict[str, Any] = {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "app", "image": "public.ecr.aws/docker/library/busybox:stable"}],
                    "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims or []],
                },
            },
        }
        if kind == "StatefulSet":
            wanted = ("accessModes", "resources", "storageClassName", "volumeMode")
            spec["serviceName"] = name
            spec["volumeClaimTemplates"] = []
            for template in claim_templates or [claim_template or "data"]:
                first = self.kube.peek("PersistentVolumeClaim", namespace, f"{template}-{name}-0")
                if first is None:
                    raise ValueError(f"seed the claim {template}-{name}-0 first: the volumeClaimTemplate copies it")
                spec["volumeClaimTemplates"].append(
                    {"metadata": {"name": template}, "spec": {k: copy.deepcopy(first["spec"][k]) for k in wanted}}
                )
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if owner is not None:
            metadata["ownerReferences"] = [
                {
                    "apiVersion": "operator.example.com/v1",
                    "kind": "Operated",
                    "name": owner,
                    "uid": f"owner-{owner}",
                    "controller": True,
                }
            ]
            self._operators[(kind, namespace, name)] = (owner, replicas)
        self.kube.create(
            {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}, manager=owner or SEED_MANAGER
        )

    def repoint_workload(self, namespace: str, name: str, old_claim: str, new_claim: str) -> None:
        """What a user does after a renaming cutover: the pod template names the new claim."""
        for kind in ("Deployment", "StatefulSet"):
            workload = self.kube.peek(kind, namespace, name)
            if workload is None:
                continue
            volumes = copy.deepcopy(workload["spec"]["template"]["spec"].get("volumes") or [])
            for volume in volumes:
                if (volume.get("persistentVolumeClaim") or {}).get("claimName") == old_claim:
                    volume["persistentVolumeClaim"]["claimName"] = new_claim
            self.kube.patch(
                "apps/v1", kind, namespace, name, {"spec": {"template": {"spec": {"volumes": volumes}}}}, "kubectl-edit"
            )

    def scale_through_operator(self, namespace: str, name: str, replicas: int) -> None:
        """What a user does for `quiesce: manual` on an operator's workload: edit the operator's own
        resource, which then reconciles the workload's replicas (a kubectl scale would be undone)."""
        for key, (owner, _) in list(self._operators.items()):
            if key[1:] == (namespace, name):
                self._operators[key] = (owner, replicas)

    def scale_workload(self, namespace: str, name: str, replicas: int) -> None:
        """`kubectl scale` (the scale subresource)."""
        for kind in ("Deployment", "StatefulSet"):
            if self.kube.peek(kind, namespace, name) is not None:
                self.kube.patch("apps/v1", kind, namespace, name, {"spec": {"replicas": replicas}}, "kubectl")

    # -- the cluster's other owners (issue 22) ------------------------------------------------------

    def _manifests(self, objects: list[tuple[str, str, str]], in_tree_class: str | None) -> list[dict[str, Any]]:
        found = []
        for kind, namespace, name in objects:
            live = self.kube.peek(kind, namespace, name)
            if live is None:
                raise ValueError(f"seed {kind} {namespace}/{name} first: its manifest is taken from it")
            found.append(gitops.manifest_of(live, in_tree_class=in_tree_class))
        return found

    def _mark(self, objects: list[tuple[str, str, str]], metadata: dict[str, Any], manager: str) -> None:
        """Put an owner's tracking metadata on objects it created (as it would have at install)."""
        for kind, namespace, name in objects:
            live = self.kube.peek(kind, namespace, name)
            if live is not None:
                self.kube.patch(live["apiVersion"], kind, namespace, name, {"metadata": metadata}, manager)

    def add_argocd_application(
        self,
        name: str,
        objects: list[tuple[str, str, str]],
        *,
        automated: bool = True,
        self_heal: bool = True,
        skip_reconcile: bool = False,
        in_tree_class: str = "gp2",
    ) -> None:
        """An Argo CD Application (namespace argocd) whose git holds `objects` as they run now (a
        claim with `in_tree_class` and no volumeName, as a chart writes it), already synced once;
        each object carries its tracking-id annotation."""
        source = {"repoURL": "https://git.example.com/apps.git", "path": name}
        self.git[gitops.git_key(source)] = manifests = self._manifests(objects, in_tree_class)
        for manifest, key in zip(manifests, objects, strict=True):
            self._mark([key], gitops.argocd_tracking(name, manifest), gitops.ARGOCD_MANAGER)
        policy: dict[str, Any] = {"automated": {"selfHeal": self_heal, "prune": False}} if automated else {}
        annotations = {gitops.SKIP_RECONCILE: "true"} if skip_reconcile else {}
        self.kube.create(
            {
                "apiVersion": gitops.ARGOCD_API,
                "kind": "Application",
                "metadata": {"name": name, "namespace": gitops.ARGOCD_NAMESPACE, "annotations": annotations},
                "spec": {"source": source, "destination": {"namespace": objects[0][1]}, "syncPolicy": policy},
                "status": {"operationState": {"phase": "Succeeded", "finishedAt": self.ticks}},
            },
            SEED_MANAGER,
        )

    def add_flux_kustomization(
        self,
        name: str,
        objects: list[tuple[str, str, str]],
        *,
        interval: str = "1m",
        suspend: bool = False,
        force: bool = False,
        in_tree_class: str = "gp2",
    ) -> None:
        """A Flux Kustomization (namespace flux-system) whose git holds `objects` as they run now;
        each object carries the kustomize-controller's labels."""
        kustomization = {
            "apiVersion": gitops.FLUX_API,
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": gitops.FLUX_NAMESPACE},
            "spec": {
                "interval": interval,
                "path": f"./{name}",
                "sourceRef": {"kind": "GitRepository", "name": "apps"},
                "prune": False,
                "suspend": suspend,
                "force": force,
            },
        }
        self.git[gitops.git_key({"name": "apps", "path": f"./{name}"})] = self._manifests(objects, in_tree_class)
        self._mark(objects, gitops.flux_tracking(kustomization), gitops.FLUX_MANAGER)
        self.kube.create(kustomization, SEED_MANAGER)

    def add_helm_release(
        self, release: str, namespace: str, objects: list[tuple[str, str, str]], *, in_tree_class: str = "gp2"
    ) -> None:
        """A Helm release that installed `objects` (they carry its ownership metadata); its chart
        renders them as they run now (a claim with `in_tree_class`, no volumeName)."""
        owned = helm.release_metadata(release, namespace)
        self._mark(objects, owned, helm.HELM_MANAGER)
        self.helm_releases[(namespace, release)] = self._manifests(objects, in_tree_class)

    def helm_upgrade(self, release: str, namespace: str) -> list[str]:
        """The user runs `helm upgrade` of the release with its chart unchanged (kube/helm.py)."""
        manifests = self.helm_releases[(namespace, release)]
        return k8s.helm_upgrade(self, release=release, namespace=namespace, manifests=manifests)

    def add_scaled_object(self, namespace: str, name: str, target: str, *, paused_replicas: int | None = None) -> None:
        """A KEDA ScaledObject scaling Deployment `target` (minReplicaCount 0)."""
        annotations = {autoscalers.PAUSED_REPLICAS: str(paused_replicas)} if paused_replicas is not None else {}
        self.kube.create(
            {
                "apiVersion": autoscalers.KEDA_API,
                "kind": "ScaledObject",
                "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
                "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 0, "maxReplicaCount": 5},
            },
            SEED_MANAGER,
        )

    def add_hpa(
        self, namespace: str, name: str, target: str, kind: str = "Deployment", *, min_replicas: int = 1
    ) -> None:
        """A HorizontalPodAutoscaler (autoscaling/v2) on `target`, maxReplicas 5."""
        self.kube.create(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
                    "minReplicas": min_replicas,
                    "maxReplicas": 5,
                },
            },
            SEED_MANAGER,
        )

    def scale_up_once(self, namespace: str, name: str, replicas: int, who: str = "kubectl") -> None:
        """A one-off scale-up by a person or a controller (`who` is the field manager): the fault a
        scenario injects at a step boundary of the window."""
        for kind in ("Deployment", "StatefulSet"):
            if self.kube.peek(kind, namespace, name) is not None:
                self.kube.patch("apps/v1", kind, namespace, name, {"spec": {"replicas": replicas}}, who)
                self.event(kind, namespace, name, "ScaledUp", f"{who} set replicas to {replicas}")

    # -- observation ------------------------------------------------------------------------------

    def volume_content(self, volume_id: str) -> list[str]:
        """The records on a volume ([] for one that does not exist (any more))."""
        return list(self.ebs.content.get(volume_id, []))

    def claim_volume(self, namespace: str, claim: str) -> str | None:
        """The EBS volume the claim is bound to now, through its PV."""
        found = self.kube.peek("PersistentVolumeClaim", namespace, claim)
        if found is None or found["status"].get("phase") != "Bound":
            return None
        pv = self.kube.peek("PersistentVolume", "", found["spec"].get("volumeName", ""))
        return k8s.pv_volume_id(pv) if pv is not None else None

    def running_pods(self, namespace: str, workload: str) -> list[str]:
        """The workload's pods that run and are not being deleted."""
        return sorted(p["metadata"]["name"] for p in self._workload_pods(namespace, workload) if k8s.pod_ready(p))

    def fingerprint(self) -> tuple[int, int, int]:
        """Equal between two moments when nothing the per-step invariants read has changed: every
        object write or removal in the store, every tick (controllers, kubelets' mounts and writes,
        EBS progress) and every change of the EBS model's volumes, snapshots, records and
        filesystems counts. Most steps of a large `up` change none of it (a resource kept as it
        is), so the per-step checks are skipped there (invariants.py `after_step`)."""
        return (self.kube.change_count, self.ticks, self.ebs.version)

    def default_storage_classes(self) -> list[str]:
        return [
            c["metadata"]["name"]
            for c in self.kube.view("StorageClass")
            if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
        ]

    def history(self) -> dict[str, Any]:
        """Everything that happened and is, without moto's wall-clock fields: equal for equal seeds."""
        volumes = {}
        for volume in sorted(self._own_ec2.describe_volumes()["Volumes"], key=lambda v: v["VolumeId"]):
            volumes[volume["VolumeId"]] = {
                "state": volume["State"],
                "type": volume["VolumeType"],
                "size": volume["Size"],
                "zone": volume["AvailabilityZone"],
                "attachments": [a["InstanceId"] for a in volume.get("Attachments") or []],
                "tags": sorted((t["Key"], t["Value"]) for t in volume.get("Tags") or []),
                "content": self.volume_content(volume["VolumeId"]),
            }
        snapshots = {
            s: {"state": self.ebs.snapshot_state(s), "content": list(c)}
            for s, c in sorted(self.ebs.snapshot_content.items())
        }
        objects = {
            f"{kind}/{namespace}/{name}": copy.deepcopy(self.kube.peek(kind, namespace, name))
            for kind in sorted({*k8s.KINDS})
            for namespace, name in self.kube.names(kind)
        }
        return {
            "ticks": self.ticks,
            "writes": list(self.writes),
            "events": [copy.copy(e) for e in self.events],
            "objects": objects,
            "volumes": volumes,
            "snapshots": snapshots,
        }

    # -- node side: operators, attach/detach, kubelets --------------------------------------------------

    def _workload_pods(self, namespace: str, workload: str) -> list[dict[str, Any]]:
        pods = []
        for pod in self.kube.view("Pod", namespace):
            for ref in pod["metadata"].get("ownerReferences") or []:
                if ref["kind"] == "StatefulSet" and ref["name"] == workload:
                    pods.append(pod)
                elif ref["kind"] == "ReplicaSet":
                    replica_set = self.kube.peek("ReplicaSet", namespace, ref["name"])
                    owners = (replica_set or {}).get("metadata", {}).get("ownerReferences") or []
                    if any(o["kind"] == "Deployment" and o["name"] == workload for o in owners):
                        pods.append(pod)
        return pods

    def _operators_reset_replicas(self) -> None:
        """An operator reconciles the workload it owns back to its own replica count each tick."""
        for (kind, namespace, name), (owner, replicas) in sorted(self._operators.items()):
            workload = self.kube.peek(kind, namespace, name)
            if workload is not None and workload["spec"].get("replicas") != replicas:
                with self.kube.edit(kind, namespace, name, owner) as changed:
                    changed["spec"]["replicas"] = replicas

    def _pod_volumes(self, pod: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
        """(claim, its bound PV or None) for each claim the pod mounts."""
        out = []
        for claim_name in k8s.pod_claims(pod):
            claim = self.kube.peek("PersistentVolumeClaim", pod["metadata"]["namespace"], claim_name)
            pv = None
            if claim is not None and claim["status"].get("phase") == "Bound":
                pv = self.kube.peek("PersistentVolume", "", claim["spec"].get("volumeName", ""))
            out.append((claim_name, pv))
        return out

    def _driver_problem(self, pv: dict[str, Any], volume_id: str, action: str | None) -> str:
        """Why the CSI driver cannot serve this PV's volume (and do `action` on it under its IAM
        policy), or "": CSI and migrated PVs go through it, other in-tree PVs do not."""
        if not k8s.needs_csi_driver(pv):
            return ""
        if not self.installed["driver"]:
            return f"driver name {CSI_DRIVER} not found in the list of registered CSI drivers"
        if action and not driver_policy_allows(self.driver_policy, action, self.ebs.tags(volume_id)):
            return f"rpc error: code = Internal desc = UnauthorizedOperation: not authorized: ec2:{action}"
        return ""

    def _attach_detach(self) -> None:
        """pkg/controller/volume/attachdetach: a volume a scheduled pod uses is attached to the pod's node
        (over ATTACH_TICKS, through the CSI attacher for CSI and migrated PVs; a volume attached to
        another node is a Multi-Attach error); a volume no pod on its node uses any more, and the node
        no longer has mounted (node.status.volumesInUse), is detached DETACH_TICKS later."""
        in_use: set[tuple[str, str]] = set()
        for pod in self.kube.view("Pod"):
            node = pod["spec"].get("nodeName")
            if not node:
                continue
            runtime = self._pods.get(pod["metadata"]["uid"])
            in_use.update((volume, node) for volume in (runtime.mounted.values() if runtime else []))
            for _, pv in self._pod_volumes(pod):
                volume_id = k8s.pv_volume_id(pv) if pv is not None else None
                if pv is None or volume_id is None or not self.ebs.exists(volume_id):
                    continue
                in_use.add((volume_id, node))
                if not k8s.deleting(pod):
                    self._attach(pod, pv, volume_id, node)
        for volume_id, node in sorted(self._attached.items()):
            if (volume_id, node) in in_use:
                self._detaching.pop(volume_id, None)
                continue
            due = self._detaching.setdefault(volume_id, self.ticks + self.rng.randint(*DETACH_TICKS))
            if self.ticks < due:
                continue
            pv = next((p for p in self.kube.view("PersistentVolume") if k8s.pv_volume_id(p) == volume_id), None)
            if not self.ebs.exists(volume_id):
                del self._attached[volume_id], self._detaching[volume_id]
                continue
            problem = self._driver_problem(pv, volume_id, "DetachVolume") if pv is not None else ""
            try:
                if problem:
                    raise ClientError({"Error": {"Code": "DetachFailed", "Message": problem}}, "DetachVolume")
                self.ebs.detach(volume_id)
            except ClientError as err:
                self.event("Node", "", node, "FailedDetachVolume", f"DetachVolume.Detach failed for {volume_id}: {err}")
                continue
            del self._attached[volume_id]
            del self._detaching[volume_id]

    def _attach(self, pod: dict[str, Any], pv: dict[str, Any], volume_id: str, node: str) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        holder = self._attached.get(volume_id)
        if holder == node:
            return
        if holder is not None or self.ebs.attached_to(volume_id):
            self.event(
                "Pod",
                namespace,
                name,
                "FailedAttachVolume",
                f'Multi-Attach error for volume "{pv["metadata"]["name"]}" Volume is already exclusively attached '
                "to one node and can't be attached to another",
            )
            return
        problem = self._driver_problem(pv, volume_id, "AttachVolume")
        if problem:
            self.event("Pod", namespace, name, "FailedAttachVolume", f"AttachVolume.Attach failed: {problem}")
            return
        due = self._attaching.setdefault((volume_id, node), self.ticks + self.rng.randint(*ATTACH_TICKS))
        if self.ticks < due:
            return
        del self._attaching[(volume_id, node)]
        try:
            self.ebs.attach(volume_id, self.nodes[node].instance_id)
        except ClientError as err:
            self.event("Pod", namespace, name, "FailedAttachVolume", f"AttachVolume.Attach failed: {err}")
            return
        self._attached[volume_id] = node

    def _kubelets(self) -> None:
        """Each node's kubelet: a pod starts once every volume is attached to its node and mounted
        (the driver's NodeStage rules for fsType and partition, kube/node_stage.py; MountDevice
        formats only a blank device, mount-utils formatAndMountSensitive: a filesystem other than the
        PV's fsType fails the mount); a running pod writes one record per tick to each volume
        mounted read-write (a write to a read-only mount fails: EROFS, nothing acknowledged); a deleted
        pod keeps running and writing for its grace period, then is gone (pkg/kubelet: the pod's
        containers stop, then the API object is removed)."""
        for namespace, name in self.kube.names("Pod"):
            pod = self.kube.peek("Pod", namespace, name)
            if pod is None or not pod["spec"].get("nodeName"):
                continue
            runtime = self._pods.setdefault(pod["metadata"]["uid"], _PodRuntime())
            if k8s.deleting(pod):
                if runtime.gone_at is None:
                    runtime.gone_at = self.ticks + self.rng.randint(*GRACE_TICKS)
                if self.ticks >= runtime.gone_at:
                    del self._pods[pod["metadata"]["uid"]]
                    self.kube.finish_pod(namespace, name)
                    continue
            if runtime.mounted:
                self._write(pod, runtime)
            elif not k8s.deleting(pod):
                self._mount(pod, runtime)

    def _mount(self, pod: dict[str, Any], runtime: _PodRuntime) -> None:
        namespace, name, node = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["spec"]["nodeName"]
        mounted: dict[str, str] = {}
        mounts: dict[str, Mount] = {}
        for claim, pv in self._pod_volumes(pod):
            volume_id = k8s.pv_volume_id(pv) if pv is not None else None
            if pv is None or volume_id is None or self._attached.get(volume_id) != node:
                return  # ContainerCreating: waiting for the volume to be attached
            problem = self._driver_problem(pv, volume_id, None)
            filesystem = (pv.get("spec") or {}).get("volumeMode", "Filesystem") == "Filesystem"
            if not problem and filesystem:
                # node.go NodeStageVolume: fsType, then the partition's device (kube/node_stage.py).
                problem = stage_problem(pv, self.disk_facts(volume_id), through_driver=k8s.needs_csi_driver(pv))
            if not problem and filesystem:
                wanted, found = k8s.pv_fs_type(pv), self.ebs.filesystem.get(volume_id)
                if found is None:
                    self.ebs.make_filesystem(volume_id, wanted)  # formatAndMount: a blank device is formatted
                elif found != wanted:
                    problem = (
                        f'MountVolume.MountDevice failed for volume "{pv["metadata"]["name"]}" : failed to mount the '
                        f'volume as "{wanted}", it already contains {found}. Mount error: wrong fs type'
                    )
            if problem:
                self.event("Pod", namespace, name, "FailedMount", problem)
                return
            mounted[claim] = volume_id
            mounts[volume_id] = mount_request(pv)
        runtime.mounted = mounted
        runtime.mounts = mounts
        with self.kube.edit("Pod", namespace, name, k8s.KUBELET) as started:
            started["status"] = {
                "phase": "Running",
                "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            }
        self.event("Pod", namespace, name, "Started", "Started container app")

    def _write(self, pod: dict[str, Any], runtime: _PodRuntime) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for claim, volume_id in sorted(runtime.mounted.items()):
            if volume_id in runtime.mounts and runtime.mounts[volume_id].read_only:
                continue  # EROFS: the app's write fails, nothing is acknowledged
            record = f"{namespace}/{name}/{claim}@{self.ticks}"
            self.ebs.write(volume_id, record)
            self.writes.append(Write(self.ticks, namespace, claim, name, record, volume_id))
