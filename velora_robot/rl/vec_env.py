"""One interface for the envs training runs on: our `BatchedEnv` for velora_robot ids, and
a plain in-process vector of any other gymnasium env (e.g. InvertedPendulum-v5) with
actions in [-1, 1] rescaled to its bounds."""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

import velora_robot.envs as velora_envs
from velora_robot.envs.vector import BatchedEnv, StepResult
from velora_robot.simulation.backend import Simulator


class VecEnv(Protocol):
    """What trainers use: reset, step, the current privileged state (n_envs, P) with P = 0
    when the env has none, and an exact state snapshot (`get_state()` is None when the env
    cannot take one)."""

    n_envs: int
    single_observation_space: gym.spaces.Box
    single_action_space: gym.spaces.Box

    @property
    def privileged(self) -> np.ndarray: ...
    def reset(self, seed: int = 0) -> np.ndarray: ...
    def step(self, actions: np.ndarray) -> StepResult: ...
    def get_state(self) -> Any | None: ...
    def set_state(self, saved: Any) -> np.ndarray: ...
    def close(self) -> None: ...


def scale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """An action in [-1, 1] mapped onto the env's bounds [low, high]."""
    return low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)


class GymVecEnv:
    """N copies of a gymnasium env stepped in this process, reset in the same step."""

    def __init__(self, env_id: str, n_envs: int, **kwargs: Any) -> None:
        self.envs = [gym.make(env_id, **kwargs) for _ in range(n_envs)]
        space = self.envs[0].action_space
        if not isinstance(space, gym.spaces.Box) or not np.isfinite(space.low).all():
            raise ValueError(f"{env_id}: training needs a bounded Box action space")
        self.low, self.high = space.low, space.high
        self.n_envs = n_envs
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, space.shape, dtype=np.float32)
        self._returns = np.zeros(n_envs)
        self._lengths = np.zeros(n_envs, dtype=int)

    def reset(self, seed: int = 0) -> np.ndarray:
        self._returns[:], self._lengths[:] = 0, 0
        return np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])

    def step(self, actions: np.ndarray) -> StepResult:
        n = self.n_envs
        scaled = scale_action(actions, self.low, self.high)
        obs, final = [], np.zeros((n, self.single_observation_space.shape[0]), np.float32)
        reward, terminated, truncated = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
        episodes = []
        for i, env in enumerate(self.envs):
            o, reward[i], terminated[i], truncated[i], _ = env.step(scaled[i])
            self._returns[i] += reward[i]
            self._lengths[i] += 1
            if terminated[i] or truncated[i]:
                final[i] = o
                episodes.append((float(self._returns[i]), int(self._lengths[i]), np.nan))
                self._returns[i], self._lengths[i] = 0.0, 0
                o, _ = env.reset()
            obs.append(o)
        return StepResult(np.stack(obs).astype(np.float32), reward, terminated, truncated,
                          final, self.privileged, self.privileged, episodes)

    @property
    def privileged(self) -> np.ndarray:
        """Gymnasium envs offer no privileged state: (n_envs, 0)."""
        return np.zeros((self.n_envs, 0), np.float32)

    def get_state(self) -> None:
        """No exact snapshot: a resumed run continues from fresh episodes."""
        return None

    def set_state(self, saved: Any) -> np.ndarray:
        raise NotImplementedError("GymVecEnv has no state snapshots (get_state is None)")

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_vec_env(env_id: str, n_envs: int, n_workers: int = 1, sim: Simulator | None = None,
                 **kwargs: Any) -> VecEnv:
    """Our BatchedEnv for velora_robot ids (`n_workers` processes, each simulating its robots
    with `sim`), GymVecEnv for anything else."""
    if env_id in velora_envs.ENV_IDS:
        return BatchedEnv(env_id, n_envs, n_workers=n_workers, sim=sim, **kwargs)
    return GymVecEnv(env_id, n_envs, **kwargs)
