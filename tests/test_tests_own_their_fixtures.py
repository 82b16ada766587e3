"""The tests never read the working tree's Pulumi.<stack>.yaml: those are the user's, and runbook
step one (`gp3migrate discover --write`) rewrites the dev file. Stack files the tests need are
copies in tests/fixtures/stacks (tests/stacks.py, tests/mock_cloud.py STACKS_DIR).

What this does not prove: that every test file is free of other user state (only stack files
are looked for)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from gp3migrate import cli
from tests.mock_cloud import PROJECT_DIR, STACKS_DIR
from tests.test_stack_file import exports

# A path into the checkout that ends in a stack file (PROJECT_DIR / "Pulumi.dev.yaml"), not the project file.
READS_A_STACK_FILE = re.compile(r"PROJECT_DIR\s*/\s*f?[\"']Pulumi\.(?!yaml[\"'])")
CHECKOUT = ("gp3migrate", "components", "tests", "__main__.py", "pyproject.toml", "Pulumi.yaml")


def test_no_test_reads_a_stack_file_of_the_working_tree() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_DIR)}:{number}"
        for path in sorted((PROJECT_DIR / "tests").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if READS_A_STACK_FILE.search(line) and path.name != Path(__file__).name
    ]
    assert offenders == []


def test_the_tests_pass_after_discover_rewrote_the_dev_stack_file(tmp_path: Path) -> None:
    # GIVEN a checkout whose Pulumi.dev.yaml was rewritten by runbook step one ...
    checkout = tmp_path / "checkout"
    for name in CHECKOUT:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, checkout / name)
    shutil.copy(STACKS_DIR / "Pulumi.dev.yaml", checkout / "Pulumi.dev.yaml")
    before = (checkout / "Pulumi.dev.yaml").read_text()
    argv = ["discover", "--stack", "dev", *exports(tmp_path), "--project-dir", str(checkout), "--write"]
    assert cli.main(argv) == 0
    assert (checkout / "Pulumi.dev.yaml").read_text() != before

    # WHEN the tests that read the dev stack run in that checkout
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/sim/test_driver_present.py",
            "tests/test_stack_file.py::test_the_repository_stack_files_round_trip_byte_for_byte",
            "tests/test_migration.py",
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )

    # THEN they pass: they read their own fixtures
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b2\d passed\b", done.stdout), done.stdout[-500:]
