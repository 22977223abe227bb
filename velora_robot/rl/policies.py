"""Actors and critics. Actors are Gaussian policies over actions in [-1, 1]; their mean is
an LTC-NCP (`LiquidActor`, recurrent) or an MLP (`MLPActor`, for baselines). Every actor
takes sequences (B, T, F) with a state and reset flags, so the algorithms need no branch."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from velora_robot.liquid import LTCCell, NCPWiring


class LiquidActor(nn.Module):
    """Mean = per-joint actions of an LTC cell on an NCP wiring (one motor neuron, or an
    antagonistic pair, per action dimension); state-independent log std."""

    recurrent = True

    def __init__(self, obs_dim: int, act_dim: int, *, n_neurons: int | None = None,
                 neurons_per_dof: int = 1, wiring_seed: int = 0, residual: bool = True,
                 ode_unfolds: int = 6, compiled: bool = False, init_log_std: float = -0.5,
                 sensory_fanout: int = 4, inter_fanout: int = 4, cross_joint_fanout: int = 1
                 ) -> None:
        super().__init__()
        wiring = NCPWiring(n_dof=act_dim, neurons_per_dof=neurons_per_dof, seed=wiring_seed,
                           n_neurons=n_neurons, sensory_fanout=sensory_fanout,
                           inter_fanout=inter_fanout, cross_joint_fanout=cross_joint_fanout)
        self.cell = LTCCell(wiring, obs_dim, ode_unfolds=ode_unfolds, residual=residual,
                            compiled=compiled)
        self.log_std = nn.Parameter(torch.full((act_dim,), init_log_std))
        self.state_size = wiring.n_neurons

    def forward(self, obs: Tensor, h: Tensor | None = None, resets: Tensor | None = None,
                return_states: bool = False) -> tuple[Tensor, Tensor]:
        """obs (B, T, F) -> action mean (B, T, A), final state (B, n_neurons) (or every
        step's state (B, T, n_neurons) with `return_states`)."""
        y, h = self.cell(obs, h, resets=resets, return_states=return_states)
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
    """Feed-forward baseline with the same interface (an empty state); no hidden layers
    make it a linear policy."""

    recurrent = False
    state_size = 0

    def __init__(self, obs_dim: int, act_dim: int, *, hidden: list[int] | None = None,
                 init_log_std: float = -0.5) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *([64, 64] if hidden is None else hidden), act_dim])
        self.log_std = nn.Parameter(torch.full((act_dim,), init_log_std))

    def forward(self, obs: Tensor, h: Tensor | None = None, resets: Tensor | None = None,
                return_states: bool = False) -> tuple[Tensor, Tensor]:
        return self.net(obs), _no_state(obs, return_states)


def _no_state(x: Tensor, every_step: bool) -> Tensor:
    """The empty state of a feed-forward network, shaped like a recurrent one's."""
    return x.new_zeros(*x.shape[:2], 0) if every_step else x.new_zeros(x.shape[0], 0)


class MLPCritic(nn.Module):
    """State value V(x) of (B, T, F) inputs -> (B, T)."""

    def __init__(self, in_dim: int, hidden: list[int] | None = None) -> None:
        super().__init__()
        self.net = mlp([in_dim, *(hidden or [64, 64]), 1])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


class MLPQ(nn.Module):
    """Q(obs, action) as an MLP over (B, T, obs + action) -> (B, T)."""

    recurrent = False
    state_size = 0

    def __init__(self, in_dim: int, hidden: list[int] | None = None) -> None:
        super().__init__()
        self.net = mlp([in_dim, *(hidden or [256, 256]), 1])

    def forward(self, x: Tensor, h: Tensor | None = None, resets: Tensor | None = None,
                return_states: bool = False) -> tuple[Tensor, Tensor]:
        return self.net(x).squeeze(-1), _no_state(x, return_states)


class LiquidQ(nn.Module):
    """Q(obs, action) as an LTC-NCP with one motor neuron, run over sequences."""

    recurrent = True

    def __init__(self, in_dim: int, *, n_neurons: int = 16, wiring_seed: int = 1,
                 ode_unfolds: int = 6, compiled: bool = False) -> None:
        super().__init__()
        wiring = NCPWiring(n_dof=1, neurons_per_dof=1, seed=wiring_seed, n_neurons=n_neurons)
        self.cell = LTCCell(wiring, in_dim, ode_unfolds=ode_unfolds, compiled=compiled)
        self.state_size = wiring.n_neurons

    def forward(self, x: Tensor, h: Tensor | None = None, resets: Tensor | None = None,
                return_states: bool = False) -> tuple[Tensor, Tensor]:
        y, h = self.cell(x, h, resets=resets, return_states=return_states)
        return y[..., 0], h


def run_with_next(net: nn.Module, x: Tensor, x_next: Tensor, h0: Tensor | None,
                  resets: Tensor | None) -> tuple[Tensor, Tensor]:
    """Outputs over the sequence x (B, T, F), and for each step t the output on
    x_next[:, t] from the state reached after step t (one batched step): the value of the
    true next observation even where an episode ended at t."""
    out, states = net(x, h0, resets=resets, return_states=True)
    b, t = x.shape[:2]
    h_next = states.reshape(b * t, -1) if states.shape[-1] else None
    out_next, _ = net(x_next.reshape(b * t, 1, -1), h_next)
    return out, out_next.reshape(b, t, *out_next.shape[2:])


def squashed_sample(mean: Tensor, log_std: Tensor, generator: torch.Generator | None
                    ) -> tuple[Tensor, Tensor]:
    """a = tanh(mean + std * eps) and its log density (with the tanh correction)."""
    std = log_std.exp()
    u = mean + std * torch.randn(mean.shape, generator=generator)
    a = torch.tanh(u)
    logp = gaussian_log_prob(u, mean, log_std)
    return a, logp - torch.log(1 - a**2 + 1e-6).sum(-1)


def gaussian_log_prob(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """Log density of a diagonal Gaussian, summed over the last dimension."""
    z = (x - mean) / log_std.exp()
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
