"""`modify`: gp3 in place, online, and nothing else. The PV stays in-tree (served through CSI
migration), so the CSI-only features (snapshots, VolumeAttributesClass, resize through a CSI
class) do not apply to it. One phase: precopy; no downtime.

    precopy: driver tags -> ModifyVolume to gp3
"""

from gp3migrate.planning.steps import PhasePlan
from gp3migrate.planning.strategies.common import Context
from gp3migrate.planning.strategies.rehome import prepare_volume


def plan_phase(ctx: Context) -> PhasePlan:
    entry = ctx.plan.entry
    steps = prepare_volume(ctx, after=(), before_modify=("volume-tags",))
    return PhasePlan(tuple(steps), {}, claim=entry.key)
