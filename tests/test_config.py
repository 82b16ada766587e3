"""Bad stack config fails before anything is registered, naming the key, the value and what is
allowed. Each case runs the real program under mocks and asserts zero registrations."""

import pytest

from gp3migrate.config.migration_entry import ENTRY_KEYS
from gp3migrate.config.problems import ConfigError, nearest_key
from gp3migrate.config.settings import ALL_KEYS, load_settings
from gp3migrate.planning.plan import plan_all
from tests.mock_cloud import run_program

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}
GOOD_ENTRY = {
    "namespace": "default",
    "claim": "data-db-0",
    "pv": "pvc-0a1b2c3d",
    "volumeId": "vol-0123456789abcdef0",
    "zone": "eu-central-1a",
    "sizeGiB": 20,
}


def entry(**changes):
    return {**GOOD_ENTRY, **changes}


# (config changes, the key the message must name, a fragment of what it must say)
BAD_CONFIGS = [
    ({"clusterName": None}, "clusterName", "is required"),
    ({"clusterName": "dev eks"}, "clusterName", "'dev eks' is not an EKS cluster name"),
    ({"region": "europe-1"}, "region", "'europe-1' is not an AWS region code"),
    (
        {
            "migrations": [
                entry(phase="cutover", encrypted=True, kmsKeyId="arn:aws:kms:eu-central-1:123456789012:key/1111-2222")
            ]
        },
        "migrations[0].kmsKeyId",
        "(default/data-db-0) is not in kmsKeyArns: the driver could not attach the volume",
    ),
    (
        {
            "migrations": [
                entry(phase="cutover", encrypted=True, kmsKeyId="arn:aws:kms:us-east-1:123456789012:key/1111-2222")
            ]
        },
        "migrations[0].kmsKeyId",
        "is in us-east-1, not in the stack's region eu-central-1",
    ),
    ({"driverInstall": "present", "driverVersion": "v1.28.0"}, "driverVersion", "is older than v1.33.0"),
    ({"driverInstall": "present", "driverVersion": "1.40"}, "driverVersion", "is not a driver version"),
    ({"driverInstall": "helmm"}, "driverInstall", "'helmm' is not one of helm, addon, present"),
    ({"driverInstall": "addon"}, "driverAddonVersion", "is required when driverInstall is 'addon'"),
    ({"driverAddonVersion": "latest"}, "driverAddonVersion", "'latest' is not an add-on version"),
    ({"driverChartVersion": "2.64"}, "driverChartVersion", "'2.64' is not a chart version"),
    ({"driverIdentity": "irsa2"}, "driverIdentity", "'irsa2' is not one of irsa, pod-identity"),
    ({"createOidcProvider": "yes"}, "createOidcProvider", "'yes' is not a boolean"),
    ({"managedPolicy": "v3"}, "managedPolicy", "'v3' is not one of v1, v2"),
    ({"kmsKeyArns": "arn:aws:kms:eu-central-1:123456789012:key/abc"}, "kmsKeyArns", "is not a list"),
    ({"kmsKeyArns": ["alias/ebs"]}, "kmsKeyArns[0]", "'alias/ebs' is not a KMS key ARN"),
    ({"kmsKeyArns": ["arn:aws:kms:us-east-1:123456789012:key/abc"]}, "kmsKeyArns[0]", "not in the cluster's region"),
    ({"extraVolumeTags": {"aws:owner": "x"}}, "extraVolumeTags.aws:owner", "is not an allowed tag key"),
    ({"extraVolumeTags": ["team"]}, "extraVolumeTags", "is not a map"),
    ({"snapshotSupport": "crds"}, "snapshotSupport", "'crds' is not one of manifests, addon, present"),
    ({"snapshotSupport": "addon"}, "snapshotControllerAddonVersion", "is required when snapshotSupport is 'addon'"),
    ({"snapshotterVersion": "8.6.0"}, "snapshotterVersion", "'8.6.0' is not a release tag"),
    ({"gp3ClassName": "GP3"}, "gp3ClassName", "'GP3' is not a DNS-1123 name"),
    ({"gp3ClassName": "gp2"}, "gp3ClassName", "must differ from gp2ClassName"),
    ({"gp3FsType": "btrfs"}, "gp3FsType", "'btrfs' is not one of ext4, xfs, ext3: the EBS CSI driver mounts no other"),
    ({"gp3Iops": "2999"}, "gp3Iops", "2999 is out of range (allowed: 3000 to 80000)"),
    ({"gp3Iops": "fast"}, "gp3Iops", "'fast' is not a whole number"),
    ({"gp3Throughput": "1000"}, "gp3Throughput", "needs at least 4000 IOPS"),
    (
        {"gp3KmsKeyId": "arn:aws:kms:eu-central-1:123456789012:key/abc"},
        "gp3KmsKeyId",
        "must also be listed in kmsKeyArns",
    ),
    (
        {
            "gp3Encrypted": "false",
            "gp3KmsKeyId": "arn:aws:kms:eu-central-1:123456789012:key/abc",
            "kmsKeyArns": ["arn:aws:kms:eu-central-1:123456789012:key/abc"],
        },
        "gp3KmsKeyId",
        "gp3Encrypted is false",
    ),
    ({"demoteGp2": "maybe"}, "demoteGp2", "'maybe' is not a boolean"),
    ({"performance": "burst"}, "performance", "'burst' is not one of sustained, peak"),
    ({"performance": "Peak"}, "performance", "'Peak' is not one of sustained, peak"),
    ({"migrations": [entry(performance="max")]}, "migrations[0].performance", "'max' is not one of sustained, peak"),
    ({"kubeconfigRoleArn": "admin"}, "kubeconfigRoleArn", "'admin' is not an IAM role ARN"),
    ({"clustername": "dev-eks"}, "clustername", "is not a known key; did you mean clusterName?"),
    ({"demoteGP2": "false"}, "demoteGP2", "is not a known key; did you mean demoteGp2?"),
    ({"migrations": {"claim": "x"}}, "migrations", "is not a list of migration entries"),
    ({"migrations": [entry(volumeId="vol-xyz")]}, "migrations[0].volumeId", "'vol-xyz' is not an EBS volume id"),
    (
        {"migrations": [entry(volumeId="aws://eu-central-1a/vol-0123456789abcdef0")]},
        "migrations[0].volumeId",
        "is not an EBS volume id",
    ),
    ({"migrations": [entry(sizeGiB=0)]}, "migrations[0].sizeGiB", "0 is out of range"),
    ({"migrations": [entry(sizeGiB=-5)]}, "migrations[0].sizeGiB", "-5 is out of range"),
    ({"migrations": [entry(sizeGiB=None)]}, "migrations[0].sizeGiB", "is required"),
    (
        {"migrations": [entry(), entry(volumeId="vol-0123456789abcdef1", pv="pvc-other")]},
        "migrations[1].claim",
        "'default/data-db-0' is also used by migrations[0]",
    ),
    ({"migrations": [entry(), entry(claim="other")]}, "migrations[1].pv", "is also used by migrations[0]"),
    (
        {
            "migrations": [
                entry(namespace="a-b", claim="c"),
                entry(namespace="a", claim="b-c", pv="p2", volumeId="vol-0123456789abcdef1"),
            ]
        },
        "migrations[1].claim",
        "'migrate-a-b-c' is also used by migrations[0]",
    ),
    ({"migrations": [entry(claim="c" * 254)]}, "migrations[0].claim", "is 254 characters"),
    ({"migrations": [entry(claim="c" * 252)]}, "migrations[0].newClaimName", "set a shorter newClaimName"),
    ({"migrations": [entry(newClaimName="Data_New")]}, "migrations[0].newClaimName", "is not a DNS-1123 name"),
    ({"migrations": [entry(newClaimName="data-db-0")]}, "migrations[0].newClaimName", "must differ from the claim"),
    ({"migrations": [entry(zone="us-east-1a")]}, "migrations[0].zone", "is not an availability zone of region"),
    (
        {"migrations": [entry(accessModes=["ReadWriteMany"])]},
        "migrations[0].accessModes[0]",
        "'ReadWriteMany' is not one of",
    ),
    (
        {"migrations": [entry(volumeMode="block")]},
        "migrations[0].volumeMode",
        "'block' is not one of Filesystem, Block",
    ),
    (
        {"migrations": [entry(workload={"kind": "DaemonSet", "name": "x", "replicas": 1})]},
        "migrations[0].workload.kind",
        "'DaemonSet' is not one of Deployment, StatefulSet",
    ),
    (
        {"migrations": [entry(workload={"kind": "Deployment", "name": "x"})]},
        "migrations[0].workload.replicas",
        "is required",
    ),
    (
        {"migrations": [entry(kmsKeyId="alias/aws/ebs")]},
        "migrations[0].kmsKeyId",
        "'alias/aws/ebs' is not a KMS key ARN",
    ),
    ({"migrations": [entry(sizegib=20)]}, "migrations[0].sizegib", "is not a known key; did you mean sizeGiB?"),
    ({"migrations": ["default/data-db-0"]}, "migrations[0]", "is not a map"),
]


