"""A model of the Pulumi engine's deployment: the steps one `up` (or preview) makes, and their effects.

It receives the registrations of one real program run (gp3migrate/sim/program.py), compares each with
the previous checkpoint, and plans and executes a step as the engine does (pulumi
`pkg/resource/deploy/step_generator.go`, `step_executor.go`, `step.go`):

- a resource not in the old state is created, or, when it names an `import` id, read and then
  carried on from what was read as if that were its old state: ignored properties take the read
  values, a difference is an `update` in the same `up`, and a replacement fails the `up` (a preview
  shows it) while the resource still names its `import` id (pulumi 3.174+, pulumi/pulumi 19339:
  step.go ImportStep.Apply, step_generator.go continueStepsFromImport, continueStepsFromDiff);
- before the diff, each `ignoreChanges` path of the new inputs takes its old value, or is dropped
  where the old inputs lack it (step_generator.go processIgnoreChanges);
- one in it is diffed by its provider; no change is a `same`, a change an `update`, a change the
  provider or `replaceOnChanges` calls replacing a `replace` (`continueStepsFromDiff`);
- replacement is create-before-delete unless the resource option or the provider asks for
  delete-before-replace; then the dependents that a change of the condemned resource's outputs would
  replace are deleted first, in reverse dependency order (`calculateDependentReplacements`: only
  property dependencies count, a bare `dependsOn` edge does not);
- a replace of a resource protected in the old *and* new state fails the whole `up`
  (`continueStepsFromDiff`: "unable to replace resource ... marked for protection");
- deletes (resources no longer registered, and the old halves of create-before-delete replacements)
  run after the program has finished, each once its condemned dependents are gone, in an order
  drawn from the `up`'s seed among those (`GenerateDeletes`, `ScheduleDeletes`);
  `retainOnDelete` of the *old* state makes a delete a no-op (`DeleteStep.Apply`; pulumi/pulumi 13428);
- a protected delete fails (`DeleteStep.Apply`, deleteProtectedError) but does not stop the others:
  `cancelDueToError` continues past that error, `performPostSteps` skips only what the protected
  resource depends on, transitively, and the `up` fails at the end;
- any other failed step stops the `up` (`cancelDueToError` cancels the deployment's context):
  registrations that arrive later are refused and no deletes run; a step that had already begun
  (`started`) still finishes and is saved (`executeChain` checks for cancellation only between
  steps), and so do the deletes of a failed delete's antichain (`performPostSteps` runs each
  antichain of `ScheduleDeletes` in parallel; no later one starts); what completed is saved;
- a create or update whose object exists but whose await failed (a provider's partial error, or an
  injected `TimedOut`) is saved with init errors (`CreateStep.Apply`), an update with the *old*
  inputs and the new outputs (pkg/engine `update.go` OnResourceStepPost), and re-awaited by an update
  next time (`continueStepsFromDiff` `hasInitErrors`); a create-before-delete replacement whose
  create got that far marks the old resource pending delete (`CreateStep.Apply` sets `old.Delete`),
  which the next `up` deletes; one whose create failed outright leaves the old one as it was;
- stack outputs: replaced on success; on a failed update, the keys registered before the failure
  are written over the old ones, the rest kept (pulumi/pulumi PR 15754, `step_executor.go`
  executeRegisterResourceOutputs); outputs sent after the failure are never read
  (`deploymentExecutor.Execute` stops reading the program's events) — the Python SDK sends them once
  all exports have resolved, and not at all when one of them depends on a failed step;
- `--refresh` reads every resource back through its provider before the program runs, pending
  deletes too (they stay pending); init errors and inputs become what Read returns
  (`RefreshStep.Apply`, `rebuildBaseState`);
- `pulumi destroy` runs no program: every resource of the state is a delete (`destroy` below).

The failure and refresh rules were read at pulumi/pulumi 1b59498 and pulumi-kubernetes 9497796 (the
snapshots at hand; tests/sim/test_engine_semantics.py shows each).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gp3migrate.sim.program import Registration

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the SDK's unknown sentinel (pulumi/runtime/rpc.py)

Op = Literal["same", "create", "import", "update", "replace", "delete", "refresh", "read"]


class StepFailed(Exception):  # noqa: N818 - the engine's own word for it
    """A provider operation failed; the `up` stops here."""


class PartialFailure(StepFailed):
    """The object exists but did not become ready: saved with init errors (pulumi-kubernetes)."""

    def __init__(self, message: str, resource_id: str, outputs: dict[str, Any]):
        super().__init__(message)
        self.resource_id = resource_id
        self.outputs = outputs


class Bailed(Exception):  # noqa: N818
    """The engine refuses registrations after a failed step (the deployment is cancelled)."""


class TimedOut(StepFailed):
    """An injected fault: the operation is carried out, then its await runs out of time.

    Raised by a fault *before* a create, replace or update; the engine runs the operation, calls
    `wait` (the rest of the budget), saves the object with this as its init error and fails the
    step — what a provider's partial error does (pulumi-kubernetes `provider.go` Create/Update,
    `partialError`; terraform-bridge providers return the created state with the error). Before any
    other operation it fails the step at once."""

    def __init__(self, message: str, wait: Callable[[], None]):
        super().__init__(message)
        self.wait = wait


@dataclass
class Resource:
    """One entry of the checkpoint (pulumi `resource.State`)."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    provider: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool | None = None
    replace_on_changes: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    import_id: str = ""
    init_errors: list[str] = field(default_factory=list)

    @staticmethod
    def of(registration: Registration) -> Resource:
        return Resource(
            urn=registration.urn,
            type=registration.type,
            name=registration.name,
            custom=registration.custom,
            parent=registration.parent,
            provider=registration.provider,
            inputs=copy.deepcopy(registration.inputs),
            dependencies=list(registration.dependencies),
            property_dependencies={k: list(v) for k, v in registration.property_dependencies.items()},
            protect=registration.protect,
            retain_on_delete=registration.retain_on_delete,
            delete_before_replace=registration.delete_before_replace,
            replace_on_changes=list(registration.replace_on_changes),
            ignore_changes=list(registration.ignore_changes),
            custom_timeouts=dict(registration.custom_timeouts),
            import_id=registration.import_id,
        )

    def depends_on(self) -> set[str]:
        deps = set(self.dependencies)
        for urns in self.property_dependencies.values():
            deps.update(urns)
        if self.parent:
            deps.add(self.parent)
        return deps


