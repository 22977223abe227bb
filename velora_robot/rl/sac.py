"""Soft Actor-Critic (Haarnoja et al. 2018) with a recurrent (liquid) or MLP actor: a
tanh-squashed Gaussian policy, twin critics with target copies, and the entropy
temperature tuned automatically towards -|A|."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from velora_robot.rl.off_policy import OffPolicy
from velora_robot.rl.policies import run_with_next, squashed_sample
from velora_robot.rl.replay import SequenceReplay


class SAC(OffPolicy):
    """`act` during rollouts; `update` on sequences sampled from the replay."""

    def __init__(self, *args, init_alpha: float = 0.2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        act_dim = self.actor.log_std.shape[0]
        self.target_entropy = -float(act_dim)
        self.log_alpha = torch.tensor(math.log(init_alpha), requires_grad=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=self.actor_opt.defaults["lr"])

    @torch.no_grad()
    def act(self, obs_n: Tensor, h: Tensor, starts: Tensor, generator: torch.Generator
            ) -> tuple[Tensor, Tensor]:
        """Sampled actions in [-1, 1] for one step of N envs, and the new actor state."""
        mean, h = self.actor(obs_n.unsqueeze(1), h, resets=starts.unsqueeze(1))
        action, _ = squashed_sample(mean.squeeze(1), self.actor.log_std, generator)
        return action, h

    def update(self, replay: SequenceReplay, generator: torch.Generator) -> dict[str, float]:
        b, h = self.batch(replay, generator)
        alpha = self.log_alpha.exp().detach()
        # Critics: soft Bellman target with the next action sampled from the current policy.
        with torch.no_grad():
            _, mean_next = run_with_next(self.actor, b["obs"], b["next_obs"], h, b["start"])
            a_next, logp_next = squashed_sample(mean_next, self.actor.log_std, generator)
            soft_next = self.q_next_min(b, a_next) - alpha * logp_next
            target = b["reward"] + self.gamma * (1 - b["terminated"]) * soft_next
        critic_loss = self.critic_step(b, target)
        # Actor: maximize Q - alpha * log pi through the reparameterized sample.
        mean, _ = self.actor(b["obs"], h, resets=b["start"])
        action, logp = squashed_sample(mean, self.actor.log_std, generator)
        actor_loss = (alpha * logp - self.q_min(b, action)).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        # Temperature: keep the policy's entropy near the target.
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()
        self.soft_update([(self.q1, self.q1_target), (self.q2, self.q2_target)])
        self.updates += 1
        return {"critic_loss": critic_loss, "actor_loss": float(actor_loss.detach()),
                "alpha": float(alpha), "entropy": float(-logp.detach().mean())}

    def state_dict(self) -> dict:
        return super().state_dict() | {"log_alpha": self.log_alpha.detach().clone(),
                                       "alpha_opt": self.alpha_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
