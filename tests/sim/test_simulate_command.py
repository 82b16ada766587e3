"""`gp3migrate simulate` as a user runs it: the installed console script from outside the
checkout, on stack files in a folder of their own (copies of tests/fixtures/stacks).

What this does not prove: anything about a real cluster (see README, "What the tests prove").
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stacks import STACKS_DIR

CONSOLE_SCRIPT = Path(sys.executable).parent / "gp3migrate"
KMS_KEY = "arn:aws:kms:eu-central-1:123456789012:key/4f2c9a7e-1b3d-4c5e-8f90-a1b2c3d4e5f6"
RECORD = Path(".gp3migrate") / "rehearsals" / "dev.json"
INVARIANT_LINES = 5


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder of stack files that is not the checkout, as a user's own would be."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    for name in ("dev", "prod", "rehearsal"):
        shutil.copy(STACKS_DIR / f"Pulumi.{name}.yaml", folder)
    return folder


def gp3migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed command (venv/bin/gp3migrate), run where the user is, not in the checkout."""
    if not CONSOLE_SCRIPT.exists():
        pytest.fail(f"{CONSOLE_SCRIPT} is not installed: run `make test`, which installs it (pip install -e .)")
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )


def edit(project: Path, old: str, new: str, stack: str = "dev") -> None:
    path = project / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def verdicts(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  [")]


def test_the_installed_command_walks_every_phase_from_another_directory(project: Path, tmp_path: Path) -> None:
    result = gp3migrate("simulate", "--stack", "dev", "--walk", "--project-dir", str(project), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for number, phase in enumerate(("precopy", "cutover", "finalize", "cleanup"), 1):
        assert f"== up {number}: phase {phase} ==" in out
    assert out.count("up succeeded") == 4
    assert "[BROKEN]" not in out and out.count("[ok] no acknowledged write lost") == 4
    # The dev example migrates by rehome: the same volume under a CSI PV, nothing copied.
    assert "+ create   PersistentVolume             migrate-default-ebs-gp2-claim-csi-pv" in out
    assert "downtime steps: detached, csi-pv, release-old-claim, claim" in out
    assert "Snapshot                     migrate-default-ebs-gp2-claim-final-snapshot" not in out
    assert "in all: 0 bytes copied" in out
    assert out.rstrip().endswith("all invariants held")
    assert result.stderr == ""  # nothing at exit either (the SDK's callbacks server is stopped)
    assert not (project / RECORD).exists()  # --walk records nothing


def test_the_next_up_follows_the_file_from_what_the_last_rehearsal_applied(project: Path) -> None:
    # GIVEN a first rehearsal of the file as shipped (phase precopy) ...
    first = gp3migrate("simulate", "--stack", "dev", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "where the stack is: nothing applied yet: no migration" in first.stdout
    assert "== up 1: the stack file as it is now (phase precopy) ==" in first.stdout
    assert f"recorded in {RECORD}: the next rehearsal starts from here" in first.stdout
    assert [u["migrations"][0]["phase"] for u in json.loads((project / RECORD).read_text())["ups"]] == ["precopy"]

    # WHEN the user edits the file to the next phase and rehearses again
    edit(project, "phase: precopy", "phase: cutover")
    second = gp3migrate("simulate", "--stack", "dev", cwd=project)

    # THEN only the cutover is rehearsed, from where the precopy left the stack
    assert second.returncode == 0, second.stdout + second.stderr
    out = second.stdout
    assert f"where the stack is: the rehearsal record {RECORD} (1 up(s)): default/ebs-gp2-claim precopy" in out
    assert "== up 1: the stack file as it is now (phase cutover) ==" in out
    assert "+ create   PersistentVolume             migrate-default-ebs-gp2-claim-csi-pv" in out
    assert "Snapshot                     migrate-default-ebs-gp2-claim-safety-snapshot" not in out
    assert "downtime default/app-gp2-in-tree: 0 s simulated" not in out
    assert "== up 2" not in out

    # WHEN the user then edits a fact the cutover's objects were made with
    edit(project, "phase: cutover", "phase: finalize\n      fsType: xfs")
    edit(project, "      fsType: ext4\n", "")
    refused = gp3migrate("simulate", "--stack", "dev", cwd=project)

    # THEN the rehearsal refuses as the program's preview would, and records nothing
    assert refused.returncode == 1
    assert "  preview FAILED: invalid stack config:" in refused.stdout
    assert "  - migrations[0].fsType: is 'xfs' but the cutover applied 'ext4'" in refused.stdout
    assert "up not run: it stops where its preview fails" in refused.stdout
    assert f"not recorded: the up changed nothing; {RECORD} unchanged" in refused.stdout
    assert len(json.loads((project / RECORD).read_text())["ups"]) == 2


def test_a_rollback_after_a_cutover_is_rehearsed(project: Path) -> None:
    assert gp3migrate("simulate", "--stack", "dev", cwd=project).returncode == 0
    edit(project, "phase: precopy", "phase: cutover")
    assert gp3migrate("simulate", "--stack", "dev", cwd=project).returncode == 0
    edit(project, "phase: cutover", "phase: rollback")

    result = gp3migrate("simulate", "--stack", "dev", cwd=project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "default/ebs-gp2-claim cutover" in result.stdout.splitlines()[1]
    assert "== up 1: the stack file as it is now (phase rollback) ==" in result.stdout
    assert verdicts(result.stdout) == [
        "[ok] no acknowledged write lost",
        "[ok] no only copy of a record deleted",
        "[ok] the workload runs after the phase with the replicas it had before the cutover",
        "[ok] every migrated claim is served by its source volume or one restored from it",
        "[ok] every volume mounts with its own filesystem",
        "[ok] the source PV is Retain before a one-way step touches it",
        "[ok] letting go keeps every volume, kept snapshot and claim's records",
        "[ok] never two default StorageClasses",
        "[ok] the source volume is handed to deletion only once its copy is in use",
        "[ok] a copy's snapshots are let go only once its claim is bound to its restored volume",
        "[ok] a migration deletes only claims bound to its source volume or a copy of it",
        "[ok] the EBS CSI driver may manage every volume and snapshot the migration hands it",
        "[ok] every PV pins pods to the zone its volume is in",
        "[ok] every volume is mounted as its in-tree PV said (readOnly, mountOptions)",
        "[ok] every phase of a healthy world completes in one up",
        "[ok] a second up with no edit plans no change",
    ]


def test_the_real_stacks_outputs_say_where_it_is(project: Path) -> None:
    # `pulumi stack output --json` of a stack whose precopy was applied (what the program exports).
    outputs = {
        "migrationPhases": {
            "default/ebs-gp2-claim": {"phase": "precopy", "strategy": "rehome", "cutovers": 0, "facts": {}}
        }
    }
    (project / "outputs.json").write_text(json.dumps(outputs))
    edit(project, "phase: precopy", "phase: finalize")

    result = gp3migrate("simulate", "--stack", "dev", "--outputs", "outputs.json", cwd=project)

    assert result.returncode == 1
    assert (
        "where the stack is: the stack's outputs in outputs.json (1 up(s) replayed to reach them): "
        "default/ebs-gp2-claim precopy" in result.stdout
    )
    assert "  - migrations[0].phase: 'finalize' before 'cutover' (last applied: precopy): run phase: cutover first" in (
        result.stdout
    )
    assert not (project / RECORD).exists()


def test_kms_and_modify_entries_rehearse(project: Path) -> None:
    edit(project, "encrypted: false", f"encrypted: true\n      kmsKeyId: {KMS_KEY}")
    edit(
        project,
        "  eks-gp3-migration:demoteGp2: true",
        f"  eks-gp3-migration:demoteGp2: true\n  eks-gp3-migration:kmsKeyArns:\n    - {KMS_KEY}",
    )
    kms = gp3migrate("simulate", "--stack", "dev", "--walk", cwd=project)
    assert kms.returncode == 0, kms.stdout + kms.stderr
    assert "+ create   Resource                     platform-driver-check" in kms.stdout
    assert kms.stdout.count("up succeeded") == 4

    edit(project, "phase: precopy", "phase: precopy\n      strategy: modify")
    modify = gp3migrate("simulate", "--stack", "dev", "--walk", cwd=project)
    assert modify.returncode == 0, modify.stdout + modify.stderr
    # modify has one phase: the walk stops there, and nothing leaks at exit.
    assert "== up 1: phase precopy ==" in modify.stdout and "== up 2" not in modify.stdout
    assert "modify -> gp3 3000 IOPS / 125 MiB/s" in modify.stdout
    assert modify.stderr == ""


def test_prod_rehearses_its_platform_with_devs_rehearsed_outputs(project: Path) -> None:
    needs = gp3migrate("simulate", "--stack", "prod", cwd=project)
    assert needs.returncode == 2
    assert needs.stderr == (
        "error: Pulumi.prod.yaml: promoteFrom: dev: the promotion gate reads that stack's outputs, and it has not "
        "been rehearsed here: run `gp3migrate simulate --stack dev` up to the phases this stack needs, or pass "
        "--upstream-outputs FILE with `pulumi stack output --json --stack dev`\n"
    )
    assert gp3migrate("simulate", "--stack", "dev", cwd=project).returncode == 0

    prod = gp3migrate("simulate", "--stack", "prod", cwd=project)

    assert prod.returncode == 0, prod.stdout + prod.stderr
    assert "promoteFrom dev: the promotion gate reads its outputs from its rehearsal record" in prod.stdout
    assert "== up 1: the stack file as it is now (platform) ==" in prod.stdout
    assert "+ create   StorageClass                 platform-classes-gp3" in prod.stdout


def test_a_stack_that_creates_its_own_cluster_is_refused_with_what_to_do(project: Path) -> None:
    result = gp3migrate("simulate", "--stack", "rehearsal", cwd=project)
    assert result.returncode == 2
    assert result.stderr.startswith("error: Pulumi.rehearsal.yaml: rehearsal: true creates a new EKS cluster")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--stack", "nope"), "error: Pulumi.nope.yaml: no such stack file"),
        (("--stack", "dev", "--walk", "--fresh"), "error: --walk starts from nothing applied"),
        (("--stack", "dev", "--outputs", "missing.json"), "error: missing.json: cannot be read"),
        (("--stack", "dev", "--upstream-outputs", "x.json"), "error: --upstream-outputs: Pulumi.dev.yaml has no"),
        ((), "error: give --stack S (or --world-seed N --walk-seed M"),
        (("--world-seed", "3"), "error: --world-seed and --walk-seed replay a generated world and walk together"),
        (("--stack", "dev", "--world-seed", "3", "--walk-seed", "4"), "error: --world-seed and --walk-seed replay"),
    ],
)
def test_bad_arguments_are_one_line_errors(project: Path, args: tuple[str, ...], message: str) -> None:
    result = gp3migrate("simulate", *args, cwd=project)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_the_module_is_the_same_command_from_another_directory(project: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gp3migrate", "iam-policy", "--stack", "dev", "--project-dir", str(project)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    installed = gp3migrate("iam-policy", "--stack", "dev", "--project-dir", str(project), cwd=tmp_path)
    assert result.returncode == installed.returncode == 0, result.stderr + installed.stderr
    assert json.loads(result.stdout) == json.loads(installed.stdout)
    assert json.loads(result.stdout)["Version"] == "2012-10-17"


def test_a_generated_world_and_walk_replay_from_their_seeds(tmp_path: Path) -> None:
    """The command a failing generated-world example prints (tests/sim/test_generated_worlds.py)."""
    result = gp3migrate("simulate", "--world-seed", "39", "--walk-seed", "139", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Simulated rehearsal of stack 'generated' (seed 39)")
    assert "generated world 39 (" in result.stdout
    assert result.stdout.rstrip().endswith("replay: gp3migrate simulate --world-seed 39 --walk-seed 139")
