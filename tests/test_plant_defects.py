"""The planted-defects runner (scripts/plant_defects.py): its reading of patches and of the
simulation's output, and that every patch still applies to this tree. Runs no simulation: whether
the defects are caught is `make defects` (docs/testing.md, "Planted defects")."""

import ast
import shutil
from pathlib import Path

import pytest

from scripts import plant_defects
from scripts.plant_defects import Defect, DefectFileError, Outcome

ROOT = Path(__file__).resolve().parent.parent
NAMES = plant_defects.invariant_names(ROOT / plant_defects.INVARIANTS_PY)
DEFECTS = plant_defects.all_defects()
DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"


def test_invariant_names_are_the_string_constants_of_invariants_py() -> None:
    assert NAMES["NO_WRITE_LOST"] == "no acknowledged write lost"
    assert NAMES["NO_CHANGE_ON_RERUN"] == "a second up with no edit plans no change"
    assert all(name.isupper() for name in NAMES)


def test_a_broken_invariant_is_read_from_the_rehearsal_table_and_from_a_violation() -> None:
    simulate = (
        "invariants:\n  [ok] no acknowledged write lost\n  [ok] no only copy of a record deleted\n"
        "  [BROKEN] a second up with no edit plans no change\n    - preview --refresh plans update x-retain\n"
    )
    pytest_out = (
        "E   assert ['cutover: the workload runs after the phase with the replicas it had "
        "before the cutover: default/app: 0 of 3 pods running'] == []\n"
    )
    assert plant_defects.broken_invariants(simulate + pytest_out, NAMES) == ["NO_CHANGE_ON_RERUN", "WORKLOAD_RUNS"]


def test_an_invariant_reported_ok_or_only_mentioned_is_not_broken() -> None:
    output = (
        "  [ok] no acknowledged write lost\n  [not checked] the workload runs after the phase with the replicas it had "
        "before the cutover (the up failed)\n"
    )
    assert plant_defects.broken_invariants(output, NAMES) == []


def test_the_first_reported_comes_first_whatever_the_order_of_the_constants() -> None:
    output = "x: no only copy of a record deleted: after delete v: 3 records\nno acknowledged write lost: c lacks 2\n"
    assert plant_defects.broken_invariants(output, NAMES) == ["NO_ONLY_COPY_DELETED", "NO_WRITE_LOST"]


def test_failed_tests_come_from_the_short_summary() -> None:
    output = (
        "FAILED tests/sim/test_scenarios.py::test_a[rehome] - AssertionError: x\n"
        "ERROR tests/sim/test_b.py::test_b\nsome FAILED text\n"
    )
    assert plant_defects.failed_tests(output) == [
        "tests/sim/test_scenarios.py::test_a[rehome]",
        "tests/sim/test_b.py::test_b",
    ]


def _defect(invariant: str = "NO_WRITE_LOST") -> Defect:
    return Defect(Path("07-x.patch"), invariant, "x")


@pytest.mark.parametrize(
    ("simulate", "tests", "verdict", "first"),
    [
        ((0, "all invariants held"), (0, "146 passed"), "SURVIVED", "-"),
        ((1, "[BROKEN] no acknowledged write lost"), (0, ""), "caught", "NO_WRITE_LOST"),
        (
            (1, "[BROKEN] a second up with no edit plans no change"),
            (1, "no acknowledged write lost: c lacks 1"),
            "caught",
            "NO_CHANGE_ON_RERUN",
        ),
        (
            (0, ""),
            (
                1,
                "the workload runs after the phase with the replicas it had "
                "before the cutover: a/b: 0 of 1 pods running",
            ),
            "other invariant",
            "WORKLOAD_RUNS",
        ),
        ((1, "up FAILED: GateError"), (1, "FAILED tests/sim/t.py::test_x - StepFailed"), "side effect", "-"),
    ],
)
def test_the_verdict(simulate: tuple[int, str], tests: tuple[int, str], verdict: str, first: str) -> None:
    outcome = plant_defects.classify(_defect(), simulate, tests, NAMES)
    assert (outcome.verdict, outcome.first) == (verdict, first)


def test_a_defect_that_could_not_run_is_an_error_not_a_survivor() -> None:
    assert Outcome(_defect(), error="patch does not apply").verdict == "ERROR"


def test_a_header_must_name_an_invariant_and_a_patch_must_follow(tmp_path: Path) -> None:
    good = tmp_path / "01-good.patch"
    good.write_text("# trips NO_WRITE_LOST: the gate passes early\n# step: DetachedGate\n" + DIFF)
    assert plant_defects.read_defect(good) == Defect(good, "NO_WRITE_LOST", "the gate passes early", ("DetachedGate",))
    for text in (DIFF, "# trips no write lost: lowercase\n" + DIFF, "# trips NO_WRITE_LOST: x\n# why: y\n" + DIFF):
        bad = tmp_path / "02-bad.patch"
        bad.write_text(text)
        with pytest.raises(DefectFileError):
            plant_defects.read_defect(bad)
    (tmp_path / "03-empty.patch").write_text("# trips NO_WRITE_LOST: no diff\n")
    with pytest.raises(DefectFileError, match="no 'diff --git'"):
        plant_defects.read_defect(tmp_path / "03-empty.patch")


def test_there_are_at_least_15_defects_each_naming_an_invariant_that_exists() -> None:
    assert len(DEFECTS) >= 15
    assert {d.name: d.invariant for d in DEFECTS if d.invariant not in NAMES} == {}


def test_every_invariant_has_a_defect_that_should_trip_it() -> None:
    """A new invariant in gp3migrate/sim/invariants.py needs a planted defect that it alone catches."""
    assert sorted(set(NAMES) - {d.invariant for d in DEFECTS}) == []


def _one_way_steps() -> set[str]:
    """The dynamic resources of components/gate_providers.py: each runs one one-way step."""
    tree = ast.parse((ROOT / "components" / "gate_providers.py").read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "pulumi.dynamic.Resource" for b in node.bases)
    }


def test_every_one_way_step_has_a_defect() -> None:
    steps = _one_way_steps()
    assert len(steps) >= 8
    assert sorted(steps - {s for d in DEFECTS for s in d.steps}) == []
    assert sorted({s for d in DEFECTS for s in d.steps} - steps) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed: cannot check the patches apply")
@pytest.mark.parametrize("defect", DEFECTS, ids=[d.name for d in DEFECTS])
def test_the_patch_still_applies_to_this_tree(defect: Defect) -> None:
    """A refactor that moves the lines a defect changes breaks its patch: write the defect again
    against the new code (same header), so it keeps planting what it names."""
    assert plant_defects.patch_applies(ROOT, defect.path) is None
