"""A cutover of a volume encrypted with a key the stack does not list in kmsKeyArns is refused with
the reason of its strategy (issue 22 item 7 c): a copy's driver restores from the snapshot, a
rehome's driver attaches the same volume through its CSI PV, which needs kms:CreateGrant on the
key (EBS user guide, "Requirements for Amazon EBS encryption"). With driverInstall: present the
stack grants nothing, so kmsKeyArns proves nothing: the running role is checked live instead.

Not proven here: what IAM answers for a real role (tests/test_driver_check.py stubs the simulator).
"""

import pytest

from gp3migrate.checks import driver_readiness
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings

KEY = "arn:aws:kms:eu-central-1:123456789012:key/1111-2222"
ENTRY = {
    "namespace": "default",
    "claim": "data-db-0",
    "pv": "pvc-0a1b2c3d",
    "volumeId": "vol-0123456789abcdef0",
    "zone": "eu-central-1a",
    "sizeGiB": 100,
    "phase": "cutover",
    "encrypted": True,
    "kmsKeyId": KEY,
}


def refusal(**stack) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_settings({"clusterName": "dev-eks", "region": "eu-central-1", **stack})
    return list(refused.value.problems)


def test_a_rehome_cutover_is_refused_for_the_attach_not_the_snapshot():
    (problem,) = refusal(migrations=[ENTRY])
    assert problem == (
        f"migrations[0].kmsKeyId: '{KEY}' (default/data-db-0) is not in kmsKeyArns: the driver could not attach the "
        "volume through its new CSI PV (attaching a volume encrypted with a customer-managed key needs "
        "kms:CreateGrant on the key); add the key to kmsKeyArns so the driver's role gets a grant for it"
    )


def test_a_copy_cutover_keeps_the_snapshot_reason():
    (problem,) = refusal(migrations=[{**ENTRY, "strategy": "copy"}])
    assert "the driver could not read the snapshot to restore it" in problem
    assert "attach" not in problem


def test_a_present_driver_is_not_refused_on_kmskeyarns_but_its_role_is_checked_for_the_key():
    settings = load_settings(
        {"clusterName": "dev-eks", "region": "eu-central-1", "driverInstall": "present", "migrations": [ENTRY]}
    )
    # The live check of the running role (components/driver_check_provider.py) asks for every
    # action EBS needs on this key, kms:CreateGrant included, before any migration step.
    assert driver_readiness.keys_in_use(settings) == (KEY,)
    assert "kms:CreateGrant" in driver_readiness.KMS_ACTIONS


def test_a_listed_key_passes_for_both_strategies():
    for strategy in ("rehome", "copy"):
        load_settings(
            {
                "clusterName": "dev-eks",
                "region": "eu-central-1",
                "kmsKeyArns": [KEY],
                "migrations": [{**ENTRY, "strategy": strategy}],
            }
        )
