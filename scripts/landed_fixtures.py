"""Records what a stack applied by an earlier release holds, for tests/test_upgrade_state.py and
tests/sim/test_upgrade_scenario.py: run against a checkout of that release, it writes
tests/fixtures/landed/<commit>/ of this checkout.

Run from this checkout, with the earlier release checked out beside it with its own venv:

    git worktree add ../landed <commit> && make -C ../landed venv/.dev
    venv/bin/python -m scripts.landed_fixtures --tree ../landed

The recording itself runs in the earlier checkout's interpreter, with that checkout as the working
directory and first on sys.path (this file re-runs itself there with `--record`), so every module
it imports — `tests.mock_cloud`, the program, `gp3migrate.sim` — is the earlier release's. That is
why this file imports nothing but the standard library at the top: the same functions also run the
walks against the current checkout, in the tests.

What is recorded:
- `registrations.json`: the walks (stack file, entry keys, phases one `up` after another) and, for
  each `up`, every URN the program registered under Pulumi mocks (tests/mock_cloud.py) with its
  type; the stack files' config as that release ran it.
- `providers.json`: each dynamic-provider resource registered (type, name, URN, the id the mocks
  gave it, its inputs) and the `__provider` string it carries, as the Python SDK serialized it
  (pulumi/dynamic/dynamic.py `serialize_provider`: `dill.dumps(provider, recurse=True)`, base64).
  In state that string is a secret: the engine stores it encrypted and hands it to the provider
  host in plain text (the host answers Configure with `acceptSecrets: False`,
  pulumi/dynamic/__main__.py), which is the form kept here. Identical strings are kept once.
- `sim/<scenario>.json`: the simulation's checkpoint (gp3migrate/sim/engine.py `Checkpoint`,
  dataclasses as JSON) after the earlier release applied some phases on a seeded world.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import pickletools
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

PROJECT = "eks-gp3-migration"
PROVIDER_KEY = "__provider"  # pulumi/dynamic/dynamic.py PROVIDER_KEY
DYNAMIC_TYPE_PREFIX = "pulumi-python:dynamic"
HERE = Path(__file__).resolve()
CHECKOUT = HERE.parent.parent
FIXTURES = CHECKOUT / "tests" / "fixtures" / "landed"

_COPY_RENAME = {"strategy": "copy", "claimNaming": "rename"}
_COPY_SAME_NAME = {"strategy": "copy", "claimNaming": "same-name"}
_FORWARD = ["precopy", "cutover", "finalize", "cleanup"]


def _steps(phases: list[str], **last: Any) -> list[list[Any]]:
    """[phase, entry keys of that `up` only] pairs; `last` applies to the last `up`."""
    return [[phase, dict(last) if number == len(phases) - 1 else {}] for number, phase in enumerate(phases)]


# Each walk: a stack file (with config keys set over it), entry keys every `up` carries, and the
# `up`s in order ([phase, entry keys of that up]; phase None: the stack file as it is). Every
# strategy through each of its paths, the options that add or remove steps, the prod stack with
# and without a volume, and the rehearsal stack.
WALKS: list[dict[str, Any]] = [
    {"key": "dev/rehome", "stack": "dev", "entry": {}, "ups": _steps(_FORWARD)},
    {"key": "dev/rehome-rollback-precopy", "stack": "dev", "entry": {}, "ups": _steps(["precopy", "rollback"])},
    {
        "key": "dev/rehome-rollback-cutover",
        "stack": "dev",
        "entry": {},
        "ups": _steps(["precopy", "cutover", "rollback"]),
    },
    {"key": "dev/copy-rename", "stack": "dev", "entry": _COPY_RENAME, "ups": _steps(_FORWARD)},
    {"key": "dev/copy-same-name", "stack": "dev", "entry": _COPY_SAME_NAME, "ups": _steps(_FORWARD)},
    {
        "key": "dev/copy-keep-snapshots-delete-source",
        "stack": "dev",
        "entry": {**_COPY_RENAME, "keepSnapshots": True},
        "ups": [
            ["precopy", {}],
            ["cutover", {}],
            ["finalize", {"deleteSource": True}],
            ["cleanup", {}],
        ],
    },
    {
        "key": "dev/copy-rename-recut",
        "stack": "dev",
        "entry": _COPY_RENAME,
        "ups": _steps(["precopy", "cutover", "rollback", "precopy", "cutover"]),
    },
    {
        "key": "dev/copy-same-name-rollback",
        "stack": "dev",
        "entry": _COPY_SAME_NAME,
        "ups": _steps(["precopy", "cutover", "rollback"], deleteRestoredClaim=True),
    },
    {"key": "dev/modify", "stack": "dev", "entry": {"strategy": "modify"}, "ups": _steps(["precopy"])},
    {"key": "prod/platform", "stack": "prod", "entry": {}, "ups": [[None, {}]], "upstream": "dev/rehome"},
    {
        "key": "prod/rehome",
        "stack": "prod",
        # dev's volume, moved to a zone of prod's region (as tests/test_promotion.py does).
        "migrations_from": "dev",
        "entry": {"zone": "us-east-1a"},
        "ups": _steps(_FORWARD),
        "upstream": "dev/rehome",
    },
    {"key": "rehearsal/platform", "stack": "rehearsal", "entry": {}, "ups": [[None, {}]], "mocks": "rehearsal"},
]

# Simulated stacks the earlier release takes part of the way (tests/sim/test_upgrade_scenario.py
# continues them with the current program).
SIM_SCENARIOS: list[dict[str, Any]] = [
    {"key": "rehome-cutover", "entry": {}, "applied": ["precopy", "cutover"], "seed": 2001},
    {"key": "copy-rename-cutover", "entry": _COPY_RENAME, "applied": ["precopy", "cutover"], "seed": 2002},
]
SIM_DRIVER: Literal["addon"] = "addon"


# -- what a pickled provider names ---------------------------------------------------------------


def pickled_globals(serialized: str) -> list[tuple[str, str]]:
    """(module, qualified name) of every global a serialized provider refers to, read from the
    pickle's opcodes without importing anything: GLOBAL names both (protocols 0-3); STACK_GLOBAL
    (protocol 4 on) takes the last two strings pushed, each either just written or fetched back
    from the memo."""
    found: list[tuple[str, str]] = []
    pushed: list[str | None] = []
    memo: dict[int, str | None] = {}
    for opcode, arg, _ in pickletools.genops(base64.b64decode(serialized)):
        name = opcode.name
        if name == "GLOBAL":
            module, qualname = str(arg).split(" ", 1)
            found.append((module, qualname))
            pushed.append(None)
        elif name == "STACK_GLOBAL":
            operands = pushed[-2], pushed[-1]
            if operands[0] is None or operands[1] is None:
                raise ValueError("STACK_GLOBAL without two strings before it")
            found.append((operands[0], operands[1]))
            pushed.append(None)
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(str(arg))
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(str(arg))] = pushed[-1] if pushed else None
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(str(arg))))
        elif name not in ("PROTO", "FRAME", "STOP"):
            pushed.append(None)
    return found


# Modules whose globals are pickle's and dill's own machinery, not the provider's class.
_PICKLE_MACHINERY = ("copyreg", "builtins", "__builtin__", "dill._dill", "dill")


def provider_class(serialized: str) -> str:
    """`module.qualname` of the provider's class: the first global the pickle names outside
    pickle's and dill's machinery (dill pickles an instance of a class in an importable module by
    reference: module and name)."""
    module, name = next((m, n) for m, n in pickled_globals(serialized) if m not in _PICKLE_MACHINERY)
    return f"{module}.{name}"


# -- running a walk under mocks (in whichever checkout is first on sys.path) -------------------


@dataclasses.dataclass
class Registered:
    urn: str
    type: str
    name: str
    parent: str
    id: str
    custom: bool
    inputs: dict[str, Any]
    # Alias specs as sent (pulumi alias.proto Alias.Spec fields, or {"urn": ...}).
    aliases: list[dict[str, Any]]


@dataclasses.dataclass
class WalkRun:
    key: str
    stack: str
    phase: str | None
    registered: list[Registered]
    outputs: dict[str, Any]


def _plain(value: Any) -> Any:
    """A registration's inputs as the provider host receives them: secrets unwrapped."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@contextmanager
