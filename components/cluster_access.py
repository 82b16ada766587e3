"""Access to the existing EKS cluster: an AWS provider for its region and a Kubernetes provider."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import type_token
from gp3migrate.checks.kubeconfig import eks_kubeconfig
from gp3migrate.config.settings import ClusterSettings


@dataclass(frozen=True)
class ClusterAccessArgs:
    cluster: ClusterSettings
    # Set for a rehearsal: the cluster this stack created, and the kubeconfig it came with.
    created: pulumi.Resource | None = None
    created_kubeconfig: pulumi.Input[str] | None = None


class ClusterAccess(pulumi.ComponentResource):
    """Looks the cluster up (it is never created or changed here) and builds providers for it."""

    aws_provider: aws.Provider
    k8s_provider: k8s.Provider
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    # What the kubernetes Provider was given; the claim-release step talks to the same cluster.
    kubeconfig: pulumi.Output[str]
    kube_context: str | None

    def __init__(self, name: str, args: ClusterAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("ClusterAccess"), name, None, opts)
        settings = args.cluster
        self.aws_provider = aws.Provider(
            f"{name}-aws", region=settings.region, opts=pulumi.ResourceOptions(parent=self)
        )
        cluster = aws.eks.get_cluster_output(
            name=settings.name,
            opts=pulumi.InvokeOutputOptions(
                parent=self, provider=self.aws_provider, depends_on=[args.created] if args.created else None
            ),
        )
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.oidc_issuer = cluster.apply(lambda c: c.identities[0].oidcs[0].issuer)
        kubeconfig: pulumi.Input[str]
        # A kubeconfig from config or from the rehearsal cluster may hold credentials (a token, a
        # client key): secret wherever it flows, even when `pulumi config set` was not told
        # `--secret` (pulumi-kubernetes issue 1353: a plain input is stored in clear in the state).
        if args.created_kubeconfig is not None:
            kubeconfig = pulumi.Output.secret(args.created_kubeconfig)
        elif settings.kubeconfig:
            kubeconfig = pulumi.Output.secret(settings.kubeconfig)
        else:
            # Built from the lookup: the endpoint, the cluster's CA and an `aws eks get-token` exec
            # entry, no credential; kept plain so a preview shows what changed in it.
            # Applied to the whole result: Output.all would turn the nested results into dicts.
            kubeconfig = cluster.apply(
                lambda c: eks_kubeconfig(
                    cluster_name=settings.name,
                    endpoint=c.endpoint,
                    certificate_authority=c.certificate_authorities[0].data,
                    region=settings.region,
                    role_arn=settings.kubeconfig_role_arn,
                )
            )
        self.kubeconfig = pulumi.Output.from_input(kubeconfig)
        self.kube_context = settings.kube_context
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            context=settings.kube_context,
            # The provider is replaced only when this changes, not when the kubeconfig's text does;
            # a replaced provider would replace every Kubernetes object (DESIGN "Facts").
            cluster_identifier=cluster.arn,
            # The provider's own state echoes its kubeconfig input: keep that output secret too
            # (Pulumi docs, "additionalSecretOutputs").
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["kubeconfig"]),
        )
        self.register_outputs({"clusterArn": self.cluster_arn, "oidcIssuer": self.oidc_issuer})
