"""Training recipes: every setting of a run in one validated YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from velora_robot.config import Settings, merge, parse, read_file
from velora_robot.errors import ConfigError
from velora_robot.simulation.backend import Simulator


class _Section(Settings):
    """A recipe section."""


class EnvSection(_Section):
    """Which environment, how many copies, in how many processes, and how its robots are
    simulated (velora_robot envs): `backend` mujoco steps them on `threads` native threads
    per process, warp on MuJoCo Warp on the recipe's `device`."""

    id: str
    n_envs: int = Field(default=8, ge=1)
    n_workers: int = Field(default=1, ge=1)
    threads: int = Field(default=1, ge=1, le=256)
    backend: Literal["mujoco", "warp"] = "mujoco"
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def simulator(self, device: str = "cpu") -> Simulator:
        """The simulation backend this section asks for, Warp's on `device`."""
        return Simulator(self.backend, self.threads, device)

    @field_validator("id")
    @classmethod
    def _registered(cls, env_id: str) -> str:
        import importlib

        import gymnasium as gym

        import velora_robot.envs  # noqa: F401  (registers the velora_robot ids)

        module, _, name = env_id.rpartition(":")
        if module:  # gymnasium's "package.module:EnvId": the module registers the id
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ValueError(f"cannot import {module!r} for environment {name!r}: "
                                 f"{exc}") from None
        if name not in gym.registry:
            near = [k for k in gym.registry if name.split("-")[0].lower() in k.lower()][:3]
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            where = f" (importing {module!r} did not register it)" if module else ""
            raise ValueError(f"unknown environment {name!r}{where}{hint}")
        return env_id

    @model_validator(mode="after")
    def _env_settings(self) -> EnvSection:
        """A velora_robot env's settings are checked now, not when the run has started."""
        from velora_robot.envs import ENV_IDS

        if self.id in ENV_IDS:
            try:
                config = ENV_IDS[self.id].TASK.settings(self.kwargs, "kwargs")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            if self.backend == "warp" and config.physics.solver == "PGS":
                raise ValueError("backend 'warp': MuJoCo Warp has no PGS solver; set "
                                 "kwargs.physics.solver to CG or Newton")
        else:
            if self.backend != "mujoco":
                raise ValueError(f"backend {self.backend!r} simulates velora_robot envs; "
                                 f"{self.id} is a gymnasium env (drop `backend`)")
            if self.n_workers > 1:
                raise ValueError(f"n_workers {self.n_workers}: {self.id} is a gymnasium env, "
                                 "stepped in this process (worker processes serve "
                                 "velora_robot envs); set n_workers: 1")
        if self.backend == "warp" and self.n_workers > 1:
            raise ValueError("backend 'warp' simulates every robot in one process; n_workers "
                             "must be 1")
        return self


class PolicySection(_Section):
    """The actor (liquid LTC-NCP, or an MLP or linear baseline) and the critic. `linear`
    is one affine map from observation to action: the liquid actor's bypass alone."""

    kind: Literal["liquid", "mlp", "linear"] = "liquid"
    n_neurons: int | None = Field(default=None, ge=2)
    neurons_per_dof: Literal[1, 2] = 1
    wiring_seed: int = Field(default=0, ge=0)
    # How dense the NCP is (liquid/wiring.py): targets per input among the inter neurons,
    # per inter neuron among the command neurons, and per command neuron among other
    # joints' command neurons.
    sensory_fanout: int = Field(default=4, ge=1)
    inter_fanout: int = Field(default=4, ge=1)
    cross_joint_fanout: int = Field(default=1, ge=0)
    residual: bool = True
    ode_unfolds: int = Field(default=6, ge=1)
    compiled: bool = False
    hidden: list[int] = Field(default_factory=lambda: [64, 64])
    critic_hidden: list[int] = Field(default_factory=lambda: [64, 64])
    init_log_std: float = -0.5
    privileged_critic: bool = True


