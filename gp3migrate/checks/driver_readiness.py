"""What a driver kept with `driverInstall: present` must have for the migration, checked.

The stack did not install that driver and does not own its role, so two things it would
otherwise set itself are checked instead (issue 9 item 8):

- The controller runs the `csi-snapshotter` sidecar. Without it no VolumeSnapshotContent ever
  becomes ready and a `copy` restore waits forever. The chart renders it only when the snapshot
  API exists at render time or `sidecars.snapshotter.forceEnable` is set (aws-ebs-csi-driver
  chart 2.64.0 `charts/aws-ebs-csi-driver/templates/controller.yaml`, the `{{- if or
  .Values.sidecars.snapshotter.forceEnable (.Capabilities.APIVersions.Has
  "snapshot.storage.k8s.io/v1") ...}}` around `- name: csi-snapshotter`), so a driver installed
  before the snapshot CRDs lacks it. The Deployment is `ebs-csi-controller` in the chart and in
  the kustomize manifests (`deploy/kubernetes/base/controller.yaml`); the EKS add-on is rendered
  from the chart.
- The driver's identity may use every customer-managed KMS key the listed volumes and classes
  use: kms:CreateGrant, Decrypt, DescribeKey, GenerateDataKeyWithoutPlaintext and ReEncrypt*
  (EBS user guide, "Requirements for Amazon EBS encryption", permissions for users; CreateGrant
  limited to grants for AWS resources as there). Checked with iam:SimulatePrincipalPolicy on the
  role, the keys as resources: it evaluates the role's identity policies, permissions boundary
  and SCPs, not the key policies (IAM API reference, SimulatePrincipalPolicy: resource policies
  are only those passed in). So the check asks for the IAM statement, which works whenever the
  key policy lets IAM policies grant access (the default key policy does); AWS managed keys
  (aws/ebs) are skipped, their key policy already allows EBS use for the whole account.

Every function takes its clients and returns problems, one line each naming what is missing and
how to fix it; nothing here decides whether to stop (discovery warns, the `up` refuses).
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gp3migrate import naming
from gp3migrate.config.settings import Settings
from gp3migrate.versions import CONTROLLER_SERVICE_ACCOUNT, DRIVER_NAMESPACE

CONTROLLER_DEPLOYMENT = "ebs-csi-controller"
SNAPSHOTTER_CONTAINER = "csi-snapshotter"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# ReEncrypt* stands for these two (AWS KMS API permissions reference).
KMS_ACTIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# EBS creates its grants for an AWS resource: a CreateGrant allowed only under this condition
# (the usual least-privilege statement, gp3migrate/iam/driver_policies.py kms_policy) must count as allowed.
_GRANT_CONTEXT = [
    {"ContextKeyName": "kms:GrantIsForAWSResource", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"}
]
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_CHECKED_AT_UP = "the `pulumi up` of a present driver checks it again before any migration step"


def role_arn_problem(value: str) -> str | None:
    if not _ROLE_ARN.fullmatch(value):
        return f"{value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
    return None


def _get(obj: Any, *path: str) -> Any:
    """A field of an exported object (a dict, camelCase) or of a kubernetes client model
    (attributes, snake_case)."""
    for key in path:
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            obj = obj.get(key)
        else:
            obj = getattr(obj, re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(), None)
    return obj


def container_names(deployment: Any) -> list[str]:
    return [str(_get(c, "name")) for c in _get(deployment, "spec", "template", "spec", "containers") or []]


def service_account(deployment: Any) -> str:
    """The controller's ServiceAccount (the chart's default when the template names none)."""
    return str(_get(deployment, "spec", "template", "spec", "serviceAccountName") or CONTROLLER_SERVICE_ACCOUNT)


def snapshotter_problems(deployment: Any | None, *, namespace: str = DRIVER_NAMESPACE) -> list[str]:
    """`deployment`: the driver's controller Deployment (exported dict or client model), None when
    there is none."""
    where = f"Deployment {namespace}/{CONTROLLER_DEPLOYMENT}"
    if deployment is None:
        return [
            f"no {where}: the EBS CSI driver does not run as its chart or EKS add-on installs it, so its "
            f"{SNAPSHOTTER_CONTAINER} sidecar cannot be checked; install the driver (driverInstall: helm or addon) "
            "or run it under that name"
        ]
    if SNAPSHOTTER_CONTAINER in container_names(deployment):
        return []
    return [
        f"{where} runs no {SNAPSHOTTER_CONTAINER} container ({', '.join(container_names(deployment)) or 'none'}): "
        "snapshots would never become ready and a copy's restore would wait forever. The chart renders it only "
        "when the snapshot CRDs existed at install or sidecars.snapshotter.forceEnable is true "
        "(templates/controller.yaml): with the CRDs installed, upgrade the Helm release with "
        "--set sidecars.snapshotter.forceEnable=true, or update the EKS add-on so it renders again"
    ]


def read_controller(apps: Any, namespace: str = DRIVER_NAMESPACE) -> Any | None:
    """The controller Deployment through an AppsV1Api; None when it does not exist."""
    try:
        return apps.read_namespaced_deployment(CONTROLLER_DEPLOYMENT, namespace)
    except Exception as err:  # the client's ApiException; 404: not there
        if getattr(err, "status", None) == 404:
            return None
        raise


def irsa_role(core: Any, namespace: str, name: str) -> str | None:
    """The role the ServiceAccount's IRSA annotation names (None without one, or without the SA)."""
    try:
        account = core.read_namespaced_service_account(name, namespace)
    except Exception as err:
        if getattr(err, "status", None) == 404:
            return None
        raise
    role = (_get(account, "metadata", "annotations") or {}).get(IRSA_ANNOTATION)
    return str(role) if role else None


