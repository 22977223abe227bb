"""`PolicyInterface`: what a task shows its policy and asks of it — the observation terms
and their scales, the commands and the gait clock. The task owns it (a robot may serve many
tasks), the model card carries it, and the runtime builds the observation from the card."""

from __future__ import annotations

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from velora_robot.config import Settings
from velora_robot.robots.terms import OBSERVATIONS

# The largest command any of our robots takes (m/s, rad/s or rad): a bound on absurd input
# (a command of 1e308 would make the observation infinite), not a robot's ability.
MAX_COMMAND = 10.0


def check_command(values: dict[str, float], commands: tuple[str, ...], where: str) -> None:
    """Refuse command names the robot does not take and values beyond +-MAX_COMMAND."""
    unknown = sorted(set(values) - set(commands))
    if unknown:
        raise ValueError(f"{where}: no command {unknown}; the commands are {list(commands)}")
    for name, value in values.items():
        if not -MAX_COMMAND <= value <= MAX_COMMAND:
            raise ValueError(f"{where}.{name}: {value} is outside -{MAX_COMMAND:g}.."
                             f"{MAX_COMMAND:g}")



# A walker's velocity command, in this order (what `velocity_errors`, the heading hold and the
# walking criteria index).
VELOCITY_COMMANDS = ("vx", "vy", "yaw_rate")


def velocity_errors(command: np.ndarray, lin_vel_xy: np.ndarray, yaw_rate: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Tracking errors of a velocity command (..., 3: vx, vy, yaw rate) against the base's
    planar velocity (..., 2) and yaw rate (...): |(vx, vy) - v| in m/s and |yaw rate
    command - yaw rate| in rad/s. Rewards, evaluations, curricula and the runtime's summary
    all take these."""
    return (np.linalg.norm(command[..., :2] - lin_vel_xy, axis=-1),
            np.abs(command[..., 2] - yaw_rate))


class ObsTerm(Settings):
    """One block of the actor observation: a registered term, multiplied by `scale`."""

    model_config = ConfigDict(frozen=True)

    name: str
    scale: float = 1.0

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in OBSERVATIONS:
            raise ValueError(f"unknown observation term {name!r}; terms: "
                             f"{', '.join(OBSERVATIONS)}")
        return name


class PolicyInterface(Settings):
    """The observation layout, the command names (in order) and the gait clock's rate."""

    model_config = ConfigDict(frozen=True)

    observation: tuple[ObsTerm, ...]
    commands: tuple[str, ...] = ()
    # A gait clock (cos, sin of 2 pi gait_hz t, t from the start of the policy's episode)
    # gives a walking policy its rhythm; set when the layout has a `gait_clock` term.
    gait_hz: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> PolicyInterface:
        names = [t.name for t in self.observation]
        if len(set(names)) != len(names):
            raise ValueError(f"observation terms repeat: {names}")
        if len(set(self.commands)) != len(self.commands):
            raise ValueError(f"commands repeat: {list(self.commands)}")
        if "gait_clock" in names and self.gait_hz is None:
            raise ValueError("the observation has a gait_clock term: set gait_hz")
        return self
