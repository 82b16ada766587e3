"""gp3migrate/planning/follow_up.py: after a cutover, what each owner of the claim must change in
its source (issue 22 item 4), read from the entry as it is recorded today (workload kind, the
claim's labels and annotations).

GIVEN an entry's owner facts, WHEN the follow-up is planned, THEN each owner gets one item naming
the class now serving the claim and the change its source needs. Not proven here: that a chart's
value is called what the item guesses (it names the rendered field, not the value's key), nor
anything a live Argo CD or Flux does.
"""

from gp3migrate.config.settings import load_settings
from gp3migrate.planning.follow_up import OwnerFacts, follow_up, owners, unresumed_warnings

HELM = {"meta.helm.sh/release-name": "db", "meta.helm.sh/release-namespace": "apps"}
BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}
ENTRY = {
    "namespace": "apps",
    "claim": "data-db-0",
    "pv": "pvc-1",
    "volumeId": "vol-0123456789abcdef0",
    "zone": "eu-central-1a",
    "sizeGiB": 10,
}
# The owner discovery records for HELM on the claim (gp3migrate/discovery/other_owners.py).
HELM_OWNER = {"kind": "Helm", "name": "db", "namespace": "apps", "foundBy": "meta.helm.sh/release-name on the claim"}
LABELS = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "db"}


def facts(**changes) -> OwnerFacts:
    base = {"namespace": "apps", "claim": "data-db-0", "serving_class": "gp3", "source_class": "gp2"}
    return OwnerFacts(**{**base, **changes})


def test_a_helm_release_names_the_class_and_the_upgrade():
    (item,) = follow_up(facts(labels=LABELS, annotations=HELM))
    assert item["owner"] == "Helm release apps/db"
    assert item["foundBy"] == "meta.helm.sh/release-name"
    assert item["change"].startswith(
        "set the chart value that renders claim data-db-0's storageClassName (it says gp2) to gp3 before the next "
        "`helm upgrade db -n apps`"
    )
    assert "immutable" in item["change"]


def test_argo_cd_by_tracking_id_says_why_not_replace_and_which_sync_option_applies():
    tracked = {"argocd.argoproj.io/tracking-id": "shop:/PersistentVolumeClaim:apps/data-db-0"}
    (item,) = follow_up(facts(labels=LABELS, annotations=tracked, serving_class="gp3-6000iops-250mibs"))
    assert item["owner"] == "Argo CD Application shop"
    assert "storageClassName: gp3-6000iops-250mibs" in item["change"]
    assert "Do not use the sync option Replace=true" in item["change"]
    assert "a new, empty volume under the claim's name" in item["change"]
    assert "RespectIgnoreDifferences=true" in item["change"]


def test_the_instance_label_is_argo_cd_only_without_helms_annotations():
    assert [o.ref for o in owners(facts(labels={"app.kubernetes.io/instance": "shop"}))] == ["Argo CD Application shop"]
    assert [o.ref for o in owners(facts(labels=LABELS, annotations=HELM))] == ["Helm release apps/db"]
    # A chart rendered by `helm template` (no release annotations) with only managed-by names no release.
    assert owners(facts(labels={"app.kubernetes.io/managed-by": "Helm"})) == []


def test_flux_kustomization_and_helmrelease_each_name_their_resume_and_the_force_to_avoid():
    kustomized = follow_up(
        facts(labels={"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux"})
    )
    assert [i["owner"] for i in kustomized] == ["Flux Kustomization flux/apps"]
    assert "`flux resume kustomization apps -n flux`" in kustomized[0]["change"]
    assert "Do not set spec.force: true" in kustomized[0]["change"]
    released = follow_up(
        facts(
            labels={**LABELS, "helm.toolkit.fluxcd.io/name": "db", "helm.toolkit.fluxcd.io/namespace": "flux"},
            annotations=HELM,
        )
    )
    # Flux runs the Helm upgrades: its HelmRelease is the one source to change.
    assert [i["owner"] for i in released] == ["Flux HelmRelease flux/db"]
    assert "spec.values" in released[0]["change"] and "spec.upgrade.force" in released[0]["change"]


def test_a_statefulset_gets_the_orphan_recreate_unless_its_template_already_names_the_class():
    old = follow_up(facts(workload_kind="StatefulSet", workload_name="db", template_class="gp2"))
    assert [i["owner"] for i in old] == ["StatefulSet apps/db"]
    assert "`kubectl delete statefulset db -n apps --cascade=orphan`" in old[0]["change"]
    assert old[0]["change"].startswith("its volumeClaimTemplates name gp2: new replicas get that class")
    done = follow_up(facts(workload_kind="StatefulSet", workload_name="db", template_class="gp3"))
    assert [i["owner"] for i in done] == ["none recorded"]


