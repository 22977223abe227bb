"""`BatchedEnv`: many copies of an environment stepped in a few worker processes.

Each worker owns a contiguous slice of the envs and steps them in a loop; observations,
actions, rewards and flags live in shared memory, so one short pipe message per worker per
step is all the traffic. Episodes reset in the same step they end: the observation returned
is the first of the new episode and the last one of the old episode is in `final_obs`.
(Gymnasium's own vector envs work too: `gym.make_vec(id, num_envs, vectorization_mode=...)`.)
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import multiprocessing as mp
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from velora_robot.envs.base import RobotEnv, VecTask
from velora_robot.simulation.backend import Simulator

_CTX = mp.get_context("spawn")  # forking a process that holds torch or MuJoCo state is unsafe


@dataclass
class StepResult:
    """One step of all envs; `episodes` lists (return, length, mean tracking error or NaN)
    of episodes that ended."""

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    privileged: np.ndarray
    final_privileged: np.ndarray
    episodes: list[tuple[float, int, float]] = field(default_factory=list)


class _Buffers:
    """Shared arrays for n envs, viewed as numpy."""

    def __init__(self, n: int, obs_dim: int, act_dim: int, priv_dim: int,
                 raw: dict[str, Any] | None = None) -> None:
        shapes = {"obs": (n, obs_dim), "final_obs": (n, obs_dim), "action": (n, act_dim),
                  "reward": (n,), "terminated": (n,), "truncated": (n,),
                  "privileged": (n, priv_dim), "final_privileged": (n, priv_dim)}
        self.raw = raw or {k: _CTX.RawArray("f", int(np.prod(s))) for k, s in shapes.items()}
        for k, s in shapes.items():
            setattr(self, k, np.frombuffer(self.raw[k], dtype=np.float32).reshape(s))


def _task(env_id: str, n: int, kwargs: dict[str, Any], sim: Simulator | None = None
          ) -> VecTask:
    import velora_robot.envs  # noqa: F401  (registers the ids in a fresh process)

    env_cls = gym.spec(env_id).entry_point
    if isinstance(env_cls, str):
        module, _, name = env_cls.partition(":")
        env_cls = getattr(importlib.import_module(module), name)
    if not (isinstance(env_cls, type) and issubclass(env_cls, RobotEnv)):
        raise ValueError(f"{env_id} is not a velora_robot environment; use gym.make_vec")
    return env_cls.TASK(n, sim=sim, **kwargs)


class _Slice:
    """The robots of one worker, stepped as one vectorized task, with episode statistics."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], lo: int, hi: int,
                 buffers: _Buffers, sim: Simulator) -> None:
        self.task = _task(env_id, hi - lo, kwargs, sim)
        self.lo, self.hi, self.b = lo, hi, buffers
        self.returns = np.zeros(hi - lo)
        self.lengths = np.zeros(hi - lo, dtype=int)
        self.errors = np.zeros(hi - lo)  # the task's tracking error summed over the episode

    def reset(self, seed: int) -> None:
        for i in range(self.hi - self.lo):
            self.task.reset(i, seed=seed + self.lo + i)
        self._write_obs()
        self.returns[:] = 0
        self.lengths[:] = 0
        self.errors[:] = 0

    def _write_obs(self) -> None:
        self.b.obs[self.lo:self.hi] = self.task.observe()
        self.b.privileged[self.lo:self.hi] = self.task.privileged()

    def step(self) -> list[tuple[float, int, float]]:
        b, lo, hi = self.b, self.lo, self.hi
        reward, terminated, truncated, _ = self.task.step(b.action[lo:hi].astype(float))
        b.reward[lo:hi], b.terminated[lo:hi], b.truncated[lo:hi] = reward, terminated, truncated
        self.returns += reward
        self.lengths += 1
        self.errors += self.task.info().get("tracking_error", np.nan)
        done = np.nonzero(terminated | truncated)[0]
        ended = []
        if len(done):
            b.final_obs[lo + done] = self.task.observe()[done]
            b.final_privileged[lo + done] = self.task.privileged()[done]
            for i in done:
                ended.append((float(self.returns[i]), int(self.lengths[i]),
                              float(self.errors[i] / self.lengths[i])))
                self.task.reset(int(i))
            self.returns[done], self.lengths[done], self.errors[done] = 0.0, 0, 0.0
        self._write_obs()
        return ended

    def get_state(self) -> dict[str, Any]:
        # The current observations are saved, not re-observed: observing draws sensor noise.
        rows = slice(self.lo, self.hi)
        return {"task": self.task.get_state(), "returns": self.returns.copy(),
                "lengths": self.lengths.copy(), "errors": self.errors.copy(),
                "obs": self.b.obs[rows].copy(),
                "privileged": self.b.privileged[rows].copy()}

    def set_state(self, saved: dict[str, Any]) -> None:
        self.task.set_state(saved["task"])
        self.returns, self.lengths = saved["returns"].copy(), saved["lengths"].copy()
        # (a checkpoint from before episodes carried the error: those in flight report none)
        self.errors = saved.get("errors", np.full_like(self.returns, np.nan)).copy()
        self.b.obs[self.lo:self.hi] = saved["obs"]
        self.b.privileged[self.lo:self.hi] = saved["privileged"]


