"""One training iteration per algorithm family, behind the interface the trainer calls
(`start`, `iteration`, `state_dict`, `load_state_dict`): `OnPolicyLoop` collects a rollout
(here, on Ray workers, or overlapped with learning; with a mirror or a teacher) and runs
PPO's update; `OffPolicyLoop` steps the robots into the sequence replay, each step followed
by SAC's or TD3's updates. The trainer itself knows no algorithm."""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

import numpy as np
import torch

from velora_robot.rl.agent import Agent
from velora_robot.rl.ppo import PPO
from velora_robot.rl.recipe import PPOSection, Recipe
from velora_robot.rl.replay import SequenceReplay
from velora_robot.rl.rollout import Overlapped, collect_rollout
from velora_robot.rl.sac import SAC
from velora_robot.rl.storage import RolloutStorage
from velora_robot.rl.symmetry import Mirror
from velora_robot.rl.td3 import TD3
from velora_robot.rl.teacher import Teacher

# What `iteration` returns: the carried rollout state, the update's metrics, and the
# seconds spent collecting and learning (None where the two interleave step by step).
Iteration = tuple[dict[str, Any], dict[str, float], tuple[float, float] | None]
STALL_WINDOW = 100  # updates of PPO at its learning rate's floor before the run is told


class OnPolicyLoop:
    """PPO: a rollout of `steps` steps per robot into the storage, then the update."""

    def __init__(self, recipe: Recipe, agent: Agent, algo: PPO, n: int, obs_dim: int,
                 act_dim: int, mirror: Mirror | None, outcomes: deque | None) -> None:
        cfg = recipe.algorithm
        assert isinstance(cfg, PPOSection)
        self.cfg, self.algo, self.threads = cfg, algo, recipe.threads
        self.mirror, self.outcomes = mirror, outcomes
        self.teacher = Teacher(cfg.teacher, obs_dim, act_dim, recipe.env.id,
                               f"recipe {recipe.name!r}: field 'algorithm.teacher'"
                               ) if cfg.teacher is not None else None
        self.cluster = recipe.cluster is not None  # the workers carry the rollout's state
        self.steps = cfg.steps_per_env
        self.storage = RolloutStorage(self.steps, n, obs_dim, obs_dim + agent.priv_dim,
                                      act_dim, agent.actor.state_size,
                                      mirrored=mirror is not None,
                                      taught=self.teacher is not None)
        self.overlapped = Overlapped(self.storage, cfg.action_std_from, n * self.steps, mirror,
                                     recipe.seed, outcomes) if cfg.overlap else None
        self.step_size = StepSizeWatch(algo.lr_bounds[0], cfg.desired_kl, n * self.steps,
                                       STALL_WINDOW)

    def start(self, carry: dict[str, Any]) -> dict[str, Any]:
        """The first carry of a run: the mirrored stream's and the teacher's states too."""
        n = carry["h"].shape[0]
        if self.mirror is not None:
            carry["h_mirror"] = torch.zeros_like(carry["h"])
        if self.teacher is not None:
            carry["h_teacher"] = self.teacher.initial_state(n)
        return carry

    def iteration(self, env: Any, agent: Agent, carry: dict[str, Any], recent: deque,
                  generator: torch.Generator, env_steps: int, last: bool) -> Iteration:
        """One rollout and one update."""
        carry, metrics, split = self._iteration(env, agent, carry, recent, generator,
                                                env_steps, last)
        if (warning := self.step_size.see(metrics)) is not None:
            print(f"\nvelora-robot train: {warning}", file=sys.stderr, flush=True)
        return carry, metrics, split

    def _iteration(self, env: Any, agent: Agent, carry: dict[str, Any], recent: deque,
                   generator: torch.Generator, env_steps: int, last: bool) -> Iteration:
        algo, cfg = self.algo, self.cfg
        algo.hold_noise = env_steps >= cfg.action_std_from
        if self.overlapped is not None:
            return self.overlapped.iteration(env, agent, algo, carry, recent, generator,
                                             env_steps, last)
        algo.imitating = self.teacher is not None and env_steps < cfg.teacher_until
        start = time.perf_counter()
        torch.set_num_threads(1)
        if self.cluster:
            env.collect(agent, algo, self.storage, recent, self.outcomes)
        else:
            carry = collect_rollout(env, agent, algo, self.storage, generator, carry, recent,
                                    self.mirror, self.outcomes,
                                    self.teacher if algo.imitating else None)
        collected = time.perf_counter()
        torch.set_num_threads(self.threads)
        metrics = algo.update(self.storage, generator)
        if self.teacher is not None:
            metrics = {**metrics, "imitating": int(algo.imitating)}
        return carry, metrics, (collected - start, time.perf_counter() - collected)

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's part: the rollout collected but not yet learned from, and
        which teacher taught (for the model card)."""
        return {"overlap": None if self.overlapped is None else self.overlapped.state_dict(),
                "replay": None, "teacher": None if self.teacher is None else self.teacher.record}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` result (the checkpoint itself may be given)."""
        if self.overlapped is not None:
            self.overlapped.load_state_dict(state["overlap"])


