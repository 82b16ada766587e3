"""What `advance` reads from a preview: per volume, what will be created, replaced and deleted, and
which of those it refuses.

A preview step that deletes or replaces a resource holding data or pointing at it (a claim, a
PV, the Retain patch on a PV, an EBS snapshot, a VolumeSnapshot or its content) is refused unless
it is a delete the transition's own steps make (gp3migrate/fleet/declared_steps.py). Replaces are
never the program's: its data resources change phase by being created or deleted, never by a
replace (steps keep their names: gp3migrate/planning/steps.py), so a replace there means an edit
the program did not plan (a changed class, a renamed claim) and is refused.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

# Pulumi engine step ops (pulumi sdk/python/lib/pulumi/automation/events.py OpType); the sim's
# steps use the same words.
DELETING = frozenset({"delete", "delete-replaced", "discard", "discard-replaced"})
REPLACING = frozenset({"replace", "create-replacement", "import-replacement", "read-replacement"})
CHANGING = frozenset({"create", "update", "import"}) | DELETING | REPLACING

# Resource types that hold a volume's data or point at it (components/step_resources.py).
DATA_TYPES = frozenset(
    {
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:core/v1:PersistentVolume",
        "kubernetes:core/v1:PersistentVolumePatch",
        "aws:ebs/snapshot:Snapshot",
        "aws:ebs/volume:Volume",
        "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshot",
        "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotContent",
    }
)


@dataclass(frozen=True)
class PlannedStep:
    """One step of a preview: the engine's op, the resource's URN and type."""

    op: str
    urn: str
    type: str

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class VolumeChanges:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("create", self.created),
                ("update", self.updated),
                ("replace", self.replaced),
                ("delete", self.deleted),
            )
            if names
        ]
        return "; ".join(parts) or "no change"


@dataclass(frozen=True)
class PreviewVerdict:
    # Migration key -> what the preview does to its resources.
    per_volume: dict[str, VolumeChanges]
    # Changes to resources of no migration (the platform), as "op name".
    platform: list[str]
    # One line per refused step, naming the resource and why.
    refusals: list[str]

    @property
    def refused(self) -> bool:
        return bool(self.refusals)


def owner(name: str, prefixes: Mapping[str, str]) -> tuple[str, str] | None:
    """(migration key, step name) of a step resource named `<migration resource name>-<step>`; the
    longest prefix wins (`migrate-ns-data` must not claim `migrate-ns-data-2`'s steps)."""
    best: tuple[int, str] | None = None
    for prefix, key in prefixes.items():
        if name.startswith(prefix + "-") and (best is None or len(prefix) > best[0]):
            best = (len(prefix), key)
    return (best[1], name[best[0] + 1 :]) if best else None


def judge(
    steps: Iterable[PlannedStep], *, resource_names: Mapping[str, str], expected_deletes: Collection[str]
) -> PreviewVerdict:
    """`resource_names`: migration resource name (the component's) -> its key (`namespace/claim`).
    `expected_deletes`: the step resource names the transition itself stops declaring. Per volume,
    steps are named without the migration's prefix; refusals name the whole resource."""
    per_volume: dict[str, VolumeChanges] = {}
    platform: list[str] = []
    refusals: list[str] = []
    for step in steps:
        if step.op not in CHANGING:
            continue
        found = owner(step.name, resource_names)
        if found is None:
            platform.append(f"{step.op} {step.name}")
        else:
            key, name = found
            changes = per_volume.setdefault(key, VolumeChanges())
            if step.op in DELETING:
                changes.deleted.append(name)
            elif step.op in REPLACING:
                if name not in changes.replaced:
                    changes.replaced.append(name)
            elif step.op == "update":
                changes.updated.append(name)
            else:
                changes.created.append(name)
        if step.type not in DATA_TYPES:
            continue
        if step.op in REPLACING:
            refusals.append(
                f"{step.name} ({step.type}) would be replaced: a replace deletes what holds or points at data, "
                "and no phase of the program replaces it; find the edit that changed it (`pulumi preview --diff`)"
            )
        elif step.op in DELETING and step.name not in expected_deletes:
            refusals.append(
                f"{step.name} ({step.type}) would be deleted, and the transition's own steps do not delete it; "
                "find the edit that dropped it (`pulumi preview --diff`)"
            )
    # A replace shows as several ops on one resource; say it once.
    return PreviewVerdict(per_volume, platform, list(dict.fromkeys(refusals)))
