"""`driverInstall: present` in the simulation: the driver check (components/driver_check_provider.py) runs
before the first migration step and stops the `up` when the driver lacks its snapshotter sidecar.

The world's controller Deployment carries the chart's container names (gp3migrate/sim/world.py
install_ebs_csi_driver); an EKS add-on installed before the snapshot CRDs renders no
csi-snapshotter (chart templates/controller.yaml). Not shown here: the KMS half (the world has no
IAM policy simulator: tests/test_driver_check.py), and what a real add-on update re-renders.
"""

from gp3migrate.sim.scenario import Simulation
from tests.stacks import dev_config

CHECK = "platform-driver-check"
PREFIX = "migrate-default-ebs-gp2-claim"


def test_present_without_the_snapshotter_sidecar_stops_before_any_migration_step_and_resumes_once_fixed():
    config = dev_config()
    assert config["driverInstall"] == "present"
    with Simulation(config, seed=5, driver="addon") as sim:
        world = sim.world
        # GIVEN the add-on was installed before the snapshot CRDs: no csi-snapshotter.
        world.install_ebs_csi_driver(how="addon", version="v1.53.0", snapshotter_sidecar=False)
        entry = sim.config["migrations"][0]

        # WHEN the precopy `up` runs
        result = sim.up()

        # THEN it fails on the check, naming what is missing and how to fix it ...
        assert not result.ok
        message = str(result.error)
        assert "driverInstall: present: the running EBS CSI driver lacks what the migration needs" in message
        assert "Deployment kube-system/ebs-csi-controller runs no csi-snapshotter container" in message
        assert "sidecars.snapshotter.forceEnable=true" in message and "No migration step has run" in message
        # ... and no step of the migration ran: the source is untouched, no snapshot exists.
        migration_steps = [s for s in result.steps if s.name.startswith(PREFIX) and s.op != "same"]
        assert [s for s in migration_steps if not s.type.startswith("eks-gp3-migration:index:")] == []
        pv = world.kube.peek("PersistentVolume", "", entry["pv"])
        assert pv is not None and pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert world.ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"] == []

        # WHEN the add-on renders the sidecar again and the `up` is repeated
        world.install_ebs_csi_driver(how="addon", version="v1.53.0", snapshotter_sidecar=True)
        fixed = sim.up()

        # THEN the check passes once and the precopy goes ahead; the next `up` does not re-run it.
        assert fixed.ok, fixed.error
        assert [s.op for s in fixed.steps if s.name == CHECK] == ["create"]
        assert any(s.name == f"{PREFIX}-retain" and s.op == "create" for s in fixed.steps)
        again = sim.up()
        assert again.ok, again.error
        assert [s.op for s in again.steps if s.name == CHECK] == ["same"]