def _worker(pipe: Any, env_id: str, kwargs: dict[str, Any], lo: int, hi: int,
            dims: tuple[int, int, int, int], raw: dict[str, Any], sim: Simulator) -> None:
    try:
        part = _Slice(env_id, kwargs, lo, hi, _Buffers(*dims, raw=raw), sim)
        pipe.send(("ready", None))
        while True:
            command, arg = pipe.recv()
            if command == "step":
                pipe.send(("ok", part.step()))
            elif command == "reset":
                part.reset(arg)
                pipe.send(("ok", None))
            elif command == "get_state":
                pipe.send(("ok", part.get_state()))
            elif command == "set_state":
                part.set_state(arg)
                pipe.send(("ok", None))
            elif command == "level":
                part.task.set_randomization_level(arg)
                pipe.send(("ok", None))
            else:
                break
    except Exception as exc:  # report to the parent instead of dying silently
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()


class BatchedEnv:
    """`n_envs` copies of `env_id` stepped by `n_workers` processes, this one included
    (1 or 0: all in this process), each simulating its robots with `sim` (default: MuJoCo
    on one native thread); this process's share is scaled by `local_weight`."""

    def __init__(self, env_id: str, n_envs: int, n_workers: int = 2, *,
                 local_weight: float = 0.8, sim: Simulator | None = None,
                 **env_kwargs: Any) -> None:
        if n_envs < 1 or n_workers < 0:
            raise ValueError(f"need n_envs >= 1 and n_workers >= 0, got {n_envs}, {n_workers}")
        probe = _task(env_id, 1, env_kwargs)
        n_act = probe.spec.n_joints
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (probe.io.obs_dim,),
                                                       dtype=np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (n_act,), dtype=np.float32)
        dims = (n_envs, probe.io.obs_dim, n_act, probe.privileged().shape[1])
        self.n_envs = n_envs
        self.buffers = _Buffers(*dims)
        self._pipes: list[Any] = []
        self._procs: list[Any] = []
        # This process steps the first slice itself while the other workers step theirs,
        # so n_workers processes share the cores with no idle parent in between. It also
        # runs the policy between steps, so its slice is smaller (`local_weight`).
        k = max(1, min(n_workers, n_envs))
        weights = np.array([local_weight if k > 1 else 1.0] + [1.0] * (k - 1))
        bounds = np.round(np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * n_envs)
        bounds = bounds.astype(int)
        for i in range(1, k):  # every worker gets at least one env
            bounds[i] = min(max(bounds[i], bounds[i - 1] + 1), n_envs - (k - i))
        self.slices = [(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)]
        sim = sim or Simulator()
        if sim.backend != "mujoco" and k > 1:
            raise ValueError(f"the {sim.backend} backend simulates all robots in one process: "
                             f"n_workers must be 1, got {n_workers}")
        self._local = _Slice(env_id, env_kwargs, *self.slices[0], self.buffers, sim)
        for lo, hi in self.slices[1:]:
            parent, child = _CTX.Pipe()
            proc = _CTX.Process(target=_worker, daemon=True,
                                args=(child, env_id, env_kwargs, int(lo), int(hi), dims,
                                      self.buffers.raw, sim))
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)
        self._gather()

    def _gather(self) -> list[Any]:
        out = []
        for pipe in self._pipes:
            try:
                status, payload = pipe.recv()
            except EOFError:
                self.close()
                raise RuntimeError(
                    "a BatchedEnv worker process exited. Workers are spawned and import your "
                    "main script: keep the code that creates envs or trains under "
                    "`if __name__ == '__main__':`") from None
            if status == "error":
                self.close()
                raise RuntimeError(f"BatchedEnv worker failed: {payload}")
            out.append(payload)
        return out

    def reset(self, seed: int = 0) -> np.ndarray:
        """Reset every env (env i gets seed + i); returns observations (n_envs, obs_dim)."""
        for pipe in self._pipes:
            pipe.send(("reset", seed))
        self._local.reset(seed)
        self._gather()
        return self.buffers.obs.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        """Step all envs with `actions` (n_envs, act_dim)."""
        b = self.buffers
        b.action[:] = actions
        for pipe in self._pipes:
            pipe.send(("step", None))
        episodes = self._local.step()
        episodes += [e for part in self._gather() for e in part]
        return StepResult(b.obs.copy(), b.reward.copy(), b.terminated.astype(bool),
                          b.truncated.astype(bool), b.final_obs.copy(), b.privileged.copy(),
                          b.final_privileged.copy(), episodes)

    @property
    def privileged(self) -> np.ndarray:
        """The current privileged state of every env (n_envs, P)."""
        return self.buffers.privileged.copy()

    def get_state(self) -> list[dict[str, Any]]:
        """The state of every env (physics, tasks, generators), for an exact resume."""
        for pipe in self._pipes:
            pipe.send(("get_state", None))
        return [self._local.get_state(), *self._gather()]

    def set_state(self, saved: list[dict[str, Any]]) -> np.ndarray:
        """Restore a `get_state()` result; returns the current observations."""
        if len(saved) != 1 + len(self._pipes):
            raise ValueError(f"saved state has {len(saved)} slices, this BatchedEnv has "
                             f"{1 + len(self._pipes)} (use the same n_envs and n_workers)")
        for pipe, part in zip(self._pipes, saved[1:], strict=True):
            pipe.send(("set_state", part))
        self._local.set_state(saved[0])
        self._gather()
        return self.buffers.obs.copy()

    def set_randomization_level(self, level: float) -> None:
        """Narrow or widen every env's randomization (`VecTask.set_randomization_level`)."""
        for pipe in self._pipes:
            pipe.send(("level", level))
        self._local.task.set_randomization_level(level)
        self._gather()

    def close(self) -> None:
        """Stop the workers."""
        for pipe in self._pipes:
            with contextlib.suppress(BrokenPipeError, OSError):
                pipe.send(("close", None))
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._pipes, self._procs = [], []

    def __enter__(self) -> BatchedEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
