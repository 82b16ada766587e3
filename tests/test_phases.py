"""Phase transitions under mocks: for each transition, exactly what appears, disappears or changes
between the two runs' registrations, with its options; the downtime window; refused edits; and a
property over random edit sequences that no data-holding object is ever deleted without opt-in.

Not proven here: the engine's real step order, how long EBS and the controllers take.
"""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gp3migrate.config.phases import PHASES, Applied, transition_problem
from tests.mock_cloud import Run, advance, copy_stack_config, run_program, with_phase

P = "migrate-default-ebs-gp2-claim"
DEV = copy_stack_config("dev")


def dev_facts() -> dict[str, object]:
    """The facts the example entry's record carries (gp3migrate/config/entry_facts.py)."""
    entry = DEV["eks-gp3-migration:migrations"][0]
    return {
        "pv": entry["pv"],
        "volumeId": entry["volumeId"],
        "zone": entry["zone"],
        "sizeGiB": entry["sizeGiB"],
        "fsType": "ext4",
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "pvStorageClass": None,
        "pvCapacity": None,
        "claimNaming": "rename",
        "newClaimName": "ebs-gp2-claim-gp3",
    }


def by_name(run: Run) -> dict[str, object]:
    return {r.name: r for r in run.registrations if r.name.startswith(P)}


def diff(before: Run, after: Run) -> tuple[set[str], set[str], set[str]]:
    """(created, removed, changed) child names of the example migration between two runs."""
    old, new = by_name(before), by_name(after)
    changed = {
        name
        for name in set(old) & set(new)
        if (old[name].inputs, old[name].protect, old[name].retain_on_delete)  # type: ignore[attr-defined]
        != (new[name].inputs, new[name].protect, new[name].retain_on_delete)  # type: ignore[attr-defined]
    }
    return set(new) - set(old), set(old) - set(new), changed


def test_precopy_declares_retain_and_the_precopy_snapshot_only():
    (run,) = advance(DEV, ["precopy"])
    assert sorted(by_name(run)) == [P, f"{P}-precopy-snapshot", f"{P}-retain"]
    assert run.outputs["migrationPhases"] == {
        "default/ebs-gp2-claim": {
            "phase": "precopy",
            "sourceDeleted": False,
            "snapshotsUnprotected": False,
            "cutovers": 0,
            "rolledBackCutover": False,
            "keepSnapshots": False,
            "strategy": "copy",
            "facts": dev_facts(),
        }
    }


def test_precopy_to_cutover_rename():
    precopy, cutover = advance(DEV, ["precopy", "cutover"])
    created, removed, changed = diff(precopy, cutover)
    assert created == {
        f"{P}-quiesce",
        f"{P}-detached",
        f"{P}-final-snapshot",
        f"{P}-content",
        f"{P}-volume-snapshot",
        f"{P}-claim",
    }
    assert removed == set() and changed == set()
    # A one-way step, not a declared `replicas`: `up --refresh` would read the running value back
    # and the next `up` would stop the workload again (simulation:
    # test_up_refresh_after_a_cutover_leaves_the_workload_running).
    quiesce = cutover.named(f"{P}-quiesce")
    assert quiesce.type == "pulumi-python:dynamic:Resource"
    assert {k: quiesce.inputs[k] for k in ("kind", "namespace", "name", "replicas", "timeoutSeconds")} == {
        "kind": "Deployment",
        "namespace": "default",
        "name": "app-gp2-in-tree",
        "replicas": 0,
        "timeoutSeconds": 0,
    }
    gate = cutover.named(f"{P}-detached")
    assert gate.type == "pulumi-python:dynamic:Resource"
    assert {k: v for k, v in gate.inputs.items() if k != "__provider"} == {
        "volumeId": "vol-03d3cd818a2c2def3",
        "region": "eu-central-1",
        "timeoutSeconds": 900,
    }
    # Rename: the workload must be repointed first, so nothing scales it back.
    assert not cutover.has(f"{P}-scale-back")
    assert cutover.named(f"{P}-claim").inputs["metadata"]["name"] == "ebs-gp2-claim-gp3"


