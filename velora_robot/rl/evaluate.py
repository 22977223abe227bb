"""Deterministic evaluation of an agent: mean actions, seeded episodes, per-episode return,
length and any numeric per-step info the env reports (e.g. JointTrack's tracking error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import velora_robot.envs  # noqa: F401  (registers the velora_robot ids)
from velora_robot.rl.agent import Agent
from velora_robot.rl.vec_env import scale_action


class AgentPolicy:
    """An agent acting deterministically in an env's action bounds, carrying its recurrent
    state: `action = policy(obs)`; `reset()` at the start of an episode."""

    def __init__(self, agent: Agent, low: np.ndarray, high: np.ndarray) -> None:
        self.agent, self.low, self.high = agent, low, high
        self.reset()

    def reset(self) -> None:
        """A new episode: the state starts over."""
        self.h, self.start = None, True

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        agent = self.agent
        x = agent.obs_norm(torch.as_tensor(obs, dtype=torch.float32)).view(1, 1, -1)
        mean, self.h = agent.actor(x, self.h, resets=torch.tensor([[self.start]]))
        self.start = False
        action = agent.deterministic_action(mean.view(-1)).numpy()
        return scale_action(action, self.low, self.high)


def evaluate(agent: Agent, env_id: str, episodes: int, seed: int = 0, **env_kwargs: Any
             ) -> dict[str, float]:
    """Mean and spread of returns over `episodes` episodes, plus means of numeric info."""
    env = gym.make(env_id, **env_kwargs)
    policy = AgentPolicy(agent, env.action_space.low, env.action_space.high)
    returns, lengths, extras = [], [], {}
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        policy.reset()
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            for key, value in info.items():
                if isinstance(value, float):
                    extras.setdefault(key, []).append(value)
            total, steps = total + float(reward), steps + 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    return {"episodes": episodes, "return_mean": float(np.mean(returns)),
            "return_std": float(np.std(returns)), "length_mean": float(np.mean(lengths)),
            **{f"{k}_mean": float(np.mean(v)) for k, v in extras.items()}}


def record_video(agent: Agent, env_id: str, path: Path, seconds: float, seed: int = 0,
                 **env_kwargs: Any) -> Path:
    """A GIF of one deterministic episode (at most `seconds` long) of the agent."""
    from velora_robot.envs.video import record

    env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
    try:
        policy = AgentPolicy(agent, env.action_space.low, env.action_space.high)
        return record(env, path, seconds=seconds, seed=seed, policy=policy)
    finally:
        env.close()
