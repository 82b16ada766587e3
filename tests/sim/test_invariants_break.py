"""Each invariant added for issue 21 (item 3) shown able to fail: a small defect planted in the
program (a monkeypatched strategy helper) or in the world, and the violation it must report,
named for its promise and for the object. A checker that cannot fail proves nothing.

What this does not prove: that every defect of each kind is caught (issue 21 item 6 plants more).
"""

import dataclasses
from typing import Any

import pytest

from gp3migrate.checks import preconditions
from gp3migrate.planning import restore
from gp3migrate.planning.strategies import common, rehome
from gp3migrate.sim import invariants
from gp3migrate.sim.scenario import Simulation
from tests.sim.test_one_way_rechecks import replace_claim
from tests.sim.test_scenarios import dev, up, variant

NAME = "migrate-default-ebs-gp2-claim"
APP = ("default", "app-gp2-in-tree")


def named(found: list[invariants.Violation], invariant: str) -> list[str]:
    return [v.detail for v in found if v.invariant == invariant]


def phase_checks(sim: Simulation) -> list[invariants.Violation]:
    return invariants.after_phase(sim, sim.config)


def test_a_scale_back_to_other_replicas_than_the_workload_ran_breaks_workload_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The defect the old check missed: more replicas than before the cutover (it asked only for
    at least as many as the stack file records)."""
    original = common.scale

    def scale(ctx: Any, name: str, replicas: int, *, after: tuple[str, ...]) -> Any:
        return original(ctx, name, replicas + 1 if replicas else 0, after=after)

    monkeypatch.setattr(common, "scale", scale)
    with Simulation(dev(), seed=231) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert result.ok, result.error
        sim.world.tick(20)
        found = named(phase_checks(sim), invariants.WORKLOAD_RUNS)
    assert found and "default/app-gp2-in-tree" in found[0] and "spec.replicas 2; it ran 1" in found[0]


def test_a_restore_without_its_data_source_breaks_served_by_source(monkeypatch: pytest.MonkeyPatch) -> None:
    original = restore.restored_claim

    def empty_claim(*args: Any, **kwargs: Any) -> dict[str, Any]:
        claim = original(*args, **kwargs)
        claim["spec"].pop("dataSource")
        return claim

    monkeypatch.setattr(restore, "restored_claim", empty_claim)
    with Simulation(dev(**variant("copy-same-name")), seed=232) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        assert result.ok, result.error
        found = named(phase_checks(sim), invariants.SERVED_BY_SOURCE)
    assert found and found[0].startswith("default/ebs-gp2-claim (copy, phase cutover) is bound to vol-")


def test_a_csi_pv_with_the_default_fstype_on_an_xfs_volume_breaks_own_filesystem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A recorded fact replaced by the value the dev stack happens to have (issue 21's survivors)."""
    original = rehome.csi_persistent_volume

    def ext4_pv(*args: Any, **kwargs: Any) -> dict[str, Any]:
        pv = original(*args, **kwargs)
        pv["spec"]["csi"]["fsType"] = "ext4"
        return pv

    monkeypatch.setattr(rehome, "csi_persistent_volume", ext4_pv)
    with Simulation(dev(fsType="xfs"), seed=233) as sim:
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        # Found at the step after the CSI PV was created (the release), not only once the app failed
        # to mount.
        found = named(result.violations, invariants.OWN_FILESYSTEM)
    assert found and found[0].startswith(f"after create {NAME}-release-old-claim: PV ")
    assert found[0].endswith("as ext4, but it holds xfs")


def test_a_retain_patch_that_declares_delete_breaks_retain_at_the_first_one_way_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen at the step, before its provider runs, not through a later refresh's drift."""
    original = common.retain
    monkeypatch.setattr(common, "retain", lambda ctx, **kw: original(ctx, **{**kw, "reclaim": "Delete"}))
    with Simulation(dev(), seed=234) as sim:
        pv = sim.config["migrations"][0]["pv"]
        result = up(sim, "precopy")
        found = named(result.violations, invariants.RETAIN_BEFORE_ONE_WAY)
    assert found[0] == f"PV {pv} is Delete as create {NAME}-volume-tags starts"