def test_precopy_to_cutover_same_name():
    precopy, cutover = advance(DEV, ["precopy", "cutover"], claimNaming="same-name")
    created, removed, changed = diff(precopy, cutover)
    assert created == {
        f"{P}-quiesce",
        f"{P}-detached",
        f"{P}-final-snapshot",
        f"{P}-content",
        f"{P}-volume-snapshot",
        f"{P}-release-old-claim",
        f"{P}-claim",
        f"{P}-scale-back",
    }
    assert removed == set() and changed == set()
    release = cutover.named(f"{P}-release-old-claim")
    assert release.inputs["namespace"] == "default" and release.inputs["claim"] == "ebs-gp2-claim"
    assert cutover.depends_on(f"{P}-release-old-claim", f"{P}-volume-snapshot")
    assert cutover.depends_on(f"{P}-release-old-claim", f"{P}-retain")
    claim = cutover.named(f"{P}-claim")
    assert claim.inputs["metadata"]["name"] == "ebs-gp2-claim"
    assert claim.retain_on_delete and cutover.depends_on(f"{P}-claim", f"{P}-release-old-claim")
    scale_back = cutover.named(f"{P}-scale-back")
    assert scale_back.type == "pulumi-python:dynamic:Resource"
    assert (scale_back.inputs["replicas"], scale_back.inputs["timeoutSeconds"]) == (1, 600)
    assert cutover.depends_on(f"{P}-scale-back", f"{P}-claim")


def test_downtime_window_holds_only_the_detach_wait_final_snapshot_restore_and_claim():
    cutover = advance(DEV, ["precopy", "cutover"], claimNaming="same-name")[-1]
    in_window = {
        r.name
        for r in cutover.registrations
        if r.name.startswith(P)
        and r.name not in (f"{P}-quiesce", f"{P}-scale-back", P)
        and cutover.depends_on(r.name, f"{P}-quiesce")
        and cutover.depends_on(f"{P}-scale-back", r.name)
    }
    assert in_window == {
        f"{P}-detached",
        f"{P}-final-snapshot",
        f"{P}-content",
        f"{P}-volume-snapshot",
        f"{P}-release-old-claim",
        f"{P}-claim",
    }
    # The pre-copy happens before the window opens, never inside it.
    assert cutover.depends_on(f"{P}-quiesce", f"{P}-precopy-snapshot")
    assert not cutover.depends_on(f"{P}-precopy-snapshot", f"{P}-quiesce")


def test_cutover_to_finalize_then_cleanup():
    _, cutover, finalize, cleanup = advance(DEV, ["precopy", "cutover", "finalize", "cleanup"])
    created, removed, changed = diff(cutover, finalize)
    # The restore objects go only once the gp3 claim is bound (simulation:
    # test_finalize_before_the_renamed_claim_is_used_stops_with_a_reason_and_deletes_nothing).
    assert created == {f"{P}-claim-bound"}
    assert finalize.named(f"{P}-claim-bound").inputs["claim"] == "ebs-gp2-claim-gp3"
    assert finalize.depends_on(f"{P}-claim", f"{P}-claim-bound")
    assert removed == {f"{P}-quiesce", f"{P}-detached", f"{P}-content", f"{P}-volume-snapshot"}
    assert changed == {f"{P}-precopy-snapshot", f"{P}-final-snapshot"}
    for name in (f"{P}-precopy-snapshot", f"{P}-final-snapshot"):
        snapshot = finalize.named(name)
        assert (snapshot.protect, snapshot.retain_on_delete) == (False, False)
    # Cleanup, its own edit, deletes the (now unprotected) snapshots; the claim and Retain stay.
    created, removed, changed = diff(finalize, cleanup)
    # The claim's declared data source goes with the snapshot it was named after; the claim
    # ignores changes there, so the engine plans no update of it.
    assert (created, changed) == (set(), {f"{P}-claim"})
    before, after = finalize.named(f"{P}-claim"), cleanup.named(f"{P}-claim")
    assert {**after.inputs["spec"], "dataSource": before.inputs["spec"]["dataSource"]} == before.inputs["spec"]
    assert after.ignore_changes == ["spec.dataSource", "spec.dataSourceRef"]
    assert removed == {f"{P}-precopy-snapshot", f"{P}-final-snapshot"}
    assert sorted(by_name(cleanup)) == [P, f"{P}-claim", f"{P}-claim-bound", f"{P}-retain"]
    assert cleanup.named(f"{P}-retain").inputs["spec"] == {"persistentVolumeReclaimPolicy": "Retain"}


