"""A stack the release before the restructure (78a35ac) took to cutover, finished by this one.

The simulated engine keeps state as Pulumi does for what matters here: each dynamic resource's
checkpoint entry carries the `__provider` string the program pickled, and the simulation's
dynamic provider unpickles it as the provider host does — from the new inputs for diff and
create, from the *old* outputs for delete and refresh (gp3migrate/sim/providers.py
DynamicProvider; pulumi/dynamic/__main__.py). So a checkpoint saved by the earlier release's
simulation (tests/fixtures/landed/78a35ac/sim, scripts/landed_fixtures.py) names that release's
module paths, and loading it into this release's engine is an upgrade in the middle of a migration.

The world cannot be saved (EBS on moto, the controllers); it is brought to the same point by this
release applying the same `up`s on the same seed, and the test first holds that this gives the
same checkpoint as the earlier release saved, `__provider` strings and the ids EC2 drew aside. Then the saved
checkpoint replaces this release's own, the remaining phases are applied (the first with
`--refresh`, which reads every resource back through its old provider), and the plan of each is
held to that of a stack this release applied from the start: the upgrade adds no step, replaces
nothing, deletes nothing a phase does not delete by design, and every invariant holds.

What this does not prove: the real engine's handling of the checkpoint (tests/test_upgrade_state.py
runs the real provider host on the landed state), nor an upgrade from a failed `up`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from gp3migrate.sim.engine import Checkpoint, Resource, Step
from gp3migrate.sim.program import _urn
from gp3migrate.sim.providers import DynamicProvider
from gp3migrate.sim.scenario import Simulation
from scripts.landed_fixtures import PROVIDER_KEY, checkpoint_document, provider_class, sim_apply
from tests.mock_cloud import PROJECT_DIR
from tests.sim.test_scenarios import broken

LANDED = "78a35ac"
SAVED = PROJECT_DIR / "tests" / "fixtures" / "landed" / LANDED / "sim"
# What each saved stack goes on with: (phase, `up --refresh`), one `up` after another.
CONTINUATIONS = {
    "forward": [("finalize", True), ("cleanup", False)],
    "rollback": [("rollback", True)],
}


def saved(name: str) -> dict[str, Any]:
    return engine_urns(json.loads((SAVED / f"{name}.json").read_text()))


def engine_urns(document: dict[str, Any]) -> dict[str, Any]:
    """A saved checkpoint with its URNs in the engine's shape. The landed release's simulation
    built them from the parent's last type, after the root stack's (`pulumi:pulumi:Stack$...`);
    the engine, and the simulation since issue 21, from the parent's whole qualified type without
    the root stack's (gp3migrate/sim/program.py `_urn`). The real state always had the engine's
    URNs: only the simulation's rendering of them changed, so the saved ones are re-derived from
    each resource's type, name and parent."""
    stack = "dev"  # the stack `replayed` simulates
    resources = [r for key in ("resources", "pending_deletes") for r in document["checkpoint"][key]]
    by_urn = {r["urn"]: r for r in resources}
    mapping: dict[str, str] = {}

    def real(urn: str) -> str:
        if urn not in by_urn:
            return urn  # the root stack: its URN has one shape in both
        if urn not in mapping:
            resource = by_urn[urn]
            parent = real(resource["parent"]) if resource["parent"] else ""
            mapping[urn] = _urn(stack, parent, resource["type"], resource["name"])
        return mapping[urn]

    for urn in by_urn:
        real(urn)
    changed = {old: new for old, new in mapping.items() if old != new}
    if not changed:
        return document
    # Longest first, so a URN that begins another's is not matched inside it.
    pattern = re.compile("|".join(re.escape(old) for old in sorted(changed, key=len, reverse=True)))
    renamed = json.loads(pattern.sub(lambda found: changed[found.group(0)], json.dumps(document)))
    for resource in (r for key in ("resources", "pending_deletes") for r in renamed["checkpoint"][key]):
        # Saved sorted by URN (scripts/landed_fixtures.py checkpoint_document): sorted by the new ones.
        resource["dependencies"] = sorted(resource["dependencies"])
        resource["property_dependencies"] = {k: sorted(v) for k, v in resource["property_dependencies"].items()}
    return renamed


def checkpoint_of(document: dict[str, Any]) -> Checkpoint:
    """A saved checkpoint (dataclasses as JSON) as the engine's own."""
    return Checkpoint(
        resources=[Resource(**r) for r in document["resources"]],
        outputs=document["outputs"],
        pending_deletes=[Resource(**r) for r in document["pending_deletes"]],
    )


