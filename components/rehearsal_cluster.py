"""A small, throwaway EKS cluster to rehearse the migration on, built with pulumi-eks.

pulumi-eks creates and owns a *new* cluster, so it is used only here, never for the cluster being
migrated (DESIGN "Facts"). The cluster keeps the in-tree gp2 class pulumi-eks declares by
default, like the clusters this program migrates.
"""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from components import type_token
from gp3migrate.config import RehearsalSettings

# The AWS managed policies an EKS managed node group's role needs (EKS user guide, "Node IAM role").
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)


@dataclass(frozen=True)
class RehearsalClusterArgs:
    cluster_name: str
    rehearsal: RehearsalSettings


class RehearsalCluster(pulumi.ComponentResource):
    cluster: eks.Cluster
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: RehearsalClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("RehearsalCluster"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                },
                sort_keys=True,
            ),
            opts=child,
        )
        for policy in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=child,
            )
        self.cluster = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.rehearsal.kubernetes_version,
            # The OIDC provider the driver's IRSA role trusts; the platform looks it up.
            create_oidc_provider=True,
            authentication_mode=eks.AuthenticationMode.API,
            skip_default_node_group=True,
            opts=child,
        )
        eks.ManagedNodeGroup(
            f"{name}-nodes",
            cluster=self.cluster,
            node_role=node_role,
            instance_types=[args.rehearsal.node_type],
            scaling_config={
                "desired_size": args.rehearsal.node_count,
                "min_size": args.rehearsal.node_count,
                "max_size": args.rehearsal.node_count,
            },
            opts=child,
        )
        self.kubeconfig = self.cluster.kubeconfig_json
        self.register_outputs({"clusterName": args.cluster_name})