@pytest.mark.parametrize(("changes", "key", "fragment"), BAD_CONFIGS, ids=[c[1] for c in BAD_CONFIGS])
def test_bad_config_is_refused_before_any_registration(changes, key, fragment):
    config = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    result = run_program(config)
    assert result.error is not None, "the program accepted a bad config"
    message = str(result.error)
    line = next((ln for ln in message.splitlines() if ln.strip().startswith(f"- {key}:")), None)
    assert line is not None, f"no line names {key!r} in:\n{message}"
    assert fragment in line, line
    assert result.registrations == [], [r.name for r in result.registrations]


def test_corpus_is_large_enough():
    assert len(BAD_CONFIGS) >= 20


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        load_settings({"clusterName": "x y", "driverInstall": "y", "gp3Iops": "1"})
    keys = [p.split(":")[0] for p in caught.value.problems]
    assert keys == ["clusterName", "region", "driverInstall", "gp3Iops"]


def test_defaults_are_the_documented_ones():
    settings = load_settings(BASE)
    assert (settings.driver.install, settings.driver.identity, settings.driver.managed_policy) == ("helm", "irsa", "v1")
    assert settings.driver.chart_version == "2.64.0"
    assert settings.driver.create_oidc_provider is False
    assert settings.snapshots.support == "manifests" and settings.snapshots.snapshotter_version == "v8.6.0"
    storage = settings.storage
    assert (storage.gp3_class_name, storage.fs_type, storage.encrypted, storage.iops, storage.throughput) == (
        "gp3",
        "ext4",
        True,
        3000,
        125,
    )
    assert storage.demote_gp2 is True and settings.migrations == ()
    assert settings.performance == "sustained"


