"""`velora-robot bench throughput`: training throughput on SpotWalk-v0 — our PPO with the
default ~100-neuron liquid actor (learning included) against rsl_rl's PPO (MLP 256-256-256
and LSTM 256, its legged_gym defaults) and Stable-Baselines3 PPO with its MLP policy, same
env, same number of envs, same rollout length, epochs and minibatches, in one run.

Ours and rsl_rl run the envs in our `BatchedEnv` over both cores (one process stepping the
robots on two native threads; rsl_rl through its `VecEnv` interface), their learners on one
thread; ours also with the envs in two processes, and with physics and learning
overlapped. SB3 (one robot per gymnasium env) is measured with its in-process DummyVecEnv
and with SubprocVecEnv, and the faster of the two is the comparison. Each trainer's first
update is not timed (nor our last: overlapped, it has nothing to collect).
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


def ours(updates: int, out: Path, workers: int = 1, physics_threads: int = 2,
         overlap: bool = False) -> dict[str, Any]:
    """env steps/s of velora PPO (rollout + update) over `updates` timed updates, the envs
    in `workers` processes of `physics_threads` threads, physics and learning taking turns
    or overlapped."""
    from velora_robot.rl import Recipe, train

    recipe = Recipe.model_validate({
        "name": f"throughput{workers}{physics_threads}{overlap}", "seed": 0,
        "env": {"id": "velora_robot/SpotWalk-v0", "n_envs": N_ENVS, "n_workers": workers,
                "threads": physics_threads},
        "policy": {"kind": "liquid", "n_neurons": 100, "neurons_per_dof": 2},
        "algorithm": {"name": "ppo", "steps_per_env": STEPS_PER_ENV, "chunk_len": CHUNK_LEN,
                      "epochs": EPOCHS, "minibatches": MINIBATCHES, "overlap": overlap},
        "budget": {"env_steps": N_ENVS * STEPS_PER_ENV * (updates + 2)},
        "logging": {"dir": str(out), "checkpoint_every": 10_000}, "eval": {"episodes": 0}})
    summary = train(recipe, progress=False)

    # Neither the first update (warm-up) nor the last (overlapped, nothing to collect then)
    rows = [json.loads(line) for line in
            (recipe.run_dir / "metrics.jsonl").read_text().splitlines()][1:-1]
    wall = sum(N_ENVS * STEPS_PER_ENV / r["steps_per_s"] for r in rows)
    collect, learn = sum(r["collect_s"] for r in rows), sum(r["learn_s"] for r in rows)
    # Taking turns, the physics waits while the learner updates and the learner (bar acting)
    # waits while the physics steps; overlapped, each side waits for the other only for
    # what is left of the slower side's time.
    return {"steps_per_s": N_ENVS * STEPS_PER_ENV * len(rows) / wall,
            "actor_parameters": summary["actor_parameters"], "wall_s": wall,
            "collect_s": collect, "learn_s": learn,
            "physics_idle": max(0.0, 1 - collect / wall),
            "learner_idle": max(0.0, 1 - learn / wall)}


def _rsl_env(n_envs: int) -> Any:
    """Our BatchedEnv behind rsl_rl's VecEnv interface (observations as a TensorDict)."""
    import torch
    from rsl_rl.env import VecEnv
    from tensordict import TensorDict

    from velora_robot.envs.vector import BatchedEnv
    from velora_robot.simulation.backend import Simulator

    class Env(VecEnv):
        def __init__(self) -> None:
            self.env = BatchedEnv("velora_robot/SpotWalk-v0", n_envs, n_workers=1,
                                  sim=Simulator(threads=2))
            self.num_envs = n_envs
            self.num_actions = self.env.single_action_space.shape[0]
            self.max_episode_length = 1000
            self.episode_length_buf = torch.zeros(n_envs, dtype=torch.long)
            self.device, self.cfg = "cpu", {}
            self._obs = self._wrap(self.env.reset(seed=0))

        def _wrap(self, obs: Any) -> Any:
            return TensorDict({"policy": torch.as_tensor(obs, dtype=torch.float32)},
                              batch_size=[n_envs])

        def get_observations(self) -> Any:
            return self._obs

        def step(self, actions: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor, dict]:
            r = self.env.step(actions.clamp(-1, 1).numpy())
            self._obs = self._wrap(r.obs)
            done = torch.as_tensor(r.terminated | r.truncated)
            self.episode_length_buf = torch.where(done, 0, self.episode_length_buf + 1)
            return (self._obs, torch.as_tensor(r.reward, dtype=torch.float32), done.long(),
                    {"time_outs": torch.as_tensor(r.truncated)})

    return Env()


