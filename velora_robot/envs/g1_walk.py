"""G1Walk: the Unitree G1 tracks a commanded forward, lateral and yaw velocity on flat
ground with its 12 leg joints (waist and arms held); the command is redrawn every 4 s."""

from __future__ import annotations

from typing import Any, ClassVar

from velora_robot.envs.base import RobotEnv
from velora_robot.envs.locomotion import LocomotionTask, walking_interface
from velora_robot.robots.interface import VELOCITY_COMMANDS


class G1WalkTask(LocomotionTask):
    """The task over a batch of G1s (in the spirit of unitree_rl_gym's G1 and MuJoCo
    Playground's G1 joystick)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "robot": "g1",
        # unitree_rl_gym's 47-value observation: the same terms and a 0.8 s gait period.
        "interface": walking_interface(VELOCITY_COMMANDS, gait_hz=1.25),
        "episode_s": 20.0,
        "command_ranges": {"vx": (-0.5, 1.0), "vy": (-0.5, 0.5), "yaw_rate": (-1.0, 1.0)},
        "command_resample_s": 4.0,
        # Standing height 0.78 m: below 0.5 m or tilted past 53 degrees it has fallen
        # (unitree_rl_gym ends an episode at a pitch of 1 rad or a roll of 0.8 rad).
        "min_base_height": 0.5,
        "min_upright": 0.6,
        "only_positive_rewards": True,
        # A biped is never statically safe: staying up is paid (unitree_rl_gym's `alive`),
        # but not crouching (its `base_height`, -10), and turning is tracked at Spot's weight.
        # Heading paid (as the retired Gymnasium humanoid was): with the yaw-rate term alone
        # the 25M-step G1 walked a curve (0.8 rad/s of yaw when asked for none).
        "reward_weights": {"alive": 0.25, "tracking_ang_vel": 1.0, "base_height": -10.0,
                           "feet_phase": 5.0, "gait": 2.0, "feet_air_time": 0.0,
                           "heading": 1.0},
        # Feet lifted 10 cm at mid-swing on the clock: without a height profile to follow,
        # PPO settled on standing still, which pays `alive` and half of `gait`.
        "swing_height_m": 0.1,
        # The feet alternate on the 0.8 s clock: the left swings, then the right.
        "gait_offsets": [0.0, 0.5],
    }


class G1WalkEnv(RobotEnv):
    """`velora_robot/G1Walk-v0`."""

    TASK = G1WalkTask
