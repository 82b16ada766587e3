"""The project's imports as a graph of modules, read from the source (nothing is imported).

Every import counts: module level, inside functions, and under `if TYPE_CHECKING:` — a circle of
type-only imports is still two modules that cannot be read one without the other.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

# The project's own top-level names; imports of anything else (stdlib, pulumi, boto3) are not edges.
PROJECT_ROOTS = ("gp3migrate", "components", "scripts")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__main__"


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of the product (tests excluded), by dotted name; the Pulumi program is `__main__`."""
    found = {module_name(root, p): p for top in PROJECT_ROOTS for p in sorted((root / top).rglob("*.py"))}
    if (root / "__main__.py").exists():
        found["__main__"] = root / "__main__.py"
    return found


def imports_of(source: str, modules: Iterable[str]) -> set[str]:
    """The project modules `source` imports: `from a.b import c` names `a.b.c` when that is a module."""
    known = set(modules)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imports_of(path.read_text(), modules) - {name} for name, path in modules.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(circles)


def package_of(module: str, packages: Iterable[str]) -> str:
    """The longest listed package that holds `module`, or the module itself."""
    holders = [p for p in packages if module == p or module.startswith(p + ".")]
    return max(holders, key=len) if holders else module


_MAY_IMPORT = re.compile(r"May import:(.*?)(?:\.\s*$|\.\s+[A-Z]|\n\s*\n)", re.S | re.M)


def declared_imports(docstring: str) -> set[str] | None:
    """The names in a package docstring's "May import: `a`, `b`." sentence; None when it has none."""
    match = _MAY_IMPORT.search(docstring + "\n\n")
    if match is None:
        return None
    return set(re.findall(r"`([\w.]+)`", match.group(1)))
