"""HumanoidWalk: the Gymnasium humanoid walks forward at a commanded speed without falling."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from velora_robot.envs.base import RobotEnv
from velora_robot.envs.locomotion import LocomotionTask
from velora_robot.simulation.robot import Measurement


class HumanoidWalkTask(LocomotionTask):
    """One command (forward speed); staying up is rewarded."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "robot": "humanoid",
        "episode_s": 20.0,
        "command_ranges": {"vx": (0.3, 1.0)},
        "command_resample_s": 10.0,
        "min_base_height": 0.8,
        "min_upright": 0.5,
        # Its servos do not hold it up (zero action falls in 1.2 s), and while it tilts the
        # orientation penalty outweighed the alive bonus, so a first run learned to fall
        # forward within 2 s: a step's reward is clipped at zero (as Spot's), and staying up
        # weighs as much as tracking.
        "only_positive_rewards": True,
    }
    REWARDS: ClassVar[dict[str, float]] = {**LocomotionTask.REWARDS, "alive": 2.0,
                                           "torques": -1e-4, "energy": -5e-4}

    def _reward_terms(self, m: Measurement, action: np.ndarray) -> dict[str, np.ndarray]:
        return {**super()._reward_terms(m, action), "alive": np.ones(self.n)}


class HumanoidWalkEnv(RobotEnv):
    """`velora_robot/HumanoidWalk-v0`."""

    TASK = HumanoidWalkTask
