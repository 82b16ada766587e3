"""`gp3migrate k8s-rbac --stack <stack>`: the Kubernetes RBAC the identity that runs `pulumi up`
needs on the cluster, and what `gp3migrate discover` needs, printed as YAML (issue 23 item 6), as
`iam-policy` prints the IAM side.

Built from data: every Kubernetes API call the program's own code makes (CLIENT_CALLS: the proof
steps and the driver check, run with the runner's kubeconfig; DISCOVERY_CALLS: discover's reads),
and what pulumi-kubernetes does for each kind the program registers (KINDS). tests/test_k8s_rbac.py
scans the source for every kubernetes client method it calls, checks each entry against the HTTP
method and path of that method in the kubernetes client, and runs the program under mocks through
every phase to find every kind it registers.

Verbs of a registered kind (pulumi-kubernetes 4.x, server-side apply by default; provider/pkg/await/
await.go): Creation sends an apply PATCH (the API server authorizes `create` too when the apply
creates the object: kube-apiserver `endpoints/handlers/patch.go`); Read and refresh `get`; Update
`get`s the live object then `patch`es; Deletion `delete`s, then watches until it is gone; the
awaiters list and watch (`list`, `watch`). A `...Patch` resource only applies fields to an object
that exists: never `create` or `delete`. Not modelled: what a Helm chart or a manifest bundle
installs (INSTALLS lists the kinds of the pinned releases, from their templates), admission
webhooks, and that RBAC's escalation check lets the runner create the driver's ClusterRoles only
while it holds their rights itself (Kubernetes docs, "Using RBAC Authorization": privilege
escalation prevention) — `escalate` and `bind` are deliberately not granted.
"""

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gp3migrate.config import window_owners
from gp3migrate.config.settings import Settings
from gp3migrate.iam.runner_policy import StackFileError, read_stack_settings
from gp3migrate.versions import DRIVER_NAMESPACE

NAME = "eks-gp3-migration"


