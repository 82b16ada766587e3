"""A cluster-sized stack for rehearsals and the benchmark: N in-tree volumes held by whole workloads
of mixed shapes, split into groups (the waves a platform team would cut over: a small canary first).

Shapes, in turn: a StatefulSet of 3 replicas (one claim template: 3 claims), a Deployment with one
claim, a Deployment with two claims, a StatefulSet of 3 replicas with two claim templates (6
claims): 3 claims per workload on average, so 300 volumes are 100 workloads. Every fifth workload
that is a one-claim Deployment is migrated with the copy strategy (snapshots, a restored claim of
the same name), the rest rehome (the default). A workload's volumes share a zone (the scheduler
puts its pods where its volumes are); workloads go round three zones and ten namespaces.

Groups hold whole workloads (a workload's claims are cut over together: it is stopped once), in
stack-file order: the canary about 1/30 of the volumes (at least one workload), the second about
3/10, the third the rest (10 / 90 / 200 of 300).

`walk_configs` is the fleet's walk until the stack config has waves: group by group, phase by
phase, one `up` per (group, phase) that advances every entry of the group together; groups done
stay at their last phase, groups not started are not in the stack yet (nothing registered for
them, as before `discover --write` adds them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT = "eks-gp3-migration"
ZONES = ("eu-central-1a", "eu-central-1b", "eu-central-1c")
PHASES = ("precopy", "cutover", "finalize", "cleanup")
# Fractions of the volumes in the groups before the last (the canary, then the first big wave).
GROUP_SHARES = (1 / 30, 3 / 10)

PLATFORM: dict[str, Any] = {
    "clusterName": "fleet-eks",
    "region": "eu-central-1",
    "driverInstall": "present",
    "driverVersion": "v1.53.0-eksbuild.1",
    "driverIdentity": "irsa",
    "managedPolicy": "v1",
    "snapshotSupport": "manifests",
    "snapshotterVersion": "v8.6.0",
    "gp3Encrypted": True,
    "demoteGp2": True,
    "performance": "sustained",
    "extraVolumeTags": {"environment": "fleet", "team": "platform"},
}


@dataclass(frozen=True)
class Shape:
    kind: str
    replicas: int
    # Deployment: its claims' names; StatefulSet: its claim templates.
    claims: tuple[str, ...]

    def volumes(self) -> int:
        return len(self.claims) * (self.replicas if self.kind == "StatefulSet" else 1)


SHAPES = (
    Shape("StatefulSet", 3, ("data",)),
    Shape("Deployment", 1, ("data",)),
    Shape("Deployment", 1, ("data", "cache")),
    Shape("StatefulSet", 3, ("data", "wal")),
)


def _entry(number: int, namespace: str, claim: str, zone: str, workload: dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "claim": claim,
        "pv": f"pvc-{number:08x}-0000-4000-8000-000000000000",
        "volumeId": f"vol-{number:017x}",
        "zone": zone,
        "sizeGiB": 1 + (number * 7) % 50,
        "fsType": "ext4",
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "volumeType": "gp2",
        "iops": 100,
        "encrypted": False,
        "workload": workload,
        "phase": "precopy",
        "quiesce": "scale",
    }


def fleet_entries(volumes: int) -> list[list[dict[str, Any]]]:
    """The migrations entries of `volumes` volumes, one list per workload (whole workloads; the
    last shape is cut down to a one-claim Deployment where the count would overshoot)."""
    workloads: list[list[dict[str, Any]]] = []
    made = 0
    while made < volumes:
        index = len(workloads)
        shape = SHAPES[index % len(SHAPES)]
        if made + shape.volumes() > volumes:
            shape = SHAPES[1]
        namespace, zone = f"team-{index % 10}", ZONES[index % len(ZONES)]
        name = f"app-{index}"
        workload = {"kind": shape.kind, "name": name, "replicas": shape.replicas}
        if shape.kind == "StatefulSet":
            claims = [f"{t}-{name}-{o}" for t in shape.claims for o in range(shape.replicas)]
        else:
            claims = [f"{t}-{name}" for t in shape.claims]
        entries = [_entry(made + i, namespace, claim, zone, dict(workload)) for i, claim in enumerate(claims)]
        if shape == SHAPES[1] and index % 5 == 1:
            for entry in entries:
                entry.update(strategy="copy", claimNaming="same-name")
        workloads.append(entries)
        made += len(entries)
    return workloads


def fleet_config(volumes: int) -> tuple[dict[str, Any], list[list[str]]]:
    """(the stack's config, keys without the project prefix; the groups as lists of
    `namespace/claim`, in order)."""
    workloads = fleet_entries(volumes)
    groups: list[list[str]] = [[] for _ in range(len(GROUP_SHARES) + 1)]
    placed, group = 0, 0
    bounds = [max(1, round(volumes * sum(GROUP_SHARES[: i + 1]))) for i in range(len(GROUP_SHARES))]
    for entries in workloads:
        while group < len(bounds) and placed >= bounds[group] and groups[group]:
            group += 1
        groups[group] += [f"{e['namespace']}/{e['claim']}" for e in entries]
        placed += len(entries)
    config = {**copy.deepcopy(PLATFORM), "migrations": [e for entries in workloads for e in entries]}
    return config, [g for g in groups if g]


def waves_of(groups: list[list[str]]) -> list[dict[str, Any]]:
    """The groups as the stack's `waves` (gp3migrate/config/waves.py), the first the canary."""
    names = ["canary", *(f"wave-{number}" for number in range(2, len(groups) + 1))]
    return [{"name": name, "select": {"claims": list(keys)}} for name, keys in zip(names, groups, strict=True)]


def write_stack_file(volumes: int, folder: Path) -> str:
    """Pulumi.fleet-<volumes>.yaml in `folder`, its groups as `waves` (for `gp3migrate simulate
    --walk`, which walks them wave by wave); returns the stack name."""
    config, groups = fleet_config(volumes)
    config["waves"] = waves_of(groups)
    stack = f"fleet-{volumes}"
    data = {"config": {f"{PROJECT}:{k}": v for k, v in config.items()}}
    (folder / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return stack


def walk_configs(config: dict[str, Any], groups: list[list[str]]) -> list[tuple[str, dict[str, Any]]]:
    """(label, config) per `up`: each group through PHASES with all its entries together; groups
    done stay at cleanup, later groups are not in the stack yet. An entry whose strategy has fewer
    phases (modify: precopy only) stays at its last."""
    by_key = {f"{e['namespace']}/{e['claim']}": e for e in config.get("migrations") or []}
    ups = []
    for number, keys in enumerate(groups):
        done = [k for g in groups[:number] for k in g]
        for phase in PHASES:
            step = {k: v for k, v in copy.deepcopy(config).items() if k != "migrations"}
            entries = []
            for key in [*done, *keys]:
                entry = copy.deepcopy(by_key[key])
                path = ("precopy",) if entry.get("strategy") == "modify" else PHASES
                wanted = "cleanup" if key not in keys else phase
                entry["phase"] = wanted if wanted in path else path[-1]
                entries.append(entry)
            step["migrations"] = entries
            ups.append((f"group {number + 1} of {len(groups)} ({len(keys)} volumes): {phase}", step))
    return ups
