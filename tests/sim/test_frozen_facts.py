"""Issue 9 item 10, the claim half, walked in the simulation: an entry's facts (access modes, volume
mode, fsType, size, ...) shape the claim and PV a cutover creates. Kubernetes cannot change those
fields on the existing objects, so Pulumi replaces them, delete-before-replace (they are named);
they are kept on delete, so the delete is skipped and the create fails with AlreadyExists in the
middle of the downtime window. The edit must be refused at preview, naming the key.

What this does not prove: the API server's own messages (the model's, in gp3migrate/sim/kube/store.py,
cite ValidatePersistentVolumeClaimUpdate and ValidatePersistentVolumeUpdate).
"""

import os
from typing import Any

import pytest

from gp3migrate.sim.scenario import Faults, Simulation
from tests.sim.test_scenarios import NAME, broken, dev, up, variant

DRIVER: Any = os.environ.get("GP3_SIM_DRIVER", "addon")

# (key, the edited value; None: one GiB more than the entry's size)
EDITS: list[tuple[str, Any]] = [
    ("accessModes", ["ReadWriteOncePod"]),
    ("volumeMode", "Block"),
    ("fsType", "xfs"),
    ("sizeGiB", None),
]


def edited_value(sim: Simulation, key: str, value: Any) -> Any:
    return sim.config["migrations"][0]["sizeGiB"] + 1 if value is None else value


@pytest.mark.parametrize("strategy", ["rehome", "copy-same-name"])
@pytest.mark.parametrize(("key", "value"), EDITS)
def test_an_edit_the_migrated_claim_cannot_take_is_refused_at_preview(strategy: str, key: str, value: Any) -> None:
    with Simulation(dev(**variant(strategy)), seed=140, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        assert up(sim, "cutover").ok
        edit = {key: edited_value(sim, key, value)}
        for phase in ("cutover", "finalize"):
            edited = sim.with_entries(phase=phase, **edit)
            preview = sim.preview(edited)
            assert preview.error is not None, f"{phase}: the preview let {edit} through"
            line = next((ln for ln in str(preview.error).splitlines() if f"migrations[0].{key}:" in ln), "")
            assert "cannot change" in line, str(preview.error)
            refused = sim.up(edited)
            assert refused.error is not None and refused.steps == []
        # The recorded value goes on as before.
        finalize = up(sim, "finalize")
        assert finalize.ok, finalize.error
        assert broken(sim, finalize) == []


def test_an_edit_after_a_cutover_that_failed_late_is_refused_too() -> None:
    """A cutover that failed after creating the claim records nothing (issue 9 item 7): the facts
    its objects were created with are the ones the precopy recorded."""
    with Simulation(dev(), seed=141, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        failed = up(sim, "cutover", faults=Faults({(f"{NAME}-scale-back", "create"): "error"}))
        assert failed.error is not None
        preview = sim.preview(sim.with_entries(phase="cutover", fsType="xfs"))
        assert preview.error is not None
        line = next((ln for ln in str(preview.error).splitlines() if "migrations[0].fsType:" in ln), "")
        assert "since the precopy recorded 'ext4'" in line, str(preview.error)
        again = up(sim, "cutover")
        assert again.ok, again.error
        assert broken(sim, again) == []


def test_facts_change_with_a_precopy_and_the_next_cutover_uses_them() -> None:
    with Simulation(dev(), seed=142, driver=DRIVER) as sim:
        assert up(sim, "precopy").ok
        stricter: dict[str, Any] = {"accessModes": ["ReadWriteOncePod"]}
        assert not sim.preview(sim.with_entries(phase="cutover", **stricter)).ok
        assert up(sim, "precopy", **stricter).ok
        cutover = up(sim, "cutover")
        assert cutover.ok, cutover.error
        assert broken(sim, cutover) == []
        claim = sim.world.kube.get("v1", "PersistentVolumeClaim", "default", "ebs-gp2-claim")
        assert claim is not None and claim["spec"]["accessModes"] == ["ReadWriteOncePod"]
