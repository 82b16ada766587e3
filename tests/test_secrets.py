"""A kubeconfig given in config stays secret wherever it flows (issue 23 item 5): in no registered
input, no resource output as the engine stores it, and no component or stack output does its text
appear in clear.

The real program runs under mocks with a monitor that keeps each request as the SDK sent it
(secret values still wrapped in the SDK's secret signature; the mocks' own deserialization drops
it). Outputs: the mocks answer with the inputs as state, so a resource's stored outputs are taken
as the engine would store them: an output named like a secret input stays secret (the provider
host marks it, pulumi `pkg/resource/plugin/provider_plugin.go` annotateSecrets), and so does an
output listed in `additionalSecretOutputs` (`pkg/resource/deploy/step_executor.go`); anything
else in clear is a leak. Not proven: what a provider writes into other outputs of its own (only a
live run's state shows that), or the secrets provider's encryption.
"""

from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from pulumi.runtime import rpc

from tests import rehearsal_mocks
from tests.mock_cloud import (
    MAIN,
    FakeCloud,
    RecordingMonitor,
    Run,
    copy_stack_config,
    evaluate_under_mocks,
)

KEY = "eks-gp3-migration"
# Distinctive strings of the kubeconfig's credential: found anywhere in clear, they leaked.
TOKEN = "k8s-aws-v1.c2VjcmV0LXRva2VuLWRvLW5vdC1sZWFr"
KUBECONFIG = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dev", "cluster": {"server": "https://dev.example"}}],
        "users": [{"name": "runner", "user": {"token": TOKEN}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "runner"}}],
        "current-context": "dev",
    }
)


def in_clear(value: Any, path: str = "") -> list[str]:
    """Where the token appears outside a secret (the SDK's wire form of a secret: a map with the
    special signature key set to the secret signature, pulumi/runtime/rpc.py)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return []
        return [p for k, v in value.items() for p in in_clear(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in in_clear(v, f"{path}[{i}]")]
    return [path or "(value)"] if isinstance(value, str) and TOKEN in value else []


def secret_keys(wire: dict[str, Any]) -> set[str]:
    return {
        k for k, v in wire.items() if isinstance(v, dict) and v.get(rpc._special_sig_key) == rpc._special_secret_sig
    }


class WireMonitor(RecordingMonitor):
    """Keeps every RegisterResource and RegisterResourceOutputs request on the wire."""

    def __init__(self, cloud: FakeCloud, run: Run):
        super().__init__(cloud, run)
        self.inputs: list[tuple[str, str, dict[str, Any], list[str]]] = []
        self.outputs: list[tuple[str, str, dict[str, Any]]] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        wire = json_format.MessageToDict(request.object)
        self.inputs.append((request.type, request.name, wire, list(request.additionalSecretOutputs)))
        # The state the engine would store: the mocks echo the inputs; secret as the engine marks it.
        state = json_format.MessageToDict(response.object)
        kept_secret = secret_keys(wire) | set(request.additionalSecretOutputs)
        stored = {k: v for k, v in state.items() if k not in kept_secret}
        self.outputs.append((request.type, request.name, stored))
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        self.outputs.append(("outputs", request.urn, json_format.MessageToDict(request.outputs)))
        return super().RegisterResourceOutputs(request)


def run_wire(config: dict[str, Any]) -> tuple[Run, WireMonitor]:
    import runpy

    monitors: list[WireMonitor] = []

    def monitor_for(cloud: FakeCloud, run: Run) -> WireMonitor:
        monitors.append(WireMonitor(cloud, run))
        return monitors[0]

    region = str(config[f"{KEY}:region"])
    run = evaluate_under_mocks(
        lambda: runpy.run_path(str(MAIN), run_name="__main__"),
        config,
        cloud=FakeCloud(region, {}),
        stack="dev",
        preview=False,
        monitor_for=monitor_for,
    )
    return run, monitors[0]


def leaks(monitor: WireMonitor) -> list[str]:
    found = [f"input of {t} {n}: {p}" for t, n, wire, _ in monitor.inputs for p in in_clear(wire)]
    found += [f"output of {t} {n}: {p}" for t, n, wire in monitor.outputs for p in in_clear(wire)]
    return found


@pytest.fixture(autouse=True)
def rehearsal_cloud(monkeypatch):
    return rehearsal_mocks.install(monkeypatch)


@pytest.mark.parametrize(
    "changes",
    [{}, {"driverInstall": "present"}],
    ids=["helm install", "driver present (its check reads the cluster)"],
)
def test_a_kubeconfig_from_config_is_in_clear_nowhere(changes):
    config = {**copy_stack_config("dev"), f"{KEY}:kubeconfig": KUBECONFIG}
    config.update({f"{KEY}:{k}": v for k, v in changes.items()})
    run, monitor = run_wire(config)
    assert run.error is None, run.error
    # It reached the provider (and the proof steps): the test looks where the kubeconfig goes.
    providers = [(wire, secret) for t, _, wire, secret in monitor.inputs if t == "pulumi:providers:kubernetes"]
    assert providers and all("kubeconfig" in secret_keys(wire) for wire, _ in providers)
    assert all("kubeconfig" in secret for _, secret in providers)
    assert leaks(monitor) == []
    assert in_clear(run.outputs) == []


def test_the_check_sees_a_kubeconfig_in_clear():
    """The detector finds the token where it is not wrapped, and not where it is."""
    plain = {"kubeconfig": KUBECONFIG}
    wrapped = {"kubeconfig": {rpc._special_sig_key: rpc._special_secret_sig, "value": KUBECONFIG}}
    assert in_clear(plain) == ["kubeconfig"]
    assert in_clear({"a": [plain]}) == ["a[0].kubeconfig"]
    assert in_clear(wrapped) == []
