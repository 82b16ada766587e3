"""The gp3 StorageClass (default, after gp2 is demoted), the gp3 classes restores need (one per
performance, fsType and encryption key), and the VolumeSnapshotClass for ebs.csi.aws.com.

Also publishes the stack output `storageClassParameters`: every class this stack has applied,
with the fields that cannot change. The next run reads it back (gp3migrate/planning/class_changes.py) and
refuses, before registering anything, to declare a name with other fields.
"""

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import type_token
from components.k8s_object import KubernetesObject
from gp3migrate.config.settings import Settings
from gp3migrate.planning import manifests
from gp3migrate.planning.plan import CLASS_RECORD_OUTPUT


@dataclass(frozen=True)
class StorageClassesArgs:
    settings: Settings
    # The classes the restores need beyond the main class, and what earlier `up`s applied.
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
        specs = manifests.class_specs(storage, args.tiers)
        former_defaults: list[pulumi.Resource] = []
        for spec in specs:
            body = manifests.storage_class(spec)
            created = k8s.storage.v1.StorageClass(
                f"{name}-{spec.name}",
                metadata=body["metadata"],
                provisioner=body["provisioner"],
                parameters=body["parameters"],
                reclaim_policy=body["reclaimPolicy"],
                volume_binding_mode=body["volumeBindingMode"],
                allow_volume_expansion=body["allowVolumeExpansion"],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # The default class is declared only once gp2 and any former main class are
                    # no longer default (specs list former main classes first).
                    depends_on=after_platform + (default_after + former_defaults if spec.default else []),
                    # Restored claims name these classes; removing them breaks expansion and
                    # StatefulSet scale-up, so a destroy, or a class leaving the program, leaves
                    # them in place. No delete_before_replace: the program never plans a
                    # replacement (gp3migrate/planning/class_changes.py refuses one), and if one came, the
                    # kept object would fail the create in either order.
                    retain_on_delete=True,
                    # A class that left the program and returns is still in the cluster: adopt
                    # it (its inputs equal what it was created with, or class_changes refused).
                    # Left in place on later runs, the option is inert: a resource already in
                    # the state with that id is "treated like any other resource" (pulumi/pulumi
                    # developer-docs/architecture/import.md).
                    import_=spec.name if spec.adopt else None,
                ),
            )
            self.classes[spec.name] = created
            if spec.role == "retired":
                former_defaults.append(created)
        # A class that leaves the program (a tier no restore needs any more) is kept in the
        # cluster: the engine skips the delete of a resource whose *old state* says
        # retainOnDelete (pulumi/pulumi pkg/resource/deploy/step.go, DeleteStep.Apply; issue 13428).
        # Published only once every class is applied, so the record never names a class that a
        # failed update did not create.
        record = manifests.class_record(specs, args.tiers.applied)
        pulumi.export(
            CLASS_RECORD_OUTPUT, pulumi.Output.all(*[c.id for c in self.classes.values()]).apply(lambda _: record)
        )
        self.gp3_class_name = storage.gp3_class_name
        self.snapshot_class_name = storage.snapshot_class_name
        self.snapshot_class = KubernetesObject(
            f"{name}-snapshot-class",
            manifests.volume_snapshot_class(storage),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after_platform, delete_before_replace=True),
        )
        self.register_outputs({"gp3ClassName": self.gp3_class_name, "snapshotClassName": self.snapshot_class_name})
