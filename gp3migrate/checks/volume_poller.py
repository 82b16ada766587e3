"""One DescribeVolumes for every volume the gates of this process are waiting on, and one
DescribeVolumesModifications for every volume whose modification they wait on (issue 24 item 5).

All dynamic resources of a stack run in one provider process, on a gRPC server with 4 worker
threads (pulumi SDK `pulumi/dynamic/__main__.py` main()), and a wave's gates wait there side by
side, each polling its own volume. EC2 throttles DescribeVolumes per account and region (a bucket
of 100 tokens refilled at 20 a second: EC2 developer guide "Request throttling for the Amazon EC2
API"), so a poll per volume grows with the wave. Here a waiter registers its volume for as long as
it waits (`watch`), and each poll (`Watch.look`) is served from the last call made for all the
volumes registered on that client, if that call is newer than the waiter's previous look; only
otherwise does the waiter make the call, for all of them. N waiters polling every P seconds make
about one call per P seconds (one per 200 volumes), not N. The process's poller is
preconditions.RUNTIME's (a simulated `up` gets a fresh one with its own Runtime).

The call filters by `volume-id`, at most 200 values a filter (EC2 API reference, "Filter"), and
pages with MaxResults / NextToken: MaxResults cannot be combined with VolumeIds (EC2 API reference,
DescribeVolumes, MaxResults: "You cannot specify this parameter and the volume IDs parameter in the
same request"; the sentence as the EC2 service model carried it, e.g. in the AWS SDK for .NET and
Ruby; botocore 1.44's copy of the model leaves it out). A volume the filter does not return does not
exist (or not yet: EC2's eventual consistency), and is reported as None.

DescribeVolumesModifications is batched the same way (`watch(..., what=MODIFICATIONS)`): a
`volume-id` filter of up to 200 values, paged with MaxResults (5 to 500) and NextToken (EC2 API
reference, DescribeVolumesModifications). With a filter, a volume never modified is simply not in
the answer (with VolumeIds AWS answers InvalidVolumeModification.NotFound: aws-ebs-csi-driver
pkg/cloud isAWSErrorModificationNotFound), and the look returns None for it. Each volume's
modifications come in the order EC2 listed them.

A waiter never waits for another thread: it takes the group's lock, and whoever holds it makes the
call under it. In the simulation, where only one gate thread runs at a time and a gate lets
simulated time pass only through its own `sleep` (gp3migrate/sim/clock.py), the lock is never held
across such a wait. Times are the caller's clock (the gates' `clock`, simulated there).
"""

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

IDS_PER_CALL = 200  # EC2 API reference, "Filter": up to 200 values in one filter
PAGE_SIZE = 500  # DescribeVolumes and DescribeVolumesModifications MaxResults: 5 to 500
VOLUMES = "volumes"
MODIFICATIONS = "modifications"


@dataclass
class _Group:
    """The volumes waited on through one client, and the last call's answer for them. `state` guards
    the fields and is held only briefly; `calling` is held across the call, so one call at a time
    is made and a waiter that registers meanwhile is not held up."""

    describe: Callable[[Any, list[str]], dict[str, Any]]  # the call: DESCRIBE's
    state: threading.Lock = field(default_factory=threading.Lock)
    calling: threading.Lock = field(default_factory=threading.Lock)
    watched: Counter[str] = field(default_factory=Counter)
    seen: dict[str, Any] = field(default_factory=dict)  # by volume id; None: not found
    fetched_at: float = -math.inf


