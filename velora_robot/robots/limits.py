"""`JointLimits`: the limits every joint target passes on its way to the motors, written once
for the runtime's safety layer and for the training env, so that a policy trains under the
limits it will run under (a limit that binds only on the robot is a sim-to-real gap)."""

from __future__ import annotations

import numpy as np

from velora_robot.robots.spec import RobotSpec


class JointLimits:
    """Position range, slew (each target moves at most vel_limit * dt_s from the previous
    target, as ros2_control bounds a command by the previous command) and torque (the target
    is kept where kp (target - q) - kd dq stays within +-torque_limit), for one robot spec.
    Arrays may carry a leading batch dimension."""

    def __init__(self, spec: RobotSpec, dt_s: float) -> None:
        joints = spec.joints
        self.q_low = np.array([j.pos_limit[0] for j in joints])
        self.q_high = np.array([j.pos_limit[1] for j in joints])
        self.max_step = np.array([j.vel_limit for j in joints]) * dt_s
        self.torque_limit = np.array([j.torque_limit for j in joints])
        self.kp = np.array([j.kp for j in joints])
        self.kd = np.array([j.kd for j in joints])

    def apply(self, target: np.ndarray, last_target: np.ndarray, q: np.ndarray,
              dq: np.ndarray) -> np.ndarray:
        """`target` inside the limits, given the previous target and the measured q, dq."""
        target = np.clip(target, self.q_low, self.q_high)
        target = np.clip(target, last_target - self.max_step, last_target + self.max_step)
        slack = self.kd * dq
        return np.clip(target, q + (slack - self.torque_limit) / self.kp,
                       q + (slack + self.torque_limit) / self.kp)

    def start(self, q: np.ndarray) -> np.ndarray:
        """The 'previous target' before the first command: the measured pose, in range."""
        return np.clip(q, self.q_low, self.q_high)
