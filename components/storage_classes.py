"""The gp3 StorageClass (default, after gp2 is demoted), the gp3 classes restores need (one per
performance, fsType and encryption key), and the VolumeSnapshotClass for ebs.csi.aws.com."""

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import type_token
from components.k8s_object import KubernetesObject
from gp3migrate import manifests
from gp3migrate.config import Settings


@dataclass(frozen=True)
class StorageClassesArgs:
    settings: Settings
    # The classes the restores need beyond the main class (one per distinct set of parameters).
    tiers: manifests.ClassTiers = field(default_factory=manifests.ClassTiers)
    # The driver (a class without its provisioner running leaves claims Pending) and the CRDs.
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class StorageClasses(pulumi.ComponentResource):
    classes: dict[str, k8s.storage.v1.StorageClass]
    snapshot_class: KubernetesObject
    gp3_class_name: str
    snapshot_class_name: str

    def __init__(self, name: str, args: StorageClassesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("StorageClasses"), name, None, opts)
        storage = args.settings.storage
        after_platform = list(args.depends_on)
        default_after: list[pulumi.Resource] = []
        if storage.demote_gp2:
            # EKS owns gp2 (creating it again fails with AlreadyExists): patch its annotation only.
            # Destroying a Patch gives its fields back (pulumi-kubernetes Patch docs); retained so
            # a destroy never leaves two default classes.
            demote = k8s.storage.v1.StorageClassPatch(
                f"{name}-gp2-demotion",
                metadata=manifests.gp2_demotion_patch(storage)["metadata"],
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            default_after = [demote]

        self.classes = {}
        for spec in manifests.class_specs(storage, args.tiers):
            body = manifests.storage_class(spec)
            self.classes[spec.name] = k8s.storage.v1.StorageClass(
                f"{name}-{spec.name}",
                metadata=body["metadata"],
                provisioner=body["provisioner"],
                parameters=body["parameters"],
                reclaim_policy=body["reclaimPolicy"],
                volume_binding_mode=body["volumeBindingMode"],
                allow_volume_expansion=body["allowVolumeExpansion"],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # The default class is declared only once gp2 is no longer default.
                    depends_on=after_platform + (default_after if spec.default else []),
                    # Parameters are immutable and the name is fixed: replace by delete-then-create.
                    delete_before_replace=True,
                    # Restored claims name these classes; removing them breaks expansion and
                    # StatefulSet scale-up, so a destroy leaves them in place.
                    retain_on_delete=True,
                ),
            )
        self.gp3_class_name = storage.gp3_class_name
        self.snapshot_class_name = storage.snapshot_class_name
        self.snapshot_class = KubernetesObject(
            f"{name}-snapshot-class",
            manifests.volume_snapshot_class(storage),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after_platform, delete_before_replace=True),
        )
        self.register_outputs({"gp3ClassName": self.gp3_class_name, "snapshotClassName": self.snapshot_class_name})
