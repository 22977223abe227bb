"""The hardware abstraction layer: `Hardware` and its backends (no torch, gymnasium or
wandb; MuJoCo only for the simulated robot and pyserial only for the serial backends,
each imported when it is used)."""

from velora_robot.hal.base import (
    Hardware,
    HardwareError,
    HardwareState,
    JointCommand,
    Lifecycle,
)
from velora_robot.hal.dynamixel import DynamixelHardware
from velora_robot.hal.mock import MockHardware
from velora_robot.hal.mujoco import MujocoHardware
from velora_robot.hal.serial_bridge import SerialBridgeHardware

__all__ = ["DynamixelHardware", "Hardware", "HardwareError", "HardwareState", "JointCommand",
           "Lifecycle", "MockHardware", "MujocoHardware", "SerialBridgeHardware"]
