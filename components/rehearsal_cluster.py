"""A small, throwaway EKS cluster to rehearse the migration on, built with pulumi-eks.

pulumi-eks creates and owns a *new* cluster, so it is used only here, never for the cluster being
migrated (DESIGN "Facts"). The cluster keeps the in-tree gp2 class pulumi-eks declares by
default, like the clusters this program migrates.

Every AWS resource here goes through one explicit provider for the stack's `region`: no stack sets
`aws:region`, and an ambient AWS_REGION or profile must not decide where a cluster is billed. The
cluster runs in the VPC the stack names (`rehearsalVpcId`, `rehearsalSubnetIds`) or in a small one
created here: public and private subnets in two zones, one NAT gateway, nodes in the private
subnets. The managed node group is a plain `aws.eks.NodeGroup` rather than pulumi-eks's
ManagedNodeGroup component, so its provider and inputs are visible in the plan and under mocks.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from components import type_token
from gp3migrate.config.settings import RehearsalSettings

# The AWS managed policies an EKS managed node group's role needs (EKS user guide, "Node IAM role").
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
# Stated rather than left to EKS's default, which depends on the version; Amazon Linux 2 AMIs
# stop at Kubernetes 1.32 (EKS user guide, "Amazon EKS optimized AMIs").
NODE_AMI_TYPE = "AL2023_x86_64_STANDARD"

# The created VPC: two zones, because EKS needs subnets in at least two (EKS user guide, "VPC and
# subnet requirements"). /20 subnets leave room for the VPC CNI's one address per pod.
VPC_CIDR = "10.0.0.0/16"
PUBLIC_SUBNET_CIDRS = ("10.0.0.0/20", "10.0.16.0/20")
PRIVATE_SUBNET_CIDRS = ("10.0.32.0/20", "10.0.48.0/20")
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class RehearsalClusterArgs:
    cluster_name: str
    rehearsal: RehearsalSettings


@dataclass(frozen=True)
class _Network:
    vpc_id: pulumi.Input[str]
    # eks.Cluster arguments naming the subnets its control plane uses.
    cluster_subnets: dict[str, Any]
    node_subnet_ids: Sequence[pulumi.Input[str]]
    # What nodes wait for before they boot: their route out (they pull images and join the cluster).
    ready: list[pulumi.Resource] = field(default_factory=list)


def _nth_zone(index: int, names: Sequence[str]) -> str:
    return sorted(names)[index]


class RehearsalCluster(pulumi.ComponentResource):
    aws_provider: aws.Provider
    cluster: eks.Cluster
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: RehearsalClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("RehearsalCluster"), name, None, opts)
        rehearsal = args.rehearsal
        self.aws_provider = aws.Provider(
            f"{name}-aws", region=rehearsal.region, opts=pulumi.ResourceOptions(parent=self)
        )
        network = self._existing_network(rehearsal) if rehearsal.vpc_id else self._created_network(name, args)
        node_role, node_policies = self._node_role(name)
        self.cluster = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=rehearsal.kubernetes_version,
            vpc_id=network.vpc_id,
            # The OIDC provider the driver's IRSA role trusts; the platform looks it up.
            create_oidc_provider=True,
            authentication_mode=eks.AuthenticationMode.API,
            skip_default_node_group=True,
            **network.cluster_subnets,
            # A component passes its providers on to the resources it creates.
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider}),
        )
        aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=args.cluster_name,
            node_role_arn=node_role.arn,
            subnet_ids=network.node_subnet_ids,
            ami_type=NODE_AMI_TYPE,
            instance_types=[rehearsal.node_type],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=rehearsal.node_count, min_size=rehearsal.node_count, max_size=rehearsal.node_count
            ),
            opts=self._on_aws(depends_on=[self.cluster, *node_policies, *network.ready]),
        )
        self.kubeconfig = self.cluster.kubeconfig_json
        self.register_outputs({"clusterName": args.cluster_name, "vpcId": network.vpc_id})

    def _on_aws(self, **options: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.aws_provider, **options)

    def _existing_network(self, rehearsal: RehearsalSettings) -> _Network:
        assert rehearsal.vpc_id is not None
        subnets = list(rehearsal.subnet_ids)
        return _Network(vpc_id=rehearsal.vpc_id, cluster_subnets={"subnet_ids": subnets}, node_subnet_ids=subnets)

    def _created_network(self, name: str, args: RehearsalClusterArgs) -> _Network:
        def tags(part: str) -> dict[str, str]:
            return {"Name": f"{args.cluster_name}-{part}"}

        # Zones that need no opt-in (not Local or Wavelength Zones), first two by name: the same
        # answer on every run in one account.
        zones = aws.get_availability_zones_output(
            state="available",
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.aws_provider),
        )
        # DNS hostnames and resolution: nodes cannot register with the cluster without them (EKS
        # user guide, "VPC and subnet requirements").
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags("vpc"),
            opts=self._on_aws(),
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=self._on_aws())
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-routes",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, gateway_id=gateway.id)],
            tags=tags("public"),
            opts=self._on_aws(),
        )
        public, _ = self._subnets(name, "public", PUBLIC_SUBNET_CIDRS, vpc, zones, public_routes, tags)
        # One NAT gateway for both zones: a rehearsal does not need zone-redundant egress.
        address = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", tags=tags("nat"), opts=self._on_aws(depends_on=[gateway]))
        nat = aws.ec2.NatGateway(
            f"{name}-nat",
            allocation_id=address.allocation_id,
            subnet_id=public[0].id,
            tags=tags("nat"),
            opts=self._on_aws(depends_on=[gateway]),
        )
        private_routes = aws.ec2.RouteTable(
            f"{name}-private-routes",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, nat_gateway_id=nat.id)],
            tags=tags("private"),
            opts=self._on_aws(),
        )
        private, private_associations = self._subnets(
            name, "private", PRIVATE_SUBNET_CIDRS, vpc, zones, private_routes, tags
        )
        return _Network(
            vpc_id=vpc.id,
            cluster_subnets={
                "public_subnet_ids": [s.id for s in public],
                "private_subnet_ids": [s.id for s in private],
            },
            node_subnet_ids=[s.id for s in private],
            ready=[private_routes, *private_associations],
        )

    def _subnets(
        self,
        name: str,
        kind: str,
        cidrs: Sequence[str],
        vpc: aws.ec2.Vpc,
        zones: pulumi.Output[aws.GetAvailabilityZonesResult],
        routes: aws.ec2.RouteTable,
        tags: Callable[[str], dict[str, str]],
    ) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.RouteTableAssociation]]:
        subnets, associations = [], []
        for index, cidr in enumerate(cidrs):
            subnet = aws.ec2.Subnet(
                f"{name}-{kind}-{index + 1}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zones.names.apply(partial(_nth_zone, index)),
                tags=tags(f"{kind}-{index + 1}"),
                opts=self._on_aws(),
            )
            association = aws.ec2.RouteTableAssociation(
                f"{name}-{kind}-{index + 1}-routes",
                subnet_id=subnet.id,
                route_table_id=routes.id,
                opts=self._on_aws(),
            )
            subnets.append(subnet)
            associations.append(association)
        return subnets, associations

    def _node_role(self, name: str) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        role = aws.iam.Role(
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
            opts=self._on_aws(),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=self._on_aws(),
            )
            for policy in NODE_POLICIES
        ]
        return role, attachments
