"""The VolumeSnapshot API: CRDs and snapshot-controller, installed before the driver.

Three modes: the pinned external-snapshotter release manifests, the EKS `snapshot-controller`
add-on, or `present` (the cluster already has them; nothing is declared).
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import type_token
from gp3migrate.config.settings import Settings
from gp3migrate.versions import SNAPSHOT_CONTROLLER_ADDON_NAME, snapshotter_manifest_urls


def retain_children(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    """Keep every object of the group on destroy: deleting the CRDs deletes every VolumeSnapshot.

    retain_on_delete on a yaml.v2 ConfigGroup is not passed on to its children by the provider
    (pulumi-kubernetes issue 3065, closed won't-fix), so it is set on each child as well.
    """
    return pulumi.ResourceTransformResult(
        props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    )


@dataclass(frozen=True)
class SnapshotSupportArgs:
    settings: Settings


class SnapshotSupport(pulumi.ComponentResource):
    # What the driver and the snapshot objects must wait for; empty in `present` mode.
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: SnapshotSupportArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("SnapshotSupport"), name, None, opts)
        snapshots = args.settings.snapshots
        self.ready = []
        if snapshots.support == "manifests":
            crd_urls, controller_urls = snapshotter_manifest_urls(snapshots.snapshotter_version)
            # The provider fetches these URLs itself (nothing is fetched under mocks).
            crds = k8s.yaml.v2.ConfigGroup(
                f"{name}-crds",
                files=list(crd_urls),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, transforms=[retain_children]),
            )
            controller = k8s.yaml.v2.ConfigGroup(
                f"{name}-controller",
                files=list(controller_urls),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[crds], retain_on_delete=True, transforms=[retain_children]
                ),
            )
            self.ready = [crds, controller]
        elif snapshots.support == "addon":
            addon = aws.eks.Addon(
                f"{name}-addon",
                cluster_name=args.settings.cluster.name,
                addon_name=SNAPSHOT_CONTROLLER_ADDON_NAME,
                addon_version=snapshots.addon_version,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="PRESERVE",
                # Leave the CRDs and controller on the cluster when the stack is destroyed.
                preserve=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ready = [addon]
        self.register_outputs({})
