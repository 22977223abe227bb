"""JointTrack: the one-joint rig follows a target angle trajectory (a sum of two sines with
random amplitude, frequency and phase, drawn per episode). The command the controller sees is
(target angle, target velocity)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from velora_robot.envs.base import EnvConfig, RobotEnv, VecTask
from velora_robot.simulation.robot import Measurement

TRACKING_SIGMA_RAD2 = 0.01
MAX_AMPLITUDE_RAD = 1.2
FREQUENCY_HZ = (0.1, 1.0)


class JointTrackTask(VecTask):
    """`info()["tracking_error"]`: |q - target| in rad after each step."""

    TRACKING_ERROR: ClassVar[str | None] = "|q - target|, rad"

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "robot": "one_joint", "episode_s": 10.0,
        "interface": {"observation": [{"name": "joint_pos"}, {"name": "joint_vel", "scale": 0.1},
                                      {"name": "last_action"}, {"name": "command"}],
                      "commands": ("target_pos", "target_vel")},
    }
    REWARDS: ClassVar[dict[str, float]] = {"tracking": 1.0, "error": -1.0, "action_rate": -0.01,
                                           "torques": -0.01}
    RANGED_COMMANDS: ClassVar[bool] = False

    def __init__(self, n: int, config: EnvConfig | dict[str, Any] | None = None,
                 **settings: Any) -> None:
        super().__init__(n, config, **settings)
        self._amplitude = np.zeros((n, 2))
        self._omega = np.zeros((n, 2))
        self._phase = np.zeros((n, 2))
        self.tracking_error = np.zeros(n)

    def _reset_task(self, i: int) -> None:
        rng = self.rngs[i]
        self._amplitude[i] = rng.uniform(0.1, MAX_AMPLITUDE_RAD / 2, size=2)
        self._omega[i] = 2 * np.pi * rng.uniform(*FREQUENCY_HZ, size=2)
        self._phase[i] = rng.uniform(0, 2 * np.pi, size=2)
        self._advance_command()

    def _update_command(self, ids: np.ndarray) -> None:
        """The trajectory is fixed per episode; nothing to redraw."""

    def _advance_command(self) -> None:
        angle = self._omega * (self.steps * self.dt)[:, None] + self._phase
        self.command[:, 0] = np.sum(self._amplitude * np.sin(angle), axis=1)
        self.command[:, 1] = np.sum(self._amplitude * self._omega * np.cos(angle), axis=1)

    def _reward_terms(self, m: Measurement, action: np.ndarray) -> dict[str, np.ndarray]:
        error = m.state.q[:, 0] - self.command[:, 0]  # the target this action was chosen for
        self.tracking_error = np.abs(error)
        return {"tracking": np.exp(-error**2 / TRACKING_SIGMA_RAD2), "error": np.abs(error),
                "action_rate": np.sum((action - self.last_action) ** 2, axis=1),
                "torques": np.sum(m.tau**2, axis=1)}

    def info(self) -> dict[str, np.ndarray]:
        return {"tracking_error": self.tracking_error}


class JointTrackEnv(RobotEnv):
    """`velora_robot/JointTrack-v0`."""

    TASK = JointTrackTask
