"""Waves (issue 24 item 1): which entries a wave selects, the rules between waves and entries, and
the phase an entry takes from its wave, in the config model and in the program under mocks.

Not proven here: that the `advance` runner edits waves (the lead's item 3), or anything about the
cluster (the simulation's tests run the program these settings feed)."""

import copy
from typing import Any

import pytest

from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings
from gp3migrate.config.waves import unmatched_warnings
from tests.mock_cloud import run_program, stack_config, stack_name

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}


def entry(i: int, namespace: str = "shop", workload: str | None = None, **keys: Any) -> dict[str, Any]:
    found = {
        "namespace": namespace,
        "claim": f"data-{i}",
        "pv": f"pvc-{i:08x}",
        "volumeId": f"vol-{i:017x}",
        "zone": "eu-central-1a",
        "sizeGiB": 5,
    }
    if workload:
        found["workload"] = {"kind": "Deployment", "name": workload, "replicas": 1}
    return {**found, **keys}


def problems(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_settings(values)
    return list(err.value.problems)


def phases(values: dict[str, Any]) -> dict[str, tuple[str, str | None, bool]]:
    return {m.key: (m.phase, m.wave, m.phase_from_wave) for m in load_settings(values).migrations}


# --- which entries a wave selects -----------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "selected"),
    [
        ({"namespaces": ["shop"]}, {"shop/data-1", "shop/data-2"}),
        ({"claims": ["shop/data-2"]}, {"shop/data-2"}),
        ({"workloads": ["shop/Deployment/web"]}, {"shop/data-1"}),
        # A workload names its kind: a StatefulSet of the same name is another workload.
        ({"workloads": ["shop/StatefulSet/web"]}, set()),
        ({"labels": {"tier": "bulk"}}, {"billing/data-3"}),
        # Every listed label must match.
        ({"labels": {"tier": "bulk", "team": "x"}}, set()),
        # Any item of any key: the union.
        ({"claims": ["shop/data-2"], "namespaces": ["billing"]}, {"shop/data-2", "billing/data-3"}),
    ],
)
def test_a_wave_selects_by_namespace_workload_claim_or_label(select, selected):
    values = {
        **BASE,
        "waves": [{"name": "one", "select": select}],
        "migrations": [
            entry(1, workload="web"),
            entry(2),
            entry(3, namespace="billing", labels={"tier": "bulk", "team": "y"}),
        ],
    }
    assert {key for key, (_, wave, _) in phases(values).items() if wave == "one"} == selected


# --- the phase -----------------------------------------------------------------------------


def test_an_entry_takes_its_waves_phase_unless_it_sets_its_own():
    values = {
        **BASE,
        "waves": [
            {"name": "canary", "select": {"claims": ["shop/data-1"]}, "phase": "cutover"},
            {"name": "rest", "select": {"claims": ["shop/data-2", "shop/data-3"]}, "phase": "finalize"},
        ],
        "migrations": [entry(1), entry(2), entry(3, phase="precopy"), entry(4, phase="cutover")],
    }
    assert phases(values) == {
        "shop/data-1": ("cutover", "canary", True),
        "shop/data-2": ("finalize", "rest", True),
        "shop/data-3": ("precopy", "rest", False),
        "shop/data-4": ("cutover", None, False),
    }


def test_a_wave_without_a_phase_leaves_its_entries_theirs():
    values = {**BASE, "waves": [{"name": "w", "select": {"namespaces": ["shop"]}}], "migrations": [entry(1)]}
    assert phases(values) == {"shop/data-1": ("precopy", "w", False)}


def test_the_entrys_rules_check_the_phase_its_wave_gives_it():
    values = {
        **BASE,
        "waves": [{"name": "w", "select": {"namespaces": ["shop"]}, "phase": "cutover"}],
        "migrations": [entry(1, strategy="modify")],
    }
    [problem] = problems(values)
    assert problem.startswith("migrations[0].phase: 'cutover': strategy modify has one phase, precopy")
    assert problem.endswith("(phase from waves[0] ('w'))")


# --- the rules between waves and entries ----------------------------------------------------


def test_an_entry_in_two_waves_is_refused_naming_it_and_both_waves():
    values = {
        **BASE,
        "waves": [
            {"name": "canary", "select": {"claims": ["shop/data-1"]}},
            {"name": "rest", "select": {"namespaces": ["shop"]}},
        ],
        "migrations": [entry(1), entry(2)],
    }
    assert problems(values) == [
        "migrations[0]: shop/data-1 is selected by waves[0] ('canary') and waves[1] ('rest'): an entry belongs to "
        "one wave; narrow one of the selectors"
    ]


