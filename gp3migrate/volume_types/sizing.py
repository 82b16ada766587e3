"""gp3 IOPS and throughput that give a volume at least what gp2 gave it.

Figures are from the Amazon EBS volume types documentation (General Purpose SSD), as summarised in
shared/DESIGN.md "Facts":
- gp2: 3 IOPS per GiB, at least 100 and at most 16,000; volumes under 1,000 GiB burst to 3,000 IOPS.
  Throughput at most 128 MiB/s up to 170 GiB, 250 MiB/s (burst) above 170 GiB and sustained from
  334 GiB. Without burst credits, throughput is the IOPS times the I/O size, 256 KiB at most:
  "Throughput in MiB/s = ((Volume size in GiB) x (IOPS per GiB) x (I/O size in KiB))", up to
  250 MiB/s; "a 100 GiB gp2 volume with an empty credit balance has a baseline performance of
  300 IOPS and a throughput limit of 75 MiB/s" (EC2 User Guide, "Amazon EBS volume types",
  General Purpose SSD, "Throughput performance" and "What happens if I empty my I/O credit
  balance?": https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ebs-volume-types.html#GP2Throughput).
- gp3: 3,000 IOPS and 125 MiB/s included at any size; up to 500 IOPS per GiB and 0.25 MiB/s per
  IOPS; limits 80,000 IOPS / 2,000 MiB/s / 64 TiB since September 2025, 16,000 / 1,000 / 16 TiB
  where the older limits still apply.

Two policies for what "what gp2 gave it" means (config key `performance`):
- `sustained` (the default): what gp2 gives with no burst credits left, i.e. what the volume could
  be relied on for. gp3's included 3,000 IOPS cover it up to 1,000 GiB and its 125 MiB/s up to
  166 GiB; from 167 GiB the throughput (3 IOPS/GiB x 256 KiB) is bought, up to 250 MiB/s from
  334 GiB. Never more than `peak`.
- `peak`: gp2's burst included, all the time: a workload that relied on bursting keeps that
  performance. On small volumes this buys throughput gp2 only gave for minutes (1 GiB: 128 MiB/s
  instead of 125 doubles what it cost on gp2).
Either way nothing above the chosen target is bought, and a measured floor (`at_least`) applies on
top.
"""

import math
from dataclasses import dataclass
from typing import Literal

PerformancePolicy = Literal["sustained", "peak"]
PERFORMANCE_POLICIES: tuple[PerformancePolicy, ...] = ("sustained", "peak")
DEFAULT_PERFORMANCE_POLICY: PerformancePolicy = "sustained"

GP2_IOPS_PER_GIB = 3
GP2_MIN_IOPS = 100
GP2_MAX_IOPS = 16_000
GP2_BURST_IOPS = 3_000
GP2_BURST_BELOW_GIB = 1_000
GP2_SMALL_THROUGHPUT = 128  # MiB/s, up to 170 GiB
GP2_LARGE_THROUGHPUT = 250  # MiB/s, above 170 GiB (burst until 334 GiB, sustained after)
GP2_LARGE_FROM_GIB = 170
GP2_MAX_SIZE_GIB = 16_384
GP2_MAX_IO_KIB = 256  # the largest I/O gp2 counts as one operation (EBS "I/O characteristics")


@dataclass(frozen=True)
class Gp3Limits:
    base_iops: int = 3_000
    base_throughput: int = 125
    max_iops: int = 80_000
    max_throughput: int = 2_000
    max_size_gib: int = 65_536
    iops_per_gib: int = 500
    throughput_per_iops: float = 0.25


GP3_LIMITS = Gp3Limits()
# The pre-September-2025 limits, for regions that still have them.
GP3_LEGACY_LIMITS = Gp3Limits(max_iops=16_000, max_throughput=1_000, max_size_gib=16_384)
# Partitions whose regions we treat as having the older limits until AWS says otherwise there;
# the lower limits are the safe side (no gp2 volume needs more than 16,000 IOPS or 250 MiB/s).
_LEGACY_PARTITION_PREFIXES = ("cn-", "us-gov-", "us-iso")


def gp3_limits_for(region: str) -> Gp3Limits:
    if region.startswith(_LEGACY_PARTITION_PREFIXES):
        return GP3_LEGACY_LIMITS
    return GP3_LIMITS


@dataclass(frozen=True)
class Performance:
    iops: int
    throughput: int  # MiB/s


def gp2_baseline_iops(size_gib: int) -> int:
    return min(GP2_MAX_IOPS, max(GP2_MIN_IOPS, GP2_IOPS_PER_GIB * size_gib))


def gp2_peak(size_gib: int) -> Performance:
    """What a gp2 volume of this size delivers at best (burst included)."""
    if size_gib <= 0:
        raise ValueError(f"size must be positive, got {size_gib} GiB")
    iops = gp2_baseline_iops(size_gib)
    if size_gib < GP2_BURST_BELOW_GIB:
        iops = max(iops, GP2_BURST_IOPS)
    throughput = GP2_SMALL_THROUGHPUT if size_gib <= GP2_LARGE_FROM_GIB else GP2_LARGE_THROUGHPUT
    return Performance(iops=iops, throughput=throughput)


def gp2_sustained(size_gib: int) -> Performance:
    """What a gp2 volume of this size delivers with its burst credits spent: the baseline IOPS,
    and those IOPS at the largest I/O size (rounded up to whole MiB/s), within the peak limit."""
    peak = gp2_peak(size_gib)
    iops = gp2_baseline_iops(size_gib)
    throughput = min(peak.throughput, math.ceil(iops * GP2_MAX_IO_KIB / 1024))
    return Performance(iops=iops, throughput=throughput)


def gp2_performance(size_gib: int, policy: PerformancePolicy) -> Performance:
    """What the plan must match under `policy`."""
    return gp2_sustained(size_gib) if policy == "sustained" else gp2_peak(size_gib)


def plan_gp3(
    size_gib: int,
    limits: Gp3Limits = GP3_LIMITS,
    *,
    policy: PerformancePolicy,
    at_least: Performance | None = None,
) -> Performance:
    """The cheapest gp3 settings at or above gp2's performance under `policy` (and `at_least`,
    e.g. measured IOPS). `policy` has no default here: every caller says which it plans for.

    Clamped to what gp3 allows for this size: IOPS above 3,000 need 500 IOPS per GiB of size, and
    throughput above 125 MiB/s needs 4 IOPS per MiB/s.
    """
    if size_gib > limits.max_size_gib:
        raise ValueError(f"{size_gib} GiB is over the gp3 limit of {limits.max_size_gib} GiB")
    want = gp2_performance(size_gib, policy)
    if at_least is not None:
        want = Performance(max(want.iops, at_least.iops), max(want.throughput, at_least.throughput))
    max_iops_for_size = max(limits.base_iops, min(limits.max_iops, limits.iops_per_gib * size_gib))
    iops = min(max(limits.base_iops, want.iops), max_iops_for_size)
    throughput = max(limits.base_throughput, want.throughput)
    # Throughput above what the IOPS allow needs more IOPS, as far as the size allows.
    iops = min(max(iops, math.ceil(throughput / limits.throughput_per_iops)), max_iops_for_size)
    throughput = min(throughput, limits.max_throughput, int(iops * limits.throughput_per_iops))
    return Performance(iops=int(iops), throughput=int(throughput))
