"""On-policy collection: `collect_rollout` fills a `RolloutStorage` with one rollout of
every robot (GAE included) and carries the actor state from one rollout to the next;
`Overlapped` collects the next rollout on a thread while PPO learns from the current one.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import torch

from velora_robot.rl.agent import Agent
from velora_robot.rl.ppo import PPO
from velora_robot.rl.storage import RolloutStorage
from velora_robot.rl.symmetry import Mirror
from velora_robot.rl.teacher import Teacher


def collect_rollout(env: Any, agent: Agent, algo: PPO, storage: RolloutStorage,
                    generator: torch.Generator, carry: dict[str, Any], recent: deque,
                    mirror: Mirror | None = None, outcomes: deque | None = None,
                    teacher: Teacher | None = None) -> dict[str, Any]:
    """One rollout of `storage.steps` steps into `storage` (GAE included); with a mirror,
    each step's mirror image too (its observation, and the state of the actor run on the
    mirrored observations); with a teacher, its action at each step. `outcomes` gets, per
    episode that ended, whether it ran to its time limit, its return, its mean tracking
    error and its length in steps."""
    gamma = algo.gamma
    storage.log_std.copy_(algo.noise_log_std().detach())
    obs_np, priv_np, h, starts = carry["obs"], carry["priv"], carry["h"], carry["starts"]
    h_mirror, h_teacher = carry.get("h_mirror"), carry.get("h_teacher")
    with torch.no_grad():
        for t in range(storage.steps):
            obs = torch.from_numpy(obs_np).float()
            priv = torch.from_numpy(priv_np).float()
            agent.obs_norm.update(obs)
            if mirror is not None:  # the normalization sees both images: it stays symmetric
                agent.obs_norm.update(mirror.obs(obs))
            if agent.priv_dim:
                agent.priv_norm.update(priv[:, :agent.priv_dim])
            obs_n = agent.obs_norm(obs)
            critic_in = agent.critic_input(obs_n, priv)
            h = h * (~starts).unsqueeze(1)
            storage.hidden[t], storage.starts[t] = h, starts
            action, logp, mean, h = algo.act(obs_n, h, starts, generator)
            if mirror is not None:
                h_mirror = h_mirror * (~starts).unsqueeze(1)
                storage.hidden_mirror[t] = h_mirror
                storage.obs_mirror[t] = obs_image = agent.obs_norm(mirror.obs(obs))
                _, h_mirror = agent.actor(obs_image.unsqueeze(1), h_mirror,
                                          resets=starts.unsqueeze(1))
            if teacher is not None:
                storage.teacher[t], h_teacher = teacher.act(obs_np, h_teacher, starts)
            result = env.step(action.numpy())
            reward = torch.from_numpy(result.reward).float()
            truncated = torch.from_numpy(result.truncated)
            if truncated.any():  # a time limit is not a failure: bootstrap from V(s_T)
                final = agent.critic_input(agent.obs_norm(torch.from_numpy(result.final_obs)),
                                           torch.from_numpy(result.final_privileged))
                reward += gamma * agent.critic(final) * truncated
            done = torch.from_numpy(result.terminated | result.truncated)
            storage.obs[t], storage.critic_obs[t] = obs_n, critic_in
            storage.actions[t], storage.logp[t], storage.mean[t] = action, logp, mean
            storage.values[t] = agent.critic(critic_in)
            storage.rewards[t], storage.dones[t] = reward, done.float()
            recent.extend(result.episodes)
            if outcomes is not None:  # (ran to the time limit, return, error, length)
                ended = result.truncated[result.terminated | result.truncated]
                outcomes.extend((bool(full), ret, err, length) for full, (ret, length, err)
                                in zip(ended.tolist(), result.episodes, strict=True))
            obs_np, priv_np, starts = result.obs, result.privileged, done
        last_in = agent.critic_input(agent.obs_norm(torch.from_numpy(obs_np).float()),
                                     torch.from_numpy(priv_np).float())
        storage.compute_returns(agent.critic(last_in), gamma, algo.lam)
    carry = {"obs": obs_np, "priv": priv_np, "h": h, "starts": starts}
    if mirror is not None:
        carry["h_mirror"] = h_mirror
    if h_teacher is not None:  # (after the teacher's part of the run, its state rests)
        carry["h_teacher"] = h_teacher
    return carry


class Overlapped:
    """PPO with physics and learning overlapped: while the learner updates on one rollout,
    a thread collects the next (MuJoCo steps the robots with the GIL released) with a
    frozen copy of the actor and critic, one update behind. The update stays correct: PPO's
    ratio and KL are taken against the acting policy's probabilities, which the rollout
    records. The collecting thread draws from its own generator; a rollout collected but
    not yet learned from is saved with the checkpoint, so resume stays exact."""

    def __init__(self, storage: RolloutStorage, action_std_from: int, steps: int,
                 mirror: Mirror | None, seed: int, outcomes: deque | None) -> None:
        self.outcomes = outcomes
        self.current = storage
        self.spare = RolloutStorage(storage.steps, storage.rewards.shape[1],
                                    storage.obs.shape[2], storage.critic_obs.shape[2],
                                    storage.actions.shape[2], storage.hidden.shape[2],
                                    mirrored=storage.mirrored)
        self.filled = False  # `current` holds a rollout not yet learned from
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.action_std_from, self.steps, self.mirror = action_std_from, steps, mirror

    def iteration(self, env: Any, agent: Agent, algo: PPO, carry: dict[str, Any],
                  recent: deque, generator: torch.Generator, env_steps: int, last: bool
                  ) -> tuple[dict[str, Any], dict[str, float], tuple[float, float]]:
        """Learn from the current rollout while the next one is collected (none after the
        last update); returns the carry, the update's metrics and (collect_s, learn_s) of
        the time each side ran."""
        torch.set_num_threads(1)  # two sides, each on its own core
        collect_s = 0.0
        if not self.filled:  # the first rollout of the run has nobody to overlap with
            start = time.perf_counter()
            carry = collect_rollout(env, agent, algo, self.current, self.generator, carry,
                                    recent, self.mirror, self.outcomes)
            collect_s = time.perf_counter() - start
        job = None
        if not last:
            acting_agent, acting = _frozen(agent, algo)
            acting.hold_noise = env_steps + self.steps >= self.action_std_from
            self.spare.lagged = True
            job = _Job(collect_rollout, env, acting_agent, acting, self.spare, self.generator,
                       carry, recent, self.mirror, self.outcomes)
        start = time.perf_counter()
        metrics = algo.update(self.current, generator)
        learn_s = time.perf_counter() - start
        self.filled = job is not None
        if job is not None:
            carry, seconds = job.result()
            collect_s += seconds
            self.current, self.spare = self.spare, self.current
        return carry, metrics, (collect_s, learn_s)

    def state_dict(self) -> dict[str, Any]:
        """The collecting side's generator and the rollout waiting to be learned from."""
        return {"generator": self.generator.get_state(),
                "rollout": self.current.state_dict() if self.filled else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` result."""
        self.generator.set_state(state["generator"])
        self.filled = self.current.lagged = state["rollout"] is not None
        if self.filled:
            self.current.load_state_dict(state["rollout"])


def _frozen(agent: Agent, algo: PPO) -> tuple[Agent, PPO]:
    """Copies of the agent and PPO acting with the networks' present weights (the
    normalizers stay shared: only collection updates them)."""
    # a deep copy (a shallow one of a Module would share its submodule dict), but for the
    # normalizers
    shared = {id(norm): norm for norm in (agent.obs_norm, agent.priv_norm)}
    acting_agent = copy.deepcopy(agent, memo=shared)
    acting = copy.copy(algo)
    acting.actor, acting.critic = acting_agent.actor, acting_agent.critic
    return acting_agent, acting


class _Job:
    """`fn(*args)` on a thread of its own; `result()` waits for it and returns its value and
    the seconds it ran (re-raising its exception)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._seconds = 0.0

        def run() -> None:
            start = time.perf_counter()
            try:
                self._value = fn(*args)
            except BaseException as exc:  # handed to the waiting thread
                self._error = exc
            self._seconds = time.perf_counter() - start

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> tuple[Any, float]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value, self._seconds