@dataclass
class Watch:
    """One waiter's volume: `look` returns it as an answer newer than the waiter's last one."""

    group: _Group
    ec2: Any
    volume_id: str
    registered_at: float
    seen_at: float | None = None
    pause: Callable[[], None] | None = None

    def _fresh(self) -> bool:
        group = self.group
        if self.volume_id not in group.seen:
            return False
        # The first look takes an answer given since it registered; a later one, a newer answer.
        return group.fetched_at >= self.registered_at if self.seen_at is None else group.fetched_at > self.seen_at

    def look(self, clock: Callable[[], float]) -> Any:
        """The volume (None: EC2 does not know it), from the last call made for the group if that is
        fresh for this waiter, else from a call made now for every volume the group waits on. The
        call is stamped with `clock` once it is this waiter's turn, before it is sent: its answer is
        at least that new."""
        group = self.group
        if self.pause is None:
            group.calling.acquire()
        else:
            while not group.calling.acquire(blocking=False):
                self.pause()
        try:
            with group.state:
                ids = [] if self._fresh() else sorted({*group.watched, self.volume_id})
                stamp = clock()
            if ids:
                found = group.describe(self.ec2, ids)
                with group.state:
                    group.seen = {v: found.get(v) for v in ids}
                    group.fetched_at = stamp
            with group.state:
                self.seen_at = group.fetched_at
                return group.seen[self.volume_id]
        finally:
            group.calling.release()


class VolumePoller:
    """The waits of one provider process (preconditions.Runtime holds it). `pause`: how a waiter
    waits while another's call is in flight (None: it blocks on the lock, as threads do). The
    simulation passes a pause that lets simulated time pass: it runs one step at a time, and a step
    blocked on a lock held by a step it parked (one backing off a throttled call) would stall all."""

    def __init__(self, pause: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._groups: dict[tuple[int, str], tuple[Any, _Group]] = {}
        self._pause = pause

    def _group(self, ec2: Any, what: str) -> _Group:
        # By client: one client per region and process (aws_clients.py), the world's in the simulation.
        with self._lock:
            found = self._groups.get((id(ec2), what))
            if found is None or found[0] is not ec2:
                found = (ec2, _Group(describe=DESCRIBE[what]))
                self._groups[(id(ec2), what)] = found
            return found[1]

    @contextmanager
    def watch(self, ec2: Any, volume_id: str, *, now: float, what: str = VOLUMES) -> Iterator[Watch]:
        """While inside, `volume_id` is in every call made through `ec2` in this process: its
        volume (VOLUMES: the volume, or None) or its modifications (MODIFICATIONS: a list, or None
        for a volume never modified)."""
        group = self._group(ec2, what)
        with group.state:
            group.watched[volume_id] += 1
        try:
            yield Watch(group, ec2, volume_id, registered_at=now, pause=self._pause)
        finally:
            with group.state:
                group.watched[volume_id] -= 1
                if group.watched[volume_id] <= 0:
                    del group.watched[volume_id]
                    group.seen.pop(volume_id, None)


def _listed(ec2: Any, operation: str, key: str, volume_ids: list[str]) -> Iterator[dict[str, Any]]:
    """Every item `operation` lists under `key` for `volume_ids`: `volume-id` filters of up to 200
    values, each paged."""
    paginator = ec2.get_paginator(operation)
    for start in range(0, len(volume_ids), IDS_PER_CALL):
        chunk = volume_ids[start : start + IDS_PER_CALL]
        pages = paginator.paginate(
            Filters=[{"Name": "volume-id", "Values": chunk}], PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            yield from page.get(key, [])


def describe(ec2: Any, volume_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The volumes EC2 knows among `volume_ids`, by id."""
    return {str(v["VolumeId"]): dict(v) for v in _listed(ec2, "describe_volumes", "Volumes", volume_ids)}


def describe_modifications(ec2: Any, volume_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The modifications EC2 lists for each of `volume_ids` that has any, in the order listed."""
    found: dict[str, list[dict[str, Any]]] = {}
    for modification in _listed(ec2, "describe_volumes_modifications", "VolumesModifications", volume_ids):
        found.setdefault(str(modification["VolumeId"]), []).append(dict(modification))
    return found


DESCRIBE: dict[str, Callable[[Any, list[str]], dict[str, Any]]] = {
    VOLUMES: describe,
    MODIFICATIONS: describe_modifications,
}
