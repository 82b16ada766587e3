"""Where every volume of a stack stands: one row per migration entry (what the file asks, what the
last `up` applied, what the next run would do by the program's own rules) and one summary per wave.

Pure: it reads the validated settings and the stack's outputs (stack_outputs.py) and nothing else.
What the program publishes per volume and reads here: `migrationPhases` (the phase each last `up`
applied, gp3migrate/config/phases.py applied_record) and `migrations` (each volume's outputs,
components/volume_migration.py VolumeMigration.publish). The program publishes no cutover downtime
today, so the downtime column reads `migrations.<key>.downtimeSeconds` when a stack has it and
shows "—" otherwise.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gp3migrate.config.phases import PHASES, parse_history
from gp3migrate.config.settings import Settings
from gp3migrate.config.transitions import NextStep, next_phase
from gp3migrate.config.waves import unmatched_warnings

HISTORY_OUTPUT = "migrationPhases"
VOLUMES_OUTPUT = "migrations"
NO_WAVE = "(no wave)"


class StatusError(Exception):
    """Outputs whose shape is not what the program publishes: the key, and what it holds."""


@dataclass(frozen=True)
class VolumeRow:
    volume: str
    workload: str | None
    wave: str | None
    strategy: str
    asked: str
    applied: str | None
    next_phase: str | None
    # The file asks for next_phase already: only an `up` is missing.
    pending: bool
    # Why the program would refuse the next step (empty: it may go ahead).
    refused: tuple[str, ...]
    downtime_seconds: float | None

    @property
    def next_text(self) -> str:
        if self.next_phase is None:
            return "done"
        if self.refused:
            return f"refused: {self.next_phase}"
        return f"up applies {self.next_phase}" if self.pending else f"advance to {self.next_phase}"


@dataclass(frozen=True)
class WaveSummary:
    wave: str
    # The wave's own phase (None: its entries set theirs).
    phase: str | None
    volumes: int
    workloads: int
    asked: dict[str, int]
    applied: dict[str, int]
    # Volumes whose next step the program would take, and those it would refuse.
    ready: int
    refused: int
    done: int


@dataclass(frozen=True)
class Status:
    stack: str
    rows: tuple[VolumeRow, ...]
    waves: tuple[WaveSummary, ...]
    warnings: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "volumes": [{**asdict(row), "refused": list(row.refused), "next": row.next_text} for row in self.rows],
            "waves": [asdict(wave) for wave in self.waves],
            "warnings": list(self.warnings),
        }


def _map_output(outputs: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = outputs.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise StatusError(f"output {key!r} is not a map of <namespace>/<claim> to records ({type(value).__name__})")
    return value


def _downtime(record: Any) -> float | None:
    value = record.get("downtimeSeconds") if isinstance(record, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def stack_status(stack: str, settings: Settings, outputs: Mapping[str, Any]) -> Status:
    history = parse_history(_map_output(outputs, HISTORY_OUTPUT))
    volumes = _map_output(outputs, VOLUMES_OUTPUT)
    region = settings.cluster.region
    rows = []
    for entry in settings.migrations:
        previous = history.get(entry.key)
        step: NextStep = next_phase(settings.migrations, history, entry, region=region)
        workload = entry.workload
        rows.append(
            VolumeRow(
                volume=entry.key,
                workload=f"{workload.kind}/{workload.name}" if workload else None,
                wave=entry.wave,
                strategy=entry.strategy,
                asked=entry.phase,
                applied=previous.phase if previous else None,
                next_phase=step.to,
                pending=step.pending,
                refused=step.problems,
                downtime_seconds=_downtime(volumes.get(entry.key)),
            )
        )
    return Status(
        stack=stack,
        rows=tuple(rows),
        waves=tuple(wave_summaries(settings, rows)),
        warnings=tuple(unmatched_warnings(settings.waves, settings.migrations)),
    )


def _counts(values: Sequence[str | None]) -> dict[str, int]:
    counted = Counter(value or "nothing" for value in values)
    order = [*PHASES, "nothing"]
    return {phase: counted[phase] for phase in sorted(counted, key=order.index)}


def wave_summaries(settings: Settings, rows: Sequence[VolumeRow]) -> list[WaveSummary]:
    """One per wave in the file's order, then the entries in none (when the stack has any)."""
    groups: list[tuple[str, str | None, list[VolumeRow]]] = [
        (wave.name, wave.phase, [row for row in rows if row.wave == wave.name]) for wave in settings.waves
    ]
    left = [row for row in rows if row.wave is None]
    if left:
        groups.append((NO_WAVE, None, left))
    return [
        WaveSummary(
            wave=name,
            phase=phase,
            volumes=len(members),
            workloads=len({(m.volume.split("/")[0], m.workload) for m in members if m.workload}),
            asked=_counts([m.asked for m in members]),
            applied=_counts([m.applied for m in members]),
            ready=sum(1 for m in members if m.next_phase and not m.refused),
            refused=sum(1 for m in members if m.refused),
            done=sum(1 for m in members if m.next_phase is None),
        )
        for name, phase, members in groups
    ]
