"""The snapshot CRDs' validation rules (schemas and CEL `x-kubernetes-validations`), read from
shared/fixtures/external-snapshotter-v8.6.0 when present, as the API server enforces them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gp3migrate.sim.kube.fields import get_path
from gp3migrate.sim.kube.names import SNAPSHOT_GROUP, FieldPath, KubeError

SNAPSHOT_CRDS = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "external-snapshotter-v8.6.0"


@dataclass(frozen=True)
class CrdRule:
    """One rule of a CRD schema at `path`: check "cel" (rule text), "required" or "enum" (detail)."""

    kind: str
    path: FieldPath
    check: str
    detail: str
    message: str = ""


# The rules of the v1 schemas of external-snapshotter v8.6.0's CRDs (client/config/crd/*.yaml), for
# when shared/fixtures is absent; tests compare this table with the files.
FALLBACK_CRD_RULES: tuple[CrdRule, ...] = (
    CrdRule("VolumeSnapshotClass", (), "required", "deletionPolicy"),
    CrdRule("VolumeSnapshotClass", (), "required", "driver"),
    CrdRule("VolumeSnapshotClass", ("deletionPolicy",), "enum", "Delete,Retain"),
    CrdRule("VolumeSnapshotContent", (), "required", "spec"),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec",),
        "cel",
        "!has(oldSelf.sourceVolumeMode) || has(self.sourceVolumeMode)",
        "sourceVolumeMode is required once set",
    ),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "deletionPolicy"),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "driver"),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "source"),
    CrdRule("VolumeSnapshotContent", ("spec",), "required", "volumeSnapshotRef"),
    CrdRule("VolumeSnapshotContent", ("spec", "deletionPolicy"), "enum", "Delete,Retain"),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.volumeHandle) || has(self.volumeHandle)",
        "volumeHandle is required once set",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.snapshotHandle) || has(self.snapshotHandle)",
        "snapshotHandle is required once set",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source"),
        "cel",
        "(has(self.volumeHandle) && !has(self.snapshotHandle)) || "
        "(!has(self.volumeHandle) && has(self.snapshotHandle))",
        "exactly one of volumeHandle and snapshotHandle must be set",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source", "snapshotHandle"),
        "cel",
        "self == oldSelf",
        "snapshotHandle is immutable",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "source", "volumeHandle"),
        "cel",
        "self == oldSelf",
        "volumeHandle is immutable",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "sourceVolumeMode"),
        "cel",
        "self == oldSelf",
        "sourceVolumeMode is immutable",
    ),
    CrdRule(
        "VolumeSnapshotContent",
        ("spec", "volumeSnapshotRef"),
        "cel",
        "has(self.name) && has(self.__namespace__)",
        "both spec.volumeSnapshotRef.name and spec.volumeSnapshotRef.namespace must be set",
    ),
    CrdRule("VolumeSnapshot", (), "required", "spec"),
    CrdRule("VolumeSnapshot", ("spec",), "required", "source"),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.persistentVolumeClaimName) || has(self.persistentVolumeClaimName)",
        "persistentVolumeClaimName is required once set",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source"),
        "cel",
        "!has(oldSelf.volumeSnapshotContentName) || has(self.volumeSnapshotContentName)",
        "volumeSnapshotContentName is required once set",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source"),
        "cel",
        "(has(self.volumeSnapshotContentName) && !has(self.persistentVolumeClaimName)) || "
        "(!has(self.volumeSnapshotContentName) && has(self.persistentVolumeClaimName))",
        "exactly one of volumeSnapshotContentName and persistentVolumeClaimName must be set",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source", "persistentVolumeClaimName"),
        "cel",
        "self == oldSelf",
        "persistentVolumeClaimName is immutable",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "source", "volumeSnapshotContentName"),
        "cel",
        "self == oldSelf",
        "volumeSnapshotContentName is immutable",
    ),
    CrdRule(
        "VolumeSnapshot",
        ("spec", "volumeSnapshotClassName"),
        "cel",
        "size(self) > 0",
        "volumeSnapshotClassName must not be the empty string when set",
    ),
)

# The CEL rule forms those CRDs use; a rule of any other form fails loading (so a new upstream rule
# cannot pass unenforced).
_CEL_IMMUTABLE = re.compile(r"^self == oldSelf$")
_CEL_REQUIRED_ONCE_SET = re.compile(r"^!has\(oldSelf\.(\w+)\) \|\| has\(self\.(\w+)\)$")
_CEL_EXACTLY_ONE = re.compile(
    r"^\(has\(self\.(\w+)\) && !has\(self\.(\w+)\)\) \|\| \(!has\(self\.(\w+)\) && has\(self\.(\w+)\)\)$"
)
_CEL_BOTH = re.compile(r"^has\(self\.(\w+)\) && has\(self\.(\w+)\)$")
_CEL_NON_EMPTY = re.compile(r"^size\(self\) > 0$")
_CEL_FORMS = (_CEL_IMMUTABLE, _CEL_REQUIRED_ONCE_SET, _CEL_EXACTLY_ONE, _CEL_BOTH, _CEL_NON_EMPTY)


@functools.cache
def load_crd_rules(directory: Path = SNAPSHOT_CRDS) -> tuple[CrdRule, ...]:
    """The rules of the snapshot CRDs' served v1 schemas, read from the files when they are there."""
    if not directory.is_dir():
        return FALLBACK_CRD_RULES
    rules: list[CrdRule] = []

    def walk(kind: str, node: dict[str, Any], path: FieldPath) -> None:
        for validation in node.get("x-kubernetes-validations") or []:
            rule = " ".join(validation["rule"].split())
            if not any(form.match(rule) for form in _CEL_FORMS):
                raise ValueError(f"{kind} {'.'.join(path)}: CEL rule not modelled: {rule}")
            rules.append(CrdRule(kind, path, "cel", rule, validation["message"]))
        rules.extend(CrdRule(kind, path, "required", field) for field in node.get("required") or [])
        if node.get("enum"):
            rules.append(CrdRule(kind, path, "enum", ",".join(node["enum"])))
        for name, child in sorted((node.get("properties") or {}).items()):
            walk(kind, child, (*path, name))

    for file in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(file.read_text())
        for version in crd["spec"]["versions"]:
            if version["name"] == "v1" and version.get("served"):
                walk(crd["spec"]["names"]["kind"], version["schema"]["openAPIV3Schema"], ())
    return tuple(rules)


