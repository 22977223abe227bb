"""`MockHardware`: mirrors commands into its state (for tests of everything above the HAL)."""

from __future__ import annotations

import numpy as np

from velora_robot.hal.base import Hardware, HardwareState, JointCommand
from velora_robot.robots.spec import RobotSpec


class MockHardware(Hardware):
    """Joints go to the commanded position (when kp > 0) one write later; velocity is the
    change over `period_s`; the IMU reads upright and still."""

    def __init__(self, spec: RobotSpec, period_s: float | None = None) -> None:
        super().__init__(spec)
        self.period_s = period_s or spec.control_dt
        n = spec.n_joints
        self._q = np.array([j.default_pos for j in spec.joints])
        self._dq, self._tau = np.zeros(n), np.zeros(n)
        self._time = 0.0
        self.commands: list[JointCommand] = []

    def set_positions(self, q: np.ndarray) -> None:
        """Where the joints are (e.g. a pose the robot was left in)."""
        self._q = np.array(q, float)

    def _read(self) -> HardwareState:
        return HardwareState(q=self._q.copy(), dq=self._dq.copy(), tau=self._tau.copy(),
                             gyro=np.zeros(3), gravity=np.array([0.0, 0.0, -1.0]),
                             time_s=self._time)

    def _write(self, command: JointCommand) -> None:
        self.commands.append(command)
        target = np.where(command.kp > 0, command.q, self._q)
        self._dq = (target - self._q) / self.period_s
        self._tau = command.kp * (command.q - self._q) - command.kd * self._dq
        self._q = target
        self._time += self.period_s
