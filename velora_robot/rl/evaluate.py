"""Deterministic evaluation of an agent: mean actions, seeded episodes, per-episode return,
length and any numeric per-step info the env reports (e.g. JointTrack's tracking error)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

import velora_robot.envs  # noqa: F401  (registers the velora_robot ids)
from velora_robot.rl.agent import Agent
from velora_robot.rl.vec_env import scale_action


@torch.no_grad()
def evaluate(agent: Agent, env_id: str, episodes: int, seed: int = 0, **env_kwargs: Any
             ) -> dict[str, float]:
    """Mean and spread of returns over `episodes` episodes, plus means of numeric info."""
    env = gym.make(env_id, **env_kwargs)
    low, high = env.action_space.low, env.action_space.high
    returns, lengths, extras = [], [], {}
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        h, start, total, steps, done = None, True, 0.0, 0, False
        while not done:
            x = agent.obs_norm(torch.as_tensor(obs, dtype=torch.float32)).view(1, 1, -1)
            mean, h = agent.actor(x, h, resets=torch.tensor([[start]]))
            action = agent.deterministic_action(mean.view(-1)).numpy()
            obs, reward, terminated, truncated, info = env.step(scale_action(action, low, high))
            for key, value in info.items():
                if isinstance(value, float):
                    extras.setdefault(key, []).append(value)
            total, steps, start = total + float(reward), steps + 1, False
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    return {"episodes": episodes, "return_mean": float(np.mean(returns)),
            "return_std": float(np.std(returns)), "length_mean": float(np.mean(lengths)),
            **{f"{k}_mean": float(np.mean(v)) for k, v in extras.items()}}
