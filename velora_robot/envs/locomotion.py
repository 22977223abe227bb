"""Walking on flat ground at a commanded velocity: the reward terms shared by SpotWalk, G1Walk
and Go2Walk (in the spirit of legged_gym and MuJoCo Playground's joystick tasks)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from velora_robot.envs.base import EnvConfig, VecTask
from velora_robot.errors import ConfigError
from velora_robot.robots.interface import velocity_errors
from velora_robot.robots.observation import mirror_maps
from velora_robot.robots.sources import get_spec
from velora_robot.simulation.robot import Measurement

HEADING_SIGMA_RAD2 = 0.25
AIR_TIME_TARGET_S = 0.25
FEET_PHASE_SIGMA_M2 = 0.01


def walking_interface(commands: tuple[str, ...], gait_hz: float) -> dict[str, Any]:
    """A walker's policy interface: IMU, joints, its last action, the velocity command and
    a gait clock at `gait_hz` (a task's DEFAULTS["interface"])."""
    return {"observation": [{"name": "gyro", "scale": 0.25}, {"name": "gravity"},
                            {"name": "joint_pos"}, {"name": "joint_vel", "scale": 0.05},
                            {"name": "last_action"}, {"name": "command"},
                            {"name": "gait_clock"}],
            "commands": commands, "gait_hz": gait_hz}


class LocomotionConfig(EnvConfig):
    """A walker's settings beyond every task's."""

    # Width of the velocity-tracking terms exp(-e^2 / sigma), in (m/s)^2 (legged_gym: 0.25).
    # A narrower width pays more for the last few cm/s (a fine-tuning stage).
    tracking_sigma: float = Field(default=0.25, gt=0)
    # Per foot (the source's foot order), where in the gait cycle its swing starts
    # (fraction of a cycle); used by the `gait` reward with the interface's gait_hz.
    gait_offsets: list[float] = Field(default_factory=list)
    # Peak height of a swinging foot on the gait clock, m (the `feet_phase` reward).
    swing_height_m: float = Field(default=0.08, gt=0)


class LocomotionTask(VecTask):
    """Track (vx, vy, yaw rate) in the base frame; commands a task lacks count as zero."""

    CONFIG: ClassVar[type[EnvConfig]] = LocomotionConfig
    config: LocomotionConfig
    TRACKING_ERROR: ClassVar[str | None] = "|commanded - actual| planar velocity, m/s"
    # Walkers step to their interface's gait clock: swings and the clock's contact schedule are
    # rewarded, and the pose term keeps them off the action limits. Without these PPO
    # settled on standing still (Spot) or on a stance at the action limits that tips over
    # after 2 s (Gymnasium's humanoid, since retired). Torque and energy costs are small,
    # since stepping needs both.
    REWARDS: ClassVar[dict[str, float]] = {
        "tracking_lin_vel": 2.0, "tracking_ang_vel": 0.5, "orientation": -5.0,
        "lin_vel_z": -0.5, "ang_vel_xy": -0.05, "torques": -2e-5, "action_rate": -0.01,
        "energy": -1e-4, "feet_air_time": 1.0, "pose": -0.5, "gait": 1.0, "heading": 0.0,
        # The tracking errors themselves, |command - velocity| (what `velora-robot eval`
        # reports), off by default. The exp terms above are nearly flat within a few cm/s,
        # so a policy may walk 0.54 m/s when asked for 0.5 at almost no cost; these charge
        # every cm/s the same (a fine-tuning stage's weights).
        "lin_vel_error": 0.0, "yaw_rate_error": 0.0,
        # Paid for every step upright (off for Spot, which stands by itself; a biped needs it).
        "alive": 0.0,
        # (base height - the spec's standing height)^2, m^2: a biped that crouches to stay
        # up instead of stepping pays for it (unitree_rl_gym's `base_height`).
        "base_height": 0.0,
        # Each foot follows the gait clock's height profile (MuJoCo Playground's
        # `feet_phase`): up to swing_height_m and down again in its swing half, on the ground
        # in its stance half. Dense where `gait` pays only for contact.
        "feet_phase": 0.0,
    }

    def __init__(self, n: int, config: EnvConfig | dict[str, Any] | None = None,
                 **settings: Any) -> None:
        super().__init__(n, config, **settings)
        self._air_time = np.zeros((n, len(self.batch.index.foot_start)))
        # The heading the robot should have: where it started, turned by the yaw-rate
        # commands since (NaN until its episode's first step).
        self._heading = np.full(n, np.nan)
        self.tracking_error = np.zeros(n)
        columns = {"vx": 0, "vy": 1, "yaw_rate": 2}
        self._command_columns = [columns[name] for name in self.interface.commands]

    @classmethod
    def mirror_maps(cls, given: dict[str, Any], where: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The mirror image of the robot, its gait clock shifted by the offset between a foot
        and its mirror partner (half a period for a trot; the same for every pair, or the
        gait is not symmetric)."""
        config = cls.settings(given, where)
        spec, gait_hz = get_spec(config.robot), config.interface.gait_hz
        if spec.mirror is None:
            raise ConfigError(f"{where}: robot {spec.name!r} has no mirror in its spec: "
                              "mirror symmetry does not apply")
        offsets, feet = config.gait_offsets, spec.mirror.feet
        shifts = {round((offsets[feet[k]] - offsets[k]) % 1.0, 9)
                  for k in range(len(offsets))} if offsets and gait_hz else {0.0}
        if len(shifts) != 1 or not shifts <= {0.0, 0.5}:
            raise ConfigError(f"{where}: field 'gait_offsets': {offsets} is not a mirror-"
                              "symmetric gait (a foot and its partner must be in phase or "
                              "half a period apart, the same for every pair)")
        return mirror_maps(spec, config.interface, shifts.pop())

    def _reset_task(self, i: int) -> None:
        super()._reset_task(i)
        self._air_time[i] = 0.0
        self._heading[i] = np.nan

    def velocity_command(self) -> np.ndarray:
        """Commands as (n, 3): vx, vy, yaw rate."""
        full = np.zeros((self.n, 3))
        full[:, self._command_columns] = self.command
        return full

    def velocity_errors(self, m: Measurement) -> tuple[np.ndarray, np.ndarray]:
        """Per robot: |commanded - actual| planar velocity (m/s) and yaw rate (rad/s), the
        tracking errors rewards and evaluations share."""
        return velocity_errors(self.velocity_command(), m.base_lin_vel[:, :2],
                               m.state.gyro[:, 2])

    def _reward_terms(self, m: Measurement, action: np.ndarray) -> dict[str, np.ndarray]:
        cmd = self.velocity_command()
        v, s = m.base_lin_vel, m.state
        lin_err, yaw_err = self.velocity_errors(m)
        self.tracking_error = lin_err
        return {
            "tracking_lin_vel": np.exp(-lin_err**2 / self.config.tracking_sigma),
            "tracking_ang_vel": np.exp(-yaw_err**2 / self.config.tracking_sigma),
            "lin_vel_error": lin_err,
            "yaw_rate_error": yaw_err,
            "orientation": np.sum(s.gravity[:, :2] ** 2, axis=1),
            "lin_vel_z": v[:, 2] ** 2,
            "ang_vel_xy": np.sum(s.gyro[:, :2] ** 2, axis=1),
            "torques": np.sum(m.tau**2, axis=1),
            "action_rate": np.sum((action - self.last_action) ** 2, axis=1),
            "energy": np.sum(np.abs(m.tau * s.dq), axis=1),
            "feet_air_time": self._feet_air_time(m.contacts, cmd),
            # distance from the default pose (MuJoCo Playground's `pose`): no extreme stance
            "pose": np.sum((s.q - self.io.q0) ** 2, axis=1),
            "gait": self._gait(m.contacts, cmd),
            "feet_phase": self._feet_phase(m.foot_heights, cmd),
            "heading": self._heading_kept(m.base_yaw, cmd[:, 2]),
            "alive": np.ones(self.n),
            "base_height": (m.base_pos[:, 2] - self.spec.base_height) ** 2,
        }

    def info(self) -> dict[str, np.ndarray]:
        return {"tracking_error": self.tracking_error}

    def _heading_kept(self, yaw: np.ndarray, yaw_rate_cmd: np.ndarray) -> np.ndarray:
        """exp(-e^2 / sigma) of the heading error e: the yaw-rate term alone lets a robot
        whose torso swings with each step drift round in a circle."""
        start = np.isnan(self._heading)
        self._heading[start] = yaw[start]
        self._heading += yaw_rate_cmd * self.dt
        error = (yaw - self._heading + np.pi) % (2 * np.pi) - np.pi
        return np.exp(-error**2 / HEADING_SIGMA_RAD2)

    def _foot_phases(self) -> np.ndarray | None:
        """Per robot and foot, where it is in its gait cycle (0..1; it swings in the first
        half); None when the task has no gait clock."""
        offsets = self.config.gait_offsets
        gait_hz = self.interface.gait_hz
        if not offsets or gait_hz is None:
            return None
        return (gait_hz * self.steps[:, None] * self.dt + np.asarray(offsets)) % 1.0

    def _gait(self, contact: np.ndarray, cmd: np.ndarray) -> np.ndarray:
        """Fraction of feet whose contact follows the gait clock (a periodic contact
        schedule, as in Siekmann et al. 2021): each foot swings during the first half of
        its cycle when the robot is asked to move, and all feet stand when it is not."""
        phase = self._foot_phases()
        if phase is None:
            return np.zeros(self.n)
        stance = np.where(_moving(cmd)[:, None], phase >= 0.5, True)
        return np.mean(contact == stance, axis=1)

    def _feet_phase(self, heights: np.ndarray, cmd: np.ndarray) -> np.ndarray:
        """exp(-sum of squared errors / 0.01 m^2) between each foot's height and the clock's
        profile: a half sine of peak `swing_height_m` over its swing when the robot is
        asked to move, the ground otherwise."""
        phase = self._foot_phases()
        if phase is None:
            return np.zeros(self.n)
        profile = self.config.swing_height_m * np.sin(2 * np.pi * np.minimum(phase, 0.5))
        target = np.where(_moving(cmd)[:, None], profile, 0.0)
        return np.exp(-np.sum((heights - target) ** 2, axis=1) / FEET_PHASE_SIGMA_M2)

    def _feet_air_time(self, contact: np.ndarray, cmd: np.ndarray) -> np.ndarray:
        """On touchdown, reward each swing longer than the target (only when asked to
        move), so the robot steps instead of shuffling."""
        first_contact = contact & (self._air_time > 0)
        self._air_time += self.dt
        reward = np.sum((self._air_time - AIR_TIME_TARGET_S) * first_contact, axis=1)
        self._air_time[contact] = 0.0
        return reward * _moving(cmd)


def _moving(cmd: np.ndarray) -> np.ndarray:
    """Per robot, whether its (vx, vy, yaw rate) command asks it to move at all."""
    return np.linalg.norm(cmd, axis=1) > 0.1
