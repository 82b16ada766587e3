"""Each strategy's runbook as plain steps (gp3migrate/planning/strategies/), without Pulumi: which steps a
phase declares, in which order, waiting for what, with which data-safety options; and one stop
and one start per workload (gp3migrate/planning/step_graph.py).

Not proven here: that the steps do what they say when they run (tests/sim/, moto gate tests).
"""

import pytest

from gp3migrate.config.phases import Applied
from gp3migrate.config.settings import load_settings
from gp3migrate.planning import step_graph, strategies
from gp3migrate.planning.plan import plan_migration
from gp3migrate.planning.steps import Ref
from gp3migrate.planning.strategies.common import Context

# kubernetesVersion: finalReclaimPolicy Delete needs 1.31 (gp3migrate/config/settings.py).
BASE = {"clusterName": "dev-eks", "region": "eu-central-1", "kubernetesVersion": "1.31"}


def entry(**extra) -> dict:
    return {
        "namespace": "apps",
        "claim": "data-db-0",
        "pv": "pvc-00000000-0000-4000-8000-000000000000",
        "volumeId": "vol-00000000000000001",
        "zone": "eu-central-1a",
        "sizeGiB": 100,
        "workload": {"kind": "StatefulSet", "name": "db", "replicas": 2},
        **extra,
    }


def context(previous: Applied | None = None, **extra) -> Context:
    settings = load_settings({**BASE, "migrations": [entry(**extra)]})
    return Context(plan_migration(settings.migrations[0], settings), settings, "dev", previous)


def runbook(phase: str, previous: Applied | None = None, **extra) -> list[tuple[str, tuple[str, ...]]]:
    plan = strategies.plan_phase(context(previous, phase=phase, **extra))
    return [(step.name, step.after) for step in plan.steps]


def test_rehome_is_the_default_and_prepares_the_volume_in_place():
    assert context().plan.entry.strategy == "rehome"
    assert runbook("precopy") == [
        ("retain", ()),
        ("safety-snapshot", ("retain",)),
        ("volume-tags", ("retain",)),
        ("volume-modify", ("volume-tags", "safety-snapshot")),
    ]
    modify = strategies.plan_phase(context(phase="precopy")).step("volume-modify")
    # 100 GiB gp2: 300 IOPS baseline, 3,000 burst, 128 MiB/s: set explicitly (a bare type change
    # would fall back to 3,000 / 125).
    assert modify.body == {
        "volume_id": "vol-00000000000000001",
        "region": "eu-central-1",
        "zone": "eu-central-1a",
        "iops": context().plan.performance.iops,
        "throughput": context().plan.performance.throughput,
        "timeout_seconds": 1800,
    }
    tags = strategies.plan_phase(context(phase="precopy")).step("volume-tags")
    assert tags.body["tags"] == {"ebs.csi.aws.com/cluster": "true"}


def test_rehome_without_a_safety_snapshot():
    assert runbook("precopy", safetySnapshot=False) == [
        ("retain", ()),
        ("volume-tags", ("retain",)),
        ("volume-modify", ("volume-tags",)),
    ]


def test_rehome_cutover_reserves_a_csi_pv_then_releases_the_old_claim_and_binds_the_same_name():
    steps = runbook("cutover", Applied(phase="precopy", strategy="rehome"))
    # The CSI PV, pre-bound to the claim's name, exists before the old claim is deleted: a claim of
    # that name recreated by anyone in between binds it, not a new, empty volume.
    assert steps[4:] == [
        ("quiesce", ("volume-modify",)),
        ("detached", ("quiesce",)),
        ("csi-pv", ("detached",)),
        ("release-old-claim", ("detached", "csi-pv", "retain")),
        ("claim", ("release-old-claim", "csi-pv")),
        ("scale-back", ("claim",)),
    ]
    plan = strategies.plan_phase(context(Applied(phase="precopy", strategy="rehome"), phase="cutover"))
    # The window: what runs while the app is stopped. No snapshot, no copy.
    assert plan.downtime_steps() == ["detached", "csi-pv", "release-old-claim", "claim"]
    release = plan.step("release-old-claim")
    assert release.body["bound_to"] == "pvc-00000000-0000-4000-8000-000000000000"
    pv = plan.step("csi-pv")
    assert pv.retain_on_delete and pv.body["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv.body["spec"]["csi"] == {
        "driver": "ebs.csi.aws.com",
        "volumeHandle": "vol-00000000000000001",
        "fsType": "ext4",
    }
    claim = plan.step("claim")
    assert claim.body["metadata"]["name"] == "data-db-0"
    assert claim.body["spec"]["volumeName"] == pv.body["metadata"]["name"]
    assert claim.retain_on_delete


def test_rehome_finalize_deletes_the_old_pv_object_only_after_the_claim_is_bound():
    plan = strategies.plan_phase(context(Applied(phase="cutover", strategy="rehome"), phase="finalize"))
    assert [(s.name, s.after) for s in plan.steps] == [
        ("safety-snapshot", ()),
        ("volume-tags", ()),
        ("volume-modify", ("volume-tags", "safety-snapshot")),
        ("csi-pv", ("old-pv-delete",)),
        ("claim", ("csi-pv",)),
        ("claim-bound", ()),
        ("old-pv-delete", ("claim-bound",)),
    ]
    assert plan.step("old-pv-delete").kind == "pv-delete"
    assert plan.step("safety-snapshot").protect is False
    # The Retain patch is no longer declared: its PV object is being deleted (the patch is kept
    # on delete, so leaving the stack changes nothing in the cluster).
    assert "retain" not in plan.names()
    delete = strategies.plan_phase(
        context(Applied(phase="cutover", strategy="rehome"), phase="finalize", finalReclaimPolicy="Delete")
    )
    assert delete.step("csi-pv").body["spec"]["persistentVolumeReclaimPolicy"] == "Delete"


