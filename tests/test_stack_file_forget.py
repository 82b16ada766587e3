"""The program refuses to forget a volume mid-migration (issue 11, item 2).

The real program runs under mocks with the outputs of its previous `up` (the `migrationPhases`
history). An entry last applied in cutover or rollback that is missing from `migrations` is
refused at preview with nothing registered, unless it is listed under `forget`; a `forget` item
that lets go of nothing is refused too. Not proven here: what the engine then deletes when an entry
is forgotten (the component's children are retain_on_delete or protected; see test_phases.py).
"""

import copy

import pytest

from gp3migrate.config.phases import Applied
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings
from gp3migrate.config.transitions import check_forgotten
from tests.mock_cloud import advance, run_program, stack_config, with_phase

DEV = stack_config("dev")
KEY = "default/ebs-gp2-claim"
MIGRATIONS = "eks-gp3-migration:migrations"


def without_migrations(config, **extra):
    changed = copy.deepcopy(config)
    changed[MIGRATIONS] = []
    changed.update({f"eks-gp3-migration:{k}": v for k, v in extra.items()})
    return changed


_OUTPUTS: dict[tuple[str, ...], dict] = {}


def outputs_after(phases):
    """The outputs of the last of these `up`s (each program run is kept for the module: they are slow)."""
    key = tuple(phases)
    if key not in _OUTPUTS:
        _OUTPUTS[key] = advance(DEV, phases)[-1].outputs
    return copy.deepcopy(_OUTPUTS[key])


def refusal_lines(run) -> list[str]:
    assert run.error is not None, "the program accepted the config"
    return [line.strip()[2:] for line in str(run.error).splitlines() if line.strip().startswith("- ")]


@pytest.mark.parametrize("phases", [["precopy", "cutover"], ["precopy", "cutover", "rollback"]])
def test_an_entry_removed_mid_migration_is_refused_naming_it(phases):
    previous = outputs_after(phases)
    run = run_program(without_migrations(DEV), previous_outputs=previous)
    assert refusal_lines(run) == [
        f"migrations: {KEY!r} is missing, but its last applied phase is {phases[-1]}: removing it would drop the "
        "steps that keep its workload consistent; add it back, or list it under forget to let go of it on purpose"
    ]
    assert run.registrations == []


def test_listing_it_under_forget_lets_go_of_it_on_purpose():
    previous = outputs_after(["precopy", "cutover"])
    run = run_program(without_migrations(DEV, forget=[KEY]), previous_outputs=previous)
    assert run.error is None, run.error
    assert run.of_type("eks-gp3-migration:index:VolumeMigration") == []
    assert run.outputs["migrationPhases"] == {}


@pytest.mark.parametrize("phases", [["precopy"], ["precopy", "cutover", "finalize"]])
def test_entries_before_cutover_or_after_finalize_may_leave_without_forget(phases):
    previous = outputs_after(phases)
    run = run_program(without_migrations(DEV), previous_outputs=previous)
    assert run.error is None, run.error


def test_a_forget_item_that_names_nothing_applied_is_refused():
    previous = outputs_after(["precopy", "cutover"])
    run = run_program(without_migrations(DEV, forget=[KEY, "default/ebs-gp2-clam"]), previous_outputs=previous)
    assert refusal_lines(run) == [
        "forget[1]: 'default/ebs-gp2-clam' names no migration this stack last applied: remove it from forget "
        "(already let go of, or misspelt)"
    ]
    assert run.registrations == []


def test_a_forget_item_still_in_migrations_is_refused():
    previous = outputs_after(["precopy", "cutover"])
    config = with_phase(DEV, "cutover")
    config["eks-gp3-migration:forget"] = [KEY]
    run = run_program(config, previous_outputs=previous)
    assert refusal_lines(run) == [f"forget[0]: {KEY!r} is still in migrations: remove it from one of the two"]
    assert run.registrations == []


def test_after_the_forgetting_up_the_forget_item_must_go_too():
    previous = outputs_after(["precopy", "cutover"])
    forgotten = run_program(without_migrations(DEV, forget=[KEY]), previous_outputs=previous)
    assert forgotten.error is None, forgotten.error
    again = run_program(without_migrations(DEV, forget=[KEY]), previous_outputs=forgotten.outputs)
    assert refusal_lines(again) == [
        f"forget[0]: {KEY!r} names no migration this stack last applied: remove it from forget "
        "(already let go of, or misspelt)"
    ]


def test_every_missing_entry_is_named_in_key_order():
    history = {
        "b/two": Applied(phase="rollback"),
        "a/one": Applied(phase="cutover"),
        "c/three": Applied(phase="finalize"),
    }
    with pytest.raises(ConfigError) as caught:
        check_forgotten((), history, ())
    assert [p.split(" is missing")[0] for p in caught.value.problems] == ["migrations: 'a/one'", "migrations: 'b/two'"]


@pytest.mark.parametrize(
    ("forget", "problem"),
    [
        ("default/x", "forget: 'default/x' is not a list of migration keys (<namespace>/<claim>)"),
        (["default"], "forget[0]: 'default' is not a migration key (<namespace>/<claim>)"),
        (["Default/X"], "forget[0]: 'Default/X' is not a migration key (<namespace>/<claim>)"),
        (["a/b", "a/b"], "forget[1]: 'a/b' is listed twice"),
    ],
)
def test_forget_is_a_list_of_migration_keys(forget, problem):
    with pytest.raises(ConfigError) as caught:
        load_settings({"clusterName": "dev-eks", "region": "eu-central-1", "forget": forget})
    assert caught.value.problems == (problem,)
