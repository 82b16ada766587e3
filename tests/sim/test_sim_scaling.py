"""The simulation's work grows linearly with the fleet (issue 24 item 6), counted, not timed.

A rehearsal of 10 and of 40 volumes (gp3migrate/sim/fleet_world.py, one group, every phase) counts
the work that used to grow with the square of the fleet: objects the kube store sorted (every
`view` sorted the whole store), nodes deep-copied (every preview's dry-run create copied the whole
store), records the "no only copy deleted" check looked at (every step looked at every record ever
written) and dependency checks in the engine's draw of the deletes (every pair, for every pick). 4x
the volumes must cost at most RATIO x each: linear with the fixed costs is below 4, quadratic 16.

The incremental pieces are also checked against what they replace: the store's ordered keys
against a sort of the whole store, the record count against a count from scratch after every step.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from gp3migrate.sim import engine, fleet_world, invariants
from gp3migrate.sim.ebs import Ebs
from gp3migrate.sim.kube import store
from gp3migrate.sim.rehearsal import walk_ups
from gp3migrate.sim.scenario import Simulation

RATIO = 6.0
PER_WRITE_RATIO = 1.5


class CountingList(list):  # type: ignore[type-arg]
    """The world's writes, counting every record a check reads out of them."""

    def __init__(self, items: list[Any], counts: Counter[str]):
        super().__init__(items)
        self.counts = counts

    def __iter__(self) -> Iterator[Any]:
        self.counts["records read"] += len(self)
        return super().__iter__()

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        if isinstance(index, slice):
            self.counts["records read"] += len(found)
        return found


def work(volumes: int, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    counts: Counter[str] = Counter()
    real_sorted = sorted
    real_depends_on, real_all_records = engine.Resource.depends_on, Ebs.all_records

    def counting_sorted(items: Any, **kwargs: Any) -> list[Any]:
        out = real_sorted(items, **kwargs)
        counts["objects sorted by the store"] += len(out)
        return out

    real_copy_dict = copy._deepcopy_dispatch[dict]  # type: ignore[attr-defined]

    def counting_copy_dict(value: dict[Any, Any], memo: Any, deepcopy: Any = copy.deepcopy) -> Any:
        counts["maps deep-copied"] += 1
        return real_copy_dict(value, memo, deepcopy)

    def counting_depends_on(resource: engine.Resource) -> set[str]:
        counts["dependency checks"] += 1
        return real_depends_on(resource)

    def counting_all_records(ebs: Ebs) -> set[str]:
        held = real_all_records(ebs)
        counts["records read"] += len(held)
        return held

    monkeypatch.setattr(store, "sorted", counting_sorted, raising=False)
    monkeypatch.setitem(copy._deepcopy_dispatch, dict, counting_copy_dict)  # type: ignore[attr-defined]
    monkeypatch.setattr(engine.Resource, "depends_on", counting_depends_on)
    monkeypatch.setattr(Ebs, "all_records", counting_all_records)
    config, _ = fleet_world.fleet_config(volumes)
    keys = [f"{e['namespace']}/{e['claim']}" for e in config["migrations"]]
    with Simulation(config, stack=f"fleet-{volumes}", seed=3, driver="addon") as sim:
        sim.world.writes = CountingList(sim.world.writes, counts)
        counts.clear()  # the world's set-up is not the walk's
        rehearsal = walk_ups(sim, fleet_world.walk_configs(sim.config, [keys]))
        # The apps write on every tick they run, and a wave of 40 cut over in one `up` runs longer in
        # simulated time than one of 10 (its gates queue for the provider host's 4 workers), so the
        # writes themselves grow faster than the fleet: what must stay flat is how often a check
        # reads each write (quadratic re-reading would grow this with the fleet too).
        made = max(len(sim.world.writes), 1)
        counts["records read per 1,000 writes"] = round(1000 * counts.pop("records read", 0) / made)
    monkeypatch.undo()
    assert rehearsal.ok, [f"{p.phase}: {p.result.error} {p.violations}" for p in rehearsal.phases]
    return counts


def test_the_work_per_volume_stays_flat_from_10_to_40_volumes(monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = work(10, monkeypatch), work(40, monkeypatch)
    ratios = {what: large[what] / max(small[what], 1) for what in small | large}
    shown = {what: f"{small[what]} -> {large[what]} ({ratios[what]:.1f}x)" for what in sorted(ratios)}
    print(shown)  # the figures behind the bound, for -s
    # Counts of work: at most RATIO for 4x the volumes. Reads per write: flat (a check that re-read
    # every write per claim or per step, as before issue 24, reads each write 4x as often at 40).
    bounds = {what: PER_WRITE_RATIO if what.endswith("per 1,000 writes") else RATIO for what in ratios}
    assert all(ratios[what] <= bounds[what] for what in ratios), shown


def test_the_store_keeps_each_kind_in_the_order_a_sort_gives() -> None:
    """Creates and deletes (finalizers, graceful pods, whole kinds) in a random order: view and
    names stay what sorting the whole store gives."""
    rng = random.Random(5)
    cluster = store.Cluster(lambda: 0)
    cluster.crds_installed = True
    created: Counter[str] = Counter()

    def naive(kind: str, namespace: str | None) -> list[tuple[str, str, str]]:
        return sorted(k for k in cluster._objects if k[0] == kind and namespace in (None, k[1]))

    for number in range(400):
        kind = rng.choice(["ConfigMap", "Pod", "PersistentVolume"])
        namespace, name = f"ns-{rng.randrange(4)}", f"o-{rng.randrange(60)}"
        metadata: dict[str, Any] = {"name": name} | ({} if kind == "PersistentVolume" else {"namespace": namespace})
        obj = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
        if kind == "PersistentVolume":
            obj["spec"] = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}}
        if kind == "Pod":
            obj["spec"] = {"containers": [{"name": "c", "image": "i"}]} | ({"nodeName": "n"} if number % 2 else {})
        key = cluster._key_of(obj)
        try:
            if key in cluster._objects:
                if rng.random() < 0.5:
                    cluster.delete("v1", kind, key[1], name)
                if kind == "PersistentVolume":
                    cluster.remove_finalizer(kind, "", name, "kubernetes.io/pv-protection", "test")
                if kind == "Pod" and rng.random() < 0.5:
                    cluster.finish_pod(key[1], name)
            else:
                cluster.create(obj)
                created[kind] += 1
        except store.KubeError:
            pass
        for k in ("ConfigMap", "Pod", "PersistentVolume"):
            for ns in (None, "", "ns-0", "ns-3"):
                assert cluster.view(k, ns) == [cluster._objects[x] for x in naive(k, ns)]
                assert cluster.names(k, ns) == [(x[1], x[2]) for x in naive(k, ns)]
    assert min(created.values()) >= 20 and len(created) == 3, created
    cluster.drop_kinds(frozenset({"Pod"}))
    assert cluster.view("Pod") == [] and cluster.names("Pod", "ns-1") == []


