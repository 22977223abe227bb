"""Sequence replay for off-policy learning with recurrent actors (R2D2's stored-state
scheme): every step keeps the actor state it was acted from, so a sampled sequence starts
from that state; a burn-in prefix then refreshes the state under the current weights before
the loss is taken on the rest."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class SequenceReplay:
    """A ring buffer per env, (N, capacity, ...); all envs write one step together."""

    FIELDS = ("obs", "next_obs", "action", "reward", "terminated", "start", "hidden")

    def __init__(self, n_envs: int, capacity: int, obs_dim: int, act_dim: int,
                 state_size: int) -> None:
        n, c = n_envs, capacity
        self.obs = np.zeros((n, c, obs_dim), np.float32)
        self.next_obs = np.zeros((n, c, obs_dim), np.float32)
        self.action = np.zeros((n, c, act_dim), np.float32)
        self.reward = np.zeros((n, c), np.float32)
        self.terminated = np.zeros((n, c), np.float32)
        self.start = np.zeros((n, c), bool)  # the step begins an episode
        self.hidden = np.zeros((n, c, state_size), np.float32)  # actor state before the step
        self.capacity, self.ptr, self.size = c, 0, 0

    def add(self, **step: np.ndarray) -> None:
        """One step of every env (each field shaped (N, ...))."""
        for name in self.FIELDS:
            getattr(self, name)[:, self.ptr] = step[name]
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, length: int, generator: torch.Generator) -> dict[str, Tensor]:
        """`batch` sequences of `length` consecutive steps (never across the write point);
        each field (B, length, ...), plus `h0`, the stored state at the first step."""
        if self.size < length:
            raise ValueError(f"replay holds {self.size} steps per env, fewer than {length}")
        n = self.obs.shape[0]
        env = torch.randint(n, (batch,), generator=generator).numpy()
        offset = torch.randint(self.size - length + 1, (batch,), generator=generator).numpy()
        oldest = self.ptr if self.size == self.capacity else 0
        index = (oldest + offset[:, None] + np.arange(length)) % self.capacity
        out = {name: torch.from_numpy(getattr(self, name)[env[:, None], index])
               for name in self.FIELDS}
        out["h0"] = out.pop("hidden")[:, 0]
        return out

    def state_dict(self) -> dict:
        """Everything, for checkpoints."""
        return {**{name: getattr(self, name) for name in self.FIELDS},
                "ptr": self.ptr, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`."""
        for name in self.FIELDS:
            getattr(self, name)[:] = state[name]
        self.ptr, self.size = state["ptr"], state["size"]
