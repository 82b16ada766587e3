"""`gp3migrate k8s-rbac --stack <stack>`: the Kubernetes rights printed are the ones the code uses
(issue 23 item 6), tested as `iam-policy` is (tests/test_runner_policy.py).

A scan of the source finds every kubernetes client method the program's own code and discovery
reference; each must have an entry, and each entry's rule must be what that method's HTTP method
and path need (read from the kubernetes client's generated code). The real program runs under
mocks through every phase of every strategy for dev, prod, rehearsal and the platform branches;
every kind it registers must be one the stack's rules cover. Not proven: what pulumi-kubernetes
calls beyond its await.go as read, what a chart installs beyond the kinds listed, admission.
"""

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from gp3migrate.config import window_owners
from gp3migrate.iam import k8s_rbac
from tests import rehearsal_mocks
from tests.mock_cloud import PROJECT_DIR, STACKS_DIR, run_program, stack_name
from tests.test_iam_requests import SHAPES, with_changes
from tests.test_runner_policy import (
    DEV,
    EVERY_STRATEGY_LIFECYCLES,
    KEY,
    LIFECYCLES,
    PROD,
    PROD_ENTRY,
    REHEARSAL,
    REHEARSAL_ENTRY,
    entries_of_every_strategy,
    settings_of,
    walk,
    with_phases,
)

APIS = (
    kubernetes.client.CoreV1Api,
    kubernetes.client.AppsV1Api,
    kubernetes.client.StorageV1Api,
    kubernetes.client.ApiextensionsV1Api,
    kubernetes.client.CustomObjectsApi,
    kubernetes.client.AutoscalingV2Api,
)
METHODS = {name: api for api in APIS for name in dir(api) if not name.startswith("_")}
RUNNER_SOURCES = [PROJECT_DIR / "gp3migrate" / "checks", PROJECT_DIR / "components"]
DISCOVERY_SOURCES = [PROJECT_DIR / "gp3migrate" / "discovery"]


@pytest.fixture(autouse=True)
def rehearsal_cloud(monkeypatch):
    return rehearsal_mocks.install(monkeypatch)


def kube_calls(roots: list[Path]) -> set[str]:
    """Every attribute named like a kubernetes client API method (called, or passed on as a list
    call to a pager)."""
    found = set()
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in METHODS and not node.attr.endswith("_with_http_info"):
                found.add(node.attr)
    return found


def http_of(method: str) -> tuple[str, str]:
    source = inspect.getsource(getattr(METHODS[method], f"_{method}_serialize"))
    (verb,) = re.findall(r"method='(\w+)'", source)
    (path,) = re.findall(r"resource_path='([^']+)'", source)
    return verb, path


def rule_of(verb: str, path: str) -> tuple[str, str, str, bool]:
    """(group, resource, RBAC verb, namespaced) of a request (Kubernetes docs, "Authorization":
    request verbs; a GET of a collection is `list`)."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    namespaced = rest[:1] == ["namespaces"] and len(rest) > 2
    if namespaced:
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    rbac = {"GET": "get" if named else "list", "PATCH": "patch", "PUT": "update", "POST": "create"}.get(verb)
    rbac = rbac or ("delete" if named else "deletecollection")
    return group, resource, rbac, namespaced


def test_the_scan_finds_client_calls_and_list_calls_passed_on():
    assert {"read_namespaced_persistent_volume_claim", "patch_namespaced_deployment_scale"} <= kube_calls(
        RUNNER_SOURCES
    )
    assert "list_pod_for_all_namespaces" in kube_calls(DISCOVERY_SOURCES)


def test_every_kubernetes_call_of_the_program_has_an_entry_and_every_entry_a_call():
    assert kube_calls(RUNNER_SOURCES) == set(k8s_rbac.CLIENT_CALLS) | set(k8s_rbac.CUSTOM_OBJECT_CALLS)


def test_every_kubernetes_call_of_discover_has_an_entry():
    calls = kube_calls(DISCOVERY_SOURCES)
    assert calls <= set(k8s_rbac.DISCOVERY_CALLS) | set(k8s_rbac.DISCOVERY_CUSTOM_OBJECT_CALLS)
    assert set(k8s_rbac.discovery_calls_in_use()) == calls


@pytest.mark.parametrize("method", sorted({**k8s_rbac.CLIENT_CALLS, **k8s_rbac.DISCOVERY_CALLS}))
def test_each_entry_is_what_the_clients_request_needs(method):
    rule = {**k8s_rbac.CLIENT_CALLS, **k8s_rbac.DISCOVERY_CALLS}[method]
    group, resource, verb, namespaced = rule_of(*http_of(method))
    assert (rule.group, rule.resource, rule.verbs) == (group, resource, (verb,))
    if rule.namespace is not None:
        assert namespaced, f"{method} is cluster-wide: a Role in {rule.namespace} cannot allow it"


def allows(docs: list[dict[str, Any]], group: str, resource: str, verb: str, namespace: str | None) -> bool:
    """RBAC's rule matching (Kubernetes docs, "Using RBAC Authorization"); a Role only in its namespace."""
    for doc in docs:
        if doc["kind"] == "Role" and doc["metadata"]["namespace"] != namespace:
            continue
        for rule in doc["rules"]:
            if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
                return True
    return False


