"""Steps of the cutover that Pulumi has no resource for, as small dynamic resources.

Each shows in `pulumi preview` as a named create, runs once, and does nothing on delete: they are
proofs and one-way actions, not objects to keep. Chosen over `pulumi-command` so the proof logic
is Python tested on moto (gp3migrate/checks/preconditions.py) rather than shell. Dynamic providers run in the
engine's Python process with the user's AWS credentials (Pulumi docs, "Dynamic Resource
Providers").
"""

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

from gp3migrate.checks import preconditions

# A refreshed token or a reformatted kubeconfig must not re-run a one-way step; nor may what a step
# only checks before it acts (a claim's recorded ownership), changed after it acted.
# The window a release re-checks is a check too: stacks applied before it was added must not run
# their release again; so is what the in-use gate proves (`proof`): a gate passed before the source
# was handed to deletion must not run again once the source is gone.
_NOT_IDENTITY = ("kubeconfig", "context", "ownership", "window", "proof", "startedAt", "completedAt")


class OneWayStep(ResourceProvider):
    """A step that acts once, when created; a change of its inputs replaces it (runs it again)."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Only the *input* keys decide: the engine passes the old outputs as `olds` (provider.proto
        DiffRequest; pulumi dynamic/__main__.py Diff), and the keys a step adds to its outputs must
        not make every later `up` run the step again."""
        changed = sorted(
            k for k in news if not k.startswith("__") and k not in _NOT_IDENTITY and olds.get(k) != news.get(k)
        )
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)


def _kube_api(kubeconfig: str, context: str | None) -> Any:
    """A client from the kubeconfig the kubernetes Provider uses: JSON, YAML or a file path."""
    import json
    import os

    import yaml
    from kubernetes import config

    if os.path.exists(kubeconfig):
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    data = json.loads(kubeconfig) if kubeconfig.lstrip().startswith("{") else yaml.safe_load(kubeconfig)
    return config.new_client_from_config_dict(data, context=context)


def _core_api(kubeconfig: str, context: str | None) -> Any:
    if preconditions.RUNTIME.core_api is not None:
        return preconditions.RUNTIME.core_api(kubeconfig, context)
    from kubernetes import client

    return client.CoreV1Api(_kube_api(kubeconfig, context))


def _apps_api(kubeconfig: str, context: str | None) -> Any:
    if preconditions.RUNTIME.apps_api is not None:
        return preconditions.RUNTIME.apps_api(kubeconfig, context)
    from kubernetes import client

    return client.AppsV1Api(_kube_api(kubeconfig, context))


def _custom_api(kubeconfig: str, context: str | None) -> Any:
    if preconditions.RUNTIME.custom_api is not None:
        return preconditions.RUNTIME.custom_api(kubeconfig, context)
    from kubernetes import client

    return client.CustomObjectsApi(_kube_api(kubeconfig, context))


def _window(props: dict[str, Any]) -> preconditions.Window | None:
    """The release's window checks, with the clients each needs."""
    checks = props.get("window")
    if not checks:
        return None
    kubeconfig, context = props["kubeconfig"], props.get("context") or None
    owners = tuple(checks.get("owners") or ())
    return preconditions.Window(
        workload=checks.get("workload"),
        volume_id=checks.get("volumeId"),
        owners=owners,
        apps=_apps_api(kubeconfig, context) if checks.get("workload") else None,
        ec2=preconditions.RUNTIME.ec2(checks["region"]) if checks.get("volumeId") else None,
        custom=_custom_api(kubeconfig, context) if owners else None,
        poller=preconditions.RUNTIME.poller,
        clock=preconditions.RUNTIME.clock,
    )


class _OwnersHeldProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        owners = list(props["owners"])
        preconditions.check_owners_held(
            _custom_api(props["kubeconfig"], props.get("context") or None), owners, step="the stop of the window"
        )
        return CreateResult(id_=f"owners-held-{len(owners)}", outs=dict(props))


