"""The locks agree with the ranges. `requirements.txt` and `requirements-dev.txt` hold ranges (for
those who embed the package; pyproject's dependencies are requirements.txt); `requirements.lock`
and `requirements-dev.lock` (`make lock`: pip-compile --generate-hashes) hold what the Makefile and
CI install. A test here fails when one side is edited and not the other:

- every requirement the ranges name is pinned in the matching lock, inside its range, and so is
  every package that an extra it asks for needs (`types-boto3[ec2]` needs `types-boto3-ec2`: the
  locks are written without extras, so pip cannot see that one is missing);
- every pin is `==` one version with at least one hash (pip's hash-checking mode refuses the whole
  lock for one unhashed pin, but only at install time);
- no pin says it is there for a ranges file (`# via -r requirements.txt`) that no longer names it;
- the dev lock pins each of the runtime lock's packages at the same version, so the tests run the
  pulumi, pulumi-kubernetes and dill that `make up` runs.

The unit tests at the end feed the same checks doctored texts and expect the failure.

Not proven: that the pins are the newest the ranges allow (`make lock UPGRADE=all` takes them),
that a lock installs on another Python or platform than its first line names, or that the
transitive pins satisfy each other (pip-compile resolved them; .ci/run's `pip check` confirms it
on the installed venv).
"""

import importlib.metadata
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

PROJECT_DIR = Path(__file__).resolve().parent.parent
RUNTIME_RANGES, RUNTIME_LOCK = "requirements.txt", "requirements.lock"
DEV_RANGES, DEV_LOCK = "requirements-dev.txt", "requirements-dev.lock"
REFRESH = "run `make lock`"

# What the requirements of one pinned release are (its metadata's Requires-Dist), or None when
# they cannot be told; the extras check reads them.
Requires = Callable[["Pin"], list[str] | None]


@dataclass(frozen=True)
class Range:
    requirement: Requirement
    where: str  # "requirements.txt:3"
    text: str  # as written, without its comment

    @property
    def name(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)

    @property
    def file(self) -> str:
        return self.where.rsplit(":", 1)[0]


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    text: str  # "pulumi==3.272.0"
    hashes: tuple[str, ...]
    via: tuple[str, ...]  # pip-compile's annotation: "-r requirements.txt", "-c requirements.lock", "aiohttp"


@dataclass
class _Entry:
    line: int
    words: list[str]
    notes: list[str] = field(default_factory=list)


def read_ranges(name: str, read: Callable[[str], str]) -> list[Range]:
    """The requirements a ranges file names, following its `-r` includes."""
    ranges: list[Range] = []
    for number, line in enumerate(read(name).splitlines(), 1):
        body = re.sub(r"(^|\s)#.*", "", line).strip()
        if not body:
            continue
        if body.startswith(("-r ", "--requirement ")):
            ranges += read_ranges(body.split(None, 1)[1], read)
            continue
        if body.startswith("-"):
            raise ValueError(f"{name}:{number}: {body}: a ranges file holds requirements and -r includes only")
        requirement = Requirement(body)
        # A range for another Python or platform is not in a lock resolved on this one.
        if requirement.marker is None or requirement.marker.evaluate():
            ranges.append(Range(requirement, f"{name}:{number}", body))
    return ranges


