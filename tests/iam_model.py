"""A small evaluator of the managed policies' Allow statements for one action on one tagged
resource: enough to tell whether the driver may restore from or delete our snapshots.

It understands the condition operators these policies use on resource tags (StringEquals,
StringLike); a statement whose condition needs anything else (request tags, create action) does
not apply to an existing resource and is skipped. Not modelled: SCPs, permission boundaries, KMS.

The runner policy's evaluator (Request, evaluate) lives in gp3migrate/iam/policy_evaluation.py,
where the simulation's EC2 uses it too.
"""

import fnmatch
from typing import Any

from gp3migrate.iam.policy_evaluation import Request, evaluate

__all__ = ["Request", "allowed", "evaluate"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: dict[str, Any], tags: dict[str, str]) -> bool:
    for operator, clauses in condition.items():
        if operator not in ("StringEquals", "StringLike"):
            return False
        for key, wanted in clauses.items():
            if not key.startswith("ec2:ResourceTag/"):
                return False
            actual = tags.get(key.removeprefix("ec2:ResourceTag/"))
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in _as_list(wanted):
                return False
            if operator == "StringLike" and not any(fnmatch.fnmatchcase(actual, w) for w in _as_list(wanted)):
                return False
    return True


def allowed(policy: dict[str, Any], action: str, resource_arn: str, tags: dict[str, str]) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or action not in _as_list(statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource_arn, pattern) for pattern in _as_list(statement["Resource"])):
            continue
        if _condition_holds(statement.get("Condition", {}), tags):
            return True
    return False
