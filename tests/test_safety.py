"""Every safety transition: ramp without a jump, limits on every command, and each fault
reaching damping within one cycle."""

import numpy as np
import pytest

from velora_robot.hal import MockHardware
from velora_robot.hal.base import HardwareState
from velora_robot.robots import get_spec
from velora_robot.runtime.safety import Fault, Mode, Safety, SafetyConfig

SPOT = get_spec("spot")


def state(q=None, dq=None, gyro=None, gravity=(0.0, 0.0, -1.0)):
    n = SPOT.n_joints
    return HardwareState(q=np.array([j.default_pos for j in SPOT.joints]) if q is None
                         else np.asarray(q, float), dq=np.zeros(n) if dq is None else dq,
                         tau=np.zeros(n), gyro=np.zeros(3) if gyro is None else gyro,
                         gravity=np.asarray(gravity, float), time_s=0.0)


def running(**config):
    safety = Safety(SPOT, SafetyConfig(ramp_s=0.2, **config))
    safety.start(state())
    for _ in range(10):
        safety.command(state())
    assert safety.mode is Mode.POLICY
    return safety


def test_ramp_starts_at_the_measured_pose_and_reaches_the_default_without_a_jump():
    lying = np.array([j.pos_limit[0] for j in SPOT.joints]) + 0.05
    safety = Safety(SPOT, SafetyConfig(ramp_s=1.0))
    safety.start(state(q=lying))
    targets = [safety.command(state(q=lying)).q for _ in range(50)]
    assert safety.mode is Mode.POLICY
    np.testing.assert_allclose(targets[0], lying, atol=0.01)  # no jump at the start
    np.testing.assert_allclose(targets[-1], safety.q0)
    steps = np.abs(np.diff(np.array(targets), axis=0)).max()
    assert steps < 0.1  # smooth: the largest per-cycle move


def test_policy_targets_are_held_within_position_velocity_and_torque_limits():
    safety = running()
    far = np.full(12, 10.0)
    cmd = safety.command(state(), far)
    assert np.all(cmd.q <= safety.limits.q_high)
    assert np.all(np.abs(cmd.q - safety.q0) <= safety.limits.max_step + 1e-12)
    tau = safety.kp * (cmd.q - state().q)
    assert np.all(np.abs(tau) <= safety.limits.torque_limit + 1e-9)


@pytest.mark.parametrize("make_fault,fault", [
    (lambda s: s.check(state(q=np.full(12, np.nan))), Fault.BAD_READING),
    (lambda s: s.check(state(gyro=np.array([np.inf, 0, 0]))), Fault.BAD_READING),
    (lambda s: s.command(state(), np.full(12, np.nan)), Fault.BAD_ACTION),
    (lambda s: s.check(state(gravity=(0.0, -0.9, -0.3))), Fault.FALL),
    (lambda s: [s.deadline(True) for _ in range(5)], Fault.MISSED_DEADLINES),
    (lambda s: s.trip(Fault.ESTOP), Fault.ESTOP),
    (lambda s: s.trip(Fault.SIGNAL, "SIGINT"), Fault.SIGNAL),
])
def test_each_fault_reaches_damping_within_one_cycle(make_fault, fault):
    safety = running()
    make_fault(safety)
    cmd = safety.command(state(), np.zeros(12) + safety.q0)
    assert safety.mode is Mode.DAMPING and safety.fault is fault
    assert np.all(cmd.kp == 0) and np.all(cmd.kd > 0)


def test_damping_latches_until_a_new_start():
    safety = running()
    safety.trip(Fault.ESTOP)
    for _ in range(3):
        assert np.all(safety.command(state(), safety.q0).kp == 0)
    safety.start(state())
    assert safety.mode is Mode.RAMP and safety.fault is None


def test_missed_deadlines_must_be_consecutive():
    safety = running()
    for missed in [True] * 4 + [False] + [True] * 4:
        safety.deadline(missed)
    assert safety.mode is Mode.POLICY


def test_damping_on_mock_hardware_holds_the_joints_where_they_are():
    hw = MockHardware(SPOT)
    hw.configure()
    hw.activate()
    safety = running()
    safety.trip(Fault.HARDWARE)
    before = hw.read().q
    hw.write(safety.command(hw.read(), safety.q0 + 0.3))
    np.testing.assert_allclose(hw.read().q, before)
