"""The part of the kubernetes client's CoreV1Api, AppsV1Api and CustomObjectsApi the project's gate code calls, over the
simulated API server (gp3migrate/sim/kube/store.py): the client's own model objects come back, its
ApiException is raised, and every call is counted in `ClusterState.api_calls` by method.

Writes are made as the client's default field manager: the apiserver names a manager after the
request's user agent, which for this client is "OpenAPI-Generator/<version>/python"
(apiserver `endpoints/handlers/rest.go` managerOrUserAgent)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from gp3migrate.config import window_owners
from gp3migrate.sim.clock import TICK_SECONDS
from gp3migrate.sim.kube import KubeError

if TYPE_CHECKING:
    from gp3migrate.sim.kube.cluster_state import ClusterState

MANAGER = "OpenAPI-Generator"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REASONS = {403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity"}
T = TypeVar("T")


def timestamp(tick: int, tick_seconds: int) -> str:
    """A tick as the RFC 3339 time the API would show (simulated time starts at the Unix epoch)."""
    return (EPOCH + timedelta(seconds=tick * tick_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Api:
    def __init__(self, world: ClusterState):
        self.world = world
        self._client = ApiClient()

    def _call(self, method: str, action: Callable[[], T]) -> T:
        """Count the call; turn the store's KubeError into the client's ApiException."""
        self.world.api_calls[method] += 1
        try:
            return action()
        except KubeError as err:
            raise _api_exception(err.status, err.reason, err.message) from err

    def _model(self, obj: dict[str, Any] | None, type_name: str) -> Any:
        """The client's model object for a stored object (timestamps as the API shows them)."""
        if obj is None:
            return None

        wire = copy.deepcopy(obj)
        for field in ("creationTimestamp", "deletionTimestamp"):
            if isinstance(wire.get("metadata", {}).get(field), int):
                wire["metadata"][field] = timestamp(wire["metadata"][field], TICK_SECONDS)
        return self._client.deserialize(json.dumps(wire), type_name, "application/json")

    def _body(self, body: Any, api_version: str, kind: str) -> dict[str, Any]:
        """A request body (a model object or a dict) as a wire dict."""
        wire = copy.deepcopy(self._client.sanitize_for_serialization(body))
        wire.setdefault("apiVersion", api_version)
        wire.setdefault("kind", kind)
        return dict(wire)

    def _read(self, method: str, api_version: str, kind: str, namespace: str, name: str, type_name: str) -> Any:
        def read() -> Any:
            obj = self.world.kube.get(api_version, kind, namespace, name)
            if obj is None:
                raise KubeError("NotFound", f'{kind.lower()}s "{name}" not found')
            return self._model(obj, type_name)

        return self._call(method, read)


def _api_exception(status: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=status, reason=REASONS.get(status, reason))
    error.body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": status,
        }
    )
    return error