def test_snapshots_kept_by_keep_snapshots_deleted_on_destroy_break_kept_when_let_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = common.snapshot
    monkeypatch.setattr(
        common, "snapshot", lambda *a, **kw: dataclasses.replace(original(*a, **kw), retain_on_delete=False)
    )
    with Simulation(dev(keepSnapshots=True), seed=235) as sim:
        for phase in ("precopy", "cutover", "finalize"):
            assert up(sim, phase).ok
        result = sim.destroy()
        found = named(result.violations, invariants.KEPT_WHEN_LET_GO)
    assert found and all(d.startswith("after pulumi destroy: snapshot snap-") for d in found)
    assert found[0].endswith("(keepSnapshots) is gone")


def test_a_claim_deleted_by_a_destroy_breaks_kept_when_let_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """The world's half: a claim that did not survive the destroy (as if it lacked
    retainOnDelete) is named."""
    with Simulation(dev(), seed=236) as sim:
        for phase in ("precopy", "cutover", "finalize"):
            assert up(sim, phase).ok
        claim = sim.checkpoint.named(f"{NAME}-claim")
        assert claim is not None and claim.retain_on_delete
        claim.retain_on_delete = False
        sim.world.scale_workload(*APP, 0)
        sim.world.tick(10)
        result = sim.destroy()
        found = named(result.violations, invariants.KEPT_WHEN_LET_GO)
    assert "after pulumi destroy: claim default/ebs-gp2-claim is gone or unbound" in found


# -- the invariants of the one-way steps' re-checks (tests/sim/test_one_way_rechecks.py walks each
# world; here each re-check is made to pass, and the invariant must name the promise and the object)


def test_a_copy_handed_over_before_it_is_in_use_breaks_source_kept_until_copy_in_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preconditions, "restored_volume_in_use", lambda ec2, **kw: "vol-unchecked")
    # Its second part too: a `rename` copy's source PV is still Bound to the old claim.
    monkeypatch.setattr(preconditions, "source_pv_released", lambda core, **kw: "Released")
    with Simulation(dev(**variant("copy-rename")), seed=237) as sim:
        source = sim.config["migrations"][0]["volumeId"]
        assert up(sim, "precopy").ok
        cutover = sim.with_entries(phase="cutover")
        assert sim.up(cutover).ok  # not repointed: the restored claim stays Pending
        sim.config = cutover
        result = up(sim, "finalize", deleteSource=True)
        found = named(result.violations, invariants.SOURCE_KEPT_UNTIL_COPY_IN_USE)
    assert found == [f"update {NAME}-retain hands {source} to deletion while default/ebs-gp2-claim-gp3 is not bound"]


def test_a_finalize_past_an_unbound_copy_breaks_restore_kept_until_copy_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # ClaimBound made to pass: finalize goes on to the restore objects of a claim still Pending.
    monkeypatch.setattr(preconditions, "claim_bound", lambda core, **kw: "pv-unchecked")
    with Simulation(dev(**variant("copy-rename")), seed=9) as sim:
        assert up(sim, "precopy").ok
        cutover = sim.with_entries(phase="cutover")
        assert sim.up(cutover).ok  # not repointed: the restored claim stays Pending
        sim.config = cutover
        result = up(sim, "finalize")
        found = named(result.violations, invariants.RESTORE_KEPT_UNTIL_COPY_BOUND)
    assert found, result.violations
    assert all(d.endswith("while default/ebs-gp2-claim-gp3 is not bound") for d in found), found
    assert any(d.startswith(f"delete {NAME}-") for d in found), found


