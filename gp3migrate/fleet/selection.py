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


@dataclass(frozen=True)
class Selection:
    filters: Mapping[str, Sequence[str]]
    wave: str | None = None

    @classmethod
    def parse(cls, *, wave: str | None, select: Sequence[str]) -> Selection:
        if wave is None and not select:
            raise SelectionError("say which migrations: --wave W or --select KEY=VALUE (e.g. namespace=shop)")
        return cls(parse_filters(select), wave)

    def entries(self, settings: Settings, history: Mapping[str, Applied], to: str) -> list[MigrationSettings]:
        chosen = [e for e in settings.migrations if matches(e, self.filters, entry_labels(e))]
        if not chosen:
            shown = " ".join(f"{k}={v}" for k, vs in self.filters.items() for v in vs)
            raise SelectionError(f"--select {shown}: matches no migration of the stack")
        return chosen

    def check_order(
        self,
        settings: Settings,
        history: Mapping[str, Applied],
        to: str,
        todo: Sequence[MigrationSettings],
        force_reason: str | None,
    ) -> None:
        return None

    def record_force(self, stack_file: object, reason: str, today: str) -> None:
        return None


def entry_labels(entry: MigrationSettings) -> Mapping[str, str]:
    return getattr(entry, "labels", None) or {}
