"""gp3 sizing and prices: exact figures at the documented thresholds, and properties over all
sizes (hypothesis); and the class each volume restores into, over all sources and stacks."""

import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gp3migrate.config.migration_entry import MigrationSettings
from gp3migrate.config.settings import load_settings
from gp3migrate.naming import dns1123_subdomain_problem
from gp3migrate.planning.manifests import (
    ClassFields,
    ClassParameters,
    class_for,
    has_tier_form,
    main_class_parameters,
    tier_class_name,
)
from gp3migrate.planning.plan import restore_class_parameters
from gp3migrate.volume_types.prices import PRICES, gp2_monthly, gp3_monthly, monthly_cost
from gp3migrate.volume_types.sizing import (
    GP3_LEGACY_LIMITS,
    GP3_LIMITS,
    PERFORMANCE_POLICIES,
    Performance,
    gp2_peak,
    gp2_performance,
    gp2_sustained,
    gp3_limits_for,
    plan_gp3,
)

sizes = st.integers(min_value=1, max_value=16_384)
limits = st.sampled_from([GP3_LIMITS, GP3_LEGACY_LIMITS])
policies = st.sampled_from(PERFORMANCE_POLICIES)


@pytest.mark.parametrize(
    ("size", "iops", "throughput"),
    [
        (1, 3000, 128),  # burst to 3,000; 128 MiB/s up to 170 GiB
        (170, 3000, 128),
        (171, 3000, 250),  # above 170 GiB: 250 MiB/s (burst)
        (334, 3000, 250),
        (999, 3000, 250),
        (1000, 3000, 250),  # 3 IOPS/GiB = 3,000: no burst needed
        (2000, 6000, 250),
        (5334, 16000, 250),  # gp2's maximum
        (16384, 16000, 250),
    ],
)
def test_plan_matches_gp2_peak_at_the_documented_thresholds(size, iops, throughput):
    assert plan_gp3(size, policy="peak") == Performance(iops, throughput)


@pytest.mark.parametrize(
    ("size", "gp2", "gp3"),
    [
        (1, (100, 25), (3000, 125)),  # gp2's minimum 100 IOPS x 256 KiB = 25 MiB/s: gp3's included 3000/125
        (100, (300, 75), (3000, 125)),  # the EBS guide's own example: 300 IOPS, 75 MiB/s
        (166, (498, 125), (3000, 125)),  # 124.5 MiB/s, rounded up: still included
        (167, (501, 126), (3000, 126)),  # 125.25 MiB/s: the first size that buys throughput
        (170, (510, 128), (3000, 128)),
        (200, (600, 150), (3000, 150)),  # peak buys 250
        (333, (999, 250), (3000, 250)),  # 249.75, rounded up
        (334, (1002, 250), (3000, 250)),  # capped at 250 MiB/s: the same as peak from here
        (400, (1200, 250), (3000, 250)),
        (1000, (3000, 250), (3000, 250)),
        (2000, (6000, 250), (6000, 250)),
        (5334, (16000, 250), (16000, 250)),
        (16384, (16000, 250), (16000, 250)),
    ],
)
def test_sustained_matches_gp2_without_burst_credits(size, gp2, gp3):
    """gp2 with its credits spent: 3 IOPS/GiB (100 to 16,000) and those IOPS x 256 KiB (EC2 User
    Guide, gp2 "Throughput performance"), never below gp3's included 3,000 / 125."""
    assert gp2_sustained(size) == Performance(*gp2)
    assert plan_gp3(size, policy="sustained") == Performance(*gp3)


def test_the_runbooks_1_gib_volume_pays_double_for_3_mib_s_of_burst_under_peak_only():
    """The example of issue 10, at eu-central-1 prices: gp2 $0.119; peak buys 128 MiB/s, 3 above
    the included 125, for $0.239; sustained stays at the included 3000/125."""
    prices = PRICES["eu-central-1"]
    assert gp2_monthly(1, prices) == 0.119
    assert gp3_monthly(1, plan_gp3(1, policy="peak"), prices) == pytest.approx(0.2392)
    assert gp3_monthly(1, plan_gp3(1, policy="sustained"), prices) == pytest.approx(0.0952)


@pytest.mark.parametrize("policy", PERFORMANCE_POLICIES)
def test_measured_performance_above_gp2_is_kept(policy):
    assert plan_gp3(100, policy=policy, at_least=Performance(5000, 300)) == Performance(5000, 300)
    # Only the measured figure that is higher wins: sustained 150 MiB/s at 200 GiB stays.
    assert plan_gp3(200, policy=policy, at_least=Performance(4000, 130)) == Performance(
        4000, gp2_performance(200, policy).throughput
    )


