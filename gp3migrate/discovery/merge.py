"""Merges what discovery found into a stack's `migrations` list without losing anything.

Who owns which key: discovery owns the recorded facts (`FACT_KEYS`); the user owns every other key
(phase, claimNaming, quiesce, keepSnapshots, deleteSource, …). So, for each entry:
- new claim: added, next to the other claims of its workload when the list has some;
- entry still in precopy: its facts refreshed, its other keys kept; a fact discovery did not find
  this time (a workload gone, a field AWS did not report) is kept and flagged;
- entry past precopy (cutover, finalize, rollback): every key kept, facts included, since they
  were the basis of a running migration; differences are flagged instead;
- entry discovery no longer proposes: kept and flagged with the reason; only `--prune` removes it,
  and never one with a `phase` set (see `in_flight_note`).

Works in place on the loaded list (a ruamel CommentedSeq of CommentedMaps, or plain lists and
dicts), so comments and key order of what is kept stay as they were.
"""

from collections.abc import Mapping, MutableMapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import Any

from gp3migrate.config.migration_entry import ENTRY_KEYS, FACT_KEYS
from gp3migrate.config.stack_file import to_plain
from gp3migrate.discovery.volumes import Skipped, group_order

KINDS = ("added", "updated", "kept", "flagged", "removed")


@dataclass(frozen=True)
class Change:
    kind: str  # one of KINDS
    key: str  # namespace/claim
    detail: str = ""


@dataclass
class MergeResult:
    changes: list[Change] = field(default_factory=list)

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def changed(self) -> bool:
        return any(c.kind in ("added", "updated", "removed") for c in self.changes)


def entry_key(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('namespace')}/{entry.get('claim')}"


def phase_of(entry: Mapping[str, Any]) -> str:
    return str(entry.get("phase") or "precopy")


def in_flight_note(phase: str) -> str:
    """Why an entry with a phase stays, and when it may go. Any phase set may have been applied
    (a protected safety snapshot, a released claim), and discovery cannot see what was: only the
    user removes it. The program refuses an entry dropped in cutover or rollback unless `forget`
    lists it (gp3migrate/config/transitions.py check_forgotten); after cleanup nothing holds it."""
    never = "kept, --prune never removes an entry with a phase"
    if phase == "cleanup":
        return f"done (phase cleanup): {never}; remove it by hand (its claim and PV stay)"
    note = f"in flight (phase {phase}): {never}; remove it by hand after phase cleanup"
    if phase in ("cutover", "rollback"):
        note += ", or now by listing it under forget"
    return note


def _index_of(items: Sequence[Any], item: Any) -> int:
    """Position by identity: two entries may be equal (a duplicated entry) yet distinct."""
    return next(i for i, candidate in enumerate(items) if candidate is item)


def _show(value: Any) -> str:
    return "(absent)" if value is None else repr(to_plain(value))


