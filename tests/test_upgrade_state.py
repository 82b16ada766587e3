"""A stack applied by the release before this one still previews and applies with this one.

Pulumi state outlives the code that wrote it. Each dynamic resource (components' proof steps and
driver check) keeps in its state the provider that created it, pickled: the Python SDK stores
`dill.dumps(provider, recurse=True)`, base64, in the `__provider` property (pulumi/dynamic/dynamic.py
`serialize_provider`, `Resource.__init__`). dill pickles an instance of a class of an importable
module by reference, so what state holds is a module path and a class name
(`components.gates._ScaleProvider`). The provider host (the CLI's `pulumi-resource-pulumi-python`
shim: `$PULUMI_RUNTIME_VIRTUALENV/bin/python -u -m pulumi.dynamic`, from the program's directory)
unpickles it in `get_provider(props)` (pulumi/dynamic/__main__.py): from the *old* state's
properties for Delete and Read always, and for Check and Diff when the new inputs' provider is
unknown (`news[PROVIDER_KEY] == rpc.UNKNOWN`; a branch pulumi 3.272 never takes, see the strict
xfail below). A module path that no longer imports strands the stack: the refresh and the delete
of every step created before the move fail, so no later phase can be applied.

The fixtures are what commit 78a35ac (the release before the restructure into packages) registered
under mocks (tests/fixtures/landed/78a35ac, scripts/landed_fixtures.py). Here:
- each pickled provider class resolves in a fresh interpreter started as the host starts, to the
  class the current program pickles for the same resource;
- a fresh provider host process reads and deletes each step from the old state, and checks and
  diffs the current program's inputs against it as the first `up` after the upgrade does: every
  step unchanged (no replace, so no one-way step runs again);
- every path such state names imports as the module now in its place (gp3migrate/legacy_paths.py),
  and state written from now on names real modules only;
- every URN the release registered is registered again, or named by a Pulumi alias (a URN that
  changes with no alias is a delete and a create).

What this does not prove: the engine and the CLI's shim themselves (the host is started with the
command the shim runs; the requests are built here as the engine sends them, secrets already
unwrapped since the host declines secrets), nor a pickle written by a release other than 78a35ac.
The simulated upgrade is tests/sim/test_upgrade_scenario.py.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from gp3migrate.legacy_paths import LEGACY_MODULES
from scripts import landed_fixtures
from scripts.landed_fixtures import PROVIDER_KEY, Registered, WalkRun, pickled_globals
from tests.import_graph import project_modules
from tests.mock_cloud import PROJECT_DIR

LANDED = "78a35ac"
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "landed" / LANDED
PROVIDERS: dict[str, Any] = json.loads((FIXTURES / "providers.json").read_text())
REGISTRATIONS: dict[str, Any] = json.loads((FIXTURES / "registrations.json").read_text())
# pulumi/runtime/rpc.py UNKNOWN: how the engine sends a value not known yet.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def landed_resources(provider: str) -> list[dict[str, Any]]:
    return [r for r in PROVIDERS["resources"] if r["provider"] == provider]


def landed_urns(run_key: str) -> list[str]:
    return [REGISTRATIONS["urns"][number][0] for number in REGISTRATIONS["runs"][run_key]["urns"]]


# -- the current program on the same walks ----------------------------------------------------


@pytest.fixture(scope="module")
def current() -> dict[str, WalkRun]:
    """The current program, under mocks, on the landed release's walks and stack files."""
    return landed_fixtures.keyed_runs(landed_fixtures.run_walks(REGISTRATIONS["configs"], REGISTRATIONS["walks"]))


def _parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of `urn:pulumi:<stack>::<project>::<qualified type>::<name>`."""
    head, project, qualified, *name = urn.split("::")
    return head.removeprefix("urn:pulumi:"), project, qualified, "::".join(name)


def _urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A resource's URN: its type qualified by its parent's, except below the stack itself
    (pulumi/runtime/resource.py create_urn)."""
    qualified = type_
    if parent:
        parent_type = _parts(parent)[2]
        if parent_type != "pulumi:pulumi:Stack":
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _resolved(alias: dict[str, Any], registration: Registered, stack: str, project: str) -> str:
    """An alias as a URN: a spec leaves unset what stays as it is (pulumi alias.proto Alias.Spec;
    no parent field: the resource's own parent)."""
    if alias.get("urn"):
        return str(alias["urn"])
    parent = "" if alias["noParent"] else alias["parentUrn"] or registration.parent
    return _urn(
        alias["stack"] or stack,
        alias["project"] or project,
        parent,
        alias["type"] or registration.type,
        alias["name"] or registration.name,
    )