def test_legacy_limit_regions():
    assert gp3_limits_for("cn-north-1") == GP3_LEGACY_LIMITS
    assert gp3_limits_for("eu-central-1") == GP3_LIMITS


@given(sizes, limits, policies)
def test_never_below_gp2_under_the_policy(size, lim, policy):
    plan, target = plan_gp3(size, lim, policy=policy), gp2_performance(size, policy)
    assert plan.iops >= target.iops and plan.throughput >= target.throughput
    assert plan.iops >= 3000 and plan.throughput >= 125


@given(sizes, limits)
def test_sustained_is_gp2_without_burst_and_never_more_than_peak(size, lim):
    sustained, peak = gp2_sustained(size), gp2_peak(size)
    assert sustained.iops == min(16_000, max(100, 3 * size))
    assert sustained.throughput == min(250, math.ceil(sustained.iops / 4))
    assert sustained.iops <= peak.iops and sustained.throughput <= peak.throughput
    planned = plan_gp3(size, lim, policy="sustained"), plan_gp3(size, lim, policy="peak")
    assert planned[0].iops <= planned[1].iops and planned[0].throughput <= planned[1].throughput


@given(sizes, limits, policies)
def test_within_gp3_limits(size, lim, policy):
    plan = plan_gp3(size, lim, policy=policy)
    assert lim.base_iops <= plan.iops <= lim.max_iops
    assert plan.iops <= max(lim.base_iops, lim.iops_per_gib * size)
    assert lim.base_throughput <= plan.throughput <= lim.max_throughput
    assert plan.throughput <= plan.iops * lim.throughput_per_iops


@given(sizes, sizes, policies)
def test_monotone_in_size(a, b, policy):
    small, large = plan_gp3(min(a, b), policy=policy), plan_gp3(max(a, b), policy=policy)
    assert small.iops <= large.iops and small.throughput <= large.throughput


@given(sizes, st.sampled_from(sorted(PRICES)), policies)
def test_never_more_expensive_than_needed(size, region, policy):
    """Any cheaper setting would fall short of gp2 under the policy: one IOPS or one MiB/s less
    is below its target (unless already at gp3's included baseline)."""
    plan, target, prices = plan_gp3(size, policy=policy), gp2_performance(size, policy), PRICES[region]
    assert plan.iops == max(3000, target.iops)
    assert plan.throughput == max(125, target.throughput)
    cost = gp3_monthly(size, plan, prices)
    for cheaper in (Performance(plan.iops - 1, plan.throughput), Performance(plan.iops, plan.throughput - 1)):
        if cheaper.iops >= 3000 and cheaper.throughput >= 125:
            assert gp3_monthly(size, cheaper, prices) < cost
            assert cheaper.iops < target.iops or cheaper.throughput < target.throughput


@given(sizes, st.sampled_from(sorted(PRICES)))
def test_sustained_never_costs_more_than_peak(size, region):
    prices = PRICES[region]
    sustained = gp3_monthly(size, plan_gp3(size, policy="sustained"), prices)
    assert sustained <= gp3_monthly(size, plan_gp3(size, policy="peak"), prices)


def test_prices_us_east_1_from_the_design_figures():
    prices = PRICES["us-east-1"]
    assert gp2_monthly(100, prices) == 10.0
    assert gp3_monthly(100, Performance(3000, 128), prices) == pytest.approx(8.0 + 3 * 0.04)
    assert gp3_monthly(2000, Performance(6000, 250), prices) == pytest.approx(160 + 3000 * 0.005 + 125 * 0.04)


def test_unknown_region_has_no_price():
    assert monthly_cost("ap-south-2", 10, plan_gp3(10, policy="sustained")) is None


# --- The class a volume restores into (pure: gp3migrate.planning.plan, gp3migrate.planning.manifests) --------------

KEYS = st.sampled_from(
    [None] + [f"arn:aws:kms:eu-central-1:123456789012:key/{c * 8}-{c * 4}-4{c * 3}-8{c * 3}-{c * 12}" for c in "abcdef"]
)
FS = st.sampled_from(["ext4", "xfs", "ext3"])
class_parameters = st.builds(
    ClassParameters,
    iops=st.integers(3000, 80_000),
    throughput=st.integers(125, 2000),
    fs_type=FS,
    encrypted=st.booleans(),
    kms_key_id=KEYS,
).map(lambda p: p if p.encrypted or p.kms_key_id is None else replace(p, kms_key_id=None))


@given(class_parameters, class_parameters)
def test_tier_names_are_kubernetes_names_and_differ_whenever_the_fields_do(a, b):
    for params in (a, b):
        name = tier_class_name(params)
        assert dns1123_subdomain_problem(name) is None, name
        assert len(name) <= 253
        assert has_tier_form(name)
        assert tier_class_name(params) == name  # deterministic
    assert (tier_class_name(a) == tier_class_name(b)) == (ClassFields.of(a) == ClassFields.of(b))