def test_finalize_keeps_snapshots_when_asked():
    finalize, cleanup = advance(DEV, ["precopy", "cutover", "finalize", "cleanup"], keepSnapshots=True)[2:]
    for name in (f"{P}-precopy-snapshot", f"{P}-final-snapshot"):
        assert (finalize.named(name).protect, finalize.named(name).retain_on_delete) == (False, True)
    assert not cleanup.has(f"{P}-precopy-snapshot")  # dropped from state only: retained in AWS


def test_finalize_deletes_the_source_only_with_opt_in_after_the_in_use_gate():
    cutover = advance(DEV, ["precopy", "cutover"])[-1]
    finalize = run_program(with_phase(DEV, "finalize", deleteSource=True), previous_outputs=cutover.outputs)
    assert finalize.error is None, finalize.error
    gate = finalize.named(f"{P}-in-use")
    entry = DEV["eks-gp3-migration:migrations"][0]
    assert {k: v for k, v in gate.inputs.items() if k not in ("__provider", "kubeconfig")} == {
        "namespace": "default",
        "claim": "ebs-gp2-claim-gp3",
        "region": "eu-central-1",
        # What it proves: the claim's volume restored from the final snapshot the cutover took.
        "proof": {
            "snapshotId": cutover.outputs["migrations"]["default/ebs-gp2-claim"]["finalSnapshotId"],
            "sourceVolumeId": entry["volumeId"],
            "sourcePv": entry["pv"],
        },
    }
    assert finalize.depends_on(f"{P}-in-use", f"{P}-final-snapshot")
    retain = finalize.named(f"{P}-retain")
    assert retain.inputs["spec"] == {"persistentVolumeReclaimPolicy": "Delete"}
    assert finalize.depends_on(f"{P}-retain", f"{P}-in-use")
    assert finalize.outputs["migrationPhases"]["default/ebs-gp2-claim"]["sourceDeleted"] is True


def test_precopy_to_rollback_changes_nothing_that_holds_data():
    precopy, rollback = advance(DEV, ["precopy", "rollback"])
    # Only the restart, a no-op on a running workload: a rollback always restores the recorded
    # replicas, since a cutover that failed after its quiesce is not recorded as applied.
    assert diff(precopy, rollback) == ({f"{P}-rollback-scale-back"}, set(), set())
    assert rollback.named(f"{P}-rollback-scale-back").inputs["replicas"] == 1


def test_a_rollback_from_precopy_says_it_only_restarts(caplog):
    """A cutover that failed part-way records nothing: the rollback cannot tell, so it says what it
    does and how to undo such a cutover (finish it, then roll back)."""
    precopy = advance(DEV, ["precopy"])[-1]
    cutover = advance(DEV, ["precopy", "cutover"])[-1]
    with caplog.at_level("WARNING"):
        run_program(with_phase(DEV, "rollback"), previous_outputs=precopy.outputs)
        run_program(with_phase(DEV, "rollback", deleteRestoredClaim=True), previous_outputs=cutover.outputs)
    warnings = [r.getMessage() for r in caplog.records if "rolling back from precopy" in r.getMessage()]
    assert warnings == [
        "default/ebs-gp2-claim: rolling back from precopy restarts the workload only. If a cutover failed "
        "part-way since, set phase: cutover and run `pulumi up` to finish it first, then roll back."
    ]