def known_as(registration: Registered, by_urn: dict[str, Registered]) -> set[str]:
    """Every URN the engine matches this registration to in the old state: its own, each of its
    aliases, and each of those under every other URN its parent is known as — a child inherits its
    parent's aliases, and a child named after its parent follows a rename of the parent
    (pulumi/runtime/resource.py all_aliases, inherited_child_alias)."""
    stack, project, _, _ = _parts(registration.urn)
    own = {registration.urn} | {_resolved(a, registration, stack, project) for a in registration.aliases}
    names = set(own)
    parent = by_urn.get(registration.parent)
    if parent is None:
        return names
    for parent_alias in known_as(parent, by_urn) - {parent.urn}:
        parent_alias_name = _parts(parent_alias)[3]
        for urn in own:
            qualified, name = _parts(urn)[2:]
            if name.startswith(parent.name):
                name = parent_alias_name + name[len(parent.name) :]
            names.add(_urn(stack, project, parent_alias, qualified.rsplit("$", 1)[-1], name))
    return names


def test_the_alias_reader_follows_a_parent_renamed_or_retyped_with_an_alias() -> None:
    stack_urn = "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev"

    def spec(**fields: Any) -> dict[str, Any]:
        return {"name": "", "type": "", "stack": "", "project": "", "parentUrn": "", "noParent": False, **fields}

    def registered(urn: str, parent: str, aliases: list[dict[str, Any]]) -> Registered:
        _, _, qualified, name = _parts(urn)
        return Registered(urn, qualified.rsplit("$", 1)[-1], name, parent, "", True, {}, aliases)

    parent_urn = "urn:pulumi:dev::p::p:index:Migration::new"
    child_urn = "urn:pulumi:dev::p::p:index:Migration$pulumi-python:dynamic:Resource::new-quiesce"
    for aliases, old_child in (
        ([spec(type="p:index:OldMigration")], "p:index:OldMigration$pulumi-python:dynamic:Resource::new-quiesce"),
        ([spec(name="old")], "p:index:Migration$pulumi-python:dynamic:Resource::old-quiesce"),
        ([], None),
    ):
        parent = registered(parent_urn, stack_urn, aliases)
        child = registered(child_urn, parent_urn, [])
        found = known_as(child, {parent_urn: parent, child_urn: child})
        assert found - {child_urn} == ({f"urn:pulumi:dev::p::{old_child}"} if old_child else set())


def current_registration(run: WalkRun, urn: str) -> Registered:
    by_urn = {r.urn: r for r in run.registered}
    found = [r for r in run.registered if urn in known_as(r, by_urn)]
    assert len(found) == 1, f"{run.key} {run.phase}: {len(found)} registrations are {urn}"
    return found[0]


@pytest.mark.parametrize("run_key", sorted(REGISTRATIONS["runs"]))
def test_every_urn_the_landed_release_registered_is_registered_or_aliased(
    current: dict[str, WalkRun], run_key: str
) -> None:
    run = current[run_key]
    by_urn = {r.urn: r for r in run.registered}
    matched = set().union(*(known_as(r, by_urn) for r in run.registered))
    # A URN left out becomes a delete of what the release created (and a create of its successor).
    assert sorted(set(landed_urns(run_key)) - matched) == []


# -- the pickled providers ---------------------------------------------------------------------


def test_the_fixtures_hold_every_provider_class_the_program_has(current: dict[str, WalkRun]) -> None:
    """The walks reach every dynamic-provider class: none that state can name is left untested."""
    landed = {landed_fixtures.provider_class(s) for s in PROVIDERS["providers"].values()}
    now = {
        landed_fixtures.provider_class(r.inputs[PROVIDER_KEY])
        for run in current.values()
        for r in run.registered
        if PROVIDER_KEY in r.inputs
    }
    assert len(landed) == len(now) == 9
    assert {name.rsplit(".", 1)[1] for name in landed} == {name.rsplit(".", 1)[1] for name in now}


def test_a_landed_provider_names_only_its_class() -> None:
    """Pickled by reference, with no state of its own: the class is all an upgrade must keep."""
    for name, serialized in PROVIDERS["providers"].items():
        assert pickled_globals(serialized) == [tuple(name.rsplit(".", 1))]


