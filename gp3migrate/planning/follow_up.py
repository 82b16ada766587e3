"""What each owner of a cut-over claim must change in its source before it applies again (issue 22
item 4): the follow-up is part of the plan.

After a cutover the claim names the class now serving it (and a volumeName), but the owner's
source — a chart value, a git manifest, a StatefulSet's volumeClaimTemplates — still names the
in-tree class. A claim's spec is immutable except `resources.requests` and
`volumeAttributesClassName` (kubernetes pkg/apis/core/validation, ValidatePersistentVolumeClaimUpdate),
so the owner's next apply of the old spec fails; a StatefulSet's volumeClaimTemplates cannot
change at all (ValidateStatefulSetUpdate), so new replicas keep getting the old class until the
StatefulSet is created again.

Owners are the entry's recorded `owners` (what discovery found, gp3migrate/discovery/other_owners.py,
with the Application's own namespace from an Argo CD tracking id `<namespace>_<name>`) and its
workload's kind; facts built without an entry fall back to the claim's labels and annotations
(`claimMetadata`, gp3migrate/config/claim_identity.py OWNERSHIP_KEYS). Pure: no cluster, no Pulumi.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from gp3migrate.config import window_owners
from gp3migrate.config.migration_entry import MigrationSettings

HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
INSTANCE = "app.kubernetes.io/instance"
# `<application>:<group>/<kind>:<namespace>/<name>` (Argo CD docs, user-guide/resource_tracking.md).
ARGOCD_TRACKING_ID = "argocd.argoproj.io/tracking-id"
FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace")
FLUX_HELM_RELEASE = ("helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace")
# The entry's owner kinds (gp3migrate/config/window_owners.py) whose source names the claim's
# class, as this module names them; an autoscaler's source does not.
RECORDED_KINDS = {
    "Helm": "Helm release",
    "Application": "Argo CD Application",
    "Kustomization": "Flux Kustomization",
    "HelmRelease": "Flux HelmRelease",
}
# Owners that apply their source again on their own, and so must be resumed after a hold.
GITOPS_KINDS = ("Argo CD Application", "Flux Kustomization", "Flux HelmRelease")

_IMMUTABLE = (
    "a claim's spec is immutable but for resources.requests and volumeAttributesClassName, so applying the old "
    "spec fails"
)


@dataclass(frozen=True)
class OwnerFacts:
    """What is known of a claim's owners, and the class now serving it."""

    namespace: str
    claim: str
    serving_class: str
    source_class: str | None = None
    workload_kind: str | None = None
    workload_name: str | None = None
    template_class: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # Owners holdOwners holds but does not resume: (owner, the setting why, the command to resume it).
    left_held: tuple[tuple[str, str, str], ...] = ()
    # The entry's recorded owners (kind, name, namespace, found by); None: not from an entry.
    recorded: tuple[tuple[str, str, str, str], ...] | None = None

    @classmethod
    def of(cls, entry: MigrationSettings, serving_class: str) -> "OwnerFacts":
        workload, recorded = entry.workload, entry.claim_metadata
        return cls(
            namespace=entry.namespace,
            # The claim that names the new class: a renamed copy's new claim, else the same name.
            claim=entry.target_claim_name,
            serving_class=serving_class,
            source_class=entry.pv_storage_class,
            workload_kind=workload.kind if workload else None,
            workload_name=workload.name if workload else None,
            template_class=workload.template_storage_class if workload else None,
            labels=dict(recorded.labels) if recorded else {},
            annotations=dict(recorded.annotations) if recorded else {},
            recorded=tuple((o.kind, o.name, o.namespace, o.found_by or "") for o in entry.owners),
            left_held=tuple(
                (o.label(), str(o.resume_recreates_claim), window_owners.resume_command(o.kind, o.name, o.namespace))
                for o in (entry.window_owners if entry.hold_owners else ())
                if o.resume_recreates_claim
            ),
        )


