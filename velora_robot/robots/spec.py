"""`RobotSpec`: the one source of truth for a robot's hardware facts — joints and their
order, default pose, PD gains, limits, held joints, action scale, rates, where its model
lives and what its feet are. The env, the model card, the runtime and the firmware
configuration all read it. What a policy observes is the task's (`interface.py`)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from velora_robot.config import Settings


class JointSpec(Settings):
    """One actuated joint: PD gains, limits and default position (SI units, radians)."""

    model_config = ConfigDict(frozen=True)

    name: str
    default_pos: float
    kp: float = Field(gt=0, description="position gain, N*m/rad")
    kd: float = Field(ge=0, description="velocity gain, N*m*s/rad")
    torque_limit: float = Field(gt=0, description="N*m")
    pos_limit: tuple[float, float]
    vel_limit: float = Field(gt=0, description="rad/s")

    @model_validator(mode="after")
    def _check(self) -> JointSpec:
        lo, hi = self.pos_limit
        if not lo < hi:
            raise ValueError(f"joint {self.name!r}: pos_limit {self.pos_limit} must be (low, high)")
        if not lo <= self.default_pos <= hi:
            raise ValueError(f"joint {self.name!r}: default_pos {self.default_pos} is outside "
                             f"pos_limit {self.pos_limit}")
        return self


class HeldJoint(Settings):
    """A joint the policy does not drive: its motor holds it at `default_pos` by PD (a
    humanoid's waist and arms while a leg policy walks, as unitree_rl_gym's 12-DoF G1)."""

    model_config = ConfigDict(frozen=True)

    name: str
    default_pos: float
    kp: float = Field(gt=0, description="position gain, N*m/rad")
    kd: float = Field(ge=0, description="velocity gain, N*m*s/rad")


class ModelSource(Settings):
    """Where an MJCF comes from and what the robot's parts are called in it.

    `path` is ``package:relative/path.xml`` for a file shipped in an installed package
    (found without importing the package), or a path relative to ``$MENAGERIE_ROOT`` when
    `menagerie` is true. `joints` lists the MJCF joint names in the spec's joint order,
    `held` those of the spec's held joints. A foot names a geom, or a body whose colliding
    geoms all make the foot (a humanoid's sole of several contact points).
    """

    model_config = ConfigDict(frozen=True)

    path: str
    menagerie: bool = False
    joints: tuple[str, ...]
    held: tuple[str, ...] = ()
    base_body: str | None = None
    feet: tuple[str, ...] = ()


class Mirror(Settings):
    """The robot's left-right mirror image (reflection through its sagittal plane), for
    policies trained with mirror symmetry: joint `i` of the mirrored robot is joint
    `joints[i]` times `joint_sign[i]` (a hip that abducts outward flips its sign), foot `i`
    is foot `feet[i]` (feet in the order of the model source's `feet`)."""

    model_config = ConfigDict(frozen=True)

    joints: tuple[int, ...]
    joint_sign: tuple[Literal[-1, 1], ...]
    feet: tuple[int, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Mirror:
        for name, perm in (("joints", self.joints), ("feet", self.feet)):
            if sorted(perm) != list(range(len(perm))) or any(
                    perm[perm[i]] != i for i in range(len(perm))):
                raise ValueError(f"mirror {name} {perm} must pair indices 0..{len(perm) - 1} "
                                 "(each the partner of its partner)")
        if len(self.joint_sign) != len(self.joints):
            raise ValueError(f"mirror joint_sign has {len(self.joint_sign)} entries for "
                             f"{len(self.joints)} joints")
        if any(self.joint_sign[self.joints[i]] != self.joint_sign[i]
               for i in range(len(self.joints))):
            raise ValueError("mirror joint_sign must be the same for a joint and its partner")
        return self


class UnitreeLowLevel(Settings):
    """How Unitree SDK2's low-level interface (`rt/lowcmd`, `rt/lowstate`) addresses this
    robot: the message family (`hg`: G1, H1-2; `go`: Go2, B2) and the spec joint or held
    joint each motor index drives, in motor index order."""

    model_config = ConfigDict(frozen=True)

    message: Literal["hg", "go"] = "hg"
    motors: tuple[str, ...]


class RobotSpec(Settings):
    """A robot as the controller sees it. Joint order here is the order of every joint
    vector: observations, actions, targets, firmware frames."""

    model_config = ConfigDict(frozen=True)

    name: str
    joints: tuple[JointSpec, ...]
    held: tuple[HeldJoint, ...] = ()
    action_scale: float = Field(gt=0, description="rad per unit action")
    control_hz: float = Field(gt=0)
    physics_hz: float = Field(gt=0)
    base_height: float | None = Field(default=None, description="standing base height, m")
    sources: dict[str, ModelSource]
    mirror: Mirror | None = None
    unitree: UnitreeLowLevel | None = None

    @model_validator(mode="after")
    def _check(self) -> RobotSpec:
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"physics_hz {self.physics_hz} must be a whole multiple of "
                             f"control_hz {self.control_hz}")
        names = [j.name for j in (*self.joints, *self.held)]
        if len(set(names)) != len(names):
            raise ValueError(f"joint names repeat: {names}")
        for key, src in self.sources.items():
            if len(src.joints) != len(self.joints):
                raise ValueError(f"source {key!r} names {len(src.joints)} joints, the spec has "
                                 f"{len(self.joints)}")
            if len(src.held) != len(self.held):
                raise ValueError(f"source {key!r} names {len(src.held)} held joints, the spec "
                                 f"has {len(self.held)}")
        if "default" not in self.sources:
            raise ValueError("sources needs a 'default' entry")
        if self.mirror is not None:
            if len(self.mirror.joints) != len(self.joints):
                raise ValueError(f"mirror names {len(self.mirror.joints)} joints, the spec "
                                 f"has {len(self.joints)}")
            feet = len(self.sources["default"].feet)
            if self.mirror.feet and len(self.mirror.feet) != feet:
                raise ValueError(f"mirror names {len(self.mirror.feet)} feet, the default "
                                 f"source has {feet}")
        if self.unitree is not None:
            motors = self.unitree.motors
            unknown = [m for m in motors if m not in names]
            missing = [j.name for j in self.joints if j.name not in motors]
            if unknown or missing or len(set(motors)) != len(motors):
                raise ValueError(f"unitree.motors must name each spec joint once (and may "
                                 f"name held joints): unknown {unknown}, missing {missing}")
        return self

    def unitree_motors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unitree motor index of each spec joint; of each held joint the motor table
        names, and where that joint is in `held`."""
        if self.unitree is None:
            raise ValueError(f"robot {self.name!r} has no Unitree motor table (spec field "
                             "'unitree')")
        index = {m: k for k, m in enumerate(self.unitree.motors)}
        held = [(index[h.name], i) for i, h in enumerate(self.held) if h.name in index]
        return (np.array([index[j.name] for j in self.joints], dtype=int),
                np.array([k for k, _ in held], dtype=int),
                np.array([i for _, i in held], dtype=int))

    @property
    def n_joints(self) -> int:
        """Actuated joints (degrees of freedom)."""
        return len(self.joints)

    @property
    def joint_names(self) -> list[str]:
        """Joint names in order."""
        return [j.name for j in self.joints]

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return round(self.physics_hz / self.control_hz)

    @property
    def control_dt(self) -> float:
        """Control period, s."""
        return 1.0 / self.control_hz

    @property
    def physics_dt(self) -> float:
        """Physics time step, s."""
        return 1.0 / self.physics_hz

    @property
    def default_pose(self) -> np.ndarray:
        """Default joint positions in joint order, rad (action 0's targets)."""
        return np.array([j.default_pos for j in self.joints])

    @property
    def held_pose(self) -> np.ndarray:
        """Where the held joints are held, in `held` order, rad."""
        return np.array([j.default_pos for j in self.held])
