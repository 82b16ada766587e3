"""Whether an IAM policy document allows one request: the evaluation the runner policy's tests
(tests/test_iam_requests.py) and the simulation's EC2 (gp3migrate/sim/ebs.py) apply to every call
the program makes, so a call the printed policy does not allow is refused where it is made.

Enough IAM evaluation (IAM User Guide, "Policy evaluation logic" and "Condition operators") for
the runner's policy: an explicit Deny wins, else some Allow must match the action, the resource
and every condition. Operators: String/Arn Equals and Like, Null, Bool, and the ForAllValues /
ForAnyValue set forms; a key missing from the context fails every operator but Null and
ForAllValues (which holds for an empty set, the documented pitfall). Not modelled: SCPs,
permission boundaries, session policies, resource policies (KMS key policies), NotAction and
NotResource (the program's documents use neither).
"""

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)


def _matches(operator: str, actual: str, wanted: str) -> bool:
    if operator in ("StringEquals", "ArnEquals", "Bool"):
        return actual == wanted
    if operator in ("StringLike", "ArnLike"):
        return fnmatch.fnmatchcase(actual, wanted)
    raise ValueError(f"operator {operator} is not modelled")


def _clause_holds(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    wanted_values = [str(w).lower() if isinstance(w, bool) else str(w) for w in _as_list(wanted)]
    if operator == "Null":
        return (key not in context) == (wanted_values == ["true"])
    qualifier, _, base = operator.rpartition(":")
    if key not in context:
        return qualifier == "ForAllValues"
    actual = _as_list(context[key])
    if qualifier == "ForAllValues":
        return all(any(_matches(base, a, w) for w in wanted_values) for a in actual)
    if qualifier == "ForAnyValue" or len(actual) == 1:
        return any(_matches(base, a, w) for a in actual for w in wanted_values)
    raise ValueError(f"{key} has several values: use a ForAllValues/ForAnyValue operator")


def _statement_matches(statement: dict[str, Any], request: Request) -> bool:
    if not any(fnmatch.fnmatchcase(request.action, a) for a in _as_list(statement["Action"])):
        return False
    if not any(fnmatch.fnmatchcase(request.resource, r) for r in _as_list(statement["Resource"])):
        return False
    return all(
        _clause_holds(operator, key, wanted, request.context)
        for operator, clauses in statement.get("Condition", {}).items()
        for key, wanted in clauses.items()
    )


def evaluate(policy: dict[str, Any], request: Request) -> bool:
    """Whether the policy allows the request (no explicit Deny, some Allow)."""
    matching = [s for s in policy["Statement"] if _statement_matches(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)
