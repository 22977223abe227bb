"""`train(recipe)`: the loop that turns a recipe into a trained agent — the algorithm
family's iterations (`rl/loops.py`), the randomization curriculum, a progress line,
metrics, atomic checkpoints and an exact `--resume`.

A checkpoint holds everything the next update depends on: networks, normalizers, optimizer
and learning rate, the sampling generator, the rollout's carried state (observations, actor
state, episode flags), the randomization curriculum's level, the rollout collected but not
yet learned from (physics and learning overlapped) and, for velora_robot envs, the envs'
full physics and task state. So a run killed after a checkpoint and resumed makes the same
updates as one never stopped.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from velora_robot.errors import ConfigError
from velora_robot.liquid import fused
from velora_robot.rl import checkpoint
from velora_robot.rl.agent import Agent
from velora_robot.rl.loops import OffPolicyLoop, OnPolicyLoop
from velora_robot.rl.ppo import PPO
from velora_robot.rl.recipe import CurriculumSection, PPOSection, Recipe
from velora_robot.rl.run_log import RunLog
from velora_robot.rl.sac import SAC
from velora_robot.rl.symmetry import Mirror
from velora_robot.rl.td3 import TD3
from velora_robot.rl.vec_env import make_vec_env

CHECKPOINT = "checkpoint.pt"


# What every checkpoint holds (export, resume and init_from read them).
_CHECKPOINT_KEYS = ("recipe", "update", "env_steps", "wall_s", "agent", "obs_dim", "act_dim",
                    "priv_dim")


def load_checkpoint(path: Path, where: str | None = None) -> dict[str, Any]:
    """A checkpoint written by `train`, read without executing code (see `checkpoint`);
    `where` (e.g. the recipe field naming it) starts each error."""
    ckpt = checkpoint.load(path, where or "")
    missing = [key for key in _CHECKPOINT_KEYS if key not in ckpt]
    if missing:
        at = f"{where}: " if where else ""
        raise ConfigError(f"{at}{path}: not a checkpoint written by `velora-robot train` "
                          f"(no {', '.join(missing)})")
    return ckpt


class _Progress:
    """One status line: steps/s, return, where the time goes (collecting: physics and
    acting; learning: the update) and an ETA (rewritten in place on a terminal). The first
    update of a process warms up (allocation and, for a liquid actor on a machine that has
    not built them yet, compiling the C kernels), so the ETA comes from the updates after
    it."""

    def __init__(self, total_updates: int, enabled: bool, compiling: bool = False) -> None:
        self.total, self.enabled = total_updates, enabled
        self.tty = sys.stderr.isatty()
        self.compiling = compiling
        self._timed: deque[float] = deque(maxlen=20)  # seconds per update, after warm-up
        self._seen = 0

    def start(self) -> None:
        """Say what the first update's wait is for, before it starts."""
        if self.enabled and self.compiling:
            print("compiling the liquid C kernels (the first run on this machine only; a "
                  "few seconds)...", file=sys.stderr, flush=True)

    def show(self, update: int, steps: int, seconds: float, split: tuple[float, float] | None,
             ret: float | None, error: float | None = None, level: float | None = None
             ) -> None:
        self._seen += 1
        if self._seen > 1:
            self._timed.append(seconds)
        if not self.enabled or (not self.tty and update % 10 and update != self.total
                                and self._seen > 1):
            return
        rate = steps / max(update, 1) / max(seconds, 1e-9)
        if self._timed:
            eta = time.strftime("%H:%M:%S", time.gmtime(
                (self.total - update) * sum(self._timed) / len(self._timed)))
        else:
            eta = "after warm-up"
        ret_txt = "   n/a" if ret is None else f"{ret:8.2f}"
        if error is not None:  # the task's tracking error: whether a walker walks
            ret_txt += f"  error {error:.3f}"
        if level is not None:  # the curriculum's randomization: 0 nominal, 1 the full ranges
            ret_txt += f"  ranges {level:.1f}"
        where = ""
        if split is not None:
            collect, learn = split
            where = f"  collect {100 * collect / max(collect + learn, 1e-9):3.0f}% learn " \
                    f"{100 * learn / max(collect + learn, 1e-9):3.0f}%"
        line = (f"update {update:>5}/{self.total}  {steps:>10,} steps  {rate:>7,.0f} steps/s  "
                f"return {ret_txt}{where}  ETA {eta}")
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr,
              flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


