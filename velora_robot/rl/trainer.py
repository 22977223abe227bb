"""`train(recipe)`: the loop that turns a recipe into a trained agent — rollouts, PPO
updates, a progress line, metrics, atomic checkpoints and an exact `--resume`.

A checkpoint holds everything the next update depends on: networks, normalizers, optimizer
and learning rate, the sampling generator, the rollout's carried state (observations, actor
state, episode flags) and, for velora_robot envs, the envs' full physics and task state. So
a run killed after a checkpoint and resumed makes the same updates as one never stopped.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from velora_robot.errors import ConfigError
from velora_robot.rl.agent import Agent
from velora_robot.rl.ppo import PPO
from velora_robot.rl.recipe import Recipe
from velora_robot.rl.run_log import RunLog
from velora_robot.rl.storage import RolloutStorage
from velora_robot.rl.vec_env import make_vec_env

CHECKPOINT = "checkpoint.pt"


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a reader (or a
    crash) never sees a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `train` (our own file: full unpickling is intended)."""
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}: nothing to resume")
    return torch.load(path, map_location="cpu", weights_only=False)


class _Progress:
    """One status line: steps/s, return, ETA (rewritten in place on a terminal)."""

    def __init__(self, total_updates: int, enabled: bool) -> None:
        self.total, self.enabled = total_updates, enabled
        self.tty = sys.stderr.isatty()

    def show(self, update: int, steps: int, rate: float, ret: float | None) -> None:
        if not self.enabled or (not self.tty and update % 10 and update != self.total):
            return
        eta = (self.total - update) * (steps / max(update, 1)) / max(rate, 1e-9)
        ret_txt = "   n/a" if ret is None else f"{ret:8.2f}"
        line = (f"update {update:>5}/{self.total}  {steps:>10,} steps  {rate:>7,.0f} steps/s  "
                f"return {ret_txt}  ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr,
              flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


def train(recipe: Recipe, *, resume: bool = False, wandb: bool | None = None,
          progress: bool = True, stop_after: int | None = None) -> dict[str, Any]:
    """Run (or continue) the recipe; returns a summary. `stop_after` ends the run after that
    many updates in total (a planned stop, as if killed after the checkpoint)."""
    torch.set_num_threads(recipe.threads)
    run_dir = recipe.run_dir
    ckpt = load_checkpoint(run_dir / CHECKPOINT) if resume else None
    if ckpt is not None and ckpt["recipe"] != recipe.model_dump():
        raise ConfigError(f"{run_dir / CHECKPOINT} was written by a different recipe; resume "
                          "with the recipe that started the run, or change `name`")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.json").write_text(recipe.model_dump_json(indent=2))

    algo_cfg, env_cfg = recipe.algorithm, recipe.env
    env = make_vec_env(env_cfg.id, env_cfg.n_envs, env_cfg.n_workers, **env_cfg.kwargs)
    n, t_steps = env.n_envs, algo_cfg.steps_per_env
    obs_dim = env.single_observation_space.shape[0]
    act_dim = env.single_action_space.shape[0]
    torch.manual_seed(recipe.seed)
    obs_np = env.reset(seed=recipe.seed)
    first = env.step(np.zeros((n, act_dim), np.float32))  # learn the privileged width
    priv_dim = first.privileged.shape[1]
    obs_np, priv_np = env.reset(seed=recipe.seed), first.privileged
    agent = Agent(recipe.policy, obs_dim, act_dim, priv_dim)
    algo = PPO(agent.actor, agent.critic, **algo_cfg.model_dump(
        exclude={"name", "steps_per_env"}))
    generator = torch.Generator().manual_seed(recipe.seed)
    state_size = agent.actor.state_size
    h = torch.zeros(n, state_size)
    starts = torch.ones(n, dtype=torch.bool)
    recent: deque[float] = deque(maxlen=100)
    recent_len: deque[int] = deque(maxlen=100)
    update, env_steps, wall = 0, 0, 0.0
    wandb_id = None
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
        algo.load_state_dict(ckpt["algo"])
        generator.set_state(ckpt["generator"])
        update, env_steps, wall = ckpt["update"], ckpt["env_steps"], ckpt["wall_s"]
        recent.extend(ckpt["recent_returns"])
        recent_len.extend(ckpt["recent_lengths"])
        wandb_id = ckpt.get("wandb_id")
        if ckpt["env_state"] is not None:
            env.set_state(ckpt["env_state"])
            obs_np, priv_np = ckpt["obs"], ckpt["priv"]
            h, starts = ckpt["h"], ckpt["starts"]
        else:  # an env without snapshots: continue from fresh episodes
            obs_np, priv_np = env.reset(seed=recipe.seed + 1000 * update), priv_np * 0
    else:
        priv_np = _fresh_privileged(env, priv_np)

    total_updates = math.ceil(recipe.budget.env_steps / (n * t_steps))
    use_wandb = recipe.logging.wandb if wandb is None else wandb
    log = RunLog(run_dir, keep_until=update if ckpt is not None else None, wandb=use_wandb,
                 project=recipe.logging.wandb_project, name=recipe.name,
                 config=recipe.model_dump(), wandb_id=wandb_id)
    bar = _Progress(total_updates, progress)
    storage = RolloutStorage(t_steps, n, obs_dim, obs_dim + agent.priv_dim, act_dim, state_size)
    last = stop_after if stop_after is not None else total_updates
    try:
        while update < min(total_updates, last):
            start = time.perf_counter()
            obs_np, priv_np, h, starts = _collect(env, agent, algo, storage, generator,
                                                  obs_np, priv_np, h, starts, recent,
                                                  recent_len)
            metrics = algo.update(storage, generator)
            update += 1
            env_steps += n * t_steps
            elapsed = time.perf_counter() - start
            wall += elapsed
            ret = float(np.mean(recent)) if recent else None
            log.log({"update": update, "env_steps": env_steps, "wall_s": round(wall, 3),
                     "steps_per_s": n * t_steps / elapsed, "return_mean": ret,
                     "length_mean": float(np.mean(recent_len)) if recent_len else None,
                     **metrics})
            bar.show(update, env_steps, n * t_steps / elapsed, ret)
            if update % recipe.logging.checkpoint_every == 0 or update == total_updates:
                snapshot = env.get_state() if hasattr(env, "get_state") else None
                save_atomic({
                    "recipe": recipe.model_dump(), "update": update, "env_steps": env_steps,
                    "wall_s": wall, "agent": agent.state_dict(), "algo": algo.state_dict(),
                    "generator": generator.get_state(), "env_state": snapshot,
                    "obs": obs_np, "priv": priv_np, "h": h, "starts": starts,
                    "recent_returns": list(recent), "recent_lengths": list(recent_len),
                    "wandb_id": log.wandb_id, "obs_dim": obs_dim, "act_dim": act_dim,
                    "priv_dim": priv_dim,
                }, run_dir / CHECKPOINT)
    finally:
        bar.close()
        env.close()
    summary: dict[str, Any] = {"run_dir": str(run_dir), "updates": update,
                               "env_steps": env_steps, "wall_s": wall,
                               "return_mean": float(np.mean(recent)) if recent else None,
                               "actor_parameters": agent.actor_parameters}
    if update == total_updates:
        log.plot(run_dir / "curve.png", recipe.name)
        if recipe.eval.episodes:
            from velora_robot.rl.evaluate import evaluate

            summary["eval"] = evaluate(agent, env_cfg.id, recipe.eval.episodes,
                                       seed=recipe.seed + 10_000, **env_cfg.kwargs)
            (run_dir / "eval.json").write_text(__import__("json").dumps(summary["eval"],
                                                                        indent=2))
    log.close()
    return summary


def _fresh_privileged(env: Any, priv: np.ndarray) -> np.ndarray:
    """Privileged state right after reset (velora envs keep it in their shared buffers)."""
    buffers = getattr(env, "buffers", None)
    return buffers.privileged.copy() if buffers is not None else priv


def _collect(env: Any, agent: Agent, algo: PPO, storage: RolloutStorage,
             generator: torch.Generator, obs_np: np.ndarray, priv_np: np.ndarray,
             h: torch.Tensor, starts: torch.Tensor, recent: deque, recent_len: deque
             ) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """One rollout of `storage.steps` steps into `storage` (GAE included)."""
    gamma = algo.gamma
    with torch.no_grad():
        for t in range(storage.steps):
            obs = torch.from_numpy(obs_np).float()
            priv = torch.from_numpy(priv_np).float()
            agent.obs_norm.update(obs)
            if agent.priv_dim:
                agent.priv_norm.update(priv[:, :agent.priv_dim])
            obs_n = agent.obs_norm(obs)
            critic_in = agent.critic_input(obs_n, priv)
            h = h * (~starts).unsqueeze(1)
            storage.hidden[t], storage.starts[t] = h, starts
            action, logp, mean, h = algo.act(obs_n, h, starts, generator)
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
            for ret, length in result.episodes:
                recent.append(ret)
                recent_len.append(length)
            obs_np, priv_np, starts = result.obs, result.privileged, done
        last_in = agent.critic_input(agent.obs_norm(torch.from_numpy(obs_np).float()),
                                     torch.from_numpy(priv_np).float())
        storage.compute_returns(agent.critic(last_in), gamma, algo.lam)
    return obs_np, priv_np, h, starts