def _recording_monitor(seen: dict[str, dict[str, Any]]) -> Iterator[None]:
    """tests/mock_cloud.py's monitor, also keeping each request's aliases and the id answered."""
    from tests import mock_cloud

    base = mock_cloud.RecordingMonitor

    class AliasRecordingMonitor(base):  # type: ignore[misc, valid-type]
        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
            response = super().RegisterResource(request)
            aliases = []
            for alias in request.aliases:
                if alias.HasField("spec"):
                    spec = alias.spec
                    aliases.append(
                        {
                            "name": spec.name,
                            "type": spec.type,
                            "stack": spec.stack,
                            "project": spec.project,
                            "parentUrn": spec.parentUrn,
                            "noParent": spec.noParent,
                        }
                    )
                else:
                    aliases.append({"urn": alias.urn})
            seen[response.urn] = {"id": response.id, "aliases": aliases}
            return response

    mock_cloud.RecordingMonitor = AliasRecordingMonitor  # type: ignore[misc]
    try:
        yield
    finally:
        mock_cloud.RecordingMonitor = base  # type: ignore[misc]


@contextmanager
def _mocks(kind: str | None) -> Iterator[None]:
    with ExitStack() as stack:
        if kind == "rehearsal":
            import pytest

            from tests import rehearsal_mocks

            rehearsal_mocks.install(stack.enter_context(pytest.MonkeyPatch.context()))
        yield


