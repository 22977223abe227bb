"""Tasks and their gymnasium environments.

A `VecTask` holds a batch of simulated robots and computes commands, observations, rewards
and terminations for all of them at once with numpy, so the Python cost per robot and step
is little more than MuJoCo's. `RobotEnv` is the gymnasium environment: a batch of one.

The actor sees only what the real robot measures: the task's policy interface (observation
terms, commands, gait clock; `interface`), built by the shared `RobotIO`, which the model card
carries to the robot. `privileged()` offers simulator truth for critics. Rewards are
weighted terms times the control period; each weighted term is reported.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field, field_validator, model_validator

from velora_robot.config import Settings, merge, parse
from velora_robot.errors import ConfigError
from velora_robot.robots.interface import PolicyInterface, check_command
from velora_robot.robots.limits import JointLimits
from velora_robot.robots.observation import RobotIO
from velora_robot.robots.sources import get_spec
from velora_robot.simulation.backend import Simulator
from velora_robot.simulation.physics import Physics
from velora_robot.simulation.randomization import Randomization, Range, add_noise, noise_widths
from velora_robot.simulation.robot import Measurement


class EnvConfig(Settings):
    """Every setting of an environment; unknown fields are refused."""

    robot: str
    # The policy interface: observation terms (registered in robots/terms.py) and scales,
    # command names, the gait clock's rate. The task's defaults set it.
    interface: PolicyInterface
    source: str = "default"
    variant: Literal["fast", "full"] = "fast"
    episode_s: float = Field(default=20.0, gt=0)
    command_ranges: dict[str, Range] = Field(default_factory=dict)
    command_resample_s: float = Field(default=4.0, gt=0)
    # Each drawn command component is set to zero with this probability, on its own: a
    # joystick is mostly pushed along one axis, or let go (MuJoCo Playground draws 10 % zero
    # commands), and uniform draws over three axes almost never ask for that.
    command_zero_prob: float = Field(default=0.0, ge=0, le=1)
    reward_weights: dict[str, float] = Field(default_factory=dict)
    # legged_gym's and MuJoCo Playground's guard: a step's reward is clipped at zero, so
    # ending an episode early never pays (without it, penalties teach the robot to fall).
    only_positive_rewards: bool = False
    min_base_height: float | None = None
    min_upright: float = Field(default=-1.0, ge=-1, le=1)
    randomization: Randomization = Randomization()
    # Contact and solver settings over the MJCF's own (all unset: the MJCF's).
    physics: Physics = Physics()

    @field_validator("robot")
    @classmethod
    def _known_robot(cls, name: str) -> str:
        get_spec(name)
        return name

    @model_validator(mode="after")
    def _commands(self) -> EnvConfig:
        names = self.interface.commands
        for name, (lo, hi) in self.command_ranges.items():
            for value in (lo, hi):
                check_command({name: value}, names, "command_ranges")
            if lo > hi:
                raise ValueError(f"command_ranges.{name}: inverted range {(lo, hi)}")
        return self


class VecTask:
    """A task over `n` robots simulated by `sim` (default: MuJoCo on one native thread).
    Subclasses set DEFAULTS (config) and REWARDS (term -> weight), implement
    `_reward_terms`, and may override the command hooks."""

    CONFIG: ClassVar[type[EnvConfig]] = EnvConfig  # a task family may add its own fields
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    REWARDS: ClassVar[dict[str, float]] = {}
    # Whether the commands are drawn from `command_ranges` (a task that makes its own, such
    # as a reference trajectory, refuses the setting instead of ignoring it).
    RANGED_COMMANDS: ClassVar[bool] = True
    # What the task's `tracking_error` info measures, with its unit (None: it has none).
    TRACKING_ERROR: ClassVar[str | None] = None

    def __init__(self, n: int, config: EnvConfig | dict[str, Any] | None = None, *,
                 sim: Simulator | None = None, **settings: Any) -> None:
        given = config.model_dump() if isinstance(config, EnvConfig) else dict(config or {})
        self.config = self.settings(merge(given, settings), f"{type(self).__name__} config")
        self.weights = {**self.REWARDS, **self.config.reward_weights}
        self.spec = get_spec(self.config.robot)
        self.batch = (sim or Simulator()).batch(
            self.spec, n, source=self.config.source, variant=self.config.variant,
            physics=self.config.physics, randomization=self.config.randomization)
        self.interface = self.config.interface
        self.io = RobotIO(self.spec, self.interface)
        self.limits = JointLimits(self.spec, self.spec.control_dt)
        self.n = n
        dt = self.spec.control_dt
        self.dt = dt
        self.max_steps = round(self.config.episode_s / dt)
        self._resample_steps = max(1, round(self.config.command_resample_s / dt))
        self._push_steps = max(1, round(self.config.randomization.push_interval_s / dt))
        self.randomization_level = np.array(1.0)  # the curriculum's (1: the full ranges)
        self.set_randomization_level(1.0)
        self.rngs = [np.random.default_rng(i) for i in range(n)]
        self.command = np.zeros((n, len(self.interface.commands)))
        self.last_action = np.zeros((n, self.spec.n_joints))
        self.last_target = np.tile(self.io.q0, (n, 1))
        self.steps = np.zeros(n, dtype=int)
        # Each robot's last shove (randomization pushes): its step in the episode (-1: none
        # yet) and its speed (m/s), so an evaluation can tell a shove's falls from others.
        self.shove_step = np.full(n, -1)
        self.shove_mps = np.zeros(n)
        self._physics = np.tile([1.0, 0.0, 1.0, 1.0, 0.0, 0.0], (n, 1))  # privileged, per episode
        self._measured: Measurement | None = None

    @classmethod
    def settings(cls, given: dict[str, Any], where: str) -> EnvConfig:
        """This task's config: its defaults updated by `given`, validated (errors start
        with `where` and name the field)."""
        config = parse(cls.CONFIG, merge(cls.DEFAULTS, given), where)
        unknown = sorted(set(config.reward_weights) - set(cls.REWARDS))
        if unknown:
            raise ConfigError(f"{where}: field 'reward_weights': unknown term(s) {unknown}; "
                              f"terms are {sorted(cls.REWARDS)}")
        for field in ("command_ranges", "command_zero_prob"):
            if getattr(config, field) and not cls.RANGED_COMMANDS:
                raise ConfigError(f"{where}: field '{field}': {cls.__name__} makes its own "
                                  "commands (a reference trajectory); they cannot be set")
        return config

    @classmethod
    def policy_interface(cls, given: dict[str, Any] | None = None) -> PolicyInterface:
        """The policy interface of this task configured by `given` (default: its own)."""
        return cls.settings(given or {}, f"{cls.__name__} config").interface

    @classmethod
    def mirror_maps(cls, given: dict[str, Any], where: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Index and sign arrays of the mirror image of this task's observation and action
        (see `robots.observation.mirror_maps`), for training with mirror symmetry. Raises
        ConfigError when the task is not left-right symmetric."""
        raise ConfigError(f"{where}: {cls.__name__} is not left-right symmetric: "
                          "mirror symmetry does not apply")

    # ------------------------------------------------------------ control
    def reset(self, i: int, seed: int | None = None) -> None:
        """Start a new episode for robot `i` (reseeding its generator when `seed` is given)."""
        if seed is not None:
            self.rngs[i] = np.random.default_rng(seed)
        self.batch.reset(i, self.rngs[i])
        draw = self.batch.draws[i]
        if draw is not None:
            self._physics[i] = [draw.friction, draw.payload_kg, draw.motor_strength,
                                draw.kp_scale, draw.latency_steps * self.spec.physics_dt,
                                draw.sensor_latency_steps * self.spec.physics_dt]
        self.steps[i] = 0
        self.shove_step[i] = -1
        self.last_action[i] = 0.0
        self._measured = None
        self._reset_task(i)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 dict[str, np.ndarray]]:
        """Apply actions (n, n_joints) for one control period; returns reward, terminated,
        truncated (each (n,)) and the weighted reward terms."""
        actions = np.clip(actions, -1.0, 1.0)
        # The robot's safety layer limits each target from the previous one and the measured
        # state; training under the same limits leaves no gap (an episode's first target is
        # limited from the measured pose, as the runtime's start without a ramp).
        state = self._measurement().state
        fresh = self.steps == 0
        self.last_target[fresh] = self.limits.start(state.q[fresh])
        self.last_target = self.limits.apply(self.io.targets(actions), self.last_target,
                                             state.q, state.dq)
        self.batch.step(self.last_target)
        self.steps += 1
        rand = self.randomization
        if rand.enabled:
            for i in np.nonzero(self.steps % self._push_steps == 0)[0]:
                shove = self.rngs[i].uniform(*rand.push_velocity, size=2)
                self.batch.push(i, shove)
                self.shove_step[i], self.shove_mps[i] = self.steps[i], np.linalg.norm(shove)
        m = self._measured = self.batch.measure()
        terms = {k: self.weights[k] * v * self.dt
                 for k, v in self._reward_terms(m, actions).items()}
        self.last_action = actions
        terminated = self._terminated(m)
        truncated = self.steps >= self.max_steps
        resample = np.nonzero(self.steps % self._resample_steps == 0)[0]
        if len(resample):
            self._update_command(resample)
        self._advance_command()
        reward = sum(terms.values())
        if self.config.only_positive_rewards:
            reward = np.maximum(reward, 0.0)
        return reward, terminated, truncated, terms

    def set_randomization_level(self, level: float) -> None:
        """Narrow the randomization (`Randomization.narrowed`): 0 the nominal robot, 1 the
        configured ranges. Episodes drawn from then on use it; pushes and sensor noise at
        once."""
        self.randomization_level = np.array(float(level))
        rand = self.randomization = self.config.randomization.narrowed(level)
        self.batch.randomizer.config = rand
        self._noise = (noise_widths(self.spec.n_joints, rand.obs_noise_scale)
                       if rand.enabled and rand.obs_noise_scale > 0 else None)

    def observe(self) -> np.ndarray:
        """Actor observations (n, obs_dim), with sensor noise when randomization is on."""
        state = self._measurement().state
        if self._noise is not None:
            # Each robot's own generator, as rng.uniform(-w, w) draws it (the same bits: it
            # is -w + 2w U), but filled in place: 10x cheaper per robot, which at thousands
            # of robots was most of the task's host time.
            u = np.empty((self.n, len(self._noise)))
            for rng, row in zip(self.rngs, u, strict=True):
                rng.random(out=row)
            state = add_noise(state, -self._noise + 2 * self._noise * u)
        return self.io.observation(state, self.last_action, self.command,
                                   self.steps * self.dt)

    def privileged(self) -> np.ndarray:
        """Simulator truth for critics (n, 14 + feet): base velocity and height, foot
        contacts, and each episode's friction, payload, motor strength, kp scale, and the
        actuation and sensing latency applied (s)."""
        m = self._measurement()
        return np.concatenate([m.base_lin_vel, m.base_pos[:, 2:], m.contacts, self._physics],
                              axis=1).astype(np.float32)

    def _measurement(self) -> Measurement:
        """The robots' latest measurement, taken once per step or reset."""
        if self._measured is None:
            self._measured = self.batch.measure()
        return self._measured

    def info(self) -> dict[str, np.ndarray]:
        """Task-specific per-robot values for `info` (none by default). A task's
        `tracking_error` (this period's, in the task's units) is averaged over each episode
        by the batched env: a curriculum may require it (`curriculum.max_tracking_error`)."""
        return {}

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here: the robots, the task's arrays
        and the random generators (checkpoints use it for an exact resume)."""
        arrays = {k: v.copy() for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return {"robots": self.batch.get_state(), "arrays": arrays,
                "rngs": [rng.bit_generator.state for rng in self.rngs]}

    def set_state(self, saved: dict[str, Any]) -> None:
        """Restore a `get_state()` result."""
        self.batch.set_state(saved["robots"])
        for key, value in saved["arrays"].items():
            setattr(self, key, value.copy())
        for rng, state in zip(self.rngs, saved["rngs"], strict=True):
            rng.bit_generator.state = state
        self.set_randomization_level(float(self.randomization_level))
        self._measured = None

    # ------------------------------------------------------------- hooks
    def _reset_task(self, i: int) -> None:
        """Start of robot i's episode: draw its first command."""
        self._update_command(np.array([i]))

    def _update_command(self, ids: np.ndarray) -> None:
        """Draw new commands for robots `ids` from the configured ranges."""
        ranges, zero_prob = self.config.command_ranges, self.config.command_zero_prob
        for i in ids:
            self.command[i] = [self.rngs[i].uniform(*ranges.get(name, (0.0, 0.0)))
                               for name in self.interface.commands]
            if zero_prob > 0:  # (without it the generator's stream is the same as before)
                self.command[i][self.rngs[i].random(len(self.command[i])) < zero_prob] = 0.0

    def _advance_command(self) -> None:
        """Move time-varying commands forward one control step (constant by default)."""

    def _terminated(self, m: Measurement) -> np.ndarray:
        """Fallen: the base tilted past `min_upright` or sank below `min_base_height`; or
        the simulation diverged (MuJoCo warned)."""
        fallen = (-m.state.gravity[:, 2] < self.config.min_upright) | self.batch.unstable
        if self.config.min_base_height is not None:
            fallen |= m.base_pos[:, 2] < self.config.min_base_height
        return fallen

    def _reward_terms(self, m: Measurement, action: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


class RobotEnv(gym.Env[np.ndarray, np.ndarray]):
    """The gymnasium environment of a task: a batch of one robot."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}
    TASK: ClassVar[type[VecTask]]

    def __init__(self, config: EnvConfig | dict[str, Any] | None = None,
                 render_mode: str | None = None, **settings: Any) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"{type(self).__name__}: render_mode must be None or "
                              f"'rgb_array', got {render_mode!r}")
        self.task = self.TASK(1, config, **settings)
        self.render_mode = render_mode
        self.config, self.robot_spec = self.task.config, self.task.spec
        self.robot = self.task.batch.view(0)
        self.metadata = {**self.metadata, "render_fps": round(self.robot_spec.control_hz)}
        n = self.robot_spec.n_joints
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.task.io.obs_dim,),
                                                dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.task.rngs[0] = self.np_random  # gymnasium's seeding drives the task
        self.task.reset(0)
        return self.task.observe()[0], {"command": self.task.command[0].copy()}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=float)
        if action.shape != self.action_space.shape or not np.isfinite(action).all():
            raise ValueError(f"{type(self).__name__}: action must be {self.action_space.shape} "
                             f"finite values, got shape {action.shape}: {action}")
        reward, terminated, truncated, terms = self.task.step(action[None])
        info: dict[str, Any] = {"reward_terms": {k: float(v[0]) for k, v in terms.items()},
                                "command": self.task.command[0].copy()}
        info.update({k: float(v[0]) for k, v in self.task.info().items()})
        return (self.task.observe()[0], float(reward[0]), bool(terminated[0]),
                bool(truncated[0]), info)

    def privileged(self) -> np.ndarray:
        """Simulator truth for critics (see `VecTask.privileged`)."""
        return self.task.privileged()[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self.robot.render()
        return None

    def close(self) -> None:
        self.robot.close()
