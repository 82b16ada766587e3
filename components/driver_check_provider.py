"""With `driverInstall: present` or `driverAdopt: true`, a check before the first migration step that
the running driver has what the migration needs (gp3migrate/checks/driver_readiness.py), as a
dynamic resource. An adopted driver keeps its own settings until `driverAdopt: false`
(components/ebs_csi_driver.py), so this stack's sidecar value and role are not yet applied.

It shows in `pulumi preview` as a create, runs once, and deletes nothing: like the proof steps of
components/gate_providers.py, whose diff over input keys it reuses, so a new KMS key in config checks again
while a refreshed kubeconfig does not. It fails the `up` with every problem listed; the
migrations depend on it, so none of their steps runs first.
"""

from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult

from components.gate_providers import OneWayStep, _apps_api, _core_api
from gp3migrate.checks import aws_clients, driver_readiness, preconditions


def _boto3(service: str, region: str) -> Any:
    # Literal service names: tests/test_runner_policy.py finds the runner's calls by them.
    clients = {
        "iam": lambda: aws_clients.client("iam", region),
        "kms": lambda: aws_clients.client("kms", region),
        "eks": lambda: aws_clients.client("eks", region),
    }
    return clients[service]()


def _aws(service: str, region: str) -> Any:
    """The simulation's client when preconditions.RUNTIME has one for the service, else boto3's."""
    factory = getattr(preconditions.RUNTIME, service, None)
    return factory(region) if callable(factory) else _boto3(service, region)


class _DriverCheckProvider(OneWayStep):
    def create(self, props: dict[str, Any]) -> CreateResult:
        kubeconfig, context = props["kubeconfig"], props.get("context") or None
        region = props["region"]
        problems, role = driver_readiness.check_present_driver(
            _apps_api(kubeconfig, context),
            key_arns=tuple(props.get("kmsKeyArns") or ()),
            core=lambda: _core_api(kubeconfig, context),
            aws=lambda service: _aws(service, region),
            cluster=props["clusterName"],
            namespace=props["namespace"],
        )
        if problems and props.get("adopted"):
            raise preconditions.GateError(
                "driverAdopt: true: the adopted EBS CSI driver, which runs with its own settings until "
                "driverAdopt is false, lacks what the migration needs:\n"
                + "".join(f"  - {p}\n" for p in problems)
                + "No migration step has run. Fix these, or set driverAdopt: false to apply this stack's pinned "
                "version and values (an update `pulumi preview` shows), then run `pulumi up` again."
            )
        if problems:
            raise preconditions.GateError(
                "driverInstall: present: the running EBS CSI driver lacks what the migration needs:\n"
                + "".join(f"  - {p}\n" for p in problems)
                + "No migration step has run. Fix these (or let this stack manage the driver: driverInstall helm or "
                "addon with driverAdopt: true, then driverAdopt: false), then run `pulumi up` again."
            )
        return CreateResult(id_=f"driver-checked-{props['clusterName']}", outs={**props, "driverRoleArn": role or ""})


class DriverCheck(pulumi.dynamic.Resource):
    """Succeeds only when the driver the cluster runs has the snapshotter sidecar and its role may
    use the KMS keys in use."""

    def __init__(
        self,
        name: str,
        *,
        cluster_name: str,
        region: str,
        namespace: str,
        kms_key_arns: Sequence[str],
        kubeconfig: pulumi.Input[Any],
        context: str | None,
        opts: pulumi.ResourceOptions,
        adopted: bool = False,
    ):
        props = {
            "clusterName": cluster_name,
            "region": region,
            "namespace": namespace,
            "kmsKeyArns": sorted(kms_key_arns),
            # Secret: a user-supplied kubeconfig may carry credentials.
            "kubeconfig": pulumi.Output.secret(kubeconfig),
            "context": context,
            # Only when adopting: a kept driver's check keeps the inputs it had.
            **({"adopted": True} if adopted else {}),
        }
        super().__init__(_DriverCheckProvider(), name, props, opts)
