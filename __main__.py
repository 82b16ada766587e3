"""Moves an existing EKS cluster from the in-tree gp2 plugin to the EBS CSI driver with gp3.

Config, phase edits and the promotion gate are checked before anything is registered; then the
cluster is looked up (or, for a rehearsal, created), the platform declared, and one
VolumeMigration per `migrations` entry.
"""

import gc
import os

import pulumi

from components.cluster_access import ClusterAccess, ClusterAccessArgs
from components.demo_workload import DemoWorkload, DemoWorkloadArgs
from components.platform import EbsCsiPlatform, EbsCsiPlatformArgs
from components.rehearsal_cluster import RehearsalCluster, RehearsalClusterArgs
from components.stack_config import history_of, read_checked_settings
from components.volume_migration import VolumeMigration, declare_migrations, measured_downtime
from gp3migrate.config.phases import applied_record
from gp3migrate.config.promotion import platform_versions, proven_phases
from gp3migrate.config.waves import unmatched_warnings
from gp3migrate.planning.follow_up import OwnerFacts, follow_up, left_held_warnings, unresumed_warnings
from gp3migrate.planning.plan import fleet_monthly_saving, plan_all, tiers

# Most of an evaluation's time went to the cyclic collector re-scanning a heap that only grows
# (issue 8 measurements): the modules are frozen out of its scans and it runs less often. The
# program is a short-lived process; nothing it allocates needs collecting before it exits.
# Not under mocks: the tests and the simulation run this program many times in one long-lived
# process, where frozen objects would never be freed. The benchmark's one-run child processes ask
# for it (GP3MIGRATE_TUNE_GC=1) to measure what a real `pulumi up` gets.
under_mocks = isinstance(pulumi.runtime.settings.get_monitor(), pulumi.runtime.mocks.MockMonitor)
if not under_mocks or os.environ.get("GP3MIGRATE_TUNE_GC") == "1":
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

settings, previous_outputs = read_checked_settings()
for warning in unmatched_warnings(settings.waves, settings.migrations):
    pulumi.log.warn(warning)
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
        kubeconfig=access.kubeconfig,
        kube_context=access.kube_context,
    ),
    opts=on_cluster,
)
if rehearsal:
    DemoWorkload(
        "demo",
        DemoWorkloadArgs(settings.storage.gp2_class_name, depends_on=list(platform.ready)),
        opts=on_cluster,
    )

migrations = declare_migrations(
    plans,
    settings=settings,
    stack=pulumi.get_stack(),
    history=history,
    previous_downtime=measured_downtime(previous_outputs),
    platform_for={plan.storage_class: platform.ready_for(plan.storage_class) for plan in plans},
    kubeconfig=access.kubeconfig,
    kube_context=access.kube_context,
    opts=on_cluster,
)


def once_done(migration: VolumeMigration, value: object) -> pulumi.Output[object]:
    """`value`, published only when every step of the migration's phase completed: a failed update
    saves the outputs it registered (pulumi/pulumi PR 15754), and a phase recorded as done that
    was not would let the next phase, or prod's promotion gate, through."""
    return pulumi.Output.all(*[step.id for step in migration.steps]).apply(lambda _: value)


pulumi.export("driverRoleArn", platform.identity.role_arn if platform.identity else None)
pulumi.export("driver", {"kind": platform.driver.kind, "version": platform.driver.version})
pulumi.export("gp3StorageClass", platform.classes.gp3_class_name)
pulumi.export("volumeSnapshotClass", platform.classes.snapshot_class_name)
pulumi.export("migrations", {key: migration.outputs for key, migration in migrations.items()})
pulumi.export("fleetMonthlySaving", fleet_monthly_saving(plans))
# Once a claim names its new class, what each owner's source must say before it applies again
# (gp3migrate/planning/follow_up.py). Plain data from config: shown by preview, no step waited on.
after_cutover = [p for p in plans if p.entry.phase in ("cutover", "finalize", "cleanup")]
pulumi.export("followUp", {p.entry.key: follow_up(OwnerFacts.of(p.entry, p.storage_class)) for p in after_cutover})
for plan in after_cutover:
    # With holdOwners the program resumed the owners itself (resume-owners, after the scale-back);
    # otherwise the user held them, and the program cannot know they were resumed.
    if plan.entry.phase == "finalize" and not plan.entry.hold_owners:
        for warning in unresumed_warnings(OwnerFacts.of(plan.entry, plan.storage_class)):
            pulumi.log.warn(warning)
    for warning in left_held_warnings(OwnerFacts.of(plan.entry, plan.storage_class)):
        pulumi.log.warn(warning)
# Read by the next run (phase transitions) and by stacks promoted from this one.
pulumi.export("migrationPhases", {key: once_done(m, applied_record(m.applied)) for key, m in migrations.items()})
versions = platform_versions(settings)
pulumi.export("platformVersions", versions.as_output())
pulumi.export(
    "provenPhases",
    pulumi.Output.all(*[once_done(m, m.applied.phase) for m in migrations.values()]).apply(
        lambda phases: proven_phases(previous_outputs.get("provenPhases"), versions, list(phases))
    ),
)
if settings.promotion and settings.promotion.override_reason:
    pulumi.export("promotionOverride", settings.promotion.override_reason)
