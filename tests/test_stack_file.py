"""`discover --write` merges into the stack file and never loses state (issue 11, item 1).

Round trips on a copy of the repository's own Pulumi.dev.yaml and on files written by the CLI:
a re-run with nothing new changes no byte; after hand edits the user's keys and comments stay and
only facts are refreshed; after a cutover every key stays and differences are flagged; an entry
discovery no longer sees stays unless `--prune`, and never one with a phase; the summary is printed
before anything is written; an export from the wrong region, an unknown stack, or a merge the
program would refuse writes nothing. Not proven: every YAML layout a user may hand-write (ruamel
re-indents lists to this project's style).
"""

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from gp3migrate import cli
from gp3migrate.config.phases import PHASES
from gp3migrate.config.stack_file import read_stack, write_stack
from gp3migrate.discovery.merge import Change, merge
from gp3migrate.discovery.volumes import Skipped
from tests.kube_fixtures import REGION, STACK_KEY, Export, claim, in_tree_pv, real_cluster, storage_class, vol
from tests.mock_cloud import STACKS_DIR

KEY = "default/ebs-gp2-claim"
# The dev stack's example entry as discovery reports it now (its facts, plus the two new ones).
FOUND: dict[str, Any] = {
    "namespace": "default",
    "claim": "ebs-gp2-claim",
    "pv": "pvc-646fef81-c677-46f4-8f27-9d394618f236",
    "volumeId": "vol-03d3cd818a2c2def3",
    "zone": "eu-central-1c",
    "sizeGiB": 1,
    "fsType": "ext4",
    "accessModes": ["ReadWriteOnce"],
    "volumeMode": "Filesystem",
    "volumeType": "gp2",
    "iops": 100,
    "encrypted": False,
    "pvStorageClass": "gp2",
    "pvCapacity": "1Gi",
    "workload": {"kind": "Deployment", "name": "app-gp2-in-tree", "replicas": 1},
}


