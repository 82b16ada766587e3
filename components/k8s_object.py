"""A Kubernetes object given as a whole manifest, for kinds the Python SDK has no class for.

`kubernetes.apiextensions.CustomResource` in Python takes only `spec`, while a VolumeSnapshotClass
has top-level `driver`, `deletionPolicy` and `parameters` (shared/DESIGN.md "Facts"). The
kubernetes provider accepts any kind under the token `kubernetes:<group>/<version>:<Kind>`.
"""

from typing import Any

import pulumi
import pulumi_kubernetes

_VERSION = pulumi_kubernetes._utilities.get_version()


def object_token(manifest: dict[str, Any]) -> str:
    api_version = manifest["apiVersion"]
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{manifest['kind']}"


class KubernetesObject(pulumi.CustomResource):
    """A custom resource whose inputs are exactly the manifest (wire names)."""

    def __init__(self, resource_name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(version=_VERSION), opts)
        super().__init__(object_token(manifest), resource_name, dict(manifest), opts)
