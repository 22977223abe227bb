"""Robots as data (one folder each: `<name>/robot.yaml`), the policy interface a task gives
its policy (observation terms, commands, gait clock), the shared observation builder and
action mapping, and where each robot's MJCF lives. numpy and pydantic only."""

from velora_robot.robots.interface import ObsTerm, PolicyInterface
from velora_robot.robots.observation import RobotIO, RobotState, gravity_in_base, obs_sizes
from velora_robot.robots.sources import ROBOTS, get_spec, mjcf_path
from velora_robot.robots.spec import HeldJoint, JointSpec, ModelSource, RobotSpec
from velora_robot.robots.terms import OBSERVATIONS, observation_term

__all__ = ["OBSERVATIONS", "ROBOTS", "HeldJoint", "JointSpec", "ModelSource", "ObsTerm",
           "PolicyInterface", "RobotIO", "RobotSpec", "RobotState", "get_spec",
           "gravity_in_base", "mjcf_path", "obs_sizes", "observation_term"]