# What a run writes into its folder (an earlier run's are refused, or removed by overwrite).
RUN_FILES = (CHECKPOINT, "metrics.jsonl", "curve.png", "eval.json", "recipe.json",
             "tensorboard", "videos")


def train(recipe: Recipe, *, resume: bool = False, overwrite: bool = False,
          wandb: bool | None = None, progress: bool = True, stop_after: int | None = None,
          on_update: Callable[[int, int, Agent], bool] | None = None) -> dict[str, Any]:
    """Run (or continue) the recipe; returns a summary. A run folder that holds an earlier
    run is refused unless `resume` (continue it) or `overwrite` (start again, its files
    removed). `stop_after` ends the run after that many updates in total (a planned stop,
    as if killed after the checkpoint). `on_update(update, env_steps, agent)` is called
    after every update; returning True ends the run there (benchmarks use it to stop once
    a task is solved)."""
    torch.set_num_threads(recipe.threads)
    run_dir = recipe.run_dir
    resuming = f"recipe {recipe.name!r}: --resume"
    if recipe.env.backend == "warp":  # a missing GPU is named before the run folder is taken
        from velora_robot.simulation.warp import warp_device

        warp_device(recipe.device)
    _claim_run_dir(recipe, resume, overwrite)
    if resume and not (run_dir / CHECKPOINT).is_file():  # said with what to do instead
        raise ConfigError(f"{resuming}: no checkpoint at {run_dir / CHECKPOINT}: nothing to "
                          "resume (start the run without --resume, with --overwrite if its "
                          "folder holds files of an earlier start)")
    ckpt = load_checkpoint(run_dir / CHECKPOINT, resuming) if resume else None
    if ckpt is not None and _but_budget(_with_defaults(ckpt["recipe"])) != _but_budget(
            recipe.model_dump()):
        raise ConfigError(f"{run_dir / CHECKPOINT} was written by a different recipe; resume "
                          "with the recipe that started the run (only `budget` may change: "
                          "a larger one extends the run), or change `name`")
    try:  # the run's first write, before any work: an unwritable folder is said now
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.json").write_text(recipe.model_dump_json(indent=2))
    except OSError as exc:
        raise ConfigError(f"recipe {recipe.name!r}: field 'logging.dir': cannot write the run "
                          f"into {run_dir}: {exc.strerror or exc}") from None

    algo_cfg, env_cfg = recipe.algorithm, recipe.env
    on_policy = isinstance(algo_cfg, PPOSection)
    mirror = Mirror.of_env(env_cfg.id, env_cfg.kwargs, f"recipe {recipe.name!r}: field "
                           "'algorithm.symmetry'") if on_policy and algo_cfg.symmetry else None
    if recipe.cluster is not None:  # the robots on Ray workers, the learner here
        from velora_robot.rl.ray_rollouts import RayRollouts

        env = RayRollouts(recipe)
    else:
        env = make_vec_env(env_cfg.id, env_cfg.n_envs, env_cfg.n_workers,
                           env_cfg.simulator(recipe.device), **env_cfg.kwargs)
    n = env.n_envs
    obs_dim = env.single_observation_space.shape[0]
    act_dim = env.single_action_space.shape[0]
    torch.manual_seed(recipe.seed)
    obs_np = env.reset(seed=recipe.seed)
    priv_np = env.privileged
    priv_dim = priv_np.shape[1]
    agent = Agent(recipe.policy, obs_dim, act_dim, priv_dim if on_policy else 0,
                  squash=not on_policy, critic=on_policy)
    algo = make_algorithm(recipe, agent, obs_dim, act_dim, mirror)
    curriculum = None if recipe.curriculum is None else _Curriculum(recipe.curriculum)
    outcomes = None if curriculum is None else curriculum.inbox
    loop = OnPolicyLoop(recipe, agent, algo, n, obs_dim, act_dim, mirror, outcomes) \
        if on_policy else OffPolicyLoop(recipe, agent, algo, n, obs_dim, act_dim)
    t_steps = loop.steps
    generator = torch.Generator().manual_seed(recipe.seed)
    carry = loop.start({"obs": obs_np, "priv": priv_np,
                        "h": torch.zeros(n, agent.actor.state_size),
                        "starts": torch.ones(n, dtype=torch.bool)})
    # (return, length, mean tracking error or NaN) of the last episodes that ended
    recent: deque[tuple[float, int, float]] = deque(maxlen=100)
    update, env_steps, wall = 0, 0, 0.0
    wandb_id = init = None
    if ckpt is not None:
        _check_sizes(ckpt, (obs_dim, act_dim, priv_dim), run_dir / CHECKPOINT, resuming)
        init = ckpt.get("init")
        agent.load_state_dict(ckpt["agent"])
        algo.load_state_dict(ckpt["algo"])
        generator.set_state(ckpt["generator"])
        update, env_steps, wall = ckpt["update"], ckpt["env_steps"], ckpt["wall_s"]
        recent.extend(_episode(e) for e in ckpt["recent_episodes"])
        wandb_id = ckpt.get("wandb_id")
        loop.load_state_dict(ckpt)
        if ckpt["env_state"] is not None:
            env.set_state(ckpt["env_state"])
            carry = ckpt["carry"]
        else:  # an env without snapshots: continue from fresh episodes
            carry["obs"] = env.reset(seed=recipe.seed + 1000 * update)
    elif recipe.init_from is not None:
        init = _init_from(Path(recipe.init_from), recipe, agent, algo,
                          (obs_dim, act_dim, priv_dim))

    total_updates = math.ceil(recipe.budget.env_steps / (n * t_steps))
    use_wandb = recipe.logging.wandb if wandb is None else wandb
    log = RunLog(run_dir, keep_until=update if ckpt is not None else None, wandb=use_wandb,
                 project=recipe.logging.wandb_project, name=recipe.name,
                 config=recipe.model_dump(), wandb_id=wandb_id,
                 tensorboard=recipe.logging.tensorboard)
    bar = _Progress(total_updates, progress,
                    compiling=recipe.policy.kind == "liquid" and not fused.built())
    bar.start()
    last = stop_after if stop_after is not None else total_updates
    if curriculum is not None:
        if ckpt is not None:
            curriculum.load_state_dict(ckpt["curriculum"])
        env.set_randomization_level(curriculum.level)
    try:
        while update < min(total_updates, last):
            start = time.perf_counter()
            carry, metrics, split = loop.iteration(
                env, agent, carry, recent, generator, env_steps,
                last=update + 1 >= total_updates)  # a planned stop is as if killed
            update += 1
            env_steps += n * t_steps
            if curriculum is not None:
                curriculum.after_update(env, t_steps)
                metrics = {**metrics, "randomization_level": curriculum.level}
            elapsed = time.perf_counter() - start
            wall += elapsed
            ret, length, error = episode_means(recent)
            timing = {} if split is None else {"collect_s": round(split[0], 4),
                                               "learn_s": round(split[1], 4)}
            every = recipe.eval.every
            if every and recipe.eval.episodes and update % every == 0:
                metrics = {**metrics, "eval_return": _evaluate(agent, recipe)["return_mean"]}
            if recipe.eval.video_every and update % recipe.eval.video_every == 0:
                metrics = {**metrics, **_video(agent, recipe, update, log)}
            log.log({"update": update, "env_steps": env_steps, "wall_s": round(wall, 3),
                     "steps_per_s": n * t_steps / elapsed, "return_mean": ret,
                     "length_mean": length, **timing, **metrics,
                     **({} if error is None else {"tracking_error_mean": error})})
            bar.show(update, env_steps, elapsed, split, ret, error,
                     None if curriculum is None else curriculum.level)
            if on_update is not None and on_update(update, env_steps, agent):
                break
            if update % recipe.logging.checkpoint_every == 0 or update == total_updates:
                checkpoint.save({
                    "recipe": recipe.model_dump(), "update": update, "env_steps": env_steps,
                    "wall_s": wall, "agent": agent.state_dict(), "algo": algo.state_dict(),
                    "generator": generator.get_state(), "env_state": env.get_state(),
                    "carry": carry, **loop.state_dict(),
                    "recent_episodes": list(recent),
                    "wandb_id": log.wandb_id, "obs_dim": obs_dim, "act_dim": act_dim,
                    "priv_dim": priv_dim, "init": init,
                    "curriculum": None if curriculum is None else curriculum.state_dict(),
                }, run_dir / CHECKPOINT)
    finally:
        bar.close()
        env.close()
    summary: dict[str, Any] = {"run_dir": str(run_dir), "updates": update,
                               "env_steps": env_steps, "wall_s": wall,
                               "return_mean": episode_means(recent)[0],
                               "actor_parameters": agent.actor_parameters}
    if update == total_updates:
        log.plot(run_dir / "curve.png", recipe.name)
        if recipe.eval.episodes:
            summary["eval"] = _evaluate(agent, recipe)
            (run_dir / "eval.json").write_text(json.dumps(summary["eval"], indent=2))
    log.close()
    return summary


