"""The dev -> prod promotion gate.

A stack publishes the platform versions it runs and, for each set of platform versions, the
migration phases it has completed with them (`provenPhases`). A stack with `promoteFrom` refuses,
before registering anything, to run platform versions the upstream stack has not run, or to move
a migration to cutover or finalize before the upstream stack completed that phase at least once
with the same versions. An override with a stated reason lets it through, logged and published.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gp3migrate.config.phases import PHASES
from gp3migrate.config.settings import Settings

GATED_PHASES = ("cutover", "finalize", "cleanup")


@dataclass(frozen=True)
class PlatformVersions:
    driver_kind: str
    driver_version: str
    snapshot_support: str
    snapshot_version: str

    @property
    def fingerprint(self) -> str:
        driver = f"driver {self.driver_kind} {self.driver_version}"
        return f"{driver}, snapshots {self.snapshot_support} {self.snapshot_version}"

    def as_output(self) -> dict[str, str]:
        return {
            "driverKind": self.driver_kind,
            "driverVersion": self.driver_version,
            "snapshotSupport": self.snapshot_support,
            "snapshotVersion": self.snapshot_version,
        }


def platform_versions(settings: Settings) -> PlatformVersions:
    driver = settings.driver
    snapshots = settings.snapshots
    snapshot_version = {
        "manifests": snapshots.snapshotter_version,
        "addon": snapshots.addon_version or "",
        "present": "-",
    }[snapshots.support]
    return PlatformVersions(
        driver_kind=driver.install,
        driver_version={
            "helm": driver.chart_version,
            "addon": driver.addon_version or "",
            "present": driver.running_version or "",
        }[driver.install],
        snapshot_support=snapshots.support,
        snapshot_version=snapshot_version,
    )


def _platform_from_output(raw: Any) -> PlatformVersions | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return PlatformVersions(
            driver_kind=str(raw["driverKind"]),
            driver_version=str(raw["driverVersion"]),
            snapshot_support=str(raw["snapshotSupport"]),
            snapshot_version=str(raw["snapshotVersion"]),
        )
    except KeyError:
        return None


def proven_phases(previous: Any, platform: PlatformVersions, applied: Sequence[str]) -> dict[str, list[str]]:
    """The upstream record for the next run: what was proven before, plus this run's phases."""
    proven: dict[str, set[str]] = {}
    if isinstance(previous, Mapping):
        for fingerprint, phases in previous.items():
            if isinstance(phases, list):
                proven[str(fingerprint)] = {p for p in phases if p in PHASES}
    proven.setdefault(platform.fingerprint, set()).update(applied)
    return {fp: sorted(phases, key=PHASES.index) for fp, phases in sorted(proven.items()) if phases}


def promotion_problems(settings: Settings, upstream: Mapping[str, Any] | None) -> list[str]:
    """Every reason the promotion gate refuses this run; empty when it may go ahead."""
    assert settings.promotion is not None
    name = settings.promotion.from_stack
    ours = platform_versions(settings)
    theirs = _platform_from_output((upstream or {}).get("platformVersions"))
    if theirs is None:
        return [f"promoteFrom: stack {name!r} has published no platform versions yet: run `pulumi up` there first"]
    problems = []
    if theirs != ours:
        problems.append(
            f"promoteFrom: {name!r} runs {theirs.fingerprint}; this stack asks for {ours.fingerprint}: "
            f"apply these versions to {name!r} first"
        )
    proven = proven_phases((upstream or {}).get("provenPhases"), ours, [])
    done = proven.get(ours.fingerprint, [])
    # A wave's phase is gated once, at the key that moves it (`waves[i].phase`), for all the
    # entries that take it; an entry with a phase of its own, at its own key, as without waves.
    unproven: dict[str, tuple[str, list[str]]] = {}
    wave_index = {wave.name: index for index, wave in enumerate(settings.waves)}
    for index, entry in enumerate(settings.migrations):
        if entry.phase in GATED_PHASES and entry.phase not in done:
            if entry.phase_from_wave and entry.wave is not None:
                key = f"waves[{wave_index[entry.wave]}].phase"
            else:
                key = f"migrations[{index}].phase"
            unproven.setdefault(key, (entry.phase, []))[1].append(entry.key)
    for key, (phase, entries) in unproven.items():
        which = f" ({len(entries)} entries: {', '.join(entries)})" if key.startswith("waves") else ""
        problems.append(
            f"{key}: {phase!r}{which} has not been completed on {name!r} with {ours.fingerprint} "
            f"(completed there: {', '.join(done) or 'nothing'}): run it there first"
        )
    return problems