@dataclass
class Checkpoint:
    """The stack's state between two `up`s: resources in dependency order, and the stack outputs."""

    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Old halves of replacements a failed update did not get to delete (`delete: true` in the
    # engine's snapshot): the next update deletes them (GenerateDeletes, `res.Delete`).
    pending_deletes: list[Resource] = field(default_factory=list)

    def named(self, name: str) -> Resource | None:
        return next((r for r in self.resources if r.name == name), None)


@dataclass(frozen=True)
class Diff:
    changes: bool
    replaces: tuple[str, ...] = ()
    # What the provider asks for; the resource option overrides it (step_generator.go).
    delete_before_replace: bool = False
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    op: Op
    urn: str
    type: str
    name: str
    detail: str = ""

    def describe(self) -> str:
        symbol = {
            "same": " ",
            "create": "+",
            "import": "=",
            "update": "~",
            "replace": "+-",
            "delete": "-",
            "refresh": "r",
            "read": ">",
        }[self.op]
        short_type = self.type.split(":")[-1]
        return f"{symbol:>2} {self.op:<8} {short_type:<28} {self.name}" + (f"  ({self.detail})" if self.detail else "")


class Provider(Protocol):
    """A resource provider's operations, as the engine calls them (provider.proto)."""

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff: ...

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]: ...

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]: ...

    def update(self, old: Resource, new: Resource) -> dict[str, Any]: ...

    def delete(self, old: Resource) -> None: ...

    def read(self, old: Resource) -> dict[str, Any] | None:
        """The live outputs; None: gone; PartialFailure: there but not ready (init errors). A
        provider whose Read also returns inputs has `read_inputs(old, live)` (see `refresh`)."""
        ...


