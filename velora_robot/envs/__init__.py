"""Gymnasium environments on MuJoCo. Importing this package registers
`velora_robot/SpotWalk-v0`, `velora_robot/G1Walk-v0`, `velora_robot/HumanoidWalk-v0` and
`velora_robot/JointTrack-v0`
(gymnasium does not import packages by namespace: `import velora_robot.envs` first)."""

import gymnasium as gym

from velora_robot.envs.base import EnvConfig, RobotEnv, VecTask
from velora_robot.envs.g1_walk import G1WalkEnv, G1WalkTask
from velora_robot.envs.humanoid_walk import HumanoidWalkEnv, HumanoidWalkTask
from velora_robot.envs.joint_track import JointTrackEnv, JointTrackTask
from velora_robot.envs.spot_walk import SpotWalkEnv, SpotWalkTask

ENV_IDS = {
    "velora_robot/SpotWalk-v0": SpotWalkEnv,
    "velora_robot/G1Walk-v0": G1WalkEnv,
    "velora_robot/HumanoidWalk-v0": HumanoidWalkEnv,
    "velora_robot/JointTrack-v0": JointTrackEnv,
}

for _env_id, _cls in ENV_IDS.items():
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point=f"{_cls.__module__}:{_cls.__name__}")

__all__ = ["ENV_IDS", "EnvConfig", "G1WalkEnv", "G1WalkTask", "HumanoidWalkEnv",
           "HumanoidWalkTask", "JointTrackEnv", "JointTrackTask", "RobotEnv", "SpotWalkEnv",
           "SpotWalkTask", "VecTask"]
