"""Recurrent PPO (Schulman et al. 2017) for liquid and MLP actors.

The update follows the paper and rsl_rl: clipped surrogate objective, clipped value loss,
entropy bonus, and an adaptive learning rate that keeps the KL divergence between the old
and new Gaussian policies near `desired_kl`. Environments clip actions to [-1, 1]; a mean
outside that range stops exploring (every sample is clipped to the same action), so an
optional bound loss (`bound_coef`, as rl_games' `bounds_loss`) pulls means back inside.
Recurrent actors are trained by truncated backpropagation through time over chunks of
`chunk_len` steps that start from the state the rollout had, with the state reset where
episodes began. While `imitating` (distillation, rl/teacher.py) the policy's loss is the
squared distance of its mean from the teacher's action instead of the surrogate, at a
fixed learning rate (the KL then measures imitation, not a trust region).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from velora_robot.rl.policies import gaussian_log_prob
from velora_robot.rl.storage import RolloutStorage
from velora_robot.rl.symmetry import Mirror

MAX_LOG_STD = 0.0  # exploration noise at most 1, the action range's half-width


class PPO:
    """Holds the actor, critic and optimizer; `act` during rollouts, `update` after."""

    def __init__(self, actor: nn.Module, critic: nn.Module, *, lr: float = 3e-4,
                 clip_param: float = 0.2, value_clip: float = 0.2, epochs: int = 5,
                 minibatches: int = 4, chunk_len: int = 16, gamma: float = 0.99,
                 lam: float = 0.95, entropy_coef: float = 0.0, value_coef: float = 1.0,
                 max_grad_norm: float = 1.0, desired_kl: float | None = 0.01,
                 bound_coef: float = 0.0, action_std: float | None = None,
                 lr_bounds: tuple[float, float] = (1e-5, 1e-2), mirror: Mirror | None = None,
                 symmetry_coef: float = 1.0) -> None:
        self.actor, self.critic = actor, critic
        self.lr, self.clip_param, self.value_clip = lr, clip_param, value_clip
        self.epochs, self.minibatches, self.chunk_len = epochs, minibatches, chunk_len
        self.gamma, self.lam = gamma, lam
        self.entropy_coef, self.value_coef = entropy_coef, value_coef
        self.bound_coef = bound_coef
        self.max_grad_norm, self.desired_kl, self.lr_bounds = max_grad_norm, desired_kl, lr_bounds
        self.optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=lr)
        # Exploration noise held at `action_std` (the actor's learned log_std then goes
        # unused): a policy trained with wide noise learns to push through it and, run
        # without it as on the robot, overshoots; a low-noise stage makes training act as
        # the robot will.
        self.fixed_log_std = (None if action_std is None else
                              torch.full_like(actor.log_std, math.log(action_std)))
        self.hold_noise = True  # False: the learned noise for now (see `action_std_from`)
        self.imitating = False  # True: learn the teacher's actions (storage.teacher)
        # Mirror symmetry (rl/symmetry.py): the mean on each chunk's mirror image should be
        # the mirror image of the mean; a squared-error loss, weighted by `symmetry_coef`.
        self.mirror, self.symmetry_coef = mirror, symmetry_coef

    def noise_log_std(self) -> Tensor:
        """The exploration noise's log standard deviation: learned, or held fixed."""
        if self.fixed_log_std is None or not self.hold_noise:
            # At most the action range: the env clips actions to [-1, 1], so wider noise
            # explores nothing, yet the entropy bonus alone keeps widening it (the G1's grew
            # to a standard deviation of 10 and it never learned to step).
            return self.actor.log_std.clamp(max=MAX_LOG_STD)
        return self.fixed_log_std

    @torch.no_grad()
    def act(self, obs: Tensor, h: Tensor, starts: Tensor, generator: torch.Generator
            ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Sample actions for one step of N envs: returns action, log prob, mean, new state."""
        mean, h = self.actor(obs.unsqueeze(1), h, resets=starts.unsqueeze(1))
        mean = mean.squeeze(1)
        log_std = self.noise_log_std()
        action = mean + log_std.exp() * torch.randn(mean.shape, generator=generator)
        return action, gaussian_log_prob(action, mean, log_std), mean, h

    def update(self, storage: RolloutStorage, generator: torch.Generator) -> dict[str, float]:
        """Several epochs of minibatch updates on one rollout; returns mean losses and KL."""
        # The step size (adaptive learning rate) is the KL from the policy as it was when
        # this update started: the acting one, or, for a rollout acted one update back
        # (physics and learning overlapped), this policy's own means on it.
        data = storage.sequences(self.chunk_len)
        old_log_std = storage.log_std
        if storage.lagged:
            with torch.no_grad():
                data["mean"], _ = self.actor(data["obs"], data["h0"], resets=data["starts"])
            old_log_std = self.noise_log_std().detach().clone()
        totals = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "kl": 0.0}
        if self.mirror is not None:
            totals["symmetry_loss"] = 0.0
        count = 0
        for _ in range(self.epochs):
            for mb in storage.chunks(self.chunk_len, self.minibatches, generator, data):
                mean, _ = self.actor(mb["obs"], mb["h0"], resets=mb["starts"])
                log_std = self.noise_log_std()
                logp = gaussian_log_prob(mb["actions"], mean, log_std)
                entropy = (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum()
                kl = _gaussian_kl(mb["mean"], old_log_std, mean, log_std).mean()
                if not self.imitating:
                    self._adapt_lr(kl.item())

                advantages = mb["advantages"]
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                # Clipped surrogate: never move the probability ratio far from 1 in one step.
                ratio = torch.exp(logp - mb["logp"])
                surrogate = torch.max(
                    -advantages * ratio,
                    -advantages * ratio.clamp(1 - self.clip_param, 1 + self.clip_param))
                # Clipped value loss: the value may not jump far from its rollout estimate.
                values = self.critic(mb["critic_obs"])
                clipped = mb["values"] + (values - mb["values"]).clamp(-self.value_clip,
                                                                      self.value_clip)
                value_loss = torch.max((values - mb["returns"]) ** 2,
                                       (clipped - mb["returns"]) ** 2)
                # Means beyond the action range: squared excess, summed over joints.
                bound = (torch.relu(mean.abs() - 1.0) ** 2).sum(-1).mean()
                policy_loss = surrogate.mean()
                if self.imitating:  # squared error to the teacher's action, summed over joints
                    policy_loss = ((mean - mb["teacher"]) ** 2).sum(-1).mean()
                loss = (policy_loss + self.value_coef * value_loss.mean()
                        - self.entropy_coef * entropy + self.bound_coef * bound)
                if self.mirror is not None:
                    image, _ = self.actor(mb["obs_mirror"], mb["h0_mirror"],
                                          resets=mb["starts"])
                    symmetry = ((image - self.mirror.action(mean).detach()) ** 2).sum(-1).mean()
                    loss = loss + self.symmetry_coef * symmetry
                    totals["symmetry_loss"] += float(symmetry.detach())

                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_([*self.actor.parameters(), *self.critic.parameters()],
                                         self.max_grad_norm)
                self.optimizer.step()
                for name, value in (("policy_loss", policy_loss),
                                    ("value_loss", value_loss.mean()), ("entropy", entropy),
                                    ("kl", kl)):
                    totals[name] += float(value.detach())
                count += 1
        return {**{k: v / count for k, v in totals.items()}, "lr": self.lr}

    def _adapt_lr(self, kl: float) -> None:
        """Shrink the step when the policy moved too far, grow it when it barely moved."""
        if self.desired_kl is None:
            return
        if kl > 2.0 * self.desired_kl:
            self.lr = max(self.lr / 1.5, self.lr_bounds[0])
        elif 0.0 < kl < 0.5 * self.desired_kl:
            self.lr = min(self.lr * 1.5, self.lr_bounds[1])
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def carry_lr(self, state: dict) -> None:
        """A stage that starts from an earlier run's networks (`init_from`) starts at that
        run's adapted learning rate where it is lower than the recipe's, since the rate
        adapts here (`desired_kl`): with fresh optimizer moments the recipe's 1e-3 moved the
        G1's MLP to a KL of 4.7 in its first update, where its run had settled near 1e-5."""
        if self.desired_kl is None or "lr" not in state:
            return
        self.lr = max(min(self.lr, float(state["lr"])), self.lr_bounds[0])
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def state_dict(self) -> dict:
        """Optimizer state and the adapted learning rate (the networks save themselves)."""
        return {"optimizer": self.optimizer.state_dict(), "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr = state["lr"]


def _gaussian_kl(mean_old: Tensor, log_std_old: Tensor, mean: Tensor, log_std: Tensor
                 ) -> Tensor:
    """KL(old || new) of diagonal Gaussians, summed over action dimensions."""
    var_old, var = (2 * log_std_old).exp(), (2 * log_std).exp()
    return (log_std - log_std_old + (var_old + (mean_old - mean) ** 2) / (2 * var) - 0.5).sum(-1)