class _OwnersHoldProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        kubeconfig, context = props["kubeconfig"], props.get("context") or None
        patched = preconditions.hold_owners(
            _core_api(kubeconfig, context),
            _custom_api(kubeconfig, context),
            list(props["owners"]),
            action=props["action"],
            namespace=props.get("namespace") or "",
            claims=list(props.get("claims") or ()),
        )
        return CreateResult(id_=f"owners-{props['action']}-{len(patched)}", outs={**props, "patched": patched})


class _ScaleProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        # When the scale began and when it was done (the pods gone, or back and ready): a stop's
        # start and a start's end bound the workload's downtime (components/volume_migration.py).
        started = preconditions.RUNTIME.now()
        found = preconditions.scale_workload(
            _apps_api(props["kubeconfig"], props.get("context") or None),
            kind=props["kind"],
            namespace=props["namespace"],
            name=props["name"],
            replicas=int(props["replicas"]),
            wait_seconds=int(props["timeoutSeconds"]),
            sleep=preconditions.RUNTIME.sleep,
            clock=preconditions.RUNTIME.clock,
        )
        resource_id = f"scaled-{props['namespace']}-{props['name']}-{int(props['replicas'])}"
        done = preconditions.RUNTIME.now()
        return CreateResult(
            id_=resource_id, outs={**props, "replicasFound": found, "startedAt": started, "completedAt": done}
        )


class _ClaimBoundProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        pv = preconditions.claim_bound(
            _core_api(props["kubeconfig"], props.get("context") or None),
            namespace=props["namespace"],
            claim=props["claim"],
        )
        return CreateResult(id_=f"bound-{props['namespace']}-{props['claim']}", outs={**props, "boundPv": pv})


class _DetachedProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        runtime = preconditions.RUNTIME
        volume = preconditions.wait_until_detached(
            runtime.ec2(props["region"]),
            props["volumeId"],
            timeout_seconds=int(props["timeoutSeconds"]),
            sleep=runtime.sleep,
            clock=runtime.clock,
            poller=runtime.poller,
        )
        return CreateResult(id_=f"detached-{props['volumeId']}", outs={**props, "state": volume["State"]})


class _InUseProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        ec2 = preconditions.RUNTIME.ec2(props["region"])
        core = _core_api(props["kubeconfig"], props.get("context") or None)
        proof = props["proof"]
        volume_id = preconditions.restored_volume_in_use(
            ec2,
            core=core,
            namespace=props["namespace"],
            claim=props["claim"],
            snapshot_id=proof["snapshotId"],
            source_volume_id=proof["sourceVolumeId"],
        )
        # Last, right before the Delete patch that waits for this step.
        source_pv = preconditions.source_pv_released(core, pv=proof["sourcePv"], volume_id=proof["sourceVolumeId"])
        outs = {**props, "restoredVolumeId": volume_id, "sourcePvPhase": source_pv}
        return CreateResult(id_=f"in-use-{volume_id}", outs=outs)


class _ClaimReleaseProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        kept_pv = preconditions.release_claim(
            _core_api(props["kubeconfig"], props.get("context") or None),
            namespace=props["namespace"],
            claim=props["claim"],
            timeout_seconds=int(props["timeoutSeconds"]),
            bound_to=props.get("boundTo") or None,
            not_bound_to=props.get("notBoundTo") or None,
            ownership=props.get("ownership"),
            window=_window(props),
            sleep=preconditions.RUNTIME.sleep,
        )
        return CreateResult(id_=f"released-{props['namespace']}-{props['claim']}", outs={**props, "keptPv": kept_pv})


class _VolumeTagsProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        added = preconditions.tag_volume(
            preconditions.RUNTIME.ec2(props["region"]), props["volumeId"], dict(props["tags"])
        )
        return CreateResult(id_=f"tagged-{props['volumeId']}", outs={**props, "added": added})


