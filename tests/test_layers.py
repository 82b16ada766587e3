"""The layout holds the architecture: no import circles, each package imports only what its
docstring says it may, and no two modules share a name (issue 20)."""

from collections import defaultdict
from pathlib import Path

import pytest

from tests.import_graph import (
    declared_imports,
    import_circles,
    import_graph,
    imports_of,
    package_of,
    project_modules,
)

ROOT = Path(__file__).resolve().parents[1]
# The packages whose docstrings say what they may import.
LAYERED = (
    "gp3migrate.volume_types",
    "gp3migrate.config",
    "gp3migrate.planning",
    "gp3migrate.checks",
    "gp3migrate.iam",
    "gp3migrate.discovery",
    "gp3migrate.sim",
    "gp3migrate.fleet",
    "components",
)
# Foundation modules every layer may use; they use nothing of the project.
FOUNDATION = ("gp3migrate.versions", "gp3migrate.naming")
# Modules that may share a name: package markers and each package's own command.
SHARED_NAMES = {"__init__", "__main__", "cli"}


def test_no_import_circle_anywhere_in_the_project():
    circles = import_circles(import_graph(ROOT))
    assert circles == [], "modules that import each other (directly or round a circle): " + "; ".join(
        " <-> ".join(c) for c in circles
    )


def test_the_circle_finder_sees_a_circle_and_only_that():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_circles(graph) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []


def test_type_only_and_function_level_imports_count():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.world import World\n"
        "def f():\n    from pkg import clock\n"
    )
    assert imports_of(source, ["pkg.world", "pkg.clock", "pkg"]) == {"pkg.world", "pkg.clock"}


@pytest.mark.parametrize("package", LAYERED)
def test_each_package_imports_only_what_its_docstring_allows(package: str):
    modules = project_modules(ROOT)
    docstring = __import__(package, fromlist=["_"]).__doc__ or ""
    allowed = declared_imports(docstring)
    assert allowed is not None, f"{package}/__init__.py: its docstring has no 'May import:' sentence"
    unknown = allowed - set(modules)
    assert not unknown, f"{package}: its docstring names what is not a project module: {sorted(unknown)}"
    graph = import_graph(ROOT)
    owners = [*LAYERED, *FOUNDATION]
    wrong: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph.items():
        if package_of(module, LAYERED) != package:
            continue
        for target in imported:
            target_package = package_of(target, owners)
            if target_package != package and target_package not in allowed:
                wrong[module].add(target)
    assert not wrong, f"{package} may import only {sorted(allowed)}; " + "; ".join(
        f"{m} imports {sorted(t)}" for m, t in sorted(wrong.items())
    )


def test_the_docstring_rule_reads_names_and_nothing():
    assert declared_imports("Owns x.\n\nMay import: `a.b`, `c`. Nothing else.") == {"a.b", "c"}
    assert declared_imports("May import: nothing of the project. Pure.") == set()
    assert declared_imports("Owns x.") is None


def test_foundation_modules_import_nothing_of_the_project():
    graph = import_graph(ROOT)
    assert {m: sorted(graph[m]) for m in FOUNDATION if graph[m]} == {}


def test_the_program_imports_components_and_pure_logic_only():
    allowed = {"components", "gp3migrate.config", "gp3migrate.planning", *FOUNDATION}
    imported = {package_of(t, [*LAYERED, *FOUNDATION]) for t in import_graph(ROOT)["__main__"]}
    assert imported <= allowed, f"__main__.py imports {sorted(imported - allowed)}"


def test_no_two_modules_share_a_name():
    """A package counts by its folder's name: `sim/ebs.py` beside a package `ebs/` would read as one."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for module, path in project_modules(ROOT).items():
        name = path.parent.name if path.stem == "__init__" else path.stem
        if name not in SHARED_NAMES:
            by_name[name].append(module)
    assert {n: m for n, m in by_name.items() if len(m) > 1} == {}