@dataclass(frozen=True)
class Rule:
    """One API group's resource and the verbs on it; `namespace` None: cluster-wide."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    namespace: str | None = None
    source: str = ""


# kubernetes client method -> the rule it needs (method and path: the client's generated code).
CLIENT_CALLS: dict[str, Rule] = {
    "read_namespaced_persistent_volume_claim": Rule(
        "", "persistentvolumeclaims", ("get",), source="checks/preconditions.py (claim release, in-use check)"
    ),
    "delete_namespaced_persistent_volume_claim": Rule(
        "", "persistentvolumeclaims", ("delete",), source="checks/preconditions.py (claim release)"
    ),
    "read_persistent_volume": Rule("", "persistentvolumes", ("get",), source="checks/preconditions.py"),
    "patch_persistent_volume": Rule(
        "", "persistentvolumes", ("patch",), source="checks/preconditions.py (Retain before the release)"
    ),
    "delete_persistent_volume": Rule(
        "", "persistentvolumes", ("delete",), source="checks/preconditions.py (rehome finalize: the old PV object)"
    ),
    "read_namespaced_deployment": Rule("apps", "deployments", ("get",), source="checks/preconditions.py (quiesce)"),
    "patch_namespaced_deployment_scale": Rule(
        "apps", "deployments/scale", ("patch",), source="checks/preconditions.py (quiesce, scale back)"
    ),
    "read_namespaced_stateful_set": Rule("apps", "statefulsets", ("get",), source="checks/preconditions.py"),
    "patch_namespaced_stateful_set_scale": Rule(
        "apps", "statefulsets/scale", ("patch",), source="checks/preconditions.py (quiesce, scale back)"
    ),
    "read_namespaced_service_account": Rule(
        "",
        "serviceaccounts",
        ("get",),
        namespace=DRIVER_NAMESPACE,
        source="checks/driver_readiness.py (the driver's identity)",
    ),
    "list_namespaced_pod": Rule(
        "", "pods", ("list",), source="checks/preconditions.py (the release's window: no pod on the claim)"
    ),
}
# CustomObjectsApi: one method serves every owner kind (gp3migrate/config/window_owners.py
# RESOURCES), so the rules come from the owners a stack records, not from the method's path: `get`
# for the owners-held gate and the release's re-check, `patch` for holdOwners' hold and resume.
CUSTOM_OBJECT_CALLS: dict[str, tuple[str, ...]] = {
    "get_namespaced_custom_object": ("get",),
    "patch_namespaced_custom_object": ("patch",),
}
# Discovery lists each owner kind whose CRD exists (gp3migrate/discovery/inventory.py).
DISCOVERY_CUSTOM_OBJECT_CALLS: dict[str, tuple[str, ...]] = {"list_cluster_custom_object": ("list",)}
# The driver check also reads the controller Deployment, in the driver's namespace only; the
# quiesce reads Deployments anywhere, so the cluster-wide `get` above covers it.

DISCOVERY_CALLS: dict[str, Rule] = {
    "list_persistent_volume": Rule("", "persistentvolumes", ("list",), source="discovery/inventory.py"),
    "list_persistent_volume_claim_for_all_namespaces": Rule("", "persistentvolumeclaims", ("list",)),
    "list_pod_for_all_namespaces": Rule("", "pods", ("list",)),
    "list_deployment_for_all_namespaces": Rule("apps", "deployments", ("list",)),
    "list_stateful_set_for_all_namespaces": Rule("apps", "statefulsets", ("list",)),
    "list_daemon_set_for_all_namespaces": Rule("apps", "daemonsets", ("list",)),
    "list_storage_class": Rule("storage.k8s.io", "storageclasses", ("list",)),
    "list_csi_driver": Rule("storage.k8s.io", "csidrivers", ("list",)),
    "list_horizontal_pod_autoscaler_for_all_namespaces": Rule(
        "autoscaling", "horizontalpodautoscalers", ("list",), source="discovery/inventory.py (owners)"
    ),
    "read_custom_resource_definition": Rule(
        "apiextensions.k8s.io", "customresourcedefinitions", ("get",), source="discovery (snapshot CRDs present?)"
    ),
    # Helm release records (driver detection). Cluster-wide while discovery lists them so; the
    # driver's namespace would do (issue 23): the rule follows the call.
    "list_secret_for_all_namespaces": Rule("", "secrets", ("list",), source="discovery/inventory.py (Helm releases)"),
    "list_namespaced_secret": Rule(
        "", "secrets", ("list",), namespace=DRIVER_NAMESPACE, source="discovery/inventory.py (Helm releases)"
    ),
}

_OWNED = ("create", "delete", "get", "list", "patch", "watch")
_PATCHED = ("get", "list", "patch", "watch")

# pulumi-kubernetes type token -> (group, resource, verbs).
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "kubernetes:core/v1:PersistentVolumeClaim": ("", "persistentvolumeclaims", _OWNED),
    "kubernetes:core/v1:PersistentVolume": ("", "persistentvolumes", _OWNED),
    "kubernetes:core/v1:PersistentVolumePatch": ("", "persistentvolumes", _PATCHED),
    "kubernetes:storage.k8s.io/v1:StorageClass": ("storage.k8s.io", "storageclasses", _OWNED),
    "kubernetes:storage.k8s.io/v1:StorageClassPatch": ("storage.k8s.io", "storageclasses", _PATCHED),
    "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshot": ("snapshot.storage.k8s.io", "volumesnapshots", _OWNED),
    "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotContent": (
        "snapshot.storage.k8s.io",
        "volumesnapshotcontents",
        _OWNED,
    ),
    "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass": (
        "snapshot.storage.k8s.io",
        "volumesnapshotclasses",
        _OWNED,
    ),
    "kubernetes:apps/v1:Deployment": ("apps", "deployments", _OWNED),
}

# What an install bundle creates and later upgrades and removes: the EBS CSI driver chart 2.x
# (templates/: ServiceAccounts, ClusterRoles and bindings, Roles and bindings for leases, the
# controller Deployment, node DaemonSet, CSIDriver, PodDisruptionBudget; Helm 3 keeps release
# records as Secrets in the release's namespace), and the external-snapshotter release manifests
# (the three snapshot CRDs, the snapshot-controller Deployment, its ServiceAccount and RBAC).
_RBAC = ("clusterroles", "clusterrolebindings", "roles", "rolebindings")
INSTALLS: dict[str, tuple[tuple[str, str], ...]] = {
    "kubernetes:helm.sh/v3:Release": (
        ("", "serviceaccounts"),
        ("", "secrets"),
        *(("rbac.authorization.k8s.io", r) for r in _RBAC),
        ("apps", "deployments"),
        ("apps", "daemonsets"),
        ("storage.k8s.io", "csidrivers"),
        ("policy", "poddisruptionbudgets"),
    ),
    "kubernetes:yaml/v2:ConfigGroup": (
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "serviceaccounts"),
        *(("rbac.authorization.k8s.io", r) for r in _RBAC),
        ("apps", "deployments"),
    ),
}
_INSTALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def registered_kinds(settings: Settings) -> set[str]:
    """The pulumi-kubernetes types a stack with these settings registers in any phase."""
    kinds = {
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:core/v1:PersistentVolumePatch",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "kubernetes:storage.k8s.io/v1:StorageClassPatch",
        "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshot",
        "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotContent",
        "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass",
    }
    # Only rehome creates a PV object (the static CSI one of the same volume); copy and modify
    # patch the PVs that exist: no `create` on PVs for a stack without a rehome entry.
    if any(entry.strategy == "rehome" for entry in settings.migrations):
        kinds.add("kubernetes:core/v1:PersistentVolume")
    if settings.driver.install == "helm":
        kinds.add("kubernetes:helm.sh/v3:Release")
    if settings.snapshots.support == "manifests":
        kinds.add("kubernetes:yaml/v2:ConfigGroup")
    if settings.rehearsal is not None:
        # The demo workload's writer (components/demo_workload.py).
        kinds.add("kubernetes:apps/v1:Deployment")
    return kinds


def owner_rules(settings: Settings) -> list[Rule]:
    """Read (and, with holdOwners, patch) exactly the owner kinds the stack's entries record."""
    rules = []
    for entry in settings.migrations:
        for owner in entry.window_owners:
            where = window_owners.RESOURCES[owner.kind]
            verbs = ("get", "patch") if entry.hold_owners else ("get",)
            rules.append(Rule(where.group, where.plural, verbs, source=f"owners of {entry.key}"))
    return rules