def test_the_performance_policy_is_stack_wide_and_overridable_per_migration():
    settings = load_settings(
        {
            **BASE,
            "performance": "peak",
            "migrations": [
                entry(),
                entry(claim="logs", pv="pvc-2", volumeId="vol-0123456789abcdef1", performance="sustained"),
            ],
        }
    )
    assert settings.performance == "peak"
    assert [m.performance for m in settings.migrations] == [None, "sustained"]
    plans = plan_all(settings)
    assert [plan.performance_policy for plan in plans] == ["peak", "sustained"]
    # 20 GiB: gp2's burst 128 MiB/s under peak; 60 IOPS x 256 KiB = 15 MiB/s, so gp3's 125, sustained.
    assert [(plan.performance.iops, plan.performance.throughput) for plan in plans] == [(3000, 128), (3000, 125)]


def test_new_claim_name_defaults_to_suffix_and_can_be_set():
    settings = load_settings(
        {
            **BASE,
            "migrations": '[{"namespace": "default", "claim": "data", "pv": "pv-1", '
            '"volumeId": "vol-0123456789abcdef0", "zone": "eu-central-1a", "sizeGiB": 5}]',
        }
    )
    assert settings.migrations[0].new_claim_name == "data-gp3"


# --- a misspelt key names the key it most likely meant ---------------------------------------


