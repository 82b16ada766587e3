"""`simulate --stack S`: the rehearsal of the next `pulumi up` of a stack file.

The simulated world is brought to where the stack last was, by replaying what was applied before:
- the rehearsal record this command keeps for the stack (`.gp3migrate/rehearsals/<stack>.json`
  beside the stack files: each rehearsed `up`'s config, in order), or
- `--outputs FILE`, the real stack's `pulumi stack output --json`: each migration's last applied
  phase (`migrationPhases`) walked to along its strategy's path, with the facts it recorded;
then the stack file as it is now is applied as one `up`: its plan, the program's refusals, the
downtime and the invariants, as the next `pulumi up` would meet them. A stack with `promoteFrom`
reads the upstream stack's outputs from its rehearsal record or from `--upstream-outputs FILE`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gp3migrate.config.phases import parse_history
from gp3migrate.sim.program import fully_qualified
from gp3migrate.sim.rehearsal import PhaseReport, Rehearsal, apply_up, repoint_renamed_workloads
from gp3migrate.sim.scenario import DriverSetup, Simulation, UpResult

RECORD_DIR = Path(".gp3migrate") / "rehearsals"
# What a `migrationPhases` record's last phase was reached by, along the strategy's path.
_PATH_TO = {
    "precopy": ("precopy",),
    "cutover": ("precopy", "cutover"),
    "finalize": ("precopy", "cutover", "finalize"),
    "cleanup": ("precopy", "cutover", "finalize", "cleanup"),
}
# Recorded facts the world replaces with its own (it seeds its own volume ids).
_WORLD_FACTS = ("volumeId",)


class RehearsalInputError(ValueError):
    """A record or outputs file that cannot be read: the message names the file and what is wrong."""


@dataclass
class Record:
    """The rehearsed `up`s of one stack, oldest first, which of them failed (by index: a failed
    `up` that carried out steps is replayed too), and the stack outputs they left."""

    ups: list[dict[str, Any]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def record_path(project_dir: Path, stack: str) -> Path:
    return project_dir / RECORD_DIR / f"{stack}.json"


def load_record(path: Path) -> Record:
    if not path.exists():
        return Record()
    try:
        data = json.loads(path.read_text())
        return Record(
            ups=list(data["ups"]),
            failed=[int(i) for i in data.get("failed") or []],
            outputs=dict(data.get("outputs") or {}),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise RehearsalInputError(
            f"{path}: not a rehearsal record ({err}); delete it or run with --fresh to start from nothing applied"
        ) from err


def save_record(path: Path, record: Record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"ups": record.ups, "failed": record.failed, "outputs": record.outputs}
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def load_outputs(path: Path) -> dict[str, Any]:
    """`pulumi stack output --json` (secrets shown as "[secret]" are kept as they are)."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise RehearsalInputError(f"{path}: cannot be read ({err.strerror})") from err
    except ValueError as err:
        raise RehearsalInputError(f"{path}: not JSON ({err}); give `pulumi stack output --json` of the stack") from err
    if not isinstance(data, dict):
        raise RehearsalInputError(f"{path}: not a map of stack outputs; give `pulumi stack output --json`")
    return data


def ups_from_outputs(config: dict[str, Any], outputs: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The `up`s that took each migration in the file to the phase the outputs record, with the
    facts it recorded, and a note per recorded migration the file no longer lists."""
    history = parse_history(outputs.get("migrationPhases"))
    entries = {f"{e['namespace']}/{e['claim']}": e for e in config.get("migrations") or []}
    notes = [
        f"{key}: applied ({applied.phase}) but no longer in the stack file: not rehearsed"
        for key, applied in sorted(history.items())
        if key not in entries
    ]
    paths: dict[str, tuple[str, ...]] = {}
    for key, applied in history.items():
        if key not in entries:
            continue
        if applied.phase == "rollback":
            paths[key] = ("precopy", "cutover", "rollback") if applied.rolled_back_cutover else ("precopy", "rollback")
        else:
            paths[key] = _PATH_TO[applied.phase]
    ups = []
    for number in range(max((len(p) for p in paths.values()), default=0)):
        up = copy.deepcopy(config)
        up["migrations"] = []
        for key, path in paths.items():
            applied = history[key]
            entry = copy.deepcopy(entries[key])
            entry.update({k: v for k, v in applied.facts.items() if k not in _WORLD_FACTS})
            entry.update(phase=path[min(number, len(path) - 1)], strategy=applied.strategy)
            if applied.phase in ("finalize", "cleanup"):
                entry["keepSnapshots"] = applied.keep_snapshots
            up["migrations"].append(entry)
        ups.append(up)
    return ups, notes


def seeding_config(current: dict[str, Any], ups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The stack file with every volume a replayed `up` or the file names, each as it was first
    applied: the world is what was there before any edit (an fsType edited since is an edit the
    next `up` meets, not a different disk)."""
    config = copy.deepcopy(current)
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for source in (*ups, current):
        for entry in source.get("migrations") or []:
            first.setdefault((entry["namespace"], entry["claim"]), copy.deepcopy(entry))
    config["migrations"] = list(first.values())
    return config


@dataclass
class Followed:
    rehearsal: Rehearsal
    # The `up`s that reached the last applied state and how they ended, for the report's header.
    applied_before: dict[str, str]
    outputs: dict[str, Any]
    notes: list[str]

    @property
    def report(self) -> PhaseReport:
        return self.rehearsal.phases[-1]


def follow(
    current: dict[str, Any],
    *,
    stack: str,
    seed: int,
    driver: DriverSetup,
    ups: Sequence[dict[str, Any]],
    failed: Collection[int] = (),
    upstream: tuple[str, dict[str, Any], str] | None = None,
    notes: Sequence[str] = (),
) -> Followed:
    """Replay `ups` on a fresh world (the user's part between them included), then apply
    `current` as the next `up`. `failed`: the indexes of the `ups` that failed before."""
    notes = list(notes)
    with Simulation(seeding_config(current, ups), stack=stack, seed=seed, driver=driver) as sim:
        if upstream is not None:
            sim.other_stacks[fully_qualified(upstream[0])] = upstream[1]
        for index, up in enumerate(ups):
            config = sim.localized(up)
            result = sim.up(config)
            if result.ok:
                repoint_renamed_workloads(sim, config)
            notes += _replay_note(index + 1, result, failed_before=index in failed)
        applied = {
            str(key): str(value.get("phase"))
            for key, value in (sim.checkpoint.outputs.get("migrationPhases") or {}).items()
            if isinstance(value, Mapping)
        }
        config = sim.localized(current)
        phases = sorted({str(e.get("phase")) for e in current.get("migrations") or []})
        report = apply_up(sim, config, ", ".join(phases) or "platform")
        report.title = "the stack file as it is now" + (f" (phase {', '.join(phases)})" if phases else " (platform)")
        rehearsal = Rehearsal(stack, seed, [report])
        return Followed(rehearsal, applied, copy.deepcopy(sim.checkpoint.outputs), notes)


def _replay_note(number: int, result: UpResult, *, failed_before: bool) -> list[str]:
    """What the report says about a replayed `up` whose outcome is worth knowing."""
    if result.ok and not failed_before:
        return []
    if result.ok:
        return [f"replayed up {number} succeeded, but it failed when rehearsed: the program changed since; --fresh"]
    if failed_before:
        return [f"replayed up {number} failed as it did when rehearsed: {result.error}"]
    return [
        f"replayed up {number} failed, but it succeeded when rehearsed or applied: the program changed since "
        f"(--fresh starts over): {result.error}"
    ]
