"""HumanoidWalk: the Gymnasium humanoid walks forward at a commanded speed without falling."""

from __future__ import annotations

from typing import Any, ClassVar

from velora_robot.envs.base import RobotEnv
from velora_robot.envs.locomotion import LocomotionTask, walking_interface


class HumanoidWalkTask(LocomotionTask):
    """One command (forward speed); staying up is rewarded."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "robot": "humanoid",
        # Its feet are spheres: it cannot stand still and balances by stepping, to a 1.5 Hz
        # clock (a step every third of a second).
        "interface": walking_interface(("vx",), gait_hz=1.5),
        "episode_s": 20.0,
        "command_ranges": {"vx": (0.3, 1.0)},
        "command_resample_s": 10.0,
        "min_base_height": 0.8,
        "min_upright": 0.5,
        # Its feet are spheres, so it cannot stand still: zero action falls in 1.2 s and it
        # must balance by stepping. While it tilts the orientation penalty outweighed the
        # alive bonus, so a first run learned to fall forward within 2 s: a step's reward is
        # clipped at zero (as Spot's).
        "only_positive_rewards": True,
        # Without the walkers' stepping rewards it froze in a stance at the action limits
        # and tipped over after 2 s, whatever the alive weight or exploration noise (4 runs,
        # 1-3M steps each).
        # The feet alternate on the clock: the right swings, then the left.
        "gait_offsets": [0.0, 0.5],
    }
    # Staying up dominates, as in Gymnasium's Humanoid (healthy 5 against 1.25 per m/s).
    # Its torso swings by up to 3 rad/s with each step, which hides a slow turn from the
    # yaw-rate term: without a heading term the first walker circled at 2 m radius.
    REWARDS: ClassVar[dict[str, float]] = {**LocomotionTask.REWARDS, "alive": 5.0,
                                           "heading": 1.0}


class HumanoidWalkEnv(RobotEnv):
    """`velora_robot/HumanoidWalk-v0`."""

    TASK = HumanoidWalkTask