def configs() -> list[tuple[str, dict[str, Any], list[str]]]:
    return [
        ("dev", DEV, list(LIFECYCLES)),
        *((shape, with_changes(SHAPES[shape]), ["rename"]) for shape in SHAPES),
        ("present", with_changes({"driverInstall": "present"}), ["rename"]),
        ("prod", {**PROD, f"{KEY}:migrations": [PROD_ENTRY]}, ["rename"]),
        ("rehearsal", {**REHEARSAL, f"{KEY}:migrations": [REHEARSAL_ENTRY]}, ["rename, source deleted"]),
    ]


def stacks_walked(label, config, lifecycles):
    """(settings, kinds registered) of the stack a config's walk is, and for dev also the stack of
    every strategy's entries (rehome and modify besides copy, through each of their phases)."""
    walked = [(settings_of(config), kinds_registered(label, config, lifecycles))]
    if label == "dev":
        every = {**config, f"{KEY}:migrations": entries_of_every_strategy("eu-central-1c")}
        walked.append((settings_of(every), kinds_of_every_strategy(every)))
    return walked


@pytest.mark.parametrize(("label", "config", "lifecycles"), configs(), ids=[c[0] for c in configs()])
def test_every_kind_the_program_registers_is_covered(label, config, lifecycles):
    for settings, seen in stacks_walked(label, config, lifecycles):
        assert seen, "the program registered no Kubernetes object: the walk is broken"
        assert seen <= k8s_rbac.registered_kinds(settings), label
        docs = k8s_rbac.documents(settings)
        for kind in seen:
            if kind in k8s_rbac.KINDS:
                group, resource, verbs = k8s_rbac.KINDS[kind]
                assert all(allows(docs, group, resource, v, "default") for v in verbs), kind
        # And every call of the program's code, in the namespace it makes it in.
        for method, rule in k8s_rbac.CLIENT_CALLS.items():
            if rule.namespace is None or settings.driver.install == "present":
                for verb in rule.verbs:
                    assert allows(docs, rule.group, rule.resource, verb, rule.namespace or "default"), method


