"""What the simulation changes in the Pulumi SDK while it runs the program (gp3migrate/sim/program.py),
and that nothing of it outlives the run: the SDK's stack walk for source positions is skipped (the
engine model reads none), and transforms are registered with a callbacks servicer that starts no
gRPC server (the engine model calls none back; no aio server survives a fork).

What this does not prove: what the real engine does with a source position or a transform's
callback (pulumi-kubernetes runs `retain_children` on each ConfigGroup child; live tests only).
"""

from typing import Any

from pulumi.runtime import resource as sdk_resource
from pulumi.runtime._callbacks import _CallbackServicer

from gp3migrate.sim import program
from gp3migrate.sim.scenario import Simulation
from tests.stacks import dev_config


def test_a_run_sends_no_source_position_starts_no_callbacks_server_and_restores_the_sdk(monkeypatch: Any) -> None:
    sdk_stack_trace = sdk_resource._get_stack_trace
    servers_before = list(_CallbackServicer._servicers)
    seen: list[tuple[str, bool, list[str], bool]] = []
    register = program.SimMonitor.RegisterResource

    def recording(self: program.SimMonitor, request: Any) -> Any:
        seen.append(
            (
                request.name,
                request.HasField("sourcePosition"),
                [callback.target for callback in request.transforms],
                sdk_resource._get_stack_trace is program._no_stack_trace,
            )
        )
        return register(self, request)

    monkeypatch.setattr(program.SimMonitor, "RegisterResource", recording)
    config = dev_config()
    assert config["snapshotSupport"] == "manifests"  # the ConfigGroups with transforms
    with Simulation(config, seed=1) as sim:
        preview = sim.preview()

    assert preview.ok, preview.error
    assert seen and all(not has_position and stubbed for _, has_position, _, stubbed in seen)
    with_transforms = sorted(name for name, _, targets, _ in seen if targets)
    assert with_transforms == ["platform-snapshots-controller", "platform-snapshots-crds"]
    assert {t for _, _, targets, _ in seen for t in targets} == {"127.0.0.1:0"}
    assert _CallbackServicer._servicers == servers_before
    assert sdk_resource._get_stack_trace is sdk_stack_trace
