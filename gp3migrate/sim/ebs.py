"""EBS in the simulation, on moto: moto keeps volumes, snapshots, tags and attachments; this adds
what moto lacks, so that code under test reading EC2 through boto3 sees the same world.

- Each volume's CONTENT is an ordered list of records; a write appends to it. A snapshot copies the
  content at the instant CreateSnapshot is called (EBS snapshots are point-in-time and
  crash-consistent: EC2 user guide "Amazon EBS snapshots"); a volume created from a snapshot starts
  with the snapshot's content and filesystem.
- The FILESYSTEM on a volume (None while blank): set by the first mount (node staging formats only a
  blank device: kubernetes/mount-utils `formatAndMountSensitive`), carried by snapshots.
- Snapshots are `pending` for a seeded number of ticks, then `completed` (moto completes them at
  once; the moto object's status is kept in step so DescribeSnapshots agrees).
- ModifyVolume (Elastic Volumes): `modifying` -> `optimizing` -> `completed` over ticks; one
  modification in flight per volume; at most four per rolling 24 hours; a type change to gp3 without
  IOPS/throughput falls back to 3,000 / 125 (EC2 user guide "Modify a volume"; shared/DESIGN.md
  Facts). moto applies modifications at once and always reports `completed`: the moto modification
  object is given this model's state so DescribeVolumesModifications agrees.
- A volume attaches to one instance, in its own zone; DeleteVolume fails while attached (EC2 API
  errors VolumeInUse, InvalidVolume.ZoneMismatch).
- At most 5 snapshots of one volume may be pending at once (EC2 API throttling docs, DESIGN Facts).
- EC2 throttles the program's calls (issue 24 item 5): per account and Region each API has its own
  token bucket, one token a request, refilled every second up to its size; a request with no token
  left fails with `RequestLimitExceeded` (EC2 developer guide, "Request throttling for the Amazon
  EC2 API", docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html: "each API is evaluated
  individually", DescribeHosts as the non-mutating example, 100 tokens refilled 20 a second). The
  buckets refill on the simulated clock. The refusal is an HTTP 503 response, as EC2 sends it, so
  botocore's retry handler sees it (legacy mode retries EC2's `RequestLimitExceeded` on 503:
  botocore `data/_retry.json` "ec2" `request_limit_exceeded`; standard and adaptive mode count it
  as throttling: `retries/standard.py` _THROTTLED_ERROR_CODES) and its retry sleep passes simulated
  time (gp3migrate/sim/clock.py `BotocoreTime`). Only the program's own client (`World.ec2()`, the
  gates) is counted; the driver's, the controllers' and pulumi-aws's calls are not.
- `fail_next(operation, code, message)` makes the next call of that EC2 operation fail once, whether
  the world makes it or code under test does through `World.ec2()`; what code under test creates,
  modifies or deletes through that client enters this model too (botocore event hooks).
- The runner's calls are authorized (issue 23 item 2): while `runner(policy)` is active, every EC2
  call the program's gates make through `World.ec2()` and every call the `aws:ebs/snapshot` provider
  makes (`as_runner=True`) becomes the IAM request AWS would authorize (the ARN the Service
  Authorization Reference names for the action, the resource's tags as `ec2:ResourceTag/*`, the
  request's as `aws:RequestTag/*` and `aws:TagKeys`, `ec2:CreateAction` for tags at creation) and
  is evaluated against the stack's printed runner policy (gp3migrate/iam/policy_evaluation.py); a
  request it does not allow fails as EC2 fails it, `UnauthorizedOperation` (EC2 API reference,
  "Error codes": "You are not authorized to perform this operation"). The driver's and the
  world's own calls are the driver's role's, checked by `driver_policy_allows` instead.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import MockRawResponse
from moto.ec2.models.elastic_block_store import VolumeModification

from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings, project_values
from gp3migrate.iam import runner_policy
from gp3migrate.iam.policy_evaluation import Request, evaluate
from gp3migrate.sim import durations
from gp3migrate.sim.clock import DAY_TICKS, TICK_SECONDS
from gp3migrate.sim.program import runtime_config

MODIFICATIONS_PER_DAY = 4
PENDING_SNAPSHOTS_PER_VOLUME = 5
# gp3 limits and defaults (EBS volume types; DESIGN Facts: since September 2025).
GP3_BASE_IOPS, GP3_BASE_THROUGHPUT = 3000, 125
GP3_MAX_IOPS, GP3_MAX_THROUGHPUT = 80_000, 2000
GP3_IOPS_PER_GIB, GP3_MIBPS_PER_IOPS = 500, 0.25
# How long the simulated operations take, in ticks (drawn from the world's rng), from the table of
# gp3migrate/sim/durations.py (each entry's source there).
MODIFYING_TICKS = durations.tick_range(durations.MODIFY_MODIFYING)
OPTIMIZING_TICKS = durations.tick_range(durations.MODIFY_OPTIMIZING)


# Token buckets (size, refill per second) by kind of action, from the EC2 throttling page above: the
# non-mutating figures are its example's; the mutating and CreateSnapshot (resource-intensive) ones
# are its table's as issue 24 quotes it (the table was not in the excerpt read here).
NON_MUTATING_BUCKET = (100, 20.0)
MUTATING_BUCKET = (50, 5.0)
CREATE_SNAPSHOT_BUCKET = (100, 5.0)
THROTTLED_URL = "https://throttled.ec2.invalid/"


def bucket_of(operation: str) -> tuple[int, float]:
    if operation.startswith(("Describe", "Get", "List")):
        return NON_MUTATING_BUCKET
    if operation in ("CreateSnapshot", "CreateSnapshots"):
        return CREATE_SNAPSHOT_BUCKET
    return MUTATING_BUCKET


@dataclass
class TokenBucket:
    size: int
    refill_per_second: float
    tokens: float
    at: float  # simulated seconds of the last refill

    def take(self, now: float) -> bool:
        self.tokens = min(float(self.size), self.tokens + (now - self.at) * self.refill_per_second)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def client_error(code: str, message: str, operation: str) -> ClientError:
    """A botocore ClientError shaped like the EC2 API's."""
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def driver_policy_allows(policy: str, action: str, tags: dict[str, str]) -> bool:
    """Whether the EBS CSI driver's managed policy lets it do `action` on a resource with these tags.

    The resource-tag conditions of AmazonEBSCSIDriverPolicy ("v1",
    shared/fixtures/aws-ebs-csi-driver-2.64.0/example-iam-policy.json) and AmazonEBSCSIDriverPolicyV2
    ("v2", .../AmazonEBSCSIDriverPolicyV2.json); `CreateVolumeFromSnapshot` is CreateVolume on the
    snapshot resource. Request-tag conditions always hold: the driver sets those tags itself.
    """
    cluster = tags.get("ebs.csi.aws.com/cluster") == "true"
    claimed = "kubernetes.io/created-for/pvc/name" in tags
    if policy == "v1":
        if action == "DeleteVolume":
            return cluster or claimed or "CSIVolumeName" in tags
        if action == "DeleteSnapshot":
            return cluster or "CSIVolumeSnapshotName" in tags
        return True
    if policy == "v2":
        if action in ("AttachVolume", "DetachVolume", "ModifyVolume", "DeleteVolume"):
            return cluster or claimed
        return cluster  # CreateSnapshot (volume), CreateVolumeFromSnapshot, DeleteSnapshot
    raise ValueError(f"unknown driver policy {policy!r}: 'v1' or 'v2'")


