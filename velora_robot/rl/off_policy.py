"""What SAC and TD3 share: twin Q critics with target copies, soft target updates, and
sequence batches for recurrent actors (stored state, then burn-in without gradients).

Critics are MLPs on (observation, action) or liquid (an LTC-NCP run along the sequence of
observations and taken actions, warmed up on the burn-in). A recurrent critic values
another action at step t (the policy's, or the next action at t + 1) by one batched step
from the state the taken actions led to, so one code path serves both kinds.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from velora_robot.rl.normalizer import RunningNorm
from velora_robot.rl.policies import MLPQ, LiquidQ, run_with_next
from velora_robot.rl.replay import SequenceReplay

CRITICS = ("q1", "q2", "q1_target", "q2_target")


class OffPolicy:
    """Base: critics, targets, optimizers and batch preparation."""

    def __init__(self, actor: nn.Module, obs_norm: RunningNorm, obs_dim: int, act_dim: int, *,
                 lr: float = 3e-4, gamma: float = 0.99, tau: float = 0.005,
                 batch_size: int = 256, seq_len: int = 16, burn_in: int = 8,
                 critic: str = "mlp", critic_hidden: list[int] | None = None,
                 critic_neurons: int = 16) -> None:
        self.actor, self.obs_norm = actor, obs_norm
        self.gamma, self.tau, self.batch_size = gamma, tau, batch_size
        self.seq_len, self.burn_in = seq_len, burn_in

        def make(seed: int) -> nn.Module:
            if critic == "liquid":
                return LiquidQ(obs_dim + act_dim, n_neurons=critic_neurons, wiring_seed=seed)
            return MLPQ(obs_dim + act_dim, critic_hidden)

        self.q1, self.q2 = make(1), make(2)
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
        # Recurrent critics start the learning part from their own burned-in state.
        learn["critic_h0"] = {}
        for name in CRITICS:
            q = getattr(self, name)
            h_q = None
            if q.recurrent and self.burn_in:
                with torch.no_grad():
                    x = torch.cat([b["obs"], b["action"]], dim=-1)[:, :self.burn_in]
                    _, h_q = q(x, None, resets=b["start"][:, :self.burn_in])
            learn["critic_h0"][name] = h_q
        return learn, h

    def q_min(self, b: dict[str, Tensor], action: Tensor) -> Tensor:
        """min(Q1, Q2) at every step of the batch for `action` (e.g. the policy's), each
        critic in the state the taken actions led to."""
        return torch.min(self._q_for(b, "q1", action), self._q_for(b, "q2", action))

    def q_next_min(self, b: dict[str, Tensor], next_action: Tensor) -> Tensor:
        """min of the target critics on (next_obs, next_action) at every step."""
        taken = torch.cat([b["obs"], b["action"]], dim=-1)
        nxt = torch.cat([b["next_obs"], next_action], dim=-1)
        values = [run_with_next(getattr(self, name), taken, nxt, b["critic_h0"][name],
                                b["start"])[1] for name in ("q1_target", "q2_target")]
        return torch.min(*values)

    def _q_for(self, b: dict[str, Tensor], name: str, action: Tensor) -> Tensor:
        q, h0 = getattr(self, name), b["critic_h0"][name]
        x = torch.cat([b["obs"], action], dim=-1)
        if not q.recurrent:
            return q(x)[0]
        with torch.no_grad():  # the states the taken actions led to
            _, states = q(torch.cat([b["obs"], b["action"]], dim=-1), h0, resets=b["start"],
                          return_states=True)
        first = torch.zeros_like(states[:, :1]) if h0 is None else h0.unsqueeze(1)
        before = torch.cat([first, states[:, :-1]], dim=1) * (~b["start"]).unsqueeze(-1)
        bsz, steps = x.shape[:2]
        out, _ = q(x.reshape(bsz * steps, 1, -1), before.reshape(bsz * steps, -1))
        return out.reshape(bsz, steps)

    def critic_step(self, b: dict[str, Tensor], target: Tensor) -> float:
        """Regress both critics on the TD target."""
        x = torch.cat([b["obs"], b["action"]], dim=-1)
        q1 = self.q1(x, b["critic_h0"]["q1"], resets=b["start"])[0]
        q2 = self.q2(x, b["critic_h0"]["q2"], resets=b["start"])[0]
        loss = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
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
