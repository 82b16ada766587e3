"""Plant each defect of tests/defects/ into a scratch copy and see whether the simulation alone catches it.

`make defects` (or `venv/bin/python -m scripts.plant_defects`). For every `tests/defects/*.patch`, in a
fresh copy of this checkout's files (tracked and untracked-but-not-ignored, as they are on disk):
apply the one patch, then run only the simulation on the copy — `gp3migrate simulate --stack dev --walk`
and `pytest tests/sim` — with this checkout's venv. The copy's code is what runs: PYTHONPATH and the
working directory point at it (the venv's editable install only appends a meta-path finder, which the
path-based finder goes before), and each copy is checked to import its own `gp3migrate` before
anything runs, and a control run first plants a deliberately broken invariants module that both
commands must fail on.

A patch begins with one line `# trips <CONSTANT>: <what the defect is>`, CONSTANT one of the invariant
names in gp3migrate/sim/invariants.py, optionally followed by `# step: <Resource class>` naming the
one-way step of components/gate_providers.py it breaks.

Verdicts: `caught` (the named invariant broke), `other invariant` (another one broke, not the one
that names the defect), `side effect` (a test or an `up` failed, but no invariant broke: the failure
points away from the defect), `SURVIVED` (everything passed). Exit 1 when one survived, 2 when a patch
no longer applies or a copy would not run its own code.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFECTS_DIR = ROOT / "tests" / "defects"
INVARIANTS_PY = Path("gp3migrate") / "sim" / "invariants.py"
LOG_DIR = ROOT / ".gp3migrate" / "defects"
# Each run is CPU-bound on one core; the build machine has two.
DEFAULT_JOBS = 2

_HEADER = re.compile(r"^# trips (?P<invariant>[A-Z][A-Z0-9_]*): (?P<description>.+)$")
_STEP = re.compile(r"^# step: (?P<step>\w+)$")


class DefectFileError(ValueError):
    pass


@dataclass(frozen=True)
class Defect:
    path: Path
    invariant: str
    description: str
    steps: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.stem


def read_defect(path: Path) -> Defect:
    """The header of one patch: the invariant it should trip, what it is, the one-way steps it breaks."""
    lines = path.read_text().splitlines()
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        raise DefectFileError(f"{path.name}: first line must be '# trips <INVARIANT_CONSTANT>: <description>'")
    steps = []
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        step = _STEP.match(line)
        if step is None:
            raise DefectFileError(f"{path.name}: header line {line!r} is not '# step: <Resource class>'")
        steps.append(step["step"])
    if not any(line.startswith("diff --git ") for line in lines):
        raise DefectFileError(f"{path.name}: no 'diff --git' section (one unified diff per defect)")
    return Defect(path, header["invariant"], header["description"], tuple(steps))


def all_defects(directory: Path = DEFECTS_DIR) -> list[Defect]:
    return [read_defect(p) for p in sorted(directory.glob("*.patch"))]


def invariant_names(invariants_py: Path) -> dict[str, str]:
    """CONSTANT -> the invariant's name as violations print it: the module-level string constants
    of invariants.py (read from the copy's own file, so invariants added later count)."""
    tree = ast.parse(invariants_py.read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
            if target.isupper() and isinstance(value, ast.Constant) and isinstance(value.value, str):
                names[target] = value.value
    return names


def broken_invariants(output: str, names: dict[str, str]) -> list[str]:
    """The constants of the invariants a run's output reports broken, first reported first.

    A violation prints as `<name>: <detail>` (invariants.Violation.__str__; pytest shows those in
    its assertion diffs) and the rehearsal's table as `[BROKEN] <name>`; `[ok] <name>` is not one.
    """
    first: dict[str, int] = {}
    for constant, text in names.items():
        positions = [m.start() for m in re.finditer(re.escape(f"[BROKEN] {text}"), output)]
        positions += [m.start() for m in re.finditer(re.escape(text) + r":\s", output)]
        if positions:
            first[constant] = min(positions)
    return sorted(first, key=lambda c: first[c])


_FAILED_LINE = re.compile(r"^(?:FAILED|ERROR) (?P<test>\S+)", re.MULTILINE)


def failed_tests(pytest_output: str) -> list[str]:
    """Test ids from pytest's short summary (`-rfE`)."""
    return _FAILED_LINE.findall(pytest_output)


@dataclass
class Outcome:
    defect: Defect
    simulate_rc: int | None = None
    pytest_rc: int | None = None
    broken: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    up_failed: bool = False
    error: str | None = None
    seconds: float = 0.0

    @property
    def caught(self) -> bool:
        return self.error is None and bool(self.simulate_rc or self.pytest_rc)

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "ERROR"
        if not self.caught:
            return "SURVIVED"
        if self.defect.invariant in self.broken:
            return "caught"
        if self.broken:
            return "other invariant"
        return "side effect"

    @property
    def first(self) -> str:
        return self.broken[0] if self.broken else "-"

    def how(self) -> str:
        """What failed, in a few words, for the table's last column."""
        if self.error is not None:
            return self.error
        parts = []
        if self.simulate_rc:
            parts.append("simulate: " + ("up failed" if self.up_failed else f"exit {self.simulate_rc}"))
        if self.pytest_rc:
            shown = ", ".join(t.rsplit("::", 1)[-1] for t in self.failed[:2])
            more = f" +{len(self.failed) - 2}" if len(self.failed) > 2 else ""
            parts.append(f"tests/sim: {len(self.failed)} failed ({shown}{more})" if self.failed else "tests/sim: error")
        if len(self.broken) > 1:
            parts.append("also " + ", ".join(self.broken[1:]))
        return "; ".join(parts)


def classify(defect: Defect, simulate: tuple[int, str], pytest: tuple[int, str], names: dict[str, str]) -> Outcome:
    """The outcome of one planted defect from the two commands' exit codes and outputs."""
    (sim_rc, sim_out), (test_rc, test_out) = simulate, pytest
    return Outcome(
        defect,
        simulate_rc=sim_rc,
        pytest_rc=test_rc,
        # The rehearsal first: its table names the invariant next to the phase that broke it.
        broken=broken_invariants(sim_out + "\n" + test_out, names),
        failed=failed_tests(test_out),
        up_failed="up FAILED" in sim_out or "preview FAILED" in sim_out,
    )


def project_files(root: Path) -> list[str]:
    """The checkout's files as they are on disk: tracked, and untracked but not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [p for p in listed.split("\0") if p and (root / p).is_file()]


def scratch_copy(root: Path, into: Path, files: list[str]) -> Path:
    """A copy of `files` at into/checkout, with `shared` beside it when the checkout has one
    (tests that read ../shared then run, rather than skip)."""
    copy = into / "checkout"
    for name in files:
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    shared = (root.parent / "shared").resolve()
    if shared.is_dir():
        (into / "shared").symlink_to(shared)
    return copy


def copy_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def runs_its_own_code(copy: Path, python: Path) -> str | None:
    """None when the copy imports its own package and program; else why not."""
    probe = "import gp3migrate.sim.program as p; print(p.__file__); print(p.PROJECT_DIR)"
    # From outside the copy, as the `gp3migrate` console script imports (its sys.path[0] is the
    # venv's bin): only PYTHONPATH can make the copy win over the editable install.
    done = subprocess.run(
        [str(python), "-c", probe], cwd=copy.parent, env=copy_env(copy), capture_output=True, text=True, check=False
    )
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return f"the copy's package does not import: {done.stderr.strip()[-200:]}"
    module, project = Path(lines[0]).resolve(), Path(lines[1]).resolve()
    if not module.is_relative_to(copy.resolve()) or project != copy.resolve():
        return f"the copy would run {module}, not its own code"
    return None


def apply_patch(copy: Path, patch: Path) -> str | None:
    done = subprocess.run(["git", "apply", str(patch)], cwd=copy, capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else f"patch does not apply: {done.stderr.strip()}"


def patch_applies(root: Path, patch: Path) -> str | None:
    """None when the patch applies cleanly to the checkout as it is on disk (nothing is changed)."""
    done = subprocess.run(
        ["git", "apply", "--check", str(patch)], cwd=root, capture_output=True, text=True, check=False
    )
    return None if done.returncode == 0 else done.stderr.strip()


def simulation_commands(venv_bin: Path, *, every_failure: bool = False) -> list[tuple[str, list[str]]]:
    """The rehearsal, then tests/sim stopping at its first failure (a caught defect then costs
    seconds, not the suite's ~100 s; only a survivor runs it all) unless every_failure. `-vv`: pytest
    otherwise cuts a long assertion diff short, and with it the invariant's name."""
    pytest = [str(venv_bin / "python"), "-m", "pytest", "tests/sim", "-vv", "-rfE", "-p", "no:cacheprovider"]
    return [
        ("simulate", [str(venv_bin / "gp3migrate"), "simulate", "--stack", "dev", "--walk"]),
        ("pytest", pytest if every_failure else [*pytest, "-x"]),
    ]


CONTROL_MARK = "planted-defects control: the copy's own code ran"


def control_run(*, root: Path, files: list[str], venv_bin: Path) -> str | None:
    """A deliberately broken copy (its invariants module raises on import) must fail both commands
    with that module's message: proof that what runs is the copy, not the editable install. None
    when it did; else what went wrong."""
    scratch = Path(tempfile.mkdtemp(prefix="defect-control-"))
    try:
        copy = scratch_copy(root, scratch, files)
        module = copy / INVARIANTS_PY
        text = module.read_text()
        future = "from __future__ import annotations\n"
        assert future in text, f"{INVARIANTS_PY} changed its first import: update control_run"
        module.write_text(text.replace(future, f"{future}raise RuntimeError({CONTROL_MARK!r})\n", 1))
        for label, command in simulation_commands(venv_bin):
            done = subprocess.run(command, cwd=copy, env=copy_env(copy), capture_output=True, text=True, check=False)
            if done.returncode == 0 or CONTROL_MARK not in done.stdout + done.stderr:
                return f"{label} did not run the broken copy's code (exit {done.returncode})"
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_one(
    defect: Defect, *, root: Path, files: list[str], venv_bin: Path, keep: bool, every_failure: bool
) -> Outcome:
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"defect-{defect.name}-"))
    try:
        copy = scratch_copy(root, scratch, files)
        problem = apply_patch(copy, defect.path) or runs_its_own_code(copy, venv_bin / "python")
        if problem is not None:
            return Outcome(defect, error=problem, seconds=time.monotonic() - started)
        results = {}
        log = []
        for label, command in simulation_commands(venv_bin, every_failure=every_failure):
            done = subprocess.run(command, cwd=copy, env=copy_env(copy), capture_output=True, text=True, check=False)
            output = done.stdout + done.stderr
            results[label] = (done.returncode, output)
            log.append(f"$ {' '.join(command)}  (exit {done.returncode})\n{output}")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        (LOG_DIR / f"{defect.name}.log").write_text("\n".join(log))
        outcome = classify(defect, results["simulate"], results["pytest"], invariant_names(copy / INVARIANTS_PY))
        outcome.seconds = time.monotonic() - started
        return outcome
    finally:
        if keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def table(outcomes: list[Outcome]) -> str:
    rows = [("defect", "should trip", "verdict", "first invariant broken", "time", "how")]
    rows += [
        (o.defect.name, o.defect.invariant, o.verdict, o.first, f"{o.seconds:.0f}s", o.how())
        for o in sorted(outcomes, key=lambda o: o.defect.name)
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plant_defects", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="defects to plant (file stems or a part of one); default: all")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"defects run at once (default {DEFAULT_JOBS})")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies (their paths go to stderr)")
    parser.add_argument(
        "--every-failure", action="store_true", help="run all of tests/sim, not up to its first failure (slower)"
    )
    parser.add_argument("--check", action="store_true", help="only check that every patch applies, run nothing")
    args = parser.parse_args(argv)

    defects = [d for d in all_defects() if not args.names or any(n in d.name for n in args.names)]
    if not defects:
        print(f"no defect in {DEFECTS_DIR} matches {args.names}", file=sys.stderr)
        return 2
    stale = {d.name: why for d in defects if (why := patch_applies(ROOT, d.path)) is not None}
    for name, why in stale.items():
        print(f"{name}: does not apply to this checkout: {why}", file=sys.stderr)
    if stale or args.check:
        return 2 if stale else 0

    venv_bin = Path(sys.executable).parent
    files = project_files(ROOT)
    started = time.monotonic()
    print("control: a deliberately broken copy must fail both commands ...", end=" ", flush=True)
    failure = control_run(root=ROOT, files=files, venv_bin=venv_bin)
    print(failure or "it did", flush=True)
    if failure is not None:
        return 2
    print(f"planting {len(defects)} defects, {args.jobs} at a time; logs in {LOG_DIR}", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(
                run_one, d, root=ROOT, files=files, venv_bin=venv_bin, keep=args.keep, every_failure=args.every_failure
            )
            for d in defects
        ]
        outcomes = []
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            print(f"  {outcome.defect.name}: {outcome.verdict} ({outcome.seconds:.0f}s)", flush=True)
    elapsed = time.monotonic() - started
    print()
    print(table(outcomes))
    survived = [o.defect.name for o in outcomes if o.verdict == "SURVIVED"]
    errors = [o.defect.name for o in outcomes if o.verdict == "ERROR"]
    named = sum(o.verdict == "caught" for o in outcomes)
    print(
        f"\n{len(outcomes)} defects in {elapsed:.0f}s ({args.jobs} at a time): {named} caught by the invariant that "
        f"names them, {len(outcomes) - named - len(survived) - len(errors)} caught otherwise, "
        f"{len(survived)} survived" + (f": {', '.join(survived)}" if survived else "")
    )
    if errors:
        return 2
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