class StepSizeWatch:
    """Says once when PPO's KL-adapted learning rate has sat near its floor for `window`
    updates while the KL between updates stays at its target: the rate cannot shrink the
    steps further, so each update's gradient is mostly noise (Adam's steps are as long
    whatever the signal) and the run stalls. More samples per update is the remedy."""

    def __init__(self, lr_floor: float, desired_kl: float | None, samples: int,
                 window: int) -> None:
        self.lr_floor, self.desired_kl, self.samples = lr_floor, desired_kl, samples
        self.recent: deque[tuple[float, float]] = deque(maxlen=window)
        self.said = False

    def see(self, metrics: dict[str, float]) -> str | None:
        """Take one update's metrics; the warning, the first time the run stalls."""
        if self.said or self.desired_kl is None or "kl" not in metrics or \
                metrics.get("imitating"):  # the rate holds while a teacher teaches
            return None
        self.recent.append((metrics["lr"], metrics["kl"]))
        if len(self.recent) < (self.recent.maxlen or 0):
            return None
        lrs, kls = (np.array(column) for column in zip(*self.recent, strict=True))
        if np.median(lrs) > 2.0 * self.lr_floor or np.median(kls) < 0.5 * self.desired_kl:
            return None
        self.said = True
        return (f"PPO's learning rate has sat near its floor ({self.lr_floor:g}; median "
                f"{np.median(lrs):.2g} over the last {len(lrs)} updates) while the KL between "
                f"updates stays at {np.median(kls):.3f} (target {self.desired_kl:g}): each "
                f"update's gradient is mostly noise and the run learns little. Give an update "
                f"more samples: env.n_envs x algorithm.steps_per_env is {self.samples:,} "
                "(docs/training.md)")


class OffPolicyLoop:
    """SAC and TD3: `steps` vector steps into the replay, each followed by gradient updates
    once the replay holds `learning_starts` env steps (random actions until then)."""

    def __init__(self, recipe: Recipe, agent: Agent, algo: SAC | TD3, n: int, obs_dim: int,
                 act_dim: int) -> None:
        cfg = self.cfg = recipe.algorithm
        assert not isinstance(cfg, PPOSection)
        self.algo, self.steps = algo, cfg.steps_per_iteration
        self.replay = SequenceReplay(n, max(cfg.burn_in + cfg.seq_len, cfg.buffer_size // n),
                                     obs_dim, act_dim, agent.actor.state_size)

    def start(self, carry: dict[str, Any]) -> dict[str, Any]:
        """The first carry of a run, as it is."""
        return carry

    def iteration(self, env: Any, agent: Agent, carry: dict[str, Any], recent: deque,
                  generator: torch.Generator, env_steps: int, last: bool) -> Iteration:
        """`steps` steps of every robot, with their updates."""
        algo, cfg = self.algo, self.cfg
        obs_np, h, starts = carry["obs"], carry["h"], carry["starts"]
        n = obs_np.shape[0]
        totals: dict[str, list[float]] = {}
        for k in range(self.steps):
            obs = torch.from_numpy(obs_np).float()
            agent.obs_norm.update(obs)
            h = h * (~starts).unsqueeze(1)
            action, h_next = algo.act(agent.obs_norm(obs), h, starts, generator)
            if env_steps + k * n < cfg.learning_starts:
                action = torch.rand(action.shape, generator=generator) * 2 - 1
            result = env.step(action.numpy())
            done = result.terminated | result.truncated
            next_obs = np.where(done[:, None], result.final_obs, result.obs)
            self.replay.add(obs=obs_np, next_obs=next_obs, action=action.numpy(),
                            reward=result.reward, terminated=result.terminated,
                            start=starts.numpy(), hidden=h.numpy())
            recent.extend(result.episodes)
            obs_np, h, starts = result.obs, h_next, torch.from_numpy(done)
            ready = self.replay.size >= cfg.burn_in + cfg.seq_len
            if env_steps + (k + 1) * n >= cfg.learning_starts and ready:
                for _ in range(cfg.updates_per_step):
                    for name, value in algo.update(self.replay, generator).items():
                        totals.setdefault(name, []).append(value)
        return ({"obs": obs_np, "priv": carry["priv"], "h": h, "starts": starts},
                {name: float(np.mean(values)) for name, values in totals.items()}, None)

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's part: the replay."""
        return {"replay": self.replay.state_dict(), "overlap": None, "teacher": None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` result (the checkpoint itself may be given)."""
        self.replay.load_state_dict(state["replay"])
