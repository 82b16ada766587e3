"""`gp3migrate advance` against a fake at the Automation API boundary: what it checks before touching
anything, how it edits the stack file, what it refuses in a preview, how it splits a cutover into
`up`s, and what it says when an `up` fails."""

from pathlib import Path

import pytest

from gp3migrate.config.phases import Phase
from gp3migrate.fleet import advance as advancing
from gp3migrate.fleet.selection import Selection, SelectionError
from gp3migrate.fleet.stack_runner import StepEvent
from tests.fleet_fixtures import FakeStack, applied, effective_phases, fleet_stack, phases_in, with_waves

URN = "urn:pulumi:dev::eks-gp3-migration::{type}::{name}"


def run(tmp_path: Path, fake: FakeStack, to: Phase, *, select: list[str], **options: object) -> tuple[int, list[str]]:
    said: list[str] = []
    request = advancing.Request(
        stack="dev",
        to=to,
        selection=Selection.parse(wave=None, select=select),
        yes=True,
        **options,  # type: ignore[arg-type]
    )
    code = advancing.advance(tmp_path, request, fake, advancing.Console(say=said.append, confirm=lambda q: False))
    return code, "\n".join(said).splitlines()


def step(op: str, type_: str, name: str) -> StepEvent:
    return StepEvent("pre", op, URN.format(type=type_, name=name), type_)


def test_cutover_of_a_wave_is_split_into_ups_of_at_most_four_volumes(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 10)
    fake = FakeStack(path, applied(phases_in(path)))
    code, said = run(tmp_path, fake, "cutover", select=["namespace=default"])
    assert code == 0, said
    cut = [sorted(k for k, p in up.items() if p == "cutover") for up in fake.ups]
    assert [len(c) for c in cut] == [4, 8, 10]
    assert phases_in(path) == {f"default/data-{i}-0": "cutover" for i in range(10)}


def test_a_workload_is_never_split_across_ups(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 4, claims_of={1: 3})
    fake = FakeStack(path, applied(phases_in(path)))
    code, said = run(tmp_path, fake, "cutover", select=["namespace=default"])
    assert code == 0, said
    first = {k for k, p in fake.ups[0].items() if p == "cutover"}
    # app-0 (1 claim) + app-1 (3 claims) fill the first up; app-2 and app-3 the second.
    assert first == {"default/data-0-0", "default/data-1-0", "default/data-1-1", "default/data-1-2"}
    assert len(fake.ups) == 2


def test_phases_without_a_window_are_one_up(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 10)
    fake = FakeStack(path, applied({k: "cutover" for k in phases_in(path)}))
    text = path.read_text().replace("phase: precopy", "phase: cutover")
    path.write_text(text)
    code, said = run(tmp_path, fake, "finalize", select=["namespace=default"])
    assert code == 0, said
    assert len(fake.ups) == 1


def test_refused_transition_touches_nothing(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 2)
    before = path.read_text()
    fake = FakeStack(path, applied(phases_in(path)))
    with pytest.raises(advancing.UsageError, match=r"default/data-0-0: .*'finalize' before 'cutover'"):
        run(tmp_path, fake, "finalize", select=["claim=data-0-0"])
    assert path.read_text() == before
    assert fake.previews == [] and fake.ups == []


def test_never_applied_entries_may_not_skip_precopy(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 2)
    fake = FakeStack(path, {})
    with pytest.raises(advancing.UsageError, match="skips 'precopy'"):
        run(tmp_path, fake, "cutover", select=["claim=data-1-0"])
    assert fake.ups == []


def test_dry_run_prints_the_edit_and_writes_nothing(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 3)
    before = path.read_text()
    fake = FakeStack(path, applied(phases_in(path)))
    code, said = run(tmp_path, fake, "cutover", select=["workload=app-1"], dry_run=True)
    assert code == 0
    assert path.read_text() == before
    assert "+    phase: cutover" in said or any(
        line.strip() == "+phase: cutover" or ("+" in line and "phase: cutover" in line) for line in said
    )
    assert sum(1 for line in said if line.startswith("+") and "phase: cutover" in line) == 1
    assert fake.previews == [] and fake.ups == []


def test_edit_keeps_comments_and_other_entries(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 3)
    fake = FakeStack(path, applied(phases_in(path)))
    code, _ = run(tmp_path, fake, "cutover", select=["workload=Deployment/app-2"])
    assert code == 0
    assert path.read_text().startswith("# the fleet under test\n")
    assert phases_in(path) == {
        "default/data-0-0": "precopy",
        "default/data-1-0": "precopy",
        "default/data-2-0": "cutover",
    }