def replayed(document: dict[str, Any]) -> Simulation:
    """A world seeded as the earlier release's was, with its `up`s applied by this release."""
    scenario = document["scenario"]
    sim = Simulation(document["config"], stack="dev", seed=scenario["seed"], driver=document["driver"])
    for phase in scenario["applied"]:
        result = sim_apply(sim, phase)
        assert result.ok, f"replaying {phase}: {result.error}"
    return sim


# What the API server assigns an object as it is created (gp3migrate/sim/kube/store.py): the order
# of two independent creates is drawn among the calls outstanding, and that draw is not the same
# from one process history to the next (it follows the SDK's own bookkeeping), so two runs of the
# same `up`s may number the same objects differently.
SERVER_ASSIGNED = ("uid", "resourceVersion", "creationTimestamp", "managedFields")


# `followUp` (gp3migrate/planning/follow_up.py, issue 22 item 4).
ADDED_OUTPUTS = ("followUp",)

# The release step's `window` input (components/gate_providers.py `_window`, issue 22 item 3): the
# checks it makes just before the claim delete (workload at 0, no pod, volume detached, owners
# held). Not part of the step's identity (`_NOT_IDENTITY`), so a step the landed release created
# is not run again for it (the plans below stay the same); only this key, only on that step
# (its id says so), is left out of the comparison: the state the landed release saved has none.
ADDED_RELEASE_INPUTS = ("window",)


# Rehome's cutover creates its CSI PV before it releases the old claim (issue 22 item 3: the PV,
# pre-bound to the claim's name, catches a claim recreated after the release). What that changes in
# the state: the dependencies of the CSI PV, the release and the claim, and the order of the
# entry's `downtimeSteps` output. A change of dependencies alone is no diff (the engine saves the
# new ones with a same step: pulumi step_generator.go), and the plans compared below stay the same.
REORDERED_STEPS = ("-csi-pv", "-release-old-claim")

# Issue 24: a workload's scale steps record when they began and ended (outputs only, not part of the
# step's identity: `_NOT_IDENTITY`), and each migration publishes the downtime they bound. The state
# the landed release saved has neither; only these keys, only on those steps and outputs, are left
# out of the comparison.
ADDED_SCALE_OUTPUTS = ("startedAt", "completedAt")
ADDED_MIGRATION_OUTPUTS = ("downtimeSeconds",)


def _reordered(urn: str, urns: set[str]) -> bool:
    name = urn.rsplit("::", 1)[-1]
    if name.endswith(REORDERED_STEPS):
        return True
    # The claim of a rehome entry: the one whose migration has a CSI PV.
    return name.endswith("-claim") and any(u.endswith(f"::{name.removesuffix('-claim')}-csi-pv") for u in urns)


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint document keyed by URN (the order of independent resources is that draw too),
    without what the API server numbered, and with every `__provider` string blanked: that is where
    the release's code lives, the one thing an upgrade changes."""
    copied = json.loads(json.dumps(document))
    # Stack outputs this release adds: new keys, read by people (no later run reads them).
    for added in ADDED_OUTPUTS:
        (copied.get("outputs") or {}).pop(added, None)
    for migration in ((copied.get("outputs") or {}).get("migrations") or {}).values():
        if isinstance(migration, dict) and isinstance(migration.get("downtimeSteps"), list):
            migration["downtimeSteps"] = sorted(migration["downtimeSteps"])
        for added in ADDED_MIGRATION_OUTPUTS:
            if isinstance(migration, dict):
                migration.pop(added, None)
    for key in ("resources", "pending_deletes"):
        copied[key] = {r["urn"]: r for r in copied[key]}
        urns = set(copied[key])
        for resource in copied[key].values():
            if _reordered(resource["urn"], urns):
                resource.pop("dependencies", None)
            if str(resource.get("id", "")).startswith("scaled-"):
                for added in ADDED_SCALE_OUTPUTS:
                    for section in ("inputs", "outputs"):
                        (resource.get(section) or {}).pop(added, None)
            if str(resource.get("id", "")).startswith("released-"):
                for added in ADDED_RELEASE_INPUTS:
                    for section in ("inputs", "outputs", "property_dependencies"):
                        (resource.get(section) or {}).pop(added, None)
            for properties in (resource["inputs"], resource["outputs"]):
                if PROVIDER_KEY in properties:
                    properties[PROVIDER_KEY] = "<pickled provider>"
                metadata = properties.get("metadata")
                if isinstance(metadata, dict):
                    for field in SERVER_ASSIGNED:
                        metadata.pop(field, None)
    return copied


# What EC2 numbers (moto, seeded): one stream drawn in the order of the calls, so independent steps
# that ran in another order (the seeded draw among every ready registration, gp3migrate/sim/program.py)
# give the same objects other ids.
EC2_ASSIGNED = ("snap-", "vol-")