def _named_by_landed_state() -> set[tuple[str, str]]:
    """(module, name) of every global any landed release's pickled providers name."""
    return {
        pair
        for path in sorted((PROJECT_DIR / "tests" / "fixtures" / "landed").glob("*/providers.json"))
        for serialized in json.loads(path.read_text())["providers"].values()
        for pair in pickled_globals(serialized)
    }


def test_every_path_landed_state_names_imports_as_the_module_now_in_its_place() -> None:
    for module_name, name in sorted(_named_by_landed_state()):
        module = importlib.import_module(module_name)
        now = LEGACY_MODULES.get(module_name, module_name)
        # The very module (not a copy): restored providers share its globals and classes.
        assert module is importlib.import_module(now), module_name
        assert module.__name__ == module.__spec__.name == now, module_name  # type: ignore[union-attr]
        assert getattr(module, name).__qualname__ == name


def test_each_alias_is_an_old_path_state_names_for_a_module_that_exists() -> None:
    modules = project_modules(PROJECT_DIR)
    named = {module for module, _ in _named_by_landed_state()}
    # An alias never stands where a module is (it would shadow nothing: the finder comes last, but
    # a module back at an old path must be the one state restores), and each answers a fixture.
    assert sorted(set(LEGACY_MODULES) & set(modules)) == []
    assert sorted(set(LEGACY_MODULES) - named) == []
    assert sorted(set(LEGACY_MODULES.values()) - set(modules)) == []


def test_state_written_from_now_on_names_only_modules_at_their_own_path(current: dict[str, WalkRun]) -> None:
    modules = project_modules(PROJECT_DIR)
    pickled = {
        module
        for run in current.values()
        for r in run.registered
        if PROVIDER_KEY in r.inputs
        for module, _ in pickled_globals(r.inputs[PROVIDER_KEY])
    }
    assert pickled and sorted(pickled - set(modules)) == []
    assert sorted(pickled & set(LEGACY_MODULES)) == []


# As pulumi/dynamic/__main__.py get_provider restores a provider: base64, then dill.loads inside
# pulumi.runtime._serialization._deserialize; then what it restored to.
_RESTORE = """
import base64, json, sys
import dill
from pulumi.dynamic import ResourceProvider
from pulumi.runtime._serialization import _deserialize

serialized = sys.stdin.read()
provider = _deserialize(lambda: dill.loads(base64.b64decode(serialized)))
cls = type(provider)
print(json.dumps({
    "class": cls.__module__ + "." + cls.__qualname__,
    "is_provider": isinstance(provider, ResourceProvider),
    "mro": [c.__module__ + "." + c.__qualname__ for c in cls.__mro__],
}))
"""


