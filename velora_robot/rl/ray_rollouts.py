"""PPO rollouts on Ray: each worker (a Ray actor, on this machine or any machine of a
cluster) simulates its share of the robots with a CPU copy of the agent and returns whole
rollout segments: observations, actions, log-probabilities, values, GAE, and the actor
state before every step, so truncated BPTT on the learner starts each chunk from the state
the rollout really had. The learner (the `train` process) updates and broadcasts the new
weights before the next rollout.

Each worker runs the same `collect_rollout` as the single-process trainer, on the envs the
single process would have had in its place (env i keeps seed + i) with its own sampling
generator (seed + 1 + worker), so one worker collects what the overlapped single-process
path collects first, and the first update is the same. Observation statistics gathered by
the workers are merged exactly (counts, sums and sums of squares)."""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import numpy as np
import torch
from torch import Tensor

from velora_robot.errors import ConfigError
from velora_robot.rl.agent import Agent
from velora_robot.rl.ppo import PPO
from velora_robot.rl.recipe import Recipe
from velora_robot.rl.storage import RolloutStorage


class RolloutWorker:
    """One worker's robots (envs `first` .. `first + n_envs - 1` of the recipe's batch) and
    a CPU copy of the agent. Plain Python: Ray wraps it as an actor."""

    def __init__(self, recipe: dict[str, Any], index: int, first: int, n_envs: int) -> None:
        from velora_robot.rl.trainer import make_algorithm
        from velora_robot.rl.vec_env import make_vec_env

        torch.set_num_threads(1)
        self.recipe = Recipe.model_validate(recipe)
        env_cfg, self.first = self.recipe.env, first
        self.env = make_vec_env(env_cfg.id, n_envs, 1, env_cfg.simulator(), **env_cfg.kwargs)
        self.obs_dim = self.env.single_observation_space.shape[0]
        self.act_dim = self.env.single_action_space.shape[0]
        self.priv_dim = self.env.privileged.shape[1]
        self.agent = Agent(self.recipe.policy, self.obs_dim, self.act_dim, self.priv_dim)
        self.algo: PPO = make_algorithm(self.recipe, self.agent, self.obs_dim, self.act_dim)
        self.storage = RolloutStorage(self.recipe.algorithm.steps_per_env, n_envs, self.obs_dim,
                                      self.obs_dim + self.agent.priv_dim, self.act_dim,
                                      self.agent.actor.state_size)
        self.generator = torch.Generator().manual_seed(self.recipe.seed + 1 + index)
        self.carry: dict[str, Any] = {}

    def spaces(self) -> tuple[Any, Any, int]:
        """The env's observation and action spaces and the privileged size."""
        return self.env.single_observation_space, self.env.single_action_space, self.priv_dim

    def reset(self, seed: int) -> None:
        """Fresh episodes: env k of this worker gets `seed + first + k`, as in one process."""
        obs = self.env.reset(seed=seed + self.first)
        n = obs.shape[0]
        self.carry = {"obs": obs, "priv": self.env.privileged,
                      "h": torch.zeros(n, self.agent.actor.state_size),
                      "starts": torch.ones(n, dtype=torch.bool)}

    def set_randomization_level(self, level: float) -> None:
        """The curriculum's level (see `VecTask.set_randomization_level`)."""
        self.env.set_randomization_level(level)

    def collect(self, weights: dict[str, Tensor], hold_noise: bool) -> dict[str, Any]:
        """One rollout with the learner's `weights`: the storage's tensors, the normalizers'
        statistics after it, and the episodes that ended (return, length) with whether each
        ran to its time limit."""
        from velora_robot.rl.rollout import collect_rollout

        self.agent.load_state_dict(weights)
        self.algo.hold_noise = hold_noise
        recent: deque = deque()
        outcomes: deque = deque()
        self.carry = collect_rollout(self.env, self.agent, self.algo, self.storage,
                                     self.generator, self.carry, recent, outcomes=outcomes)
        return {"storage": self.storage.state_dict(), "episodes": list(recent),
                "outcomes": list(outcomes),
                "norms": {name: getattr(self.agent, name).stats() for name in _NORMS}}

    def get_state(self) -> dict[str, Any]:
        """What an exact resume needs: the envs, the carried rollout state, the generator."""
        return {"env": self.env.get_state(), "carry": self.carry,
                "generator": self.generator.get_state()}

    def set_state(self, saved: dict[str, Any]) -> None:
        """Restore a `get_state()` result."""
        self.env.set_state(saved["env"])
        self.carry = saved["carry"]
        self.generator.set_state(saved["generator"])

    def close(self) -> None:
        self.env.close()


