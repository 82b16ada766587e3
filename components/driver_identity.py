"""The IAM role the EBS CSI controller runs as: IRSA or EKS Pod Identity."""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import type_token
from gp3migrate.config.settings import Settings
from gp3migrate.iam import driver_policies
from gp3migrate.versions import CONTROLLER_SERVICE_ACCOUNT, DRIVER_NAMESPACE


@dataclass(frozen=True)
class DriverIdentityArgs:
    settings: Settings
    cluster_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]


class DriverIdentity(pulumi.ComponentResource):
    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    # Set for Pod Identity with the Helm install; the add-on carries its own association.
    pod_identity_association: aws.eks.PodIdentityAssociation | None

    def __init__(self, name: str, args: DriverIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("DriverIdentity"), name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        if settings.driver.identity == "irsa":
            trust = self._irsa_trust(name, settings, args.oidc_issuer)
        else:
            # Only the controller's service account of this cluster (driver_policies).
            trust = pulumi.Output.from_input(args.cluster_arn).apply(
                lambda arn: json.dumps(driver_policies.pod_identity_trust_policy(arn), sort_keys=True)
            )

        self.role = aws.iam.Role(
            f"{name}-role",
            name=driver_policies.role_name(settings.cluster.name),
            description=f"EBS CSI driver controller of EKS cluster {settings.cluster.name}",
            assume_role_policy=trust,
            opts=child,
        )
        self.role_arn = self.role.arn
        aws.iam.RolePolicyAttachment(
            f"{name}-managed-policy",
            role=self.role.name,
            policy_arn=self._managed_policy_arn(name, settings, args.cluster_arn),
            opts=child,
        )
        if settings.driver.kms_key_arns:
            aws.iam.RolePolicy(
                f"{name}-kms",
                role=self.role.name,
                policy=json.dumps(driver_policies.kms_policy(settings.driver.kms_key_arns), sort_keys=True),
                opts=child,
            )
        self.pod_identity_association = None
        if settings.driver.identity == "pod-identity" and settings.driver.install == "helm":
            self.pod_identity_association = aws.eks.PodIdentityAssociation(
                f"{name}-pod-identity",
                cluster_name=settings.cluster.name,
                namespace=DRIVER_NAMESPACE,
                service_account=CONTROLLER_SERVICE_ACCOUNT,
                role_arn=self.role.arn,
                opts=child,
            )
        self.register_outputs({"roleArn": self.role_arn})

    def _irsa_trust(self, name: str, settings: Settings, issuer: pulumi.Input[str]) -> pulumi.Output[str]:
        issuer_output = pulumi.Output.from_input(issuer)
        provider_arn: pulumi.Output[str]
        if settings.driver.create_oidc_provider:
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-oidc-provider",
                url=issuer_output,
                client_id_lists=["sts.amazonaws.com"],
                opts=pulumi.ResourceOptions(parent=self),
            ).arn
        else:
            # Most clusters already have one (eksctl, the console, terraform-aws-eks create it).
            provider_arn = aws.iam.get_open_id_connect_provider_output(
                url=issuer_output, opts=pulumi.InvokeOutputOptions(parent=self)
            ).arn
        return pulumi.Output.all(provider_arn, issuer_output).apply(
            lambda parts: json.dumps(driver_policies.irsa_trust_policy(parts[0], parts[1]), sort_keys=True)
        )

    def _managed_policy_arn(self, name: str, settings: Settings, cluster_arn: pulumi.Input[str]) -> pulumi.Input[str]:
        if settings.driver.managed_policy == "v1":
            return pulumi.Output.from_input(cluster_arn).apply(
                lambda arn: driver_policies.managed_policy_v1_arn(driver_policies.partition_of(arn))
            )
        return aws.iam.get_policy_output(
            name=driver_policies.MANAGED_POLICY_V2_NAME, opts=pulumi.InvokeOutputOptions(parent=self)
        ).arn
