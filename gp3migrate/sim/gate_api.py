"""The part of the kubernetes client's CoreV1Api and AppsV1Api the project's gate code calls, over
the simulated store, returning the client's own model objects and raising its ApiException."""

from __future__ import annotations

import copy
from typing import Any

from gp3migrate.sim.kube_store import KubeError, _merge


def _model(data: dict[str, Any], type_name: str) -> Any:
    from kubernetes.client import ApiClient

    return ApiClient()._ApiClient__deserialize(copy.deepcopy(data), type_name)  # type: ignore[attr-defined]


class FakeCoreV1Api:
    def __init__(self, world: Any):
        self.world = world

    def _count(self, method: str) -> None:
        self.world.api_calls[method] = self.world.api_calls.get(method, 0) + 1

    def _missing(self, kind: str, name: str) -> Exception:
        return self.world.kube_error(KubeError("NotFound", f'{kind} "{name}" not found'))

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> Any:
        self._count("read_namespaced_persistent_volume_claim")
        obj = self.world.kube.get("v1", "PersistentVolumeClaim", namespace, name)
        if obj is None:
            raise self._missing("persistentvolumeclaims", name)
        return _model(obj, "V1PersistentVolumeClaim")

    def delete_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> None:
        self._count("delete_namespaced_persistent_volume_claim")
        try:
            self.world.kube.delete("v1", "PersistentVolumeClaim", namespace, name)
        except KubeError as err:
            raise self.world.kube_error(err) from err

    def read_persistent_volume(self, name: str) -> Any:
        self._count("read_persistent_volume")
        obj = self.world.kube.get("v1", "PersistentVolume", "", name)
        if obj is None:
            raise self._missing("persistentvolumes", name)
        return _model(obj, "V1PersistentVolume")

    def patch_persistent_volume(self, name: str, body: dict[str, Any]) -> Any:
        self._count("patch_persistent_volume")
        live = self.world.kube.live("PersistentVolume", "", name)
        if live is None:
            raise self._missing("persistentvolumes", name)
        _merge(live, body)
        return _model(live, "V1PersistentVolume")

    def delete_persistent_volume(self, name: str) -> None:
        self._count("delete_persistent_volume")
        try:
            self.world.kube.delete("v1", "PersistentVolume", "", name)
        except KubeError as err:
            raise self.world.kube_error(err) from err


class FakeAppsV1Api:
    def __init__(self, world: Any):
        self.world = world

    def _scale(self, kind: str, name: str, namespace: str, body: dict[str, Any]) -> Any:
        self.world.api_calls[f"patch_{kind}_scale"] = self.world.api_calls.get(f"patch_{kind}_scale", 0) + 1
        live = self.world.kube.live(kind, namespace, name)
        if live is None:
            raise self.world.kube_error(KubeError("NotFound", f'{kind} "{name}" not found'))
        live["spec"]["replicas"] = int(body["spec"]["replicas"])
        return _model({"spec": {"replicas": live["spec"]["replicas"]}}, "V1Scale")

    def read_namespaced_deployment(self, name: str, namespace: str) -> Any:
        obj = self.world.kube.get("apps/v1", "Deployment", namespace, name)
        if obj is None:
            raise self.world.kube_error(KubeError("NotFound", f'Deployment "{name}" not found'))
        return _model(obj, "V1Deployment")

    def read_namespaced_stateful_set(self, name: str, namespace: str) -> Any:
        obj = self.world.kube.get("apps/v1", "StatefulSet", namespace, name)
        if obj is None:
            raise self.world.kube_error(KubeError("NotFound", f'StatefulSet "{name}" not found'))
        return _model(obj, "V1StatefulSet")

    def patch_namespaced_deployment_scale(self, name: str, namespace: str, body: dict[str, Any]) -> Any:
        return self._scale("Deployment", name, namespace, body)

    def patch_namespaced_stateful_set_scale(self, name: str, namespace: str, body: dict[str, Any]) -> Any:
        return self._scale("StatefulSet", name, namespace, body)
