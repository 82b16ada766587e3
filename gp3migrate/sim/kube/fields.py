"""Quantities and field paths: the small helpers the store's server-side apply and the
controllers share.
"""

from __future__ import annotations

import copy
from typing import Any

from gp3migrate.sim.kube.names import GI, FieldPath


def quantity(value: Any) -> int:
    """A resource quantity in bytes ("100Gi", "1G", "500Mi", 1024)."""
    text = str(value)
    for suffix, factor in (("Ki", 1024), ("Mi", 1024**2), ("Gi", GI), ("Ti", 1024**4), ("Pi", 1024**5)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    for suffix, factor in (("k", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text))


def gib_quantity(size_bytes: int) -> str:
    """resource.NewQuantity(size, BinarySI) as it serialises for whole GiB."""
    return f"{size_bytes // GI}Gi" if size_bytes % GI == 0 else str(size_bytes)


def leaves(value: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Leaf fields of an object; lists are atomic leaves (as SSA treats `atomic` lists)."""
    if isinstance(value, dict) and value:
        out: dict[FieldPath, Any] = {}
        for key in sorted(value):
            out.update(leaves(value[key], (*prefix, str(key))))
        return out
    return {prefix: value}


def get_path(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    node = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def set_path(obj: dict[str, Any], path: FieldPath, value: Any) -> None:
    node = obj
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)


def remove_path(obj: dict[str, Any], path: FieldPath) -> None:
    """Remove a field and the maps it leaves empty."""
    parents = [obj]
    for part in path[:-1]:
        child = parents[-1].get(part)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        parents[depth - 1].pop(path[depth - 1], None)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386): maps merge, null deletes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


# Fields no manager owns (identity, server-set metadata, the status subresource).
_UNTRACKED: frozenset[FieldPath] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("status",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "generation"),
        ("metadata", "creationTimestamp"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "deletionGracePeriodSeconds"),
        ("metadata", "finalizers"),
        ("metadata", "managedFields"),
    }
)


def tracked_leaves(obj: dict[str, Any]) -> dict[FieldPath, Any]:
    """The fields managers own (an empty map owns nothing)."""
    return {p: v for p, v in leaves(obj).items() if p and v != {} and not any(p[: len(u)] == u for u in _UNTRACKED)}