def test_preview_deleting_a_claim_it_does_not_plan_is_refused_and_the_file_restored(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 2)
    before = path.read_text()
    fake = FakeStack(
        path,
        applied(phases_in(path)),
        preview_steps=[
            step("delete", "kubernetes:core/v1:PersistentVolumeClaim", "migrate-default-data-1-0-claim"),
            step("create", "pulumi-python:dynamic:Resource", "migrate-default-data-0-0-quiesce"),
        ],
    )
    code, said = run(tmp_path, fake, "cutover", select=["claim=data-0-0"])
    assert code == 1
    assert any("migrate-default-data-1-0-claim" in line and "would be deleted" in line for line in said)
    assert path.read_text() == before
    assert fake.ups == []


def test_preview_replacing_a_snapshot_is_refused(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 1)
    fake = FakeStack(
        path,
        applied(phases_in(path)),
        preview_steps=[step("replace", "aws:ebs/snapshot:Snapshot", "migrate-default-data-0-0-precopy-snapshot")],
    )
    code, said = run(tmp_path, fake, "cutover", select=["claim=data-0-0"])
    assert code == 1
    assert any("would be replaced" in line for line in said)


def test_preview_shows_each_volumes_changes(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 2)
    fake = FakeStack(
        path,
        applied(phases_in(path)),
        preview_steps=[
            step("create", "pulumi-python:dynamic:Resource", "migrate-default-data-0-0-quiesce"),
            step("create", "kubernetes:core/v1:PersistentVolume", "migrate-default-data-0-0-csi-pv"),
            step("update", "kubernetes:storage.k8s.io/v1:StorageClass", "gp3"),
        ],
    )
    code, said = run(tmp_path, fake, "cutover", select=["claim=data-0-0"])
    assert code == 0
    assert "  default/data-0-0: create quiesce, csi-pv" in said
    assert "  platform: update gp3" in said


def test_failed_up_says_what_completed_and_how_to_resume(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 9)
    fake = FakeStack(path, applied(phases_in(path)))
    fake.fail_up = 2
    code, said = run(
        tmp_path,
        fake,
        "cutover",
        select=["namespace=default"],
        command="gp3migrate advance --stack dev --to cutover --select namespace=default",
    )
    assert code == 1
    text = "\n".join(said)
    assert "FAILED in up 2/3: a gate timed out" in text
    assert "completed: default/data-0-0, default/data-1-0, default/data-2-0, default/data-3-0 (at cutover)" in text
    assert "not started: default/data-8-0" in text
    assert "resume with: gp3migrate advance --stack dev --to cutover --select namespace=default" in text
    # The file asks cutover for what ran, and precopy for what did not start.
    assert phases_in(path)["default/data-7-0"] == "cutover"
    assert phases_in(path)["default/data-8-0"] == "precopy"


def test_resume_after_failure_skips_what_is_done(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 9)
    fake = FakeStack(path, applied(phases_in(path)))
    fake.fail_up = 2
    run(tmp_path, fake, "cutover", select=["namespace=default"])
    fake.fail_up = None
    # The failed up's entries are recorded as applied by the fake only when it succeeds.
    code, said = run(tmp_path, fake, "cutover", select=["namespace=default"])
    assert code == 0, said
    resumed = [sorted(k for k, p in up.items() if p == "cutover") for up in fake.ups[2:]]
    assert len(resumed) == 2
    assert "default/data-4-0" in resumed[0] and "default/data-0-0" in resumed[0]


def test_confirmation_declined_restores_the_file(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 1)
    before = path.read_text()
    fake = FakeStack(path, applied(phases_in(path)))
    said: list[str] = []
    request = advancing.Request(
        stack="dev", to="cutover", selection=Selection.parse(wave=None, select=["claim=data-0-0"])
    )
    code = advancing.advance(tmp_path, request, fake, advancing.Console(say=said.append, confirm=lambda q: False))
    assert code == 1
    assert path.read_text() == before
    assert fake.ups == []


@pytest.mark.parametrize(
    ("select", "message"),
    [
        (["zone=a"], "unknown key 'zone'"),
        (["namespace"], "expected KEY=VALUE"),
        (["namespace=nowhere"], "matches no migration"),
    ],
)
def test_bad_selection_is_a_clear_error(tmp_path: Path, select: list[str], message: str) -> None:
    path = fleet_stack(tmp_path, 1)
    fake = FakeStack(path, applied(phases_in(path)))
    with pytest.raises(SelectionError, match=message):
        run(tmp_path, fake, "cutover", select=select)


