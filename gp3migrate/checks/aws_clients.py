"""The one place the program and discovery make boto3 clients: every client with the same retry
configuration, and one client per (service, region) in a process, so that every gate running in the
dynamic provider's process (pulumi SDK `pulumi/dynamic/__main__.py` main(): one process, a gRPC
server with 4 worker threads) shares it and the volume poller (volume_poller.py) can batch their
polls on it. boto3's low-level clients are thread-safe; creating them from the shared default
session is not (boto3 guide "Multithreading or multiprocessing with clients"), hence the lock.

Retries: `standard`, 10 attempts in all (the first call and up to nine retries).
- EC2 throttles per account and region with token buckets (EC2 developer guide "Request throttling
  for the Amazon EC2 API": a non-mutating action such as DescribeVolumes 100 tokens refilled at 20
  a second; mutating ones smaller buckets refilled more slowly), answers `RequestLimitExceeded`, and
  asks callers to retry with exponential backoff. boto3's default (`legacy`) is tuned by per-service
  rules; `standard` retries the throttling and transient errors every AWS SDK retries alike
  (RequestLimitExceeded among them), backs off exponentially with jitter up to 20 s, and stops
  retrying when its retry quota is spent, so a throttled account is not hammered (boto3 guide
  "Retries", standard retry mode).
- Not `adaptive`: the AWS SDKs reference guide ("Retry behavior") calls it a mode for specialized
  use cases, not recommended where one client serves several tenants; here one client serves every
  gate of the process, and its client-side rate limiter would hold a gate that EC2 still accepts.
  The polls are batched instead (volume_poller.py), which is what keeps the call rate low.
- 10 attempts: with standard backoff (1, 2, 4, 8, 16, then 20 s capped, before jitter) that is about
  two minutes of retrying, well past the few seconds an empty DescribeVolumes bucket needs to refill
  and past a mutating bucket's, and short next to a gate's own wait (15 minutes for a detach).
"""

import threading
from typing import Any

# total_max_attempts counts the first call; botocore's `max_attempts` counts only the retries.
RETRIES = {"mode": "standard", "total_max_attempts": 10}

_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}


def config() -> Any:
    """The botocore Config every client gets."""
    from botocore.config import Config

    return Config(retries=dict(RETRIES))  # type: ignore[arg-type]


def client(service: str, region: str, *, session: Any = None) -> Any:
    """A client of `service` in `region`, made once per process (per session when one is given: the
    caller's credentials, e.g. discovery's)."""
    if session is not None:
        return session.client(service, region_name=region, config=config())
    import boto3

    with _lock:
        found = _clients.get((service, region))
        if found is None:
            found = boto3.client(service, region_name=region, config=config())  # type: ignore[call-overload]
            _clients[(service, region)] = found
        return found