def test_cutover_to_rollback_rename_scales_back_on_the_old_claim_and_keeps_the_gp3_claim():
    cutover, rollback = advance(DEV, ["precopy", "cutover", "rollback"])[1:]
    created, removed, changed = diff(cutover, rollback)
    assert created == {f"{P}-rollback-scale-back"}
    assert removed == {f"{P}-quiesce", f"{P}-detached", f"{P}-content", f"{P}-volume-snapshot"}
    assert changed == set()
    assert rollback.named(f"{P}-rollback-scale-back").inputs["replicas"] == 1
    assert rollback.named(f"{P}-claim").retain_on_delete
    assert rollback.named(f"{P}-final-snapshot").protect


def test_cutover_to_rollback_same_name_rebinds_the_old_claim_to_the_source_pv():
    cutover = advance(DEV, ["precopy", "cutover"], claimNaming="same-name")[-1]
    rollback = run_program(
        with_phase(DEV, "rollback", claimNaming="same-name", deleteRestoredClaim=True),
        previous_outputs=cutover.outputs,
    )
    assert rollback.error is None, rollback.error
    created, removed, changed = diff(cutover, rollback)
    assert created == {
        f"{P}-rollback-quiesce",
        f"{P}-release-gp3-claim",
        f"{P}-rebind",
        f"{P}-rollback-claim",
        f"{P}-rollback-scale-back",
    }
    # The workload stops before its gp3 claim is released (kubernetes.io/pvc-protection).
    assert rollback.depends_on(f"{P}-release-gp3-claim", f"{P}-rollback-quiesce")
    source_pv = "pvc-646fef81-c677-46f4-8f27-9d394618f236"
    assert rollback.named(f"{P}-release-gp3-claim").inputs["notBoundTo"] == source_pv
    # The gp3 claim leaves the stack (retain_on_delete: the release step deleted it, its volume
    # kept by Retain); the cutover's scale-back, a done one-way step, leaves too.
    assert removed == {
        f"{P}-scale-back",
        f"{P}-quiesce",
        f"{P}-detached",
        f"{P}-content",
        f"{P}-volume-snapshot",
        f"{P}-release-old-claim",
        f"{P}-claim",
    }
    assert changed == set()
    assert rollback.named(f"{P}-rebind").inputs["spec"]["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "default",
        "name": "ebs-gp2-claim",
        "uid": "",
    }
    claim = rollback.named(f"{P}-rollback-claim")
    assert claim.inputs["spec"]["volumeName"] == "pvc-646fef81-c677-46f4-8f27-9d394618f236"
    assert claim.inputs["spec"]["storageClassName"] == "gp2" and claim.retain_on_delete
    assert rollback.depends_on(f"{P}-rollback-claim", f"{P}-rebind")
    assert rollback.depends_on(f"{P}-rebind", f"{P}-release-gp3-claim")
    assert rollback.depends_on(f"{P}-rollback-scale-back", f"{P}-rollback-claim")