def _differences(entry: Mapping[str, Any], found: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(facts that changed or are new, described; their keys; facts recorded but not found now)."""
    described, keys, missing = [], [], []
    for key in FACT_KEYS:
        old, new = to_plain(entry.get(key)), found.get(key)
        if new is None:
            if old is not None:
                missing.append(key)
        elif old != new:
            if isinstance(old, dict) and isinstance(new, Mapping):
                # Name the nested keys that differ (workload.replicas 1 -> 3), not the whole block.
                for nested in sorted(set(old) | set(new), key=list({**old, **new}).index):
                    if old.get(nested) != new.get(nested):
                        described.append(f"{key}.{nested} {_show(old.get(nested))} -> {_show(new.get(nested))}")
            else:
                described.append(f"{key} {_show(old)} -> {_show(new)}")
            keys.append(key)
    return described, keys, missing


def _rank(key: str) -> int:
    return ENTRY_KEYS.index(key) if key in ENTRY_KEYS else len(ENTRY_KEYS)


def _set_in_place(target: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Set a key keeping the map's order and comments: nested maps are updated key by key, and a
    new key goes where ENTRY_KEYS puts it (facts before the user's keys)."""
    current = target.get(key)
    if isinstance(current, MutableMapping) and isinstance(value, Mapping):
        for nested_key in [k for k in current if k not in value]:
            del current[nested_key]
        for nested_key, nested_value in value.items():
            if to_plain(current.get(nested_key)) != nested_value:
                _set_in_place(current, nested_key, nested_value)
        return
    if key in target or not hasattr(target, "insert"):
        target[key] = value
        return
    position = next((i for i, k in enumerate(target) if _rank(str(k)) > _rank(key)), len(target))
    target.insert(position, key, value)


def _effective(entry: Mapping[str, Any], key: str) -> Any:
    """A user key's value as the program reads it (its default when absent)."""
    if entry.get(key) is not None:
        return to_plain(entry[key])
    if key == "claimNaming":
        return "rename"
    if key == "quiesce":
        return "scale" if entry.get("workload") else "manual"
    return None


def _group(entry: Mapping[str, Any]) -> tuple[str, str, str] | None:
    workload = entry.get("workload")
    if not isinstance(workload, Mapping):
        return None
    return str(entry.get("namespace")), str(workload.get("kind")), str(workload.get("name"))


def merge(
    existing: MutableSequence[Any],
    discovered: Sequence[Mapping[str, Any]],
    skipped: Sequence[Skipped] = (),
    *,
    prune: bool = False,
) -> MergeResult:
    result = MergeResult()
    found_by_key = {entry_key(e): e for e in discovered}
    skip_reasons = {s.claim: s.reason for s in skipped if s.claim}
    known = set()

    for entry in list(existing):
        if not isinstance(entry, MutableMapping) or not entry.get("namespace") or not entry.get("claim"):
            result.changes.append(Change("kept", f"entry {_index_of(existing, entry)}", "no namespace/claim to match"))
            continue
        key, phase = entry_key(entry), phase_of(entry)
        past_precopy = phase != "precopy"
        known.add(key)
        found = found_by_key.get(key)
        if found is None:
            why = f"not proposed now: {skip_reasons[key]}" if key in skip_reasons else "not seen by discovery"
            phase_set = entry.get("phase") is not None
            if prune and not phase_set:
                del existing[_index_of(existing, entry)]
                result.changes.append(Change("removed", key, f"{why} (no phase set, --prune)"))
                continue
            result.changes.append(Change("kept", key))
            keep_why = in_flight_note(str(entry["phase"])) if phase_set else "kept; --prune removes it"
            result.changes.append(Change("flagged", key, f"{why}; {keep_why}"))
            continue

        described, changed_keys, missing = _differences(entry, found)
        if past_precopy and described:
            result.changes.append(Change("kept", key))
            result.changes.append(
                Change(
                    "flagged",
                    key,
                    f"phase {phase}: facts differ from the cluster, kept as they are (the basis of a running "
                    f"migration): {'; '.join(described)}",
                )
            )
        elif described:
            for fact in changed_keys:
                _set_in_place(entry, fact, found[fact])
            result.changes.append(Change("updated", key, "; ".join(described)))
        else:
            result.changes.append(Change("kept", key))
        if missing and not past_precopy:
            result.changes.append(Change("flagged", key, f"not found now, kept as recorded: {', '.join(missing)}"))
        for proposal in (k for k in found if k not in FACT_KEYS):
            if _effective(entry, proposal) != found[proposal]:
                result.changes.append(
                    Change(
                        "flagged",
                        key,
                        f"discovery proposes {proposal}: {found[proposal]}, the entry has "
                        f"{_effective(entry, proposal)} (kept: yours)",
                    )
                )

    for found in sorted((e for e in discovered if entry_key(e) not in known), key=group_order):
        group = _group(found)
        siblings = [i for i, e in enumerate(existing) if isinstance(e, Mapping) and group and _group(e) == group]
        position = siblings[-1] + 1 if siblings else len(existing)
        existing.insert(position, _new_entry(existing, found))
        result.changes.append(Change("added", entry_key(found)))
    return result


def _new_entry(existing: Sequence[Any], found: Mapping[str, Any]) -> Any:
    """A copy of the discovered entry in the list's own map type (ruamel's when loaded by it)."""
    sample = next((e for e in existing if isinstance(e, MutableMapping)), None)
    make: Any = type(sample) if sample is not None else dict
    entry = make()
    for key in sorted(found, key=_rank):
        value = found[key]
        entry[key] = make(value) if isinstance(value, Mapping) else (list(value) if isinstance(value, list) else value)
    return entry
