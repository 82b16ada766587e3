"""Refuses, before anything is registered, a StorageClass change Kubernetes cannot apply.

A StorageClass's parameters, provisioner, reclaimPolicy and volumeBindingMode are immutable, so
pulumi-kubernetes replaces the object on such a change, and a named object is replaced
delete-before-replace (pulumi-kubernetes provider.go Diff). The classes are kept on delete
(`retain_on_delete`), and the engine reads that option from the *old* state (pulumi/pulumi
13428): the delete is skipped, the class stays, and the create of its replacement fails with
AlreadyExists. So a class name, once applied, keeps the fields it was created with: tier classes
carry their fields in their name (a change is a new class), and a change to the main class
(gp3ClassName) is refused here, naming the key and the way out.
"""

from collections.abc import Mapping
from typing import Any

from gp3migrate.config.problems import Problems, show
from gp3migrate.config.settings import Settings
from gp3migrate.planning.manifests import (
    FSTYPE_PARAMETER,
    TIER_CLASS_PREFIX,
    AppliedClass,
    ClassFields,
    ClassSpec,
    class_specs,
    has_tier_form,
)
from gp3migrate.planning.plan import moved_classes, plan_all, tiers

# The config key behind each parameter of the main class.
_MAIN_CLASS_KEYS = {
    "iops": "gp3Iops",
    "throughput": "gp3Throughput",
    FSTYPE_PARAMETER: "gp3FsType",
    "encrypted": "gp3Encrypted",
    "kmsKeyId": "gp3KmsKeyId",
}
_WHY = (
    "a StorageClass's parameters cannot change, and the class is kept on delete, so Pulumi's "
    "replacement would fail with AlreadyExists"
)


def check_class_changes(settings: Settings, previous_outputs: Mapping[str, Any]) -> list[str]:
    """Raise ConfigError naming every refused class change; return warnings for migrations
    that keep the class their existing gp3 claim names although the config now computes another."""
    storage = settings.storage
    plans = plan_all(settings, previous_outputs)
    class_tiers = tiers(plans, storage, previous_outputs)
    problems = Problems()
    if has_tier_form(storage.gp3_class_name):
        problems.add(
            "gp3ClassName",
            f"{show(storage.gp3_class_name)} has the form of a tier class name "
            f"({TIER_CLASS_PREFIX}-<iops>iops-<mibs>mibs...), which this program gives to the classes it "
            "creates per performance, fsType and key: choose another name",
        )
        problems.raise_if_any()
    for spec in class_specs(storage, class_tiers):
        earlier = class_tiers.applied.get(spec.name)
        if earlier is not None and earlier.fields != spec.fields:
            users = [f"migrations[{i}]" for i, plan in enumerate(plans) if plan.storage_class == spec.name]
            _refuse_change(problems, spec, earlier, users)
    problems.raise_if_any()
    moved = moved_classes(plans, storage)
    return [
        f"{plan.entry.key}: stays on StorageClass {plan.storage_class!r}, which its gp3 claim already names, "
        f"although the config now gives {moved[plan.entry.key]!r}: a claim's storageClassName cannot change "
        f"(the claim would be replaced). To restore into {moved[plan.entry.key]!r}, roll back and cut over again"
        for plan in plans
        if plan.entry.key in moved
    ]


def _refuse_change(problems: Problems, spec: ClassSpec, earlier: AppliedClass, users: list[str]) -> None:
    changed = _changed_fields(earlier.fields, spec.fields)
    name = spec.name
    if spec.role == "main":
        unmapped = []
        for field, (old, new) in changed.items():
            key = _MAIN_CLASS_KEYS.get(field.removeprefix("parameters."))
            if key is None:
                unmapped.append(f"{field} {_show(old)} -> {_show(new)}")
                continue
            undo = f"set {key} back to {_show(old)}" if old is not None else f"remove {key}"
            problems.add(
                key,
                f"{_show(new, 'not set')}, but StorageClass {name!r} was created with {_show(old, 'none')}; "
                f"{_WHY}. Set a new gp3ClassName (class {name!r} stays, no longer default, for the claims that "
                f"name it), or {undo}",
            )
        if unmapped:
            problems.add(
                "gp3ClassName",
                f"StorageClass {name!r} was created with other fields than this version of the program "
                f"declares ({'; '.join(unmapped)}); {_WHY}. Set a new gp3ClassName (class {name!r} stays)",
            )
        return
    # A tier's name carries its fields, so only a name collision gets here.
    what = "; ".join(f"{field} {_show(old)} -> {_show(new)}" for field, (old, new) in changed.items())
    for key in users or ["gp3ClassName"]:
        problems.add(
            key,
            f"restores into StorageClass {name!r}, which this stack created earlier with other fields ({what}); {_WHY}",
        )


def _changed_fields(old: ClassFields, new: ClassFields) -> dict[str, tuple[str | None, str | None]]:
    changed: dict[str, tuple[str | None, str | None]] = {}
    old_parameters, new_parameters = dict(old.parameters), dict(new.parameters)
    for key in sorted(set(old_parameters) | set(new_parameters)):
        if old_parameters.get(key) != new_parameters.get(key):
            changed[f"parameters.{key}"] = (old_parameters.get(key), new_parameters.get(key))
    for field, before, after in (
        ("provisioner", old.provisioner, new.provisioner),
        ("reclaimPolicy", old.reclaim_policy, new.reclaim_policy),
        ("volumeBindingMode", old.volume_binding_mode, new.volume_binding_mode),
    ):
        if before != after:
            changed[field] = (before, after)
    return changed


def _show(value: str | None, absent: str = "none") -> str:
    """A parameter as the config key would hold it: numbers and booleans bare, strings quoted."""
    if value is None:
        return absent
    if value.isdigit() or value in ("true", "false"):
        return value
    return show(value)
