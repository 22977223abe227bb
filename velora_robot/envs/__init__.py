"""Gymnasium environments on MuJoCo: `velora_robot/SpotWalk-v0`, `velora_robot/G1Walk-v0`,
`velora_robot/Go2Walk-v0` and `velora_robot/JointTrack-v0`
(registered by `import velora_robot`; see `velora_robot.gym_ids`)."""

import gymnasium as gym

from velora_robot.envs.base import EnvConfig, RobotEnv, VecTask
from velora_robot.envs.g1_walk import G1WalkEnv, G1WalkTask
from velora_robot.envs.go2_walk import Go2WalkEnv, Go2WalkTask
from velora_robot.envs.joint_track import JointTrackEnv, JointTrackTask
from velora_robot.envs.spot_walk import SpotWalkEnv, SpotWalkTask
from velora_robot.gym_ids import register

ENV_IDS = {
    "velora_robot/SpotWalk-v0": SpotWalkEnv,
    "velora_robot/G1Walk-v0": G1WalkEnv,
    "velora_robot/Go2Walk-v0": Go2WalkEnv,
    "velora_robot/JointTrack-v0": JointTrackEnv,
}

register(gym.envs.registration)

__all__ = ["ENV_IDS", "EnvConfig", "G1WalkEnv", "G1WalkTask", "Go2WalkEnv", "Go2WalkTask",
           "JointTrackEnv", "JointTrackTask",
           "RobotEnv", "SpotWalkEnv", "SpotWalkTask", "VecTask"]