class FakeCoreV1Api(_Api):
    """kubernetes.client.CoreV1Api, the methods the gate code uses."""

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read(
            "read_namespaced_persistent_volume_claim",
            "v1",
            "PersistentVolumeClaim",
            namespace,
            name,
            "V1PersistentVolumeClaim",
        )

    def read_namespaced_service_account(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read(
            "read_namespaced_service_account", "v1", "ServiceAccount", namespace, name, "V1ServiceAccount"
        )

    def read_persistent_volume(self, name: str, **_: Any) -> Any:
        return self._read("read_persistent_volume", "v1", "PersistentVolume", "", name, "V1PersistentVolume")

    def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("read_namespaced_pod", "v1", "Pod", namespace, name, "V1Pod")

    def list_namespaced_pod(self, namespace: str, **_: Any) -> Any:
        def pods() -> Any:
            items = self.world.kube.list("v1", "Pod", namespace)
            return self._model({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}, "V1PodList")

        return self._call("list_namespaced_pod", pods)

    def create_namespaced_persistent_volume_claim(self, namespace: str, body: Any, **_: Any) -> Any:
        def create() -> Any:
            obj = self._body(body, "v1", "PersistentVolumeClaim")
            metadata = obj.setdefault("metadata", {})
            if metadata.setdefault("namespace", namespace) != namespace:
                raise _api_exception(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            return self._model(self.world.kube.create(obj, manager=MANAGER), "V1PersistentVolumeClaim")

        return self._call("create_namespaced_persistent_volume_claim", create)

    def create_persistent_volume(self, body: Any, **_: Any) -> Any:
        def create() -> Any:
            obj = self._body(body, "v1", "PersistentVolume")
            return self._model(self.world.kube.create(obj, manager=MANAGER), "V1PersistentVolume")

        return self._call("create_persistent_volume", create)

    def patch_persistent_volume(self, name: str, body: Any, **_: Any) -> Any:
        def patch() -> Any:
            changes = self._client.sanitize_for_serialization(body)
            return self._model(
                self.world.kube.patch("v1", "PersistentVolume", "", name, changes, MANAGER), "V1PersistentVolume"
            )

        return self._call("patch_persistent_volume", patch)

    def patch_namespaced_persistent_volume_claim(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        def patch() -> Any:
            changes = self._client.sanitize_for_serialization(body)
            patched = self.world.kube.patch("v1", "PersistentVolumeClaim", namespace, name, changes, MANAGER)
            return self._model(patched, "V1PersistentVolumeClaim")

        return self._call("patch_namespaced_persistent_volume_claim", patch)

    def delete_namespaced_persistent_volume_claim(self, name: str, namespace: str, **_: Any) -> Any:
        def delete() -> Any:
            left = self.world.kube.delete("v1", "PersistentVolumeClaim", namespace, name)
            return self._model(left, "V1PersistentVolumeClaim")

        return self._call("delete_namespaced_persistent_volume_claim", delete)

    def delete_persistent_volume(self, name: str, **_: Any) -> Any:
        def delete() -> Any:
            return self._model(self.world.kube.delete("v1", "PersistentVolume", "", name), "V1PersistentVolume")

        return self._call("delete_persistent_volume", delete)


class FakeAppsV1Api(_Api):
    """kubernetes.client.AppsV1Api, the methods the gate code uses."""

    def read_namespaced_deployment(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("read_namespaced_deployment", "apps/v1", "Deployment", namespace, name, "V1Deployment")

    def read_namespaced_stateful_set(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("read_namespaced_stateful_set", "apps/v1", "StatefulSet", namespace, name, "V1StatefulSet")

    def patch_namespaced_deployment_scale(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        return self._scale("patch_namespaced_deployment_scale", "Deployment", name, namespace, body)

    def patch_namespaced_stateful_set_scale(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        return self._scale("patch_namespaced_stateful_set_scale", "StatefulSet", name, namespace, body)

    def _scale(self, method: str, kind: str, name: str, namespace: str, body: Any) -> Any:
        """The scale subresource: only spec.replicas of the workload changes."""

        def scale() -> Any:
            replicas = int(self._client.sanitize_for_serialization(body)["spec"]["replicas"])
            workload = self.world.kube.patch(
                "apps/v1", kind, namespace, name, {"spec": {"replicas": replicas}}, MANAGER
            )
            return self._model(
                {
                    "apiVersion": "autoscaling/v1",
                    "kind": "Scale",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"replicas": workload["spec"]["replicas"]},
                    "status": {"replicas": (workload.get("status") or {}).get("replicas", 0)},
                },
                "V1Scale",
            )

        return self._call(method, scale)


class FakeCustomObjectsApi(_Api):
    """kubernetes.client.CustomObjectsApi, the methods the owners' gates use, over the owner objects
    the simulated controllers read (kube/gitops.py, kube/autoscalers.py). Like the client, it takes
    and returns plain dicts; a kind whose CRD is not served is a 404 (the apiserver has no such path)."""

    def _kind(self, group: str, version: str, plural: str) -> str:
        for kind, resource in window_owners.RESOURCES.items():
            if (resource.group, resource.version, resource.plural) == (group, version, plural):
                return kind
        raise KubeError("NotFound", "the server could not find the requested resource")

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
        def get() -> Any:
            kind = self._kind(group, version, plural)
            obj = self.world.kube.get(f"{group}/{version}", kind, namespace, name)
            if obj is None:
                raise KubeError("NotFound", f'{plural}.{group} "{name}" not found')
            return obj

        return self._call("get_namespaced_custom_object", get)

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any, **_: Any
    ) -> Any:
        """A dict body goes as a JSON merge patch (the client's default content type for this call,
        kubernetes-client/python custom_objects_api.py; RFC 7386: a null removes the key)."""

        def patch() -> Any:
            kind = self._kind(group, version, plural)
            changes = self._client.sanitize_for_serialization(body)
            return self.world.kube.patch(f"{group}/{version}", kind, namespace, name, changes, MANAGER)

        return self._call("patch_namespaced_custom_object", patch)