def test_a_workload_split_between_waves_is_refused_naming_it_and_both_waves():
    values = {
        **BASE,
        "waves": [
            {"name": "canary", "select": {"claims": ["shop/data-1"]}},
            {"name": "rest", "select": {"claims": ["shop/data-2"]}},
        ],
        "migrations": [entry(1, workload="db"), entry(2, workload="db")],
    }
    [problem] = problems(values)
    assert problem.startswith(
        "migrations[1].workload: Deployment shop/db has shop/data-1 in waves[0] ('canary') and shop/data-2 in "
        "waves[1] ('rest'): a workload's claims cut over together"
    )


def test_a_workload_partly_in_no_wave_is_refused():
    values = {
        **BASE,
        "waves": [{"name": "canary", "select": {"claims": ["shop/data-1"]}}],
        "migrations": [entry(1, workload="db"), entry(2, workload="db")],
    }
    [problem] = problems(values)
    assert "shop/data-1 in waves[0] ('canary') and shop/data-2 in no wave" in problem


@pytest.mark.parametrize(
    ("wave", "expected"),
    [
        (
            {"name": "w", "select": {"namespace": ["shop"]}},
            "waves[0].select.namespace: is not a known key; did you mean namespaces? "
            "(allowed: claims, labels, namespaces, workloads)",
        ),
        ({"name": "w", "select": {}}, "waves[0].select: selects nothing: give namespaces, workloads, claims or labels"),
        ({"name": "w"}, "waves[0].select: selects nothing: give namespaces, workloads, claims or labels"),
        (
            {"name": "w", "select": {"namespaces": [], "claims": ["shop/data-1"]}},
            "waves[0].select.namespaces: is empty: list what it selects, or leave the key out",
        ),
        (
            {"name": "w", "select": {"labels": {}}},
            "waves[0].select.labels: is empty: list what it selects, or leave the key out",
        ),
        (
            {"name": "w", "select": {"workloads": ["shop/web"]}},
            "waves[0].select.workloads[0]: 'shop/web' is not <namespace>/<Kind>/<name> with Kind one of "
            "Deployment, StatefulSet",
        ),
        ({"select": {"namespaces": ["shop"]}}, "waves[0].name: is required (the wave's name)"),
        (
            {"name": "w", "select": {"namespaces": ["shop"]}, "phase": "cutvoer"},
            "waves[0].phase: 'cutvoer' is not one of precopy, cutover, finalize, cleanup, rollback",
        ),
    ],
)
def test_a_bad_wave_is_refused_naming_the_key(wave, expected):
    assert problems({**BASE, "waves": [wave], "migrations": [entry(1)]}) == [expected]


def test_a_misspelt_wave_key_is_named_first_with_the_key_it_meant():
    assert problems(
        {**BASE, "waves": [{"name": "w", "selct": {"namespaces": ["shop"]}}], "migrations": [entry(1)]}
    ) == [
        "waves[0].selct: is not a known key; did you mean select? (allowed: name, phase, select)",
        "waves[0].select: selects nothing: give namespaces, workloads, claims or labels",
    ]


def test_two_waves_of_one_name_are_refused():
    waves = [{"name": "w", "select": {"claims": ["shop/data-1"]}}, {"name": "w", "select": {"claims": ["shop/data-2"]}}]
    assert problems({**BASE, "waves": waves, "migrations": [entry(1), entry(2)]}) == [
        "waves[1].name: 'w' is also the name of waves[0]"
    ]


def test_entries_in_no_wave_are_warned_about_and_keep_their_phase():
    values = {
        **BASE,
        "waves": [{"name": "canary", "select": {"claims": ["shop/data-1"]}, "phase": "cutover"}],
        "migrations": [entry(1), entry(2, phase="cutover"), entry(3)],
    }
    settings = load_settings(values)
    assert [m.phase for m in settings.migrations] == ["cutover", "cutover", "precopy"]
    assert unmatched_warnings(settings.waves, settings.migrations) == [
        "migrations: shop/data-2, shop/data-3 are in no wave: they keep their own phase; add them to a wave's "
        "select to advance with it"
    ]
    without_waves = load_settings({**values, "waves": []})
    assert unmatched_warnings(without_waves.waves, without_waves.migrations) == []


