"""The hardware abstraction layer: `Hardware` and its backends (no torch, gymnasium or
wandb; MuJoCo only for the simulated robot, imported when it is configured)."""

from velora_robot.hal.base import (
    Hardware,
    HardwareError,
    HardwareState,
    JointCommand,
    Lifecycle,
)
from velora_robot.hal.mock import MockHardware
from velora_robot.hal.mujoco import MujocoHardware

__all__ = ["Hardware", "HardwareError", "HardwareState", "JointCommand", "Lifecycle",
           "MockHardware", "MujocoHardware"]
