"""What the controllers read and change of the simulated world, as a Protocol.

The rooms of `sim/kube` (and `sim/kube_api`) are written against this shape, not against
`sim/world.World`, which builds on them: so the world imports the controllers and never the other
way round (tests/test_layers.py holds that no import circle exists).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from gp3migrate.sim.ebs import Ebs
from gp3migrate.sim.kube.store import Cluster


@dataclass(frozen=True)
class Node:
    name: str
    zone: str
    instance_id: str


class ClusterState(Protocol):
    """The world as the controllers see it: the API objects, EBS, the nodes and the clock."""

    kube: Cluster
    ebs: Ebs
    nodes: dict[str, Node]
    rng: random.Random
    ticks: int
    # CSI migration of kubernetes.io/aws-ebs (on in every EKS >= 1.23).
    csi_migration: bool
    # The managed policy on the driver's role: "v1" or "v2".
    driver_policy: str
    api_calls: Counter[str]
    # What the GitOps owners' sources (git) hold: gitops.git_key -> manifests (kube/gitops.py).
    git: dict[str, list[dict[str, Any]]]
    # The ScaledObjects whose trigger is active (events arriving): (namespace, name) (kube/autoscalers.py).
    keda_active: set[tuple[str, str]]

    def event(self, kind: str, namespace: str, name: str, reason: str, message: str) -> None: ...
