"""How a wave's cutover is split into `up`s (gp3migrate/planning/up_batches.py): whole workloads,
at most 4 volumes per `up` (the dynamic provider's 4 workers), in order; one `up` without a window."""

import pytest

from gp3migrate.planning.up_batches import split


def unit(item: str) -> str:
    return item.split(":")[0]


def test_whole_workloads_at_most_four_volumes_in_order() -> None:
    volumes = ["a:1", "b:1", "b:2", "b:3", "c:1", "d:1", "d:2", "e:1"]
    assert split(volumes, "cutover", unit=unit) == [["a:1", "b:1", "b:2", "b:3"], ["c:1", "d:1", "d:2", "e:1"]]


def test_a_workload_larger_than_an_up_is_alone_and_never_split() -> None:
    volumes = ["a:1", "b:1", "b:2", "b:3", "b:4", "b:5", "c:1"]
    assert split(volumes, "rollback", unit=unit) == [["a:1"], ["b:1", "b:2", "b:3", "b:4", "b:5"], ["c:1"]]


@pytest.mark.parametrize("phase", ["precopy", "finalize", "cleanup"])
def test_phases_without_a_window_are_one_up(phase: str) -> None:
    volumes = [f"w{i}:1" for i in range(9)]
    assert split(volumes, phase, unit=unit) == [volumes]


def test_nothing_and_a_bad_size() -> None:
    assert split([], "cutover", unit=unit) == []
    with pytest.raises(ValueError, match="at least 1"):
        split(["a:1"], "cutover", size=0, unit=unit)
