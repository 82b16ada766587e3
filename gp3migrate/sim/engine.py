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
  drawn from the `up`'s seed among those (`GenerateDeletes`, `ScheduleDeletes`); a protected one
  fails the `up` (`DeleteStep.Apply`, deleteProtectedError);
  `retainOnDelete` of the *old* state makes a delete a no-op (`DeleteStep.Apply`; pulumi/pulumi 13428);
- a failed step stops the `up`: later registrations are refused and no deletes run; what completed is
  saved (`step_executor.go` cancels on the first error); a create whose object exists but whose await
  failed is saved with init errors and re-awaited by an update next time (pulumi-kubernetes partial
  errors; `continueStepsFromDiff` `hasInitErrors`);
- stack outputs: replaced on success; on a failed update, the keys registered during it are written
  over the old ones, the rest kept (pulumi/pulumi PR 15754, `step_executor.go`
  executeRegisterResourceOutputs) — the Python SDK registers them once all exports have resolved;
- `--refresh` reads every resource back through its provider before the program runs;
- `pulumi destroy` runs no program: every resource of the state is a delete (`destroy` below).
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

    def read(self, old: Resource) -> dict[str, Any] | None: ...


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

    # -- what the monitor calls ------------------------------------------------------------

    def stack_outputs(self, stack: str) -> dict[str, Any]:
        return self._stack_outputs(stack)

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._invoke(token, args)

    def register_outputs(self, urn: str, outputs: dict[str, Any]) -> None:
        self.registered_outputs = copy.deepcopy(outputs)

    def register(self, registration: Registration) -> tuple[str, dict[str, Any]]:
        if self.error is not None:
            raise Bailed(f"the update was cancelled after an earlier failure: {self.error}")
        new = Resource.of(registration)
        try:
            self._step(new)
        except BaseException as err:
            self.error = err
            raise
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
            self.fault(new, op)
            self._record(op, new)
            self._create(provider, new, op)
            if op == "import":
                self._continue_from_import(provider, new)
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
            self.fault(new, "update")
            self._record("update", new, ", ".join(diff.changed) or "init errors")
            self._update(provider, old, new)
        elif imported:
            self.new[new.urn] = old
        else:
            self._record("same", new)
            new.id, new.outputs = old.id, copy.deepcopy(old.outputs)
            self.new[new.urn] = new

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
            new.outputs, new.init_errors = partial.outputs, [str(partial)]
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
        self.fault(new, "replace")
        self._record("replace", new, detail)
        if not delete_first:
            self._create(provider, new, "create")
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
        self.pending_deletes = []
        order = {r.urn: i for i, r in enumerate(self.old_resources)}
        replacing = {id(r) for r in self.replaced}
        # Reverse dependency order: the checkpoint keeps dependencies before their dependents.
        ordered = sorted(condemned, key=lambda r: order.get(r.urn, -1), reverse=True)
        for old in ordered if self.rng is None else self._drawn(ordered, self.rng):
            is_replacement = id(old) in replacing
            if old.protect and not is_replacement:
                raise StepFailed(f"resource {old.name!r} cannot be deleted because it is protected")
            self.fault(old, "delete")
            self._record("delete", old, "replaced" if is_replacement else "")
            if old.custom:
                self._delete(self.providers(old.type), old)
            self.deleted_early.add(old.urn)
            self.replaced = [r for r in self.replaced if r is not old]

    @staticmethod
    def _drawn(condemned: list[Resource], rng: random.Random) -> list[Resource]:
        """An order of the deletes drawn among those no remaining condemned resource depends on:
        the real engine deletes each such antichain in parallel (`ScheduleDeletes`,
        `step_executor.go`), so any of them may go first."""
        remaining, drawn = list(condemned), []
        while remaining:
            ready = [
                r for r in remaining if not any(o.urn != r.urn and r.urn in o.depends_on() for o in remaining)
            ] or remaining[:1]
            pick = ready[rng.randrange(len(ready))]
            remaining.remove(pick)
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
    gone leaves the state (pulumi `refresh` / `RefreshStep.Apply`)."""
    resources: list[Resource] = []
    for resource in checkpoint.resources:
        if not resource.custom:
            resources.append(resource)
            continue
        live = providers(resource.type).read(resource)
        on_step(Step("refresh", resource.urn, resource.type, resource.name, "gone" if live is None else ""))
        if live is None:
            continue
        refreshed = copy.copy(resource)
        refreshed.outputs = live
        resources.append(refreshed)
    return Checkpoint(resources=resources, outputs=dict(checkpoint.outputs))


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
