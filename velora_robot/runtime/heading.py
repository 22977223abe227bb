"""`HeadingHold`: the outer loop that keeps a walking robot on the heading its commands ask
for. A policy that follows a yaw-rate command still drifts by a few hundredths of a rad/s
(more under a few ms of bus delay), and over a 20-s walk that bends a straight line into an
arc. As legged_gym's heading command and a joystick's heading mode do, the yaw-rate command
the policy sees becomes the user's yaw rate plus kp x the heading error, the error being
the user's yaw rate minus the measured one, integrated. The measured yaw rate is the IMU's
angular velocity about the world's vertical, gyro . (-gravity) in the base frame, so no
compass or absolute heading is needed."""

from __future__ import annotations

import numpy as np

from velora_robot.robots.interface import VELOCITY_COMMANDS

YAW_RATE = VELOCITY_COMMANDS.index("yaw_rate")


def world_yaw_rate(gyro: np.ndarray, gravity: np.ndarray) -> float:
    """The base's turn rate about the world's vertical, rad/s, from the IMU's angular
    velocity and gravity's unit direction (`RobotState.gravity`), both in the base frame."""
    return -float(np.dot(gyro, gravity))


class HeadingHold:
    """Adds kp x (heading the commands asked for - heading measured), clipped to
    +-`max_rad_s`, to the yaw-rate command; `update` every cycle with the IMU, `command`
    when the policy runs, `reset` when the policy takes over."""

    def __init__(self, kp_per_s: float, max_rad_s: float, dt_s: float) -> None:
        if kp_per_s <= 0 or max_rad_s <= 0 or dt_s <= 0:
            raise ValueError(f"heading hold: kp_per_s ({kp_per_s}), max_rad_s ({max_rad_s}) "
                             f"and dt_s ({dt_s}) must be above 0")
        self.kp_per_s, self.max_rad_s, self.dt_s = kp_per_s, max_rad_s, dt_s
        self.error_rad = 0.0

    def reset(self) -> None:
        """The heading from now on is the one to keep."""
        self.error_rad = 0.0

    def update(self, yaw_rate_command: float, gyro: np.ndarray, gravity: np.ndarray) -> None:
        """One cycle of `dt_s`: the asked-for heading turns by the user's yaw rate, the
        robot by its measured one; the error is kept within (-pi, pi]."""
        self.error_rad += (yaw_rate_command - world_yaw_rate(gyro, gravity)) * self.dt_s
        self.error_rad = float(np.pi - (np.pi - self.error_rad) % (2 * np.pi))

    def command(self, command: np.ndarray) -> np.ndarray:
        """The command with its yaw rate corrected toward the asked-for heading."""
        held = np.array(command, float)
        held[YAW_RATE] += float(np.clip(self.kp_per_s * self.error_rad,
                                        -self.max_rad_s, self.max_rad_s))
        return held
