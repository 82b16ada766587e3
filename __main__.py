"""Moves an existing EKS cluster from the in-tree gp2 plugin to the EBS CSI driver with gp3.

Config is validated before anything is registered; then the cluster is looked up, the platform
declared, and one VolumeMigration per `migrations` entry.
"""

import pulumi

from components.cluster_access import ClusterAccess, ClusterAccessArgs
from components.platform import EbsCsiPlatform, EbsCsiPlatformArgs
from components.stack_config import read_checked_settings
from components.volume_migration import VolumeMigration, VolumeMigrationArgs
from gp3migrate.phases import applied_record
from gp3migrate.plan import fleet_monthly_saving, plan_all, tiers

settings, history = read_checked_settings()
plans = plan_all(settings)

access = ClusterAccess("cluster", ClusterAccessArgs(settings.cluster))
on_cluster = pulumi.ResourceOptions(providers=[access.aws_provider, access.k8s_provider])

platform = EbsCsiPlatform(
    "platform",
    EbsCsiPlatformArgs(settings, cluster_arn=access.cluster_arn, oidc_issuer=access.oidc_issuer, tiers=tiers(plans)),
    opts=on_cluster,
)

migrations = {
    plan.entry.key: VolumeMigration(
        plan.entry.resource_name,
        VolumeMigrationArgs(
            settings,
            plan,
            stack=pulumi.get_stack(),
            platform=platform.ready_for(plan.storage_class),
            previous=history.get(plan.entry.key),
            kubeconfig=access.kubeconfig,
            kube_context=access.kube_context,
        ),
        opts=on_cluster,
    )
    for plan in plans
}

pulumi.export("driverRoleArn", platform.identity.role_arn)
pulumi.export("driver", {"kind": platform.driver.kind, "version": platform.driver.version})
pulumi.export("gp3StorageClass", platform.classes.gp3_class_name)
pulumi.export("volumeSnapshotClass", platform.classes.snapshot_class_name)
pulumi.export("migrations", {key: migration.outputs for key, migration in migrations.items()})
pulumi.export("fleetMonthlySaving", fleet_monthly_saving(plans))
# Read by the next run (phase transitions) and by the promotion gate of a later stack.
pulumi.export("migrationPhases", {key: applied_record(m.applied) for key, m in migrations.items()})
