"""Actors and critics. Actors are Gaussian policies over actions in [-1, 1]; their mean is
an LTC-NCP (`LiquidActor`, recurrent) or an MLP (`MLPActor`, for baselines). Every actor
takes sequences (B, T, F) with a state and reset flags, so the algorithms need no branch."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from velora_robot.liquid import LTCCell, NCPWiring


class LiquidActor(nn.Module):
    """Mean = per-joint actions of an LTC cell on an NCP wiring (one motor neuron, or an
    antagonistic pair, per action dimension); state-independent log std."""

    recurrent = True

    def __init__(self, obs_dim: int, act_dim: int, *, n_neurons: int | None = None,
                 neurons_per_dof: int = 1, wiring_seed: int = 0, residual: bool = True,
                 ode_unfolds: int = 6, compiled: bool = False, init_log_std: float = -0.5
                 ) -> None:
        super().__init__()
        wiring = NCPWiring(n_dof=act_dim, neurons_per_dof=neurons_per_dof, seed=wiring_seed,
                           n_neurons=n_neurons)
        self.cell = LTCCell(wiring, obs_dim, ode_unfolds=ode_unfolds, residual=residual,
                            compiled=compiled)
        self.log_std = nn.Parameter(torch.full((act_dim,), init_log_std))
        self.state_size = wiring.n_neurons

    def forward(self, obs: Tensor, h: Tensor | None = None, resets: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """obs (B, T, F) -> action mean (B, T, A), final state (B, n_neurons)."""
        y, h = self.cell(obs, h, resets=resets)
        return self.cell.joint_actions(y), h


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ELU) -> nn.Sequential:
    """Linear layers with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPActor(nn.Module):
    """Feed-forward baseline with the same interface (an empty state)."""

    recurrent = False
    state_size = 0

    def __init__(self, obs_dim: int, act_dim: int, *, hidden: list[int] | None = None,
                 init_log_std: float = -0.5) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *(hidden or [64, 64]), act_dim])
        self.log_std = nn.Parameter(torch.full((act_dim,), init_log_std))

    def forward(self, obs: Tensor, h: Tensor | None = None, resets: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        return self.net(obs), obs.new_zeros(obs.shape[0], 0)


class MLPCritic(nn.Module):
    """State value V(x) of (B, T, F) inputs -> (B, T)."""

    def __init__(self, in_dim: int, hidden: list[int] | None = None) -> None:
        super().__init__()
        self.net = mlp([in_dim, *(hidden or [64, 64]), 1])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)