def runner_rules(settings: Settings) -> list[Rule]:
    rules = [*CLIENT_CALLS.values(), *owner_rules(settings)]
    for kind in sorted(registered_kinds(settings)):
        if kind in KINDS:
            group, resource, verbs = KINDS[kind]
            rules.append(Rule(group, resource, verbs, source=kind))
        for group, resource in INSTALLS.get(kind, ()):
            rules.append(Rule(group, resource, _INSTALL_VERBS, source=kind))
    return rules


def _merged(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """RBAC rules, one per (group, verbs), resources and verbs sorted: deterministic output."""
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in rules:
        verbs[(rule.group, rule.resource)] |= set(rule.verbs)
    by_verbs: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (group, resource), found in sorted(verbs.items()):
        by_verbs[(group, tuple(sorted(found)))].append(resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(found)}
        for (group, found), resources in sorted(by_verbs.items())
    ]


def _role(kind: str, name: str, rules: list[Rule], namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": NAME}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": _merged(rules)}


def documents(settings: Settings | None) -> list[dict[str, Any]]:
    """The runner's ClusterRole (and Role in the driver's namespace) for a stack's settings, then
    discover's ClusterRole and its Role in the driver's namespace (the same for every stack)."""
    docs: list[dict[str, Any]] = []
    if settings is not None:
        rules = runner_rules(settings)
        docs.append(_role("ClusterRole", f"{NAME}-runner", [r for r in rules if r.namespace is None]))
        namespaced = [r for r in rules if r.namespace is not None]
        # The driver check (driverInstall: present) reads the driver's ServiceAccount there.
        if settings.driver.install == "present" and namespaced:
            docs.append(_role("Role", f"{NAME}-runner", namespaced, DRIVER_NAMESPACE))
    used = discovery_calls_in_use()
    cluster_wide = [DISCOVERY_CALLS[c] for c in used if c in DISCOVERY_CALLS and not DISCOVERY_CALLS[c].namespace]
    if set(used) & set(DISCOVERY_CUSTOM_OBJECT_CALLS):
        cluster_wide += [Rule(r.group, r.plural, ("list",)) for r in window_owners.RESOURCES.values()]
    docs.append(_role("ClusterRole", f"{NAME}-discover", cluster_wide))
    namespaced = [DISCOVERY_CALLS[c] for c in used if c in DISCOVERY_CALLS and DISCOVERY_CALLS[c].namespace]
    if namespaced:
        docs.append(_role("Role", f"{NAME}-discover", namespaced, DRIVER_NAMESPACE))
    return docs


def discovery_calls_in_use() -> list[str]:
    """The entries of DISCOVERY_CALLS the discovery code makes now (one of the two Secret reads)."""
    source = "\n".join(p.read_text() for p in sorted((Path(__file__).parents[1] / "discovery").glob("*.py")))
    return sorted(call for call in (*DISCOVERY_CALLS, *DISCOVERY_CUSTOM_OBJECT_CALLS) if f".{call}" in source)


def add_subcommand(commands: Any) -> None:
    """Registers `k8s-rbac` on the CLI's subcommands (gp3migrate/cli.py)."""
    command = commands.add_parser(
        "k8s-rbac", help="print the Kubernetes RBAC `pulumi up` needs for a stack, and what `discover` needs"
    )
    command.add_argument("--stack", help="stack whose Pulumi.<stack>.yaml decides the runner's rules")
    command.add_argument("--project-dir", type=Path, default=Path("."), help="where the stack files are")
    command.set_defaults(run=run, parser=command)


def run(args: argparse.Namespace) -> int:
    stack = args.stack
    if not stack or not all(c.isalnum() or c in "-_." for c in stack):
        print(f"error: --stack: {stack!r} is not a stack name (letters, digits, '-', '_' and '.')", file=sys.stderr)
        return 2
    try:
        settings = read_stack_settings(args.project_dir, stack)
    except StackFileError as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(documents(settings), sort_keys=True), end="")
    return 0
