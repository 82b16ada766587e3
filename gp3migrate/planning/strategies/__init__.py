"""One module per strategy, each a pure function from a migration's context to the steps of its
phase (gp3migrate/planning/steps.py)."""

from gp3migrate.planning.steps import PhasePlan
from gp3migrate.planning.strategies import copy, modify, rehome
from gp3migrate.planning.strategies.common import Context

_PLANNERS = {"copy": copy.plan_phase, "rehome": rehome.plan_phase, "modify": modify.plan_phase}


def plan_phase(ctx: Context) -> PhasePlan:
    return _PLANNERS[ctx.plan.entry.strategy](ctx)
