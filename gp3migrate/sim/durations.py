"""How long the simulated world's operations take, in seconds: one table, each entry citing its
source or saying it is an assumption. The models draw from these ranges with the world's seeded
generator and round up to the clock's ticks (gp3migrate/sim/clock.py, TICK_SECONDS = 5 s), so a
range shorter than a tick still takes one.

What is not here takes no simulated time: an API call (create, patch, delete of an object), a
provider's diff, the program's own code. Time passes only where something waits: a provider's
await, a gate's poll (`sleep(poll_seconds)`, gp3migrate/checks/preconditions.py), or the queue for a
dynamic-provider worker (gp3migrate/sim/providers.py `WorkerPool`).
"""

from __future__ import annotations

import math
import random

from gp3migrate.planning import up_batches
from gp3migrate.sim.clock import TICK_SECONDS

Range = tuple[float, float]

# A deleted pod runs on (and writes) until its containers stop: at most its grace period,
# `terminationGracePeriodSeconds`, default 30 s (Kubernetes API PodSpec; kubelet kills at the end of
# it). How soon within it an app exits on SIGTERM is the app's: an assumption, 5-15 s.
POD_TERMINATION: Range = (5, 15)

# From the pod gone to the volume `available`: the kubelet unmounts and drops the volume from
# node.status.volumesInUse (reported with the node status, every 10 s: kubelet
# `nodeStatusUpdateFrequency`), the attach-detach controller's reconciler (every 100 ms:
# kubernetes `pkg/controller/volume/attachdetach/attach_detach_controller.go` reconcilerLoopPeriod)
# calls ControllerUnpublish, the driver DetachVolume, and EC2 moves `detaching` -> `available`. The
# EC2 part is not published: an assumption, 5-10 s, so 5-20 s in all.
VOLUME_DETACH: Range = (5, 20)

# AttachVolume until the pod's volume is `in-use` on its node (the attach-detach controller, the
# driver's ControllerPublish, EC2 `attaching` -> `attached`) and mounted: an assumption, 5-10 s.
VOLUME_ATTACH: Range = (5, 10)

# ModifyVolume: `modifying` until the new type applies, then `optimizing` (EC2 user guide "Monitor
# the progress of volume modifications": modifying takes seconds, optimizing minutes to hours with
# the size). An assumption, shortened for the simulation's small volumes: 5-10 s modifying, 10-30 s
# optimizing.
MODIFY_MODIFYING: Range = (5, 10)
MODIFY_OPTIMIZING: Range = (10, 30)

# CreateSnapshot `pending` -> `completed`. EBS snapshots are incremental (EC2 user guide "How Amazon
# EBS snapshots work"): the first copies every written block, a later one only the blocks changed
# since. AWS publishes no rate: an assumption, 10-30 s for any snapshot plus, for a volume's first,
# 0.1 s per GiB of its size (a volume's written blocks are not modelled; the size bounds them). The
# program waits 30 minutes plus 1 per 2 GiB (gp3migrate/planning/plan.py), which this stays inside.
SNAPSHOT_BASE: Range = (10, 30)
SNAPSHOT_FIRST_SECONDS_PER_GIB = 0.1

# A claim bound to its (pre-bound or provisioned) PV: the PV controller acts on the watch event at
# once (kubernetes `pkg/controller/volume/persistentvolume/pv_controller_base.go` claimWorker; the
# periodic resync, `--pvclaimbinder-sync-period`, is 15 s), here at the next tick of the world.
PVC_BIND: Range = (0, TICK_SECONDS)

# The dynamic-provider host's gRPC server: `grpc.server(futures.ThreadPoolExecutor(max_workers=4))`
# (pulumi `sdk/python/lib/pulumi/dynamic/__main__.py` main(), 3.272.0): a fifth call waits for one.
# One constant with the runner's, which sizes its `up`s by it (gp3migrate/planning/up_batches.py).
DYNAMIC_PROVIDER_WORKERS = up_batches.DYNAMIC_PROVIDER_WORKERS


def ticks(seconds: float) -> int:
    """Whole ticks covering `seconds`, at least one."""
    return max(1, math.ceil(seconds / TICK_SECONDS))


def tick_range(span: Range) -> tuple[int, int]:
    return ticks(span[0]), ticks(span[1])


def draw_ticks(rng: random.Random, span: Range, extra_seconds: float = 0.0) -> int:
    """A duration drawn from `span` (whole ticks between its ends, both in), plus the whole ticks
    of `extra_seconds`."""
    return rng.randint(*tick_range(span)) + int(extra_seconds // TICK_SECONDS)