def renumbered(saved_checkpoint: dict[str, Any], replayed_checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The saved checkpoint naming the replayed world's EC2 objects: each id EC2 gave a resource
    there replaced, wherever it appears, by the one it gave the same resource (by URN) here. A
    one-to-one mapping, so two objects can never be taken for one."""
    ours = {r["urn"]: r["id"] for r in replayed_checkpoint["resources"]}
    mapping = {
        r["id"]: ours[r["urn"]]
        for r in saved_checkpoint["resources"]
        if r["urn"] in ours and r["id"].startswith(EC2_ASSIGNED) and ours[r["urn"]].startswith(EC2_ASSIGNED)
    }
    assert len(set(mapping.values())) == len(mapping), mapping
    if not mapping:
        return saved_checkpoint
    # One pass, so an id that is also the other world's id for another object is not renamed twice.
    pattern = re.compile("|".join(re.escape(theirs) for theirs in mapping))
    return json.loads(pattern.sub(lambda found: mapping[found.group(0)], json.dumps(saved_checkpoint)))


def differences(old: Any, new: Any, path: str = "") -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from differences(old.get(key), new.get(key), f"{path}.{key}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for number, (a, b) in enumerate(zip(old, new, strict=True)):
            label = a.get("urn", number) if isinstance(a, dict) else number
            yield from differences(a, b, f"{path}[{label}]")
    elif old != new:
        yield f"{path}: {old!r:.120} -> {new!r:.120}"


def landed_classes(document: dict[str, Any]) -> set[str]:
    return {
        provider_class(r["outputs"][PROVIDER_KEY])
        for r in document["checkpoint"]["resources"]
        if PROVIDER_KEY in r["outputs"]
    }


def plan(steps: list[Step]) -> list[tuple[str, str, str]]:
    """What an `up` did, in no order: independent steps run in the seeded draw's order. (Their
    order's safety is the invariants' business, checked after every step.)"""
    return sorted((s.op, s.urn, s.detail) for s in steps if s.op != "same")


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(operation, provider class) of every provider the simulation restores from old state."""
    seen: list[tuple[str, str]] = []
    delete, read = DynamicProvider.delete, DynamicProvider.read

    def spy_delete(self: DynamicProvider, old: Resource) -> None:
        seen.append(("delete", provider_class(old.outputs[PROVIDER_KEY])))
        delete(self, old)

    def spy_read(self: DynamicProvider, old: Resource) -> dict[str, Any] | None:
        seen.append(("read", provider_class(old.outputs[PROVIDER_KEY])))
        return read(self, old)

    monkeypatch.setattr(DynamicProvider, "delete", spy_delete)
    monkeypatch.setattr(DynamicProvider, "read", spy_read)
    return seen


def go_on(sim: Simulation, continuation: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The continuation's `up`s, each checked as it completes: (phase, its plan) per `up`."""
    plans = []
    for phase, refresh in CONTINUATIONS[continuation]:
        result = sim_apply(sim, phase, refresh_first=refresh)
        assert result.ok, f"{phase}: {result.error}"
        assert [s.name for s in result.steps if s.op == "replace"] == [], phase
        assert broken(sim, result) == [], phase
        plans.append((phase, plan(result.steps)))
    return plans


@pytest.mark.parametrize("continuation", sorted(CONTINUATIONS))
@pytest.mark.parametrize("scenario", sorted(p.stem for p in SAVED.glob("*.json")))
def test_a_stack_the_landed_release_took_to_cutover_goes_on_with_this_one(
    scenario: str, continuation: str, restored: list[tuple[str, str]]
) -> None:
    document = saved(scenario)
    # Without the upgrade: a stack this release applied from the start. (One simulation at a
    # time: the worlds share moto's EC2 backend while open.)
    with replayed(document) as control:
        expected = go_on(control, continuation)
    restored.clear()

    with replayed(document) as upgraded:
        # This release, applying the same `up`s to the same world, leaves the same state ...
        replayed_state = checkpoint_document(upgraded.checkpoint)
        saved_state = renumbered(document["checkpoint"], replayed_state)
        assert list(differences(comparable(saved_state), comparable(replayed_state))) == []
        # ... but for where its providers' code lives: the saved state names the earlier paths.
        ours = {
            provider_class(r.outputs[PROVIDER_KEY]) for r in upgraded.checkpoint.resources if PROVIDER_KEY in r.outputs
        }
        legacy = landed_classes(document) - ours

        # The upgrade: the earlier release's state, this release's program. The same plans as
        # without it: no step added, nothing replaced, nothing deleted that the phase does not delete.
        upgraded.checkpoint = checkpoint_of(saved_state)
        assert go_on(upgraded, continuation) == expected

    # The old state's providers were restored, under the module paths it names, to refresh and
    # delete the steps a later phase no longer declares.
    assert {op for op, cls in restored if cls in legacy} == ({"read", "delete"} if legacy else set())