class PPOSection(_Section):
    """PPO hyperparameters (paper / rsl_rl names)."""

    name: Literal["ppo"] = "ppo"
    steps_per_env: int = Field(default=64, ge=1)
    chunk_len: int = Field(default=16, ge=1)
    epochs: int = Field(default=5, ge=1)
    minibatches: int = Field(default=4, ge=1)
    lr: float = Field(default=3e-4, gt=0)
    clip_param: float = Field(default=0.2, gt=0)
    value_clip: float = Field(default=0.2, gt=0)
    gamma: float = Field(default=0.99, gt=0, le=1)
    lam: float = Field(default=0.95, ge=0, le=1)
    entropy_coef: float = Field(default=0.0, ge=0)
    value_coef: float = Field(default=1.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    desired_kl: float | None = Field(default=0.01, gt=0)
    bound_coef: float = Field(default=0.0, ge=0)
    # Exploration noise held at this standard deviation instead of learned (a low-noise
    # fine-tuning stage, so that training acts as the deterministic robot will); None: the
    # actor's learned log_std.
    action_std: float | None = Field(default=None, gt=0, le=1)
    # The env step from which `action_std` holds (before it, the learned noise explores):
    # one run that explores widely, then acts as the robot will.
    action_std_from: int = Field(default=0, ge=0)
    # Teach the actor the robot's mirror symmetry (rl/symmetry.py) with a loss weighted by
    # symmetry_coef; the task must be left-right symmetric (SpotWalk is).
    symmetry: bool = False
    symmetry_coef: float = Field(default=1.0, ge=0)
    # Collect the next rollout while learning from this one (physics and learning overlap):
    # the policy acting is then one update behind the one learning, which PPO's ratio of
    # probabilities accounts for.
    overlap: bool = False
    # Distillation (rl/teacher.py): until `teacher_until` env steps the actor learns to act
    # as this exported liquid policy (.onnx or kernel .npz) does on the states the actor
    # visits itself (DAgger), the critic learns values as usual; PPO takes over after.
    teacher: str | None = None
    teacher_until: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _chunks(self) -> PPOSection:
        if self.steps_per_env % self.chunk_len:
            raise ValueError(f"steps_per_env ({self.steps_per_env}) must be a multiple of "
                             f"chunk_len ({self.chunk_len})")
        if self.teacher is not None and not self.teacher_until:
            raise ValueError("a teacher needs teacher_until: the env step until which the "
                             "actor imitates it")
        if self.teacher is not None and self.overlap:
            raise ValueError("teacher and overlap cannot be combined (the teacher labels "
                             "each rollout as it is collected); drop one")
        return self


class _OffPolicySection(_Section):
    """Shared off-policy settings: replay of sequences with stored actor states and
    burn-in (R2D2), MLP twin critics."""

    lr: float = Field(default=3e-4, gt=0)
    gamma: float = Field(default=0.99, gt=0, le=1)
    tau: float = Field(default=0.005, gt=0, le=1)
    batch_size: int = Field(default=256, ge=1)
    seq_len: int = Field(default=16, ge=1, description="steps that carry the loss")
    burn_in: int = Field(default=8, ge=0, description="steps that only refresh the state")
    buffer_size: int = Field(default=200_000, ge=1, description="env steps, all envs")
    learning_starts: int = Field(default=5_000, ge=0, description="random-action env steps")
    updates_per_step: int = Field(default=1, ge=1, description="per vector step")
    steps_per_iteration: int = Field(default=64, ge=1, description="vector steps per log line")
    critic: Literal["mlp", "liquid"] = "mlp"
    critic_hidden: list[int] = Field(default_factory=lambda: [256, 256])
    critic_neurons: int = Field(default=16, ge=3)


class SACSection(_OffPolicySection):
    """SAC: automatic entropy temperature from `init_alpha`."""

    name: Literal["sac"]
    init_alpha: float = Field(default=0.2, gt=0)


class TD3Section(_OffPolicySection):
    """TD3: delayed policy updates, target policy smoothing, exploration noise."""

    name: Literal["td3"]
    policy_delay: int = Field(default=2, ge=1)
    policy_noise: float = Field(default=0.2, ge=0)
    noise_clip: float = Field(default=0.5, ge=0)
    exploration_noise: float = Field(default=0.1, ge=0)


def _algorithm_name(value: Any) -> str:
    """PPO unless the section names another algorithm."""
    if isinstance(value, dict):
        return value.get("name", "ppo")
    return getattr(value, "name", "ppo")


Algorithm = Annotated[
    Annotated[PPOSection, Tag("ppo")] | Annotated[SACSection, Tag("sac")]
    | Annotated[TD3Section, Tag("td3")],
    Discriminator(_algorithm_name),
]


class BudgetSection(_Section):
    """When the run stops."""

    env_steps: int = Field(gt=0)


class LoggingSection(_Section):
    """Where the run writes and how often it checkpoints."""

    dir: str = "runs"
    checkpoint_every: int = Field(default=10, ge=1, description="updates")
    wandb: bool = False
    wandb_project: str = "velora-robot"
    tensorboard: bool = False  # scalars under runs/<name>/tensorboard


class EvalSection(_Section):
    """Deterministic evaluation (seeded episodes, mean actions) at the end of the run and,
    with `every`, every that many updates during it (`eval_return` in the metrics and the
    curve); videos of it with `video_every`."""

    episodes: int = Field(default=10, ge=0)
    every: int | None = Field(default=None, ge=1, description="updates")
    # A GIF of one deterministic episode every `video_every` updates (runs/<name>/videos/;
    # also to W&B when logging there), at most `video_s` long; off-screen rendering.
    video_every: int | None = Field(default=None, ge=1, description="updates")
    video_s: float = Field(default=4.0, gt=0, le=60)


class CurriculumSection(_Section):
    """Randomization that starts narrow and widens as the policy succeeds (velora_robot envs
    with randomization on): the ranges start at `start` (0: the nominal robot, 1: the env's
    full ranges; `Randomization.narrowed`) and widen by `step` each time at least `success`
    of the last `window` episodes that ended ran to their time limit, instead of falling,
    with a return of at least `min_return` and a mean tracking error of at most
    `max_tracking_error` (the task's units: m/s of planar velocity for the walkers) where
    set (standing still survives too). Only episodes that began at the present level
    count."""

    start: float = Field(default=0.0, ge=0, le=1)
    min_return: float | None = None
    max_tracking_error: float | None = Field(default=None, gt=0)
    step: float = Field(default=0.1, gt=0, le=1)
    success: float = Field(default=0.8, gt=0, le=1)
    window: int = Field(default=50, ge=1)


class ClusterSection(_Section):
    """Rollouts on Ray (rl/ray_rollouts.py): `workers` Ray actors, each simulating its share of
    `env.n_envs` robots with a CPU copy of the actor; this process learns. `address`: None
    starts a Ray instance on this machine; "auto" joins the cluster this machine belongs to
    (`ray start --head` on one machine, `ray start --address HEAD:6379` on the others);
    "ray://HOST:10001" connects from outside it."""

    workers: int = Field(default=2, ge=1, le=1024)
    address: str | None = None
    cpus_per_worker: float = Field(default=1.0, gt=0)


class Recipe(_Section):
    """A whole training run."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(default=0, ge=0)
    # Torch threads for learning (PPO's update, which runs while the env workers wait; the
    # fused liquid kernel splits its batch over them too). Collection keeps one: there the
    # env's worker processes own the cores.
    threads: int = Field(default=1, ge=1, le=64, description="torch threads for learning")
    # Where MuJoCo Warp simulates (env.backend warp): "cpu", "cuda", "cuda:1".
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda(:[0-9]+)?)$")
    env: EnvSection
    policy: PolicySection = PolicySection()
    algorithm: Algorithm = PPOSection()
    budget: BudgetSection
    logging: LoggingSection = LoggingSection()
    eval: EvalSection = EvalSection()
    curriculum: CurriculumSection | None = None
    cluster: ClusterSection | None = None
    # A curriculum stage: the actor, critic and observation normalizer of an earlier run's
    # checkpoint start this run (same env dimensions and policy section); the optimizer,
    # counters and episodes start fresh. Unused on --resume.
    init_from: str | None = None

    @model_validator(mode="after")
    def _cluster_runs_plain_ppo(self) -> Recipe:
        if self.cluster is None:
            return self
        algo = self.algorithm
        if not isinstance(algo, PPOSection):
            raise ValueError(f"cluster: Ray rollouts serve PPO; {algo.name} learns from a "
                             "replay between steps (drop `cluster`)")
        extras = [name for name, on in (("symmetry", algo.symmetry), ("overlap", algo.overlap),
                                        ("teacher", algo.teacher is not None)) if on]
        if extras:
            raise ValueError(f"cluster: Ray rollouts do not combine with algorithm."
                             f"{', algorithm.'.join(extras)} (drop one)")
        if self.env.backend != "mujoco":
            raise ValueError(f"cluster: Ray workers simulate on the mujoco backend; drop "
                             f"env.backend {self.env.backend!r} or `cluster`")
        if self.env.n_workers > 1:
            raise ValueError("cluster: the Ray workers split env.n_envs among themselves; "
                             "env.n_workers must be 1")
        if self.cluster.workers > self.env.n_envs:
            raise ValueError(f"cluster.workers ({self.cluster.workers}) exceeds env.n_envs "
                             f"({self.env.n_envs}): each worker needs a robot")
        return self

    @model_validator(mode="after")
    def _curriculum_needs_randomization(self) -> Recipe:
        from velora_robot.envs import ENV_IDS

        if self.curriculum is None:
            return self
        if self.env.id not in ENV_IDS:
            raise ValueError("curriculum: widens a velora_robot env's randomization; "
                             f"{self.env.id} is not one")
        config = ENV_IDS[self.env.id].TASK.settings(self.env.kwargs, "env.kwargs")
        if not config.randomization.enabled:
            raise ValueError("curriculum: the env's randomization is off (set "
                             "env.kwargs.randomization.enabled: true)")
        if self.curriculum.max_tracking_error is not None and \
                ENV_IDS[self.env.id].TASK.TRACKING_ERROR is None:
            raise ValueError(f"curriculum.max_tracking_error: {self.env.id}'s task reports no "
                             "tracking error; gate on min_return instead")
        return self

    @property
    def run_dir(self) -> Path:
        """runs/<name> by default."""
        return Path(self.logging.dir) / self.name


def load_recipe(path: str | Path) -> Recipe:
    """A recipe file, validated; errors name the file and the field. A recipe may start
    with `extends: OTHER.yaml` (relative to its own file): it is that recipe with the
    fields it writes changed, nested sections merged key by key (a curriculum stage)."""
    return parse(Recipe, _recipe_data(Path(path), ()), str(path),
                 tags=frozenset({"ppo", "sac", "td3"}))


def _recipe_data(path: Path, chain: tuple[Path, ...]) -> Any:
    """The fields of the recipe at `path`, those of the recipes it extends merged in."""
    data = read_file(path)
    if not isinstance(data, dict) or "extends" not in data:
        return data
    data = dict(data)
    extends = data.pop("extends")
    if not isinstance(extends, str):
        raise ConfigError(f"{path}: field 'extends': expected a recipe file name, got "
                          f"{extends!r}")
    base = path.parent / extends
    if not base.is_file():
        raise ConfigError(f"{path}: field 'extends': no recipe at {base}")
    chain = (*chain, path.resolve())
    if base.resolve() in chain:
        raise ConfigError(f"{path}: field 'extends': {base} extends this recipe in turn "
                          "(a cycle)")
    parent = _recipe_data(base, chain)
    if not isinstance(parent, dict):
        raise ConfigError(f"{base}: expected a mapping of settings, got "
                          f"{type(parent).__name__}")
    return merge(parent, data)
