"""The Kubernetes model's rooms (gp3migrate/sim/kube/) import in one direction: the API server's
rooms (names, fields, crd_rules, validation, store) and the shared readers (objects) never import
a controller, and no controller imports another, so a rule is found in the room of its owner."""

import ast
from pathlib import Path

import gp3migrate.sim.kube as kube

ROOMS = Path(kube.__file__).parent
# room -> the rooms it may import
ALLOWED = {
    "names": set(),
    "fields": {"names"},
    "crd_rules": {"names", "fields"},
    "validation": {"names", "fields"},
    "objects": {"names", "fields"},
    "store": {"names", "fields", "crd_rules", "validation", "objects"},
    # The world as the controllers see it (a Protocol over the store).
    "cluster_state": {"store"},
    # The node plugin's mount rules: pure functions of a PV and its volume's facts.
    "node_stage": set(),
    **{
        controller: {"names", "fields", "objects", "cluster_state"}
        for controller in (
            "workloads",
            "scheduler",
            "persistent_volume",
            "snapshots",
            "provisioner",
            "gitops",
            "autoscalers",
            "helm",
        )
    },
}


def imported_rooms(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        if module.startswith("gp3migrate.sim.kube."):
            found.add(module.rsplit(".", 1)[1])
    return found


def test_every_room_is_listed_and_imports_only_what_it_may() -> None:
    rooms = {p.stem for p in ROOMS.glob("*.py") if p.stem != "__init__"}
    assert rooms == set(ALLOWED)
    wrong = {room: sorted(imported_rooms(ROOMS / f"{room}.py") - ALLOWED[room]) for room in sorted(rooms)}
    assert {room: extra for room, extra in wrong.items() if extra} == {}


def test_no_room_is_over_a_thousand_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in ROOMS.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 1000} == {}