def problems_of(values) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    return caught.value.problems


TOP_LEVEL = f"(allowed: {', '.join(sorted(ALL_KEYS))})"
IN_AN_ENTRY = f"(allowed: {', '.join(sorted(ENTRY_KEYS))})"
WORKLOAD = {"kind": "Deployment", "name": "app", "replicas": 1}


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        # Another case first, then the closest spelling.
        ({"demoteGP2": True}, f"demoteGP2: is not a known key; did you mean demoteGp2? {TOP_LEVEL}"),
        ({"demoteGp22": True}, f"demoteGp22: is not a known key; did you mean demoteGp2? {TOP_LEVEL}"),
        ({"clustername": "dev-eks"}, f"clustername: is not a known key; did you mean clusterName? {TOP_LEVEL}"),
        ({"kmsKeyArn": []}, f"kmsKeyArn: is not a known key; did you mean kmsKeyArns? {TOP_LEVEL}"),
        (
            {"snapshotControllerVersion": "v8.2.0-eksbuild.1"},
            f"snapshotControllerVersion: is not a known key; did you mean snapshotControllerAddonVersion? {TOP_LEVEL}",
        ),
        # Nothing close: the message as before.
        ({"colour": "blue"}, f"colour: is not a known key {TOP_LEVEL}"),
        (
            {"migrations": [entry(volumeID="vol-0123456789abcdef0")]},
            f"migrations[0].volumeID: is not a known key; did you mean volumeId? {IN_AN_ENTRY}",
        ),
        (
            {"migrations": [entry(phaze="cutover")]},
            f"migrations[0].phaze: is not a known key; did you mean phase? {IN_AN_ENTRY}",
        ),
        ({"migrations": [entry(notes="db")]}, f"migrations[0].notes: is not a known key {IN_AN_ENTRY}"),
        (
            {"migrations": [entry(workload={**WORKLOAD, "replica": 2})]},
            "migrations[0].workload.replica: is not a known key; did you mean replicas? "
            "(allowed: claimRetention, kind, name, owner, replicas, templateStorageClass)",
        ),
        (
            {
                "migrations": [
                    entry(
                        quiesce="manual",
                        workload={**WORKLOAD, "owner": {"api_version": "acid.zalan.do/v1", "kind": "pg", "name": "pg"}},
                    )
                ]
            },
            "migrations[0].workload.owner.api_version: is not a known key; did you mean apiVersion? "
            "(allowed: apiVersion, kind, name)",
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_a_misspelt_key_suggests_the_nearest_known_one(values, problem):
    found = problems_of({**BASE, **values})
    assert problem in found, found


def test_the_suggestion_is_the_only_change_to_the_problems():
    # The owner's missing apiVersion is still reported on its own line.
    owner = {"api_version": "acid.zalan.do/v1", "kind": "pg", "name": "pg"}
    found = problems_of({**BASE, "migrations": [entry(quiesce="manual", workload={**WORKLOAD, "owner": owner})]})
    assert found == (
        "migrations[0].workload.owner.api_version: is not a known key; did you mean apiVersion? "
        "(allowed: apiVersion, kind, name)",
        "migrations[0].workload.owner.apiVersion: is required (the owner's apiVersion)",
    )


@pytest.mark.parametrize(
    ("key", "allowed", "nearest"),
    [
        ("demoteGP2", ("demoteGp2", "gp2ClassName"), "demoteGp2"),
        ("GP2CLASSNAME", ("demoteGp2", "gp2ClassName"), "gp2ClassName"),
        ("gp2Class", ("demoteGp2", "gp2ClassName"), "gp2ClassName"),
        ("uid", ("apiVersion", "kind", "name"), None),
        ("", ("kind",), None),
    ],
)
def test_nearest_key(key, allowed, nearest):
    assert nearest_key(key, allowed) == nearest
