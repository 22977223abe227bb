"""`Controller`: one control cycle on the robot — read the hardware, build the observation
with the same `RobotIO` the training env used, run the policy, map the action to joint
targets the same way, write. Timing and safety wrap around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from velora_robot.hal.base import Hardware, HardwareState, JointCommand
from velora_robot.robots.observation import RobotIO


@dataclass
class Cycle:
    """What one cycle saw and did."""

    state: HardwareState
    obs: np.ndarray
    action: np.ndarray
    targets: np.ndarray


class Controller:
    """read -> observation -> policy -> targets -> write, for any `Hardware` backend."""

    def __init__(self, hardware: Hardware, policy: Callable[[np.ndarray], np.ndarray],
                 command: np.ndarray | None = None) -> None:
        self.hardware, self.policy = hardware, policy
        self.io = RobotIO(hardware.spec)
        self.command = np.zeros(len(hardware.spec.commands)) if command is None \
            else np.asarray(command, float)
        self.last_action = np.zeros(hardware.spec.n_joints)

    def cycle(self) -> Cycle:
        """One cycle; returns what it saw and sent."""
        state = self.hardware.read()
        obs = self.io.observation(state.robot_state(), self.last_action, self.command)
        action = np.clip(np.asarray(self.policy(obs), float), -1.0, 1.0)
        targets = self.io.targets(action)
        self.hardware.write(JointCommand.hold(self.hardware.spec, targets))
        self.last_action = action
        return Cycle(state=state, obs=obs, action=action, targets=targets)
