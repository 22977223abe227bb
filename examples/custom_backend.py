"""A custom HAL backend in 40 lines: a robot whose joints follow their PD targets with a
first-order lag (stand-in for your motor drivers). Use it from a launch file:

    hardware: {backend: "custom_backend:LaggedJoints", options: {lag_s: 0.02}}

with this file's folder on PYTHONPATH. Implement `_read` and `_write`; the lifecycle hooks
(`_on_configure`, `_on_activate`, `_on_deactivate`, `_on_torque_off`, `_on_shutdown`) are
optional. An exception in any of them puts the backend in its error state, which the
controller turns into damping; shutdown then calls `_on_torque_off`.
"""

import numpy as np

from velora_robot.hal import Hardware
from velora_robot.hal.base import HardwareState, JointCommand


class LaggedJoints(Hardware):
    """Joints move toward their target with time constant `lag_s`; no IMU."""

    has_imu = False  # reported as NaN: the controller's fall check is off, and says so

    def __init__(self, spec, lag_s: float = 0.02) -> None:
        super().__init__(spec)
        self.lag_s, self.dt = lag_s, spec.control_dt
        self.q = np.array([j.default_pos for j in spec.joints])
        self.dq = np.zeros_like(self.q)
        self.time_s = 0.0

    def _read(self) -> HardwareState:
        nan = np.full(3, np.nan)
        return HardwareState(q=self.q.copy(), dq=self.dq.copy(), tau=np.zeros_like(self.q),
                             gyro=nan, gravity=nan, time_s=self.time_s)

    def _write(self, command: JointCommand) -> None:
        step = np.where(command.kp > 0, command.q - self.q, -self.dq * self.dt)
        self.dq = step * (1 - np.exp(-self.dt / self.lag_s)) / self.dt
        self.q = self.q + self.dq * self.dt
        self.time_s += self.dt

    def _on_torque_off(self) -> None:
        self.dq[:] = 0.0  # a real backend sends its drivers' disable command here
