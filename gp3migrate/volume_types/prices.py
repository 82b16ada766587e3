"""Monthly EBS list prices per region, as data with the date they were read.

Source: the Amazon EBS pricing page (on-demand, per GB-month / IOPS-month / MiB/s-month), read for
the regions below; us-east-1 figures are also quoted in shared/DESIGN.md. A region missing here has
no price shown: the plan still sizes the volume, and says the price is unknown.
"""

from dataclasses import dataclass

from gp3migrate.volume_types.sizing import GP3_LIMITS, Performance

PRICES_AS_OF = "2025-10-01"


@dataclass(frozen=True)
class RegionPrices:
    gp2_gb_month: float
    gp3_gb_month: float
    gp3_iops_month: float  # per provisioned IOPS above 3,000
    gp3_throughput_month: float  # per MiB/s above 125


_US = RegionPrices(gp2_gb_month=0.10, gp3_gb_month=0.08, gp3_iops_month=0.005, gp3_throughput_month=0.04)
PRICES: dict[str, RegionPrices] = {
    "us-east-1": _US,
    "us-east-2": _US,
    "us-west-2": _US,
    "eu-west-1": RegionPrices(0.11, 0.088, 0.0055, 0.044),
    "eu-central-1": RegionPrices(0.119, 0.0952, 0.006, 0.048),
}


@dataclass(frozen=True)
class MonthlyCost:
    gp2: float
    gp3: float

    @property
    def saving(self) -> float:
        return round(self.gp2 - self.gp3, 4)


def gp2_monthly(size_gib: int, prices: RegionPrices) -> float:
    return round(size_gib * prices.gp2_gb_month, 4)


def gp3_monthly(size_gib: int, perf: Performance, prices: RegionPrices) -> float:
    extra_iops = max(0, perf.iops - GP3_LIMITS.base_iops)
    extra_throughput = max(0, perf.throughput - GP3_LIMITS.base_throughput)
    return round(
        size_gib * prices.gp3_gb_month
        + extra_iops * prices.gp3_iops_month
        + extra_throughput * prices.gp3_throughput_month,
        4,
    )


def monthly_cost(region: str, size_gib: int, perf: Performance) -> MonthlyCost | None:
    prices = PRICES.get(region)
    if prices is None:
        return None
    return MonthlyCost(gp2=gp2_monthly(size_gib, prices), gp3=gp3_monthly(size_gib, perf, prices))
