"""Which of a claim's labels and annotations a claim the program creates carries again, and which
of them say who owns it (issue 22 item 1).

A cutover or rollback deletes a claim and creates one of the same name. Its owner (a Helm release,
an Argo CD Application, a Flux Kustomization or HelmRelease) finds it again only by the metadata it
wrote: Helm refuses to adopt an object without `app.kubernetes.io/managed-by: Helm` and
`meta.helm.sh/release-name|namespace` ("invalid ownership metadata", helm pkg/action/validate.go
checkOwnership); Argo CD tracks by the `argocd.argoproj.io/tracking-id` annotation (the default
since 3.0) or the `app.kubernetes.io/instance` label; Flux by `kustomize.toolkit.fluxcd.io/*` and
`helm.toolkit.fluxcd.io/*` labels. So the new claim carries the old one's labels and annotations,
except:

- what the controllers write while binding and provisioning (`CONTROLLER_ANNOTATIONS`): they
  describe the old claim's binding, and the controllers write them again for the new one
  (kubernetes pkg/controller/volume/persistentvolume/util: AnnBindCompleted, AnnBoundByController,
  AnnStorageProvisioner, AnnBetaStorageProvisioner, AnnSelectedNode, AnnMigratedTo; the beta class
  annotation must equal `storageClassName` when both are set (ValidatePersistentVolumeClaim), and
  the new claim names the gp3 class; external-resizer's `volume.kubernetes.io/storage-resizer`);
- `kubectl.kubernetes.io/last-applied-configuration` (`LAST_APPLIED`): kubectl's record of the
  manifest it last applied, here one that names the in-tree class and no volumeName. The new claim
  was not applied by kubectl; the next `kubectl apply` warns that the annotation is missing and
  writes it again (kubectl apply: "will be patched automatically"), so nothing is lost by leaving it
  out, while keeping it would make kubectl's three-way merge start from a spec this claim never
  had, and it is a whole manifest that has no place in the stack file.

The program's own labels and annotations (`eks-gp3-migration/…`) are added last and win.
"""

from collections.abc import Mapping

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CONTROLLER_ANNOTATIONS = frozenset(
    {
        "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller",
        "volume.kubernetes.io/storage-provisioner",
        "volume.beta.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/selected-node",
        "volume.beta.kubernetes.io/storage-class",
        "pv.kubernetes.io/migrated-to",
        "volume.kubernetes.io/storage-resizer",
    }
)
# Never copied: the controllers' and kubectl's (above).
NOT_COPIED = CONTROLLER_ANNOTATIONS | {LAST_APPLIED}

# The keys by which an owner recognises its claim (labels or annotations, wherever they are set).
OWNERSHIP_KEYS: Mapping[str, str] = {
    "app.kubernetes.io/managed-by": "Helm",
    "meta.helm.sh/release-name": "Helm",
    "meta.helm.sh/release-namespace": "Helm",
    "argocd.argoproj.io/tracking-id": "Argo CD",
    "app.kubernetes.io/instance": "Argo CD",
    "kustomize.toolkit.fluxcd.io/name": "Flux",
    "kustomize.toolkit.fluxcd.io/namespace": "Flux",
    "helm.toolkit.fluxcd.io/name": "Flux",
    "helm.toolkit.fluxcd.io/namespace": "Flux",
}
PLACES = ("labels", "annotations")


def copied(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The labels or annotations of a claim that a claim created in its place carries, sorted."""
    return {k: str(v) for k, v in sorted((metadata or {}).items()) if k not in NOT_COPIED}


def without_ownership(metadata: Mapping[str, str]) -> dict[str, str]:
    """For a claim under a new name: it is not in its owner's source, so it must not claim to be
    its owner's. Argo CD label tracking would list it as the Application's and prune it (a claim
    of the gp3 class, whose reclaim policy is Delete, takes its volume with it)."""
    return {k: v for k, v in metadata.items() if k not in OWNERSHIP_KEYS}


def ownership(labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None) -> dict[str, dict[str, str]]:
    """The ownership keys a claim carries, by place: what the release step compares."""
    found = {"labels": labels or {}, "annotations": annotations or {}}
    return {place: {k: str(v) for k, v in sorted(found[place].items()) if k in OWNERSHIP_KEYS} for place in PLACES}


Ownership = Mapping[str, Mapping[str, str]]


def ownership_differences(recorded: Ownership, live: Ownership) -> list[str]:
    """Each ownership key whose value differs between the record and the live claim, described
    (`label app.kubernetes.io/instance: recorded 'shop', now absent`)."""
    found = []
    for place in PLACES:
        before, now = recorded.get(place) or {}, live.get(place) or {}
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                found.append(
                    f"{place[:-1]} {key} ({OWNERSHIP_KEYS.get(key, 'owner')}): recorded {_shown(before.get(key))}, "
                    f"now {_shown(now.get(key))}"
                )
    return found


def _shown(value: str | None) -> str:
    return "absent" if value is None else repr(value)
