"""`python -m gp3migrate simulate`: the offline rehearsal as a user runs it."""

import subprocess
import sys

from gp3migrate.sim.program import PROJECT_DIR


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gp3migrate", "simulate", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_the_dev_stack_rehearses_every_phase_with_every_invariant_held() -> None:
    result = simulate("--stack", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for number, phase in enumerate(("precopy", "cutover", "finalize", "cleanup"), 1):
        assert f"== up {number}: phase {phase} ==" in out
    assert out.count("up succeeded") == 4
    assert "[BROKEN]" not in out and out.count("[ok] no acknowledged write lost") == 4
    # The dev example migrates by rehome: the same volume under a CSI PV, nothing copied.
    assert "+ create   PersistentVolume             migrate-default-ebs-gp2-claim-csi-pv" in out
    assert "downtime steps: detached, release-old-claim, csi-pv, claim" in out
    assert "Snapshot                     migrate-default-ebs-gp2-claim-final-snapshot" not in out
    assert "in all: 0 bytes copied" in out
    assert out.rstrip().endswith("all invariants held")


def test_a_stack_without_migrations_has_nothing_to_rehearse() -> None:
    result = simulate("--stack", "rehearsal", "--driver", "addon")
    # The rehearsal stack has no migrations: nothing to rehearse is a usage error.
    assert result.returncode == 2
    assert result.stderr == "error: Pulumi.rehearsal.yaml: migrations: the list is empty, nothing to rehearse\n"


def test_an_unknown_stack_is_a_usage_error_naming_the_file() -> None:
    result = simulate("--stack", "nope")
    assert result.returncode == 2
    assert result.stderr.startswith("error: Pulumi.nope.yaml: no such stack file")
    assert "Traceback" not in result.stderr
