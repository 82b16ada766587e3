"""Opt-in live test: `gp3migrate advance` and `status` through the real Automation API (the path the
mock tests reach only through a fake at the LocalWorkspace boundary), on the throwaway cluster of
test_end_to_end.py. Same needs (EKS_GP3_LIVE=1, the Pulumi and aws CLIs, AWS credentials); it
creates the stack, moves the demo volume with `advance` precopy then cutover, reads `status`, and
destroys everything at the end."""

import subprocess

import pytest

from tests.live.test_end_to_end import PREFIX, PROJECT_DIR, STACK, _missing, _set_migrations

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(bool(_missing()), reason="live test skipped; it needs: " + "; ".join(_missing())),
]


def test_advance_moves_the_demo_volume_through_the_automation_api(tmp_path) -> None:
    import boto3
    from pulumi import automation as auto

    from gp3migrate.config.stack_file import read_stack, stack_path
    from gp3migrate.discovery.inventory import describe_volumes, live_kube_items
    from gp3migrate.discovery.volumes import discover, volume_ids_to_describe
    from gp3migrate.fleet import advance
    from gp3migrate.fleet.selection import Selection
    from gp3migrate.fleet.stack_runner import PulumiStack
    from gp3migrate.planning.demo_manifests import DEMO_CLAIM, DEMO_NAMESPACE

    stack = auto.create_or_select_stack(stack_name=STACK, work_dir=str(PROJECT_DIR))
    region = stack.get_config(f"{PREFIX}:region").value
    try:
        stack.up(on_output=print)  # cluster, platform, demo workload
        kubeconfig = str(tmp_path / "kubeconfig")
        cluster_name = stack.get_config(f"{PREFIX}:clusterName").value
        subprocess.run(
            ["aws", "eks", "update-kubeconfig", "--name", cluster_name, "--region", region, "--kubeconfig", kubeconfig],
            check=True,
        )
        items = live_kube_items(kubeconfig, None)
        found = discover(
            items, describe_volumes(boto3.client("ec2", region_name=region), volume_ids_to_describe(items))
        )
        entries = [e for e in found.entries if e["claim"] == DEMO_CLAIM]
        assert len(entries) == 1, found
        _set_migrations(stack, [dict(entries[0], phase="precopy")])
        runner = PulumiStack(PROJECT_DIR, STACK)
        for phase in ("precopy", "cutover"):
            request = advance.Request(
                stack=STACK,
                to=phase,  # type: ignore[arg-type]
                selection=Selection.parse(wave=None, select=[f"claim={DEMO_NAMESPACE}/{DEMO_CLAIM}"]),
                yes=True,
            )
            assert advance.advance(PROJECT_DIR, request, runner) == advance.EXIT_DONE
        applied = runner.outputs()["migrationPhases"][f"{DEMO_NAMESPACE}/{DEMO_CLAIM}"]
        assert applied["phase"] == "cutover"
        asked = read_stack(stack_path(PROJECT_DIR, STACK)).get("migrations")
        assert [e["phase"] for e in asked] == ["cutover"]
    finally:
        stack.destroy(on_output=print)
