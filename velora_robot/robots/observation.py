"""The observation vector and the action mapping: written once, used by the training env
and by the runtime on the robot (numpy only). Mismatched order or scaling between sim and
robot cannot happen because there is no second copy. The observation's layout is the task's
`PolicyInterface` (its terms in `terms.py`); the action mapping is the robot's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from velora_robot.robots.interface import PolicyInterface
from velora_robot.robots.spec import RobotSpec
from velora_robot.robots.terms import OBSERVATIONS, Inputs


@dataclass
class RobotState:
    """What the robot measures: joint positions and velocities (spec order), IMU angular
    velocity in the base frame (rad/s) and gravity's direction in the base frame (unit).
    Arrays may carry a leading batch dimension."""

    q: np.ndarray
    dq: np.ndarray
    gyro: np.ndarray
    gravity: np.ndarray


def to_base_frame(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate world-frame vectors into the frame of orientation `quat` (R^T v); both may
    carry leading batch dimensions."""
    w = quat_wxyz[..., :1]
    u = quat_wxyz[..., 1:]
    # Rotation by the conjugate quaternion: v' = v - w t + u x t, with t = 2 u x v.
    t = 2.0 * _cross(u, vec)
    return vec - w * t + _cross(u, t)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Written out: several times faster than np.cross on small batches (a hot path).
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def gravity_in_base(quat_wxyz: np.ndarray) -> np.ndarray:
    """World gravity direction (0, 0, -1) expressed in the frame of orientation `quat`."""
    return to_base_frame(quat_wxyz, np.broadcast_to([0.0, 0.0, -1.0],
                                                    (*np.shape(quat_wxyz)[:-1], 3)))


class RobotIO:
    """Observation building and action mapping for one robot under one policy interface.

    `observation()` lays out the actor observation (the interface's terms, scaled);
    `targets()` turns an action in [-1, 1] into joint position targets: default pose +
    action_scale * action, inside the limits. Without an interface only `targets()` works
    (a simulated robot needs no observation).
    """

    def __init__(self, spec: RobotSpec, interface: PolicyInterface | None = None) -> None:
        self.spec, self.interface = spec, interface
        self.q0 = spec.default_pose
        self.q_low = np.array([j.pos_limit[0] for j in spec.joints])
        self.q_high = np.array([j.pos_limit[1] for j in spec.joints])
        if interface is not None:
            self._layout = [(OBSERVATIONS[t.name].fn, t.scale) for t in interface.observation]
            self.sizes = obs_sizes(spec, interface)
            self.obs_dim = sum(self.sizes.values())

    def observation(self, state: RobotState, last_action: np.ndarray,
                    command: np.ndarray, time_s: float | np.ndarray = 0.0) -> np.ndarray:
        """The actor observation (float32) in the interface's layout; batched inputs give a
        batch of observations. `time_s` is the time since the policy's episode began (for
        the gait clock; one value per robot in a batch)."""
        if self.interface is None:
            raise ValueError(f"robot {self.spec.name!r}: no policy interface to observe with")
        x = Inputs(state, last_action, command, np.asarray(time_s, float)[..., None], self.q0,
                   self.interface.gait_hz)
        return np.concatenate([fn(x) * scale for fn, scale in self._layout],
                              axis=-1).astype(np.float32)

    def targets(self, action: np.ndarray) -> np.ndarray:
        """Joint position targets for an action (clipped to [-1, 1] first)."""
        target = self.q0 + self.spec.action_scale * np.clip(action, -1.0, 1.0)
        return np.clip(target, self.q_low, self.q_high)


def obs_sizes(spec: RobotSpec, interface: PolicyInterface) -> dict[str, int]:
    """Size of each observation term of `interface` on `spec`, in layout order: derived by
    evaluating each term once on the robot at rest."""
    n = spec.n_joints
    rest = Inputs(RobotState(q=spec.default_pose, dq=np.zeros(n), gyro=np.zeros(3),
                             gravity=np.array([0.0, 0.0, -1.0])),
                  np.zeros(n), np.zeros(len(interface.commands)), np.zeros(1),
                  spec.default_pose, interface.gait_hz)
    return {t.name: int(np.shape(OBSERVATIONS[t.name].fn(rest))[-1])
            for t in interface.observation}


def mirror_maps(spec: RobotSpec, interface: PolicyInterface, clock_shift: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The observation and action of the robot's mirror image, as index and sign arrays:
    mirrored obs = obs[..., obs_index] * obs_sign, mirrored action = action[...,
    act_index] * act_sign. `clock_shift` is the gait clock's offset, in periods, between a
    foot and its mirror partner (0.5 for a trot): the clock of the mirror image runs that
    far ahead. Raises ValueError when the spec has no mirror, a term has no mirror image,
    or the shift is not 0 or 0.5."""
    if spec.mirror is None:
        raise ValueError(f"robot {spec.name!r} has no mirror in its spec")
    if clock_shift not in (0.0, 0.5):
        raise ValueError(f"a gait clock shifted by {clock_shift} periods is a rotation, not "
                         "a sign change: mirror symmetry needs a shift of 0 or 0.5")
    index, sign, offset = [], [], 0
    for name, size in obs_sizes(spec, interface).items():
        mirror = OBSERVATIONS[name].mirror
        if mirror is None:
            raise ValueError(f"observation term {name!r} has no mirror image")
        idx, sgn = mirror(spec, interface, clock_shift)
        index.append(idx + offset)
        sign.append(sgn)
        offset += size
    return (np.concatenate(index), np.concatenate(sign), np.array(spec.mirror.joints),
            np.array(spec.mirror.joint_sign, dtype=float))
