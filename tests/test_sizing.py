"""gp3 sizing and prices: exact figures at the documented thresholds, and properties over all
sizes (hypothesis)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gp3migrate.prices import PRICES, gp2_monthly, gp3_monthly, monthly_cost
from gp3migrate.sizing import (
    GP3_LEGACY_LIMITS,
    GP3_LIMITS,
    Performance,
    gp2_peak,
    gp3_limits_for,
    plan_gp3,
)

sizes = st.integers(min_value=1, max_value=16_384)
limits = st.sampled_from([GP3_LIMITS, GP3_LEGACY_LIMITS])


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
    assert plan_gp3(size) == Performance(iops, throughput)


def test_measured_performance_above_gp2_is_kept():
    assert plan_gp3(100, at_least=Performance(5000, 300)) == Performance(5000, 300)


def test_legacy_limit_regions():
    assert gp3_limits_for("cn-north-1") == GP3_LEGACY_LIMITS
    assert gp3_limits_for("eu-central-1") == GP3_LIMITS


@given(sizes, limits)
def test_never_below_gp2(size, lim):
    plan, peak = plan_gp3(size, lim), gp2_peak(size)
    assert plan.iops >= peak.iops and plan.throughput >= peak.throughput


@given(sizes, limits)
def test_within_gp3_limits(size, lim):
    plan = plan_gp3(size, lim)
    assert lim.base_iops <= plan.iops <= lim.max_iops
    assert plan.iops <= max(lim.base_iops, lim.iops_per_gib * size)
    assert lim.base_throughput <= plan.throughput <= lim.max_throughput
    assert plan.throughput <= plan.iops * lim.throughput_per_iops


@given(sizes, sizes)
def test_monotone_in_size(a, b):
    small, large = plan_gp3(min(a, b)), plan_gp3(max(a, b))
    assert small.iops <= large.iops and small.throughput <= large.throughput


@given(sizes, st.sampled_from(sorted(PRICES)))
def test_never_more_expensive_than_needed(size, region):
    """Any cheaper setting would fall short of gp2: one IOPS or one MiB/s less is below the peak
    (unless already at gp3's included baseline)."""
    plan, peak, prices = plan_gp3(size), gp2_peak(size), PRICES[region]
    assert plan.iops == max(3000, peak.iops)
    assert plan.throughput == max(125, peak.throughput)
    cost = gp3_monthly(size, plan, prices)
    for cheaper in (Performance(plan.iops - 1, plan.throughput), Performance(plan.iops, plan.throughput - 1)):
        if cheaper.iops >= 3000 and cheaper.throughput >= 125:
            assert gp3_monthly(size, cheaper, prices) < cost
            assert cheaper.iops < peak.iops or cheaper.throughput < peak.throughput


def test_prices_us_east_1_from_the_design_figures():
    prices = PRICES["us-east-1"]
    assert gp2_monthly(100, prices) == 10.0
    assert gp3_monthly(100, Performance(3000, 128), prices) == pytest.approx(8.0 + 3 * 0.04)
    assert gp3_monthly(2000, Performance(6000, 250), prices) == pytest.approx(160 + 3000 * 0.005 + 125 * 0.04)


def test_unknown_region_has_no_price():
    assert monthly_cost("ap-south-2", 10, plan_gp3(10)) is None
