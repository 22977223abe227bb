"""SpotWalk: Boston Dynamics Spot tracks a commanded forward, lateral and yaw velocity on
flat ground; the command is redrawn every 4 s."""

from __future__ import annotations

from typing import Any, ClassVar

from velora_robot.envs.base import RobotEnv
from velora_robot.envs.locomotion import LocomotionTask, walking_interface
from velora_robot.robots.interface import VELOCITY_COMMANDS


class SpotWalkTask(LocomotionTask):
    """The task over a batch of Spots."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "robot": "spot",
        # Spot trots to a 2 Hz clock.
        "interface": walking_interface(VELOCITY_COMMANDS, gait_hz=2.0),
        "episode_s": 20.0,
        "command_ranges": {"vx": (-1.0, 1.0), "vy": (-0.5, 0.5), "yaw_rate": (-1.0, 1.0)},
        "command_resample_s": 4.0,
        "min_base_height": 0.2,
        "min_upright": 0.85,
        "only_positive_rewards": True,
        # Spot's servos (kp 500) need tens of N*m just to stand: torques cost half the
        # walkers' weight. Its yaw-rate command is tracked at twice the walkers' weight.
        "reward_weights": {"tracking_ang_vel": 1.0, "torques": -1e-5},
        # A trot on the 2 Hz clock: FL and HR swing together, then FR and HL.
        "gait_offsets": [0.0, 0.5, 0.5, 0.0],
    }


class SpotWalkEnv(RobotEnv):
    """`velora_robot/SpotWalk-v0`."""

    TASK = SpotWalkTask