@dataclass(frozen=True)
class Owner:
    kind: str  # Helm release, Argo CD Application, Flux Kustomization, Flux HelmRelease, StatefulSet
    name: str
    namespace: str | None = None
    how: str = ""  # the key it was found by

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def _either(facts: OwnerFacts, key: str) -> str | None:
    value = facts.annotations.get(key) or facts.labels.get(key)
    return str(value) if value else None


def owners(facts: OwnerFacts) -> list[Owner]:
    """Every owner the entry recorded (or, without an entry, the claim's metadata names) and the
    workload, in a fixed order."""
    found = _from_metadata(facts) if facts.recorded is None else _recorded(facts.recorded)
    if any(o.kind == "Flux HelmRelease" for o in found):
        # Flux's helm-controller runs the release's upgrades: its HelmRelease is the source to change.
        found = [o for o in found if o.kind != "Helm release"]
    if facts.workload_kind == "StatefulSet" and facts.workload_name:
        found.append(Owner("StatefulSet", facts.workload_name, facts.namespace, "workload"))
    return found


def _recorded(recorded: tuple[tuple[str, str, str, str], ...]) -> list[Owner]:
    return [
        Owner(RECORDED_KINDS[kind], name, namespace, how)
        for kind, name, namespace, how in recorded
        if kind in RECORDED_KINDS
    ]


def _from_metadata(facts: OwnerFacts) -> list[Owner]:
    found: list[Owner] = []
    release = _either(facts, HELM_RELEASE_NAME)
    if release:
        namespace = _either(facts, HELM_RELEASE_NAMESPACE) or facts.namespace
        found.append(Owner("Helm release", release, namespace, HELM_RELEASE_NAME))
    tracking = _either(facts, ARGOCD_TRACKING_ID)
    if tracking:
        found.append(Owner("Argo CD Application", tracking.split(":", 1)[0], None, ARGOCD_TRACKING_ID))
    elif facts.labels.get(INSTANCE) and not release:
        # Argo CD's label tracking (it writes the Application's name there). A Helm release sets
        # the same label to its own name, hence not when Helm's annotations are there. A chart's
        # `managed-by: Helm` label alone names no release: Argo CD renders charts with `helm
        # template`, which writes no meta.helm.sh annotations.
        found.append(Owner("Argo CD Application", facts.labels[INSTANCE], None, f"label {INSTANCE}"))
    for kind, (name_key, namespace_key) in (
        ("Flux Kustomization", FLUX_KUSTOMIZATION),
        ("Flux HelmRelease", FLUX_HELM_RELEASE),
    ):
        name = _either(facts, name_key)
        if name:
            found.append(Owner(kind, name, _either(facts, namespace_key) or facts.namespace, name_key))
    return found


def _claim_fields(facts: OwnerFacts) -> str:
    return (
        f"storageClassName: {facts.serving_class} (and the volumeName the live claim has: `kubectl get pvc "
        f"{facts.claim} -n {facts.namespace} -o jsonpath='{{.spec.volumeName}}'`)"
    )


