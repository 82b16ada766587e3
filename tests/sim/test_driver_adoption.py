"""Adopting the running EBS CSI driver (`driverAdopt: true`) under the import semantics of the
pinned engine, and the engine rules behind it (gp3migrate/sim/engine.py).

Since pulumi 3.174 (pulumi/pulumi 19339) a resource with `import` is read and then carried on from
what was read: a declared input that differs is an update in the same `up` (step.go
ImportStep.Apply, step_generator.go continueStepsFromImport), `ignoreChanges` paths take the read
values first (processIgnoreChanges), and a replacement of a resource that still names its `import`
id fails the `up` (continueStepsFromDiff). Adoption must therefore change nothing of the running
driver by itself; the move to the pinned version and values is the later `up` with
`driverAdopt: false`, an update a preview shows (components/ebs_csi_driver.py).
"""

import contextlib
import copy
import json
from typing import Any, Literal

import pytest

from gp3migrate.sim.engine import Checkpoint, Deployment, Diff, Resource, StepFailed
from gp3migrate.sim.program import Registration
from gp3migrate.sim.scenario import Simulation
from tests.stacks import dev_config

# What the cluster runs before the stack adopts it: another version than the one the stack pins,
# installed with the user's own values / settings.
RUNNING = {
    "helm": ("2.53.0", {"controller": {"replicaCount": 3}}),
    "addon": ("v1.53.0-eksbuild.1", {"configurationValues": '{"controller":{"replicaCount":3}}'}),
}
PINNED = {"helm": {"driverChartVersion": "2.64.0"}, "addon": {"driverAddonVersion": "v1.56.0-eksbuild.1"}}
INSTALL = {"helm": "platform-driver-release", "addon": "platform-driver-addon"}
How = Literal["helm", "addon"]


def adopting(how: str) -> dict[str, Any]:
    config = {**dev_config(), "driverInstall": how, "driverAdopt": True, **PINNED[how]}
    config.pop("driverVersion", None)
    return config


def running_driver(sim: Simulation) -> dict[str, Any]:
    return copy.deepcopy(sim.world.installed["driver"])


def seed_running(sim: Simulation, how: How) -> dict[str, Any]:
    version, values = RUNNING[how]
    sim.world.install_ebs_csi_driver(how=how, version=version)
    sim.world.installed["driver"]["values"] = copy.deepcopy(values)
    return running_driver(sim)


@pytest.mark.parametrize("how", ["helm", "addon"])
def test_adopting_a_driver_whose_version_differs_from_the_pinned_one_leaves_it_running_as_it_is(how: How) -> None:
    """Issue 21 item 5, the scenario the old simulation hid: it failed the import on the mismatch,
    so nothing changed; the pinned engine imports and then updates to the declared inputs."""
    with Simulation(adopting(how), seed=61, driver=how) as sim:
        before = seed_running(sim, how)
        result = sim.up()
        # The import went through (a failed import would change nothing too, and hide the defect).
        assert result.ok, result.error
        assert next(s.op for s in result.steps if s.name == INSTALL[how]) == "import"
        assert running_driver(sim) == before


