"""Moves an existing EKS cluster from the in-tree gp2 plugin to the EBS CSI driver with gp3.

Config is validated before anything is registered; then the cluster is looked up, the platform
declared, and one VolumeMigration per `migrations` entry.
"""

import pulumi

from components.cluster_access import ClusterAccess, ClusterAccessArgs
from components.platform import EbsCsiPlatform, EbsCsiPlatformArgs
from components.stack_config import read_settings

settings = read_settings()

access = ClusterAccess("cluster", ClusterAccessArgs(settings.cluster))
on_cluster = pulumi.ResourceOptions(providers=[access.aws_provider, access.k8s_provider])

platform = EbsCsiPlatform(
    "platform",
    EbsCsiPlatformArgs(settings, cluster_arn=access.cluster_arn, oidc_issuer=access.oidc_issuer),
    opts=on_cluster,
)

pulumi.export("driverRoleArn", platform.identity.role_arn)
pulumi.export("driver", {"kind": platform.driver.kind, "version": platform.driver.version})
pulumi.export("gp3StorageClass", platform.classes.gp3_class_name)
pulumi.export("volumeSnapshotClass", platform.classes.snapshot_class_name)
