"""Opt-in live test: the whole migration of the demo volume on a real, throwaway EKS cluster.

Needs: EKS_GP3_LIVE=1, the Pulumi CLI on PATH and logged in, AWS credentials for an account where
creating an EKS cluster is fine (about $0.10/h for the control plane plus two t3.medium nodes,
roughly $0.30 for a 1-hour run), the aws CLI (the kubeconfig runs `aws eks get-token`), and
internet access for the chart and the external-snapshotter manifests. It creates the stack
`rehearsal` (or EKS_GP3_LIVE_STACK), runs every phase, and destroys everything at the end.

Through the Automation API: up -> assert -> a second preview expecting no changes -> next phase,
then destroy (pulumi/examples testing-integration-py does the same).
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK = os.environ.get("EKS_GP3_LIVE_STACK", "rehearsal")
PREFIX = "eks-gp3-migration"


def _missing() -> list[str]:
    missing = []
    if os.environ.get("EKS_GP3_LIVE") != "1":
        missing.append("EKS_GP3_LIVE=1 (this test creates a real EKS cluster and costs money)")
    if shutil.which("pulumi") is None:
        missing.append("the Pulumi CLI on PATH (logged in to a backend)")
    if shutil.which("aws") is None:
        missing.append("the aws CLI on PATH")
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        missing.append("AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    return missing


pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(bool(_missing()), reason="live test skipped; it needs: " + "; ".join(_missing())),
]


def _read_file(core, namespace: str, selector: str, path: str) -> list[str]:
    from kubernetes.stream import stream

    pod = core.list_namespaced_pod(namespace, label_selector=selector).items[0].metadata.name
    out = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=["cat", path],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    return [line for line in out.splitlines() if line.strip()]


def _set_migrations(stack, entries: list[dict]) -> None:
    from pulumi import automation as auto

    stack.set_config(f"{PREFIX}:migrations", auto.ConfigValue(value=json.dumps(entries)), path=False)


def _up_then_no_changes(stack) -> dict:
    result = stack.up(on_output=print)
    preview = stack.preview(on_output=print, expect_no_changes=True)
    assert preview.change_summary.get("same", 0) > 0
    return {k: v.value for k, v in result.outputs.items()}


@pytest.mark.parametrize("strategy", ["rehome", "copy"])
def test_demo_volume_moves_to_gp3_without_losing_a_write(tmp_path, strategy):
    import boto3
    from kubernetes import client, config
    from pulumi import automation as auto

    from gp3migrate.discovery.inventory import describe_volumes, live_kube_items
    from gp3migrate.discovery.volumes import discover, volume_ids_to_describe
    from gp3migrate.planning.demo_manifests import DEMO_APP, DEMO_CLAIM, DEMO_NAMESPACE

    stack = auto.create_or_select_stack(stack_name=STACK, work_dir=str(PROJECT_DIR))
    region = stack.get_config(f"{PREFIX}:region").value
    try:
        _up_then_no_changes(stack)  # cluster, platform, demo workload
        kubeconfig = str(tmp_path / "kubeconfig")
        cluster_name = stack.get_config(f"{PREFIX}:clusterName").value
        subprocess.run(
            ["aws", "eks", "update-kubeconfig", "--name", cluster_name, "--region", region, "--kubeconfig", kubeconfig],
            check=True,
        )
        config.load_kube_config(config_file=kubeconfig)
        core = client.CoreV1Api()
        time.sleep(60)  # a minute of timestamps on gp2

        items = live_kube_items(kubeconfig, None)
        ec2 = boto3.client("ec2", region_name=region)
        found = discover(items, describe_volumes(ec2, volume_ids_to_describe(items)))
        keys = {"strategy": "copy", "claimNaming": "same-name"} if strategy == "copy" else {}
        entries = [dict(e, **keys) for e in found.entries if e["claim"] == DEMO_CLAIM]
        assert len(entries) == 1, found
        _set_migrations(stack, [dict(entries[0], phase="precopy")])
        _up_then_no_changes(stack)
        # Everything written up to here, and up to the quiesce, must reach the gp3 volume.
        before = _read_file(core, DEMO_NAMESPACE, f"app={DEMO_APP}", "/data/out.txt")
        _set_migrations(stack, [dict(entries[0], phase="cutover")])
        outputs = _up_then_no_changes(stack)

        after = _read_file(core, DEMO_NAMESPACE, f"app={DEMO_APP}", "/data/out.txt")
        assert after[: len(before)] == before, "a timestamp written before the quiesce is missing on gp3"
        planned = outputs["migrations"][f"{DEMO_NAMESPACE}/{DEMO_CLAIM}"]
        if strategy == "rehome":
            # The same volume, now gp3, served by a CSI PV under the same claim name.
            volumes = ec2.describe_volumes(VolumeIds=[entries[0]["volumeId"]])["Volumes"]
            claim = core.read_namespaced_persistent_volume_claim(DEMO_CLAIM, DEMO_NAMESPACE)
            assert claim.spec is not None and claim.spec.volume_name
            pv = core.read_persistent_volume(claim.spec.volume_name)
            assert pv.spec is not None and pv.spec.csi is not None
            assert pv.spec.csi.volume_handle == entries[0]["volumeId"]
        else:
            volumes = ec2.describe_volumes(
                Filters=[
                    {"Name": "tag:kubernetes.io/created-for/pvc/name", "Values": [DEMO_CLAIM]},
                    {"Name": "volume-type", "Values": ["gp3"]},
                ]
            )["Volumes"]
        assert [(v["VolumeType"], v["Iops"], v["Throughput"]) for v in volumes] == [
            ("gp3", planned["plannedIops"], planned["plannedThroughput"])
        ]

        for phase in ("finalize", "cleanup"):  # unprotect, then let go of the snapshots
            _set_migrations(stack, [dict(entries[0], phase=phase)])
            _up_then_no_changes(stack)
    finally:
        stack.destroy(on_output=print)