def stack_configs() -> dict[str, dict[str, Any]]:
    """The stack files' config of the checkout first on sys.path (tests/fixtures/stacks)."""
    from tests import mock_cloud

    return {stack: mock_cloud.stack_config(stack) for stack in ("dev", "prod", "rehearsal")}


def walk_config(
    walk: dict[str, Any], configs: dict[str, dict[str, Any]], phase: str | None, keys: dict[str, Any]
) -> dict[str, Any]:
    config = json.loads(json.dumps(configs[walk["stack"]]))
    migrations_key = f"{PROJECT}:migrations"
    if walk.get("migrations_from"):
        config[migrations_key] = json.loads(json.dumps(configs[walk["migrations_from"]][migrations_key]))
    for entry in config.get(migrations_key) or []:
        entry.update(walk["entry"])
        entry.update(keys)
        if phase is not None:
            entry["phase"] = phase
    return config


def run_walks(configs: dict[str, dict[str, Any]], walks: list[dict[str, Any]] = WALKS) -> list[WalkRun]:
    """Every walk's `up`s under mocks, each reading the previous one's outputs, in the checkout
    first on sys.path. A run that fails raises: the walks are all meant to be applied."""
    from tests import mock_cloud

    runs: list[WalkRun] = []
    last_outputs: dict[str, dict[str, Any]] = {}
    for walk in walks:
        previous: dict[str, Any] = {}
        upstream = walk.get("upstream")
        others = {mock_cloud.stack_name("dev"): last_outputs[upstream]} if upstream else None
        for phase, keys in walk["ups"]:
            seen: dict[str, dict[str, Any]] = {}
            with _mocks(walk.get("mocks")), _recording_monitor(seen):
                run = mock_cloud.run_program(
                    walk_config(walk, configs, phase, keys),
                    stack=walk["stack"],
                    previous_outputs=previous,
                    other_stacks=others,
                )
            if run.error is not None:
                raise RuntimeError(f"{walk['key']} {phase}: {run.error}")
            registered = [
                Registered(
                    urn=r.urn,
                    type=r.type,
                    name=r.name,
                    parent=r.parent,
                    id=seen[r.urn]["id"],
                    custom=r.custom,
                    inputs=_plain(r.inputs),
                    aliases=seen[r.urn]["aliases"],
                )
                for r in run.registrations
            ]
            runs.append(WalkRun(walk["key"], walk["stack"], phase, registered, run.outputs))
            previous = run.outputs
        last_outputs[walk["key"]] = previous
    return runs


