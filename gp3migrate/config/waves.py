"""Waves: the stack's migration entries in ordered groups that advance together; the first wave is
the canary.

A wave is a name, a selector and, optionally, a phase:

    waves:
      - name: canary
        select: {claims: [shop/cache-0]}
        phase: cutover
      - name: shop
        select: {namespaces: [shop], workloads: [billing/StatefulSet/ledger], labels: {tier: bulk}}

An entry is in a wave when it matches any item of the selector: its namespace is listed, its
workload (`<namespace>/<Kind>/<name>`, as the entry's `workload` names it), its claim
(`<namespace>/<claim>`, the entry's key), or it carries every listed label (the entry's own
`labels` key). An entry's phase is its wave's unless the entry sets `phase` itself.

Refused before anything is registered: an entry two waves select, and a workload whose claims are
in different waves (or some in none): a workload is stopped once and started once per cutover
(DESIGN invariant 3), so its claims advance together. An entry no wave selects is a warning: it
keeps its own phase.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Self, get_args

from pydantic import BeforeValidator, Field, model_validator

from gp3migrate import naming
from gp3migrate.config.field_readers import Keys, a_list, one_of, refuse, refuse_all, structured, text
from gp3migrate.config.migration_entry import MigrationSettings, WorkloadKind
from gp3migrate.config.phases import Phase
from gp3migrate.config.problems import show

_KINDS: tuple[str, ...] = get_args(WorkloadKind)
_WORKLOAD = re.compile(rf"^([^/]+)/({'|'.join(_KINDS)})/([^/]+)$")
_CLAIM = re.compile(r"^([^/]+)/([^/]+)$")


def _workload_problem(value: str) -> str | None:
    found = _WORKLOAD.fullmatch(value)
    if not found:
        return f"is not <namespace>/<Kind>/<name> with Kind one of {', '.join(_KINDS)}"
    return naming.dns1123_label_problem(found[1]) or naming.dns1123_subdomain_problem(found[3])


def _claim_problem(value: str) -> str | None:
    found = _CLAIM.fullmatch(value)
    if not found:
        return "is not <namespace>/<claim>"
    return naming.dns1123_label_problem(found[1]) or naming.dns1123_subdomain_problem(found[2])


def _labels(raw: Any) -> Any:
    value = structured(raw)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise refuse(f"{show(value)} is not a map of label keys to values")
    wrong = [((key,), f"{show(item)} is not a string") for key, item in value.items() if not isinstance(item, str)]
    if wrong:
        raise refuse_all(wrong, "labels")
    return value


class WaveSelector(Keys):
    """Which entries a wave holds: any entry matching one item of any key."""

    map_of = " with namespaces, workloads, claims or labels"

    namespaces: Annotated[
        tuple[Annotated[str, text(check=naming.dns1123_label_problem, what="a namespace")], ...], a_list("namespaces")
    ] = Field(default=(), description="Every entry in these namespaces.")
    workloads: Annotated[
        tuple[Annotated[str, text(check=_workload_problem, what="<namespace>/<Kind>/<name>")], ...],
        a_list("workloads (<namespace>/<Kind>/<name>)"),
    ] = Field(
        default=(),
        description="Every entry whose `workload` is one of these, as `<namespace>/<Kind>/<name>` "
        "(`shop/StatefulSet/db`).",
    )
    claims: Annotated[
        tuple[Annotated[str, text(check=_claim_problem, what="<namespace>/<claim>")], ...],
        a_list("claims (<namespace>/<claim>)"),
    ] = Field(default=(), description="The entries of these claims, as `<namespace>/<claim>`.")
    labels: Annotated[dict[str, str], BeforeValidator(_labels)] = Field(
        default_factory=dict, description="Every entry whose own `labels` hold all of these."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        """An empty key or selector selects nothing: a slip (a wave that would never move) rather
        than a choice."""
        keys: dict[str, Any] = {
            "namespaces": self.namespaces,
            "workloads": self.workloads,
            "claims": self.claims,
            "labels": self.labels,
        }
        empty: list[tuple[tuple[str | int, ...], str]] = [
            ((key,), "is empty: list what it selects, or leave the key out")
            for key, value in keys.items()
            if key in self.model_fields_set and not value
        ]
        if not empty and not any(keys.values()):
            empty = [((), "selects nothing: give namespaces, workloads, claims or labels")]
        if empty:
            raise refuse_all(empty, "WaveSelector")
        return self

    def matches(self, entry: MigrationSettings) -> bool:
        workload = entry.workload
        return (
            entry.namespace in self.namespaces
            or entry.key in self.claims
            or (workload is not None and f"{entry.namespace}/{workload.kind}/{workload.name}" in self.workloads)
            or (bool(self.labels) and all(entry.labels.get(k) == v for k, v in self.labels.items()))
        )


class WaveSettings(Keys):
    """One wave: its name, what it selects, and the phase of the entries that set none."""

    map_of = " with name, select and phase"

    name: Annotated[str, text(required=True, check=naming.dns1123_label_problem, what="the wave's name")] = Field(
        description="The wave's name (a DNS-1123 label), unique in the stack."
    )
    select: WaveSelector = Field(
        description="Which entries it holds (below); an entry is in at most one wave, and a workload's "
        "claims all in the same one."
    )
    phase: Annotated[Phase | None, one_of(Phase)] = Field(
        default=None,
        description="The phase of its entries that set no `phase` of their own (absent: theirs, default precopy).",
    )

    @model_validator(mode="before")
    @classmethod
    def _select_required(cls, data: Any) -> Any:
        # A missing select reads as an empty one, refused in the selector's own words.
        if isinstance(data, dict) and data.get("select") is None:
            return {**data, "select": {}}
        return data


@dataclass(frozen=True)
class Membership:
    """Which wave each entry is in, and what is refused about it."""

    # entry index (in `migrations`) -> wave index (in `waves`)
    wave_of: dict[int, int] = field(default_factory=dict)
    # (place below `migrations`, message)
    problems: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)


def _label(waves: Sequence[WaveSettings], index: int | None) -> str:
    return "no wave" if index is None else f"waves[{index}] ({waves[index].name!r})"


def assign(waves: Sequence[WaveSettings], entries: Sequence[tuple[int, MigrationSettings]]) -> Membership:
    """Each entry's wave, refusing an entry two waves select and a workload split between waves."""
    membership = Membership()
    if not waves:
        return membership
    for index, entry in entries:
        selecting = [w for w, wave in enumerate(waves) if wave.select.matches(entry)]
        if len(selecting) > 1:
            membership.problems.append(
                (
                    (index,),
                    f"{entry.key} is selected by {_label(waves, selecting[0])} and {_label(waves, selecting[1])}: "
                    "an entry belongs to one wave; narrow one of the selectors",
                )
            )
        if selecting:
            membership.wave_of[index] = selecting[0]
    groups: dict[tuple[str, str, str], list[tuple[int, MigrationSettings]]] = {}
    for index, entry in entries:
        if entry.workload is not None:
            groups.setdefault((entry.namespace, entry.workload.kind, entry.workload.name), []).append((index, entry))
    for (namespace, kind, name), group in sorted(groups.items()):
        first_index, first = group[0]
        first_wave = membership.wave_of.get(first_index)
        for index, entry in group[1:]:
            wave = membership.wave_of.get(index)
            if wave != first_wave:
                membership.problems.append(
                    (
                        (index, "workload"),
                        f"{kind} {namespace}/{name} has {first.key} in {_label(waves, first_wave)} and {entry.key} "
                        f"in {_label(waves, wave)}: a workload's claims cut over together (it is stopped once and "
                        f"started once), so all of them go in one wave; add {namespace}/{kind}/{name} to one "
                        "wave's workloads",
                    )
                )
                break
    return membership


def unmatched_warnings(waves: Sequence[WaveSettings], migrations: Sequence[MigrationSettings]) -> list[str]:
    """The entries no wave selects, when the stack has waves: they keep their own phase."""
    if not waves:
        return []
    left = [entry.key for entry in migrations if entry.wave is None]
    if not left:
        return []
    return [
        f"migrations: {', '.join(left)} {'is' if len(left) == 1 else 'are'} in no wave: "
        f"{'it keeps its' if len(left) == 1 else 'they keep their'} own phase; add "
        f"{'it' if len(left) == 1 else 'them'} to a wave's select to advance with it"
    ]