def pod_identity_role(eks: Any, cluster: str, namespace: str, name: str) -> str | None:
    """The role of the EKS Pod Identity association of the ServiceAccount, if there is one."""
    pages = eks.get_paginator("list_pod_identity_associations").paginate(
        clusterName=cluster, namespace=namespace, serviceAccount=name
    )
    for association in sorted(
        (a for page in pages for a in page.get("associations", [])), key=lambda a: str(a["associationId"])
    ):
        found = eks.describe_pod_identity_association(clusterName=cluster, associationId=association["associationId"])
        role = found["association"].get("roleArn")
        if role:
            return str(role)
    return None


def customer_managed(kms: Any, key_arns: Iterable[str]) -> list[str]:
    """The keys among `key_arns` that are customer managed (DescribeKey KeyManager CUSTOMER)."""
    return sorted(k for k in set(key_arns) if kms.describe_key(KeyId=k)["KeyMetadata"].get("KeyManager") != "AWS")


def kms_problems(iam: Any, role_arn: str, key_arns: Sequence[str]) -> list[str]:
    """One problem per key the role may not use for EBS volumes, naming the actions it lacks.

    ValueError for a role or key that is not an ARN (the simulator's own error would not say
    which input was wrong)."""
    problem = role_arn_problem(role_arn)
    if problem:
        raise ValueError(f"driver role: {problem}")
    for key in key_arns:
        if naming.kms_key_arn_problem(key):
            raise ValueError(f"KMS key {key!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
    if not key_arns:
        return []
    keys = sorted(set(key_arns))
    denied: dict[str, dict[str, str]] = {key: {} for key in keys}
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=role_arn, ActionNames=list(KMS_ACTIONS), ResourceArns=keys, ContextEntries=_GRANT_CONTEXT
    )
    for page in pages:
        for result in page.get("EvaluationResults", []):
            action = str(result["EvalActionName"])
            # One result per action with a decision per resource (the current API), or one result
            # per action and resource (before): read both.
            per_resource = [
                (str(r["EvalResourceName"]), str(r["EvalResourceDecision"]))
                for r in result.get("ResourceSpecificResults") or []
            ] or [(str(result.get("EvalResourceName", "*")), str(result["EvalDecision"]))]
            for resource, decision in per_resource:
                targets = keys if resource == "*" else [resource]
                for key in targets:
                    if decision != "allowed" and key in denied:
                        denied[key][action] = decision
    problems = []
    for key, actions in denied.items():
        if not actions:
            continue
        decisions = sorted(set(actions.values()))
        problems.append(
            f"the driver's role {role_arn} may not {', '.join(sorted(actions))} on KMS key {key} "
            f"({'/'.join(decisions)}): it could not attach or restore volumes encrypted with it. Allow the role "
            f"{', '.join(KMS_ACTIONS)} on the key (CreateGrant under kms:GrantIsForAWSResource=true)"
            + (" and remove the Deny that blocks them" if "explicitDeny" in decisions else "")
        )
    return problems


def check_present_driver(
    apps: Any,
    *,
    key_arns: Sequence[str],
    core: Callable[[], Any],
    aws: Callable[[str], Any],
    cluster: str,
    namespace: str = DRIVER_NAMESPACE,
) -> tuple[list[str], str | None]:
    """(problems, the driver's role when it was looked up). `core` and `aws(service)` build
    their clients only when keys are in use: without keys nothing needs the role."""
    controller = read_controller(apps, namespace)
    problems = snapshotter_problems(controller, namespace=namespace)
    if not key_arns:
        return problems, None
    account = service_account(controller)
    role = irsa_role(core(), namespace, account) or pod_identity_role(aws("eks"), cluster, namespace, account)
    if role is None:
        problems.append(
            f"KMS keys are in use ({', '.join(sorted(key_arns))}) but the driver's ServiceAccount "
            f"{namespace}/{account} has no {IRSA_ANNOTATION} annotation and no EKS Pod Identity association: "
            "it runs with the nodes' role, which this check cannot see; give the driver a role (IRSA or "
            "Pod Identity) allowed to use the keys"
        )
        return problems, None
    bad_role = role_arn_problem(role)
    if bad_role:
        problems.append(f"the driver's role (ServiceAccount {namespace}/{account}): {bad_role}; fix what names it")
        return problems, role
    keys = customer_managed(aws("kms"), key_arns)
    problems += kms_problems(aws("iam"), role, keys)
    return problems, role


def keys_in_use(settings: Settings) -> tuple[str, ...]:
    """The stack's kmsKeyArns, the gp3 class's key and the keys of the listed encrypted volumes,
    once each (AWS managed ones among them are told apart at run time: customer_managed)."""
    volumes = (m.kms_key_id for m in settings.migrations if m.encrypted)
    return tuple(sorted({*settings.driver.kms_key_arns, *(k for k in (settings.storage.kms_key_id, *volumes) if k)}))


def offline_kms_note(key_arns: Sequence[str]) -> str | None:
    """What discovery says about the KMS check, which it leaves to the `up` (exported files have
    no IAM to ask; a live run would need the runner's IAM rights in discover too)."""
    if not key_arns:
        return None
    return (
        f"the driver's rights on KMS keys {', '.join(sorted(key_arns))} were not checked (discover does not ask "
        f"IAM: the check needs live IAM access, iam:SimulatePrincipalPolicy on the driver's role); {_CHECKED_AT_UP}"
    )
