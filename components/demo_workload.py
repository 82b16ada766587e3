"""The runbook's demo workload on the rehearsal cluster: a gp2 claim and a timestamp writer."""

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import type_token
from gp3migrate.planning import demo_manifests


@dataclass(frozen=True)
class DemoWorkloadArgs:
    gp2_class_name: str
    # The driver: on EKS 1.23+ even in-tree gp2 claims are provisioned through it (CSI migration).
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class DemoWorkload(pulumi.ComponentResource):
    def __init__(self, name: str, args: DemoWorkloadArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("DemoWorkload"), name, None, opts)
        claim = demo_manifests.demo_claim(args.gp2_class_name)
        deployment = demo_manifests.demo_deployment()
        # The claim is the data under test: kept when the demo leaves the stack; the migration
        # replaces it by name (same-name) or beside it (rename).
        pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=claim["metadata"],
            spec=claim["spec"],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=args.depends_on, retain_on_delete=True, ignore_changes=["spec", "metadata"]
            ),
        )
        k8s.apps.v1.Deployment(
            f"{name}-writer",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            # The cutover scales it; this program must not scale it back on the next `up`.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pvc], ignore_changes=["spec.replicas"]),
        )
        self.register_outputs({})