def test_rehome_rollback_after_a_cutover_serves_the_volume_in_tree_again():
    steps = runbook("rollback", Applied(phase="cutover", strategy="rehome"))
    assert steps[4:] == [
        ("rollback-quiesce", ("retain",)),
        ("release-csi-claim", ("rollback-quiesce",)),
        ("csi-pv-delete", ("release-csi-claim",)),
        ("rebind", ("csi-pv-delete",)),
        ("rollback-claim", ("rebind",)),
        ("rollback-scale-back", ("rollback-claim",)),
    ]
    # From precopy the app is started whatever happened, and a CSI PV a cutover stopped before its
    # release left reserved for the claim's name is deleted (only while Retain and not Bound).
    assert runbook("rollback", Applied(phase="precopy", strategy="rehome"))[4:] == [
        ("csi-pv-delete", ("retain",)),
        ("rollback-scale-back", ("retain",)),
    ]
    unused = strategies.plan_phase(context(Applied(phase="precopy", strategy="rehome"), phase="rollback"))
    assert unused.step("csi-pv-delete").body == {
        "pv": "pvc-00000000-0000-4000-8000-000000000000-csi",
        "volume_id": "vol-00000000000000001",
    }


def test_modify_is_only_the_in_place_change():
    assert runbook("precopy", strategy="modify") == [("volume-tags", ()), ("volume-modify", ("volume-tags",))]


def test_copy_cutover_restores_from_objects_named_after_the_snapshot():
    plan = strategies.plan_phase(
        context(Applied(phase="precopy", cutovers=0), phase="cutover", strategy="copy", claimNaming="same-name")
    )
    assert plan.names() == [
        "retain",
        "precopy-snapshot",
        "quiesce",
        "detached",
        "final-snapshot",
        "content",
        "volume-snapshot",
        "release-old-claim",
        "claim",
        "scale-back",
    ]
    content = plan.step("content").body
    assert content["metadata"]["name"] == Ref("final-snapshot", "apps-data-db-0-{}")
    assert content["spec"]["source"]["snapshotHandle"] == Ref("final-snapshot")
    assert plan.step("content").delete_before_replace is False


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ({"strategy": "rehome", "encrypt": True}, "strategy", "use copy"),
        ({"claimNaming": "rename"}, "claimNaming", "strategy copy only"),
        ({"strategy": "modify", "phase": "cutover"}, "phase", "one phase, precopy"),
        ({"strategy": "copy", "safetySnapshot": False}, "safetySnapshot", "strategy rehome only"),
        ({"strategy": "fast"}, "strategy", "rehome"),
        ({"phase": "cutover", "quiesce": "none"}, "quiesce", "release the claim while the app still writes"),
        ({"strategy": "copy", "phase": "cutover", "quiesce": "none"}, "quiesce", "copy the volume while the app"),
    ],
)
def test_strategy_keys_that_do_not_apply_are_refused_by_name(extra, key, words):
    from gp3migrate.config.problems import ConfigError

    with pytest.raises(ConfigError) as err:
        load_settings({**BASE, "migrations": [entry(**extra)]})
    assert f"migrations[0].{key}" in str(err.value) and words in str(err.value)


def test_the_program_chooses_copy_when_only_a_copy_can_do_what_the_entry_asks():
    settings = load_settings(
        {
            **BASE,
            "migrations": [
                entry(encrypt=True),
                entry(claim="b", pv="pv-b", volumeId="vol-00000000000000002", volumeType="standard"),
            ],
        }
    )
    assert [(e.strategy, e.strategy_reason.split(":")[0]) for e in settings.migrations] == [
        ("copy", "copy"),
        ("copy", "copy"),
    ]


@pytest.mark.parametrize("strategy", ["rehome", "copy"])
def test_a_workload_with_several_claims_stops_once_and_starts_after_all_of_them(strategy):
    """Issue 9 item 1: a scale-back per claim restarted the pods while other claims were still
    mid-cutover."""
    extra = {} if strategy == "rehome" else {"strategy": "copy", "claimNaming": "same-name"}
    previous = Applied(phase="precopy", strategy=strategy)
    group = []
    for i in range(3):
        ctx = context(
            previous, phase="cutover", claim=f"data-db-{i}", pv=f"pv-{i}", volumeId=f"vol-0000000000000000{i}", **extra
        )
        group.append(step_graph.Member(ctx.plan.entry.resource_name, ctx.plan.entry, strategies.plan_phase(ctx)))
    graph = step_graph.build(group)
    scales = [n for n in graph.nodes if n.step.kind == "scale"]
    assert [n.name for n in scales] == ["migrate-apps-data-db-0-quiesce", "migrate-apps-data-db-0-scale-back"]
    quiesce, scale_back = scales
    assert set(scale_back.after) == {f"migrate-apps-data-db-{i}-claim" for i in range(3)}
    for i in range(3):
        detached = next(n for n in graph.nodes if n.name == f"migrate-apps-data-db-{i}-detached")
        assert quiesce.name in detached.after
        # Each migration's phase is recorded only once the shared start completed.
        assert scale_back.name in graph.steps_of[f"apps/data-db-{i}"]
    order = [n.name for n in graph.nodes]
    assert order.index(scale_back.name) > max(order.index(f"migrate-apps-data-db-{i}-claim") for i in range(3))
