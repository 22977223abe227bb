"""`DeployPolicy`: the part of a trained agent that runs on the robot, as one traceable
module — raw observation and recurrent state in, action and next state out.

Observation normalization is baked in, the action is deterministic (the mean, squashed or
clipped to [-1, 1] as in training), and the liquid cell's derived parameters (softplus,
padding) are frozen as constants, so the exported graph is exactly the training-time step
function `ltc_step` and nothing else.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from velora_robot.liquid.ltc_cell import _Derived, _Synapses, joint_actions, ltc_step
from velora_robot.rl.agent import Agent, deterministic_action
from velora_robot.rl.policies import LiquidActor

# An MLP actor has no state; exported graphs still carry one element so that every policy
# has the same two inputs and two outputs.
MIN_STATE = 1


class DeployPolicy(nn.Module):
    """obs (1, F) float32, state (1, S) float32 -> action (1, A), next state (1, S)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__()
        self.register_buffer("obs_mean", agent.obs_norm.mean.detach().clone())
        self.register_buffer("obs_std", torch.sqrt(agent.obs_norm.var + agent.obs_norm.eps)
                             .detach().clone())
        self.clip = agent.obs_norm.clip
        self.squash = agent.squash
        actor = agent.actor
        self.liquid = isinstance(actor, LiquidActor)
        if self.liquid:
            cell = actor.cell
            with torch.no_grad():
                derived = cell._derive()
            self._frozen = _freeze(derived)
            for name, value in self._frozen.items():
                if isinstance(value, Tensor):
                    self.register_buffer(name, value)
            self.unfolds, self.n_motor, self.epsilon = cell.ode_unfolds, cell.n_motor, cell.epsilon
            self.neurons_per_dof = cell.wiring.neurons_per_dof
            self.state_size = cell.n_neurons
        else:
            self.net = actor.net
            self.state_size = MIN_STATE

    def forward(self, obs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        x = ((obs - self.obs_mean) / self.obs_std).clamp(-self.clip, self.clip)
        if self.liquid:
            y, v = ltc_step(x, state.t(), float(self.unfolds), self._derived(), self.unfolds,
                            self.n_motor, self.epsilon)
            mean, next_state = joint_actions(y, self.neurons_per_dof), v.t()
        else:
            mean, next_state = self.net(x), state
        return deterministic_action(mean, self.squash), next_state

    def _derived(self) -> _Derived:
        f = self._frozen
        syn = {}
        for layer in ("inner", "sensory"):
            syn[layer] = _Synapses(getattr(self, f"{layer}_weights"),
                                   getattr(self, f"{layer}_sigma"),
                                   getattr(self, f"{layer}_bias"), getattr(self, f"{layer}_src"),
                                   f[f"{layer}_pad"])
        return _Derived(inner=syn["inner"], sensory=syn["sensory"], gleak=self.gleak,
                        leak=self.leak, cm=self.cm, input_w=self.input_w,
                        input_b=self.input_b, output_w=self.output_w, output_b=self.output_b,
                        residual=getattr(self, "residual", None))


def _freeze(derived: _Derived) -> dict[str, object]:
    """The derived tensors as detached copies under flat names (the pads stay tuples)."""
    out: dict[str, object] = {}
    for layer in ("inner", "sensory"):
        syn = getattr(derived, layer)
        for field in ("weights", "sigma", "bias", "src"):
            out[f"{layer}_{field}"] = getattr(syn, field).detach().clone()
        out[f"{layer}_pad"] = syn.pad
    for field in ("gleak", "leak", "cm", "input_w", "input_b", "output_w", "output_b",
                  "residual"):
        value = getattr(derived, field)
        if value is not None:
            out[field] = value.detach().clone()
    return out
