"""Validation of manifests against the real schemas: Kubernetes (kubernetes-validate) and CRDs."""

from typing import Any

import jsonschema
import kubernetes_validate

from tests.conftest import KUBERNETES_VERSION


def validate_kubernetes(manifest: dict[str, Any]) -> None:
    """Strict: unknown fields are errors too."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def _structural(schema: Any) -> Any:
    """A CRD openAPIV3Schema as JSON Schema: drop the x-kubernetes-* extensions, and treat a
    property list without additionalProperties as closed (the API server prunes unknown fields)."""
    if isinstance(schema, dict):
        out = {k: _structural(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_structural(v) for v in schema]
    return schema


def validate_crd(manifest: dict[str, Any], crd_schema: dict[str, Any]) -> None:
    schema = _structural(crd_schema)
    # metadata is the API server's ObjectMeta, not described by the CRD.
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.Draft202012Validator(schema).validate(manifest)


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic-merge-like overlay of maps, enough for the patches this program declares."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