@pytest.mark.parametrize("how", ["helm", "addon"])
def test_adopt_then_move_to_the_pinned_version_in_a_later_visible_up(how: How) -> None:
    with Simulation(adopting(how), seed=62, driver=how) as sim:
        before = seed_running(sim, how)

        # The adopting `up`: its preview shows the import, and nothing of the driver changes.
        preview = sim.preview()
        assert preview.ok, preview.error
        assert next(s.op for s in preview.steps if s.name == INSTALL[how]) == "import"
        adopted = sim.up()
        assert adopted.ok, adopted.error
        ops = [s.op for s in adopted.steps if s.name == INSTALL[how]]
        assert ops[0] == "import" and "replace" not in ops
        assert running_driver(sim) == before
        # The driver runs with its own settings: checked, as a kept one is, before any migration step.
        assert [s.op for s in adopted.steps if s.name == "platform-driver-check"] == ["create"]
        first_check = next(i for i, s in enumerate(adopted.steps) if s.name == "platform-driver-check")
        first_migration = next(
            i
            for i, s in enumerate(adopted.steps)
            if s.name.startswith("migrate-") and s.op == "create" and "index:" not in s.type
        )
        assert first_check < first_migration
        # A later `up` while still adopting changes nothing either.
        again = sim.up()
        assert again.ok, again.error
        assert [s.op for s in again.steps if s.name == INSTALL[how]] == ["same"]
        assert running_driver(sim) == before

        # The move: driverAdopt false, an update the preview shows before it happens.
        moving = {**sim.config, "driverAdopt": False}
        shown = sim.preview(moving)
        assert shown.ok, shown.error
        update = [s for s in shown.steps if s.name == INSTALL[how]]
        assert [s.op for s in update] == ["update"]
        version_key = "version" if how == "helm" else "addonVersion"
        assert version_key in update[0].detail.split(", "), update[0].detail
        assert running_driver(sim) == before
        moved = sim.up(moving)
        assert moved.ok, moved.error
        assert [s.op for s in moved.steps if s.name == INSTALL[how]] == ["update"]
        pinned = next(iter(PINNED[how].values()))
        assert sim.world.installed["driver"]["version"] == pinned
        # What runs now is what the stack declares: its role and the snapshotter sidecar forced on.
        values = sim.world.installed["driver"]["values"]
        role = "arn:aws:iam::123456789012:role/dev-eks-ebs-csi-driver"
        if how == "helm":
            assert values["controller"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == role
            assert values["sidecars"]["snapshotter"]["forceEnable"] is True
        else:
            assert values["serviceAccountRoleArn"] == role
            assert json.loads(values["configurationValues"])["sidecars"]["snapshotter"]["forceEnable"] is True
        assert "replicaCount" not in json.dumps(values), "the adopted hand-set value is replaced, not merged"


# -- the engine rules, on a provider that records what it is asked -------------------------------


class Recorder:
    """A provider whose Read returns `live` as inputs and outputs; `force_new` keys replace."""

    def __init__(self, live: dict[str, Any], force_new: tuple[str, ...] = ()):
        self.live, self.force_new = live, force_new
        self.updates: list[dict[str, Any]] = []

    def diff(self, old: Resource, news: dict[str, Any], ignore_changes: list[str]) -> Diff:
        changed = tuple(sorted(k for k in set(old.inputs) | set(news) if old.inputs.get(k) != news.get(k)))
        return Diff(changes=bool(changed), replaces=tuple(k for k in changed if k in self.force_new), changed=changed)

    def create(self, new: Resource, *, preview: bool) -> tuple[str, dict[str, Any]]:
        return "created", dict(new.inputs)

    def imported_inputs(self, new: Resource, outputs: dict[str, Any]) -> dict[str, Any]:
        return dict(outputs)

    def import_(self, new: Resource) -> tuple[str, dict[str, Any]]:
        return new.import_id, dict(self.live)

    def update(self, old: Resource, new: Resource) -> dict[str, Any]:
        self.updates.append(dict(new.inputs))
        self.live = dict(new.inputs)
        return dict(new.inputs)

    def delete(self, old: Resource) -> None: ...

    def read(self, old: Resource) -> dict[str, Any] | None:
        return dict(self.live)


def registration(inputs: dict[str, Any], **options: Any) -> Registration:
    return Registration(
        urn="urn:pulumi:dev::p::t$x:index:T::r",
        type="x:index:T",
        name="r",
        custom=True,
        parent="",
        provider="",
        inputs=inputs,
        dependencies=[],
        property_dependencies={},
        **{
            "protect": False,
            "retain_on_delete": False,
            "delete_before_replace": None,
            "replace_on_changes": [],
            "ignore_changes": [],
            "custom_timeouts": {},
            "import_id": "r-1",
            **options,
        },
    )


def deploy(provider: Recorder, reg: Registration, *, dry_run: bool = False, old: Checkpoint | None = None):
    deployment = Deployment(old or Checkpoint(), lambda type_: provider, dry_run=dry_run)
    with contextlib.suppress(StepFailed):
        deployment.register(reg)
    return deployment, deployment.finish()


def test_an_import_that_differs_is_updated_to_the_declared_inputs_in_the_same_up() -> None:
    provider = Recorder({"version": "1", "size": "s"})
    deployment, saved = deploy(provider, registration({"version": "2", "size": "s"}))
    assert deployment.error is None
    assert [(s.op, s.detail) for s in deployment.steps] == [("import", ""), ("update", "version")]
    assert provider.updates == [{"version": "2", "size": "s"}]
    assert saved.resources[0].inputs == {"version": "2", "size": "s"}


def test_an_import_that_matches_is_saved_as_read_with_no_further_step() -> None:
    provider = Recorder({"version": "1", "extra": "read"})
    deployment, saved = deploy(provider, registration({"version": "1", "extra": "read"}))
    assert [s.op for s in deployment.steps] == ["import"]
    assert saved.resources[0].inputs == {"version": "1", "extra": "read"} and provider.updates == []


def test_ignore_changes_keeps_the_read_values_of_an_import() -> None:
    provider = Recorder({"version": "1", "values": {"a": 1}, "repo": None})
    reg = registration({"version": "2", "values": {"a": 2}, "repo": "url"}, ignore_changes=["version", "values"])
    deployment, _saved = deploy(provider, reg)
    assert [(s.op, s.detail) for s in deployment.steps] == [("import", ""), ("update", "repo")]
    assert provider.updates == [{"version": "1", "values": {"a": 1}, "repo": "url"}]
    # ... and only those: all ignored, nothing is updated.
    quiet = Recorder({"version": "1"})
    deployment, _ = deploy(quiet, registration({"version": "2"}, ignore_changes=["version"]))
    assert [s.op for s in deployment.steps] == ["import"] and quiet.updates == []


def test_replacing_a_resource_that_still_names_its_import_id_fails_the_up_and_warns_in_preview() -> None:
    provider = Recorder({"name": "a"}, force_new=("name",))
    deployment, saved = deploy(provider, registration({"name": "b"}))
    assert "previously-imported resources that still specify an ID may not be replaced" in str(deployment.error)
    # The import step completed and is saved as read; nothing was replaced.
    assert [s.op for s in deployment.steps] == ["import"] and saved.resources[0].inputs == {"name": "a"}
    preview, _ = deploy(Recorder({"name": "a"}, force_new=("name",)), registration({"name": "b"}), dry_run=True)
    assert preview.error is None
    assert [s.op for s in preview.steps] == ["import", "replace", "delete"] and "warning" in preview.steps[1].detail
    # In a later `up` too, while the program still names the id.
    later, _ = deploy(provider, registration({"name": "b"}), old=saved)
    assert "may not be replaced" in str(later.error)
    released, _ = deploy(provider, registration({"name": "b"}, import_id=""), old=saved)
    assert released.error is None and next(s.op for s in released.steps) == "replace"