def rsl_rl(updates: int, recurrent: bool) -> dict[str, Any]:
    """env steps/s of rsl_rl's PPO (rsl-rl-lib), MLP 256-256-256 or LSTM 256 + MLP, with
    its own defaults otherwise (adaptive learning rate, entropy 0.01)."""
    from rsl_rl.runners import OnPolicyRunner

    model = {"class_name": "RNNModel" if recurrent else "MLPModel",
             "hidden_dims": [256, 256, 256], "activation": "elu"}
    if recurrent:
        model.update(rnn_type="lstm", rnn_hidden_dim=256, rnn_num_layers=1)
    cfg = {"num_steps_per_env": STEPS_PER_ENV, "save_interval": 10**9, "multi_gpu": None,
           "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
           "algorithm": {"class_name": "PPO", "num_learning_epochs": EPOCHS,
                         "num_mini_batches": MINIBATCHES},
           "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution",
                                                   "init_std": 1.0}},
           "critic": dict(model)}
    env = _rsl_env(N_ENVS)
    try:
        runner = OnPolicyRunner(env, cfg, log_dir=None, device="cpu")
        runner.learn(1)  # warm-up, not timed
        start = time.perf_counter()
        runner.learn(updates)
        elapsed = time.perf_counter() - start
        actor = runner.alg.actor
        params = sum(p.numel() for p in actor.parameters() if p.requires_grad)
    finally:
        env.env.close()
    return {"steps_per_s": N_ENVS * STEPS_PER_ENV * updates / elapsed,
            "actor_parameters": params}


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
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="velora-bench-") as tmp:
            mine = ours(updates, Path(tmp))
            procs = ours(updates, Path(tmp), workers=2, physics_threads=1)
            overlapped = ours(updates, Path(tmp), overlap=True)
        rsl_mlp, rsl_lstm = rsl_rl(updates, recurrent=False), rsl_rl(updates, recurrent=True)
    finally:
        torch.set_num_threads(threads)
    dummy, sub = sb3(updates, subprocess=False), sb3(updates, subprocess=True)
    best = max(dummy["steps_per_s"], sub["steps_per_s"])
    return {"benchmark": "throughput", "env": "velora_robot/SpotWalk-v0", "n_envs": N_ENVS,
            "steps_per_env": STEPS_PER_ENV, "epochs": EPOCHS, "minibatches": MINIBATCHES,
            "timed_updates": updates, "ours_liquid_ppo": mine,
            "ours_2_processes": procs, "ours_overlapped": overlapped,
            "rsl_rl_ppo_mlp": rsl_mlp,
            "rsl_rl_ppo_lstm": rsl_lstm, "sb3_ppo_dummy": dummy, "sb3_ppo_subproc": sub,
            "ratio_vs_best_sb3": mine["steps_per_s"] / best,
            "ratio_vs_rsl_rl_mlp": mine["steps_per_s"] / rsl_mlp["steps_per_s"],
            "overlapped_ratio_vs_best_sb3": overlapped["steps_per_s"] / best,
            "overlapped_ratio_vs_rsl_rl_mlp": overlapped["steps_per_s"] / rsl_mlp["steps_per_s"]}


def table(result: dict[str, Any]) -> str:
    """Steps per second side by side."""
    rows = [("ours: PPO, liquid, physics on 2 threads", result["ours_liquid_ppo"]),
            ("ours, physics in 2 processes", result["ours_2_processes"]),
            ("ours, physics and learning overlapped", result["ours_overlapped"]),
            ("rsl_rl: PPO, MLP 256x3, our env", result["rsl_rl_ppo_mlp"]),
            ("rsl_rl: PPO, LSTM 256, our env", result["rsl_rl_ppo_lstm"]),
            ("SB3: PPO, MLP, DummyVecEnv", result["sb3_ppo_dummy"]),
            ("SB3: PPO, MLP, SubprocVecEnv", result["sb3_ppo_subproc"])]
    lines = [f"{'trainer':<40}{'env steps/s':>12}{'actor params':>14}"]
    lines += [f"{name:<40}{r['steps_per_s']:>12,.0f}{r['actor_parameters']:>14,}"
              for name, r in rows]
    for key, name in (("ours_liquid_ppo", "ours"), ("ours_overlapped", "overlapped")):
        r = result[key]
        lines.append(f"{name}: collecting {r['collect_s']:.1f} s, learning "
                     f"{r['learn_s']:.1f} s in {r['wall_s']:.1f} s; physics idle "
                     f"{r['physics_idle']:.0%} of the time, the learner "
                     f"{r['learner_idle']:.0%}")
    lines.append(f"ours / best SB3: {result['ratio_vs_best_sb3']:.2f}x (overlapped "
                 f"{result['overlapped_ratio_vs_best_sb3']:.2f}x), ours / rsl_rl MLP: "
                 f"{result['ratio_vs_rsl_rl_mlp']:.2f}x (overlapped "
                 f"{result['overlapped_ratio_vs_rsl_rl_mlp']:.2f}x)  ({result['n_envs']} envs,"
                 f" {result['steps_per_env']} steps per env per update, {result['epochs']} "
                 "epochs, learning included)")
    return "\n".join(lines)