REFUSED = [
    # (phases applied before, the edit, the key named, a fragment of the message)
    ([], {"phase": "cutover"}, "phase", "'cutover' skips 'precopy'"),
    ([], {"phase": "finalize"}, "phase", "'finalize' before 'cutover'"),
    (["precopy"], {"phase": "finalize"}, "phase", "'finalize' before 'cutover' (last applied: precopy)"),
    (["precopy", "cutover", "finalize"], {"phase": "rollback"}, "phase", "'rollback' after 'finalize'"),
    (["precopy", "cutover", "finalize"], {"phase": "precopy"}, "phase", "would go backwards"),
    (["precopy"], {"phase": "cutover", "quiesce": "none"}, "quiesce", "writes after the snapshot are lost"),
    (["precopy"], {"phase": "precopy", "claimNaming": "same-name", "quiesce": "none"}, "quiesce", "'none'"),
    (["precopy"], {"phase": "cutover", "deleteSource": True}, "deleteSource", "only allowed in phase finalize"),
    (
        ["precopy", "cutover"],
        {"phase": "rollback", "claimNaming": "same-name"},
        "deleteRestoredClaim",
        "must be true to roll back a same-name cutover",
    ),
    (
        ["precopy"],
        {"phase": "cutover", "deleteRestoredClaim": True},
        "deleteRestoredClaim",
        "only allowed in phase rollback",
    ),
    # Issue 9 item 10: facts that shape the objects a cutover created change only with a precopy.
    (
        ["precopy", "cutover"],
        {"phase": "cutover", "accessModes": ["ReadWriteOncePod"]},
        "accessModes",
        'is ["ReadWriteOncePod"] but the cutover applied ["ReadWriteOnce"]: it shapes the claim\'s and the PV\'s',
    ),
    (
        ["precopy", "cutover", "finalize"],
        {"phase": "finalize", "fsType": "xfs"},
        "fsType",
        "the finalize applied 'ext4'",
    ),
    (
        ["precopy"],
        {"phase": "cutover", "volumeMode": "Block"},
        "volumeMode",
        "changed since the precopy recorded 'Filesystem'",
    ),
    (["precopy", "cutover"], {"phase": "rollback", "zone": "eu-central-1b"}, "zone", "the CSI PV's node affinity"),
    (
        ["precopy", "cutover"],
        {"phase": "finalize", "newClaimName": "other-name"},
        "newClaimName",
        "is 'other-name' but the cutover applied 'ebs-gp2-claim-gp3'",
    ),
    (["precopy", "cutover"], {"phase": "finalize", "sizeGiB": 2}, "sizeGiB", "a size the volume does not have"),
    (
        ["precopy", "cutover", "rollback"],
        {"phase": "rollback", "fsType": "xfs", "deleteRestoredClaim": True},
        "fsType",
        "during the downtime. Set it back, or run phase: precopy with the new value first",
    ),
]


@pytest.mark.parametrize(("applied", "edit", "key", "fragment"), REFUSED)
def test_unsafe_edits_are_refused_before_any_registration(applied, edit, key, fragment):
    previous = {}
    if applied:
        changes = {k: v for k, v in edit.items() if k == "claimNaming"}
        previous = advance(DEV, applied, **changes)[-1].outputs
    run = run_program(
        with_phase(DEV, edit["phase"], **{k: v for k, v in edit.items() if k != "phase"}), previous_outputs=previous
    )
    assert run.error is not None
    line = next((ln for ln in str(run.error).splitlines() if f"migrations[0].{key}:" in ln), "")
    assert fragment in line, str(run.error)
    assert run.registrations == []


def test_facts_are_recorded_with_each_phase_and_change_only_with_a_precopy():
    precopy = advance(DEV, ["precopy"])[-1]
    record = precopy.outputs["migrationPhases"]["default/ebs-gp2-claim"]
    assert record["facts"] == dev_facts()
    again = run_program(with_phase(DEV, "precopy", fsType="xfs"), previous_outputs=precopy.outputs)
    assert again.error is None
    assert again.outputs["migrationPhases"]["default/ebs-gp2-claim"]["facts"]["fsType"] == "xfs"
    cutover = run_program(with_phase(DEV, "cutover", fsType="xfs"), previous_outputs=again.outputs)
    assert cutover.error is None


def test_records_from_before_facts_were_kept_are_not_checked():
    cutover = advance(DEV, ["precopy", "cutover"])[-1]
    outputs = copy.deepcopy(cutover.outputs)
    del outputs["migrationPhases"]["default/ebs-gp2-claim"]["facts"]
    run = run_program(with_phase(DEV, "cutover", fsType="xfs"), previous_outputs=outputs)
    assert run.error is None


def test_rollback_after_the_source_was_deleted_is_refused():
    assert "source volume was deleted" in (
        transition_problem(Applied(phase="finalize", source_deleted=True), "rollback") or ""
    )