def run_key(number: int, run: WalkRun) -> str:
    """`<walk>#<n>:<phase>`: a walk may apply one phase twice (a second cutover after a rollback)."""
    return f"{run.key}#{number}:{run.phase or 'stack-file'}"


def keyed_runs(runs: list[WalkRun]) -> dict[str, WalkRun]:
    out: dict[str, WalkRun] = {}
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.key] = counts.get(run.key, 0) + 1
        out[run_key(counts[run.key], run)] = run
    return out


# -- the simulation ---------------------------------------------------------------------------


def sim_base_config(scenario: dict[str, Any]) -> dict[str, Any]:
    from tests.stacks import dev_config

    config = dev_config()
    for entry in config.get("migrations") or []:
        entry.update(scenario["entry"])
    return config


def checkpoint_document(checkpoint: Any) -> dict[str, Any]:
    """gp3migrate/sim/engine.py Checkpoint as JSON, in one order whatever the run: resources in
    the engine's own dependency order (`topological`, which deletes run in reverse of) taken from
    URN order, since the order of independent resources is the seeded draw among the SDK's
    outstanding calls, which varies with the process; dependency lists sorted (a set's order)."""
    from gp3migrate.sim.engine import topological

    document = dataclasses.asdict(
        dataclasses.replace(checkpoint, resources=topological(sorted(checkpoint.resources, key=lambda r: r.urn)))
    )
    for resource in [*document["resources"], *document["pending_deletes"]]:
        resource["dependencies"] = sorted(resource["dependencies"])
        resource["property_dependencies"] = {k: sorted(v) for k, v in resource["property_dependencies"].items()}
    return document


def sim_apply(sim: Any, phase: str, *, refresh_first: bool = False) -> Any:
    """One `up` with every entry at `phase`, then the user's part (tests/sim/test_scenarios.py `up`)."""
    from gp3migrate.sim.rehearsal import repoint_renamed_workloads

    config = sim.with_entries(phase=phase)
    result = sim.up(config, refresh_first=refresh_first)
    if result.ok:
        sim.config = config
        repoint_renamed_workloads(sim, config)
    return result


def record_sim(scenario: dict[str, Any]) -> dict[str, Any]:
    from gp3migrate.sim.scenario import Simulation

    config = sim_base_config(scenario)
    with Simulation(config, stack="dev", seed=scenario["seed"], driver=SIM_DRIVER) as sim:
        for phase in scenario["applied"]:
            result = sim_apply(sim, phase)
            if not result.ok:
                raise RuntimeError(f"sim {scenario['key']} {phase}: {result.error}")
        return {
            "scenario": scenario,
            "driver": SIM_DRIVER,
            "config": config,
            "checkpoint": checkpoint_document(sim.checkpoint),
        }


# -- the recording (in the earlier checkout) and the writing (here) -------------------------------


def record(out: Path) -> None:
    """Runs in the earlier checkout's interpreter: everything the fixtures hold, as one document."""
    configs = stack_configs()
    runs = run_walks(configs)
    document = {
        "configs": configs,
        "runs": {
            key: {"stack": run.stack, "phase": run.phase, "registered": [dataclasses.asdict(r) for r in run.registered]}
            for key, run in keyed_runs(runs).items()
        },
        "sim": [record_sim(scenario) for scenario in SIM_SCENARIOS],
    }
    out.write_text(json.dumps(document, sort_keys=True))