def parse_lock(text: str, lock: str) -> tuple[dict[NormalizedName, Pin], list[str]]:
    """The pins of a pip-compile output, and what is wrong with its lines."""
    entries: list[_Entry] = []
    continued = False
    for number, line in enumerate(text.splitlines(), 1):
        body = line.strip()
        if continued:
            entries[-1].words.append(body.removesuffix("\\"))
        elif body.startswith("#"):
            # pip-compile indents the `# via` annotation of the pin above; header comments are not.
            if entries and line[:1].isspace():
                entries[-1].notes.append(body.lstrip("#").strip())
            continue
        elif body:
            entries.append(_Entry(number, [body.removesuffix("\\")]))
        continued = body.endswith("\\")

    pins: dict[NormalizedName, Pin] = {}
    problems: list[str] = []
    for entry in entries:
        head, *options = re.split(r"\s+(?=--)", " ".join(w.strip() for w in entry.words))
        where = f"{lock}:{entry.line}"
        if head.startswith("-"):
            problems.append(f"{where}: {head}: a lock holds pins only, no pip options ({REFRESH})")
            continue
        try:
            requirement = Requirement(head)
        except InvalidRequirement as error:
            problems.append(f"{where}: {head!r} is not a requirement: {error}")
            continue
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==" or specifiers[0].version.endswith("*"):
            problems.append(f"{where}: {head} is not pinned to one version with == ({REFRESH})")
            continue
        name = canonicalize_name(requirement.name)
        if name in pins:
            problems.append(f"{where}: {lock} pins {name} a second time ({REFRESH})")
            continue
        pins[name] = Pin(
            name=name,
            version=Version(specifiers[0].version),
            text=f"{requirement.name}=={specifiers[0].version}",
            hashes=tuple(option.split("=", 1)[1] for option in options if option.startswith("--hash=")),
            via=tuple(note.removeprefix("via").strip() for note in entry.notes if note != "via"),
        )
    return pins, problems


def needed_by_extras(requires: Iterable[str], extras: Iterable[str]) -> list[Requirement]:
    """The requirements in a release's metadata that only the given extras bring."""
    wanted = [canonicalize_name(extra) for extra in extras]
    needed = []
    for text in requires:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or marker.evaluate({"extra": ""}):
            continue  # not behind an extra: pip sees it in the lock's own resolution
        if any(marker.evaluate({"extra": extra}) for extra in wanted):
            needed.append(requirement)
    return needed


def disagreements(ranges: list[Range], lock_text: str, lock: str, requires: Requires) -> list[str]:
    """Where the lock text and the ranges disagree, one sentence each naming the package."""
    pins, problems = parse_lock(lock_text, lock)
    problems += [f"{lock} pins {pin.text} with no --hash ({REFRESH})" for pin in pins.values() if not pin.hashes]
    for range_ in ranges:
        pin = pins.get(range_.name)
        if pin is None:
            problems.append(f"{range_.where} asks for {range_.text}, which {lock} does not pin ({REFRESH})")
            continue
        if not range_.requirement.specifier.contains(pin.version):
            problems.append(
                f"{lock} pins {pin.text}, outside the range {range_.where} gives: {range_.text} ({REFRESH})"
            )
        if not range_.requirement.extras:
            continue
        for needed in needed_by_extras(requires(pin) or [], range_.requirement.extras):
            found = pins.get(canonicalize_name(needed.name))
            if found is None:
                problems.append(
                    f"{range_.where} asks for {range_.text}; its extra needs {needed.name}{needed.specifier}, "
                    f"which {lock} does not pin ({REFRESH})"
                )
            elif not needed.specifier.contains(found.version):
                problems.append(
                    f"{lock} pins {found.text}, outside the {needed.name}{needed.specifier} that "
                    f"{range_.text} needs ({pin.text}) ({REFRESH})"
                )
    named = {range_.name for range_ in ranges}
    files = {range_.file for range_ in ranges}
    for pin in pins.values():
        stale = [f for f in files if f"-r {f}" in pin.via]
        if stale and pin.name not in named:
            problems.append(
                f"{lock} pins {pin.text} for {stale[0]} (via -r {stale[0]}), which no longer names it ({REFRESH})"
            )
    return problems


def runtime_pins_missing_from_dev(runtime_text: str, dev_text: str) -> list[str]:
    """The dev lock holds each runtime pin unchanged: `venv/.dev` is `venv/.runtime` plus the tools."""
    runtime, _ = parse_lock(runtime_text, RUNTIME_LOCK)
    dev, _ = parse_lock(dev_text, DEV_LOCK)
    problems = []
    for name, pin in runtime.items():
        other = dev.get(name)
        if other is None:
            problems.append(f"{RUNTIME_LOCK} pins {pin.text}, {DEV_LOCK} does not pin {name} ({REFRESH})")
        elif other.version != pin.version:
            problems.append(
                f"{RUNTIME_LOCK} pins {pin.text}, {DEV_LOCK} {other.text}: the tests would run another "
                f"{name} than `make up` does ({REFRESH})"
            )
    return problems


