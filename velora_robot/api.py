"""The Python API in Stable-Baselines3's habit: `PPO(env, policy)`, `learn`, `save`, `load`,
`predict`, `export`. A model is a training recipe (`model.recipe`, the same validated object
a YAML file gives `velora-robot train`) run by the same trainer, so everything written with
the API can be written as a recipe file and the other way round (`PPO.from_recipe`).

>>> from velora_robot import PPO
>>> model = PPO("Pendulum-v1", "liquid", n_envs=4, n_neurons=8, steps_per_env=16,
...             run_dir=tmp / "pendulum", verbose=0)
>>> model.learn(128).num_timesteps
128
>>> action, state = model.predict(np.zeros(3, dtype=np.float32))
>>> action.shape, state.shape
((1,), (8,))
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from velora_robot.config import parse
from velora_robot.errors import ConfigError

# Keyword arguments that configure the policy section (the rest configure the algorithm).
_POLICY_FIELDS = ("n_neurons", "neurons_per_dof", "wiring_seed", "sensory_fanout",
                  "inter_fanout", "cross_joint_fanout", "residual", "ode_unfolds",
                  "compiled", "init_log_std", "hidden", "critic_hidden",
                  "privileged_critic")


class _Model:
    """A model of one algorithm (PPO, SAC or TD3); see the module docstring."""

    algorithm: ClassVar[str]

    def __init__(self, env: str, policy: str = "liquid", *, n_envs: int = 8, seed: int = 0,
                 env_kwargs: dict[str, Any] | None = None, run_dir: str | Path | None = None,
                 verbose: int = 1, **kwargs: Any) -> None:
        """`env`: a gymnasium id (`velora_robot/SpotWalk-v0`, `Pendulum-v1`, or a user env
        as `package.module:EnvId`); `policy`: liquid, mlp or linear. Other keywords are
        the recipe's policy fields (`n_neurons`, `hidden`, ...) and algorithm fields
        (`lr`, `gamma`, `steps_per_env`, ...). The run's files go to `run_dir`
        (default runs/<env>_<algorithm>)."""
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", env.rsplit("/", 1)[-1].split(":")[-1]).lower()
        folder = Path(run_dir) if run_dir is not None else Path("runs") / \
            f"{name}_{self.algorithm}"
        policy_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in _POLICY_FIELDS}
        recipe = self._recipe({
            "name": folder.name, "seed": seed,
            "env": {"id": env, "n_envs": n_envs, "kwargs": env_kwargs or {}},
            "policy": {"kind": policy, **policy_kw},
            "algorithm": {"name": self.algorithm, **kwargs},
            "budget": {"env_steps": 1}, "logging": {"dir": str(folder.parent)},
            "eval": {"episodes": 0}}, f"{type(self).__name__}({env!r}, ...)")
        self.recipe, self.verbose, self.num_timesteps = recipe, verbose, 0
        self._agent: Any = None
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def _of(cls, recipe: Any, verbose: int, num_timesteps: int) -> _Model:
        """A model of an already validated recipe, `num_timesteps` trained."""
        model = cls.__new__(cls)
        model.recipe, model.verbose, model.num_timesteps = recipe, verbose, num_timesteps
        model._agent = model._bounds = None
        return model

    @staticmethod
    def _recipe(data: dict[str, Any], where: str) -> Any:
        from velora_robot.rl.recipe import Recipe

        return parse(Recipe, data, where, tags=frozenset({"ppo", "sac", "td3"}))

    @classmethod
    def from_recipe(cls, path: str | Path, verbose: int = 1) -> _Model:
        """The model a recipe file describes (its algorithm must be this class's)."""
        from velora_robot.rl.recipe import load_recipe

        recipe = load_recipe(path)
        if recipe.algorithm.name != cls.algorithm:
            raise ConfigError(f"{path}: field 'algorithm.name' is {recipe.algorithm.name!r}; "
                              f"load it with {recipe.algorithm.name.upper()}.from_recipe")
        return cls._of(recipe, verbose, 0)

    @property
    def run_dir(self) -> Path:
        """Where the run's checkpoint, metrics and curve are written."""
        return self.recipe.run_dir

    # ----------------------------------------------------------- training
    def learn(self, total_timesteps: int,
              callback: Callable[[dict[str, Any]], bool | None] | None = None) -> _Model:
        """Train for `total_timesteps` more env steps (rounded up to whole updates). The
        first call starts the run in `run_dir` afresh (files of an earlier run there are
        replaced); later calls continue it exactly. `callback(info)` runs after every
        update with `update`, `num_timesteps` and `agent`; returning False stops."""
        from velora_robot.rl.trainer import CHECKPOINT, train

        if total_timesteps < 1:
            raise ValueError(f"learn: total_timesteps must be at least 1, got "
                             f"{total_timesteps}")
        self.recipe.budget.env_steps = self.num_timesteps + int(total_timesteps)
        resume = (self.run_dir / CHECKPOINT).is_file() and self.num_timesteps > 0

        def on_update(update: int, env_steps: int, agent: Any) -> bool:
            return callback is not None and callback(
                {"update": update, "num_timesteps": env_steps, "agent": agent}) is False

        summary = train(self.recipe, resume=resume, overwrite=not resume,
                        progress=self.verbose > 0, on_update=on_update)
        self.num_timesteps = summary["env_steps"]
        self._load(self.run_dir / CHECKPOINT)
        return self

    def _load(self, path: Path) -> None:
        from velora_robot.export.exporter import load_agent
        from velora_robot.rl.trainer import load_checkpoint

        _, self._agent = load_agent(load_checkpoint(path))

    # ------------------------------------------------------- save and load
    def save(self, path: str | Path) -> Path:
        """Copy the run's checkpoint (tensors and plain data only) to `path`."""
        from velora_robot.rl.trainer import CHECKPOINT

        source = self.run_dir / CHECKPOINT
        if not source.is_file():
            raise ConfigError(f"{type(self).__name__}.save: nothing trained yet (no "
                              f"checkpoint at {source}); call learn() first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        return path

    @classmethod
    def load(cls, path: str | Path, run_dir: str | Path | None = None,
             verbose: int = 1) -> _Model:
        """A model from a saved checkpoint: it predicts and exports at once, and `learn`
        continues its training in `run_dir` (default: `<file stem>_run` beside the file; a
        folder holding another run's checkpoint is refused). Loading never runs code from
        the file."""
        from velora_robot.rl.trainer import CHECKPOINT, load_checkpoint

        ckpt = load_checkpoint(Path(path), str(path))
        recipe = cls._recipe(ckpt["recipe"], f"{path}: recipe")
        if recipe.algorithm.name != cls.algorithm:
            raise ConfigError(f"{path}: a {recipe.algorithm.name.upper()} checkpoint; load it "
                              f"with {recipe.algorithm.name.upper()}.load")
        if run_dir is None:
            run_dir = Path(path).with_name(f"{Path(path).stem}_run")
        recipe.name, recipe.logging.dir = Path(run_dir).name, str(Path(run_dir).parent)
        model = cls._of(recipe, verbose, int(ckpt["env_steps"]))
        target = model.run_dir / CHECKPOINT
        if Path(path).resolve() != target.resolve():
            if target.is_file() and target.read_bytes() != Path(path).read_bytes():
                raise ConfigError(f"{cls.__name__}.load({str(path)!r}): {target} holds another "
                                  "run's checkpoint; pass run_dir= a new folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        model._load(target)
        return model

    # ------------------------------------------------------------- acting
    def predict(self, observation: np.ndarray, state: np.ndarray | None = None,
                episode_start: np.ndarray | bool | None = None, deterministic: bool = True,
                ) -> tuple[np.ndarray, np.ndarray]:
        """Actions for one observation (obs_dim,) or a batch (n, obs_dim), in the env's
        action bounds, and the policy's next state: pass it back with the next
        observation (None, or `episode_start` True, starts an episode). `deterministic`
        False samples the exploration noise the algorithm trains with."""
        import torch

        from velora_robot.rl.agent import deterministic_action
        from velora_robot.rl.vec_env import scale_action

        if self._agent is None:
            raise ConfigError(f"{type(self).__name__}.predict: nothing trained yet; call "
                              "learn() or load() first")
        agent = self._agent
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        x = torch.as_tensor(obs.reshape(-1, obs.shape[-1]))
        n = x.shape[0]
        h = None if state is None else torch.as_tensor(
            np.asarray(state, np.float32).reshape(n, -1))
        starts = np.ones(n, bool) if state is None or episode_start is None \
            else np.broadcast_to(np.asarray(episode_start, bool), (n,)).copy()
        with torch.no_grad():
            mean, h = agent.actor(agent.obs_norm(x).unsqueeze(1), h,
                                  resets=torch.as_tensor(starts).view(n, 1))
            mean = mean.squeeze(1)
            if deterministic:
                action = deterministic_action(mean, agent.squash)
            elif self.algorithm == "td3":
                noise = self.recipe.algorithm.exploration_noise * torch.randn(mean.shape)
                action = (torch.tanh(mean) + noise).clamp(-1.0, 1.0)
            else:
                sample = mean + agent.actor.log_std.exp() * torch.randn(mean.shape)
                action = deterministic_action(sample, agent.squash)
        out = scale_action(action.numpy(), *self._action_bounds())
        new_state = h.numpy()
        return (out[0], new_state[0]) if single else (out, new_state)

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self._bounds is None:
            import gymnasium as gym

            import velora_robot.envs  # noqa: F401  (registers the ids)

            env = gym.make(self.recipe.env.id, **self.recipe.env.kwargs)
            self._bounds = (env.action_space.low.astype(np.float64),
                            env.action_space.high.astype(np.float64))
            env.close()
        return self._bounds

    # ------------------------------------------------------------ export
    def export(self, path: str | Path | None = None, fmt: str = "onnx") -> Path:
        """Write the policy for the robot (onnx, torchscript or kernel) with its model card
        beside it; returns the policy file (load it with `velora_robot.runtime.
        load_policy`)."""
        from velora_robot.export.exporter import export
        from velora_robot.rl.trainer import CHECKPOINT

        checkpoint = self.run_dir / CHECKPOINT
        if not checkpoint.is_file():
            raise ConfigError(f"{type(self).__name__}.export: nothing trained yet (no "
                              f"checkpoint at {checkpoint}); call learn() first")
        return export(checkpoint, fmt, path)["policy"]  # type: ignore[arg-type]


class PPO(_Model):
    """Recurrent PPO (the recipe's `algorithm: {name: ppo}`)."""

    algorithm = "ppo"


class SAC(_Model):
    """SAC over sequences (`algorithm: {name: sac}`)."""

    algorithm = "sac"


class TD3(_Model):
    """TD3 over sequences (`algorithm: {name: td3}`)."""

    algorithm = "td3"
