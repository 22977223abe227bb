"""SpotWalk: Boston Dynamics Spot tracks a commanded forward, lateral and yaw velocity on
flat ground; the command is redrawn every 4 s."""

from __future__ import annotations

from typing import Any, ClassVar

from velora_robot.envs.base import RobotEnv
from velora_robot.envs.locomotion import LocomotionTask


class SpotWalkTask(LocomotionTask):
    """The task over a batch of Spots."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "robot": "spot",
        "episode_s": 20.0,
        "command_ranges": {"vx": (-1.0, 1.0), "vy": (-0.5, 0.5), "yaw_rate": (-1.0, 1.0)},
        "command_resample_s": 4.0,
        "min_base_height": 0.2,
        "min_upright": 0.85,
        "only_positive_rewards": True,
        # Spot's servos (kp 500) need tens of N*m just to stand: the generic torque and
        # energy weights would outweigh tracking, so they are scaled to its size. Tracking
        # weighs more, swings and the trot's contact schedule are rewarded, and the pose
        # term keeps it from a static stance at the action limits: without these PPO
        # settled on standing still in our first runs.
        "reward_weights": {"tracking_lin_vel": 2.0, "tracking_ang_vel": 1.0, "torques": -1e-5,
                           "energy": -1e-4, "feet_air_time": 1.0, "pose": -0.5, "gait": 1.0},
        # A trot on the spec's 2 Hz clock: FL and HR swing together, then FR and HL.
        "gait_offsets": [0.0, 0.5, 0.5, 0.0],
    }


class SpotWalkEnv(RobotEnv):
    """`velora_robot/SpotWalk-v0`."""

    TASK = SpotWalkTask