def printed_rights(docs: list[dict[str, Any]]) -> set[tuple[str, str, str, str | None]]:
    """(group, resource, verb, namespace or None) of every right the documents grant."""
    return {
        (group, resource, verb, doc["metadata"].get("namespace"))
        for doc in docs
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def rights_of(rules: list[k8s_rbac.Rule]) -> set[tuple[str, str, str, str | None]]:
    return {(r.group, r.resource, v, r.namespace) for r in rules for v in r.verbs}


def runner_rights_used(settings, seen_kinds: set[str], calls: set[str]) -> set[tuple[str, str, str, str | None]]:
    """What the runner's code and the kinds it registered use: the calls the scan finds (the driver
    check's namespaced read only where that check runs), what pulumi-kubernetes does for each kind
    registered and what each install bundle registered creates, the owners the entries record."""
    rules = [
        rule
        for method, rule in k8s_rbac.CLIENT_CALLS.items()
        if method in calls and (rule.namespace is None or settings.driver.install == "present")
    ]
    for kind in seen_kinds:
        if kind in k8s_rbac.KINDS:
            group, resource, verbs = k8s_rbac.KINDS[kind]
            rules.append(k8s_rbac.Rule(group, resource, verbs))
        rules += [k8s_rbac.Rule(g, r, k8s_rbac._INSTALL_VERBS) for g, r in k8s_rbac.INSTALLS.get(kind, ())]
    if calls & set(k8s_rbac.CUSTOM_OBJECT_CALLS):
        rules += k8s_rbac.owner_rules(settings)
    return rights_of(rules)


def kinds_registered(label: str, config: dict[str, Any], lifecycles: list[str]) -> set[str]:
    """Every pulumi-kubernetes type the program registers for this config across its lifecycles."""
    stack = label if label in ("prod", "rehearsal") else "dev"
    # prod is promoted from dev: its gate reads dev's outputs.
    others = {stack_name("dev"): walk(DEV, LIFECYCLES["rename"])[-1].outputs} if label == "prod" else None
    return {
        r.type
        for lifecycle in lifecycles
        for run in walk(config, LIFECYCLES[lifecycle], stack=stack, other_stacks=others)
        for r in run.registrations
        if r.type.startswith("kubernetes:") and r.type != "pulumi:providers:kubernetes"
    }


def kinds_of_every_strategy(every: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    for lifecycle in EVERY_STRATEGY_LIFECYCLES.values():
        previous: dict[str, Any] = {}
        for phases in lifecycle:
            run = run_program(with_phases(every, phases), previous_outputs=previous)
            assert run.error is None, run.error
            previous = run.outputs
            seen |= {r.type for r in run.registrations if r.type.startswith("kubernetes:")}
    return seen


@pytest.mark.parametrize(("label", "config", "lifecycles"), configs(), ids=[c[0] for c in configs()])
def test_every_right_the_runner_is_granted_is_used(label, config, lifecycles):
    """The other way round: a right printed that no call of the code and no kind registered uses is
    more than the runner needs (least privilege), and fails here naming it."""
    calls = kube_calls(RUNNER_SOURCES)
    for settings, seen in stacks_walked(label, config, lifecycles):
        used = runner_rights_used(settings, seen, calls)
        runner_docs = [d for d in k8s_rbac.documents(settings) if d["metadata"]["name"].endswith("runner")]
        assert sorted(printed_rights(runner_docs) - used, key=str) == [], label


def test_every_right_discover_is_granted_is_used():
    calls = kube_calls(DISCOVERY_SOURCES)
    rules = [k8s_rbac.DISCOVERY_CALLS[c] for c in calls if c in k8s_rbac.DISCOVERY_CALLS]
    if calls & set(k8s_rbac.DISCOVERY_CUSTOM_OBJECT_CALLS):
        rules += [k8s_rbac.Rule(r.group, r.plural, ("list",)) for r in window_owners.RESOURCES.values()]
    docs = [d for d in k8s_rbac.documents(None) if d["metadata"]["name"].endswith("discover")]
    assert sorted(printed_rights(docs) - rights_of(rules), key=str) == []


def test_a_right_no_call_uses_is_found(monkeypatch):
    """The check above can fail: a kind listed that the program never registers (a
    Namespace), and a call the code no longer makes, each show as unused."""
    settings = settings_of(DEV)
    seen = kinds_registered("rename-only", DEV, ["rename"])
    calls = kube_calls(RUNNER_SOURCES)
    real = k8s_rbac.registered_kinds
    namespace = "kubernetes:core/v1:Namespace"
    monkeypatch.setitem(k8s_rbac.KINDS, namespace, ("", "namespaces", ("create", "get")))
    monkeypatch.setattr(k8s_rbac, "registered_kinds", lambda s: real(s) | {namespace})
    monkeypatch.setitem(
        k8s_rbac.CLIENT_CALLS, "delete_collection_namespaced_pod", k8s_rbac.Rule("", "pods", ("deletecollection",))
    )
    runner_docs = [d for d in k8s_rbac.documents(settings) if d["metadata"]["name"].endswith("runner")]
    unused = printed_rights(runner_docs) - runner_rights_used(settings, seen, calls)
    assert ("", "namespaces", "create", None) in unused
    assert ("", "pods", "deletecollection", None) in unused


def test_no_escalation_rights_and_no_wildcards():
    for stack in ("dev", "prod", "rehearsal"):
        settings = k8s_rbac.read_stack_settings(STACKS_DIR, stack)
        for doc in k8s_rbac.documents(settings):
            for rule in doc["rules"]:
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], doc["metadata"]
                assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_discover_reads_only():
    docs = [d for d in k8s_rbac.documents(None) if d["metadata"]["name"].endswith("discover")]
    verbs = {v for d in docs for r in d["rules"] for v in r["verbs"]}
    assert verbs <= {"get", "list"}


def test_the_command_prints_the_roles_and_refuses_a_bad_stack(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gp3migrate", "k8s-rbac", "--stack", "prod", "--project-dir", str(STACKS_DIR)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_DIR,
    )
    assert done.returncode == 0, done.stderr
    docs = list(yaml.safe_load_all(done.stdout))
    assert docs == k8s_rbac.documents(k8s_rbac.read_stack_settings(STACKS_DIR, "prod"))
    bad = subprocess.run(
        [sys.executable, "-m", "gp3migrate", "k8s-rbac", "--stack", "nope", "--project-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_DIR,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_the_runner_reads_exactly_the_owner_kinds_its_entries_record_and_patches_only_those_it_holds():
    """Owners held by the user are only read (owners-held gate, the release's re-check); with
    holdOwners the program patches them too (hold and resume); a stack without owners gets neither."""
    entry = DEV[f"{KEY}:migrations"][0]
    argo = {"kind": "Application", "name": "shop", "namespace": "argocd"}
    keda = {"kind": "ScaledObject", "name": "web", "namespace": entry["namespace"]}
    held_by_user = settings_of({**DEV, f"{KEY}:migrations": [{**entry, "owners": [argo]}]})
    held_by_program = settings_of(
        {**DEV, f"{KEY}:migrations": [{**entry, "owners": [keda], "holdOwners": True, "claimNaming": "same-name"}]}
    )

    assert [(r.group, r.resource, r.verbs) for r in k8s_rbac.owner_rules(held_by_user)] == [
        ("argoproj.io", "applications", ("get",))
    ]
    assert [(r.group, r.resource, r.verbs) for r in k8s_rbac.owner_rules(held_by_program)] == [
        ("keda.sh", "scaledobjects", ("get", "patch"))
    ]
    assert k8s_rbac.owner_rules(settings_of(DEV)) == []
    runner = k8s_rbac.documents(held_by_program)[0]
    assert {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": ["get", "patch"]} in runner["rules"]
    assert not any("argoproj.io" in rule["apiGroups"] for rule in runner["rules"])