def test_a_release_of_a_claim_bound_to_another_volume_breaks_only_own_claims_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = preconditions.release_claim
    monkeypatch.setattr(preconditions, "release_claim", lambda core, **kw: original(core, **{**kw, "bound_to": None}))
    with Simulation(dev(), seed=238) as sim:
        assert up(sim, "precopy").ok
        replaced = replace_claim(sim)
        result = up(sim, "cutover")
        found = named(result.violations, invariants.ONLY_OWN_CLAIMS_DELETED)
    assert len(found) == 1 and found[0].startswith(f"after create {NAME}-release-old-claim, as ")
    assert "claim default/ebs-gp2-claim (uid " in found[0] and f"deleted while bound to {replaced}" in found[0]


def test_a_source_volume_left_untagged_breaks_driver_can_manage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preconditions, "tag_volume", lambda ec2, volume_id, tags: dict(tags))
    with Simulation(dev(), seed=239) as sim:
        volume = sim.config["migrations"][0]["volumeId"]
        assert up(sim, "precopy").ok
        found = named(phase_checks(sim), invariants.DRIVER_CAN_MANAGE)
    assert len(found) == 1
    assert found[0].startswith(f"default/ebs-gp2-claim (rehome, phase precopy): volume {volume} refuses the driver ")
    assert "CreateSnapshot (v2)" in found[0] and "AttachVolume" not in found[0]


def test_a_snapshot_without_the_driver_tag_breaks_driver_can_manage(monkeypatch: pytest.MonkeyPatch) -> None:
    original = restore.snapshot_tags

    def untagged(*args: Any, **kwargs: Any) -> dict[str, str]:
        return {k: v for k, v in original(*args, **kwargs).items() if k != "ebs.csi.aws.com/cluster"}

    monkeypatch.setattr(restore, "snapshot_tags", untagged)
    with Simulation(dev(**variant("copy-same-name")), seed=240) as sim:
        assert up(sim, "precopy").ok
        found = named(phase_checks(sim), invariants.DRIVER_CAN_MANAGE)
    assert len(found) == 1 and f"({NAME}-precopy-snapshot) refuses the driver DeleteSnapshot (v1)" in found[0]


def test_a_modify_of_a_volume_outside_the_planned_zone_breaks_pv_in_volume_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = preconditions.modify_to_gp3

    def any_zone(ec2: Any, volume_id: str, **kw: Any) -> Any:
        actual = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["AvailabilityZone"]
        return original(ec2, volume_id, **{**kw, "expected_zone": actual})

    monkeypatch.setattr(preconditions, "modify_to_gp3", any_zone)
    with Simulation(dev(), seed=241) as sim:
        actual = sim.config["migrations"][0]["zone"]
        for entry in sim.config["migrations"]:
            entry["zone"] = "eu-central-1a"
        assert up(sim, "precopy").ok
        result = up(sim, "cutover")
        found = named(result.violations, invariants.PV_IN_VOLUME_ZONE)
    assert found and found[0].startswith(f"after create {NAME}-release-old-claim: PV ")
    volume = sim.config["migrations"][0]["volumeId"]
    assert found[0].endswith(f"-csi pins pods to eu-central-1a, but its volume {volume} is in {actual}")


def test_a_snapshot_destroyed_before_finalize_breaks_kept_when_let_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """Protected until finalize (DESIGN invariant 2), whether or not keepSnapshots keeps it later."""
    original = common.snapshot
    monkeypatch.setattr(common, "snapshot", lambda *a, **kw: dataclasses.replace(original(*a, **kw), protect=False))
    with Simulation(dev(), seed=242) as sim:
        assert up(sim, "precopy").ok
        result = sim.destroy()
        found = named(result.violations, invariants.KEPT_WHEN_LET_GO)
    assert len(found) == 1 and found[0].startswith("after pulumi destroy: snapshot snap-")
    assert found[0].endswith("(protected until finalize) is gone")
