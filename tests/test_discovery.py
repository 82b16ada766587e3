"""Discovery on moto with realistic in-tree volumes and self-written kubectl JSON: what it
proposes, what it leaves out and why, how many AWS calls it makes, and that the program accepts
its output unchanged. Not proven: the shape of a real cluster's JSON beyond these fixtures."""

import json
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from gp3migrate import cli
from gp3migrate.config import load_settings
from gp3migrate.discovery import discover, volume_ids_to_describe
from gp3migrate.inventory import describe_volumes
from tests.kube_fixtures import (
    REGION,
    claim,
    create_in_tree_volume,
    csi_pv,
    deployment_mounting,
    fleet,
    in_tree_pv,
    statefulset_mounting,
)
from tests.mock_cloud import run_program


class CallCounter:
    def __init__(self, client):
        self.calls: list[str] = []
        client.meta.events.register("before-call.ec2.*", lambda model, **_: self.calls.append(model.name))


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def mixed_cluster(ec2):
    items = []
    gp2 = create_in_tree_volume(ec2, size=1, zone="eu-central-1c", pv="pv-web", namespace="default", claim_name="web")
    items += [
        in_tree_pv("pv-web", gp2, "default", "web", zone="eu-central-1c", migrated=True),
        claim("default", "web", "pv-web"),
    ]
    items += deployment_mounting("default", "web", "web", replicas=2)
    plain = create_in_tree_volume(ec2, size=200, pv="pv-db", namespace="db", claim_name="data-pg-0")
    items += [in_tree_pv("pv-db", plain, "db", "data-pg-0", zone=None), claim("db", "data-pg-0", "pv-db")]
    items += statefulset_mounting("db", "pg", "data-pg-0", replicas=3)
    io1 = create_in_tree_volume(
        ec2, size=100, volume_type="io1", Iops=1000, pv="pv-io1", namespace="db", claim_name="fast"
    )
    items += [in_tree_pv("pv-io1", io1, "db", "fast"), claim("db", "fast", "pv-io1")]
    unbound = create_in_tree_volume(ec2, size=5, pv="pv-released", namespace="old", claim_name="gone")
    items += [in_tree_pv("pv-released", unbound, "old", "gone", phase="Released")]
    items += [csi_pv("pv-csi", "vol-0ffffffffffffffff", "apps", "new"), claim("apps", "new", "pv-csi")]
    items += [in_tree_pv("pv-missing", "vol-0eeeeeeeeeeeeeeee", "apps", "lost"), claim("apps", "lost", "pv-missing")]
    rwx = create_in_tree_volume(ec2, size=5, pv="pv-rwx", namespace="apps", claim_name="shared")
    items += [in_tree_pv("pv-rwx", rwx, "apps", "shared"), claim("apps", "shared", "pv-rwx", ("ReadWriteMany",))]
    return items, {"gp2": gp2, "plain": plain, "io1": io1}


def test_discovery_joins_and_explains_what_it_leaves_out(aws):
    items, ids = mixed_cluster(aws)
    volumes = describe_volumes(aws, volume_ids_to_describe(items))
    result = discover(items, volumes)
    assert [(e["namespace"], e["claim"]) for e in result.entries] == [("db", "data-pg-0"), ("default", "web")]
    web = next(e for e in result.entries if e["claim"] == "web")
    assert web == {
        "namespace": "default",
        "claim": "web",
        "pv": "pv-web",
        "volumeId": ids["gp2"],
        "zone": "eu-central-1c",
        "sizeGiB": 1,
        "fsType": "ext4",
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "volumeType": "gp2",
        "encrypted": False,  # moto reports no Iops for gp2; AWS does (kept when present)
        "workload": {"kind": "Deployment", "name": "web", "replicas": 2},
    }
    pg = next(e for e in result.entries if e["claim"] == "data-pg-0")
    assert pg["volumeId"] == ids["plain"] and pg["zone"] == "eu-central-1a"  # plain vol- id form
    assert pg["workload"] == {"kind": "StatefulSet", "name": "pg", "replicas": 3, "templateStorageClass": "gp2"}
    assert pg["claimNaming"] == "same-name"
    assert result.warnings == [
        "StatefulSet db/pg names gp2 in its volumeClaimTemplates: new replicas would get gp2 volumes. "
        "Templates are immutable: re-create it with `kubectl delete sts --cascade=orphan` "
        "and apply it with the gp3 class."
    ]
    reasons = {s.pv: s.reason for s in result.skipped}
    assert reasons == {
        "pv-csi": "already a CSI volume (ebs.csi.aws.com)",
        "pv-io1": "not gp2 (io1); pass --include-types io1 to migrate it",
        "pv-missing": "EBS volume not found in this region/account",
        "pv-released": "no bound claim (nothing mounts it through a PVC)",
        "pv-rwx": "ReadWriteMany claim (EBS attaches to one node)",
    }


