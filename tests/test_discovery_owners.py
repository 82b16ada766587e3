"""Discovery names every owner (issue 22 item 2): Helm, Argo CD, Flux, KEDA and HPA found from an
export, recorded in the entry exactly, shown below the table; the live listing reads their kinds
only when their CRDs exist.

Not proven: the names and versions a real cluster serves those CRDs under (fixed here as each
project documents them)."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from gp3migrate.discovery.inventory import KubeApis, list_owner_items
from gp3migrate.discovery.volumes import discover
from tests.kube_fixtures import Export, claim, deployment, ebs_volume, in_tree_pv, statefulset, vol


def cluster(*extra: dict[str, Any], claim_labels=None, claim_annotations=None, sts_annotations=None) -> Export:
    x = Export()
    data = claim("apps", "data-db-0", "pv-db")
    data["metadata"].setdefault("labels", {}).update(claim_labels or {})
    data["metadata"]["annotations"].update(claim_annotations or {})
    web = claim("apps", "web-data", "pv-web")
    sts = statefulset("apps", "db", {"data": "gp2"}, 1)
    sts[0]["metadata"]["annotations"] = sts_annotations or {}
    x.items += [
        in_tree_pv("pv-db", vol("db"), "apps", "data-db-0"),
        data,
        in_tree_pv("pv-web", vol("web"), "apps", "web-data"),
        web,
        *sts,
        *deployment("apps", "web", ["web-data"], 2),
        *extra,
    ]
    x.volumes += [ebs_volume(vol("db"), size=10), ebs_volume(vol("web"), size=10)]
    return x


def run(x: Export) -> Any:
    return discover(x.kube_json()["items"], x.volumes)


def entry_of(result: Any, claim_name: str) -> dict[str, Any]:
    return next(e for e in result.entries if e["claim"] == claim_name)


def obj(kind: str, namespace: str, name: str, **body: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace}, **body}


def test_each_owner_is_recorded_from_what_it_wrote_and_its_object():
    x = cluster(
        obj("Application", "argocd", "db", spec={"syncPolicy": {"automated": {"selfHeal": True}}}),
        obj("Kustomization", "flux-system", "apps", spec={"suspend": True}),
        obj("ScaledObject", "apps", "web", spec={"scaleTargetRef": {"name": "web"}}),
        obj(
            "HorizontalPodAutoscaler", "apps", "web-hpa", spec={"scaleTargetRef": {"kind": "Deployment", "name": "web"}}
        ),
        claim_annotations={"meta.helm.sh/release-name": "db", "meta.helm.sh/release-namespace": "apps"},
        sts_annotations={"argocd.argoproj.io/tracking-id": "db:apps/StatefulSet:apps/db"},
    )
    web = next(i for i in x.items if i["kind"] == "Deployment")
    web["metadata"]["labels"] = {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    result = run(x)
    assert entry_of(result, "data-db-0")["owners"] == [
        {
            "kind": "Application",
            "name": "db",
            "namespace": "argocd",
            "foundBy": "argocd.argoproj.io/tracking-id on the StatefulSet",
            "autoSync": True,
        },
        {"kind": "Helm", "name": "db", "namespace": "apps", "foundBy": "meta.helm.sh/release-name on the claim"},
    ]
    assert entry_of(result, "web-data")["owners"] == [
        {
            "kind": "HorizontalPodAutoscaler",
            "name": "web-hpa",
            "namespace": "apps",
            "foundBy": "its scaleTargetRef names Deployment web",
        },
        {
            "kind": "Kustomization",
            "name": "apps",
            "namespace": "flux-system",
            "foundBy": "label kustomize.toolkit.fluxcd.io/name on the Deployment",
            "suspended": True,
        },
        {
            "kind": "ScaledObject",
            "name": "web",
            "namespace": "apps",
            "foundBy": "its scaleTargetRef names Deployment web",
        },
    ]
    # Each owner that acts in the window is said once, with how to hold it.
    held = [w for w in result.warnings if "would undo a cutover" in w]
    assert [w.split(" acts on")[0] for w in held] == [
        "Application argocd/db",
        "Kustomization flux-system/apps",
        "ScaledObject apps/web",
    ]
    assert "`flux suspend kustomization apps -n flux-system`" in held[1]


def test_an_application_outside_argocd_namespace_is_read_from_the_tracking_id():
    x = cluster(claim_annotations={"argocd.argoproj.io/tracking-id": "team-a_db:/PersistentVolumeClaim:apps/data-db-0"})
    owners = entry_of(run(x), "data-db-0")["owners"]
    assert [(o["kind"], o["namespace"], o["name"], "autoSync" in o) for o in owners] == [
        ("Application", "team-a", "db", False)
    ]


def test_the_instance_label_alone_is_not_taken_for_argo_cd():
    # A chart sets app.kubernetes.io/instance too: without an Application of that name it is said, not recorded.
    x = cluster(claim_labels={"app.kubernetes.io/instance": "db"})
    result = run(x)
    assert "owners" not in entry_of(result, "data-db-0")
    assert any("has label app.kubernetes.io/instance=db and no Application was read" in w for w in result.warnings)
    confirmed = run(
        cluster(obj("Application", "argocd", "db", spec={}), claim_labels={"app.kubernetes.io/instance": "db"})
    )
    assert entry_of(confirmed, "data-db-0")["owners"][0]["autoSync"] is False


def test_a_statefulsets_claim_retention_is_recorded_and_said():
    x = cluster()
    next(i for i in x.items if i["kind"] == "StatefulSet")["spec"]["persistentVolumeClaimRetentionPolicy"] = {
        "whenDeleted": "Retain",
        "whenScaled": "Delete",
    }
    result = run(x)
    assert entry_of(result, "data-db-0")["workload"]["claimRetention"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Delete",
    }
    assert any(
        w.startswith("apps/data-db-0: StatefulSet apps/db has persistentVolumeClaimRetentionPolicy")
        for w in result.warnings
    )


class Api:
    """The list and read calls list_owner_items makes."""

    def __init__(self, crds: dict[str, dict[str, Any]], custom: dict[str, list[dict[str, Any]]]):
        self.crds, self.custom = crds, custom
        self.calls: list[tuple[Any, ...]] = []

    def read_custom_resource_definition(self, name: str) -> Any:
        self.calls.append(("read_crd", name))
        if name not in self.crds:
            raise type("NotFound", (Exception,), {"status": 404})()
        return self.crds[name]

    def list_cluster_custom_object(self, group: str, version: str, plural: str, limit: int, **kw: Any) -> Any:
        self.calls.append(("list", group, version, plural))
        return {"items": self.custom.get(plural, []), "metadata": {}}

    def list_horizontal_pod_autoscaler_for_all_namespaces(self, limit: int, **kw: Any) -> Any:
        self.calls.append(("list_hpa",))
        return SimpleNamespace(items=[obj("x", "apps", "web-hpa")], metadata=SimpleNamespace(_continue=None))


def test_live_discovery_lists_an_owner_kind_only_when_its_crd_exists():
    crd = {
        "metadata": {"name": "applications.argoproj.io"},
        "spec": {"versions": [{"name": "v1alpha1", "served": True, "storage": True}]},
    }
    api = Api({"applications.argoproj.io": crd}, {"applications": [obj("x", "argocd", "db")]})
    apis = KubeApis(
        core=api, apps=api, storage=api, apiextensions=api, to_json=copy.deepcopy, custom=api, autoscaling=api
    )
    items = list_owner_items(apis)
    assert api.calls == [
        ("list_hpa",),
        ("read_crd", "applications.argoproj.io"),
        ("list", "argoproj.io", "v1alpha1", "applications"),
        ("read_crd", "kustomizations.kustomize.toolkit.fluxcd.io"),
        ("read_crd", "helmreleases.helm.toolkit.fluxcd.io"),
        ("read_crd", "scaledobjects.keda.sh"),
    ]
    assert [(i["kind"], i["metadata"]["name"]) for i in items] == [
        ("HorizontalPodAutoscaler", "web-hpa"),
        ("CustomResourceDefinition", "applications.argoproj.io"),
        ("Application", "db"),
    ]