def test_no_owner_still_says_what_a_manifest_must_name():
    (item,) = follow_up(facts(workload_kind="Deployment", workload_name="db"))
    assert item["owner"] == "none recorded"
    assert "storageClassName: gp3" in item["change"]
    assert "kubectl get pvc data-db-0 -n apps -o jsonpath='{.spec.volumeName}'" in item["change"]


def test_finalize_warns_of_each_gitops_owner_not_resumed_and_not_of_helm():
    labels = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux"}
    tracked = {"argocd.argoproj.io/tracking-id": "shop:/PersistentVolumeClaim:apps/data-db-0", **HELM}
    both = facts(labels=labels, annotations=tracked)
    assert unresumed_warnings(both) == [
        "apps/data-db-0: finalize while its owner Argo CD Application shop is not recorded as resumed; once its "
        "source names gp3, resume it: remove argocd.argoproj.io/skip-reconcile from the Application, or turn "
        "automated sync back on (`argocd app set shop --sync-policy automated`)",
        "apps/data-db-0: finalize while its owner Flux Kustomization flux/apps is not recorded as resumed; once its "
        "source names gp3, resume it: `flux resume kustomization apps -n flux`",
    ]
    assert unresumed_warnings(both, resumed={"Argo CD Application shop", "Flux Kustomization flux/apps"}) == []
    assert unresumed_warnings(facts(annotations=HELM)) == []


def test_facts_are_read_from_a_recorded_entry():
    read = recorded(
        pvStorageClass="gp2",
        workload={"kind": "StatefulSet", "name": "db", "replicas": 1, "templateStorageClass": "gp2"},
        claimMetadata={"labels": LABELS, "annotations": HELM},
        owners=[HELM_OWNER],
    )
    assert read == facts(
        workload_kind="StatefulSet",
        workload_name="db",
        template_class="gp2",
        labels=LABELS,
        annotations=HELM,
        recorded=(("Helm", "db", "apps", "meta.helm.sh/release-name on the claim"),),
    )
    assert [i["owner"] for i in follow_up(read)] == ["Helm release apps/db", "StatefulSet apps/db"]


def test_the_program_publishes_the_follow_up_once_the_claim_is_cut_over():
    from tests.mock_cloud import advance

    raw = {**ENTRY, "pvStorageClass": "gp2", "claimMetadata": {"labels": LABELS, "annotations": HELM}}
    config = {**BASE, "migrations": [{**raw, "owners": [HELM_OWNER]}]}
    precopy, cutover = advance(config, ["precopy", "cutover"])
    assert precopy.outputs["followUp"] == {}
    serving = cutover.outputs["migrations"]["apps/data-db-0"]["storageClass"]
    (item,) = cutover.outputs["followUp"]["apps/data-db-0"]
    assert item["owner"] == "Helm release apps/db"
    assert f"storageClassName (it says gp2) to {serving} before" in item["change"]


def test_an_application_outside_argocd_namespace_is_the_one_the_entry_recorded():
    """Argo CD's apps-in-any-namespace tracking id `<namespace>_<name>`: discovery recorded the
    Application `shop` in namespace `team-a`; the follow-up names that one, not `team-a_shop`."""
    tracked = {"argocd.argoproj.io/tracking-id": "team-a_shop:/PersistentVolumeClaim:apps/data-db-0"}
    app = {"kind": "Application", "name": "shop", "namespace": "team-a", "foundBy": "x"}
    read = recorded(claimMetadata={"annotations": tracked}, owners=[app])
    assert [o.ref for o in owners(read)] == ["Argo CD Application team-a/shop"]
    assert unresumed_warnings(read)[0].startswith(
        "apps/data-db-0: finalize while its owner Argo CD Application team-a/shop is not recorded as resumed"
    )
    # What discovery did not record is not guessed from the claim's metadata.
    assert [o.ref for o in owners(recorded(claimMetadata={"annotations": tracked}))] == []


def recorded(**extra) -> OwnerFacts:
    """The facts of one entry as the stack file records it."""
    settings = load_settings({**BASE, "migrations": [{**ENTRY, **extra}]})
    return OwnerFacts.of(settings.migrations[0], "gp3")
