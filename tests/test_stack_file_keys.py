"""The keys discovery writes into a stack file are validated like every other key (issue 11,
items 3-5): the source PV's class and capacity, an operator owning the workload, and the driver
keys discovery proposes. Each refusal names the key, the value and what is allowed."""

import pytest

from gp3migrate.config.migration_entry import Workload, WorkloadOwner
from gp3migrate.config.problems import ConfigError
from gp3migrate.config.settings import load_settings

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}
ENTRY = {
    "namespace": "db",
    "claim": "pgdata-pg-0",
    "pv": "pvc-0a1b2c3d",
    "volumeId": "vol-0123456789abcdef0",
    "zone": "eu-central-1a",
    "sizeGiB": 20,
}
OWNER = {"apiVersion": "acid.zalan.do/v1", "kind": "postgresql", "name": "pg"}
STATEFULSET = {"kind": "StatefulSet", "name": "pg", "replicas": 2, "owner": OWNER}


def problems_of(**values) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **values})
    return caught.value.problems


def test_the_source_pv_facts_are_read():
    settings = load_settings({**BASE, "migrations": [{**ENTRY, "pvStorageClass": "gp2", "pvCapacity": "500Mi"}]})
    (entry,) = settings.migrations
    assert (entry.pv_storage_class, entry.pv_capacity) == ("gp2", "500Mi")


def test_an_empty_pv_class_is_a_recorded_fact_not_a_gap():
    (static,) = load_settings({**BASE, "migrations": [{**ENTRY, "pvStorageClass": ""}]}).migrations
    (unknown,) = load_settings({**BASE, "migrations": [ENTRY]}).migrations
    assert (static.pv_storage_class, unknown.pv_storage_class) == ("", None)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"pvStorageClass": "GP2"},
            "migrations[0].pvStorageClass: 'GP2' is not a DNS-1123 name (lower-case letters, digits, '-' and '.', "
            "alphanumeric at both ends)",
        ),
        ({"pvStorageClass": 2}, "migrations[0].pvStorageClass: 2 is not a StorageClass name or ''"),
        (
            {"pvCapacity": "1 GiB"},
            "migrations[0].pvCapacity: '1 GiB' is not a Kubernetes quantity such as 1Gi or 500Mi",
        ),
        ({"pvCapacity": 10}, "migrations[0].pvCapacity: 10 is not the source PV's spec.capacity.storage, e.g. 1Gi"),
        (
            {"workload": {**STATEFULSET, "owner": "pg"}},
            "migrations[0].workload.owner: 'pg' is not a map with apiVersion, kind and name",
        ),
        (
            {"workload": {**STATEFULSET, "owner": {"kind": "postgresql", "name": "pg"}}, "quiesce": "manual"},
            "migrations[0].workload.owner.apiVersion: is required (the owner's apiVersion)",
        ),
        (
            {"workload": {**STATEFULSET, "owner": {**OWNER, "uid": "1"}}, "quiesce": "manual"},
            "migrations[0].workload.owner.uid: is not a known key (allowed: apiVersion, kind, name)",
        ),
        (
            {"workload": STATEFULSET},
            "migrations[0].quiesce: 'scale' would fight postgresql pg (acid.zalan.do/v1), which controls StatefulSet "
            "pg and resets its replicas: use quiesce: manual and stop it through its operator",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(changes, problem):
    assert problems_of(migrations=[{**ENTRY, **changes}]) == (problem,)


def test_an_operator_owned_workload_with_manual_quiesce_is_accepted():
    (entry,) = load_settings(
        {**BASE, "migrations": [{**ENTRY, "workload": STATEFULSET, "quiesce": "manual"}]}
    ).migrations
    assert entry.workload == Workload(
        kind="StatefulSet",
        name="pg",
        replicas=2,
        owner=WorkloadOwner(api_version="acid.zalan.do/v1", kind="postgresql", name="pg"),
    )
    assert entry.quiesce == "manual"


def test_the_driver_keys_discovery_proposes_are_accepted():
    assert load_settings({**BASE, "driverInstall": "present"}).driver.install == "present"
    adopted = load_settings(
        {**BASE, "driverInstall": "addon", "driverAddonVersion": "v1.35.0-eksbuild.1", "driverAdopt": True}
    )
    assert (adopted.driver.install, adopted.driver.adopt) == ("addon", True)
    assert load_settings(BASE).driver.adopt is False


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"driverInstall": "helmm"}, "driverInstall: 'helmm' is not one of helm, addon, present"),
        ({"driverAdopt": "yes"}, "driverAdopt: 'yes' is not a boolean (true or false)"),
        (
            {"driverInstall": "present", "driverAdopt": "true"},
            "driverAdopt: true needs driverInstall helm or addon (the install to import); present keeps the running "
            "driver unmanaged",
        ),
    ],
)
def test_bad_driver_keys_are_refused(values, problem):
    assert problems_of(**values) == (problem,)
