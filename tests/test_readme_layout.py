"""README "How the code is laid out" matches the tree: every path it names exists, and it names
every package and every component module (issue 20: the README's layout must match the code)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def named_paths(block: str) -> set[str]:
    """Full paths of the tree: a name's parent is the nearest line above it indented less."""
    found: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        entry = re.match(r"^( *)([\w./]+(?:, [\w./]+)*)(?:\s|$)", line)
        if not entry or not all(n.endswith((".py", "/")) for n in entry.group(2).split(", ")):
            continue  # a description's continuation line
        indent, names = len(entry.group(1)), entry.group(2)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        prefix = parents[-1][1] if parents else ""
        for name in names.split(", "):
            found.add(prefix + name)
        if names.endswith("/"):
            parents.append((indent, prefix + names))
    return found


def test_every_named_path_exists():
    missing = sorted(p for p in named_paths(layout_block()) if not (ROOT / p).exists())
    assert missing == []


def test_every_package_and_component_is_named():
    named = named_paths(layout_block())
    packages = {
        str(p.parent.relative_to(ROOT)) + "/"
        for top in ("gp3migrate", "components")
        for p in (ROOT / top).rglob("__init__.py")
    }
    components = {str(p.relative_to(ROOT)) for p in (ROOT / "components").glob("*.py") if p.stem != "__init__"}
    assert sorted((packages | components) - named) == []


def test_the_tree_reader_nests_by_indent():
    block = "a/  x\n  b.py  y\n  c/  z\n    d.py, e.py  w\nf.py  v\n"
    assert named_paths(block) == {"a/", "a/b.py", "a/c/", "a/c/d.py", "a/c/e.py", "f.py"}
