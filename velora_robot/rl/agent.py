"""`Agent`: what a training run learns and saves — observation normalizers, the actor and
the critic — built from a recipe's policy section."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from velora_robot.rl.normalizer import RunningNorm
from velora_robot.rl.policies import LiquidActor, MLPActor, MLPCritic
from velora_robot.rl.recipe import PolicySection


class Agent(nn.Module):
    """Normalizers + actor + critic. The critic sees the observation and, when the env
    offers it and the recipe asks, privileged simulator state."""

    def __init__(self, policy: PolicySection, obs_dim: int, act_dim: int, priv_dim: int,
                 *, squash: bool = False, critic: bool = True) -> None:
        super().__init__()
        self.squash = squash  # SAC/TD3 policies act through tanh; PPO clips the mean
        self.obs_norm = RunningNorm(obs_dim)
        self.priv_dim = priv_dim if policy.privileged_critic else 0
        self.priv_norm = RunningNorm(self.priv_dim)
        if policy.kind == "liquid":
            self.actor: nn.Module = LiquidActor(
                obs_dim, act_dim, n_neurons=policy.n_neurons,
                neurons_per_dof=policy.neurons_per_dof, wiring_seed=policy.wiring_seed,
                residual=policy.residual, ode_unfolds=policy.ode_unfolds,
                compiled=policy.compiled, init_log_std=policy.init_log_std,
                sensory_fanout=policy.sensory_fanout, inter_fanout=policy.inter_fanout,
                cross_joint_fanout=policy.cross_joint_fanout)
        else:
            hidden = [] if policy.kind == "linear" else policy.hidden
            self.actor = MLPActor(obs_dim, act_dim, hidden=hidden,
                                  init_log_std=policy.init_log_std)
        self.critic = MLPCritic(obs_dim + self.priv_dim, policy.critic_hidden) if critic \
            else None

    def deterministic_action(self, mean: Tensor) -> Tensor:
        """The action the trained policy takes without exploration (see the function)."""
        return deterministic_action(mean, self.squash)

    def critic_input(self, obs_n: Tensor, priv: Tensor) -> Tensor:
        """Normalized observation, plus normalized privileged state when used."""
        if not self.priv_dim:
            return obs_n
        return torch.cat([obs_n, self.priv_norm(priv[..., :self.priv_dim])], dim=-1)

    @property
    def actor_parameters(self) -> int:
        """Trainable parameters of the actor (what runs on the robot)."""
        return sum(p.numel() for p in self.actor.parameters() if p.requires_grad)


def deterministic_action(mean: Tensor, squash: bool) -> Tensor:
    """The action without exploration, in [-1, 1]: tanh(mean) for SAC/TD3 policies, the
    clipped mean for PPO."""
    return torch.tanh(mean) if squash else mean.clamp(-1.0, 1.0)