def test_the_record_count_agrees_with_a_count_from_scratch_after_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet with a copy (its snapshots and restored volume made and let go of) walked through
    every phase; after every step, what only_copies_kept reports lost is what counting every
    record again finds, and a record whose last holder goes is reported."""
    original = invariants.after_step
    checked = []

    def after_step(sim: Any, step: Any) -> list[invariants.Violation]:
        found = original(sim, step)
        incremental = invariants._RECORD_COUNTS[sim.world.ebs].lost(sim.world)
        assert incremental == invariants.only_copies_kept_from_scratch(sim), step
        checked.append(step)
        return found

    monkeypatch.setattr(invariants, "after_step", after_step)
    config, groups = fleet_world.fleet_config(10)
    assert any(e.get("strategy") == "copy" for e in config["migrations"])
    with Simulation(config, stack="fleet-10", seed=4, driver="addon") as sim:
        rehearsal = walk_ups(sim, fleet_world.walk_configs(sim.config, [[key for group in groups for key in group]]))
        assert rehearsal.ok and len(checked) > 100
        # Every holder goes: every record written is reported lost, as a full count finds.
        sim.world.ebs.snapshot_content.clear()
        sim.world.ebs.content.clear()
        lost = invariants.only_copies_kept(sim, where="test")
        assert [v.invariant for v in lost] == [invariants.NO_ONLY_COPY_DELETED]
        written = {w.record for w in sim.world.writes}
        assert invariants._RECORD_COUNTS[sim.world.ebs].lost(sim.world) == written
        assert f"{len(written)} records" in lost[0].detail


def test_the_per_step_checks_skipped_on_an_unchanged_world_find_what_a_full_check_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After every step of a fleet's walk (a copy among them), the per-step checks as the walk runs
    them (skipped when World.fingerprint has not changed since a clean check) return what running
    them in full returns, and so does the claims watch; most steps are skipped."""
    gated_after_step, gated_check = invariants.after_step, invariants.ClaimsWatch.check
    counts: Counter[str] = Counter()
    shadows: dict[int, invariants.ClaimsWatch] = {}

    def after_step(sim: Any, step: Any) -> list[invariants.Violation]:
        skipped = invariants._CLEAN_AT.get(sim.world.kube) == sim.world.fingerprint()
        found = gated_after_step(sim, step)
        assert found == invariants._after_step(sim, step), step
        counts["skipped" if skipped else "checked"] += 1
        return found

    def check(watch: invariants.ClaimsWatch, *, where: str) -> list[invariants.Violation]:
        # A watch of its own that reads every claim on every step, from where this one started.
        shadow = shadows.setdefault(id(watch), copy.copy(watch))
        shadow.read_at = (-1, -1, -1)
        full = gated_check(shadow, where=where)
        found = gated_check(watch, where=where)
        assert found == full and watch.bound == shadow.bound, where
        return found

    monkeypatch.setattr(invariants, "after_step", after_step)
    monkeypatch.setattr(invariants.ClaimsWatch, "check", check)
    config, groups = fleet_world.fleet_config(10)
    assert any(e.get("strategy") == "copy" for e in config["migrations"])
    with Simulation(config, stack="fleet-10", seed=4, driver="addon") as sim:
        rehearsal = walk_ups(sim, fleet_world.walk_configs(sim.config, groups))
    assert rehearsal.ok, [f"{p.phase}: {p.result.error} {p.violations}" for p in rehearsal.phases]
    assert counts["skipped"] > counts["checked"] >= 50, counts


def test_a_per_step_check_that_finds_something_runs_again_on_the_next_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A violation is reported after every step it lasts, changed world or not (as before the
    skip): only a clean check is remembered."""
    config, _ = fleet_world.fleet_config(10)
    with Simulation(config, stack="fleet-10", seed=4, driver="addon") as sim:
        step = engine.Step("same", "urn:x", "test:index:Thing", "thing")
        assert invariants.after_step(sim, step) == []
        assert invariants._CLEAN_AT[sim.world.kube] == sim.world.fingerprint()
        reader = invariants._pv_reader(sim)
        facts = next(reader.facts(p) for p in sim.world.kube.view("PersistentVolume") if reader.facts(p).volume)
        assert facts.volume is not None
        sim.world.ebs.make_filesystem(facts.volume, "xfs" if facts.fs_type != "xfs" else "ext4")
        first = invariants.after_step(sim, step)
        assert [v.invariant for v in first] == [invariants.OWN_FILESYSTEM]
        assert invariants.after_step(sim, step) == first