def _evaluate(agent: Agent, recipe: Recipe) -> dict[str, float]:
    """The recipe's deterministic evaluation (the same seeds every time)."""
    from velora_robot.rl.evaluate import evaluate

    return evaluate(agent, recipe.env.id, recipe.eval.episodes, seed=recipe.seed + 10_000,
                    **recipe.env.kwargs)


def _video(agent: Agent, recipe: Recipe, update: int, log: RunLog) -> dict[str, str]:
    """Record the evaluation video of this update; its file, or why there is none."""
    from velora_robot.rl.evaluate import record_video

    path = recipe.run_dir / "videos" / f"update_{update:06d}.gif"
    try:
        record_video(agent, recipe.env.id, path, recipe.eval.video_s,
                     seed=recipe.seed + 10_000, **recipe.env.kwargs)
    except Exception as exc:  # no OpenGL here, or an env that cannot render
        return {"video_error": f"{type(exc).__name__}: {exc}"}
    log.video(path)
    return {"video": str(path)}


def _claim_run_dir(recipe: Recipe, resume: bool, overwrite: bool) -> None:
    """Refuse to write over an earlier run by accident (forgetting --resume on a two-hour
    run would wipe it); with `overwrite`, remove its files."""
    run_dir = recipe.run_dir
    if resume and overwrite:
        raise ConfigError("--resume continues the run and --overwrite starts it again: give "
                          "one of them")
    earlier = [name for name in RUN_FILES if (run_dir / name).exists()]
    if earlier and not resume:
        if not overwrite:
            resume_hint = ("continue it with --resume, " if CHECKPOINT in earlier else
                           "it has no checkpoint to resume: ")
            raise ConfigError(
                f"recipe {recipe.name!r}: {run_dir} already holds a run ({', '.join(earlier)}); "
                f"{resume_hint}start it again with --overwrite (its files are removed), or "
                "change `name` or `logging.dir`")
        for name in earlier:
            if (run_dir / name).is_dir():
                shutil.rmtree(run_dir / name)
            else:
                (run_dir / name).unlink()


