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


class EbsCsiDriver(pulumi.ComponentResource):
    # None with `present`: the driver the cluster runs is kept as it is (installing it again fails
    # on the existing release, objects or add-on; DESIGN "Facts").
    install: pulumi.Resource | None
    kind: str
    version: str

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
                    # Adopt the running release: its inputs must be what runs now, or the import
                    # fails (pulumi step.go ImportStep); the pinned version comes in a later `up`.
                    import_=f"{DRIVER_NAMESPACE}/{EBS_CSI_CHART_NAME}" if settings.driver.adopt else None,
                ),
            )
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
                    # EKS add-on import id: `<cluster name>:<add-on name>` (pulumi-aws aws.eks.Addon).
                    import_=f"{settings.cluster.name}:{EBS_CSI_ADDON_NAME}" if settings.driver.adopt else None,
                ),
            )
        self.register_outputs({"kind": self.kind, "version": self.version})
