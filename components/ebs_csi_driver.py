"""The Amazon EBS CSI driver: the Helm chart, or the EKS managed add-on."""

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import type_token
from gp3migrate.config.settings import Settings
from gp3migrate.planning import manifests
from gp3migrate.versions import (
    CONTROLLER_SERVICE_ACCOUNT,
    DRIVER_NAMESPACE,
    EBS_CSI_ADDON_NAME,
    EBS_CSI_CHART_NAME,
    EBS_CSI_CHART_REPO,
)


@dataclass(frozen=True)
class EbsCsiDriverArgs:
    settings: Settings
    role_arn: pulumi.Input[str]
    # The snapshot CRDs and controller, and the role's association: installed first.
    depends_on: list[pulumi.Resource] = field(default_factory=list)


# Adoption (`driverAdopt: true`) changes nothing of the running driver; the move to this stack's
# pinned version and values is the later `up` with `driverAdopt: false`, an update its preview
# shows. Since pulumi 3.174 an `import` is read and then updated to the declared inputs in the same
# `up` (pulumi/pulumi 19339: step.go ImportStep.Apply, step_generator.go continueStepsFromImport),
# and the ignoreChanges paths take the values read first (processIgnoreChanges): so while adopting,
# the inputs that decide what runs are ignored. The rest may still differ (the release's
# `repositoryOpts`, which Helm's Read cannot return; the add-on's `preserve` and `resolveConflicts*`,
# which EKS does not store): their update re-applies the same chart version and values, or calls
# no EKS API (terraform-provider-aws eks/addon.go resourceAddonUpdate). A replacement after the
# import fails the `up` while the `import` id is declared (continueStepsFromDiff).
HELM_ADOPT_IGNORED = ["version", "values"]
ADDON_ADOPT_IGNORED = ["addon_version", "configuration_values", "service_account_role_arn", "pod_identity_associations"]


class EbsCsiDriver(pulumi.ComponentResource):
    # None with `present`: the driver the cluster runs is kept as it is (installing it again fails
    # on the existing release, objects or add-on; DESIGN "Facts").
    install: pulumi.Resource | None
    kind: str
    # While adopting: the version the install's state holds (what runs), not the declared one.
    version: pulumi.Input[str]

    def __init__(self, name: str, args: EbsCsiDriverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("EbsCsiDriver"), name, None, opts)
        settings = args.settings
        # Every PV on the cluster, the in-tree ones included (CSI migration), is served by this
        # driver: destroying the stack must not uninstall it.
        if settings.driver.install == "present":
            self.kind, self.version = "present", settings.driver.running_version or ""
            self.install = None
        elif settings.driver.install == "helm":
            irsa_role = args.role_arn if settings.driver.identity == "irsa" else None
            self.kind, self.version = "helm", settings.driver.chart_version
            self.install = k8s.helm.v3.Release(
                f"{name}-release",
                name=EBS_CSI_CHART_NAME,
                chart=EBS_CSI_CHART_NAME,
                version=settings.driver.chart_version,
                namespace=DRIVER_NAMESPACE,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=EBS_CSI_CHART_REPO),
                values=manifests.helm_values(settings, irsa_role),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=args.depends_on,
                    retain_on_delete=True,
                    # Helm release import id: `<namespace>/<name>` (pulumi-kubernetes helm_release.go Read).
                    import_=f"{DRIVER_NAMESPACE}/{EBS_CSI_CHART_NAME}" if settings.driver.adopt else None,
                    ignore_changes=HELM_ADOPT_IGNORED if settings.driver.adopt else None,
                ),
            )
            if settings.driver.adopt:
                self.version = self.install.version.apply(lambda v: v or "")
        else:
            assert settings.driver.addon_version is not None  # enforced by load_settings
            self.kind, self.version = "addon", settings.driver.addon_version
            identity: dict[str, pulumi.Input[str] | None] = {"service_account_role_arn": None}
            associations = None
            if settings.driver.identity == "irsa":
                identity["service_account_role_arn"] = args.role_arn
            else:
                associations = [
                    aws.eks.AddonPodIdentityAssociationArgs(
                        role_arn=args.role_arn, service_account=CONTROLLER_SERVICE_ACCOUNT
                    )
                ]
            self.install = aws.eks.Addon(
                f"{name}-addon",
                cluster_name=settings.cluster.name,
                addon_name=EBS_CSI_ADDON_NAME,
                addon_version=settings.driver.addon_version,
                configuration_values=manifests.addon_configuration(settings),
                service_account_role_arn=identity["service_account_role_arn"],
                pod_identity_associations=associations,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="PRESERVE",
                preserve=True,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=args.depends_on,
                    # `preserve` is not read back on import: until an update stores it, a delete
                    # would remove the driver's objects with the add-on.
                    retain_on_delete=True,
                    # EKS add-on import id: `<cluster name>:<add-on name>` (pulumi-aws aws.eks.Addon).
                    import_=f"{settings.cluster.name}:{EBS_CSI_ADDON_NAME}" if settings.driver.adopt else None,
                    ignore_changes=ADDON_ADOPT_IGNORED if settings.driver.adopt else None,
                ),
            )
            if settings.driver.adopt:
                self.version = self.install.addon_version
        self.register_outputs({"kind": self.kind, "version": self.version})