def _init_from(path: Path, recipe: Recipe, agent: Agent, algo: Any,
               dims: tuple[int, int, int]) -> dict[str, Any]:
    """Load an earlier run's networks into `agent` (recipe field `init_from`), and into
    `algo` its adapted learning rate where the algorithm adapts one (PPO's `carry_lr`; the
    optimizer's moments start fresh); returns where they came from and that run's training
    so far (earlier stages included), for the model card."""
    where = f"recipe {recipe.name!r}: field 'init_from'"
    start = load_checkpoint(path, where)
    _check_sizes(start, dims, path, where)
    trained_policy = _with_defaults(start["recipe"])["policy"]
    if trained_policy != recipe.policy.model_dump():
        raise ConfigError(f"{where}: {path} was trained with policy "
                          f"{trained_policy}, this recipe asks for "
                          f"{recipe.policy.model_dump()}")
    agent.load_state_dict(start["agent"])
    if hasattr(algo, "carry_lr") and isinstance(start.get("algo"), dict):
        algo.carry_lr(start["algo"])
    steps, wall = trained_so_far(start)
    return {"checkpoint": str(path), "recipe": start["recipe"]["name"], "env_steps": steps,
            "wall_s": wall}


def _check_sizes(ckpt: dict[str, Any], dims: tuple[int, int, int], path: Path,
                 where: str) -> None:
    """A checkpoint's networks fit this env only if its observation, action and
    privileged sizes are this env's (an env whose observation changed since cannot load
    it)."""
    given = (ckpt["obs_dim"], ckpt["act_dim"], ckpt["priv_dim"])
    if given != dims:
        raise ConfigError(f"{where}: {path} has (obs, action, privileged) sizes {given}, "
                          f"this env {dims}")