# --- the program under mocks ------------------------------------------------------------------

PROJECT = "eks-gp3-migration"
DEV = stack_config("dev")
DEV_ENTRY = DEV[f"{PROJECT}:migrations"][0]


def dev_with(entries: list[dict[str, Any]], waves: list[dict[str, Any]]) -> dict[str, Any]:
    return {**DEV, f"{PROJECT}:migrations": entries, f"{PROJECT}:waves": waves}


def without_phase(raw: dict[str, Any]) -> dict[str, Any]:
    found = copy.deepcopy(raw)
    found.pop("phase", None)
    return found


def test_the_programs_resources_follow_the_waves_phase():
    """The entry sets no phase: the wave's cutover registers exactly what the entry's own cutover
    does, and a precopy wave what the entry's own precopy does."""
    waves = [{"name": "canary", "select": {"namespaces": ["default"]}, "phase": "precopy"}]
    by_wave = run_program(dev_with([without_phase(DEV_ENTRY)], waves))
    assert by_wave.error is None, by_wave.error
    by_entry = run_program(dev_with([dict(DEV_ENTRY, phase="precopy")], []))
    assert sorted(by_wave.names()) == sorted(by_entry.names())

    waves[0]["phase"] = "cutover"
    cutover_by_wave = run_program(dev_with([without_phase(DEV_ENTRY)], waves), previous_outputs=by_wave.outputs)
    assert cutover_by_wave.error is None, cutover_by_wave.error
    cutover_by_entry = run_program(dev_with([dict(DEV_ENTRY, phase="cutover")], []), previous_outputs=by_entry.outputs)
    assert sorted(cutover_by_wave.names()) == sorted(cutover_by_entry.names())
    assert set(cutover_by_wave.names()) - set(by_wave.names()), "cutover registered nothing more than precopy"
    assert cutover_by_wave.outputs["migrationPhases"]["default/ebs-gp2-claim"]["phase"] == "cutover"


def test_the_program_refuses_bad_waves_before_registering_anything():
    waves = [
        {"name": "a", "select": {"namespaces": ["default"]}},
        {"name": "b", "select": {"claims": ["default/ebs-gp2-claim"]}},
    ]
    run = run_program(dev_with([DEV_ENTRY], waves))
    assert run.error is not None
    assert "default/ebs-gp2-claim is selected by waves[0] ('a') and waves[1] ('b')" in str(run.error)
    assert run.registrations == []


def test_the_program_warns_of_entries_in_no_wave(caplog):
    waves = [{"name": "a", "select": {"namespaces": ["other"]}}]
    with caplog.at_level("WARNING"):
        run = run_program(dev_with([DEV_ENTRY], waves))
    assert run.error is None, run.error
    assert any("default/ebs-gp2-claim is in no wave" in r.getMessage() for r in caplog.records)


def test_prods_promotion_gate_names_the_waves_phase_once():
    prod = stack_config("prod")
    dev_precopy = run_program(DEV)
    entries = [
        dict(without_phase(DEV_ENTRY), zone="us-east-1a"),
        dict(without_phase(DEV_ENTRY), zone="us-east-1a", claim="second", pv="pvc-2", volumeId="vol-0123456789abcdef2"),
    ]
    entries[1].pop("workload")
    entries[1]["quiesce"] = "manual"
    waves = [{"name": "canary", "select": {"namespaces": ["default"]}, "phase": "precopy"}]
    config = {**prod, f"{PROJECT}:migrations": entries, f"{PROJECT}:waves": waves}
    others = {stack_name("dev"): dev_precopy.outputs}
    precopy = run_program(config, stack="prod", other_stacks=others)
    assert precopy.error is None, precopy.error
    waves[0]["phase"] = "cutover"
    run = run_program(config, stack="prod", other_stacks=others, previous_outputs=precopy.outputs)
    lines = [line.strip()[2:] for line in str(run.error).splitlines() if line.strip().startswith("- ")]
    assert [line for line in lines if "has not been completed" in line] == [
        "waves[0].phase: 'cutover' (2 entries: default/ebs-gp2-claim, default/second) has not been completed on "
        "'dev' with driver present v1.53.0-eksbuild.1, snapshots manifests v8.6.0 (completed there: precopy): "
        "run it there first"
    ]
    assert run.registrations == []
