"""Heading hold: the runtime's outer loop that keeps a walking robot on the heading its
yaw-rate command asks for, from the IMU alone."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from velora_robot.envs import SpotWalkTask
from velora_robot.errors import ConfigError
from velora_robot.hal import MockHardware
from velora_robot.hal.base import HardwareState
from velora_robot.robots import get_spec
from velora_robot.robots.observation import gravity_in_base, obs_sizes, to_base_frame
from velora_robot.runtime.controller import Controller
from velora_robot.runtime.deploy import deploy
from velora_robot.runtime.heading import HeadingHold, world_yaw_rate

ROOT = Path(__file__).resolve().parents[1]
SPOT = get_spec("spot")
SPOT_WALK = SpotWalkTask.policy_interface()


def test_the_turn_rate_is_the_one_about_the_world_vertical_even_with_the_base_tilted():
    assert world_yaw_rate(np.array([0.3, -0.2, 0.1]), np.array([0.0, 0.0, -1.0])) == \
        pytest.approx(0.1)
    pitch, roll = 0.3, -0.2  # a base leaning forward and sideways, turning at 0.4 rad/s
    qy = np.array([np.cos(pitch / 2), 0.0, np.sin(pitch / 2), 0.0])
    qx = np.array([np.cos(roll / 2), np.sin(roll / 2), 0.0, 0.0])
    w1, v1, w2, v2 = qy[0], qy[1:], qx[0], qx[1:]
    quat = np.concatenate([[w1 * w2 - v1 @ v2], w1 * v2 + w2 * v1 + np.cross(v1, v2)])
    gyro = to_base_frame(quat, np.array([0.0, 0.0, 0.4]))
    assert abs(gyro[2] - 0.4) > 0.01  # the base-frame z rate alone would be wrong
    assert world_yaw_rate(gyro, gravity_in_base(quat)) == pytest.approx(0.4)


def test_a_robot_that_drifts_keeps_its_heading_within_bias_over_kp():
    """A robot that turns at its yaw command + 0.12 rad/s: without the hold it ends 20 s
    2.4 rad off; with kp 1/s it settles 0.12 rad off and walks straight."""
    dt, bias = 0.002, 0.12
    hold = HeadingHold(kp_per_s=1.0, max_rad_s=0.5, dt_s=dt)
    heading, yaw_rate = 0.0, 0.0
    for _ in range(int(20 / dt)):
        hold.update(0.0, np.array([0.0, 0.0, yaw_rate]), np.array([0.0, 0.0, -1.0]))
        yaw_rate = hold.command(np.zeros(3))[2] + bias
        heading += yaw_rate * dt
    assert heading == pytest.approx(bias / 1.0, abs=0.005)
    assert yaw_rate == pytest.approx(0.0, abs=0.005)
    # Asked to turn, it turns by the asked-for angle (no correction once on track).
    hold.reset()
    turned = 0.0
    for _ in range(int(5 / dt)):
        yaw_rate = hold.command(np.array([0.0, 0.0, 0.5]))[2] + bias
        hold.update(0.5, np.array([0.0, 0.0, yaw_rate]), np.array([0.0, 0.0, -1.0]))
        turned += yaw_rate * dt
    assert turned == pytest.approx(2.5 + bias, abs=0.01)


def test_the_correction_is_clipped_and_the_error_wraps_around_a_full_turn():
    hold = HeadingHold(kp_per_s=2.0, max_rad_s=0.3, dt_s=0.01)
    for _ in range(100):  # spun at 2 rad/s for 1 s: 2 rad the wrong way
        hold.update(0.0, np.array([0.0, 0.0, 2.0]), np.array([0.0, 0.0, -1.0]))
    assert hold.error_rad == pytest.approx(-2.0)
    assert hold.command(np.array([0.5, 0.0, 0.0]))[2] == pytest.approx(-0.3)
    for _ in range(250):  # 5 rad in all: the short way back is now the other way
        hold.update(0.0, np.array([0.0, 0.0, 2.0]), np.array([0.0, 0.0, -1.0]))
    assert hold.error_rad == pytest.approx(2 * np.pi - 7.0)
    with pytest.raises(ValueError, match="kp_per_s"):
        HeadingHold(kp_per_s=0.0, max_rad_s=0.3, dt_s=0.01)


class TurningMock(MockHardware):
    """A mock robot whose IMU says it turns left at 0.2 rad/s."""

    def _read(self) -> HardwareState:
        state = super()._read()
        state.gyro = np.array([0.0, 0.0, 0.2])
        return state


class Recording:
    def __init__(self):
        self.obs = []

    def __call__(self, obs):
        self.obs.append(obs)
        return np.zeros(12)


def test_the_policy_sees_the_corrected_yaw_command_and_the_user_command_stays():
    hw, policy = TurningMock(SPOT), Recording()
    controller = Controller(hw, policy, SPOT_WALK, np.array([0.5, 0.0, 0.0]),
                            heading_hold=HeadingHold(1.0, 0.5, SPOT.control_dt))
    hw.configure()
    hw.activate()
    controller.start()
    for _ in range(50):  # 1 s at 50 Hz: 0.2 rad to the left
        controller.cycle()
    sizes = obs_sizes(SPOT, SPOT_WALK)
    start = sum(list(sizes.values())[:list(sizes).index("command")])
    seen = policy.obs[-1][start:start + 3]
    assert seen[0] == pytest.approx(0.5) and seen[2] == pytest.approx(-0.2, abs=0.01)
    assert controller.command.tolist() == [0.5, 0.0, 0.0]
    assert policy.obs[0][start + 2] == pytest.approx(-0.2 * SPOT.control_dt)


def launch(tmp_path, **changes):
    data = {"name": "held", "robot": "spot", "policy": str(ROOT / "models/spot_walk.onnx"),
            "command": {"vx": 0.5}, "hardware": {"backend": "mock"},
            "loop": {"duration_s": 0.3}, "safety": {"ramp_s": 0.1},
            "estop": {"keys": False, "file": str(tmp_path / "estop"), "signal": None},
            "telemetry": {"path": None}, "status": False, **changes}
    path = tmp_path / "held.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_launch_file_turns_the_hold_on_and_reports_the_heading_error(tmp_path, capsys):
    summary = deploy(launch(tmp_path, heading_hold={"kp_per_s": 0.8}))
    assert summary["final_mode"] == "policy" and summary["heading_error_rad"] == 0.0
    out = capsys.readouterr().out
    assert "heading hold: yaw rate += 0.8/s x heading error, at most 0.5 rad/s" in out
    assert "heading held: +0.000 rad from the commanded heading" in out
    assert "heading_error_rad" not in deploy(launch(tmp_path))


def test_a_bad_heading_hold_names_the_file_and_field(tmp_path):
    with pytest.raises(ConfigError, match=r"held.yaml: field 'heading_hold.kp_per_s'"):
        deploy(launch(tmp_path, heading_hold={"kp_per_s": -1}))
    with pytest.raises(ConfigError, match=r"held.yaml: field 'heading_hold.max_rad'"):
        deploy(launch(tmp_path, heading_hold={"max_rad": 1}))
