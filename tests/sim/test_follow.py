"""The rehearsal of the next `up` (gp3migrate/sim/follow.py): the replay of what was applied brings
the world to where the user left it, the user's part between `up`s included, and says when a
replayed `up` ends otherwise than it did.

What this does not prove: that a real stack's history matches its `migrationPhases` output (only
the outputs are read; see test_simulate_command.py for --outputs)."""

import copy
from typing import Any

from gp3migrate.sim.follow import follow
from gp3migrate.sim.scenario import Simulation
from tests.stacks import dev_config

KMS_KEY = "arn:aws:kms:eu-central-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def at(config: dict[str, Any], phase: str, **entry: Any) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for item in config["migrations"]:
        item.update(phase=phase, **entry)
    return config


def test_a_renamed_copy_is_finalized_after_the_replay_repoints_the_workload_as_the_user_did() -> None:
    # GIVEN a copy whose cutover gave the claim a new name; the user then pointed the workload at it
    stack = at(dev_config(), "precopy", strategy="copy", claimNaming="rename")
    ups = [stack, at(stack, "cutover")]

    # WHEN the next `up` is the finalize
    done = follow(at(stack, "finalize"), stack="dev", seed=4, driver="addon", ups=ups)

    # THEN it finds the renamed claim bound (its check would stop the `up` otherwise)
    assert done.notes == []
    assert done.applied_before == {"default/ebs-gp2-claim": "cutover"}
    assert done.report.result.ok, done.report.result.error
    assert done.rehearsal.ok, [str(v) for v in done.report.violations]


def test_a_replayed_up_that_ends_otherwise_than_recorded_is_named() -> None:
    stack = dev_config()

    done = follow(at(stack, "precopy"), stack="dev", seed=4, driver="addon", ups=[stack], failed=[0])

    assert done.notes == ["replayed up 1 succeeded, but it failed when rehearsed: the program changed since; --fresh"]


def test_a_driver_role_without_rights_on_a_volumes_key_stops_the_precopy_naming_the_key() -> None:
    config = at(dev_config(), "precopy", encrypted=True, kmsKeyId=KMS_KEY)
    config["kmsKeyArns"] = [KMS_KEY]
    with Simulation(config, seed=4) as sim:
        # GIVEN the role the driver's ServiceAccount names may not use the key
        sim.world.driver_kms_keys.discard(KMS_KEY)

        result = sim.up(sim.with_entries(phase="precopy"))

        assert not result.ok
        assert "may not kms:CreateGrant, kms:Decrypt" in str(result.error)
        assert f"on KMS key {KMS_KEY}" in str(result.error)
        assert not [s for s in result.steps if s.name.endswith("-retain") and s.op == "create"]