def printed_runner_policy(config: Mapping[str, Any], stack: str) -> dict[str, Any] | None:
    """What `gp3migrate iam-policy --stack <stack>` prints for this config (the simulation's stack
    config: keys without the project prefix, plain values); None for a config the program refuses
    (it then registers nothing, so nothing is authorized)."""
    try:
        settings = load_settings(project_values(runtime_config(dict(config))))
    except ConfigError:
        return None
    return runner_policy.policy(settings, stack)


def _tag_context(prefix: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return {f"{prefix}/{k}": v for k, v in tags.items()}


def _tags_of(params: Any) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in params or []}


def _tag_spec(resource_type: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}]


class _SimModification(VolumeModification):
    """moto's modification record, reporting this model's state instead of moto's `completed`."""

    sim_state = "modifying"
    sim_progress = 0

    @property
    def modification_state(self) -> str:
        return self.sim_state

    @property
    def progress(self) -> int:
        return self.sim_progress


@dataclass
class _Modification:
    start: int
    optimizing_at: int
    completed_at: int
    moto_record: Any

    def state(self, now: int) -> str:
        if now < self.optimizing_at:
            return "modifying"
        return "optimizing" if now < self.completed_at else "completed"


class Ebs:
    """EBS volumes and snapshots with content, completion over ticks and fault injection."""

    def __init__(self, *, ec2: Any, backend: Callable[[], Any], rng: random.Random, now: Callable[[], int]):
        self.ec2 = ec2  # the world's own boto3 client (no hooks)
        self._backend = backend  # moto's EC2 backend for this account and region
        self.rng = rng
        self._now = now
        self.content: dict[str, list[str]] = {}
        self.filesystem: dict[str, str | None] = {}
        # Bumped by every change of what the per-step invariants read here (volumes and snapshots
        # come and go, a record written, a filesystem made): equal counts, equal reads
        # (World.fingerprint).
        self.version = 0
        self.snapshot_content: dict[str, list[str]] = {}
        self.snapshot_filesystem: dict[str, str | None] = {}
        self.snapshot_source: dict[str, str] = {}  # snapshot -> the volume it was taken of
        self.snapshot_size: dict[str, int] = {}  # GiB, as the volume was when the snapshot was taken
        self.source_snapshot: dict[str, str] = {}  # volume -> the snapshot it was created from
        self._snapshot_ready_at: dict[str, int] = {}
        self._modifications: dict[str, list[_Modification]] = {}
        self._devices: dict[str, set[str]] = {}  # instance -> device names in use
        self._failures: dict[str, tuple[str, str]] = {}
        self.calls: Counter[str] = Counter()
        # EC2's request throttling of the program's calls (None: off), and the refused attempts.
        self.buckets: dict[str, TokenBucket] | None = {}
        # The part of each bucket the program gets: below 1, the account's other callers (the
        # driver, autoscalers, monitoring) take the rest (a scenario's assumption).
        self.bucket_share = 1.0
        self.throttled: Counter[str] = Counter()
        # The runner policy the runner's calls are evaluated against while `runner()` is active;
        # `planted_policy`, when a test sets it, replaces the printed one.
        self._runner_policy: dict[str, Any] | None = None
        self.planted_policy: dict[str, Any] | None = None
        self.refused: list[Request] = []
        self.authorized: Counter[str] = Counter()  # action -> requests the policy allowed
        # GiB written into new volumes from snapshots: what a migration copied (rehome and modify
        # copy nothing; a restore hydrates the whole volume from S3: EBS "initialize volumes").
        self.copied_gib = 0

    # -- faults, and the calls code under test makes ------------------------------------------------

    def fail_next(self, operation: str, error_code: str, message: str) -> None:
        """The next call of `operation` (e.g. "CreateSnapshot") raises ClientError(error_code), once."""
        self._failures[operation] = (error_code, message)

    def check_fault(self, operation: str) -> None:
        """Count a call of `operation` and raise the fault armed for it, if any."""
        self.calls[operation] += 1
        failure = self._failures.pop(operation, None)
        if failure is not None:
            raise client_error(failure[0], failure[1], operation)

    # -- the runner's rights --------------------------------------------------------------------

    @contextmanager
    def runner(self, policy: dict[str, Any] | None) -> Iterator[None]:
        """Evaluate the runner's calls against `policy` (the stack's printed one) meanwhile."""
        self._runner_policy = self.planted_policy if self.planted_policy is not None else policy
        try:
            yield
        finally:
            self._runner_policy = None

    def _arn(self, resource_id: str) -> str:
        """The ARN IAM authorizes an action on (Service Authorization Reference, EC2 resource types:
        a snapshot's has no account)."""
        backend = self._backend()
        region, account = self.ec2.meta.region_name, backend.account_id
        if resource_id.startswith("snap-"):
            return f"arn:aws:ec2:{region}::snapshot/{resource_id}"
        if resource_id.startswith("vol-"):
            return f"arn:aws:ec2:{region}:{account}:volume/{resource_id}"
        return f"arn:aws:ec2:{region}:{account}:instance/{resource_id}"

    def _resource_tags(self, resource_id: str) -> dict[str, str]:
        return dict(self._backend().tags.get(resource_id, {}))

    def authorize(self, operation: str, requests: Iterable[Request]) -> None:
        """Refuse the call, as EC2 does, unless the runner policy allows each of its requests."""
        policy = self._runner_policy
        if policy is None:
            return
        for request in requests:
            if not evaluate(policy, request):
                self.refused.append(request)
                raise client_error(
                    "UnauthorizedOperation",
                    f"You are not authorized to perform this operation. User is not authorized to perform: "
                    f"{request.action} on resource: {request.resource} because no identity-based policy "
                    "allows the action",
                    operation,
                )
            self.authorized[request.action] += 1

    def _requests(self, operation: str, params: Mapping[str, Any]) -> list[Request]:
        """The IAM requests of one EC2 call (Service Authorization Reference, EC2 actions: which
        resource types each action is authorized on and which condition keys it sets)."""
        action = f"ec2:{operation}"
        if operation in ("CreateTags", "DeleteTags"):
            new = _tags_of(params.get("Tags"))
            asked = {**_tag_context("aws:RequestTag", new), "aws:TagKeys": sorted(new)} if new else {}
            return [
                Request(action, self._arn(r), {**_tag_context("ec2:ResourceTag", self._resource_tags(r)), **asked})
                for r in params.get("Resources") or []
            ]
        if operation == "CreateSnapshot":
            volume = str(params["VolumeId"])
            tags = {k: v for spec in params.get("TagSpecifications") or [] for k, v in _tags_of(spec["Tags"]).items()}
            asked = {**_tag_context("aws:RequestTag", tags), "aws:TagKeys": sorted(tags)} if tags else {}
            # The snapshot's ARN before it exists: any id (snapshot/*), as the policy names it.
            snapshot = self._arn("snap-*")
            requests = [
                Request(
                    action, self._arn(volume), {**_tag_context("ec2:ResourceTag", self._resource_tags(volume)), **asked}
                ),
                Request(action, snapshot, asked),
            ]
            if tags:
                requests.append(Request("ec2:CreateTags", snapshot, {**asked, "ec2:CreateAction": operation}))
            return requests
        for key in ("VolumeId", "SnapshotId", "InstanceId"):
            if key in params:
                resource = str(params[key])
                return [
                    Request(action, self._arn(resource), _tag_context("ec2:ResourceTag", self._resource_tags(resource)))
                ]
        return [Request(action, "*")]

    def before_call(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        """botocore `before-parameter-build.ec2` on the client code under test gets: the same faults,
        the rules moto lacks, as when the world calls EC2 itself, and the runner policy."""
        operation = model.name
        self.authorize(operation, self._requests(operation, params))
        self.check_fault(operation)
        if operation == "CreateSnapshot":
            self._check_pending_snapshots(params["VolumeId"])
        elif operation == "CreateVolume":
            if params.get("SnapshotId"):
                params["Size"] = self._restore_size(params["SnapshotId"], params.get("Size"))
            if params.get("VolumeType") == "gp3":
                size = int(params.get("Size") or self.snapshot_size.get(params.get("SnapshotId", ""), 0))
                params["Iops"], params["Throughput"] = self._gp3_performance(
                    size, params.get("Iops"), params.get("Throughput"), operation
                )
        elif operation == "ModifyVolume":
            params.update(
                self._modification(
                    params["VolumeId"],
                    params.get("VolumeType"),
                    params.get("Iops"),
                    params.get("Throughput"),
                    params.get("Size"),
                )
            )
        context["gp3migrate_sim_params"] = dict(params)

    def allow_request(self, operation: str) -> bool:
        """Take a token of `operation`'s bucket at the simulated now; False: throttled."""
        if self.buckets is None:
            return True
        now = float(self._now() * TICK_SECONDS)
        bucket = self.buckets.get(operation)
        if bucket is None:
            size, refill = bucket_of(operation)
            size, refill = max(1, round(size * self.bucket_share)), refill * self.bucket_share
            bucket = self.buckets[operation] = TokenBucket(size, refill, float(size), now)
        return bucket.take(now)

    def before_send(self, request: Any, event_name: str, **_: Any) -> Any:
        """botocore `before-send.ec2`, once per attempt (retries included): a throttled request gets
        EC2's 503 RequestLimitExceeded. Registered before moto's stubber, which runs too (every
        before-send handler does: botocore `endpoint.py` _do_get_response), so the request is
        pointed away from moto's URLs: EC2 does nothing with a throttled request."""
        operation = event_name.rsplit(".", 1)[-1]
        if self.allow_request(operation):
            return None
        self.throttled[operation] += 1
        request.url = THROTTLED_URL
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>'
            b"<Message>Request limit exceeded.</Message></Error></Errors>"
            b"<RequestID>00000000-0000-4000-8000-000000000000</RequestID></Response>"
        )
        return AWSResponse(THROTTLED_URL, 503, HTTPHeaders(), MockRawResponse(body))

    def after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        """botocore `after-call.ec2`: what code under test did through EC2 enters the model."""
        if http_response.status_code >= 300:
            return
        params = context.get("gp3migrate_sim_params") or {}
        operation = model.name
        if operation == "CreateSnapshot":
            self._track_snapshot(str(parsed["SnapshotId"]), params["VolumeId"], int(parsed["VolumeSize"]))
        elif operation == "CreateVolume":
            self._track_volume(str(parsed["VolumeId"]), params.get("SnapshotId"), None)
        elif operation == "DeleteSnapshot":
            self._forget_snapshot(params["SnapshotId"])
        elif operation == "DeleteVolume":
            self._forget_volume(params["VolumeId"])
        elif operation == "ModifyVolume":
            self._track_modification(params["VolumeId"])

    # -- volumes --------------------------------------------------------------------------------

    def create_volume(
        self,
        *,
        zone: str,
        size_gib: int,
        volume_type: str = "gp2",
        tags: dict[str, str],
        iops: int | None = None,
        throughput: int | None = None,
        encrypted: bool = False,
        kms_key_id: str | None = None,
        filesystem: str | None = None,
    ) -> str:
        """CreateVolume of a new volume; `filesystem` seeds one that was formatted before the simulation."""
        self.check_fault("CreateVolume")
        volume_id = self._create(zone, size_gib, volume_type, tags, iops, throughput, encrypted, kms_key_id, None)
        self._track_volume(volume_id, None, filesystem)
        return volume_id

    def create_volume_from_snapshot(
        self,
        snapshot_id: str,
        zone: str,
        volume_type: str,
        iops: int | None,
        throughput: int | None,
        encrypted: bool,
        kms_key_id: str | None,
        tags: dict[str, str],
        size_gib: int | None = None,
    ) -> str:
        """CreateVolume with SnapshotId: the new volume holds the snapshot's content and filesystem
        (any AZ of the region; encrypted when the snapshot is)."""
        self.check_fault("CreateVolume")
        size = self._restore_size(snapshot_id, size_gib)
        volume_id = self._create(zone, size, volume_type, tags, iops, throughput, encrypted, kms_key_id, snapshot_id)
        self._track_volume(volume_id, snapshot_id, None)
        return volume_id

    def _restore_size(self, snapshot_id: str, size_gib: int | None) -> int:
        """EC2 CreateVolume: the size defaults to the snapshot's and may not be smaller."""
        if snapshot_id not in self.snapshot_content:
            raise client_error(
                "InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.", "CreateVolume"
            )
        minimum = self.snapshot_size[snapshot_id]
        size = minimum if size_gib is None else int(size_gib)
        if size < minimum:
            raise client_error(
                "InvalidParameterValue",
                f"Volume of size {size}GB is smaller than snapshot '{snapshot_id}', expect size>= {minimum}GB",
                "CreateVolume",
            )
        return size

    def _track_volume(self, volume_id: str, snapshot_id: str | None, filesystem: str | None) -> None:
        self.version += 1
        if snapshot_id is None:
            self.content[volume_id] = []
            self.filesystem[volume_id] = filesystem
        else:
            self.content[volume_id] = list(self.snapshot_content[snapshot_id])
            self.filesystem[volume_id] = self.snapshot_filesystem[snapshot_id]
            self.source_snapshot[volume_id] = snapshot_id
            self.copied_gib += self.snapshot_size.get(snapshot_id, 0)

    def _create(
        self,
        zone: str,
        size: int,
        volume_type: str,
        tags: dict[str, str],
        iops: int | None,
        throughput: int | None,
        encrypted: bool,
        kms_key_id: str | None,
        snapshot_id: str | None,
    ) -> str:
        if volume_type == "gp3":
            iops, throughput = self._gp3_performance(size, iops, throughput, "CreateVolume")
        args: dict[str, Any] = {
            "AvailabilityZone": zone,
            "Size": size,
            "VolumeType": volume_type,
            "Encrypted": encrypted or kms_key_id is not None,
            "TagSpecifications": _tag_spec("volume", tags),
        }
        for key, value in (("Iops", iops), ("Throughput", throughput), ("KmsKeyId", kms_key_id)):
            if value is not None:
                args[key] = value
        if snapshot_id is not None:
            args["SnapshotId"] = snapshot_id
        return str(self.ec2.create_volume(**args)["VolumeId"])

    @staticmethod
    def _gp3_performance(size: int, iops: int | None, throughput: int | None, operation: str) -> tuple[int, int]:
        """gp3 defaults and limits (EBS volume types "General Purpose SSD volumes"; DESIGN Facts)."""
        iops = GP3_BASE_IOPS if iops is None else int(iops)
        throughput = GP3_BASE_THROUGHPUT if throughput is None else int(throughput)
        if not GP3_BASE_IOPS <= iops <= min(GP3_MAX_IOPS, max(GP3_BASE_IOPS, GP3_IOPS_PER_GIB * size)):
            raise client_error(
                "InvalidParameterValue",
                f"Volume iops of {iops} is out of range for a gp3 volume of {size}GiB",
                operation,
            )
        if not GP3_BASE_THROUGHPUT <= throughput <= GP3_MAX_THROUGHPUT or throughput > iops * GP3_MIBPS_PER_IOPS:
            raise client_error(
                "InvalidParameterValue",
                f"Throughput of {throughput}MiBps is out of range (at most {GP3_MIBPS_PER_IOPS} MiBps per iops, "
                f"at most {GP3_MAX_THROUGHPUT} MiBps)",
                operation,
            )
        return iops, throughput

    def volume(self, volume_id: str) -> dict[str, Any]:
        """The volume as DescribeVolumes shows it (ClientError InvalidVolume.NotFound when absent)."""
        return dict(self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])

    def _model(self, volume_id: str) -> Any:
        """moto's record of the volume: the world's own reads skip the API round trip (slow in moto)."""
        found = self._backend().volumes.get(volume_id)
        if found is None:
            raise client_error("InvalidVolume.NotFound", f"The volume '{volume_id}' does not exist.", "DescribeVolumes")
        return found

    def exists(self, volume_id: str) -> bool:
        return volume_id in self.content

    def tags(self, volume_id: str) -> dict[str, str]:
        self._model(volume_id)
        return dict(self._backend().tags.get(volume_id, {}))

    def zone(self, volume_id: str) -> str:
        return str(self._model(volume_id).zone.name)

    def size(self, volume_id: str) -> int:
        """GiB."""
        return int(self._model(volume_id).size)

    def attached_to(self, volume_id: str) -> str | None:
        attachment = self._model(volume_id).attachment
        return str(attachment.instance.id) if attachment is not None else None

    def attach(self, volume_id: str, instance_id: str) -> None:
        """AttachVolume: one instance at a time (VolumeInUse), same AZ (InvalidVolume.ZoneMismatch)."""
        self.check_fault("AttachVolume")
        if self.attached_to(volume_id):
            raise client_error("VolumeInUse", f"{volume_id} is already attached to an instance", "AttachVolume")
        instance_zone = self._backend().get_instance(instance_id).availability_zone
        if instance_zone != self.zone(volume_id):
            raise client_error(
                "InvalidVolume.ZoneMismatch",
                f"The volume '{volume_id}' is not in the same availability zone as instance '{instance_id}'",
                "AttachVolume",
            )
        used = self._devices.setdefault(instance_id, set())
        device = next(
            f"/dev/xvd{a}{b}"
            for a in "bcdefghijklmnop"
            for b in "abcdefghijklmnopqrstuvwxyz"
            if f"/dev/xvd{a}{b}" not in used
        )
        used.add(device)
        self.ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)

    def detach(self, volume_id: str) -> None:
        """DetachVolume; the volume becomes `available`."""
        self.check_fault("DetachVolume")
        attachment = self._model(volume_id).attachment
        if attachment is None:
            raise client_error("IncorrectState", f"Volume '{volume_id}' is in the 'available' state.", "DetachVolume")
        instance_id, device = str(attachment.instance.id), str(attachment.device)
        self.ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
        self._devices.get(instance_id, set()).discard(device)

    def delete_volume(self, volume_id: str) -> None:
        """DeleteVolume (VolumeInUse while attached); its content is gone, its snapshots stay."""
        self.check_fault("DeleteVolume")
        self.ec2.delete_volume(VolumeId=volume_id)
        self._forget_volume(volume_id)

    def _forget_volume(self, volume_id: str) -> None:
        self.version += 1
        self.content.pop(volume_id, None)
        self.filesystem.pop(volume_id, None)
        self._modifications.pop(volume_id, None)

    def write(self, volume_id: str, record: str) -> None:
        self.version += 1
        self.content[volume_id].append(record)

    def make_filesystem(self, volume_id: str, filesystem: str) -> None:
        """mkfs on a blank device (the kubelet's formatAndMount)."""
        self.version += 1
        self.filesystem[volume_id] = filesystem

    def restored_from(self, volume_id: str) -> str | None:
        """The volume whose snapshot this one was created from."""
        snapshot = self.source_snapshot.get(volume_id)
        return self.snapshot_source.get(snapshot) if snapshot else None

    # -- Elastic Volumes -----------------------------------------------------------------------

    def modify_volume(
        self,
        volume_id: str,
        volume_type: str | None = None,
        iops: int | None = None,
        throughput: int | None = None,
        size_gib: int | None = None,
    ) -> None:
        """ModifyVolume; IncorrectModificationState while one is in flight, VolumeModificationRateExceeded
        after four in a rolling 24 hours (both say when to retry)."""
        self.check_fault("ModifyVolume")
        self.ec2.modify_volume(**self._modification(volume_id, volume_type, iops, throughput, size_gib))
        self._track_modification(volume_id)

    def _modification(
        self, volume_id: str, volume_type: str | None, iops: int | None, throughput: int | None, size_gib: int | None
    ) -> dict[str, Any]:
        """The ModifyVolume request EC2 would accept now, with gp3's defaults filled in; else the error."""
        volume, now = self._model(volume_id), self._now()
        history = self._modifications.get(volume_id, [])
        if history and history[-1].state(now) != "completed":
            last = history[-1]
            raise client_error(
                "IncorrectModificationState",
                f"Volume {volume_id} is already being modified ({last.state(now)}); retry after tick "
                f"{last.completed_at} (t={last.completed_at * TICK_SECONDS}s)",
                "ModifyVolume",
            )
        recent = [m for m in history if m.start > now - DAY_TICKS]
        if len(recent) >= MODIFICATIONS_PER_DAY:
            retry = recent[0].start + DAY_TICKS
            raise client_error(
                "VolumeModificationRateExceeded",
                f"You've reached the maximum modification rate per volume limit ({MODIFICATIONS_PER_DAY} in 24 "
                f"hours). Retry after tick {retry} (t={retry * TICK_SECONDS}s).",
                "ModifyVolume",
            )
        size = int(volume.size)
        if size_gib is not None and size_gib < size:
            raise client_error(
                "InvalidParameterValue", f"New size cannot be smaller than existing size ({size})", "ModifyVolume"
            )
        target_type = volume_type or volume.volume_type
        args: dict[str, Any] = {"VolumeId": volume_id, "VolumeType": target_type}
        if size_gib is not None:
            args["Size"] = size_gib
        if target_type == "gp3":
            keep = volume.volume_type == "gp3"  # a gp3 volume keeps what it has; another type gets the base
            iops, throughput = self._gp3_performance(
                size_gib or size,
                iops if iops is not None or not keep else volume.iops,
                throughput if throughput is not None or not keep else volume.throughput,
                "ModifyVolume",
            )
        for key, value in (("Iops", iops), ("Throughput", throughput)):
            if value is not None:
                args[key] = value
        return args

    def _track_modification(self, volume_id: str) -> None:
        record = self._model(volume_id).modifications[-1]
        record.__class__ = _SimModification
        now = self._now()
        optimizing_at = now + self.rng.randint(*MODIFYING_TICKS)
        modification = _Modification(now, optimizing_at, optimizing_at + self.rng.randint(*OPTIMIZING_TICKS), record)
        self._modifications.setdefault(volume_id, []).append(modification)
        self._sync_modification(modification)

    def modification_state(self, volume_id: str) -> str | None:
        """`modifying`, `optimizing` or `completed` for the last modification; None if never modified."""
        history = self._modifications.get(volume_id)
        return history[-1].state(self._now()) if history else None

    def _sync_modification(self, modification: _Modification) -> None:
        now = self._now()
        modification.moto_record.sim_state = modification.state(now)
        span = max(1, modification.completed_at - modification.start)
        modification.moto_record.sim_progress = min(100, 100 * (now - modification.start) // span)

    # -- snapshots --------------------------------------------------------------------------------

    def create_snapshot(
        self, volume_id: str, description: str, tags: dict[str, str], *, as_runner: bool = False
    ) -> str:
        """CreateSnapshot: copies the volume's content now; pending for a few ticks. `as_runner`:
        the runner's call (pulumi-aws's `aws.ebs.Snapshot`), authorized by its policy, with the
        DescribeVolumes and DescribeSnapshots the provider reads it back with."""
        if as_runner:
            params = {"VolumeId": volume_id, "TagSpecifications": _tag_spec("snapshot", tags)}
            self.authorize("CreateSnapshot", self._requests("CreateSnapshot", params))
            self.authorize("DescribeSnapshots", [Request("ec2:DescribeSnapshots", "*")])
            self.authorize("DescribeVolumes", [Request("ec2:DescribeVolumes", "*")])
        self.check_fault("CreateSnapshot")
        self._check_pending_snapshots(volume_id)
        response = self.ec2.create_snapshot(
            VolumeId=volume_id, Description=description, TagSpecifications=_tag_spec("snapshot", tags)
        )
        snapshot_id = str(response["SnapshotId"])
        self._track_snapshot(snapshot_id, volume_id, int(response["VolumeSize"]))
        return snapshot_id

    def _check_pending_snapshots(self, volume_id: str) -> None:
        pending = [s for s, v in self.snapshot_source.items() if v == volume_id and self.snapshot_state(s) == "pending"]
        if len(pending) >= PENDING_SNAPSHOTS_PER_VOLUME:
            raise client_error(
                "SnapshotCreationPerVolumeRateExceeded",
                f"The maximum per volume CreateSnapshot request rate has been exceeded for {volume_id}",
                "CreateSnapshot",
            )

    def _track_snapshot(self, snapshot_id: str, volume_id: str, size: int) -> None:
        # Incremental (durations.py SNAPSHOT_BASE): the first snapshot of a volume copies it whole.
        self.version += 1
        first = volume_id not in self.snapshot_source.values()
        extra = size * durations.SNAPSHOT_FIRST_SECONDS_PER_GIB if first else 0.0
        self.snapshot_content[snapshot_id] = list(self.content.get(volume_id, []))
        self.snapshot_filesystem[snapshot_id] = self.filesystem.get(volume_id)
        self.snapshot_source[snapshot_id] = volume_id
        self.snapshot_size[snapshot_id] = size
        self._snapshot_ready_at[snapshot_id] = self._now() + durations.draw_ticks(
            self.rng, durations.SNAPSHOT_BASE, extra
        )
        self._backend().snapshots[snapshot_id].status = "pending"

    def snapshot_state(self, snapshot_id: str) -> str:
        """`pending` or `completed` (ClientError InvalidSnapshot.NotFound when absent)."""
        if snapshot_id not in self.snapshot_content:
            raise client_error(
                "InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.", "DescribeSnapshots"
            )
        return "completed" if self._now() >= self._snapshot_ready_at[snapshot_id] else "pending"

    def snapshot_exists(self, snapshot_id: str) -> bool:
        return snapshot_id in self.snapshot_content

    def snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """The snapshot as DescribeSnapshots shows it."""
        return dict(self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0])

    def snapshot_tags(self, snapshot_id: str) -> dict[str, str]:
        if snapshot_id not in self._backend().snapshots:
            raise client_error(
                "InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.", "DescribeSnapshots"
            )
        return dict(self._backend().tags.get(snapshot_id, {}))

    def retag_snapshot(self, snapshot_id: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        """The runner's tag edit of its snapshot in place (the Terraform provider's tag update:
        DeleteTags of the keys gone, CreateTags of those added or changed), authorized first."""
        removed = sorted(set(old) - set(new))
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        if removed:
            params: dict[str, Any] = {"Resources": [snapshot_id], "Tags": [{"Key": k} for k in removed]}
            self.authorize("DeleteTags", self._requests("DeleteTags", params))
            self.ec2.delete_tags(**params)
        if changed:
            params = {"Resources": [snapshot_id], "Tags": [{"Key": k, "Value": v} for k, v in sorted(changed.items())]}
            self.authorize("CreateTags", self._requests("CreateTags", params))
            self.ec2.create_tags(**params)

    def delete_snapshot(self, snapshot_id: str, *, as_runner: bool = False) -> None:
        """DeleteSnapshot. EC2 refuses only a snapshot an AMI uses (InvalidSnapshot.InUse, moto checks
        that); volumes created from it do not hold it. `as_runner`: authorized by the runner policy."""
        if as_runner:
            self.authorize("DeleteSnapshot", self._requests("DeleteSnapshot", {"SnapshotId": snapshot_id}))
        self.check_fault("DeleteSnapshot")
        self.ec2.delete_snapshot(SnapshotId=snapshot_id)
        self._forget_snapshot(snapshot_id)

    def _forget_snapshot(self, snapshot_id: str) -> None:
        self.version += 1
        self.snapshot_content.pop(snapshot_id, None)
        self.snapshot_filesystem.pop(snapshot_id, None)
        self._snapshot_ready_at.pop(snapshot_id, None)

    # -- time -----------------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring moto's view of snapshots and modifications up to the current tick."""
        backend = self._backend()
        for snapshot_id in sorted(self._snapshot_ready_at):
            if snapshot_id in backend.snapshots:
                backend.snapshots[snapshot_id].status = self.snapshot_state(snapshot_id)
        for volume_id in sorted(self._modifications):
            self._sync_modification(self._modifications[volume_id][-1])

    # -- what the invariants read ---------------------------------------------------------------

    def all_records(self) -> set[str]:
        """Every record still held by a volume or a snapshot."""
        held: set[str] = set()
        for records in self._contents():
            held.update(records)
        return held

    def _contents(self) -> Iterable[list[str]]:
        yield from self.content.values()
        yield from self.snapshot_content.values()