def test_a_tier_name_with_a_trailing_newline_is_not_of_the_tier_form():
    name = tier_class_name(ClassParameters(iops=3000, throughput=125, fs_type="ext4", encrypted=True))
    assert has_tier_form(name) and has_tier_form(f"{name}-xfs")
    assert not has_tier_form(f"{name}\n") and not has_tier_form(f"{name}x")


@given(class_parameters, st.data())
def test_changing_any_one_field_changes_the_tier_name(params, data):
    """Random pairs rarely share all but one field: change exactly one, each in turn."""
    variants = [
        replace(params, iops=params.iops + 1),
        replace(params, throughput=params.throughput + 1),
        replace(params, fs_type=data.draw(FS.filter(lambda fs: fs != params.fs_type))),
        replace(params, encrypted=not params.encrypted, kms_key_id=None),
    ]
    if params.encrypted:
        variants.append(replace(params, kms_key_id=data.draw(KEYS.filter(lambda k: k != params.kms_key_id))))
    for variant in variants:
        assert tier_class_name(variant) != tier_class_name(params), (params, variant)


sources = st.fixed_dictionaries(
    {
        "size_gib": sizes,
        "fs_type": FS,
        "volume_mode": st.sampled_from(["Filesystem", "Block"]),
        "encrypted": st.booleans(),
        "kms_key_id": KEYS,
    }
)
stacks = st.fixed_dictionaries(
    {"fs_type": FS, "encrypted": st.booleans(), "kms_key_id": KEYS, "throughput": st.sampled_from([125, 128, 250])}
).map(lambda s: s if s["encrypted"] else {**s, "kms_key_id": None})


@given(sources, stacks, policies)
def test_a_restore_class_keeps_what_the_data_is_and_never_re_keys_it(source, stack, policy):
    storage = replace(load_settings(BASE).storage, **stack)
    entry = MigrationSettings(
        namespace="apps", claim="data", pv="pv", volume_id="vol-0123456789abcdef0", zone="eu-central-1a", **source
    )
    performance = plan_gp3(entry.size_gib, policy=policy)
    params = restore_class_parameters(entry, performance, storage)
    assert (params.iops, params.throughput) == (performance.iops, performance.throughput)
    if entry.volume_mode == "Filesystem":
        assert params.fs_type == entry.fs_type  # a restored filesystem mounts only as what it is
    if entry.encrypted:
        # The source's own key, or none named (EBS then keeps the snapshot's): never another key.
        assert params.encrypted and params.kms_key_id == entry.kms_key_id
    else:
        assert (params.encrypted, params.kms_key_id) == (storage.encrypted, storage.kms_key_id)
    name = class_for(storage, params)
    assert (name == storage.gp3_class_name) == (params == main_class_parameters(storage))
    assert name == storage.gp3_class_name or name == tier_class_name(params)


# --- README "Performance and price": the figures are the code's -------------------------------

BASE = {"clusterName": "dev-eks", "region": "eu-central-1"}

README_REGION = "eu-central-1"  # the runbook's region (Pulumi.dev.yaml)
README_SIZES = (1, 100, 200, 400, 1000, 2000)


def readme_price_table() -> list[str]:
    prices = PRICES[README_REGION]
    lines = [
        "| GiB | gp2 $/month | `sustained`: gp3 IOPS / MiB/s | $/month | `peak`: gp3 IOPS / MiB/s | $/month |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size in README_SIZES:
        cells = [str(size), f"{gp2_monthly(size, prices):.3f}"]
        for policy in PERFORMANCE_POLICIES:
            plan = plan_gp3(size, gp3_limits_for(README_REGION), policy=policy)
            cells += [f"{plan.iops} / {plan.throughput}", f"{gp3_monthly(size, plan, prices):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def readme_one_gib_example() -> str:
    prices, limits = PRICES[README_REGION], gp3_limits_for(README_REGION)
    sustained, peak = (plan_gp3(1, limits, policy=policy) for policy in ("sustained", "peak"))

    def usd(amount: float) -> str:
        return f"${amount:.4f}".rstrip("0")

    return (
        f"the runbook's 1 GiB volume costs {usd(gp2_monthly(1, prices))}/month on gp2, "
        f"{usd(gp3_monthly(1, sustained, prices))} on gp3 with `sustained` ({sustained.iops} / "
        f"{sustained.throughput}) and {usd(gp3_monthly(1, peak, prices))} with `peak` ({peak.iops} / "
        f"{peak.throughput})"
    )


def test_the_readme_price_figures_are_what_the_code_computes():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "\n".join(readme_price_table()) in readme, "\n" + "\n".join(readme_price_table())
    assert readme_one_gib_example() in " ".join(readme.split()), readme_one_gib_example()