DATA = {
    "aws:ebs/snapshot:Snapshot",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:core/v1:PersistentVolumePatch",
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.sampled_from(PHASES), min_size=1, max_size=6),
    naming=st.sampled_from(["rename", "same-name"]),
    delete_restored=st.booleans(),
)
def test_no_edit_sequence_deletes_data_without_opt_in(edits, naming, delete_restored):
    """Whatever the user edits, in any order: a refused edit registers nothing, and an accepted
    one never removes a snapshot while it is protected, never lets go of a claim or PV patch in a
    way that deletes it, and never sets Delete on the source without deleteSource."""
    previous: dict = {}
    last: Run | None = None
    for phase in edits:
        changes = {"claimNaming": naming}
        if phase == "rollback":
            changes["deleteRestoredClaim"] = delete_restored
        run = run_program(with_phase(DEV, phase, **changes), previous_outputs=previous)
        if run.error is not None:
            assert run.registrations == []
            continue
        for reg in run.registrations:
            if reg.type == "kubernetes:core/v1:PersistentVolumePatch" and reg.name.endswith("-retain"):
                assert reg.inputs["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
            if reg.type in ("kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolumePatch"):
                assert reg.retain_on_delete, reg.name
        if last is not None:
            gone = {r.name for r in last.registrations} - {r.name for r in run.registrations}
            for reg in last.registrations:
                # Leaving the stack deletes only what is unprotected and not retained: the
                # snapshots at the second finalize run, which is the explicit cleanup.
                if reg.name in gone and reg.type in DATA and not reg.retain_on_delete:
                    assert reg.type == "aws:ebs/snapshot:Snapshot" and not reg.protect, reg.name
                    assert phase == "cleanup"
        last, previous = run, run.outputs


def test_cutover_warns_when_a_statefulset_template_still_names_gp2(caplog):
    config = copy_stack_config("dev")
    entry = config["eks-gp3-migration:migrations"][0]
    entry["workload"] = {"kind": "StatefulSet", "name": "pg", "replicas": 3, "templateStorageClass": "gp2"}
    precopy = advance(config, ["precopy"], claimNaming="same-name")[-1]
    with caplog.at_level("WARNING"):
        cutover = run_program(with_phase(config, "cutover", claimNaming="same-name"), previous_outputs=precopy.outputs)
    assert cutover.error is None
    assert cutover.named(f"{P}-quiesce").inputs["kind"] == "StatefulSet"
    assert cutover.named(f"{P}-scale-back").inputs["replicas"] == 3
    warnings = [r.getMessage() for r in caplog.records if "volumeClaimTemplates" in r.getMessage()]
    assert len(warnings) == 1 and "new replicas would get gp2 volumes" in warnings[0]


def test_a_cutover_of_some_but_not_all_claims_of_one_workload_is_refused_naming_the_others():
    config = copy.deepcopy(DEV)
    key = next(k for k in config if k.endswith("migrations"))
    second = {**config[key][0], "claim": "logs", "pv": "pvc-logs", "volumeId": "vol-0fedcba9876543210"}
    config[key].append(second)
    precopy = advance(config, ["precopy"])[-1]
    config[key][0]["phase"] = "cutover"
    config[key][1]["phase"] = "precopy"
    run = run_program(config, previous_outputs=precopy.outputs)
    assert run.registrations == []
    assert (
        "- migrations[0].phase: 'cutover' of Deployment default/app-gp2-in-tree must include every claim it "
        "mounts; not yet: migrations[1] (default/logs, phase precopy)"
    ) in str(run.error)


def test_the_rollback_claim_names_the_source_pvs_own_class_and_capacity():
    """A static PV without a class, smaller than its EBS volume: the claim that binds it again
    must match it (issue 9 item 13), or the PV controller never binds it."""
    facts = {"claimNaming": "same-name", "pvStorageClass": "", "pvCapacity": "500Mi"}
    cutover = advance(DEV, ["precopy", "cutover"], **facts)[-1]
    rollback = run_program(
        with_phase(DEV, "rollback", deleteRestoredClaim=True, **facts), previous_outputs=cutover.outputs
    )
    assert rollback.error is None, rollback.error
    spec = rollback.named(f"{P}-rollback-claim").inputs["spec"]
    assert (spec["storageClassName"], spec["resources"]) == ("", {"requests": {"storage": "500Mi"}})
