"""`gp3migrate discover` fails like a tool (issue 11, item 6): every user error is one line
`gp3migrate discover: error: <what>, <where>, <what is allowed>` with exit code 2 and no traceback;
`--help` shows examples; YAML output keeps skip reasons and warnings as comments and JSON carries
them as fields; a live run (a fake Kubernetes API, moto EC2, botocore Stubber for EKS) prints
progress, checks the kubeconfig points at `--cluster`, and proposes what the files would.

Not proven: a real kubeconfig's exec plugin (`aws eks get-token`), a real API server's errors.
"""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from gp3migrate import cli
from gp3migrate.discovery import cli as discovery_cli
from gp3migrate.discovery.inventory import KubeApis, KubeConnection
from tests.kube_fixtures import (
    ACCOUNT,
    REGION,
    STACK_KEY,
    Export,
    FakeKube,
    addon,
    claim,
    deployment,
    driver_objects,
    fleet,
    in_tree_pv,
    real_cluster,
    snapshot_crds,
    storage_class,
)
from tests.mock_cloud import PROJECT_DIR
from tests.test_stack_file import STACK_TEXT, exports

ENDPOINT = "https://0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.eu-central-1.eks.amazonaws.com"


def error_of(capsys, *argv: str) -> str:
    code = cli.main(["discover", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK_TEXT)
    return ["--stack", "dev", *exports(tmp_path)]


def with_file(argv: list[str], flag: str, path: Path) -> list[str]:
    changed = list(argv)
    changed[changed.index(flag) + 1] = str(path)
    return changed


# --- errors, one line each -------------------------------------------------------------------


def test_a_missing_file_names_the_flag_and_what_to_give(capsys, files, tmp_path):
    argv = with_file(files, "--kube-json", tmp_path / "nope.json")
    assert error_of(capsys, *argv) == (
        f"gp3migrate discover: error: no such file, --kube-json {tmp_path}/nope.json, give `kubectl get "
        "pv,pvc,pods,deploy,rs,sts,ds,sc,csidriver,hpa -A -o json` output (see README)\n"
    )


def test_a_file_that_is_not_json_says_where_it_breaks(capsys, files, tmp_path):
    (tmp_path / "volumes.json").write_text('{"Volumes": [\n  {"VolumeId": "vol-1",}\n]}\n')
    assert error_of(capsys, *files) == (
        "gp3migrate discover: error: not JSON (line 2 column 24: Expecting property name enclosed in double quotes), "
        f"--volumes-json {tmp_path}/volumes.json, give `aws ec2 describe-volumes --output json` output\n"
    )


def test_swapped_exports_are_recognised(capsys, files, tmp_path):
    swapped = with_file(
        with_file(files, "--kube-json", tmp_path / "volumes.json"), "--volumes-json", tmp_path / "kube.json"
    )
    assert error_of(capsys, *swapped) == (
        "gp3migrate discover: error: this is an EBS volume list (describe-volumes output), not a Kubernetes export, "
        f"--kube-json {tmp_path}/volumes.json, give `kubectl get pv,pvc,pods,deploy,rs,sts,ds,sc,csidriver,hpa -A "
        "-o json` output (see README)\n"
    )
    kube_as_volumes = with_file(files, "--volumes-json", tmp_path / "kube.json")
    assert error_of(capsys, *kube_as_volumes) == (
        "gp3migrate discover: error: this is a Kubernetes export (kind List), not an EBS volume list, "
        f"--volumes-json {tmp_path}/kube.json, give `aws ec2 describe-volumes --output json` output\n"
    )
    volumes_as_addons = with_file(files, "--addons-json", tmp_path / "volumes.json")
    assert error_of(capsys, *volumes_as_addons) == (
        "gp3migrate discover: error: this is an EBS volume list (describe-volumes output), not a describe-addon "
        f"output, --addons-json {tmp_path}/volumes.json, give `aws eks describe-addon --output json` outputs, one "
        "after another (see README)\n"
    )


def test_add_ons_of_another_cluster_are_refused(capsys, files, tmp_path):
    (tmp_path / "addons.json").write_text(
        json.dumps({"addon": addon("aws-ebs-csi-driver", "v1.35.0-eksbuild.1") | {"clusterName": "prod-eks"}})
    )
    assert error_of(capsys, *files) == (
        "gp3migrate discover: error: it describes add-ons of cluster prod-eks, not dev-eks, "
        f"--addons-json {tmp_path}/addons.json, export the add-ons of dev-eks\n"
    )


def test_a_stack_file_that_is_not_yaml(capsys, files, tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  eks-gp3-migration:region: [eu-central-1\n")
    assert error_of(capsys, *files) == (
        f"gp3migrate discover: error: {tmp_path}/Pulumi.dev.yaml: not valid YAML at line 3 (expected ',' or ']', but "
        "got '<stream end>'), --stack dev, fix the file\n"
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--stack", "dev/x"], "'dev/x' is not a stack name, --stack, letters, digits, '-', '_' and '.'"),
        # A trailing newline passed `$` with re.match (issue 23): the file would be "Pulumi.dev\n.yaml".
        (["--stack", "dev\n"], "'dev\\n' is not a stack name, --stack, letters, digits, '-', '_' and '.'"),
        (["--region", REGION, "--dry-run"], "--dry-run only applies to a write, --dry-run, add --write"),
        (["--region", REGION, "--write"], "--write needs the stack to write, --write, add --stack <stack>"),
        (
            ["--region", REGION, "--kube-json", "k.json"],
            "--kube-json without the other export, --kube-json, give both --kube-json and --volumes-json",
        ),
        (
            ["--region", REGION, "--addons-json", "a.json"],
            "--addons-json is for exported files, --addons-json, a live run asks EKS itself (with --cluster)",
        ),
        (
            ["--region", "mars-1"],
            "'mars-1' is not an AWS region code such as eu-central-1, --region, e.g. eu-central-1",
        ),
        (
            ["--region", REGION, "--cluster", "dev eks"],
            "'dev eks' is not an EKS cluster name, --cluster, 1-100 letters, digits, '-' or '_'",
        ),
        ([], "no region, --region, give the cluster's region (e.g. eu-central-1) or a --stack that has one"),
    ],
)
def test_bad_flags_are_refused_before_any_call(capsys, argv, line):
    assert error_of(capsys, *argv) == f"gp3migrate discover: error: {line}\n"


def test_flags_that_contradict_the_stack_file(capsys, files, tmp_path):
    assert error_of(capsys, *files, "--cluster", "prod-eks") == (
        "gp3migrate discover: error: --cluster prod-eks differs from clusterName dev-eks in Pulumi.dev.yaml, "
        "--cluster, drop --cluster, or name the stack of that cluster\n"
    )


def test_argparse_errors_use_the_same_prefix(capsys):
    assert cli.main(["discover", "--bogus"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "gp3migrate discover: error: unrecognized arguments: --bogus"
    assert cli.main([]) == 2
    assert (
        capsys.readouterr().err.splitlines()[-1] == "gp3migrate: error: the following arguments are required: COMMAND"
    )


def test_an_aws_profile_that_does_not_exist(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "platform-admin")
    assert error_of(capsys, "--region", REGION) == (
        "gp3migrate discover: error: AWS client failed (The config profile (platform-admin) could not be found), "
        f"--region {REGION}, check the AWS profile, credentials and network\n"
    )


def test_no_aws_credentials(capsys, monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    assert error_of(capsys, "--region", REGION) == (
        f"gp3migrate discover: error: no AWS credentials found, --region {REGION}, configure credentials "
        "(AWS_PROFILE, aws configure, aws sso login) or give exported files (--kube-json and --volumes-json)\n"
    )


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (None, "Invalid kube-config file. No configuration found."),
        ("apiVersion: v1\nclusters: [\n", "while parsing a flow node"),
    ],
)
def test_no_usable_kubeconfig(capsys, monkeypatch, tmp_path, content, detail):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    if content is not None:
        (tmp_path / "kubeconfig").write_text(content)
    assert error_of(capsys, "--region", REGION, "--kubeconfig", str(tmp_path / "kubeconfig")) == (
        f"gp3migrate discover: error: no usable kubeconfig ({detail}), "
        f"--kubeconfig {tmp_path}/kubeconfig, run `aws eks update-kubeconfig --name <cluster> --region <region>`, "
        "or give exported files (--kube-json and --volumes-json)\n"
    )


# --- help and output formats -----------------------------------------------------------------


def test_help_shows_examples(capsys):
    assert cli.main(["discover", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gp3migrate discover [-h] [--stack STACK]")
    assert (
        "examples:\n  live (your kubeconfig and AWS credentials), review the proposal:\n"
        "    gp3migrate discover --stack dev\n" in out
    )
    assert "exit codes: 0 done; 1 refused, nothing written" in out
    assert cli.main(["--help"]) == 0
    assert "discover" in capsys.readouterr().out


def test_the_module_and_the_console_script_run_the_same_main():
    done = subprocess.run(
        [sys.executable, "-m", "gp3migrate", "discover", "--region", "mars-1"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "gp3migrate discover: error: 'mars-1' is not an AWS region code such as eu-central-1, --region, e.g. "
        "eu-central-1\n"
    )
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"gp3migrate": "gp3migrate.cli:main"}


def test_json_carries_skip_reasons_warnings_and_the_platform_as_fields(capsys, files):
    assert cli.main(["discover", *files, "--output", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert sorted(document) == ["cluster", "migrations", "platform", "region", "skipped", "warnings"]
    assert (document["cluster"], document["region"], len(document["migrations"])) == ("dev-eks", REGION, 10)
    assert [s["claim"] for s in document["skipped"]] == [
        "analytics/fast",
        "analytics/shared-fast",
        "apps/gone",
        "apps/lost",
        "apps/new",
        "apps/shared",
        "edge/ber",
        "edge/ham",
        "ops/odd-id",
    ]
    assert document["skipped"][6] == {
        "pv": "pvc-ber",
        "claim": "edge/ber",
        "volumeId": document["skipped"][6]["volumeId"],
        "reason": "in Wavelength Zone eu-central-1-wl1-ber-wlz-1: gp3 is not offered in every Local Zone or Wavelength "
        "Zone; this tool migrates volumes in the region's availability zones only",
    }
    # 8: the adopted add-on runs with its own settings until driverAdopt is false, so its KMS rights are noted too.
    assert len(document["warnings"]) == 8
    assert sum(w.startswith("driverAdopt: true: ") for w in document["warnings"]) == 1
    assert document["warnings"][-2].startswith("shop/reports-cache: volume vol-")  # a key the stack does not list
    assert document["platform"]["proposed"] == {
        "driverInstall": "addon",
        "driverAdopt": True,
        "driverAddonVersion": "v1.35.0-eksbuild.1",
        "snapshotSupport": "present",
        "performance": "sustained",  # the stack sets none: the default, said out loud
    }


def test_yaml_keeps_skip_reasons_and_warnings_as_comments(capsys, files):
    assert cli.main(["discover", *files, "--output", "yaml"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "# gp3migrate discover: cluster dev-eks, region eu-central-1: 10 proposed, 9 not migrated"
    assert lines[1] == "# Warnings:"
    assert "#   - apps/shared (pvc-rwx, " in out and "): ReadWriteMany claim (EBS attaches to one node)" in out
    assert lines[lines.index("# Not migrated:") - 1] == "      templateStorageClass: gp2"  # after the last entry
    config = yaml.safe_load(out)
    assert list(config) == [
        "eks-gp3-migration:driverInstall",
        "eks-gp3-migration:driverAdopt",
        "eks-gp3-migration:driverAddonVersion",
        "eks-gp3-migration:snapshotSupport",
        "eks-gp3-migration:performance",
        "eks-gp3-migration:migrations",
    ]
    json_run = cli.main(["discover", *files, "--output", "json"])
    assert json_run == 0
    assert config["eks-gp3-migration:migrations"] == json.loads(capsys.readouterr().out)["migrations"]


# --- a live run ------------------------------------------------------------------------------


def live_cluster(ec2) -> tuple[FakeKube, list]:
    """A fake API server holding a small fleet whose volumes moto has."""
    _, items = fleet(3)
    items += [claim("apps", "data-9", "pv-none")]  # a claim without a PV: nothing to discover
    items += deployment("apps", "reader", ["data-9"])
    by_call = {
        "list_persistent_volume": [i for i in items if i["kind"] == "PersistentVolume"],
        "list_persistent_volume_claim_for_all_namespaces": [i for i in items if i["kind"] == "PersistentVolumeClaim"],
        "list_pod_for_all_namespaces": [i for i in items if i["kind"] == "Pod"],
        "list_deployment_for_all_namespaces": [i for i in items if i["kind"] == "Deployment"]
        + driver_objects(managed_by="EKS")[:1],
        "list_daemon_set_for_all_namespaces": driver_objects(managed_by="EKS")[1:2],
        "list_csi_driver": driver_objects(managed_by="EKS")[2:],
    }
    return FakeKube(by_call, snapshot_crds()), items


@pytest.fixture
def live(monkeypatch):
    """Patches the two places a live run reaches out: the kubeconfig and the AWS clients."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        kube, _ = live_cluster(ec2)
        eks = boto3.client("eks", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        apis = KubeApis(core=kube, apps=kube, storage=kube, apiextensions=kube, to_json=dict)
        monkeypatch.setattr(discovery_cli, "connect", lambda kubeconfig, context: KubeConnection(apis, ENDPOINT, "dev"))
        monkeypatch.setattr(discovery_cli, "aws_clients", lambda region: (ec2, eks))
        with Stubber(eks) as stub:
            yield stub


def stub_cluster(stub, endpoint=ENDPOINT):
    stub.add_response("describe_cluster", {"cluster": {"name": "dev-eks", "endpoint": endpoint}}, {"name": "dev-eks"})


def test_a_live_run_checks_the_cluster_reads_add_ons_and_reports_progress(capsys, live):
    stub_cluster(live)
    live.add_response("list_addons", {"addons": ["aws-ebs-csi-driver"]}, {"clusterName": "dev-eks"})
    driver = addon("aws-ebs-csi-driver", "v1.35.0-eksbuild.1", role=f"arn:aws:iam::{ACCOUNT}:role/ebs")
    live.add_response(
        "describe_addon", {"addon": driver}, {"clusterName": "dev-eks", "addonName": "aws-ebs-csi-driver"}
    )
    assert cli.main(["discover", "--cluster", "dev-eks", "--region", REGION, "--output", "json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert [m["claim"] for m in document["migrations"]] == ["data-0", "data-1", "data-2"]
    assert document["platform"]["proposed"]["driverInstall"] == "addon"
    assert captured.err.splitlines() == [
        "... listed 3 PersistentVolume objects",
        "... listed 4 PersistentVolumeClaim objects",
        "... listed 4 Pod objects",
        "... listed 5 Deployment objects",
        "... listed 0 StatefulSet objects",
        "... listed 1 DaemonSet objects",
        "... listed 0 StorageClass objects",
        "... listed 1 CSIDriver objects",
        "... read 0 Helm release Secrets of aws-ebs-csi-driver",
        "... described 3/3 EBS volumes",
    ]


def test_a_kubeconfig_pointing_at_another_cluster_is_refused(capsys, live):
    stub_cluster(live, endpoint="https://FFFF.gr7.eu-central-1.eks.amazonaws.com")
    assert error_of(capsys, "--cluster", "dev-eks", "--region", REGION) == (
        f"gp3migrate discover: error: the kubeconfig context 'dev' points at {ENDPOINT}, not at EKS cluster dev-eks "
        "(https://FFFF.gr7.eu-central-1.eks.amazonaws.com), --context, choose the context of dev-eks (aws eks "
        "update-kubeconfig --name dev-eks --region eu-central-1); behind a proxy, use exported files (README, "
        "Runbook step 0)\n"
    )


def test_an_unknown_cluster_and_a_refused_call_are_one_line(capsys, live):
    live.add_client_error("describe_cluster", "ResourceNotFoundException", "No cluster found for name: dev-eks.")
    assert error_of(capsys, "--cluster", "dev-eks", "--region", REGION) == (
        "gp3migrate discover: error: no EKS cluster 'dev-eks' in eu-central-1, --cluster, name a cluster of this "
        "region (aws eks list-clusters)\n"
    )
    live.add_client_error("describe_cluster", "AccessDeniedException", "User is not authorized")
    assert error_of(capsys, "--cluster", "dev-eks", "--region", REGION) == (
        "gp3migrate discover: error: AWS refused DescribeCluster (AccessDeniedException: User is not authorized), "
        "--region eu-central-1, discover needs ec2:DescribeVolumes, eks:DescribeCluster, eks:ListAddons and "
        "eks:DescribeAddon\n"
    )


def test_without_a_cluster_name_add_ons_are_not_checked_and_it_says_so(capsys, live):
    assert cli.main(["discover", "--region", REGION, "--output", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == "... no --cluster (and no clusterName in the stack): EKS add-ons not checked"
    assert json.loads(captured.out)["platform"]["proposed"]["driverInstall"] == "present"


def test_the_stack_key_list_is_what_kms_warnings_compare_with(capsys, files, tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(
        STACK_TEXT.replace(f"    - {STACK_KEY}\n", "    - arn:aws:kms:eu-central-1:123456789012:key/other\n")
    )
    assert cli.main(["discover", *files, "--output", "json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [w.split(":")[0] for w in warnings if "kmsKeyArns" in w] == [
        "db/pgdata-pg-0",
        "db/pgdata-pg-1",
        "shop/reports-cache",
    ]


def test_a_real_cluster_export_round_trips_through_the_table(capsys, files):
    assert cli.main(["discover", *files]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "CLAIM",
        "WORKLOAD",
        "VOLUME",
        "ZONE",
        "GiB",
        "TYPE",
        "IOPS",
        "GP3",
        "IOPS/MiBs",
        "POLICY",
        "$/MO",
        "GP2",
        "GP3",
        "SUSTAINED",
        "GP3",
        "PEAK",
    ]
    # 200 GiB at eu-central-1 prices: gp2 $23.80; sustained buys 150 MiB/s (600 IOPS x 256 KiB),
    # 25 above the included 125 ($20.24); peak buys gp2's burst 250 MiB/s ($25.04).
    row = next(line for line in out.splitlines() if line.startswith("streams/data-kafka-0"))
    assert row.split()[-5:] == ["3000/150", "sustained", "23.80", "20.24", "25.04"]
    # 1 GiB (issue 10): peak pays 3 MiB/s of burst, twice the gp2 price; sustained nothing extra.
    row = next(line for line in out.splitlines() if line.startswith("ops/legacy"))
    assert row.split()[-5:] == ["3000/125", "sustained", "0.12", "0.10", "0.24"]
    # search/data-es-0 (30 GiB, gp3 already, in-tree) is in the totals too: its gp2 column is what gp2 would cost.
    assert "$/month in total: gp2 62.12; gp3 50.89 with performance: sustained, 56.99 with performance: peak" in out
    assert "  proposed driverInstall: addon" in out and "Not migrated:" in out
    assert "  proposed performance: sustained" in out
    assert real_cluster().volumes  # the fixture the files came from


def test_the_table_plans_with_the_stacks_policy_and_proposes_it(capsys, files, tmp_path):
    """A stack that chose `performance: peak` keeps it (discovery proposes what the stack says);
    an entry's own policy shows in its row. Both prices are shown either way."""
    stack = tmp_path / "Pulumi.dev.yaml"
    text = stack.read_text().replace("config:\n", "config:\n  eks-gp3-migration:performance: peak\n", 1)
    stack.write_text(text)
    assert cli.main(["discover", *files]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("streams/data-kafka-0"))
    assert row.split()[-5:] == ["3000/250", "peak", "23.80", "20.24", "25.04"]
    assert "  proposed performance: peak" in out
    assert cli.main(["discover", *files, "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["platform"]["proposed"]["performance"] == "peak"


def test_the_table_lists_claims_in_natural_order(capsys, tmp_path):
    export = Export(items=[storage_class("gp2", default=True)])
    for name in ("c100", "c10", "c2", "c1"):
        volume_id = export.add_volume(name, "apps", name, size=10)
        export.items += [in_tree_pv(name, volume_id, "apps", name), claim("apps", name, name)]
    assert cli.main(["discover", "--region", REGION, *exports(tmp_path, export)]) == 0
    rows = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert [row.split()[0] for row in rows] == ["CLAIM", "apps/c1", "apps/c2", "apps/c10", "apps/c100"]


# --- the README's commands, as written ---------------------------------------------------------


def readme_commands() -> list[list[str]]:
    """Every air-gapped `gp3migrate discover` command (from exported files) in the README's shell
    blocks, continuation lines joined."""
    text = (PROJECT_DIR / "README.md").read_text()
    commands = []
    for block in text.split("```sh\n")[1:]:
        joined = block.split("```")[0].replace("\\\n", " ")
        for line in joined.splitlines():
            words = line.split()
            if words[:2] == ["venv/bin/gp3migrate", "discover"] and "--kube-json" in words:
                commands.append(words[1:])
    return commands


def test_the_readme_air_gapped_commands_work_as_written(tmp_path, monkeypatch, capsys):
    (command,) = readme_commands()
    export = real_cluster()
    crds = [i for i in export.items if i["kind"] == "CustomResourceDefinition"]
    kube = [i for i in export.items if i["kind"] != "CustomResourceDefinition"]
    (tmp_path / "kube.json").write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": kube}))
    (tmp_path / "crds.json").write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": crds}))
    (tmp_path / "helm.json").write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": []}))
    (tmp_path / "volumes.json").write_text(json.dumps(export.volumes_json(), indent=4))
    # What the shell loop writes: describe-addon outputs one after another.
    (tmp_path / "addons.json").write_text("".join(json.dumps({"addon": a}, indent=4) + "\n" for a in export.addons[:1]))
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK_TEXT)
    monkeypatch.chdir(tmp_path)
    assert cli.main(command) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert (
        "db/pgdata-pg-0" in out
        and "  proposed driverInstall: addon" in out
        and "  proposed snapshotSupport: present" in out
    )
    assert cli.main([*command, "--write", "--dry-run"]) == 0
    err = capsys.readouterr().err.splitlines()
    # The README promises the diff: as `diff -u` prints it, named as the user's shell names the file.
    assert err[err.index("--- Pulumi.dev.yaml") + 1] == "+++ Pulumi.dev.yaml (proposed)"
    assert err[-1] == "dry run: Pulumi.dev.yaml not written"
