"""What the rehearsal stack needs from the mocks beyond tests/mock_cloud.py: an answer to its
availability-zone lookup, an Elastic IP's allocation id (an output AWS assigns), and the providers
each registration names. A custom resource names one (`Registration.provider`); a component such
as pulumi-eks's Cluster gets a map, which the recording monitor does not keep
(RegisterResourceRequest.providers)."""

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.mock_cloud import FakeCloud, RecordingMonitor

ZONES_TOKEN = "aws:index/getAvailabilityZones:getAvailabilityZones"
# Deliberately not in name order: the program must pick the first two by name.
ZONES = ("{region}c", "{region}a", "{region}b")


@dataclass
class RehearsalMocks:
    # Registration name -> the providers map of its request ({} for most custom resources).
    providers: dict[str, dict[str, str]] = field(default_factory=dict)
    # (arguments, provider reference) of every zone lookup.
    zone_lookups: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    # (token, provider reference) of every invoke the program makes.
    invoke_providers: list[tuple[str, str]] = field(default_factory=list)


def install(monkeypatch: pytest.MonkeyPatch) -> RehearsalMocks:
    record = RehearsalMocks()
    real_call = FakeCloud.call
    real_new_resource = FakeCloud.new_resource
    real_register = RecordingMonitor.RegisterResource

    def call(self: FakeCloud, args: Any) -> Any:
        record.invoke_providers.append((args.token, args.provider))
        if args.token == ZONES_TOKEN:
            record.zone_lookups.append((dict(args.args), args.provider))
            names = [zone.format(region=self.region) for zone in ZONES]
            return {"id": self.region, "names": names, "zoneIds": [f"euw1-az{i}" for i in (3, 1, 2)]}
        return real_call(self, args)

    def new_resource(self: FakeCloud, args: Any) -> Any:
        resource_id, state = real_new_resource(self, args)
        if args.typ == "aws:ec2/eip:Eip":
            state["allocationId"] = f"eipalloc-{hashlib.sha256(args.name.encode()).hexdigest()[:17]}"
        return resource_id, state

    def register(self: RecordingMonitor, request: Any) -> Any:
        record.providers[request.name] = dict(request.providers)
        return real_register(self, request)

    monkeypatch.setattr(FakeCloud, "call", call)
    monkeypatch.setattr(FakeCloud, "new_resource", new_resource)
    monkeypatch.setattr(RecordingMonitor, "RegisterResource", register)
    return record
