"""Rollout storage for recurrent on-policy learning: T steps of N envs, the actor state at
every step (so each training chunk starts from the state the rollout really had), episode
starts (so the state is reset inside chunks exactly where it was during the rollout), and
GAE."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


class RolloutStorage:
    """Tensors shaped (T, N, ...)."""

    # What the mirror image of a step keeps (rl/symmetry.py): its observation and the
    # mirrored stream's actor state before it.
    MIRRORED = ("obs", "hidden")

    def __init__(self, steps: int, n_envs: int, obs_dim: int, critic_dim: int, act_dim: int,
                 state_size: int, mirrored: bool = False, taught: bool = False) -> None:
        t, n = steps, n_envs
        self.obs = torch.zeros(t, n, obs_dim)
        self.critic_obs = torch.zeros(t, n, critic_dim)
        self.hidden = torch.zeros(t, n, state_size)  # actor state before step t
        self.starts = torch.zeros(t, n, dtype=torch.bool)  # step t begins an episode
        self.actions = torch.zeros(t, n, act_dim)
        self.mean = torch.zeros(t, n, act_dim)
        self.logp = torch.zeros(t, n)
        self.values = torch.zeros(t, n)
        self.rewards = torch.zeros(t, n)
        self.dones = torch.zeros(t, n)  # the episode ended after step t
        self.advantages = torch.zeros(t, n)
        self.returns = torch.zeros(t, n)
        self.log_std = torch.zeros(act_dim)  # the acting policy's noise (log std)
        self.lagged = False  # acted by a policy older than the one learning from it
        self.steps = steps
        self.mirrored, self.taught = mirrored, taught
        if taught:  # the teacher's action at each step (distillation, rl/teacher.py)
            self.teacher = torch.zeros(t, n, act_dim)
        if mirrored:  # obs_mirror, hidden_mirror, ...: the same steps' mirror images
            for name in self.MIRRORED:
                setattr(self, f"{name}_mirror", torch.zeros_like(getattr(self, name)))

    def state_dict(self) -> dict[str, Tensor]:
        """The rollout's tensors (a checkpoint keeps a rollout collected but not yet
        learned from)."""
        return {k: v.clone() for k, v in vars(self).items() if isinstance(v, Tensor)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore a `state_dict()` result."""
        for k, v in state.items():
            getattr(self, k).copy_(v)

    def compute_returns(self, last_value: Tensor, gamma: float, lam: float) -> None:
        """Generalized advantage estimation (Schulman et al. 2016)."""
        advantage = torch.zeros_like(last_value)
        for t in reversed(range(self.steps)):
            next_value = last_value if t == self.steps - 1 else self.values[t + 1]
            not_done = 1.0 - self.dones[t]
            # TD error: r + gamma V(s') - V(s); a finished episode has no next value.
            delta = self.rewards[t] + gamma * next_value * not_done - self.values[t]
            # A_t = delta_t + gamma lambda A_{t+1}, cut at episode ends.
            advantage = delta + gamma * lam * not_done * advantage
            self.advantages[t] = advantage
        self.returns = self.advantages + self.values

    def sequences(self, chunk_len: int) -> dict[str, Tensor]:
        """Each env's rollout cut into chunks, (N * T / chunk_len, chunk_len, ...) per
        tensor; `h0` is the stored actor state at each chunk's first step. A mirrored
        storage adds each chunk's mirror image as `obs_mirror` and `h0_mirror`; a taught
        one the teacher's actions as `teacher`."""
        n = self.obs.shape[1]
        k = self.steps // chunk_len

        def seq(x: Tensor) -> Tensor:  # (T, N, ...) -> (N * k, L, ...)
            x = x.transpose(0, 1).reshape(n, k, chunk_len, *x.shape[2:])
            return x.reshape(n * k, chunk_len, *x.shape[3:])

        data = {name: seq(getattr(self, name)) for name in (
            "obs", "critic_obs", "starts", "actions", "mean", "logp", "values", "advantages",
            "returns")}
        data["h0"] = seq(self.hidden)[:, 0]
        if self.mirrored:
            data["obs_mirror"] = seq(self.obs_mirror)
            data["h0_mirror"] = seq(self.hidden_mirror)[:, 0]
        if self.taught:
            data["teacher"] = seq(self.teacher)
        return data

    def chunks(self, chunk_len: int, minibatches: int, generator: torch.Generator,
               data: dict[str, Tensor] | None = None) -> Iterator[dict[str, Tensor]]:
        """Shuffled minibatches of `sequences(chunk_len)` (or of `data`, sequences the
        caller changed)."""
        data = self.sequences(chunk_len) if data is None else data
        order = torch.randperm(len(data["obs"]), generator=generator)
        for part in order.chunk(minibatches):
            yield {name: x[part] for name, x in data.items()}