Providers = Callable[[str], Provider]
Fault = Callable[[Resource, Op], None]


def _matches(pattern: str, key: str) -> bool:
    """replaceOnChanges paths: `*` matches everything, otherwise the top-level key or a prefix."""
    return pattern == "*" or key == pattern or key.startswith(pattern + ".")


def ignore_changes(inputs: dict[str, Any], old_inputs: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """step_generator.go processIgnoreChanges (PropertyPath.Reset): each path of the new inputs
    takes its value in the old inputs, or is removed where the old inputs lack it."""
    result = copy.deepcopy(inputs)
    for path in paths:
        keys = path.split(".")
        old: Any = old_inputs
        new: Any = result
        for key in keys[:-1]:
            old = old.get(key) if isinstance(old, dict) else None
            new = new.get(key) if isinstance(new, dict) else None
        if not isinstance(new, dict):
            continue
        if isinstance(old, dict) and keys[-1] in old:
            new[keys[-1]] = copy.deepcopy(old[keys[-1]])
        else:
            new.pop(keys[-1], None)
    return result


def read_inputs(provider: Provider, new: Resource, outputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs a provider's Read returns for an import (ReadResponse.inputs). Providers that
    diff against the live object pruned to the inputs' shape (pulumi-kubernetes objects) need
    only that shape, so the declared inputs stand for it; the Helm release and the EKS add-on
    say what they read (`imported_inputs`)."""
    reader = getattr(provider, "imported_inputs", None)
    return reader(new, outputs) if callable(reader) else copy.deepcopy(new.inputs)


def topological(resources: list[Resource]) -> list[Resource]:
    """Stable dependency order: each resource after its parent and dependencies that are present."""
    by_urn = {r.urn: r for r in resources}
    placed: set[str] = set()
    ordered: list[Resource] = []

    def place(resource: Resource, visiting: frozenset[str]) -> None:
        if resource.urn in placed or resource.urn in visiting:
            return
        for dep in sorted(resource.depends_on()):
            if dep in by_urn:
                place(by_urn[dep], visiting | {resource.urn})
        placed.add(resource.urn)
        ordered.append(resource)

    for resource in resources:
        place(resource, frozenset())
    return ordered


class Deployment:
    """One `pulumi up` (or `pulumi preview` with `dry_run`) against a checkpoint."""

    def __init__(
        self,
        old: Checkpoint,
        providers: Providers,
        *,
        dry_run: bool,
        fault: Fault | None = None,
        on_step: Callable[[Step], None] | None = None,
        stack_outputs: Callable[[str], dict[str, Any]] | None = None,
        invoke: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
        remote: Callable[[str], Provider | None] | None = None,
        rng: random.Random | None = None,
    ):
        self.old_resources = list(old.resources)
        self.old = {r.urn: r for r in old.resources}
        self.pending_deletes = list(old.pending_deletes)
        self.old_outputs = dict(old.outputs)
        self.providers = providers
        self.dry_run = dry_run
        self.fault = fault or (lambda resource, op: None)
        self.on_step = on_step or (lambda step: None)
        self._stack_outputs = stack_outputs or (lambda name: {})
        self._invoke = invoke or (lambda token, args: {})
        self.remote = remote or (lambda type_: None)
        # Draws the order of the deletes among those whose dependents are gone; None: reverse
        # checkpoint order.
        self.rng = rng
        self.new: dict[str, Resource] = {}
        self.steps: list[Step] = []
        self.error: BaseException | None = None
        self.registered_outputs: dict[str, Any] | None = None
        # Old halves of create-before-delete replacements, deleted after the program.
        self.replaced: list[Resource] = []
        # Deleted ahead of a delete-before-replace (no longer in the world, not yet re-created).
        self.deleted_early: set[str] = set()
        # Registrations whose step has begun (`started`), and those that had when a step failed.
        self._started: set[str] = set()
        self._in_flight: set[str] = set()

    # -- what the monitor calls ------------------------------------------------------------

    def stack_outputs(self, stack: str) -> dict[str, Any]:
        return self._stack_outputs(stack)

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._invoke(token, args)

    def register_outputs(self, urn: str, outputs: dict[str, Any]) -> None:
        if self.error is not None:
            # Once a step failed the engine's main loop reads no more of the program's events
            # (deployment_executor.go Execute returns on `ctx.Done()`), so outputs sent now are
            # never handled: the stack keeps the outputs it had (SameStep.Apply). The resource
            # monitor answers "shut down" (source_eval.go RegisterResourceOutputs).
            raise Bailed(f"resource monitor shut down while sending resource outputs: {self.error}")
        self.registered_outputs = copy.deepcopy(outputs)

    def started(self, urn: str) -> None:
        """The monitor has this registration and its step has begun: the real engine starts every
        step whose registration has arrived, in parallel (step_executor.go workers). If another
        step fails meanwhile, this one still runs to its end and is saved: a failure cancels the
        deployment's context, which stops a chain only between steps (`executeChain`), and
        OnResourceStepPost saves what a step did (pkg/engine/update.go)."""
        self._started.add(urn)

    def register(self, registration: Registration) -> tuple[str, dict[str, Any]]:
        if self.error is not None and registration.urn not in self._in_flight:
            raise Bailed(f"the update was cancelled after an earlier failure: {self.error}")
        new = Resource.of(registration)
        try:
            self._step(new)
        except BaseException as err:
            if self.error is None:
                # step_executor.go cancelDueToError: the first error is the update's.
                self.error = err
                self._in_flight = self._started - {registration.urn}
            raise
        finally:
            self._started.discard(registration.urn)
            self._in_flight.discard(registration.urn)
        return new.id, new.outputs

    # -- steps --------------------------------------------------------------------------------

    def _record(self, op: Op, resource: Resource, detail: str = "") -> None:
        step = Step(op, resource.urn, resource.type, resource.name, detail)
        self.steps.append(step)
        self.on_step(step)

    def _step(self, new: Resource) -> None:
        old = self.old.get(new.urn)
        if old is not None and old.urn in self.deleted_early:
            old = None
        remote = None if new.custom else self.remote(new.type)
        if not new.custom and remote is None:
            # Components have no provider: they are created or kept as they are.
            self._record("same" if old else "create", new)
            self.new[new.urn] = new
            return
        provider = remote or self.providers(new.type)
        if old is None:
            op: Op = "import" if new.import_id else "create"
            timed_out = self._fault(new, op)
            self._record(op, new)
            self._create(provider, new, op)
            if op == "import":
                self._continue_from_import(provider, new)
                return
            self._time_out(new, timed_out)
            return
        self._from_diff(provider, old, new)

    def _continue_from_import(self, provider: Provider, new: Resource) -> None:
        """step_generator.go: the ImportStep resolves with the state it read, and step generation
        continues with that state as the old one (continueStepsFromImport); no change resolves
        the registration with the imported state itself, so no `same` step is shown."""
        imported = self.new[new.urn]
        new.id, new.outputs = "", {}
        self._from_diff(provider, imported, new, imported=True)

    def _from_diff(self, provider: Provider, old: Resource, new: Resource, *, imported: bool = False) -> None:
        new.inputs = ignore_changes(new.inputs, old.inputs, new.ignore_changes)
        diff = provider.diff(old, new.inputs, new.ignore_changes)
        replaces = list(diff.replaces)
        if diff.changes and new.replace_on_changes:
            replaces += [k for k in diff.changed if any(_matches(p, k) for p in new.replace_on_changes)]
        if replaces:
            self._replace(provider, old, new, diff, sorted(set(replaces)))
        elif diff.changes or old.init_errors:
            timed_out = self._fault(new, "update")
            self._record("update", new, ", ".join(diff.changed) or "init errors")
            self._update(provider, old, new)
            if timed_out is not None and not self.dry_run:
                new.inputs = copy.deepcopy(old.inputs)
                self._time_out(new, timed_out)
        elif imported:
            self.new[new.urn] = old
        else:
            self._record("same", new)
            new.id, new.outputs = old.id, copy.deepcopy(old.outputs)
            self.new[new.urn] = new

    def _fault(self, resource: Resource, op: Op) -> TimedOut | None:
        """The injected fault before a step. A timeout of a create, replace or update is handed
        back (the operation runs, then `_time_out`); of any other operation it fails at once."""
        try:
            self.fault(resource, op)
        except TimedOut as timed_out:
            if op in ("create", "replace", "update"):
                return timed_out
            timed_out.wait()
            raise
        return None

    def _time_out(self, new: Resource, timed_out: TimedOut | None) -> None:
        """The object exists (saved in `new`), its await ran out: saved with init errors, as step.go
        CreateStep/UpdateStep.Apply keep a partial failure's state, and the step fails."""
        if timed_out is None or self.dry_run:
            return
        timed_out.wait()
        new.init_errors = [str(timed_out)]
        raise timed_out

    def _create(self, provider: Provider, new: Resource, op: Op) -> None:
        try:
            if op == "import":
                # step.go ImportStep.Apply: Read by the import id, in a preview too (a read changes
                # nothing); the state saved is what Read returned, inputs and outputs.
                resource_id, outputs = provider.import_(new)
                self.new[new.urn] = Resource(
                    **{
                        **copy.deepcopy(new.__dict__),
                        "id": resource_id,
                        "outputs": outputs,
                        "inputs": read_inputs(provider, new, outputs),
                    }
                )
                return
            else:
                new.id, new.outputs = provider.create(new, preview=self.dry_run)
                if self.dry_run:
                    # A preview's create has no id yet (step.go CreateStep.Apply returns none in a
                    # preview; the SDK reads an empty id as unknown), whatever the name would be.
                    new.id = ""
        except PartialFailure as partial:
            new.id, new.outputs, new.init_errors = partial.resource_id, partial.outputs, [str(partial)]
            self.new[new.urn] = new
            raise
        self.new[new.urn] = new

    def _update(self, provider: Provider, old: Resource, new: Resource) -> None:
        new.id = old.id
        if self.dry_run:
            new.outputs = {**copy.deepcopy(old.outputs), **copy.deepcopy(new.inputs)}
            self.new[new.urn] = new
            return
        try:
            new.outputs = provider.update(old, new)
        except PartialFailure as partial:
            # pkg/engine/update.go OnResourceStepPost: a partially failed update is saved with the
            # provider's new outputs but the *old* inputs (pulumi/pulumi 2011).
            new.outputs, new.init_errors = partial.outputs, [str(partial)]
            new.inputs = copy.deepcopy(old.inputs)
            self.new[new.urn] = new
            raise
        self.new[new.urn] = new

    def _replace(self, provider: Provider, old: Resource, new: Resource, diff: Diff, replaces: list[str]) -> None:
        if new.protect and old.protect:
            raise StepFailed(
                f"unable to replace resource {new.name!r} as it is currently marked for protection "
                f"(changed: {', '.join(replaces)})"
            )
        delete_first = diff.delete_before_replace if new.delete_before_replace is None else new.delete_before_replace
        detail = f"{'delete-before-replace' if delete_first else 'create-before-delete'}: {', '.join(replaces)}"
        if new.import_id:
            # step_generator.go continueStepsFromDiff: a replacement would change the id the goal
            # names, so an `up` fails (after the import step, saved); a preview warns and shows it.
            message = (
                "previously-imported resources that still specify an ID may not be replaced; please remove the "
                f"`import` declaration from your program ({new.name!r}, changed: {', '.join(replaces)})"
            )
            if not self.dry_run:
                raise StepFailed(message)
            detail += f"; warning: {message}"
        timed_out = self._fault(new, "replace")
        self._record("replace", new, detail)
        if not delete_first:
            try:
                self._create(provider, new, "create")
                self._time_out(new, timed_out)
            finally:
                if new.urn in self.new:
                    # step.go CreateStep.Apply marks the old resource `Delete` once the provider
                    # returned the new object, on a partial failure too; OnResourceStepPost saves a
                    # partial failure as a success. A create that failed outright leaves the old
                    # one as it was.
                    self.replaced.append(old)
            return
        for dependent in reversed(self._dependent_replacements(old)):
            if dependent.protect:
                raise StepFailed(
                    f"unable to replace resource {dependent.name!r} as part of replacing {old.name!r} "
                    "as it is currently marked for protection"
                )
            self._record("delete", dependent, f"replaced with {old.name}")
            self._delete(self.providers(dependent.type), dependent)
            self.deleted_early.add(dependent.urn)
        self._delete(provider, old)
        self.deleted_early.add(old.urn)
        self._create(provider, new, "create")
        self._time_out(new, timed_out)

    def _dependent_replacements(self, root: Resource) -> list[Resource]:
        """step_generator.go calculateDependentReplacements: transitive dependents in the old
        state whose inputs depend on a condemned resource and whose provider diff, with those
        inputs unknown, calls for a replacement."""
        condemned = {root.urn}
        found: list[Resource] = []
        for candidate in self.old_resources:
            if candidate.urn == root.urn or not candidate.custom or candidate.urn in self.new:
                continue
            if not candidate.depends_on() & (condemned | {r.urn for r in found}):
                continue
            unknown_keys = [k for k, urns in candidate.property_dependencies.items() if set(urns) & condemned]
            if not unknown_keys:
                continue
            inputs = {k: (UNKNOWN if k in unknown_keys else v) for k, v in candidate.inputs.items()}
            diff = self.providers(candidate.type).diff(candidate, inputs, candidate.ignore_changes)
            replaces = list(diff.replaces)
            if diff.changes and candidate.replace_on_changes:
                replaces += [k for k in diff.changed if any(_matches(p, k) for p in candidate.replace_on_changes)]
            if replaces:
                found.append(candidate)
                condemned.add(candidate.urn)
        return found

    def _delete(self, provider: Provider, old: Resource) -> None:
        if self.dry_run or old.retain_on_delete:
            return
        provider.delete(old)

    # -- after the program -----------------------------------------------------------------

    def finish(self) -> Checkpoint:
        """Run the deletes (unless the update failed) and return the checkpoint to save."""
        if self.error is None:
            try:
                self._deletes()
            except BaseException as err:
                self.error = err
        return self._checkpoint()

    def _deletes(self) -> None:
        removed = [r for r in self.old_resources if r.urn not in self.new and r.urn not in self.deleted_early]
        # Pending deletes of an earlier failed update go first: they are the oldest.
        condemned = [*self.pending_deletes, *removed, *self.replaced]
        order = {r.urn: i for i, r in enumerate(self.old_resources)}
        replacing = {id(r) for r in self.replaced}
        # Reverse dependency order: the checkpoint keeps dependencies before their dependents.
        ordered = sorted(condemned, key=lambda r: order.get(r.urn, -1), reverse=True)
        antichain = self._antichains(condemned)
        first: StepFailed | None = None
        # Kept because a protected resource that stays depends on them.
        kept: set[str] = set()
        # The antichain a failed delete was part of: only its other deletes were running.
        cancelled: int | None = None
        gone: set[int] = set()
        for old in ordered if self.rng is None else self._drawn(ordered, self.rng):
            if old.urn in kept:
                continue
            if cancelled is not None and (
                antichain[id(old)] != cancelled
                or any(id(o) not in gone and o is not old and old.urn in o.depends_on() for o in condemned)
            ):
                # deployment_executor.go performPostSteps waits for each antichain; once a delete
                # failed (cancelDueToError) no later antichain starts.
                continue
            is_replacement = id(old) in replacing
            if old.protect and not is_replacement:
                # step.go DeleteStep.Apply refuses (deleteProtectedError); step_executor.go
                # cancelDueToError continues past that error, and performPostSteps skips the
                # transitive dependencies of the errored step; the `up` fails at the end.
                first = first or StepFailed(f"resource {old.name!r} cannot be deleted because it is protected")
                kept |= self._dependencies_of(old)
                continue
            try:
                self.fault(old, "delete")
                self._record("delete", old, "replaced" if is_replacement else "")
                if old.custom:
                    self._delete(self.providers(old.type), old)
            except StepFailed as err:
                # Any other failure cancels the update; the deletes of its antichain that were
                # running alongside it still finish (executeChain stops only between steps).
                first = first or err
                cancelled = antichain[id(old)] if cancelled is None else cancelled
                continue
            gone.add(id(old))
            self.deleted_early.add(old.urn)
            self.replaced = [r for r in self.replaced if r is not old]
            # One not reached stays pending (the snapshot keeps it with `Delete`).
            self.pending_deletes = [r for r in self.pending_deletes if r is not old]
        if first is not None:
            raise first

    def _dependencies_of(self, resource: Resource) -> set[str]:
        """What a resource depends on, transitively, in the old state (deployment_executor.go
        performPostSteps, `dg.TransitiveDependenciesOf`): parent, dependencies, provider."""
        by_urn = {r.urn: r for r in self.old_resources}
        found: set[str] = set()
        todo = [*resource.depends_on(), resource.provider.rsplit("::", 1)[0]]
        while todo:
            urn = todo.pop()
            if urn in found or urn not in by_urn:
                continue
            found.add(urn)
            todo += [*by_urn[urn].depends_on(), by_urn[urn].provider.rsplit("::", 1)[0]]
        return found

    @staticmethod
    def _antichains(condemned: list[Resource]) -> dict[int, int]:
        """step_generator.go ScheduleDeletes: the deletes in rounds, each round the condemned
        resources none of whose dependencies is still condemned (run in reverse, in parallel
        within a round). The round of each, by `id`."""
        remaining = list(condemned)
        rounds: dict[int, int] = {}
        number = 0
        deps = {id(r): r.depends_on() - {r.urn} for r in remaining}
        while remaining:
            urns = {r.urn for r in remaining}
            this = [r for r in remaining if not deps[id(r)] & urns] or remaining[:1]
            for r in this:
                rounds[id(r)] = number
            remaining = [r for r in remaining if id(r) not in rounds]
            number += 1
        return rounds

    @staticmethod
    def _drawn(condemned: list[Resource], rng: random.Random) -> list[Resource]:
        """An order of the deletes drawn among those no remaining condemned resource depends on:
        the real engine deletes each such antichain in parallel (`ScheduleDeletes`,
        `step_executor.go`), so any of them may go first."""
        remaining, drawn = list(condemned), []
        # How many remaining resources (of another URN) depend on each URN: kept up to date as
        # they go, instead of asking every pair again for each pick (cubic in the deletes).
        deps = {id(o): o.depends_on() - {o.urn} for o in remaining}
        dependents: dict[str, int] = {}
        for o in remaining:
            for urn in deps[id(o)]:
                dependents[urn] = dependents.get(urn, 0) + 1
        while remaining:
            ready = [r for r in remaining if not dependents.get(r.urn)] or remaining[:1]
            pick = ready[rng.randrange(len(ready))]
            remaining.remove(pick)
            for urn in deps[id(pick)]:
                dependents[urn] -= 1
            drawn.append(pick)
        return drawn

    def _checkpoint(self) -> Checkpoint:
        kept: list[Resource] = list(self.new.values())
        pending: list[Resource] = list(self.pending_deletes)
        if self.error is not None:
            # Old resources the failed update never reached stay as they were; replaced ones
            # whose delete did not run stay pending.
            kept += [r for r in self.old_resources if r.urn not in self.new and r.urn not in self.deleted_early]
            pending += self.replaced
        registered = self.registered_outputs if self.registered_outputs is not None else {}
        # step_executor.go executeRegisterResourceOutputs, finalizing after an error: the old
        # outputs, with the keys registered during the failed update written over them.
        outputs = registered if self.error is None else {**self.old_outputs, **registered}
        return Checkpoint(resources=topological(kept), outputs=copy.deepcopy(outputs), pending_deletes=pending)


def refresh(checkpoint: Checkpoint, providers: Providers, on_step: Callable[[Step], None]) -> Checkpoint:
    """`pulumi refresh` (or the refresh of `up --refresh`): read each resource back; one that is
    gone leaves the state (pulumi `refresh` / `RefreshStep.Apply`).

    Pending deletes are read back too and stay pending (deploymentExecutor.refresh refreshes every
    resource of the old snapshot; rebuildBaseState keeps their `Delete` flag). A read's init errors
    replace the old ones: those of a partial Read (the object exists but is not ready: pulumi-
    kubernetes Read, `partialError`), none otherwise; and the inputs Read returns, when it returns
    any, replace the old ones (`RefreshStep.Apply`). Component and provider resources are kept as
    they are (`RefreshStep.Apply`)."""

    def read_back(resource: Resource) -> Resource | None:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            return resource
        provider = providers(resource.type)
        init_errors: list[str] = []
        try:
            live = provider.read(resource)
        except PartialFailure as partial:
            live, init_errors = partial.outputs, [str(partial)]
        on_step(Step("refresh", resource.urn, resource.type, resource.name, "gone" if live is None else ""))
        if live is None:
            return None
        refreshed = copy.copy(resource)
        refreshed.outputs = live
        refreshed.init_errors = init_errors
        # Optional: only providers whose Read returns inputs have it (provider.proto ReadResponse.inputs).
        read_inputs = getattr(provider, "read_inputs", None)
        inputs = read_inputs(resource, live) if read_inputs is not None else None
        if inputs is not None:
            refreshed.inputs = inputs
        return refreshed

    resources = [r for r in map(read_back, checkpoint.resources) if r is not None]
    pending = [r for r in map(read_back, checkpoint.pending_deletes) if r is not None]
    return Checkpoint(resources=resources, outputs=dict(checkpoint.outputs), pending_deletes=pending)


def protected_closure(resources: list[Resource]) -> set[str]:
    """What `pulumi destroy --exclude-protected` leaves: each protected resource and, transitively,
    what it depends on (parent, dependencies, provider) (pulumi `pkg/cmd/pulumi/operations/destroy.go`
    getProtectedExcludes)."""
    by_urn = {r.urn: r for r in resources}
    kept: set[str] = set()
    todo = [r.urn for r in resources if r.protect]
    while todo:
        urn = todo.pop()
        if urn in kept or urn not in by_urn:
            continue
        kept.add(urn)
        resource = by_urn[urn]
        # A provider reference is `<urn>::<id>`.
        todo += [*resource.depends_on(), resource.provider.rsplit("::", 1)[0]]
    return kept


def destroy(
    checkpoint: Checkpoint,
    providers: Providers,
    on_step: Callable[[Step], None],
    *,
    exclude_protected: bool = False,
    fault: Fault | None = None,
    rng: random.Random | None = None,
) -> tuple[Checkpoint, BaseException | None]:
    """`pulumi destroy`: no program runs, so every resource of the state is condemned and deleted
    in reverse dependency order, `retainOnDelete` ones as no-ops (`GenerateDeletes` with no
    registrations; `DeleteStep.Apply`). `DeleteStep.Apply` refuses a protected resource *before*
    its dry-run check, so the preview the CLI runs first fails and nothing is deleted; with
    `--exclude-protected` the protected resources and what they depend on stay in the state."""
    keep = protected_closure(checkpoint.resources) if exclude_protected else set()
    protected = [r for r in checkpoint.resources if r.protect and r.urn not in keep]
    if protected:
        names = ", ".join(r.name for r in protected)
        return checkpoint, StepFailed(f"preview failed: cannot delete protected resources: {names}")
    deployment = Deployment(checkpoint, providers, dry_run=False, fault=fault, on_step=on_step, rng=rng)
    for resource in checkpoint.resources:
        if resource.urn in keep:
            deployment.new[resource.urn] = resource
    # A destroy registers no outputs: what is left keeps the ones it had.
    deployment.registered_outputs = dict(checkpoint.outputs) if keep else {}
    saved = deployment.finish()
    return saved, deployment.error