def _fixtures(recorded: dict[str, Any], commit: str) -> dict[str, Any]:
    """File name -> JSON document, small: URNs kept once, each provider string kept once."""
    urns: dict[str, str] = {}
    runs: dict[str, Any] = {}
    for key, run in recorded["runs"].items():
        for r in run["registered"]:
            urns[r["urn"]] = r["type"]
        runs[key] = {"stack": run["stack"], "phase": run["phase"], "urns": sorted(r["urn"] for r in run["registered"])}
    urn_table = sorted(urns)
    index = {urn: number for number, urn in enumerate(urn_table)}
    for run in runs.values():
        run["urns"] = [index[urn] for urn in run["urns"]]

    providers: dict[str, str] = {}
    resources: dict[tuple[str, str], dict[str, Any]] = {}
    for key, run in recorded["runs"].items():
        for r in run["registered"]:
            if not r["type"].startswith(DYNAMIC_TYPE_PREFIX):
                continue
            serialized = r["inputs"][PROVIDER_KEY]
            name = provider_class(serialized)
            known = [k for k, v in providers.items() if v == serialized]
            if known:
                name = known[0]
            else:
                base, suffix = name, 2
                while name in providers:
                    name, suffix = f"{base}#{suffix}", suffix + 1
                providers[name] = serialized
            inputs = {k: v for k, v in r["inputs"].items() if k != PROVIDER_KEY}
            identity = (r["urn"], json.dumps(inputs, sort_keys=True))
            entry = resources.setdefault(
                identity,
                {
                    "urn": r["urn"],
                    "type": r["type"],
                    "name": r["name"],
                    "id": r["id"],
                    "provider": name,
                    "inputs": inputs,
                    "runs": [],
                },
            )
            entry["runs"].append(key)
    return {
        "registrations.json": {
            "commit": commit,
            "walks": WALKS,
            "configs": recorded["configs"],
            "urns": [[urn, urns[urn]] for urn in urn_table],
            "runs": runs,
        },
        "providers.json": {
            "commit": commit,
            "providers": providers,
            "resources": sorted(resources.values(), key=lambda e: (e["urn"], e["runs"][0])),
        },
        **{f"sim/{sim['scenario']['key']}.json": {"commit": commit, **sim} for sim in recorded["sim"]},
    }


README = """# Pulumi state of the release {commit}, for the upgrade tests

What a stack applied by commit {commit} holds: every URN it registered for each walk of
`scripts/landed_fixtures.py` (`registrations.json`), each dynamic-provider resource with the
pickled `__provider` string its state carries (`providers.json`), and simulated checkpoints after
some of its phases (`sim/`). Read by `tests/test_upgrade_state.py` and
`tests/sim/test_upgrade_scenario.py`; generated, not edited by hand.

A regeneration writes the same files, but for the `uid` and `resourceVersion` the simulated API
server gave two objects created independently in the same `up`: which came first is drawn among
the SDK's outstanding calls, and that draw varies with the process (the tests ignore both fields).

Regenerate from this checkout (the earlier release checked out beside it, with its own venv):
`git worktree add ../landed {commit} && make -C ../landed venv/.dev`, then
`venv/bin/python -m scripts.landed_fixtures --tree ../landed`.
"""


def write(tree: Path, out_root: Path = FIXTURES) -> Path:
    """Records in `tree` (a checkout of the earlier release with its venv) and writes the fixtures
    under `out_root/<short commit>/`."""
    tree = tree.resolve()
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if dirty:
        raise SystemExit(f"{tree} has uncommitted changes: the fixtures must be what commit {commit} does")
    python = tree / "venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `make -C {tree} venv/.dev` first")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "recorded.json"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run(
            [str(python), str(HERE), "--record", str(out)],
            cwd=tree,
            env={**env, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"},
            check=True,
        )
        recorded = json.loads(out.read_text())
    target = out_root / commit
    for name, document in _fixtures(recorded, commit).items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    (target / "README.md").write_text(README.format(commit=commit))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="a checkout of the earlier release, with venv/ (make venv/.dev)")
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.record is not None:
        # In the earlier checkout: its tests/, gp3migrate/ and components/ first on sys.path.
        sys.path.insert(0, os.getcwd())
        record(args.record)
        return 0
    if args.tree is None:
        parser.error("--tree is required")
    print(write(args.tree))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
