"""The EBS CSI platform of one cluster, in order: snapshot API -> driver identity -> driver ->
storage classes and snapshot class."""

from dataclasses import dataclass, field

import pulumi

from components import type_token
from components.driver_check_provider import DriverCheck
from components.driver_identity import DriverIdentity, DriverIdentityArgs
from components.ebs_csi_driver import EbsCsiDriver, EbsCsiDriverArgs
from components.snapshot_support import SnapshotSupport, SnapshotSupportArgs
from components.storage_classes import StorageClasses, StorageClassesArgs
from gp3migrate.checks import driver_readiness
from gp3migrate.config.settings import Settings
from gp3migrate.planning.manifests import ClassTiers
from gp3migrate.versions import DRIVER_NAMESPACE


@dataclass(frozen=True)
class EbsCsiPlatformArgs:
    settings: Settings
    cluster_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    # The classes the restores need (gp3migrate.planning.plan.tiers) and what earlier `up`s applied.
    tiers: ClassTiers = field(default_factory=ClassTiers)
    # How the driver check of `driverInstall: present` reaches the cluster (ClusterAccess).
    kubeconfig: pulumi.Input[str] | None = None
    kube_context: str | None = None


class EbsCsiPlatform(pulumi.ComponentResource):
    # None with driverInstall `present`: the running driver already has its identity.
    identity: DriverIdentity | None
    snapshots: SnapshotSupport
    driver: EbsCsiDriver
    # With `present` or `driverAdopt`: what the running driver must have, checked before any migration step.
    driver_check: DriverCheck | None
    classes: StorageClasses
    # What every migration waits for: the driver, the snapshot API and the snapshot class.
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: EbsCsiPlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("EbsCsiPlatform"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        self.snapshots = SnapshotSupport(f"{name}-snapshots", SnapshotSupportArgs(settings), opts=child)
        self.identity = None
        driver_after: list[pulumi.Resource] = list(self.snapshots.ready)
        role_arn: pulumi.Input[str] = ""
        if settings.driver.install != "present":
            self.identity = DriverIdentity(
                f"{name}-identity",
                DriverIdentityArgs(settings, cluster_arn=args.cluster_arn, oidc_issuer=args.oidc_issuer),
                opts=child,
            )
            role_arn = self.identity.role_arn
            if self.identity.pod_identity_association is not None:
                driver_after.append(self.identity.pod_identity_association)
        self.driver = EbsCsiDriver(
            f"{name}-driver",
            EbsCsiDriverArgs(settings, role_arn=role_arn, depends_on=driver_after),
            opts=child,
        )
        installed = [self.driver.install] if self.driver.install is not None else []
        self.classes = StorageClasses(
            f"{name}-classes",
            StorageClassesArgs(settings, tiers=args.tiers, depends_on=[*installed, *self.snapshots.ready]),
            opts=child,
        )
        # An adopted driver also runs with its own settings until driverAdopt is false.
        kept_as_it_runs = settings.driver.install == "present" or settings.driver.adopt
        self.driver_check = self._check_present_driver(name, args) if kept_as_it_runs else None
        checked = [self.driver_check] if self.driver_check is not None else []
        self.ready = [*installed, *self.snapshots.ready, self.classes.snapshot_class, *checked]
        self.register_outputs(
            {
                "roleArn": role_arn or None,
                "driver": {"kind": self.driver.kind, "version": self.driver.version},
                "gp3ClassName": self.classes.gp3_class_name,
                "snapshotClassName": self.classes.snapshot_class_name,
            }
        )

    def _check_present_driver(self, name: str, args: EbsCsiPlatformArgs) -> DriverCheck:
        """After the snapshot support: the fix for a driver without its snapshotter sidecar is to
        render it again once the snapshot CRDs exist, which this stack may be what installs."""
        settings = args.settings
        if args.kubeconfig is None:
            raise ValueError("EbsCsiPlatformArgs.kubeconfig is required with driverInstall: present (the driver check)")
        keys = driver_readiness.keys_in_use(settings)
        return DriverCheck(
            f"{name}-driver-check",
            cluster_name=settings.cluster.name,
            region=settings.cluster.region,
            namespace=DRIVER_NAMESPACE,
            kms_key_arns=keys,
            kubeconfig=args.kubeconfig,
            context=args.kube_context,
            adopted=settings.driver.adopt,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.snapshots.ready)),
        )

    def ready_for(self, storage_class: str) -> list[pulumi.Resource]:
        """What a migration restoring into `storage_class` waits for: the platform and that class
        only, so a fleet with many tiers does not make every volume wait on all. A migration
        whose claim already exists keeps the class it names (gp3migrate.planning.plan.claim_classes),
        which may have left the program: it has nothing to wait for."""
        declared = self.classes.classes.get(storage_class)
        return [*self.ready, *([declared] if declared is not None else [])]
