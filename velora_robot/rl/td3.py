"""TD3 (Fujimoto et al. 2018) with a recurrent (liquid) or MLP actor: a deterministic
tanh policy, twin critics (the smaller target), target policy smoothing, and delayed
actor and target updates."""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from velora_robot.rl.off_policy import OffPolicy
from velora_robot.rl.policies import run_with_next
from velora_robot.rl.replay import SequenceReplay


class TD3(OffPolicy):
    """`act` during rollouts; `update` on sequences sampled from the replay."""

    def __init__(self, *args, policy_delay: int = 2, policy_noise: float = 0.2,
                 noise_clip: float = 0.5, exploration_noise: float = 0.1,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.actor_target = copy.deepcopy(self.actor)
        self.policy_delay, self.policy_noise = policy_delay, policy_noise
        self.noise_clip, self.exploration_noise = noise_clip, exploration_noise

    @torch.no_grad()
    def act(self, obs_n: Tensor, h: Tensor, starts: Tensor, generator: torch.Generator
            ) -> tuple[Tensor, Tensor]:
        """tanh(mean) plus Gaussian exploration noise, clipped to [-1, 1]."""
        mean, h = self.actor(obs_n.unsqueeze(1), h, resets=starts.unsqueeze(1))
        action = torch.tanh(mean.squeeze(1))
        noise = self.exploration_noise * torch.randn(action.shape, generator=generator)
        return (action + noise).clamp(-1.0, 1.0), h

    def update(self, replay: SequenceReplay, generator: torch.Generator) -> dict[str, float]:
        b, h = self.batch(replay, generator)
        # Critics: the target actor's next action, smoothed by clipped noise.
        with torch.no_grad():
            _, mean_next = run_with_next(self.actor_target, b["obs"], b["next_obs"], h,
                                         b["start"])
            noise = (self.policy_noise * torch.randn(mean_next.shape, generator=generator)
                     ).clamp(-self.noise_clip, self.noise_clip)
            a_next = (torch.tanh(mean_next) + noise).clamp(-1.0, 1.0)
            target = b["reward"] + self.gamma * (1 - b["terminated"]) * self.q_next_min(
                b, a_next)
        metrics = {"critic_loss": self.critic_step(b, target)}
        self.updates += 1
        # Actor and targets move only every `policy_delay` critic updates.
        if self.updates % self.policy_delay == 0:
            mean, _ = self.actor(b["obs"], h, resets=b["start"])
            actor_loss = -self._q_for(b, "q1", torch.tanh(mean)).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            self.soft_update([(self.q1, self.q1_target), (self.q2, self.q2_target),
                              (self.actor, self.actor_target)])
            metrics["actor_loss"] = float(actor_loss.detach())
        return metrics

    def _saved(self) -> list[str]:
        return [*super()._saved(), "actor_target"]
