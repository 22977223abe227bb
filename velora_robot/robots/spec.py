"""`RobotSpec`: the one source of truth for a robot — joints and their order, default pose,
PD gains, limits, action scale, rates and the observation layout. The env, the model card,
the runtime and the firmware configuration all read it."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from velora_robot.config import Settings

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


ObsName = Literal["gyro", "gravity", "joint_pos", "joint_vel", "last_action", "command",
                  "gait_clock"]


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


class ObsTerm(Settings):
    """One block of the actor observation, multiplied by `scale`."""

    model_config = ConfigDict(frozen=True)

    name: ObsName
    scale: float = 1.0


class ModelSource(Settings):
    """Where an MJCF comes from and what the robot's parts are called in it.

    `path` is ``package:relative/path.xml`` for a file shipped in an installed package
    (found without importing the package), or a path relative to ``$MENAGERIE_ROOT`` when
    `menagerie` is true. `joints` lists the MJCF joint names in the spec's joint order.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    menagerie: bool = False
    joints: tuple[str, ...]
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


class RobotSpec(Settings):
    """A robot as the controller sees it. Joint order here is the order of every joint
    vector: observations, actions, targets, firmware frames."""

    model_config = ConfigDict(frozen=True)

    name: str
    joints: tuple[JointSpec, ...]
    action_scale: float = Field(gt=0, description="rad per unit action")
    control_hz: float = Field(gt=0)
    physics_hz: float = Field(gt=0)
    observation: tuple[ObsTerm, ...]
    commands: tuple[str, ...] = ()
    base_height: float | None = Field(default=None, description="standing base height, m")
    # A gait clock (cos, sin of 2 pi gait_hz t, t from the start of the policy's episode)
    # gives a walking policy its rhythm; set when the layout has a `gait_clock` term.
    gait_hz: float | None = Field(default=None, gt=0)
    sources: dict[str, ModelSource]
    mirror: Mirror | None = None

    @model_validator(mode="after")
    def _check(self) -> RobotSpec:
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"physics_hz {self.physics_hz} must be a whole multiple of "
                             f"control_hz {self.control_hz}")
        names = [j.name for j in self.joints]
        if len(set(names)) != len(names):
            raise ValueError(f"joint names repeat: {names}")
        for key, src in self.sources.items():
            if len(src.joints) != len(self.joints):
                raise ValueError(f"source {key!r} names {len(src.joints)} joints, the spec has "
                                 f"{len(self.joints)}")
        if "default" not in self.sources:
            raise ValueError("sources needs a 'default' entry")
        if any(t.name == "gait_clock" for t in self.observation) and self.gait_hz is None:
            raise ValueError("the observation has a gait_clock term: set gait_hz")
        if self.mirror is not None:
            if len(self.mirror.joints) != len(self.joints):
                raise ValueError(f"mirror names {len(self.mirror.joints)} joints, the spec "
                                 f"has {len(self.joints)}")
            feet = len(self.sources["default"].feet)
            if self.mirror.feet and len(self.mirror.feet) != feet:
                raise ValueError(f"mirror names {len(self.mirror.feet)} feet, the default "
                                 f"source has {feet}")
        return self

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

    def obs_sizes(self) -> dict[str, int]:
        """Size of each observation block, in layout order."""
        n = self.n_joints
        size = {"gyro": 3, "gravity": 3, "joint_pos": n, "joint_vel": n, "last_action": n,
                "command": len(self.commands), "gait_clock": 2}
        return {t.name: size[t.name] for t in self.observation}

    @property
    def obs_dim(self) -> int:
        """Length of the actor observation vector."""
        return sum(self.obs_sizes().values())