def _host_environment() -> dict[str, str]:
    """The test's environment without PYTHONPATH: the host finds the project's modules from its
    working directory (sys.path[0] of `python -m` and `python -c`) or the installed package."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _current_class(current: dict[str, WalkRun], provider: str) -> str:
    """The class the current program pickles for the resources the landed release pickled as `provider`."""
    classes = set()
    for resource in landed_resources(provider):
        run_key = resource["runs"][0]
        serialized = current_registration(current[run_key], resource["urn"]).inputs[PROVIDER_KEY]
        classes.add(landed_fixtures.provider_class(serialized))
    assert len(classes) == 1, classes
    return classes.pop()


@pytest.mark.parametrize("provider", sorted(PROVIDERS["providers"]))
def test_a_landed_provider_restores_in_a_fresh_interpreter_to_the_current_class(
    current: dict[str, WalkRun], provider: str
) -> None:
    # The venv's python (this one), from the project root, as the provider host is started.
    done = subprocess.run(
        [sys.executable, "-c", _RESTORE],
        input=PROVIDERS["providers"][provider],
        cwd=PROJECT_DIR,
        env=_host_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    restored = json.loads(done.stdout.splitlines()[-1])
    assert restored["is_provider"]
    assert restored["class"] == _current_class(current, provider)
    # The same name it was pickled under, wherever its module now lives.
    assert restored["class"].rsplit(".", 1)[1] == provider.rsplit(".", 1)[1]


# -- a provider host, as the engine talks to it --------------------------------------------------


@dataclass
class Host:
    process: subprocess.Popen[bytes]
    stub: Any

    def call(self, method: str, request: Any) -> Any:
        import grpc

        try:
            return getattr(self.stub, method)(request, timeout=60)
        except grpc.RpcError as err:
            # The host aborts with the provider's traceback (_abort_with_traceback).
            raise AssertionError(f"{method} failed in the provider host:\n{err.details()}") from None  # type: ignore[attr-defined]


@contextmanager
def provider_host() -> Iterator[Host]:
    """A fresh `python -u -m pulumi.dynamic` from the project root: the command the CLI's
    pulumi-resource-pulumi-python shim runs. It prints its port, then serves ResourceProvider."""
    import grpc
    from pulumi.runtime.proto import provider_pb2_grpc

    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.dynamic"],
        cwd=PROJECT_DIR,
        env=_host_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), f"the provider host did not start: {process.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Host(process, provider_pb2_grpc.ResourceProviderStub(channel))
    finally:
        process.kill()
        process.wait(timeout=30)


def _struct(values: dict[str, Any]) -> Any:
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _plain(struct: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    return dict(json_format.MessageToDict(struct))


def _landed_state(resource: dict[str, Any]) -> dict[str, Any]:
    """A landed resource's properties in state: under mocks its outputs are its inputs, and the host
    adds `__provider` to what it returns (Create, Read)."""
    return {**resource["inputs"], PROVIDER_KEY: PROVIDERS["providers"][resource["provider"]]}


@pytest.mark.parametrize("provider", sorted(PROVIDERS["providers"]))
def test_a_fresh_provider_host_serves_the_landed_state(current: dict[str, WalkRun], provider: str) -> None:
    from pulumi.runtime.proto import provider_pb2

    serialized = PROVIDERS["providers"][provider]
    resources = landed_resources(provider)
    assert resources
    with provider_host() as host:
        host.call("Configure", provider_pb2.ConfigureRequest(args=_struct({}), acceptSecrets=True))
        for resource in resources:
            urn, id_ = resource["urn"], resource["id"]
            olds = _landed_state(resource)
            where = f"{resource['name']} ({resource['runs'][0]})"

            # The first `up` after the upgrade: the new program's inputs, its own provider known,
            # checked, then diffed against the old state. Unchanged: no step runs again, none is
            # replaced.
            news = current_registration(current[resource["runs"][0]], urn).inputs
            checked = host.call("Check", provider_pb2.CheckRequest(urn=urn, olds=_struct(olds), news=_struct(news)))
            assert list(checked.failures) == [], where
            diff = host.call("Diff", provider_pb2.DiffRequest(id=id_, urn=urn, olds=_struct(olds), news=_struct(news)))
            assert diff.changes == provider_pb2.DiffResponse.DIFF_NONE, where

            # `pulumi refresh` (or `up --refresh`), and the delete when a later phase drops the
            # step: the provider the old state carries, get_provider(properties).
            read = host.call(
                "Read", provider_pb2.ReadRequest(id=id_, urn=urn, properties=_struct(olds), inputs=_struct(olds))
            )
            assert read.id == id_ and _plain(read.properties)[PROVIDER_KEY] == serialized, where
            host.call("Delete", provider_pb2.DeleteRequest(id=id_, urn=urn, properties=_struct(olds)))


@pytest.mark.xfail(
    strict=True,
    reason="pulumi 3.272 dynamic/__main__.py Check and Diff compare news['__provider'] with the string "
    "rpc.UNKNOWN, but deserialize_properties(..., keep_unknowns=True) yields an output.Unknown(): the branch "
    "that restores the old provider is never taken, and an unknown new provider fails the host whatever "
    "the old state names. The program's providers carry no Output, so theirs is always known.",
)
def test_with_the_new_provider_unknown_the_host_diffs_with_the_landed_one() -> None:
    """Strict: once the SDK takes the old state's provider here, this passes, fails as XPASS, and
    the marker goes, leaving one more path that restores a landed provider under test."""
    from pulumi.runtime.proto import provider_pb2

    resource = landed_resources("components.gates._ScaleProvider")[0]
    olds = _landed_state(resource)
    news = {**resource["inputs"], PROVIDER_KEY: UNKNOWN}
    with provider_host() as host:
        host.call("Configure", provider_pb2.ConfigureRequest(args=_struct({}), acceptSecrets=True))
        request = provider_pb2.DiffRequest(
            id=resource["id"], urn=resource["urn"], olds=_struct(olds), news=_struct(news)
        )
        assert host.call("Diff", request).changes == provider_pb2.DiffResponse.DIFF_NONE
