"""`helm upgrade` of a release that owns a workload or a claim, as a user runs it: not a controller
(nothing in the cluster runs it on its own), a function a scenario calls.

Read against helm/helm e9b85e4 (Helm 4 development; the check is the same since Helm 3.2):
`pkg/action/upgrade.go` performUpgrade, `pkg/action/validate.go` existingResourceConflict and
checkOwnership, `pkg/kube/client.go` update and createPatch.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from gp3migrate.sim.kube.fields import set_path, tracked_leaves
from gp3migrate.sim.kube.names import KubeError

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState

HELM_MANAGER = "helm"
# pkg/action/validate.go
MANAGED_BY = "app.kubernetes.io/managed-by"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"


class HelmError(Exception):
    """What `helm upgrade` prints after `Error: UPGRADE FAILED:`."""


def release_metadata(release: str, namespace: str) -> dict[str, dict[str, str]]:
    """setMetadataVisitor: the label and annotations Helm puts on every object of a release."""
    return {
        "labels": {MANAGED_BY: "Helm"},
        "annotations": {RELEASE_NAME: release, RELEASE_NAMESPACE: namespace},
    }


def ownership_problems(obj: dict[str, Any], release: str, namespace: str) -> list[str]:
    """checkOwnership / requireValue, in Helm's words."""
    labels = obj["metadata"].get("labels") or {}
    annotations = obj["metadata"].get("annotations") or {}
    problems = []
    for where, found, key, wanted in (
        ("label", labels, MANAGED_BY, "Helm"),
        ("annotation", annotations, RELEASE_NAME, release),
        ("annotation", annotations, RELEASE_NAMESPACE, namespace),
    ):
        if key not in found:
            problems.append(f'{where} validation error: missing key "{key}": must be set to "{wanted}"')
        elif found[key] != wanted:
            now = found[key]
            problems.append(f'{where} validation error: key "{key}" must equal "{wanted}": current value is "{now}"')
    return problems


def _key(manifest: dict[str, Any]) -> tuple[str, str, str]:
    meta = manifest["metadata"]
    return manifest["kind"], meta.get("namespace", ""), meta["name"]


def helm_upgrade(
    world: ClusterState,
    *,
    release: str,
    namespace: str,
    manifests: list[dict[str, Any]],
    previous: list[dict[str, Any]] | None = None,
) -> list[str]:
    """`helm upgrade <release>` rendering `manifests` over a release whose last revision rendered
    `previous` (the same by default). Returns what it did per object; raises HelmError.

    - An object the new manifest adds (not in `previous`) that exists live must carry the release's
      ownership metadata, else "... exists and cannot be imported into the current release: invalid
      ownership metadata; ..." (performUpgrade: existingResourceConflict on toBeCreated; no
      `--take-ownership`, Helm 3.17+).
    - Every object is then updated: created when missing (client.go update: "Since the resource does
      not exist, create it" — a claim from its chart: a new, empty volume), otherwise patched with
      the fields the chart sets that differ live, the ownership metadata included (createPatch, a
      three-way merge patch; the API server refuses an immutable field: the upgrade fails)."""
    before = {_key(m) for m in (manifests if previous is None else previous)}
    owned = release_metadata(release, namespace)
    for manifest in manifests:
        kind, ns, name = _key(manifest)
        live = world.kube.peek(kind, ns, name)
        if _key(manifest) in before or live is None:
            continue
        problems = ownership_problems(live, release, namespace)
        if problems:
            raise HelmError(
                f'Unable to continue with update: {kind} "{name}" in namespace "{ns}" exists and cannot be imported '
                f"into the current release: invalid ownership metadata; {'; '.join(problems)}"
            )
    done = []
    for manifest in manifests:
        kind, ns, name = _key(manifest)
        desired = copy.deepcopy(manifest)
        for place, values in owned.items():
            desired["metadata"][place] = {**(desired["metadata"].get(place) or {}), **values}
        live = world.kube.peek(kind, ns, name)
        try:
            if live is None:
                world.kube.create(desired, HELM_MANAGER)
                done.append(f"{kind}/{name} created")
                continue
            current = tracked_leaves(live)
            patch: dict[str, Any] = {}
            for path, value in tracked_leaves(desired).items():
                if current.get(path) != value:
                    set_path(patch, path, value)
            if patch:
                world.kube.patch(desired["apiVersion"], kind, ns, name, patch, HELM_MANAGER)
                done.append(f"{kind}/{name} patched")
        except KubeError as err:
            raise HelmError(f'cannot patch "{name}" with kind {kind}: {err}') from None
    return done