class _VolumeModifyProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        runtime = preconditions.RUNTIME
        result = preconditions.modify_to_gp3(
            runtime.ec2(props["region"]),
            props["volumeId"],
            iops=int(props["iops"]),
            throughput=int(props["throughput"]),
            expected_zone=props["zone"],
            timeout_seconds=int(props["timeoutSeconds"]),
            sleep=runtime.sleep,
            clock=runtime.clock,
            poller=runtime.poller,
        )
        outs = {
            **props,
            "volumeType": result["volumeType"],
            "modificationState": result["state"],
            "modified": result["modified"],
        }
        return CreateResult(id_=f"gp3-{props['volumeId']}", outs=outs)


# How long a PV may stay Bound after its claim was released, before the delete is refused.
_PV_RELEASE_WAIT_SECONDS = 120


class _RetainedPvDeleteProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        result = preconditions.delete_retained_pv(
            _core_api(props["kubeconfig"], props.get("context") or None),
            pv=props["pv"],
            volume_id=props["volumeId"],
            release_wait_seconds=_PV_RELEASE_WAIT_SECONDS,
            sleep=preconditions.RUNTIME.sleep,
            clock=preconditions.RUNTIME.clock,
        )
        return CreateResult(id_=f"pv-deleted-{props['pv']}", outs={**props, "result": result})


class DetachedGate(pulumi.dynamic.Resource):
    """Waits until AWS reports the EBS volume `available` (detached from every node)."""

    def __init__(self, name: str, *, volume_id: str, region: str, timeout_seconds: int, opts: pulumi.ResourceOptions):
        props = {"volumeId": volume_id, "region": region, "timeoutSeconds": timeout_seconds}
        super().__init__(_DetachedProvider(), name, props, opts)


class InUseGate(pulumi.dynamic.Resource):
    """Succeeds only when the volume serving the claim is the one restored from `snapshot_id`, not
    the source, and attached to a node, and the source PV is Released
    (preconditions.restored_volume_in_use, source_pv_released)."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str,
        claim: str,
        region: str,
        snapshot_id: pulumi.Input[str],
        source_volume_id: str,
        source_pv: str,
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "namespace": namespace,
            "claim": claim,
            "region": region,
            # What it proves before the source is handed to deletion: checks, not identity (above).
            "proof": {"snapshotId": snapshot_id, "sourcePv": source_pv, "sourceVolumeId": source_volume_id},
            "kubeconfig": pulumi.Output.secret(kubeconfig),
            "context": context,
        }
        super().__init__(_InUseProvider(), name, props, opts)


class ClaimRelease(pulumi.dynamic.Resource):
    """Deletes one claim, after setting its PV to Retain so the volume and data stay."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str,
        claim: str,
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        timeout_seconds: int,
        opts: pulumi.ResourceOptions,
        bound_to: str | None = None,
        not_bound_to: str | None = None,
        ownership: dict[str, dict[str, str]] | None = None,
        window: dict[str, Any] | None = None,
    ):
        props: dict[str, Any] = {
            "namespace": namespace,
            "claim": claim,
            # The claim it may release: bound to this PV (the source), or to any PV but this one.
            "boundTo": bound_to or "",
            "notBoundTo": not_bound_to or "",
            # Secret: a user-supplied kubeconfig may carry credentials.
            "kubeconfig": pulumi.Output.secret(kubeconfig),
            "context": context,
            "timeoutSeconds": timeout_seconds,
        }
        if ownership is not None:
            # The ownership keys the claim must still carry (absent: none recorded, so none allowed).
            props["ownership"] = ownership
        if window:
            # Re-checked right before the delete: {workload: {kind, name}, volumeId, region, owners}.
            props["window"] = {("volumeId" if k == "volume_id" else k): v for k, v in sorted(window.items())}
        super().__init__(_ClaimReleaseProvider(), name, props, opts)


class OwnersHeld(pulumi.dynamic.Resource):
    """Succeeds only when every GitOps owner or autoscaler of the entry is held
    (preconditions.check_owners_held), right before the stop."""

    def __init__(
        self,
        name: str,
        *,
        owners: list[dict[str, str]],
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        opts: pulumi.ResourceOptions,
    ):
        props = {"owners": owners, "kubeconfig": pulumi.Output.secret(kubeconfig), "context": context}
        super().__init__(_OwnersHeldProvider(), name, props, opts)


