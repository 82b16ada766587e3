"""What `advance` expects a transition to delete (from the strategies' own plans), and how the preview
guard sorts a preview's steps by volume."""

import dataclasses
from pathlib import Path

import pytest

from gp3migrate.config.phases import parse_history
from gp3migrate.config.stack_file import read_stack
from gp3migrate.fleet.advance import settings_of
from gp3migrate.fleet.declared_steps import transition_deletes
from gp3migrate.fleet.preview_guard import PlannedStep, judge
from tests.fleet_fixtures import fleet_stack

PREFIX = "migrate-default-data-0-0-"


@pytest.mark.parametrize(
    ("strategy", "before", "after", "deleted"),
    [
        ("rehome", "precopy", "cutover", set()),
        ("rehome", "finalize", "cleanup", {"safety-snapshot"}),
        (
            "rehome",
            "cutover",
            "rollback",
            {"claim", "csi-pv", "detached", "quiesce", "release-old-claim", "scale-back"},
        ),
        ("copy", "finalize", "cleanup", {"precopy-snapshot"}),
        ("modify", "cutover", "finalize", set()),
    ],
)
def test_transition_deletes_are_what_the_strategy_stops_declaring(
    tmp_path: Path, strategy: str, before: str, after: str, deleted: set[str]
) -> None:
    settings = settings_of(read_stack(fleet_stack(tmp_path, 1)))
    history = parse_history({"default/data-0-0": {"phase": before, "strategy": strategy}})
    edited = dataclasses.replace(
        settings,
        migrations=tuple(m.model_copy(update={"phase": after, "strategy": strategy}) for m in settings.migrations),
    )
    assert transition_deletes(edited, history, {}, "dev") == {PREFIX + name for name in deleted}


def test_a_longer_migration_name_keeps_its_own_steps() -> None:
    verdict = judge(
        [
            PlannedStep("create", "urn:pulumi:dev::p::t::migrate-ns-data-quiesce", "t"),
            PlannedStep("create", "urn:pulumi:dev::p::t::migrate-ns-data-2-quiesce", "t"),
        ],
        resource_names={"migrate-ns-data": "ns/data", "migrate-ns-data-2": "ns/data-2"},
        expected_deletes=set(),
    )
    assert verdict.per_volume["ns/data"].created == ["quiesce"]
    assert verdict.per_volume["ns/data-2"].created == ["quiesce"]


def test_an_expected_delete_of_a_snapshot_passes_and_an_unexpected_one_does_not() -> None:
    snapshot = "aws:ebs/snapshot:Snapshot"
    steps = [
        PlannedStep("delete", f"urn:pulumi:dev::p::{snapshot}::migrate-ns-a-safety-snapshot", snapshot),
        PlannedStep("delete", f"urn:pulumi:dev::p::{snapshot}::migrate-ns-b-safety-snapshot", snapshot),
    ]
    verdict = judge(
        steps,
        resource_names={"migrate-ns-a": "ns/a", "migrate-ns-b": "ns/b"},
        expected_deletes={"migrate-ns-a-safety-snapshot"},
    )
    assert len(verdict.refusals) == 1
    assert verdict.refusals[0].startswith("migrate-ns-b-safety-snapshot (aws:ebs/snapshot:Snapshot) would be deleted")