def _cel_field(name: str) -> str:
    return name.strip("_") if name.startswith("__") else name  # CEL escapes reserved words: __namespace__


def check_crd_rules(rules: tuple[CrdRule, ...], obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Apply a CRD's rules the way the apiserver does: to values present; transition rules on update."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    for rule in rules:
        if rule.kind != kind:
            continue
        present, value = get_path(obj, rule.path)
        if not present:
            continue
        where = ".".join(rule.path) or "<root>"
        problem = ""
        if rule.check == "required":
            if not isinstance(value, dict) or rule.detail not in value:
                problem = f"{where}.{rule.detail}: Required value".removeprefix("<root>.")
        elif rule.check == "enum":
            if value not in rule.detail.split(","):
                problem = f'{where}: Unsupported value: "{value}": supported values: {rule.detail}'
        else:
            problem = _check_cel(rule, value, old)
            problem = f"{where}: Invalid value: {problem}" if problem else ""
        if problem:
            raise KubeError("Invalid", f'{kind}.{SNAPSHOT_GROUP} "{name}" is invalid: {problem}')


def _check_cel(rule: CrdRule, value: Any, old: dict[str, Any] | None) -> str:
    old_present, old_value = get_path(old, rule.path) if old is not None else (False, None)
    if _CEL_IMMUTABLE.match(rule.detail):
        return rule.message if old_present and old_value != value else ""
    if match := _CEL_REQUIRED_ONCE_SET.match(rule.detail):
        field = _cel_field(match.group(1))
        return rule.message if old_present and field in (old_value or {}) and field not in value else ""
    if match := _CEL_EXACTLY_ONE.match(rule.detail):
        first, second = _cel_field(match.group(1)), _cel_field(match.group(2))
        return rule.message if (first in value) == (second in value) else ""
    if match := _CEL_BOTH.match(rule.detail):
        return "" if all(_cel_field(f) in value for f in match.groups()) else rule.message
    return rule.message if len(value) == 0 else ""  # _CEL_NON_EMPTY