def test_io1_is_migrated_when_asked(aws):
    items, _ = mixed_cluster(aws)
    result = discover(items, describe_volumes(aws, volume_ids_to_describe(items)), include_types=["io1"])
    io1 = next(e for e in result.entries if e["claim"] == "fast")
    assert (io1["volumeType"], io1["iops"]) == ("io1", 1000)


def test_program_accepts_discovery_output_unchanged(aws):
    items, _ = mixed_cluster(aws)
    result = discover(items, describe_volumes(aws, volume_ids_to_describe(items)))
    settings = load_settings({"clusterName": "dev-eks", "region": REGION, "migrations": json.dumps(result.entries)})
    assert [m.key for m in settings.migrations] == ["db/data-pg-0", "default/web"]
    run = run_program({"clusterName": "dev-eks", "region": REGION, "migrations": result.entries})
    assert run.error is None, run.error
    assert len(run.of_type("eks-gp3-migration:index:VolumeMigration")) == 2


@pytest.mark.parametrize(("volumes", "expected_calls"), [(10, 1), (100, 1), (1000, 5)])
def test_aws_calls_grow_with_pages_not_volumes(volumes, expected_calls):
    with mock_aws():
        ec2, items = fleet(volumes)
        counter = CallCounter(ec2)
        found = describe_volumes(ec2, volume_ids_to_describe(items))
        assert len(found) == volumes
        assert counter.calls == ["DescribeVolumes"] * expected_calls


def test_cli_from_files_writes_the_stack_file_and_keeps_its_content(aws, tmp_path: Path, capsys):
    items, _ = mixed_cluster(aws)
    (tmp_path / "kube.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    volumes = aws.describe_volumes()["Volumes"]
    (tmp_path / "volumes.json").write_text(json.dumps({"Volumes": volumes}, default=str))
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text("# dev cluster\nconfig:\n  eks-gp3-migration:clusterName: dev-eks  # keep me\n")
    code = cli.main(
        [
            "discover",
            "--region",
            REGION,
            "--stack",
            "dev",
            "--write",
            "--project-dir",
            str(tmp_path),
            "--kube-json",
            str(tmp_path / "kube.json"),
            "--volumes-json",
            str(tmp_path / "volumes.json"),
        ]
    )
    assert code == 0
    text = stack_file.read_text()
    assert text.startswith("# dev cluster\n") and "# keep me" in text
    config = yaml.safe_load(text)["config"]
    assert config["eks-gp3-migration:clusterName"] == "dev-eks"
    assert [m["claim"] for m in config["eks-gp3-migration:migrations"]] == ["data-pg-0", "web"]
    out = capsys.readouterr().out
    assert "default/web" in out and "3000/128" in out and "Not migrated:" in out
    assert "Warning: StatefulSet db/pg names gp2" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["discover", "--region", "mars-1", "--stack", "dev"], "--region: 'mars-1' is not an AWS region code"),
        (["discover", "--region", REGION, "--stack", "dev", "--include-types", "gp9"], "--include-types: 'gp9'"),
        (["discover", "--region", REGION, "--stack", "d/ev"], "--stack: 'd/ev' is not a stack name"),
        (["discover", "--region", REGION, "--stack", "dev", "--kube-json", "x.json"], "go together"),
    ],
)
def test_cli_rejects_bad_arguments_before_any_call(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_to_propose_entries_the_program_would_refuse(aws, tmp_path: Path, capsys):
    long_claim = "c" * 252  # valid itself, but `<claim>-gp3` would be 256 characters
    volume_id = create_in_tree_volume(aws, size=1, pv="pv-long", namespace="apps", claim_name=long_claim)
    items = [in_tree_pv("pv-long", volume_id, "apps", long_claim), claim("apps", long_claim, "pv-long")]
    (tmp_path / "kube.json").write_text(json.dumps({"kind": "List", "items": items}))
    (tmp_path / "volumes.json").write_text(json.dumps(aws.describe_volumes(), default=str))
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text("config: {}\n")
    code = cli.main(
        [
            "discover",
            "--region",
            REGION,
            "--stack",
            "dev",
            "--write",
            "--project-dir",
            str(tmp_path),
            "--kube-json",
            str(tmp_path / "kube.json"),
            "--volumes-json",
            str(tmp_path / "volumes.json"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "would be refused by the program" in err and "migrations[0].newClaimName" in err
    assert stack_file.read_text() == "config: {}\n"