class OwnersHold(pulumi.dynamic.Resource):
    """Holds (`action` hold) or resumes (resume, once `claims` are bound) the entry's GitOps owners
    and autoscaler (preconditions.hold_owners): holdOwners."""

    def __init__(
        self,
        name: str,
        *,
        owners: list[dict[str, str]],
        action: str,
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        opts: pulumi.ResourceOptions,
        namespace: str = "",
        claims: list[str] | None = None,
    ):
        props: dict[str, Any] = {
            "owners": owners,
            "action": action,
            "namespace": namespace,
            "claims": list(claims or ()),
            "kubeconfig": pulumi.Output.secret(kubeconfig),
            "context": context,
        }
        super().__init__(_OwnersHoldProvider(), name, props, opts)


class WorkloadScale(pulumi.dynamic.Resource):
    """Sets a Deployment's or StatefulSet's replicas once (and waits for them when above zero)."""

    startedAt: pulumi.Output[float]  # noqa: N815 - the output's wire name
    completedAt: pulumi.Output[float]  # noqa: N815

    def __init__(
        self,
        name: str,
        *,
        kind: str,
        namespace: str,
        workload: str,
        replicas: int,
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        timeout_seconds: int,
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "kind": kind,
            "namespace": namespace,
            "name": workload,
            "replicas": replicas,
            "kubeconfig": pulumi.Output.secret(kubeconfig),
            "context": context,
            "timeoutSeconds": timeout_seconds,
            # Outputs only (set by the provider; not inputs: _NOT_IDENTITY).
            "startedAt": None,
            "completedAt": None,
        }
        super().__init__(_ScaleProvider(), name, props, opts)


class ClaimBound(pulumi.dynamic.Resource):
    """Succeeds only when the claim is bound to a volume."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str,
        claim: str,
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "namespace": namespace,
            "claim": claim,
            "kubeconfig": pulumi.Output.secret(kubeconfig),
            "context": context,
        }
        super().__init__(_ClaimBoundProvider(), name, props, opts)


class VolumeTags(pulumi.dynamic.Resource):
    """Adds tags an EBS volume lacks (preconditions.tag_volume), e.g. preconditions.DRIVER_VOLUME_TAGS so the CSI
    driver's V2 policy lets it snapshot the rehomed volume. Never removes or changes a tag."""

    def __init__(
        self,
        name: str,
        *,
        volume_id: pulumi.Input[str],
        region: str,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions,
    ):
        props = {"volumeId": volume_id, "region": region, "tags": dict(sorted(tags.items()))}
        super().__init__(_VolumeTagsProvider(), name, props, opts)


class VolumeModify(pulumi.dynamic.Resource):
    """Makes an EBS volume gp3 with exactly `iops` / `throughput` in place (preconditions.modify_to_gp3),
    and waits until it serves I/O at them. Refuses a volume outside `zone` or not gp2/gp3."""

    def __init__(
        self,
        name: str,
        *,
        volume_id: pulumi.Input[str],
        region: str,
        zone: str,
        iops: int,
        throughput: int,
        timeout_seconds: int,
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "volumeId": volume_id,
            "region": region,
            "zone": zone,
            "iops": iops,
            "throughput": throughput,
            "timeoutSeconds": timeout_seconds,
        }
        super().__init__(_VolumeModifyProvider(), name, props, opts)


class RetainedPvDelete(pulumi.dynamic.Resource):
    """Deletes one PV object, only while it points at `volume_id`, is Retain and is not Bound
    (preconditions.delete_retained_pv): the EBS volume stays."""

    def __init__(
        self,
        name: str,
        *,
        pv: str,
        volume_id: pulumi.Input[str],
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "pv": pv,
            "volumeId": volume_id,
            "kubeconfig": pulumi.Output.secret(kubeconfig),
            "context": context,
        }
        super().__init__(_RetainedPvDeleteProvider(), name, props, opts)