_NORMS = ("obs_norm", "priv_norm")


class RayRollouts:
    """The learner's side: Ray actors holding the robots, seen by the trainer as one
    vectorized env whose rollouts are collected remotely (`collect`)."""

    def __init__(self, recipe: Recipe) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(f"recipe {recipe.name!r}: field 'cluster': Ray is not installed "
                              "(pip install 'velora-robot[cluster]')") from None
        self.ray, cfg = ray, recipe.cluster
        assert cfg is not None
        if not ray.is_initialized():
            try:
                if cfg.address is None:  # this machine, with room for every worker
                    ray.init(num_cpus=max(os.cpu_count() or 1,
                                          int(np.ceil(cfg.workers * cfg.cpus_per_worker))),
                             include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(address=cfg.address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"recipe {recipe.name!r}: field 'cluster.address': cannot "
                                  f"reach Ray at {cfg.address!r}: {exc}") from None
        shares = np.array_split(np.arange(recipe.env.n_envs), cfg.workers)
        remote = ray.remote(num_cpus=cfg.cpus_per_worker)(RolloutWorker)
        data = recipe.model_dump()
        self.workers = [remote.remote(data, k, int(share[0]), len(share))
                        for k, share in enumerate(shares)]
        self.n_envs = recipe.env.n_envs
        self.single_observation_space, self.single_action_space, priv_dim = ray.get(
            self.workers[0].spaces.remote())
        self._priv_dim = priv_dim

    def reset(self, seed: int = 0) -> None:
        """Fresh episodes on every worker (the carried state stays on the workers)."""
        self.ray.get([w.reset.remote(seed) for w in self.workers])

    @property
    def privileged(self) -> np.ndarray:
        """Only its width is used by the learner (to size the critic)."""
        return np.zeros((self.n_envs, self._priv_dim), dtype=np.float32)

    def set_randomization_level(self, level: float) -> None:
        self.ray.get([w.set_randomization_level.remote(level) for w in self.workers])

    def collect(self, agent: Agent, algo: PPO, storage: RolloutStorage, recent: deque,
                outcomes: deque | None) -> None:
        """One rollout on every worker with the agent's present weights, gathered into
        `storage` (workers in order along the env axis); the normalizers take every
        worker's statistics."""
        weights = self.ray.put(agent.state_dict())  # sent once, read by every worker
        starts = {name: getattr(agent, name).stats() for name in _NORMS}
        parts = self.ray.get([w.collect.remote(weights, algo.hold_noise)
                              for w in self.workers])
        for key, value in parts[0]["storage"].items():
            if value.dim() >= 2:  # (T, N, ...): the workers' robots side by side
                value = torch.cat([p["storage"][key] for p in parts], 1)
            getattr(storage, key).copy_(value)
        for name in _NORMS:
            getattr(agent, name).merge(starts[name], [p["norms"][name] for p in parts])
        for part in parts:
            recent.extend(part["episodes"])
            if outcomes is not None:
                outcomes.extend(part["outcomes"])

    def get_state(self) -> list[dict[str, Any]]:
        return self.ray.get([w.get_state.remote() for w in self.workers])

    def set_state(self, saved: list[dict[str, Any]]) -> None:
        if len(saved) != len(self.workers):
            raise ConfigError(f"the checkpoint holds {len(saved)} Ray workers' state, the "
                              f"recipe asks for {len(self.workers)} (resume with the same "
                              "cluster.workers)")
        self.ray.get([w.set_state.remote(s) for w, s in zip(self.workers, saved, strict=True)])

    def close(self) -> None:
        """Stop the workers (the Ray instance stays for the process; `ray.shutdown()`
        ends it)."""
        for worker in self.workers:
            self.ray.kill(worker)
