"""The neuron share of a liquid controller's action: how much of what it does comes through
its motor neurons, and how much through the residual bypass (a linear map from observation
straight to action, `LTCCell(residual=True)`).

Over a nominal walk (randomization off, the task's own commands, seed 0) the action mean
is split exactly into its two parts, a = r + b (r: the motor neurons' read-out, b: the
bypass; in 2-neuron mode each part as the pair's difference), and the action's variance
into Var(a) = Cov(a, r) + Cov(a, b). The share is Cov(a, r) / Var(a), summed over joints:
1.0 without a bypass, about 0.06 for the first shipped Spot. (A part can exceed 1, or go
below 0, when the two work against each other.)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

import velora_robot.envs  # noqa: F401  (registers the velora_robot ids)
from velora_robot.rl.agent import Agent
from velora_robot.rl.policies import LiquidActor
from velora_robot.rl.vec_env import scale_action

NOMINAL_S = 20.0


@torch.no_grad()
def neuron_share(agent: Agent, env_id: str, env_kwargs: dict[str, Any],
                 seconds: float = NOMINAL_S) -> dict[str, Any] | None:
    """{"overall", "per_joint", "seconds"} for a liquid actor, None for any other. Episodes
    shorter than the walk follow each other; a fall ends it early, and "seconds" says how
    long it ran."""
    actor = agent.actor
    if not isinstance(actor, LiquidActor):
        return None
    cell = actor.cell
    kwargs = {**env_kwargs, "randomization": {"enabled": False}}
    env = gym.make(env_id, **kwargs)
    try:
        dt = env.unwrapped.task.dt
        obs, _ = env.reset(seed=0)
        low, high = env.action_space.low, env.action_space.high
        h, readout, bypass = None, [], []
        for _ in range(max(1, round(seconds / dt))):
            x = agent.obs_norm(torch.as_tensor(obs, dtype=torch.float32)).view(1, -1)
            y, h = cell(x, h)
            b = x @ cell.residual.t() if cell.residual is not None else torch.zeros_like(y)
            r_joint, b_joint = cell.joint_actions(y - b), cell.joint_actions(b)
            readout.append(r_joint[0].numpy())
            bypass.append(b_joint[0].numpy())
            action = agent.deterministic_action(r_joint[0] + b_joint[0]).numpy()
            obs, _, terminated, truncated, _ = env.step(scale_action(action, low, high))
            if terminated:  # a fall ends the walk (the card says how long it ran)
                break
            if truncated:  # an episode shorter than the walk: the next one continues it
                obs, _ = env.reset()
                h = None
    finally:
        env.close()
    r, b = np.array(readout), np.array(bypass)
    a = r + b
    a_c, r_c = a - a.mean(0), r - r.mean(0)
    cov_ar = (a_c * r_c).mean(0)
    var_a = (a_c ** 2).mean(0)
    per_joint = np.divide(cov_ar, var_a, out=np.ones_like(var_a), where=var_a > 1e-12)
    overall = float(cov_ar.sum() / var_a.sum()) if var_a.sum() > 1e-12 else 1.0
    return {"overall": overall, "per_joint": [float(v) for v in per_joint],
            "seconds": len(a) * dt}