def test_edit_only_writes_the_edit_and_runs_nothing(tmp_path: Path) -> None:
    path = fleet_stack(tmp_path, 2)
    fake = FakeStack(path, applied(phases_in(path)))
    code, said = run(tmp_path, fake, "cutover", select=["workload=app-0"], edit_only=True)
    assert code == 0, said
    assert phases_in(path) == {"default/data-0-0": "cutover", "default/data-1-0": "precopy"}
    assert fake.previews == [] and fake.ups == []
    # Applied later (on merge): the file already asks, so no edit, and the up runs.
    code, said = run(tmp_path, fake, "cutover", select=["workload=app-0"])
    assert code == 0, said
    assert "the stack file already asks for this phase: no edit" in said
    assert len(fake.ups) == 1


CANARY = {"name": "canary", "select": {"claims": ["default/data-0-0"]}, "phase": "precopy"}
REST = {"name": "rest", "select": {"namespaces": ["default"]}, "phase": "precopy"}


def waved(tmp_path: Path, workloads: int, canary: str = "precopy") -> Path:
    path = fleet_stack(tmp_path, workloads)
    # The canary by claim, the rest by workload: an entry belongs to one wave only.
    rest = {**REST, "select": {"workloads": [f"default/Deployment/app-{i}" for i in range(1, workloads)]}}
    with_waves(path, [{**CANARY, "phase": canary}, rest])
    return path


def test_a_whole_wave_moves_by_its_phase_key(tmp_path: Path) -> None:
    path = waved(tmp_path, 3)
    fake = FakeStack(path, applied(effective_phases(path)))
    code, said = run_wave(tmp_path, fake, "cutover", "canary")
    assert code == 0, said
    text = path.read_text()
    assert "phase: cutover" in text and text.count("phase:") == 2  # the two waves' keys, no entry's
    assert effective_phases(path) == {
        "default/data-0-0": "cutover",
        "default/data-1-0": "precopy",
        "default/data-2-0": "precopy",
    }


def test_a_later_wave_waits_for_the_canary_to_finalize(tmp_path: Path) -> None:
    path = waved(tmp_path, 3, canary="cutover")
    fake = FakeStack(path, applied(effective_phases(path)))
    before = path.read_text()
    with pytest.raises(advancing.UsageError, match=r"default/data-0-0 \(wave canary, applied: cutover\)"):
        run_wave(tmp_path, fake, "cutover", "rest")
    assert path.read_text() == before and fake.ups == []


def test_force_wave_records_its_reason_in_the_file(tmp_path: Path) -> None:
    path = waved(tmp_path, 3, canary="cutover")
    fake = FakeStack(path, applied(effective_phases(path)))
    code, said = run_wave(tmp_path, fake, "cutover", "rest", force_wave="the canary's app is retired")
    assert code == 0, said
    line = next(line for line in path.read_text().splitlines() if "force-wave" in line)
    assert "phase: cutover" in line and "the canary's app is retired" in line
    assert effective_phases(path)["default/data-2-0"] == "cutover"


def test_a_finalized_canary_lets_the_next_wave_cut_over(tmp_path: Path) -> None:
    path = waved(tmp_path, 3, canary="finalize")
    fake = FakeStack(path, applied(effective_phases(path)))
    code, said = run_wave(tmp_path, fake, "cutover", "rest")
    assert code == 0, said


def test_unknown_wave_names_the_waves(tmp_path: Path) -> None:
    path = waved(tmp_path, 2)
    fake = FakeStack(path, applied(effective_phases(path)))
    with pytest.raises(SelectionError, match="no such wave; waves: canary, rest"):
        run_wave(tmp_path, fake, "cutover", "canry")


def run_wave(tmp_path: Path, fake: FakeStack, to: Phase, wave: str, **options: object) -> tuple[int, list[str]]:
    said: list[str] = []
    request = advancing.Request(
        stack="dev",
        to=to,
        selection=Selection.parse(wave=wave, select=[]),
        yes=True,
        **options,  # type: ignore[arg-type]
    )
    code = advancing.advance(tmp_path, request, fake, advancing.Console(say=said.append, confirm=lambda q: False))
    return code, "\n".join(said).splitlines()