@pytest.fixture
def dev_copy(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(STACKS_DIR / "Pulumi.dev.yaml", path)
    return path


def merged(path: Path, found: list[dict], skipped=(), *, prune=False):
    stack = read_stack(path)
    result = merge(stack.migrations(), found, skipped, prune=prune)
    write_stack(stack)
    return result, path.read_text()


def refreshed_dev(path: Path) -> str:
    """The dev copy after one merge of FOUND (which adds the two new facts)."""
    return merged(path, [FOUND])[1]


def test_a_rerun_with_nothing_new_changes_nothing(dev_copy: Path):
    before = refreshed_dev(dev_copy)
    result, after = merged(dev_copy, [FOUND])
    assert result.changes == [Change("kept", KEY)] and not result.changed
    assert after == before


def test_the_repository_stack_files_round_trip_byte_for_byte(tmp_path: Path):
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.rehearsal.yaml"):
        shutil.copy(STACKS_DIR / name, tmp_path / name)
        write_stack(read_stack(tmp_path / name))
        assert (tmp_path / name).read_text() == (STACKS_DIR / name).read_text(), name


def test_a_rerun_after_hand_edits_keeps_them_and_refreshes_only_facts(dev_copy: Path):
    text = dev_copy.read_text()
    text = text.replace(
        "      quiesce: scale\n", "      quiesce: scale\n      keepSnapshots: true  # audit wants them\n"
    )
    text = text.replace(
        "      quiesce: scale\n", "      strategy: copy\n      newClaimName: uploads\n      quiesce: scale\n"
    )
    dev_copy.write_text(text)
    grown = copy.deepcopy(FOUND) | {"sizeGiB": 4, "iops": 100}
    grown["workload"]["replicas"] = 2
    result, after = merged(dev_copy, [grown])
    assert result.changes == [
        Change(
            "updated",
            KEY,
            "sizeGiB 1 -> 4; pvStorageClass (absent) -> 'gp2'; pvCapacity (absent) -> '1Gi'; workload.replicas 1 -> 2",
        )
    ]
    assert after.split("eks-gp3-migration:migrations:\n")[1] == (
        "    - namespace: default\n"
        "      claim: ebs-gp2-claim\n"
        "      pv: pvc-646fef81-c677-46f4-8f27-9d394618f236\n"
        "      volumeId: vol-03d3cd818a2c2def3\n"
        "      zone: eu-central-1c\n"
        "      sizeGiB: 4\n"
        "      fsType: ext4\n"
        "      accessModes:\n"
        "        - ReadWriteOnce\n"
        "      volumeMode: Filesystem\n"
        "      volumeType: gp2\n"
        "      iops: 100\n"
        "      encrypted: false\n"
        "      pvStorageClass: gp2\n"
        "      pvCapacity: 1Gi\n"
        "      workload:\n"
        "        kind: Deployment\n"
        "        name: app-gp2-in-tree\n"
        "        replicas: 2\n"
        "      # No strategy set: rehome (gp3 in place, then the same volume under CSI, same claim name).\n"
        "      # Advance one step per `pulumi up`: precopy -> cutover -> finalize -> cleanup (or rollback).\n"
        "      phase: precopy\n"
        "      strategy: copy\n"
        "      newClaimName: uploads\n"
        "      quiesce: scale\n"
        "      keepSnapshots: true  # audit wants them\n"
    )
    assert after.split("eks-gp3-migration:migrations:\n")[0] == text.split("eks-gp3-migration:migrations:\n")[0]


@pytest.mark.parametrize("phase", ["cutover", "finalize", "rollback"])
def test_an_entry_past_precopy_keeps_every_key_and_flags_the_differences(dev_copy: Path, phase: str):
    dev_copy.write_text(refreshed_dev(dev_copy).replace("phase: precopy", f"phase: {phase}"))
    before = dev_copy.read_text()
    moved = copy.deepcopy(FOUND) | {"sizeGiB": 8, "volumeId": "vol-0aaaaaaaaaaaaaaaa"}
    result, after = merged(dev_copy, [moved])
    assert result.changes == [
        Change("kept", KEY),
        Change(
            "flagged",
            KEY,
            f"phase {phase}: facts differ from the cluster, kept as they are (the basis of a running migration): "
            "volumeId 'vol-03d3cd818a2c2def3' -> 'vol-0aaaaaaaaaaaaaaaa'; sizeGiB 1 -> 8",
        ),
    ]
    assert after == before


NO_CLAIM = "no bound claim (nothing mounts it through a PVC)"
GONE = [Skipped("pvc-646fef81-c677-46f4-8f27-9d394618f236", KEY, "vol-03d3cd818a2c2def3", NO_CLAIM)]


def test_an_entry_without_a_phase_discovery_no_longer_sees_stays_flagged_and_prune_removes_it(dev_copy: Path):
    before = refreshed_dev(dev_copy).replace("      phase: precopy\n", "")
    dev_copy.write_text(before)
    result, after = merged(dev_copy, [], GONE)
    assert result.changes == [
        Change("kept", KEY),
        Change("flagged", KEY, f"not proposed now: {NO_CLAIM}; kept; --prune removes it"),
    ]
    assert after == before

    result, after = merged(dev_copy, [], GONE, prune=True)
    assert result.changes == [Change("removed", KEY, f"not proposed now: {NO_CLAIM} (no phase set, --prune)")]
    assert yaml.safe_load(after)["config"]["eks-gp3-migration:migrations"] == []


# What the flag says an entry with a phase needs before it may go (the program refuses an entry
# dropped in cutover or rollback unless it is listed under `forget`: tests/test_stack_file_forget.py).
IN_FLIGHT = {
    "precopy": "in flight (phase precopy): kept, --prune never removes an entry with a phase; remove it by hand "
    "after phase cleanup",
    "cutover": "in flight (phase cutover): kept, --prune never removes an entry with a phase; remove it by hand "
    "after phase cleanup, or now by listing it under forget",
    "finalize": "in flight (phase finalize): kept, --prune never removes an entry with a phase; remove it by hand "
    "after phase cleanup",
    "rollback": "in flight (phase rollback): kept, --prune never removes an entry with a phase; remove it by hand "
    "after phase cleanup, or now by listing it under forget",
    "cleanup": "done (phase cleanup): kept, --prune never removes an entry with a phase; remove it by hand "
    "(its claim and PV stay)",
}


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("seen", ["skipped", "not seen"])
def test_prune_never_removes_an_entry_with_a_phase(dev_copy: Path, phase: str, seen: str):
    """A phase set means `pulumi up` may have applied it: a protected safety snapshot, a released
    claim. Discovery cannot see what was applied, so the phase alone keeps the entry."""
    before = refreshed_dev(dev_copy).replace("phase: precopy", f"phase: {phase}")
    dev_copy.write_text(before)
    skipped, why = (GONE, f"not proposed now: {NO_CLAIM}") if seen == "skipped" else ((), "not seen by discovery")
    result, after = merged(dev_copy, [], skipped, prune=True)
    assert result.changes == [Change("kept", KEY), Change("flagged", KEY, f"{why}; {IN_FLIGHT[phase]}")]
    assert after == before


def test_new_claims_go_next_to_their_workloads_claims_and_the_rest_at_the_end():
    existing: list[dict[str, Any]] = [
        {"namespace": "db", "claim": "data-pg-0", "workload": {"kind": "StatefulSet", "name": "pg", "replicas": 2}},
        {"namespace": "web", "claim": "uploads"},
    ]
    found: list[dict[str, Any]] = [
        copy.deepcopy(existing[0]),
        {"namespace": "db", "claim": "data-pg-1", "workload": {"kind": "StatefulSet", "name": "pg", "replicas": 2}},
        {"namespace": "a", "claim": "new"},
        copy.deepcopy(existing[1]),
    ]
    result = merge(existing, found)
    assert [f"{e['namespace']}/{e['claim']}" for e in existing] == [
        "db/data-pg-0",
        "db/data-pg-1",
        "web/uploads",
        "a/new",
    ]
    assert [c.kind for c in result.changes] == ["kept", "kept", "added", "added"]


def test_a_fact_not_found_now_is_kept_and_a_different_proposal_flagged():
    entry = {
        "namespace": "db",
        "claim": "data-pg-0",
        "sizeGiB": 10,
        "kmsKeyId": STACK_KEY,
        "workload": {"kind": "StatefulSet", "name": "pg", "replicas": 2},
        "claimNaming": "rename",
    }
    existing = [copy.deepcopy(entry)]
    found = {k: v for k, v in entry.items() if k not in ("kmsKeyId", "claimNaming")} | {"claimNaming": "same-name"}
    result = merge(existing, [found])
    assert existing == [entry]
    assert result.changes == [
        Change("kept", "db/data-pg-0"),
        Change("flagged", "db/data-pg-0", "not found now, kept as recorded: kmsKeyId"),
        Change(
            "flagged", "db/data-pg-0", "discovery proposes claimNaming: same-name, the entry has rename (kept: yours)"
        ),
    ]


# --- through the command -------------------------------------------------------------------


def exports(tmp_path: Path, export=None) -> list[str]:
    export = export or real_cluster()
    (tmp_path / "kube.json").write_text(json.dumps(export.kube_json()))
    (tmp_path / "volumes.json").write_text(json.dumps(export.volumes_json()))
    (tmp_path / "addons.json").write_text("\n".join(json.dumps({"addon": a}) for a in export.addons))
    return [
        "--project-dir",
        str(tmp_path),
        "--kube-json",
        str(tmp_path / "kube.json"),
        "--volumes-json",
        str(tmp_path / "volumes.json"),
        "--addons-json",
        str(tmp_path / "addons.json"),
    ]


STACK_TEXT = (
    "# dev cluster\n"
    "config:\n"
    "  eks-gp3-migration:clusterName: dev-eks  # keep me\n"
    "  eks-gp3-migration:region: eu-central-1\n"
    "  eks-gp3-migration:kmsKeyArns:\n"
    f"    - {STACK_KEY}\n"
    "  eks-gp3-migration:gp3ClassName: gp3-csi\n"
)


def discover(tmp_path: Path, *flags: str, export=None) -> int:
    return cli.main(["discover", "--stack", "dev", *exports(tmp_path, export), *flags])


def test_write_prints_the_summary_then_writes_and_a_rerun_writes_nothing(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    err = capsys.readouterr().err
    assert err.splitlines()[:2] == [
        f"{stack_file}: 10 added, 0 updated, 0 kept, 0 flagged, 0 removed",
        "  added    db/backup-scratch",
    ]
    assert err.splitlines()[-6:] == [
        "  platform driverInstall: the file has helm (default), discovery proposes addon",
        "  platform driverAdopt: the file has false (default), discovery proposes true",
        "  platform driverAddonVersion: the file has nothing, discovery proposes v1.35.0-eksbuild.1",
        "  platform snapshotSupport: the file has manifests (default), discovery proposes present",
        "  platform not written to an existing file: edit them by hand if the cluster's install is not this stack's",
        f"wrote {stack_file}",
    ]
    text = stack_file.read_text()
    assert text.startswith(STACK_TEXT)  # the rest of the file, comments included, untouched
    written = yaml.safe_load(text)["config"]["eks-gp3-migration:migrations"]
    assert len(written) == 10 and written[1]["quiesce"] == "manual"

    assert discover(tmp_path, "--write") == 0
    err = capsys.readouterr().err
    assert f"{stack_file}: 0 added, 0 updated, 10 kept, 0 flagged, 0 removed" in err
    assert err.splitlines()[-1] == f"no changes: {stack_file} not written"
    assert stack_file.read_text() == text


def test_a_rerun_after_a_cutover_and_hand_edits_changes_nothing_it_should_not(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    text = stack_file.read_text()
    text = text.replace(
        "      quiesce: manual\n",
        "      phase: cutover\n      quiesce: manual\n",
        1,
    )
    stack_file.write_text(text + "  # my note\n")
    export = real_cluster()
    for volume in export.volumes:  # the cluster moved on: a volume grew, one is gone from AWS
        if volume["VolumeId"] == vol("pvc-pg-0"):
            volume["Size"] = 150
    export.volumes = [v for v in export.volumes if v["VolumeId"] != vol("pvc-web")]
    capsys.readouterr()
    assert discover(tmp_path, "--write", export=export) == 0
    err = capsys.readouterr().err
    assert (
        "flagged  db/pgdata-pg-0: phase cutover: facts differ from the cluster, kept as they are (the basis of a "
        in err
    )
    assert "sizeGiB 100 -> 150" in err
    assert (
        "flagged  shop/web-uploads: not proposed now: EBS volume not found in this region/account; kept; --prune "
        "removes it"
    ) in err
    assert stack_file.read_text() == text + "  # my note\n"


def diff_of(err: str, stack_file: Path) -> list[str]:
    """The unified diff a dry run printed: from its `---` header to the line before the last."""
    lines = err.splitlines()
    return lines[lines.index(f"--- {stack_file}") : -1]


def test_dry_run_prints_the_diff_the_write_then_makes_and_writes_nothing(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write", "--dry-run") == 0
    err = capsys.readouterr().err
    assert f"{stack_file}: 10 added, 0 updated, 0 kept, 0 flagged, 0 removed" in err
    assert err.splitlines()[-1] == f"dry run: {stack_file} not written"
    assert stack_file.read_text() == STACK_TEXT
    diff = diff_of(err, stack_file)
    assert diff[:3] == [f"--- {stack_file}", f"+++ {stack_file} (proposed)", "@@ -5,3 +5,196 @@"]

    assert discover(tmp_path, "--write") == 0
    written = stack_file.read_text().splitlines()
    # Context and added lines of the one hunk are the written file from line 5 on.
    assert [line[1:] for line in diff[3:]] == written[4:]
    assert all(line.startswith(" ") for line in diff[3:6]) and all(line.startswith("+") for line in diff[6:])


def test_dry_run_shows_a_refreshed_fact_as_a_hunk_and_says_when_nothing_changes(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    text = stack_file.read_text()
    grown = real_cluster()
    for volume in grown.volumes:
        if volume["VolumeId"] == vol("pvc-pg-0"):
            volume["Size"] = 150
    capsys.readouterr()
    assert discover(tmp_path, "--write", "--dry-run", export=grown) == 0
    err = capsys.readouterr().err
    assert diff_of(err, stack_file) == [
        f"--- {stack_file}",
        f"+++ {stack_file} (proposed)",
        "@@ -26,7 +26,7 @@",
        "       pv: pvc-pg-0",
        f"       volumeId: {vol('pvc-pg-0')}",
        "       zone: eu-central-1a",
        "-      sizeGiB: 100",
        "+      sizeGiB: 150",
        "       fsType: ext4",
        "       accessModes:",
        "         - ReadWriteOnce",
    ]
    assert err.splitlines()[-1] == f"dry run: {stack_file} not written"
    assert stack_file.read_text() == text

    assert discover(tmp_path, "--write", "--dry-run") == 0
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"no change to {stack_file}",
        f"dry run: {stack_file} not written",
    ]


def test_dry_run_of_a_new_stack_file_shows_every_line_added(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    assert discover(tmp_path, "--cluster", "dev-eks", "--region", REGION, "--write", "--create", "--dry-run") == 0
    diff = diff_of(capsys.readouterr().err, stack_file)
    assert diff[:5] == [
        f"--- {stack_file}",
        f"+++ {stack_file} (proposed)",
        f"@@ -0,0 +1,{len(diff) - 3} @@",
        "+# yaml-language-server: $schema=schema/stack-file.schema.json",
        "+# Created by `gp3migrate discover --create` for cluster dev-eks (eu-central-1).",
    ]
    assert all(line.startswith("+") for line in diff[3:])
    assert not stack_file.exists()


def test_create_writes_a_new_stack_with_the_platform_proposal(tmp_path: Path, capsys):
    assert discover(tmp_path, "--cluster", "dev-eks", "--region", REGION, "--write", "--create") == 0
    config = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())["config"]
    assert {k: v for k, v in config.items() if not k.endswith("migrations")} == {
        "eks-gp3-migration:clusterName": "dev-eks",
        "eks-gp3-migration:region": REGION,
        "eks-gp3-migration:driverInstall": "addon",
        "eks-gp3-migration:driverAdopt": True,
        "eks-gp3-migration:driverAddonVersion": "v1.35.0-eksbuild.1",
        "eks-gp3-migration:snapshotSupport": "present",
        "eks-gp3-migration:gp3ClassName": "gp3-csi",
        # A new stack says which policy it plans for, not only the program's default.
        "eks-gp3-migration:performance": "sustained",
    }
    assert len(config["eks-gp3-migration:migrations"]) == 10
    assert f"new {tmp_path / 'Pulumi.dev.yaml'}: 10 added" in capsys.readouterr().err


def test_an_unknown_stack_is_refused_without_create(tmp_path: Path, capsys):
    (tmp_path / "Pulumi.prod.yaml").write_text("config: {}\n")
    assert discover(tmp_path, "--region", REGION, "--write") == 2
    assert capsys.readouterr().err == (
        f"gp3migrate discover: error: no stack file {tmp_path / 'Pulumi.dev.yaml'}, --stack dev, name an existing "
        "stack (prod), or add --write --create to start one\n"
    )
    assert not (tmp_path / "Pulumi.dev.yaml").exists()


def test_an_export_from_another_region_never_empties_the_list(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    text = stack_file.read_text()
    other_region = real_cluster()
    other_region.volumes = []
    capsys.readouterr()
    assert discover(tmp_path, "--write", "--prune", export=other_region) == 2
    assert capsys.readouterr().err == (
        "gp3migrate discover: error: the volumes cannot be this cluster's: none of the 17 EBS volumes the cluster's "
        "in-tree PVs name is in it (0 other volumes): another region or account, "
        f"--volumes-json {tmp_path}/volumes.json, "
        "export the volumes of the cluster's account and region (aws ec2 describe-volumes --region eu-central-1)\n"
    )
    assert stack_file.read_text() == text


def test_prune_never_empties_the_list(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    text = stack_file.read_text()
    migrated = real_cluster()
    migrated.items = [i for i in migrated.items if i["kind"] != "PersistentVolume"]  # nothing in-tree left
    capsys.readouterr()
    assert discover(tmp_path, "--write", "--prune", export=migrated) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"gp3migrate discover: refused, nothing written: --prune would empty the migrations list of {stack_file} "
        "(discovery proposes none of its 10 entries); remove them by hand if that is right"
    )
    assert stack_file.read_text() == text


def test_a_merge_the_program_would_refuse_is_not_written(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    text = stack_file.read_text().replace("      quiesce: manual\n", "      quiesce: scale\n", 1)
    stack_file.write_text(text)
    capsys.readouterr()
    assert discover(tmp_path, "--write") == 1
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"gp3migrate discover: refused, nothing written: the program would refuse {stack_file} after the merge; "
        "fix these first",
        "  - migrations[1].quiesce: 'scale' would fight postgresql pg (acid.zalan.do/v1), which controls StatefulSet "
        "pg and resets its replicas: use quiesce: manual and stop it through its operator",
    ]
    assert stack_file.read_text() == text


def test_write_prune_keeps_an_entry_with_a_phase_and_removes_the_rest(tmp_path: Path, capsys):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    text = stack_file.read_text().replace("      quiesce: manual\n", "      phase: precopy\n      quiesce: manual\n", 1)
    stack_file.write_text(text)
    migrated = real_cluster()
    migrated.items = [i for i in migrated.items if i["kind"] != "PersistentVolume"]  # nothing in-tree left
    capsys.readouterr()
    assert discover(tmp_path, "--write", "--prune", export=migrated) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{stack_file}: 0 added, 0 updated, 1 kept, 1 flagged, 9 removed"
    assert err[2:4] == [
        f"  flagged  db/pgdata-pg-0: not seen by discovery; {IN_FLIGHT['precopy']}",
        "  removed  db/backup-scratch: not seen by discovery (no phase set, --prune)",
    ]
    written = yaml.safe_load(stack_file.read_text())["config"]["eks-gp3-migration:migrations"]
    assert [(e["claim"], e["phase"]) for e in written] == [("pgdata-pg-0", "precopy")]


def test_after_a_rehome_precopy_the_gp3_volume_is_still_proposed_and_prune_keeps_it(tmp_path: Path, capsys):
    """Between precopy and cutover the volume is gp3 (ModifyVolume) and the PV still in-tree: the
    entry is found as before, its facts refreshed, and neither removed nor offered for removal."""
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_TEXT)
    assert discover(tmp_path, "--write") == 0
    text = stack_file.read_text().replace(
        "        name: web\n        replicas: 2\n", "        name: web\n        replicas: 2\n      phase: precopy\n", 1
    )
    stack_file.write_text(text)
    precopied = real_cluster()
    for volume in precopied.volumes:  # what the precopy's ModifyVolume made of it (its plan: 3000/125)
        if volume["VolumeId"] == vol("pvc-web"):
            volume.update(VolumeType="gp3", Iops=3000, Throughput=125)
    capsys.readouterr()
    assert discover(tmp_path, "--write", "--prune", export=precopied) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{stack_file}: 0 added, 1 updated, 9 kept, 0 flagged, 0 removed"
    assert "  updated  shop/web-uploads: volumeType 'gp2' -> 'gp3'; iops 100 -> 3000; throughput (absent) -> 125" in err
    written = yaml.safe_load(stack_file.read_text())["config"]["eks-gp3-migration:migrations"]
    assert [(e["phase"], e["volumeType"]) for e in written if e["claim"] == "web-uploads"] == [("precopy", "gp3")]


def test_new_entries_are_written_in_natural_order(tmp_path: Path, capsys):
    """The written list follows the table: c1, c2, c10 (entries already in the file keep their place)."""
    export = Export(items=[storage_class("gp2", default=True)])
    for name in ("c10", "c2", "c1"):
        volume_id = export.add_volume(name, "apps", name, size=10)
        export.items += [in_tree_pv(name, volume_id, "apps", name), claim("apps", name, name)]
    assert discover(tmp_path, "--cluster", "dev-eks", "--region", REGION, "--write", "--create", export=export) == 0
    written = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())["config"]["eks-gp3-migration:migrations"]
    assert [e["claim"] for e in written] == ["c1", "c2", "c10"]