def trained_so_far(ckpt: dict[str, Any]) -> tuple[int, float]:
    """A checkpoint's env steps and wall-clock seconds, the stages it started from
    (`init_from`) included. (A model card's `trained()` reads the same from the card.)"""
    before = ckpt.get("init") or {"env_steps": 0, "wall_s": 0.0}
    return ckpt["env_steps"] + before["env_steps"], ckpt["wall_s"] + before["wall_s"]


def _with_defaults(recipe: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's recipe with every field it predates at its default, as this version
    reads it (a setting added later, defaulting to the old behaviour, keeps a run
    resumable); as saved where it no longer parses."""
    try:
        return Recipe.model_validate(recipe).model_dump()
    except ValidationError:
        return recipe


def _but_budget(recipe: dict[str, Any]) -> dict[str, Any]:
    """What decides a run's updates: the budget only says where it stops (no schedule
    depends on it), so a run may be resumed with a larger one; its name and logging say
    where it is written and how it is watched (a run may move to another folder)."""
    return {k: v for k, v in recipe.items() if k not in ("budget", "name", "logging")}


def _episode(saved: Sequence[float]) -> tuple[float, int, float]:
    """An episode record from a checkpoint; those from before episodes carried their mean
    tracking error have none (NaN)."""
    return float(saved[0]), int(saved[1]), float(saved[2]) if len(saved) > 2 else math.nan


def episode_means(episodes: Iterable[Sequence[float]]
                  ) -> tuple[float | None, float | None, float | None]:
    """Mean return, length and tracking error of the recent episodes (None before the
    first ends; the error None where no episode reported one)."""
    records = [_episode(e) for e in episodes]
    if not records:
        return None, None, None
    returns, lengths, errors = zip(*records, strict=True)
    known = [e for e in errors if not math.isnan(e)]
    return (float(np.mean(returns)), float(np.mean(lengths)),
            float(np.mean(known)) if known else None)


def make_algorithm(recipe: Recipe, agent: Agent, obs_dim: int, act_dim: int,
                   mirror: Mirror | None = None) -> PPO | SAC | TD3:
    """The recipe's algorithm around the agent's networks (PPO with the task's mirror maps
    when the recipe asks for symmetry)."""
    cfg = recipe.algorithm
    if isinstance(cfg, PPOSection):
        return PPO(agent.actor, agent.critic, mirror=mirror, **cfg.model_dump(exclude={
            "name", "steps_per_env", "symmetry", "action_std_from", "overlap", "teacher",
            "teacher_until"}))
    shared = cfg.model_dump(include={"lr", "gamma", "tau", "batch_size", "seq_len", "burn_in",
                                     "critic", "critic_hidden", "critic_neurons"})
    if cfg.name == "sac":
        return SAC(agent.actor, agent.obs_norm, obs_dim, act_dim, init_alpha=cfg.init_alpha,
                   **shared)
    return TD3(agent.actor, agent.obs_norm, obs_dim, act_dim, policy_delay=cfg.policy_delay,
               policy_noise=cfg.policy_noise, noise_clip=cfg.noise_clip,
               exploration_noise=cfg.exploration_noise, **shared)


class _Curriculum:
    """A recipe's randomization curriculum: the level, and the evidence at it: each episode
    that ended (whether it ran to its time limit, its return, its mean tracking error, its
    length) and began at this level.

    The collectors put ended episodes into `inbox`; `after_update` takes them as evidence
    only once the robots have run a whole time limit at the level, since an episode draws
    its physics when it begins. Counting the episodes that began before a widening let one
    level's success widen the ranges again and again (the G1 went from 0.2 to 0.5 of the
    ranges in 53 updates, the last step 7 updates after the one before)."""

    def __init__(self, cfg: CurriculumSection) -> None:
        self.cfg, self.level = cfg, cfg.start
        self.inbox: deque[tuple[bool, float, float, int]] = deque()
        self.outcomes: deque[tuple[bool, float, float, int]] = deque(maxlen=cfg.window)
        self.level_steps = math.inf  # steps each robot has run at this level (all, at start)
        self.episode_steps = 0  # the time limit in steps, as the full episodes show it

    def succeeded(self, full: bool, ret: float, error: float, length: int = 0) -> bool:
        """Ran to its time limit with at least `min_return` and, where the gate asks, a
        mean tracking error of at most `max_tracking_error` (none reported: not met)."""
        c = self.cfg
        return full and (c.min_return is None or ret >= c.min_return) and (
            c.max_tracking_error is None or error <= c.max_tracking_error)

    def after_update(self, env: Any, steps: int) -> None:
        """Take the rollout's ended episodes as evidence (see the class), then widen the
        randomization when enough of the recent ones succeeded; `steps`: the rollout's
        steps per robot."""
        ended = list(self.inbox)
        self.inbox.clear()
        self.episode_steps = max([self.episode_steps,
                                  *(length for full, *_, length in ended if full)])
        if self.level_steps >= self.episode_steps:  # this rollout's episodes began at it
            self.outcomes.extend(ended)
        self.level_steps += steps
        c = self.cfg
        wins = sum(self.succeeded(*outcome) for outcome in self.outcomes)
        if self.level < 1.0 and len(self.outcomes) == c.window and wins >= c.success * c.window:
            self.level = min(1.0, round(self.level + c.step, 9))
            env.set_randomization_level(self.level)
            self.outcomes.clear()  # the next step needs evidence at this level
            self.level_steps = 0

    def state_dict(self) -> dict[str, Any]:
        """The level, the outcomes seen at it and how long it has been held."""
        return {"level": self.level, "level_steps": self.level_steps,
                "episode_steps": self.episode_steps,
                "outcomes": [[bool(full), float(ret), float(err), int(length)]
                             for full, ret, err, length in self.outcomes]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` result (one saved before outcomes carried the error:
        NaN; before they carried their length and the level its age: held long enough)."""
        self.level = state["level"]
        self.level_steps = state.get("level_steps", math.inf)
        self.episode_steps = state.get("episode_steps", 0)
        self.outcomes.clear()
        self.outcomes.extend((bool(o[0]), float(o[1]), float(o[2]) if len(o) > 2 else math.nan,
                              int(o[3]) if len(o) > 3 else 0) for o in state["outcomes"])
