"""holdOwners never resumes an owner that would delete and recreate the cut-over claim (issue 22
item 3's resume, gp3migrate/config/window_owners.py recreates_claim): an Argo CD Application
syncing with Replace=true or Force=true, a Flux Kustomization with spec.force (or the claim's
force label). Such an owner is left held, the followUp output and a warning say why and give the
command to resume it by hand once its source names the new class. Discovery records the settings
when it can read the Application or Kustomization, or the claim's own annotation.

Not proven: what Argo CD or Flux do on such a sync (their docs, cited in recreates_claim)."""

from __future__ import annotations

from typing import Any

import pytest

from gp3migrate.config.settings import load_settings
from gp3migrate.planning.follow_up import OwnerFacts, follow_up, left_held_warnings
from tests.test_discovery_owners import cluster, entry_of, obj, run
from tests.test_other_owners import ARGO, BASE, FLUX, KEDA, PRECOPY, entry, plan


@pytest.mark.parametrize(
    ("owner", "why"),
    [
        ({**ARGO, "syncOptions": ["CreateNamespace=true", "Replace=true"]}, "syncOptions Replace=true"),
        ({**ARGO, "syncOptions": ["Force=true", "Replace=true"]}, "syncOptions Force=true, Replace=true"),
        ({**FLUX, "force": True}, "force: true"),
    ],
)
def test_hold_owners_leaves_an_owner_that_would_recreate_the_claim_held(owner: dict[str, Any], why: str):
    phase = plan("cutover", PRECOPY, owners=[owner, KEDA], holdOwners=True)
    bare = {k: owner[k] for k in ("kind", "name", "namespace")}
    assert phase.step("hold-owners").body["owners"] == [bare, KEDA]
    # Only KEDA is resumed; the owner stays held, as the window proved it.
    assert phase.step("resume-owners").body["owners"] == [KEDA]
    settings = load_settings({**BASE, "migrations": [entry(phase="cutover", owners=[owner], holdOwners=True)]})
    facts = OwnerFacts.of(settings.migrations[0], "gp3")
    label = f"{owner['kind']} {owner['namespace']}/{owner['name']}"
    [item] = [i for i in follow_up(facts) if i["owner"] == label]
    assert item["foundBy"] == why
    assert item["change"].startswith(f"left held by holdOwners, not resumed: with {why} a sync ")
    [warning] = left_held_warnings(facts)
    assert warning.startswith(f"apps/data: {label} left held")
    resume = "argocd.argoproj.io/skip-reconcile-" if owner["kind"] == "Application" else "flux resume kustomization"
    assert resume in warning


def test_an_owner_that_only_applies_is_resumed_and_no_step_is_left_out():
    """A plain apply of the old spec fails on the immutable claim: safe to resume."""
    phase = plan("cutover", PRECOPY, owners=[{**ARGO, "syncOptions": ["ServerSideApply=true"]}], holdOwners=True)
    assert phase.step("resume-owners").body["owners"] == [ARGO]
    only_unsafe = plan("cutover", PRECOPY, owners=[{**ARGO, "syncOptions": ["Replace=true"]}], holdOwners=True)
    assert "resume-owners" not in only_unsafe.names()
    assert "hold-owners" in only_unsafe.names()


def test_without_hold_owners_nothing_is_said_to_be_left_held():
    settings = load_settings({**BASE, "migrations": [entry(phase="cutover", owners=[{**FLUX, "force": True}])]})
    assert left_held_warnings(OwnerFacts.of(settings.migrations[0], "gp3")) == []


def test_discovery_records_the_sync_options_and_force_that_recreate_a_claim():
    x = cluster(
        obj("Application", "argocd", "db", spec={"syncPolicy": {"syncOptions": ["Replace=true"]}}),
        claim_annotations={"argocd.argoproj.io/sync-options": "Force=true, Prune=false"},
        sts_annotations={"argocd.argoproj.io/tracking-id": "db:apps/StatefulSet:apps/db"},
        claim_labels={
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            "kustomize.toolkit.fluxcd.io/force": "enabled",
        },
    )
    owners = {o["kind"]: o for o in entry_of(run(x), "data-db-0")["owners"]}
    # The Application's options and the StatefulSet's (where Argo CD's tracking id was found).
    assert owners["Application"]["syncOptions"] == ["Replace=true"]
    assert owners["Kustomization"]["force"] is True
    y = cluster(
        obj("Kustomization", "flux-system", "apps", spec={"force": True}),
        claim_labels={
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        },
        claim_annotations={
            "argocd.argoproj.io/tracking-id": "db:/PersistentVolumeClaim:apps/data-db-0",
            "argocd.argoproj.io/sync-options": "Force=true,Replace=true",
        },
    )
    owners = {o["kind"]: o for o in entry_of(run(y), "data-db-0")["owners"]}
    assert owners["Kustomization"]["force"] is True
    assert owners["Application"]["syncOptions"] == ["Force=true", "Replace=true"]
    plain = {
        o["kind"]: o
        for o in entry_of(run(cluster(claim_labels={"kustomize.toolkit.fluxcd.io/name": "apps"})), "data-db-0")[
            "owners"
        ]
    }
    assert "force" not in plain["Kustomization"]
