"""Domain randomization for sim-to-real: the ranges (validated config), one seeded draw per
episode, and applying a draw to a compiled model. Off unless `enabled`; evaluation runs
with it off."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from pydantic import Field, field_validator, model_validator

from velora_robot.config import Settings
from velora_robot.robots.observation import RobotState
from velora_robot.simulation.model import ModelIndex

Range = tuple[float, float]

MAX_LATENCY_S = 0.5  # beyond this a loop is not controlling the robot any more

# Uniform noise half-widths at obs_noise_scale 1 (MuJoCo Playground's Go1 values).
NOISE = {"q": 0.03, "dq": 1.5, "gyro": 0.2, "gravity": 0.05}

# The parts of the randomization issue 7 names for Spot's walking test (friction 0.4-1.0,
# mass +-10 %, latency 0-20 ms, pushes): the standard ranges with payload, CoM shift,
# actuator scaling and sensor noise held nominal (`velora-robot eval --randomization core`).
CORE_NOMINAL = {"payload_kg": (0.0, 0.0), "com_shift_m": (0.0, 0.0),
                "motor_strength": (1.0, 1.0), "kp_scale": (1.0, 1.0), "kd_scale": (1.0, 1.0),
                "obs_noise_scale": 0.0}


def noise_widths(n_joints: int, scale: float) -> np.ndarray:
    """Half-widths for one draw of sensor noise laid out as [q, dq, gyro, gravity]."""
    sizes = {"q": n_joints, "dq": n_joints, "gyro": 3, "gravity": 3}
    return np.concatenate([np.full(sizes[k], v * scale) for k, v in NOISE.items()])


def add_noise(state: RobotState, draw: np.ndarray) -> RobotState:
    """`state` plus a noise draw (..., 2 n + 6) laid out as in `noise_widths`."""
    n = state.q.shape[-1]
    return RobotState(q=state.q + draw[..., :n], dq=state.dq + draw[..., n:2 * n],
                      gyro=state.gyro + draw[..., 2 * n:2 * n + 3],
                      gravity=state.gravity + draw[..., 2 * n + 3:])


class Randomization(Settings):
    """Ranges drawn once per episode (pushes: every `push_interval_s`)."""

    enabled: bool = False
    friction: Range = (0.4, 1.0)
    mass_scale: Range = (0.9, 1.1)
    payload_kg: Range = (-1.0, 1.0)
    com_shift_m: Range = (-0.05, 0.05)
    motor_strength: Range = (0.9, 1.1)
    kp_scale: Range = (0.9, 1.1)
    kd_scale: Range = (0.9, 1.1)
    # Actuation latency (a new target reaches the servos this long after it is sent) and
    # sensing latency (the observation is the state this long ago); whole physics steps.
    latency_s: Range = (0.0, 0.02)
    sensor_latency_s: Range = (0.0, 0.0)
    obs_noise_scale: float = Field(default=1.0, ge=0)
    push_interval_s: float = Field(default=15.0, gt=0)
    push_velocity: Range = (-1.0, 1.0)

    @field_validator("*")
    @classmethod
    def _ordered(cls, value: object, info: object) -> object:
        if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
            raise ValueError(f"inverted range {value}: write it as (low, high)")
        return value

    @model_validator(mode="after")
    def _physical(self) -> Randomization:
        for name in ("latency_s", "sensor_latency_s"):
            lo, hi = getattr(self, name)
            if lo < 0 or hi > MAX_LATENCY_S:
                raise ValueError(f"{name} {(lo, hi)}: latency must be within 0..{MAX_LATENCY_S}"
                                 " s")
        for name in ("friction", "mass_scale", "motor_strength", "kp_scale", "kd_scale"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"{name} {getattr(self, name)} must stay above 0")
        return self


    def extent(self, name: str) -> tuple[float, float]:
        """One entry as the range a controller meets: a range as it is; the sensor noise
        as (0, its scale); pushes, of either sign, as (0, their largest speed). A verified
        envelope (the model card's `trust`) is measured and checked in these terms."""
        value = getattr(self, name)
        if name == "obs_noise_scale":
            return 0.0, float(value)
        if name == "push_velocity":
            return 0.0, float(max(abs(value[0]), abs(value[1])))
        return float(value[0]), float(value[1])

    def narrowed(self, level: float) -> Randomization:
        """The ranges at curriculum `level`: 1 these, 0 each one's nominal end (no latency,
        no push, no payload or CoM shift, unit scales, the middle of the friction range,
        no sensor noise), linear in between."""
        if level >= 1.0:
            return self
        level = max(level, 0.0)
        changed: dict[str, object] = {"obs_noise_scale": self.obs_noise_scale * level}
        for name, nominal in _NOMINAL.items():
            lo, hi = getattr(self, name)
            c = (lo + hi) / 2 if nominal is None else min(max(nominal, lo), hi)
            changed[name] = (c - level * (c - lo), c + level * (hi - c))
        return self.model_copy(update=changed)


# Where each range narrows to at curriculum level 0 (None: its middle).
_NOMINAL = {"friction": None, "mass_scale": 1.0, "payload_kg": 0.0, "com_shift_m": 0.0,
            "motor_strength": 1.0, "kp_scale": 1.0, "kd_scale": 1.0, "latency_s": 0.0,
            "sensor_latency_s": 0.0, "push_velocity": 0.0}


@dataclass(frozen=True)
class Draw:
    """One episode's randomized physical parameters."""

    friction: float
    mass_scale: np.ndarray  # per body
    payload_kg: float
    com_shift_m: np.ndarray  # (3,)
    motor_strength: float
    kp_scale: float
    kd_scale: float
    latency_steps: int  # physics steps a new target waits before it reaches the servos
    sensor_latency_steps: int = 0  # physics steps the observed state lags the true one


# The model fields a draw sets (per robot in a batch).
RANDOMIZED = ("geom_friction", "body_mass", "body_inertia", "body_ipos", "actuator_gainprm",
              "actuator_biasprm", "actuator_forcerange")


class Randomizer:
    """Draws randomization and applies it to a model's fields, always from the model's
    nominal values."""

    def __init__(self, model: mujoco.MjModel, index: ModelIndex, config: Randomization) -> None:
        self.model, self.index, self.config = model, index, config
        self._nominal = {name: getattr(model, name).copy() for name in RANDOMIZED}

    def max_latency_steps(self) -> tuple[int, int]:
        """The most physics steps of actuation and of sensing latency a draw can give."""
        if not self.config.enabled:
            return 0, 0
        dt = self.model.opt.timestep
        return (round(self.config.latency_s[1] / dt),
                round(self.config.sensor_latency_s[1] / dt))

    def draw(self, rng: np.random.Generator) -> Draw:
        """A seeded draw from the configured ranges."""
        c = self.config
        u = lambda r: float(rng.uniform(*r))  # noqa: E731
        latency = u(c.latency_s)
        # Drawn only when it varies: ranges without sensing latency then draw exactly what
        # earlier versions drew (the shipped controllers' evaluations stay reproducible).
        lo, hi = c.sensor_latency_s
        sensing = lo if lo == hi else None
        return Draw(
            friction=u(c.friction),
            mass_scale=rng.uniform(*c.mass_scale, size=self.model.nbody),
            payload_kg=u(c.payload_kg),
            com_shift_m=rng.uniform(*c.com_shift_m, size=3),
            motor_strength=u(c.motor_strength), kp_scale=u(c.kp_scale), kd_scale=u(c.kd_scale),
            latency_steps=round(latency / self.model.opt.timestep),
            sensor_latency_steps=round((u(c.sensor_latency_s) if sensing is None else sensing)
                                       / self.model.opt.timestep),
        )

    def apply(self, draw: Draw | None, into: dict[str, np.ndarray] | None = None) -> None:
        """Set the fields in RANDOMIZED to `draw`, or back to nominal when `draw` is None:
        the model's own, or the arrays of `into` (one robot's rows of a batch)."""
        nominal = self._nominal
        f = into if into is not None else {name: getattr(self.model, name)
                                           for name in RANDOMIZED}
        for name, value in nominal.items():
            f[name][:] = value
        if draw is None:
            return
        f["geom_friction"][:, 0] = draw.friction
        f["body_mass"][:] *= draw.mass_scale
        f["body_inertia"][:] *= draw.mass_scale[:, None]
        base = self.index.base_body
        if base is not None:
            f["body_mass"][base] += draw.payload_kg
            f["body_ipos"][base] += draw.com_shift_m
        kp = nominal["actuator_gainprm"][:, 0] * draw.kp_scale * draw.motor_strength
        f["actuator_gainprm"][:, 0] = kp
        f["actuator_biasprm"][:, 1] = -kp
        f["actuator_biasprm"][:, 2] *= draw.kd_scale * draw.motor_strength
        f["actuator_forcerange"][:] *= draw.motor_strength
