"""The HAL lifecycle and backends, and the proof that observation building and action
mapping are shared: a policy drives the same trajectory in the training env and through
the runtime controller on the simulated hardware."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import velora_robot.envs  # noqa: F401
from velora_robot.envs import SpotWalkTask
from velora_robot.hal import HardwareError, JointCommand, Lifecycle, MockHardware, MujocoHardware
from velora_robot.robots import get_spec

from .helpers import env_and_runtime_joint_trajectories

SPOT = get_spec("spot")
SPOT_WALK = SpotWalkTask.policy_interface()


def test_lifecycle_moves_through_its_states_and_refuses_wrong_calls():
    hw = MockHardware(SPOT)
    with pytest.raises(HardwareError, match="cannot read while unconfigured"):
        hw.read()
    hw.configure()
    assert hw.lifecycle is Lifecycle.INACTIVE and hw.read().q.shape == (12,)
    with pytest.raises(HardwareError, match="cannot write while inactive"):
        hw.write(JointCommand.hold(SPOT, np.zeros(12)))
    hw.activate()
    hw.write(JointCommand.hold(SPOT, np.zeros(12)))
    with pytest.raises(HardwareError, match="cannot go unconfigured -> inactive while active"):
        hw.configure()
    hw.deactivate()
    hw.shutdown()
    assert hw.lifecycle is Lifecycle.FINALIZED


def test_a_backend_failure_puts_the_hardware_in_the_error_state():
    class Broken(MockHardware):
        def _read(self):
            raise OSError("bus unplugged")

    hw = Broken(SPOT)
    hw.configure()
    with pytest.raises(HardwareError, match="read failed: bus unplugged"):
        hw.read()
    assert hw.lifecycle is Lifecycle.ERROR


def test_interfaces_are_named_by_joint_and_kind():
    hw = MockHardware(SPOT)
    assert hw.state_interfaces()[:3] == ["fl_hip/position", "fl_hip/velocity", "fl_hip/effort"]
    assert "imu/gyro_z" in hw.state_interfaces()
    assert hw.command_interfaces()[:5] == ["fl_hip/position", "fl_hip/velocity",
                                           "fl_hip/effort", "fl_hip/kp", "fl_hip/kd"]


def test_mock_hardware_mirrors_commands_and_holds_in_damping():
    hw = MockHardware(SPOT)
    hw.configure()
    hw.activate()
    target = np.linspace(-0.5, 0.5, 12)
    hw.write(JointCommand.hold(SPOT, target))
    np.testing.assert_allclose(hw.read().q, target)
    damping = JointCommand.hold(SPOT, np.zeros(12))
    damping.kp[:] = 0.0
    hw.write(damping)
    np.testing.assert_allclose(hw.read().q, target)


@pytest.mark.parametrize("env_id,robot", [("velora_robot/SpotWalk-v0", "spot"),
                                          ("velora_robot/G1Walk-v0", "g1")])
def test_the_same_policy_gives_the_same_joint_trajectories_in_env_and_runtime(env_id, robot):
    weights = np.random.default_rng(0).normal(0, 0.3, (12, 47))

    def policy(obs):  # any deterministic function of the observation will do
        return np.tanh(weights @ obs)

    env_q, runtime_q = env_and_runtime_joint_trajectories(env_id, robot, policy)
    np.testing.assert_allclose(runtime_q, env_q, atol=1e-4, rtol=0)
    assert len(env_q) > 25


def test_the_hal_and_runtime_import_neither_torch_nor_gymnasium_nor_mujoco_eagerly():
    code = ("import sys, velora_robot.hal, velora_robot.runtime, velora_robot.runtime.deploy\n"
            "import velora_robot.hil.firmware, velora_robot.hil.dds\n"
            "import velora_robot.bridge.dynamixel_bus\n"
            "bad = [m for m in ('torch', 'gymnasium', 'wandb', 'mujoco') if m in sys.modules]\n"
            "assert not bad, bad\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_the_wire_formats_import_nothing_from_the_layers_that_use_them():
    bridge = Path(__file__).resolve().parents[1] / "velora_robot/bridge"
    modules = sorted(p.stem for p in bridge.glob("*.py"))
    code = ("import sys, importlib\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module('velora_robot.bridge.' + name)\n"
            "bad = [m for m in sys.modules if m.startswith(('velora_robot.hal',\n"
            "       'velora_robot.runtime', 'velora_robot.hil'))]\n"
            "assert not bad, bad\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_simulated_hardware_steps_whole_physics_periods_only():
    from velora_robot.hal import HardwareError

    with pytest.raises(HardwareError, match="whole number of physics steps"):
        MujocoHardware(SPOT, period_s=0.002)  # physics runs at 250 Hz: 4 ms steps
    hw = MujocoHardware(SPOT, period_s=0.008)
    hw.configure()
    hw.activate()
    hw.write(JointCommand.hold(SPOT, np.array([j.default_pos for j in SPOT.joints])))
    assert hw.read().time_s == pytest.approx(0.008)


def test_the_simulated_robot_of_a_launch_file_takes_the_physics_the_policy_trained_with():
    from velora_robot.hal.factory import SimSection, simulated

    hw = simulated(SPOT, SimSection.model_validate({"physics": {"cone": "pyramidal",
                                                                "foot_condim": 3}}), 0.02)
    hw.configure()
    assert hw.sim.model.opt.cone == 0 and set(hw.sim.model.geom_condim[hw.sim.index.feet]) == {3}
    hw.shutdown()
