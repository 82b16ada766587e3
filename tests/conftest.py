"""Shared fixtures. Upstream data is read from ../shared/fixtures, never copied into the repo;
tests that need it skip with the reason when it is absent (a user's clone)."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings

from tests.mock_cloud import PROJECT_DIR

SHARED = PROJECT_DIR.parent / "shared"
CHART_FIXTURES = SHARED / "fixtures" / "aws-ebs-csi-driver-2.64.0"
SNAPSHOTTER_FIXTURES = SHARED / "fixtures" / "external-snapshotter-v8.6.0"
# EKS standard-support versions at the time of writing; schemas come from kubernetes-validate.
KUBERNETES_VERSION = "1.31.0"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"upstream fixture {path} is absent: these tests need ../shared beside the checkout")
    return path


@pytest.fixture(scope="session")
def chart_values_schema() -> dict[str, Any]:
    return json.loads(_require(CHART_FIXTURES / "values.schema.json").read_text())


@pytest.fixture(scope="session")
def iam_policies() -> dict[str, dict[str, Any]]:
    return {
        "v1": json.loads(_require(CHART_FIXTURES / "example-iam-policy.json").read_text()),
        "v2": json.loads(_require(CHART_FIXTURES / "AmazonEBSCSIDriverPolicyV2.json").read_text()),
    }


@pytest.fixture(scope="session")
def snapshot_crd_schemas() -> dict[str, dict[str, Any]]:
    """kind -> the openAPIV3Schema of the served v1 version of that CRD."""
    schemas = {}
    for path in sorted(_require(SNAPSHOTTER_FIXTURES).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


# `pytest --hypothesis-profile=deep`: the generated-world property's longer run, before a release
# (tests/sim/test_generated_worlds.py reads the profile's max_examples; docs/testing.md).
settings.register_profile("deep", max_examples=150, deadline=None)
