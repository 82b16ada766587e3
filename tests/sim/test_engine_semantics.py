"""The simulated engine fails, refreshes and saves as the pinned Pulumi engine does (issue 21 item 5,
the *failure* and *refresh* differences): each rule first as a unit test of `engine.Deployment` with a
tiny provider, then, where the program can meet it, with the real program.

The upstream function behind each rule is cited in gp3migrate/sim/engine.py beside its code. What
this does not prove: real parallelism (one step runs at a time here; "in flight" is a set the
engine is told about, `Deployment.started`), the race in which a step dispatched just before a
failure is cancelled before it begins (`executeChain` checks for cancellation between steps), and
providers other than those modelled in gp3migrate/sim/providers.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gp3migrate.sim.engine import (
    Bailed,
    Checkpoint,
    Deployment,
    Diff,
    Op,
    PartialFailure,
    Resource,
    Step,
    StepFailed,
    TimedOut,
    refresh,
)
from gp3migrate.sim.program import Registration
from gp3migrate.sim.scenario import Faults, Simulation
from tests.sim.test_scenarios import DRIVER, KEY, NAME, dev, up, variant

TYPE = "test:index:Thing"


class Things:
    """A provider of plain records: `name` forces a replacement (create-before-delete); a create or
    update of a name in `partial` creates the object and then fails its await, one in `fail` fails
    outright; `not_ready` makes Read report init errors, as pulumi-kubernetes' Read does for a
    Deployment that has not rolled out."""

    def __init__(self) -> None:
        self.live: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.created: list[str] = []
        self.fail: set[str] = set()
        self.partial: set[str] = set()
        self.not_ready: set[str] = set()
        self.gone: set[str] = set()
        self.live_inputs: dict[str, dict[str, Any]] = {}

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        changed = tuple(sorted(k for k in set(old.inputs) | set(news) if old.inputs.get(k) != news.get(k)))
        return Diff(changes=bool(changed), replaces=tuple(k for k in changed if k == "name"), changed=changed)

    def _apply(self, new: Resource, resource_id: str) -> dict[str, Any]:
        if new.name in self.fail:
            raise StepFailed(f"{new.name}: refused")
        outputs = copy.deepcopy(new.inputs)
        self.live[resource_id] = outputs
        if new.name in self.partial:
            raise PartialFailure(f"{new.name} was not ready", resource_id, outputs)
        return outputs

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        resource_id = f"{new.name}-{len(self.created)}"
        self.created.append(resource_id)
        return resource_id, self._apply(new, resource_id)

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        raise StepFailed("not imported here")

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        return self._apply(new, old.id)

    def delete(self, old: Resource) -> None:
        self.deleted.append(old.id)
        self.live.pop(old.id, None)

    def read(self, old: Resource) -> dict[str, Any] | None:
        if old.id in self.gone or old.id not in self.live:
            return None
        if old.name in self.not_ready:
            raise PartialFailure(f"{old.name} is not ready", old.id, copy.deepcopy(self.live[old.id]))
        return copy.deepcopy(self.live[old.id])

    def read_inputs(self, old: Resource, live: dict[str, Any]) -> dict[str, Any] | None:
        return copy.deepcopy(self.live_inputs.get(old.id))


def registration(name: str, *, depends: tuple[str, ...] = (), protect: bool = False, **inputs: Any) -> Registration:
    return Registration(
        type=TYPE,
        name=name,
        urn=urn(name),
        parent="",
        custom=True,
        inputs={"name": name, **inputs},
        dependencies=[urn(d) for d in depends],
        property_dependencies={},
        protect=protect,
        retain_on_delete=False,
        delete_before_replace=None,
        replace_on_changes=[],
        ignore_changes=[],
        custom_timeouts={},
        import_id="",
        provider="",
    )


def urn(name: str) -> str:
    return f"urn:pulumi:test::project::{TYPE}::{name}"


def deployment(
    old: Checkpoint, things: Things, *, fault: Any = None, steps: list[Step] | None = None, dry_run: bool = False
) -> Deployment:
    return Deployment(
        old,
        lambda type_: things,
        dry_run=dry_run,
        fault=fault,
        on_step=(steps.append if steps is not None else None),
    )


def applied(things: Things, *registrations: Registration, old: Checkpoint | None = None) -> Checkpoint:
    """The checkpoint of a successful `up` registering these."""
    up = deployment(old or Checkpoint(), things)
    for one in registrations:
        up.register(one)
    up.register_outputs("", {})
    saved = up.finish()
    assert up.error is None, up.error
    return saved


def names(resources: list[Resource]) -> list[str]:
    return sorted(r.name for r in resources)


# -- a. a failed create-before-delete replacement -----------------------------------------------


def test_a_replacement_whose_create_partly_failed_leaves_the_old_resource_pending_delete() -> None:
    """step.go CreateStep.Apply marks the old resource `Delete` once the provider returned the new
    object, also on a partial failure; OnResourceStepPost saves a partial failure as a success, so the
    snapshot holds the new object (with init errors) and the old one pending delete."""
    things = Things()
    saved = applied(things, registration("a", size=1))
    old_id = saved.named("a").id  # type: ignore[union-attr]
    things.partial.add("a")
    # `name` is a replacing key here: a replacement, create-before-delete.
    changed = registration("a", size=1)
    changed.inputs["name"] = "a-renamed"
    up = deployment(saved, things)
    with pytest.raises(StepFailed, match="was not ready"):
        up.register(changed)
    failed = up.finish()
    assert [(r.name, r.id) for r in failed.pending_deletes] == [("a", old_id)]
    assert failed.named("a").init_errors  # type: ignore[union-attr]
    # The next `up` deletes the old half.
    things.partial.clear()
    applied(things, changed, old=failed)
    assert old_id in things.deleted


def test_a_replacement_whose_create_failed_outright_keeps_the_old_resource_as_it_was() -> None:
    things = Things()
    saved = applied(things, registration("a", size=1))
    things.fail.add("a")
    changed = registration("a", size=1)
    changed.inputs["name"] = "a-renamed"
    up = deployment(saved, things)
    with pytest.raises(StepFailed):
        up.register(changed)
    failed = up.finish()
    assert failed.pending_deletes == []
    assert failed.named("a").inputs["name"] == "a"  # type: ignore[union-attr]


# -- b. a protected delete ---------------------------------------------------------------------


def test_a_protected_delete_does_not_stop_the_other_deletes_and_keeps_what_it_depends_on() -> None:
    """step_executor.go cancelDueToError continues past a deleteProtectedError; deployment_executor.go
    performPostSteps then skips the transitive dependencies of the errored step; the `up` fails."""
    things = Things()
    saved = applied(
        things,
        registration("base"),
        registration("other"),
        registration("leaf", depends=("other",)),
        # Last in the checkpoint: the first delete (reverse order, no seed).
        registration("kept", depends=("base",), protect=True),
    )
    up = deployment(saved, things)
    failed = up.finish()
    assert isinstance(up.error, StepFailed) and "'kept' cannot be deleted because it is protected" in str(up.error)
    assert names(failed.resources) == ["base", "kept"]
    assert sorted(things.deleted) == sorted([saved.named("other").id, saved.named("leaf").id])  # type: ignore[union-attr]


# -- c. stack outputs after a failure ----------------------------------------------------------


def test_stack_outputs_sent_after_a_failure_are_not_saved() -> None:
    """The engine's main loop stops reading the program's events once a step failed
    (deployment_executor.go Execute, `case <-ctx.Done()`), so a RegisterResourceOutputs sent later
    is never handled and the stack keeps its old outputs (SameStep.Apply)."""
    things = Things()
    saved = applied(things, registration("a"))
    saved.outputs = {"phase": "precopy", "kept": True}
    things.fail.add("b")
    up = deployment(saved, things)
    up.register(registration("a"))
    with pytest.raises(StepFailed):
        up.register(registration("b"))
    with pytest.raises(Bailed):
        up.register_outputs("", {"phase": "cutover"})
    assert up.finish().outputs == {"phase": "precopy", "kept": True}


def test_stack_outputs_sent_before_a_failure_are_written_over_the_old_ones() -> None:
    """step_executor.go executeRegisterResourceOutputs, finalizing after an error (PR 15754)."""
    things = Things()
    saved = applied(things, registration("a"))
    saved.outputs = {"phase": "precopy", "kept": True}
    things.fail.add("b")
    up = deployment(saved, things)
    up.register_outputs("", {"phase": "cutover"})
    with pytest.raises(StepFailed):
        up.register(registration("b"))
    assert up.finish().outputs == {"phase": "cutover", "kept": True}


# -- d. a timeout --------------------------------------------------------------------------------


def timeout_on(name: str, op: Op) -> Any:
    waited: list[str] = []

    def fault(resource: Resource, step_op: Op) -> None:
        if resource.name == name and step_op == op:
            raise TimedOut(f"{name}: timed out", wait=lambda: waited.append(name))

    fault.waited = waited  # type: ignore[attr-defined]
    return fault


def test_a_timed_out_create_leaves_the_object_created_with_init_errors_and_an_update_next() -> None:
    """pulumi-kubernetes Create returns a partial error once the object exists and its await fails
    (provider.go Create, partialError); step.go CreateStep.Apply keeps its id, outputs and init errors;
    the next `up` updates it (step_generator.go continueStepsFromDiff, hasInitErrors)."""
    things = Things()
    fault = timeout_on("a", "create")
    up = deployment(Checkpoint(), things, fault=fault)
    with pytest.raises(StepFailed, match="timed out"):
        up.register(registration("a", size=1))
    failed = up.finish()
    assert things.created == ["a-0"] and "a-0" in things.live
    assert fault.waited == ["a"]
    saved = failed.named("a")
    assert saved is not None and saved.id == "a-0" and saved.init_errors == ["a: timed out"]
    steps: list[Step] = []
    again = deployment(failed, things, steps=steps)
    again.register(registration("a", size=1))
    assert again.finish().named("a").init_errors == []  # type: ignore[union-attr]
    assert [s.op for s in steps] == ["update"]


def test_a_timed_out_update_saves_the_new_outputs_with_the_old_inputs() -> None:
    """pkg/engine/update.go OnResourceStepPost: a partially failed update keeps the old inputs."""
    things = Things()
    saved = applied(things, registration("a", size=1))
    up = deployment(saved, things, fault=timeout_on("a", "update"))
    with pytest.raises(StepFailed):
        up.register(registration("a", size=2))
    failed = up.finish().named("a")
    assert failed is not None
    assert failed.inputs["size"] == 1 and failed.outputs["size"] == 2 and failed.init_errors


def test_an_injected_timeout_of_a_claim_leaves_it_created_and_the_next_up_takes_it_over() -> None:
    """The real program: the restored claim's await times out; the claim exists in the cluster and
    in the state with init errors, and the next `up` updates it rather than creating it again."""
    with Simulation(dev(**variant("copy-same-name")), seed=31, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        failed = up(sim, "cutover", faults=Faults({(f"{NAME}-claim", "create"): "timeout"}))
        assert failed.error is not None and f"{NAME}-claim" in str(failed.error)
        claim = sim.checkpoint.named(f"{NAME}-claim")
        assert claim is not None and claim.init_errors
        assert sim.world.kube.get("v1", "PersistentVolumeClaim", "default", "ebs-gp2-claim") is not None
        assert sim.checkpoint.outputs["migrationPhases"][KEY]["phase"] == "precopy"
        again = up(sim, "cutover")
        assert again.ok, again.error
        assert [s.op for s in again.steps if s.name == f"{NAME}-claim"] == ["update"]


# -- e. refresh ----------------------------------------------------------------------------------


def test_refresh_keeps_a_pending_delete_that_still_exists_and_drops_one_that_is_gone() -> None:
    """deploymentExecutor.refresh refreshes every resource of the old snapshot, pending deletes too;
    rebuildBaseState keeps them with their `Delete` flag unless Read found them gone."""
    things = Things()
    saved = applied(things, registration("a"), registration("b"))
    pending = [saved.named("a"), saved.named("b")]
    checkpoint = Checkpoint(resources=[], pending_deletes=[r for r in pending if r is not None])
    things.gone.add(saved.named("b").id)  # type: ignore[union-attr]
    refreshed = refresh(checkpoint, lambda type_: things, lambda step: None)
    assert names(refreshed.pending_deletes) == ["a"]


def test_refresh_takes_the_inputs_and_init_errors_read_returns() -> None:
    """step.go RefreshStep.Apply: init errors are those of a partial Read (none otherwise), and the
    inputs those Read returned when it returned any."""
    things = Things()
    failed_up = deployment(Checkpoint(), things, fault=timeout_on("a", "create"))
    with pytest.raises(StepFailed):
        failed_up.register(registration("a", size=1))
    saved = applied(things, registration("b", size=1), old=None)
    checkpoint = Checkpoint(resources=[*failed_up.finish().resources, *saved.resources])
    things.not_ready.add("b")
    things.live_inputs[saved.named("b").id] = {"name": "b", "size": 5}  # type: ignore[union-attr]
    refreshed = refresh(checkpoint, lambda type_: things, lambda step: None)
    assert refreshed.named("a").init_errors == []  # type: ignore[union-attr]
    b = refreshed.named("b")
    assert b is not None and b.init_errors == ["b is not ready"] and b.inputs == {"name": "b", "size": 5}


# -- f. steps in flight --------------------------------------------------------------------------


def test_a_step_started_before_another_failed_completes_and_is_saved() -> None:
    """step_executor.go: a failure cancels the deployment's context, which stops a chain only between
    steps (executeChain); a step already applying runs to its end and OnResourceStepPost saves it.
    A registration that arrives after the failure gets no step."""
    things = Things()
    things.fail.add("a")
    up = deployment(Checkpoint(), things)
    up.started(urn("a"))
    up.started(urn("b"))
    with pytest.raises(StepFailed):
        up.register(registration("a"))
    up.register(registration("b"))
    with pytest.raises(Bailed):
        up.register(registration("c"))
    assert names(up.finish().resources) == ["b"]


def test_deletes_in_flight_when_one_fails_still_complete_and_no_later_one_starts() -> None:
    """deployment_executor.go performPostSteps runs each antichain of ScheduleDeletes in parallel and
    waits for it: a failed delete cancels the later antichains, not the rest of its own."""
    things = Things()
    saved = applied(
        things,
        registration("base"),
        registration("y", depends=("base",)),
        registration("z", depends=("base",)),
        # Last in the checkpoint: the first delete (reverse order, no seed).
        registration("x", depends=("base",)),
    )

    def fault(resource: Resource, op: Op) -> None:
        if resource.name == "x" and op == "delete":
            raise StepFailed("x: delete refused")

    up = deployment(saved, things, fault=fault)
    failed = up.finish()
    assert isinstance(up.error, StepFailed)
    # y and z were deleting alongside x; base, after them, never starts.
    assert names(failed.resources) == ["base", "x"]


def test_up_refresh_after_a_timed_out_claim_takes_its_readiness_from_read() -> None:
    """The real program: a claim has no read await in pulumi-kubernetes (await.go Read, awaiters.go:
    no `awaitRead` for PersistentVolumeClaim), so a refresh clears its init errors and the next
    `up` leaves it as it is."""
    with Simulation(dev(**variant("copy-same-name")), seed=32, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        assert not up(sim, "cutover", faults=Faults({(f"{NAME}-claim", "create"): "timeout"})).ok
        again = up(sim, "cutover", refresh=True)
        assert again.ok, again.error
        assert [s.op for s in again.steps if s.name == f"{NAME}-claim"] == ["refresh", "same"]