def installed_requires(pin: Pin) -> list[str] | None:
    """The requirements of the release installed here, when it is the one the lock pins."""
    try:
        distribution = importlib.metadata.distribution(pin.name)
    except importlib.metadata.PackageNotFoundError:
        return None
    if Version(distribution.version) != pin.version:
        return None
    return distribution.requires or []


def project_file(name: str) -> str:
    return (PROJECT_DIR / name).read_text()


# The repository's own files.


@pytest.mark.parametrize(("ranges_file", "lock"), [(RUNTIME_RANGES, RUNTIME_LOCK), (DEV_RANGES, DEV_LOCK)])
def test_the_lock_pins_every_range_inside_it_with_hashes(ranges_file: str, lock: str) -> None:
    ranges = read_ranges(ranges_file, project_file)
    lock_text = project_file(lock)
    problems = disagreements(ranges, lock_text, lock, installed_requires)
    assert not problems, "\n".join(problems)

    pins, _ = parse_lock(lock_text, lock)
    unread = sorted(
        pins[r.name].text for r in ranges if r.requirement.extras and installed_requires(pins[r.name]) is None
    )
    if unread:
        pytest.skip(f"the extras of {', '.join(unread)} went unchecked: this venv has other releases (make venv/.dev)")


def test_the_dev_lock_pins_the_runtime_lock_s_versions() -> None:
    problems = runtime_pins_missing_from_dev(project_file(RUNTIME_LOCK), project_file(DEV_LOCK))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK])
def test_a_lock_says_what_it_was_resolved_on_and_how_to_refresh_it(lock: str) -> None:
    first, *rest = project_file(lock).splitlines()
    resolved = re.fullmatch(r"# Resolved with Python (\d+\.\d+)\.\d+ on \S+ \S+; .*", first)
    assert resolved, f"{lock} line 1: {first}"
    assert f"# This file is autogenerated by pip-compile with Python {resolved[1]}" in rest
    assert "#    make lock" in rest


def test_the_makefile_installs_from_the_locks_with_their_hashes() -> None:
    installs = [line.strip() for line in project_file("Makefile").splitlines() if "pip install" in line]
    from_files = [line for line in installs if " -r " in line]
    assert from_files == [
        "$(BIN)/pip install --quiet --require-hashes -r requirements.lock",
        "$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock",
    ]


# The checks can fail: doctored texts. Each starts from the repository's own files, so it stays
# true as the ranges and pins move on.


def ranges_reader(replaced: dict[str, str]) -> Callable[[str], str]:
    """Reads the repository's ranges files, but these texts for these names."""
    return lambda name: replaced.get(name) or project_file(name)


def range_of(name: str, text: str | None = None) -> Range:
    read = ranges_reader({RUNTIME_RANGES: text} if text else {})
    return next(r for r in read_ranges(RUNTIME_RANGES, read) if r.name == canonicalize_name(name))


def pin_of(lock_text: str, name: str) -> Pin:
    return parse_lock(lock_text, "lock")[0][canonicalize_name(name)]


def pin_block(text: str, name: str) -> str:
    """The pin's lines: `name==version \\`, its hashes and its `# via` annotation."""
    found = re.search(rf"^{re.escape(name)}==.*?(?=^\S|\Z)", text, re.M | re.S)
    assert found, f"no pin of {name}"
    return found[0]


def without_pin(text: str, name: str) -> str:
    return text.replace(pin_block(text, name), "")


def repinned(text: str, name: str, version: str) -> str:
    block = pin_block(text, name)
    return text.replace(block, re.sub(r"^(\S+==)[^\s\\]+", rf"\g<1>{version}", block))


def no_requires(pin: Pin) -> list[str] | None:
    return None


