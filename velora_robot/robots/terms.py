"""Observation terms: each is one function of what the robot measures (and of the policy's
own last action, command and clock), registered by name. A task lists the terms it shows its
policy; sizes are derived by evaluating each term, never written down. Adding a term is one
function here (with its mirror image, for training with symmetry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from velora_robot.robots.interface import PolicyInterface
    from velora_robot.robots.observation import RobotState
    from velora_robot.robots.spec import RobotSpec


@dataclass(frozen=True)
class Inputs:
    """What an observation term may read; arrays may carry a leading batch dimension."""

    state: RobotState
    last_action: np.ndarray
    command: np.ndarray
    time_s: np.ndarray  # since the policy's episode began, shape (..., 1)
    q0: np.ndarray  # the robot's default joint pose
    gait_hz: float | None


# A term's mirror image: index and sign arrays over its own block, so that the mirrored block
# is block[..., index] * sign. `clock_shift` is the gait clock's offset in periods between a
# foot and its mirror partner.
Mirror = Callable[["RobotSpec", "PolicyInterface", float], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Term:
    """A registered observation term."""

    fn: Callable[[Inputs], np.ndarray]
    mirror: Mirror | None


OBSERVATIONS: dict[str, Term] = {}


def observation_term(name: str, mirror: Mirror | None = None
                     ) -> Callable[[Callable[[Inputs], np.ndarray]],
                                   Callable[[Inputs], np.ndarray]]:
    """Register `fn(inputs) -> (..., size)` as the observation term `name`."""
    def register(fn: Callable[[Inputs], np.ndarray]) -> Callable[[Inputs], np.ndarray]:
        if name in OBSERVATIONS:
            raise ValueError(f"observation term {name!r} is already registered")
        OBSERVATIONS[name] = Term(fn, mirror)
        return fn
    return register


# Signs of each command under the left-right mirror: forward speed stays, sideways speed and
# turning rate flip.
COMMAND_MIRROR = {"vx": 1.0, "vy": -1.0, "yaw_rate": -1.0}


def _same(size: int, sign: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(size), np.array(sign, dtype=float)


def _joints(spec: RobotSpec, _: PolicyInterface, __: float) -> tuple[np.ndarray, np.ndarray]:
    if spec.mirror is None:
        raise ValueError(f"robot {spec.name!r} has no mirror in its spec")
    return np.array(spec.mirror.joints), np.array(spec.mirror.joint_sign, dtype=float)


def _commands(_: RobotSpec, interface: PolicyInterface,
              __: float) -> tuple[np.ndarray, np.ndarray]:
    unknown = [c for c in interface.commands if c not in COMMAND_MIRROR]
    if unknown:
        raise ValueError(f"commands {unknown} have no mirror image")
    return _same(len(interface.commands), [COMMAND_MIRROR[c] for c in interface.commands])


def _clock(_: RobotSpec, __: PolicyInterface, shift: float) -> tuple[np.ndarray, np.ndarray]:
    # Half a period ahead is the negated (cos, sin); in phase is the same clock.
    return _same(2, [-1.0, -1.0] if shift else [1.0, 1.0])


# Angular rates are axial vectors (x and z flip under the mirror), gravity polar (y flips).
@observation_term("gyro", mirror=lambda *_: _same(3, [-1.0, 1.0, -1.0]))
def gyro(x: Inputs) -> np.ndarray:
    """Base angular velocity from the IMU, base frame, rad/s."""
    return x.state.gyro


@observation_term("gravity", mirror=lambda *_: _same(3, [1.0, -1.0, 1.0]))
def gravity(x: Inputs) -> np.ndarray:
    """Gravity's direction in the base frame (unit vector), from the IMU's orientation."""
    return x.state.gravity


@observation_term("joint_pos", mirror=_joints)
def joint_pos(x: Inputs) -> np.ndarray:
    """Joint positions relative to the default pose, rad."""
    return x.state.q - x.q0


@observation_term("joint_vel", mirror=_joints)
def joint_vel(x: Inputs) -> np.ndarray:
    """Joint velocities, rad/s."""
    return x.state.dq


@observation_term("last_action", mirror=_joints)
def last_action(x: Inputs) -> np.ndarray:
    """The policy's previous action."""
    return x.last_action


@observation_term("command", mirror=_commands)
def command(x: Inputs) -> np.ndarray:
    """The task's command (velocities, targets), in the interface's command order."""
    return x.command


@observation_term("gait_clock", mirror=_clock)
def gait_clock(x: Inputs) -> np.ndarray:
    """cos and sin of 2 pi gait_hz t: a walking policy's rhythm."""
    if x.gait_hz is None:
        raise ValueError("the gait_clock term needs the interface's gait_hz")
    angle = 2 * np.pi * x.gait_hz * x.time_s
    return np.concatenate([np.cos(angle), np.sin(angle)], axis=-1)
