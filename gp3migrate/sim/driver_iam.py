"""What the driver check (gp3migrate/checks/driver_readiness.py) asks AWS about the running driver's role, as
the simulated world answers it: KMS `DescribeKey` and IAM `SimulatePrincipalPolicy`.

moto keeps neither a policy simulator nor keys with the ARNs a stack file names, so the world holds
the one fact the check needs: which KMS keys the driver's role may use. A seeded world grants it
every key that encrypts one of its volumes (with CSI migration the driver already attaches them,
EKS 1.23 release notes, so a working cluster's driver can use them) and the keys the stack lists in
`kmsKeyArns`; a scenario can take a grant away (`World.driver_kms_keys`).

The answers have the shapes of the real API: `DescribeKey` -> `KeyMetadata.KeyManager`
(CUSTOMER or AWS), `SimulatePrincipalPolicy` -> one `EvaluationResults` item per action with a
`ResourceSpecificResults` decision per key (IAM API reference, SimulatePrincipalPolicy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

# AWS managed keys are named by alias (alias/aws/ebs) or flagged so; the rest are customer managed.
AWS_MANAGED_PREFIX = "alias/aws/"


class SimKms:
    """kms.describe_key, the one call the driver check makes."""

    def __init__(self, known_keys: Callable[[], set[str]]):
        self._known = known_keys

    def describe_key(self, *, KeyId: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        manager = "AWS" if KeyId.startswith(AWS_MANAGED_PREFIX) else "CUSTOMER"
        if manager == "CUSTOMER" and KeyId not in self._known():
            raise ClientError(
                {"Error": {"Code": "NotFoundException", "Message": f"Key '{KeyId}' does not exist"}}, "DescribeKey"
            )
        return {"KeyMetadata": {"Arn": KeyId, "KeyManager": manager, "KeyState": "Enabled"}}


class _SimulatePages:
    def __init__(self, decide: Callable[[str, str], bool]):
        self._decide = decide

    def paginate(self, **request: Any) -> Iterator[dict[str, Any]]:
        """boto3's keyword names: PolicySourceArn, ActionNames, ResourceArns."""
        role, keys = str(request["PolicySourceArn"]), list(request["ResourceArns"])
        results = []
        for action in request["ActionNames"]:
            per_key = [
                {
                    "EvalResourceName": key,
                    "EvalResourceDecision": "allowed" if self._decide(role, key) else "implicitDeny",
                }
                for key in keys
            ]
            overall = "allowed" if all(r["EvalResourceDecision"] == "allowed" for r in per_key) else "implicitDeny"
            results.append({"EvalActionName": action, "EvalDecision": overall, "ResourceSpecificResults": per_key})
        yield {"EvaluationResults": results, "IsTruncated": False}


class SimIam:
    """iam.get_paginator("simulate_principal_policy"): the driver's role may use a key or not, for
    every KMS action the check asks about alike (the grants are per key in the world)."""

    def __init__(self, role_arn: Callable[[], str | None], granted_keys: Callable[[], set[str]]):
        self._role = role_arn
        self._granted = granted_keys

    def get_paginator(self, operation: str) -> _SimulatePages:
        if operation != "simulate_principal_policy":
            raise AssertionError(f"the simulated IAM answers only simulate_principal_policy, not {operation}")
        return _SimulatePages(lambda role, key: role == self._role() and key in self._granted())
