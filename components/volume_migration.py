"""One volume's migration: Retain on the source PV -> EBS snapshot -> pre-provisioned
VolumeSnapshotContent -> VolumeSnapshot (awaited readyToUse) -> gp3 claim restored from it.

Each migration is its own subgraph: it depends on the platform only, never on another volume,
so Pulumi runs the migrations in parallel.
"""

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import type_token
from components.k8s_object import KubernetesObject
from gp3migrate import restore
from gp3migrate.config import Settings
from gp3migrate.plan import MigrationPlan


@dataclass(frozen=True)
class VolumeMigrationArgs:
    settings: Settings
    plan: MigrationPlan
    stack: str
    # The driver, snapshot CRDs and classes: nothing here may start before they exist.
    platform: list[pulumi.Resource] = field(default_factory=list)


class VolumeMigration(pulumi.ComponentResource):
    snapshot: aws.ebs.Snapshot
    claim: k8s.core.v1.PersistentVolumeClaim
    claim_name: str

    def __init__(self, name: str, args: VolumeMigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("VolumeMigration"), name, None, opts)
        plan, settings = args.plan, args.settings
        entry = plan.entry

        # 1. Retain first: from here on, deleting the old claim cannot delete the volume. Kept on
        # destroy: removing the Patch would hand the reclaim policy back (pulumi-kubernetes docs).
        retain = k8s.core.v1.PersistentVolumePatch(
            f"{name}-retain",
            metadata=restore.retain_patch(plan)["metadata"],
            spec=restore.retain_patch(plan)["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.platform), retain_on_delete=True),
        )

        # 2. The EBS snapshot, protected until an explicit cleanup.
        self.snapshot = aws.ebs.Snapshot(
            f"{name}-snapshot",
            volume_id=entry.volume_id,
            description=f"eks-gp3-migration {args.stack} {entry.key} ({entry.pv})",
            tags=restore.snapshot_tags(plan, settings, args.stack, purpose="restore"),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[retain],
                protect=True,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{plan.snapshot_timeout_minutes}m"),
            ),
        )

        # 3-4. Content and snapshot name each other; both have fixed names and are replaced
        # together (the snapshot handle is in both) by delete-then-create.
        restore_opts = pulumi.ResourceOptions(
            parent=self, depends_on=list(args.platform), delete_before_replace=True, replace_on_changes=["*"]
        )
        content = KubernetesObject(
            f"{name}-content",
            restore.snapshot_content(plan, settings, self.snapshot.id),
            opts=restore_opts,
        )
        volume_snapshot = KubernetesObject(
            f"{name}-volume-snapshot",
            restore.volume_snapshot(plan, settings, self.snapshot.id),
            opts=pulumi.ResourceOptions.merge(restore_opts, pulumi.ResourceOptions(depends_on=[content])),
        )

        # 5. The gp3 claim. Kept on destroy and removal from config; its data source is history
        # once restored, so a later snapshot never plans to replace it.
        self.claim_name = entry.new_claim_name
        body = restore.restored_claim(plan, self.claim_name)
        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=body["metadata"],
            spec=body["spec"],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[volume_snapshot, *args.platform],
                retain_on_delete=True,
                ignore_changes=["spec.dataSource", "spec.dataSourceRef"],
            ),
        )

        self.outputs = {
            "sourceVolume": entry.volume_id,
            "sourcePv": entry.pv,
            "snapshotId": self.snapshot.id,
            "newClaim": f"{entry.namespace}/{self.claim_name}",
            "storageClass": plan.storage_class,
            "plannedIops": plan.performance.iops,
            "plannedThroughput": plan.performance.throughput,
            "monthlyPriceGp2": plan.cost.gp2 if plan.cost else None,
            "monthlyPriceGp3": plan.cost.gp3 if plan.cost else None,
        }
        self.register_outputs(self.outputs)
