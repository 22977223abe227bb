"""Robot specs (joints, gains, limits, rates, observation layout), the shared observation
builder and action mapping, and where each robot's MJCF lives. numpy and pydantic only."""

from velora_robot.robots.builtin import HUMANOID, ONE_JOINT, ROBOTS, SPOT
from velora_robot.robots.observation import RobotIO, RobotState, gravity_in_base
from velora_robot.robots.sources import get_spec, mjcf_path
from velora_robot.robots.spec import JointSpec, ModelSource, ObsTerm, RobotSpec

__all__ = ["HUMANOID", "ONE_JOINT", "ROBOTS", "SPOT", "JointSpec", "ModelSource", "ObsTerm",
           "RobotIO", "RobotSpec", "RobotState", "get_spec", "gravity_in_base", "mjcf_path"]