def runtime_disagreements(lock_text: str, ranges_text: str | None = None) -> list[str]:
    read = ranges_reader({RUNTIME_RANGES: ranges_text} if ranges_text else {})
    return disagreements(read_ranges(RUNTIME_RANGES, read), lock_text, RUNTIME_LOCK, no_requires)


def test_a_pin_outside_its_range_fails_naming_the_package_and_the_range() -> None:
    # GIVEN a lock that pins a pulumi major the range does not allow (an unreviewed upgrade)
    lock_text = repinned(project_file(RUNTIME_LOCK), "pulumi", "99.0.0")
    pulumi = range_of("pulumi")

    # WHEN it is checked, THEN the one problem names the pin, the range and where the range is
    [problem] = runtime_disagreements(lock_text)
    assert problem == (
        f"requirements.lock pins pulumi==99.0.0, outside the range {pulumi.where} gives: {pulumi.text} "
        "(run `make lock`)"
    )
    assert pulumi.where.startswith("requirements.txt:") and pulumi.text.startswith("pulumi>=")


def test_a_range_narrowed_past_the_pin_fails() -> None:
    lock_text = project_file(RUNTIME_LOCK)
    pin = pin_of(lock_text, "pulumi-kubernetes")
    before = range_of("pulumi-kubernetes")
    ranges = project_file(RUNTIME_RANGES).replace(before.text, "pulumi-kubernetes>=99,<100")
    assert runtime_disagreements(lock_text, ranges) == [
        f"requirements.lock pins {pin.text}, outside the range {before.where} gives: pulumi-kubernetes>=99,<100 "
        "(run `make lock`)"
    ]


def test_a_range_the_lock_does_not_pin_fails() -> None:
    # ruamel.yaml is pinned as ruamel-yaml: the names compare normalized.
    lock_text = without_pin(project_file(RUNTIME_LOCK), "ruamel-yaml")
    ruamel = range_of("ruamel.yaml")
    assert runtime_disagreements(lock_text) == [
        f"{ruamel.where} asks for {ruamel.text}, which requirements.lock does not pin (run `make lock`)"
    ]


def test_a_range_added_but_not_locked_fails() -> None:
    ranges = project_file(RUNTIME_RANGES) + "tenacity>=9,<10  # a new one\n"
    line = len(ranges.splitlines())
    assert runtime_disagreements(project_file(RUNTIME_LOCK), ranges) == [
        f"requirements.txt:{line} asks for tenacity>=9,<10, which requirements.lock does not pin (run `make lock`)"
    ]


def test_a_pin_left_from_a_removed_range_fails() -> None:
    lock_text = project_file(RUNTIME_LOCK)
    ranges = project_file(RUNTIME_RANGES).replace(range_of("ruamel.yaml").text + "\n", "")
    assert runtime_disagreements(lock_text, ranges) == [
        f"requirements.lock pins {pin_of(lock_text, 'ruamel.yaml').text} for requirements.txt "
        "(via -r requirements.txt), which no longer names it (run `make lock`)"
    ]


def test_a_pin_without_a_hash_fails() -> None:
    text = project_file(RUNTIME_LOCK)
    block = pin_block(text, "boto3")
    lines = [line for line in block.splitlines() if "--hash=" not in line]
    text = text.replace(block, "\n".join([lines[0].removesuffix(" \\"), *lines[1:]]) + "\n")
    pin = pin_of(text, "boto3")
    assert pin.hashes == () and "-r requirements.txt" in pin.via
    assert runtime_disagreements(text) == [f"requirements.lock pins {pin.text} with no --hash (run `make lock`)"]


def test_a_range_or_a_repeat_in_the_lock_instead_of_one_pin_fails() -> None:
    text = project_file(RUNTIME_LOCK)
    ranged = text.replace(pin_block(text, "dill"), "dill>=0.3 \\\n    --hash=sha256:00\n")
    repeated = text + pin_block(text, "dill")
    assert [p.split(": ", 1)[1] for p in runtime_disagreements(ranged)] == [
        "dill>=0.3 is not pinned to one version with == (run `make lock`)"
    ]
    assert [p.split(": ", 1)[1] for p in runtime_disagreements(repeated)] == [
        "requirements.lock pins dill a second time (run `make lock`)"
    ]


