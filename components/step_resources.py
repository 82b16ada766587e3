"""Turns planned steps (gp3migrate/planning/steps.py) into Pulumi resources: one resource per step, of the
class its kind names, with the step's options. No migration logic lives here."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import gate_providers
from components.k8s_object import KubernetesObject
from gp3migrate.planning.step_graph import Node
from gp3migrate.planning.steps import Ref


class StepBuilder:
    """Creates the resources of a step graph, each a child of its owning migration component."""

    def __init__(
        self,
        parents: Mapping[str, pulumi.Resource],
        platform_of: Mapping[str, Sequence[pulumi.Resource]],
        *,
        kubeconfig: pulumi.Input[str],
        kube_context: str | None,
    ):
        self._parents, self._platform_of = parents, platform_of
        self._kubeconfig, self._context = kubeconfig, kube_context
        self.resources: dict[str, pulumi.CustomResource] = {}

    def build(self, nodes: Sequence[Node]) -> dict[str, pulumi.CustomResource]:
        for node in nodes:
            self.resources[node.name] = self._create(node)
        return self.resources

    def _resolve(self, owner: str, value: Any) -> Any:
        """Refs become the referenced step's id (formatted); the rest is copied as is."""
        if isinstance(value, Ref):
            resource = self.resources[f"{owner}-{value.step}"]
            return resource.id.apply(value.template.format)
        if isinstance(value, dict):
            return {k: self._resolve(owner, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._resolve(owner, v) for v in value]
        return value

    def _options(self, node: Node) -> pulumi.ResourceOptions:
        step = node.step
        depends: list[pulumi.Resource] = [self.resources[name] for name in node.after]
        if step.after_platform:
            depends += list(self._platform_of.get(node.owner, ()))
        return pulumi.ResourceOptions(
            parent=self._parents[node.owner],
            depends_on=depends,
            # Explicit, never inherited: these decide whether data outlives the stack.
            protect=step.protect,
            retain_on_delete=step.retain_on_delete,
            delete_before_replace=step.delete_before_replace or None,
            replace_on_changes=list(step.replace_on_changes) or None,
            ignore_changes=list(step.ignore_changes) or None,
            custom_timeouts=pulumi.CustomTimeouts(create=step.create_timeout) if step.create_timeout else None,
        )

    def _create(self, node: Node) -> pulumi.CustomResource:
        body = self._resolve(node.owner, node.step.body)
        factory = _FACTORIES[node.step.kind]
        return factory(self, node.name, body, self._options(node))

    # -- one per kind -----------------------------------------------------------------------

    def _pv_patch(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return k8s.core.v1.PersistentVolumePatch(name, metadata=body["metadata"], spec=body["spec"], opts=opts)

    def _snapshot(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return aws.ebs.Snapshot(
            name, volume_id=body["volume_id"], description=body["description"], tags=body["tags"], opts=opts
        )

    def _object(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return KubernetesObject(name, body, opts=opts)

    def _claim(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return k8s.core.v1.PersistentVolumeClaim(name, metadata=body["metadata"], spec=body["spec"], opts=opts)

    def _volume(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return k8s.core.v1.PersistentVolume(name, metadata=body["metadata"], spec=body["spec"], opts=opts)

    def _kube(self) -> dict[str, Any]:
        return {"kubeconfig": self._kubeconfig, "context": self._context}

    def _scale(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.WorkloadScale(name, **body, **self._kube(), opts=opts)

    def _detached(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.DetachedGate(name, **body, opts=opts)

    def _release(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.ClaimRelease(name, **body, **self._kube(), opts=opts)

    def _bound(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.ClaimBound(name, **body, **self._kube(), opts=opts)

    def _in_use(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.InUseGate(name, **body, **self._kube(), opts=opts)

    def _tags(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.VolumeTags(name, **body, opts=opts)

    def _modify(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.VolumeModify(name, **body, opts=opts)

    def _pv_delete(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.RetainedPvDelete(name, **body, **self._kube(), opts=opts)

    def _owners_held(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.OwnersHeld(name, **body, **self._kube(), opts=opts)

    def _owners_hold(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        return gate_providers.OwnersHold(name, **body, **self._kube(), opts=opts)


_Factory = Callable[[StepBuilder, str, dict[str, Any], pulumi.ResourceOptions], pulumi.CustomResource]
_FACTORIES: dict[str, _Factory] = {
    "pv-patch": StepBuilder._pv_patch,
    "ebs-snapshot": StepBuilder._snapshot,
    "restore-object": StepBuilder._object,
    "claim": StepBuilder._claim,
    "persistent-volume": StepBuilder._volume,
    "scale": StepBuilder._scale,
    "detached": StepBuilder._detached,
    "claim-release": StepBuilder._release,
    "claim-bound": StepBuilder._bound,
    "in-use": StepBuilder._in_use,
    "volume-tags": StepBuilder._tags,
    "volume-modify": StepBuilder._modify,
    "pv-delete": StepBuilder._pv_delete,
    "owners-held": StepBuilder._owners_held,
    "owners-hold": StepBuilder._owners_hold,
}