def _change(owner: Owner, facts: OwnerFacts) -> str:
    old = f" (it says {facts.source_class})" if facts.source_class else ""
    if owner.kind == "Helm release":
        return (
            f"set the chart value that renders claim {facts.claim}'s storageClassName{old} to {facts.serving_class} "
            f"before the next `helm upgrade {owner.name} -n {owner.namespace}`: Helm's three-way merge puts the "
            f"rendered class back, and {_IMMUTABLE}"
        )
    if owner.kind == "Argo CD Application":
        return (
            f"in the Application's source (manifest or Helm values) set claim {facts.claim}'s {_claim_fields(facts)}"
            f"{old} before it syncs again: {_IMMUTABLE}. Do not use the sync option Replace=true: it replaces the "
            "claim with git's spec (kubectl replace), which the API refuses, and with Force=true it deletes the "
            "claim and creates it from git: a new, empty volume under the claim's name, the data left on a "
            "Released PV. Until the source changes, spec.ignoreDifferences on the claim's /spec/storageClassName "
            "and /spec/volumeName with the sync option RespectIgnoreDifferences=true lets syncs pass"
        )
    if owner.kind == "Flux Kustomization":
        return (
            f"in the Kustomization's git manifest set claim {facts.claim}'s {_claim_fields(facts)}{old} before "
            f"`flux resume kustomization {owner.name} -n {owner.namespace}`: {_IMMUTABLE}. Do not set spec.force: "
            "true: it recreates an object whose patch fails on an immutable field, so the claim would be deleted "
            "and provisioned again, empty"
        )
    if owner.kind == "Flux HelmRelease":
        return (
            f"set the chart value in the HelmRelease's spec.values that renders claim {facts.claim}'s "
            f"storageClassName{old} to {facts.serving_class} before `flux resume helmrelease {owner.name} -n "
            f"{owner.namespace}`: {_IMMUTABLE}. Do not set spec.upgrade.force: it upgrades with Helm's "
            "replacement strategy"
        )
    # StatefulSet
    named = facts.template_class or "the in-tree class"
    return (
        f"its volumeClaimTemplates name {named}: new replicas get that class, and the templates cannot change in "
        f"place. Set the template's storageClassName to {facts.serving_class} in its source, then `kubectl delete "
        f"statefulset {owner.name} -n {owner.namespace} --cascade=orphan` (its pods and claims stay) and apply it "
        "again (or let its owner above do so)"
    )


def follow_up(facts: OwnerFacts) -> list[dict[str, str]]:
    """Per owner: what must change in its source before it applies again. A claim with no owner
    known still gets one item: whoever applies a manifest naming it."""
    found = owners(facts)
    if facts.workload_kind == "StatefulSet" and facts.template_class == facts.serving_class:
        found = [o for o in found if o.kind != "StatefulSet"]
    items = [{"owner": o.ref, "foundBy": o.how, "change": _change(o, facts)} for o in found]
    items += [{"owner": owner, "foundBy": why, "change": text} for owner, why, text in _left_held(facts)]
    if not found:
        items.append(
            {
                "owner": "none recorded",
                "foundBy": "",
                "change": f"if a manifest you apply names claim {facts.claim}, set its {_claim_fields(facts)}: "
                f"{_IMMUTABLE}",
            }
        )
    return items


def _left_held(facts: OwnerFacts) -> list[tuple[str, str, str]]:
    return [
        (
            owner,
            why,
            f"left held by holdOwners, not resumed: with {why} a sync while its source still names the old class "
            f"deletes claim {facts.claim} and creates it again from that source, a new, empty volume under the "
            f"claim's name (window_owners.recreates_claim). Set its source to the claim's "
            f"{_claim_fields(facts)} (or drop {why}), then resume it yourself: `{command}`",
        )
        for owner, why, command in facts.left_held
    ]


def left_held_warnings(facts: OwnerFacts) -> list[str]:
    """From the cutover on, while holdOwners left an owner held: one line each, with the command."""
    return [f"{facts.namespace}/{facts.claim}: {owner} {text}" for owner, _, text in _left_held(facts)]


def unresumed_warnings(facts: OwnerFacts, resumed: Collection[str] = ()) -> list[str]:
    """At finalize: each GitOps owner of the claim not recorded as resumed (`resumed`: Owner.ref
    values), named with the command that resumes it once its source names the new class."""
    resume = {
        "Argo CD Application": "remove argocd.argoproj.io/skip-reconcile from the Application, or turn automated "
        "sync back on (`argocd app set {name} --sync-policy automated`)",
        "Flux Kustomization": "`flux resume kustomization {name} -n {namespace}`",
        "Flux HelmRelease": "`flux resume helmrelease {name} -n {namespace}`",
    }
    return [
        f"{facts.namespace}/{facts.claim}: finalize while its owner {o.ref} is not recorded as resumed; once its "
        f"source names {facts.serving_class}, resume it: " + resume[o.kind].format(name=o.name, namespace=o.namespace)
        for o in owners(facts)
        if o.kind in GITOPS_KINDS and o.ref not in resumed
    ]
