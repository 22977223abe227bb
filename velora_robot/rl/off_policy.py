"""What SAC and TD3 share: twin Q critics with target copies, soft target updates, and
sequence batches for recurrent actors (stored state, then burn-in without gradients).

Critics are MLPs on (observation, action): the actor carries the memory; a recurrent
(liquid) critic is not implemented yet.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from velora_robot.rl.normalizer import RunningNorm
from velora_robot.rl.policies import MLPQ
from velora_robot.rl.replay import SequenceReplay


class OffPolicy:
    """Base: critics, targets, optimizers and batch preparation."""

    def __init__(self, actor: nn.Module, obs_norm: RunningNorm, obs_dim: int, act_dim: int, *,
                 lr: float = 3e-4, gamma: float = 0.99, tau: float = 0.005,
                 batch_size: int = 256, seq_len: int = 16, burn_in: int = 8,
                 critic_hidden: list[int] | None = None) -> None:
        self.actor, self.obs_norm = actor, obs_norm
        self.gamma, self.tau, self.batch_size = gamma, tau, batch_size
        self.seq_len, self.burn_in = seq_len, burn_in
        self.q1 = MLPQ(obs_dim + act_dim, critic_hidden)
        self.q2 = MLPQ(obs_dim + act_dim, critic_hidden)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=lr)
        self.critic_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()],
                                           lr=lr)
        self.updates = 0

    def batch(self, replay: SequenceReplay, generator: torch.Generator
              ) -> tuple[dict[str, Tensor], Tensor]:
        """A sampled batch cut to its learning part, with the actor state after burn-in."""
        b = replay.sample(self.batch_size, self.burn_in + self.seq_len, generator)
        b["obs"], b["next_obs"] = self.obs_norm(b["obs"]), self.obs_norm(b["next_obs"])
        h = b["h0"]
        if self.burn_in:
            with torch.no_grad():
                _, h = self.actor(b["obs"][:, :self.burn_in], h,
                                  resets=b["start"][:, :self.burn_in])
        learn = {k: v[:, self.burn_in:] for k, v in b.items() if k != "h0"}
        return learn, h

    def q_min(self, obs: Tensor, action: Tensor, target: bool = False) -> Tensor:
        """min(Q1, Q2) of (obs, action) sequences."""
        q1, q2 = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        x = torch.cat([obs, action], dim=-1)
        return torch.min(q1(x)[0], q2(x)[0])

    def critic_step(self, b: dict[str, Tensor], target: Tensor) -> float:
        """Regress both critics on the TD target."""
        x = torch.cat([b["obs"], b["action"]], dim=-1)
        loss = ((self.q1(x)[0] - target) ** 2).mean() + ((self.q2(x)[0] - target) ** 2).mean()
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()
        return float(loss.detach())

    def soft_update(self, pairs: list[tuple[nn.Module, nn.Module]]) -> None:
        """target <- tau * online + (1 - tau) * target."""
        with torch.no_grad():
            for online, target in pairs:
                for p, tp in zip(online.parameters(), target.parameters(), strict=True):
                    tp.lerp_(p, self.tau)

    def state_dict(self) -> dict:
        """Critics, targets, optimizers (the actor is saved with the agent)."""
        return {name: getattr(self, name).state_dict() for name in self._saved()} | {
            "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`."""
        for name in self._saved():
            getattr(self, name).load_state_dict(state[name])
        self.updates = state["updates"]

    def _saved(self) -> list[str]:
        return ["q1", "q2", "q1_target", "q2_target", "actor_opt", "critic_opt"]
