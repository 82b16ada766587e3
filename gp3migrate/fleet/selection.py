"""Which migrations a fleet command acts on: a wave (`--wave W`) or `--select KEY=VALUE` filters.

Filters of different keys must all match; several values of one key match any of them, so
`--select namespace=shop --select namespace=blog` is both namespaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gp3migrate.config.migration_entry import MigrationSettings
from gp3migrate.config.phases import Applied
from gp3migrate.config.settings import Settings


class SelectionError(ValueError):
    """A selection that cannot be used: names the argument and what is allowed."""


def _workload(entry: MigrationSettings) -> set[str]:
    """The ways a user names the workload: `name`, `Kind/name`, `namespace/Kind/name`."""
    if entry.workload is None:
        return set()
    w = entry.workload
    return {w.name, f"{w.kind}/{w.name}", f"{entry.namespace}/{w.kind}/{w.name}"}


# KEY -> what of an entry it matches against.
_FILTERS: dict[str, Callable[[MigrationSettings, str], bool]] = {
    "namespace": lambda e, v: e.namespace == v,
    "claim": lambda e, v: v in (e.claim, e.key),
    "workload": lambda e, v: v in _workload(e),
    "strategy": lambda e, v: e.strategy == v,
}


def parse_filters(items: Sequence[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise SelectionError(f"--select {item!r}: expected KEY=VALUE, e.g. namespace=shop")
        if key not in _FILTERS and not key.startswith("label."):
            allowed = ", ".join([*_FILTERS, "label.<key>"])
            raise SelectionError(f"--select {item!r}: unknown key {key!r}; allowed: {allowed}")
        filters.setdefault(key, []).append(value)
    return filters


def matches(entry: MigrationSettings, filters: Mapping[str, Sequence[str]], labels: Mapping[str, str]) -> bool:
    for key, values in filters.items():
        if key.startswith("label."):
            if labels.get(key.removeprefix("label.")) not in values:
                return False
        elif not any(_FILTERS[key](entry, v) for v in values):
            return False
    return True


# Phases already past a cutover: an earlier wave in one of them has finalized.
_FINALIZED = ("finalize", "cleanup")


@dataclass(frozen=True)
class Selection:
    filters: Mapping[str, Sequence[str]]
    wave: str | None = None

    @classmethod
    def parse(cls, *, wave: str | None, select: Sequence[str]) -> Selection:
        if wave is None and not select:
            raise SelectionError("say which migrations: --wave W or --select KEY=VALUE (e.g. namespace=shop)")
        return cls(parse_filters(select), wave)

    @property
    def whole_wave(self) -> bool:
        """A wave with no filter: its `phase` key is what moves."""
        return self.wave is not None and not self.filters

    def entries(self, settings: Settings) -> list[MigrationSettings]:
        candidates = list(settings.migrations)
        if self.wave is not None:
            names = [w.name for w in settings.waves]
            if self.wave not in names:
                allowed = ", ".join(names) if names else "none (the stack file has no waves)"
                raise SelectionError(f"--wave {self.wave!r}: no such wave; waves: {allowed}")
            candidates = [e for e in candidates if e.wave == self.wave]
        chosen = [e for e in candidates if matches(e, self.filters, e.labels)]
        if not chosen:
            shown = " ".join(
                [
                    *([f"--wave {self.wave}"] if self.wave else []),
                    *(f"--select {k}={v}" for k, vs in self.filters.items() for v in vs),
                ]
            )
            raise SelectionError(f"{shown}: matches no migration of the stack")
        return chosen


def unfinished_earlier_waves(
    settings: Settings, history: Mapping[str, Applied], to: str, todo: Sequence[MigrationSettings]
) -> list[str]:
    """For a cutover: the migrations of waves before the latest wave in `todo` that have not been
    finalized (the canary proves the path before the next wave stops anything)."""
    if to != "cutover" or not settings.waves:
        return []
    order = {wave.name: index for index, wave in enumerate(settings.waves)}
    latest = max((order[e.wave] for e in todo if e.wave is not None), default=None)
    if latest is None:
        return []
    behind = []
    for entry in settings.migrations:
        if entry.wave is None or order[entry.wave] >= latest:
            continue
        applied = history.get(entry.key)
        if applied is None or applied.phase not in _FINALIZED:
            behind.append(f"{entry.key} (wave {entry.wave}, applied: {applied.phase if applied else 'nothing'})")
    return behind
