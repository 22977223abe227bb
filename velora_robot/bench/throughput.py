"""`velora-robot bench throughput`: training throughput on SpotWalk-v0 — our PPO with the
default ~100-neuron liquid actor (learning included) against Stable-Baselines3 PPO with its
MLP policy, same env, same number of envs, same rollout length and epochs, in one run.

Ours runs its envs in `BatchedEnv` over both cores; SB3 is measured with its in-process
DummyVecEnv and with SubprocVecEnv, and the faster of the two is the comparison. Our first
update (which compiles the solver) is not timed.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

N_ENVS = 32
STEPS_PER_ENV = 48
CHUNK_LEN = 8  # as in launch/spot_walk.yaml
EPOCHS = 5
MINIBATCHES = 4


def ours(updates: int, out: Path) -> dict[str, Any]:
    """env steps/s of velora PPO (rollout + update) over `updates` timed updates."""
    from velora_robot.rl import Recipe, train

    recipe = Recipe.model_validate({
        "name": "throughput", "seed": 0,
        "env": {"id": "velora_robot/SpotWalk-v0", "n_envs": N_ENVS, "n_workers": 2},
        "policy": {"kind": "liquid", "n_neurons": 100, "neurons_per_dof": 2,
                   "compiled": True},
        "algorithm": {"name": "ppo", "steps_per_env": STEPS_PER_ENV, "chunk_len": CHUNK_LEN,
                      "epochs": EPOCHS, "minibatches": MINIBATCHES},
        "budget": {"env_steps": N_ENVS * STEPS_PER_ENV * (updates + 1)},
        "logging": {"dir": str(out), "checkpoint_every": 10_000}, "eval": {"episodes": 0}})
    summary = train(recipe, progress=False)

    rows = [json.loads(line) for line in
            (recipe.run_dir / "metrics.jsonl").read_text().splitlines()][1:]
    wall = sum(N_ENVS * STEPS_PER_ENV / r["steps_per_s"] for r in rows)
    return {"steps_per_s": N_ENVS * STEPS_PER_ENV * len(rows) / wall,
            "actor_parameters": summary["actor_parameters"]}


def sb3(updates: int, subprocess: bool) -> dict[str, Any]:
    """env steps/s of Stable-Baselines3 PPO (MLP) on the same env and envs."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    def make() -> gym.Env:
        import velora_robot.envs  # noqa: F401  (registers the id, in subprocesses too)

        return gym.make("velora_robot/SpotWalk-v0")

    vec = (SubprocVecEnv([make] * N_ENVS, start_method="spawn") if subprocess
           else DummyVecEnv([make] * N_ENVS))
    model = PPO("MlpPolicy", vec, n_steps=STEPS_PER_ENV, n_epochs=EPOCHS,
                batch_size=N_ENVS * STEPS_PER_ENV // MINIBATCHES, seed=0, device="cpu",
                verbose=0)
    model.learn(N_ENVS * STEPS_PER_ENV)  # warm-up, not timed
    start = time.perf_counter()
    model.learn(N_ENVS * STEPS_PER_ENV * updates, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    params = sum(p.numel() for p in model.policy.mlp_extractor.policy_net.parameters())
    params += sum(p.numel() for p in model.policy.action_net.parameters())
    vec.close()
    return {"steps_per_s": N_ENVS * STEPS_PER_ENV * updates / elapsed,
            "actor_parameters": params}


def run(quick: bool = False) -> dict[str, Any]:
    """Ours and SB3 (both vec-env kinds) in one run."""
    import torch

    updates = 2 if quick else 6
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="velora-bench-") as tmp:
        mine = ours(updates, Path(tmp))
    torch.set_num_threads(threads)
    dummy, sub = sb3(updates, subprocess=False), sb3(updates, subprocess=True)
    best = max(dummy["steps_per_s"], sub["steps_per_s"])
    return {"benchmark": "throughput", "env": "velora_robot/SpotWalk-v0", "n_envs": N_ENVS,
            "steps_per_env": STEPS_PER_ENV, "epochs": EPOCHS, "timed_updates": updates,
            "ours_liquid_ppo": mine, "sb3_ppo_dummy": dummy, "sb3_ppo_subproc": sub,
            "ratio_vs_best_sb3": mine["steps_per_s"] / best}


def table(result: dict[str, Any]) -> str:
    """Steps per second side by side."""
    rows = [("ours: PPO, liquid actor, BatchedEnv x2", result["ours_liquid_ppo"]),
            ("SB3: PPO, MLP, DummyVecEnv", result["sb3_ppo_dummy"]),
            ("SB3: PPO, MLP, SubprocVecEnv", result["sb3_ppo_subproc"])]
    lines = [f"{'trainer':<40}{'env steps/s':>12}{'actor params':>14}"]
    lines += [f"{name:<40}{r['steps_per_s']:>12,.0f}{r['actor_parameters']:>14,}"
              for name, r in rows]
    lines.append(f"ours / best SB3: {result['ratio_vs_best_sb3']:.2f}x  ({result['n_envs']} envs,"
                 f" {result['steps_per_env']} steps per env per update, {result['epochs']} "
                 "epochs, learning included)")
    return "\n".join(lines)
