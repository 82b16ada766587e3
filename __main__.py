"""Moves an existing EKS cluster from the in-tree gp2 plugin to the EBS CSI driver with gp3.

Config, phase edits and the promotion gate are checked before anything is registered; then the
cluster is looked up (or, for a rehearsal, created), the platform declared, and one
VolumeMigration per `migrations` entry.
"""

import pulumi

from components.cluster_access import ClusterAccess, ClusterAccessArgs
from components.demo_workload import DemoWorkload, DemoWorkloadArgs
from components.platform import EbsCsiPlatform, EbsCsiPlatformArgs
from components.rehearsal_cluster import RehearsalCluster, RehearsalClusterArgs
from components.stack_config import history_of, read_checked_settings
from components.volume_migration import VolumeMigration, VolumeMigrationArgs
from gp3migrate.phases import applied_record
from gp3migrate.plan import fleet_monthly_saving, plan_all, tiers
from gp3migrate.promotion import platform_versions, proven_phases

settings, previous_outputs = read_checked_settings()
history = history_of(previous_outputs)
plans = plan_all(settings, previous_outputs)

rehearsal = (
    RehearsalCluster("rehearsal", RehearsalClusterArgs(settings.cluster.name, settings.rehearsal))
    if settings.rehearsal
    else None
)
access = ClusterAccess(
    "cluster",
    ClusterAccessArgs(
        settings.cluster,
        created=rehearsal.cluster if rehearsal else None,
        created_kubeconfig=rehearsal.kubeconfig if rehearsal else None,
    ),
)
on_cluster = pulumi.ResourceOptions(providers=[access.aws_provider, access.k8s_provider])

platform = EbsCsiPlatform(
    "platform",
    EbsCsiPlatformArgs(
        settings,
        cluster_arn=access.cluster_arn,
        oidc_issuer=access.oidc_issuer,
        tiers=tiers(plans, settings.storage, previous_outputs),
    ),
    opts=on_cluster,
)
if rehearsal:
    DemoWorkload(
        "demo",
        DemoWorkloadArgs(settings.storage.gp2_class_name, depends_on=[platform.driver.install]),
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
# Read by the next run (phase transitions) and by stacks promoted from this one.
pulumi.export("migrationPhases", {key: applied_record(m.applied) for key, m in migrations.items()})
versions = platform_versions(settings)
pulumi.export("platformVersions", versions.as_output())
pulumi.export(
    "provenPhases",
    proven_phases(previous_outputs.get("provenPhases"), versions, [m.applied.phase for m in migrations.values()]),
)
if settings.promotion and settings.promotion.override_reason:
    pulumi.export("promotionOverride", settings.promotion.override_reason)
