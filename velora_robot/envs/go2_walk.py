"""Go2Walk: the Unitree Go2 tracks a commanded forward, lateral and yaw velocity on flat
ground; the command is redrawn every 4 s (Spot's task on Unitree's small quadruped)."""

from __future__ import annotations

from typing import Any, ClassVar

from velora_robot.envs.base import RobotEnv
from velora_robot.envs.locomotion import LocomotionTask, walking_interface
from velora_robot.robots.interface import VELOCITY_COMMANDS


class Go2WalkTask(LocomotionTask):
    """The task over a batch of Go2s."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "robot": "go2",
        "interface": walking_interface(VELOCITY_COMMANDS, gait_hz=2.0),
        "episode_s": 20.0,
        "command_ranges": {"vx": (-1.0, 1.0), "vy": (-0.5, 0.5), "yaw_rate": (-1.0, 1.0)},
        "command_resample_s": 4.0,
        "min_base_height": 0.12,  # its base stands at about 0.27 m under kp 20
        "min_upright": 0.85,
        "only_positive_rewards": True,
        "reward_weights": {"tracking_ang_vel": 1.0},
        # A trot on the 2 Hz clock: FL and RR swing together, then FR and RL (feet in the
        # source's order FL, FR, RL, RR).
        "gait_offsets": [0.0, 0.5, 0.5, 0.0],
        # Spot's measured fast contacts (pyramidal cone, point feet, PGS, no joint friction)
        "physics": {"cone": "pyramidal", "foot_condim": 3, "solver": "PGS", "iterations": 10,
                    "frictionloss": False},
    }


class Go2WalkEnv(RobotEnv):
    """`velora_robot/Go2Walk-v0`."""

    TASK = Go2WalkTask