def test_a_lock_with_a_pip_option_fails() -> None:
    text = "--index-url https://mirror.invalid/simple\n" + project_file(RUNTIME_LOCK)
    assert runtime_disagreements(text) == [
        "requirements.lock:1: --index-url https://mirror.invalid/simple: a lock holds pins only, no pip options "
        "(run `make lock`)"
    ]


def types_boto3_requires(listed: list[str]) -> Requires:
    """types-boto3's metadata as given; every other release requires nothing."""
    return lambda pin: listed if pin.name == "types-boto3" else []


def dev_disagreements(lock_text: str, requires: Requires) -> list[str]:
    return disagreements(read_ranges(DEV_RANGES, project_file), lock_text, DEV_LOCK, requires)


def types_boto3_range() -> Range:
    return next(r for r in read_ranges(DEV_RANGES, project_file) if r.name == "types-boto3")


def test_a_package_an_extra_needs_missing_from_the_lock_fails() -> None:
    # GIVEN types-boto3's metadata (its ec2 extra brings types-boto3-ec2) and a lock without that
    requires = types_boto3_requires(
        ['types-boto3-ec2<1.44.0,>=1.43.0; extra == "ec2"', 'types-boto3-s3; extra == "s3"', "botocore-stubs"]
    )
    lock_text = without_pin(project_file(DEV_LOCK), "types-boto3-ec2")
    wanted = types_boto3_range()
    # THEN the range that asks for the extra is named, with what the extra needs; s3 was not asked for
    assert dev_disagreements(lock_text, requires) == [
        f"{wanted.where} asks for {wanted.text}; its extra needs types-boto3-ec2<1.44.0,>=1.43.0, "
        "which requirements-dev.lock does not pin (run `make lock`)"
    ]
    assert "types-boto3[ec2]" in wanted.text


def test_a_package_an_extra_needs_pinned_outside_its_range_fails() -> None:
    lock_text = project_file(DEV_LOCK)
    found, types_boto3 = pin_of(lock_text, "types-boto3-ec2"), pin_of(lock_text, "types-boto3")
    wanted = types_boto3_range()
    assert dev_disagreements(lock_text, types_boto3_requires(['types-boto3-ec2>=99; extra == "ec2"'])) == [
        f"requirements-dev.lock pins {found.text}, outside the types-boto3-ec2>=99 that {wanted.text} "
        f"needs ({types_boto3.text}) (run `make lock`)"
    ]


def test_the_extras_check_reads_this_venv_s_metadata() -> None:
    # types-boto3 is installed from the dev lock: its real metadata has the ec2 extra.
    lock_text = project_file(DEV_LOCK)
    requires = installed_requires(pin_of(lock_text, "types-boto3"))
    if requires is None:
        pytest.skip("this venv does not hold the dev lock's types-boto3 (make venv/.dev)")
    assert [r.name for r in needed_by_extras(requires, ["ec2"])] == ["types-boto3-ec2"]
    [problem] = dev_disagreements(without_pin(lock_text, "types-boto3-ec2"), installed_requires)
    assert problem.startswith(f"{types_boto3_range().where} asks for types-boto3[ec2]") and "types-boto3-ec2" in problem


def test_a_runtime_pin_the_dev_lock_holds_at_another_version_fails() -> None:
    runtime = project_file(RUNTIME_LOCK)
    dill = pin_of(runtime, "dill")
    dev = repinned(project_file(DEV_LOCK), "dill", "0.0.1")
    assert runtime_pins_missing_from_dev(runtime, dev) == [
        f"requirements.lock pins {dill.text}, requirements-dev.lock dill==0.0.1: the tests would run another dill "
        "than `make up` does (run `make lock`)"
    ]
    assert runtime_pins_missing_from_dev(runtime, without_pin(project_file(DEV_LOCK), "dill")) == [
        f"requirements.lock pins {dill.text}, requirements-dev.lock does not pin dill (run `make lock`)"
    ]
