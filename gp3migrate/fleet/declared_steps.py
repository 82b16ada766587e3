"""Which step resources the program declares for the stack as last applied and as edited, so that
`advance` knows which deletes in a preview are the transition's own (gp3migrate/fleet/preview_guard.py).

The strategies are pure (gp3migrate/planning/strategies/), and a step's resource name never changes
(`<migration>-<step>`, gp3migrate/planning/steps.py): the deletes an edit causes are exactly the
names declared before and not after. "Before" is each migration's last applied phase re-planned as a
re-run of that phase, which declares what the phase declared (a second `up` of a phase changes
nothing: the simulation's NO_CHANGE_ON_RERUN invariant).
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

from gp3migrate.config.phases import Applied
from gp3migrate.config.settings import Settings
from gp3migrate.planning import step_graph, strategies
from gp3migrate.planning.plan import plan_all
from gp3migrate.planning.strategies.common import Context


def declared(settings: Settings, history: Mapping[str, Applied], outputs: Mapping[str, Any], stack: str) -> set[str]:
    """Resource names of every migration step `settings` declares, given what was applied."""
    plans = plan_all(settings, outputs)
    members = [
        step_graph.Member(
            plan.entry.resource_name,
            plan.entry,
            strategies.plan_phase(Context(plan, settings, stack, history.get(plan.entry.key))),
        )
        for plan in plans
    ]
    return {node.name for node in step_graph.build(members).nodes}


def as_last_applied(settings: Settings, history: Mapping[str, Applied]) -> Settings:
    """The settings with each migration at the phase it was last applied at; never-applied ones
    left out (they declared nothing)."""
    migrations = [
        entry.model_copy(update={"phase": history[entry.key].phase, "strategy": history[entry.key].strategy})
        for entry in settings.migrations
        if entry.key in history
    ]
    return dataclasses.replace(settings, migrations=tuple(migrations))


def transition_deletes(
    settings: Settings, history: Mapping[str, Applied], outputs: Mapping[str, Any], stack: str
) -> set[str]:
    """Names the edited settings stop declaring: the deletes the transition's own steps make."""
    before = declared(as_last_applied(settings, history), history, outputs, stack)
    return before - declared(settings, history, outputs, stack)
