"""`velora-robot bench scale`: how training scales past one process.

1. PPO on SpotWalk-v0 (the default ~100-neuron liquid actor, learning included) with the
   robots in this process, then on 1, 2, ... local Ray workers (`cluster` recipe section;
   rl/ray_rollouts.py), same robots, rollout and update: env steps/s of whole updates.
2. The SpotWalk env (random actions, no learning) on MuJoCo's C library (native threads)
   and on MuJoCo Warp at growing numbers of robots, both with the Newton solver (Warp has no
   PGS): on a GPU when Warp sees one (1,024 / 4,096 / 8,192 robots), else on Warp's CPU
   device at sizes it can step in reasonable time; then PPO with learning on the Warp
   backend at the largest size.
Each training run's first update is not timed (warm-up, and Warp's kernel loading).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

ENV = "velora_robot/SpotWalk-v0"
N_ENVS = 32
STEPS_PER_ENV = 48
NEWTON = {"solver": "Newton", "iterations": 10}


def _ppo(out: Path, name: str, n_envs: int, updates: int, **sections: Any) -> dict[str, Any]:
    """env steps/s of `updates` timed PPO updates (rollout + learning) on SpotWalk-v0."""
    from velora_robot.rl import Recipe, train

    env = {"id": ENV, "n_envs": n_envs, **sections.pop("env", {})}
    recipe = Recipe.model_validate({
        "name": name, "seed": 0, "env": env,
        "policy": {"kind": "liquid", "n_neurons": 100},
        "algorithm": {"name": "ppo", "steps_per_env": STEPS_PER_ENV, "chunk_len": 8,
                      "epochs": 5, "minibatches": 4},
        "budget": {"env_steps": n_envs * STEPS_PER_ENV * (updates + 1)},
        "logging": {"dir": str(out), "checkpoint_every": 10_000}, "eval": {"episodes": 0},
        **sections})
    train(recipe, progress=False)
    rows = [json.loads(line) for line in
            (recipe.run_dir / "metrics.jsonl").read_text().splitlines()][1:]
    steps = n_envs * STEPS_PER_ENV * len(rows)
    wall = sum(n_envs * STEPS_PER_ENV / r["steps_per_s"] for r in rows)
    return {"steps_per_s": steps / wall, "updates": len(rows),
            "collect_s": sum(r["collect_s"] for r in rows) / len(rows),
            "learn_s": sum(r["learn_s"] for r in rows) / len(rows)}


def _gpu() -> str | None:
    """Warp's first CUDA device, if it sees one."""
    from velora_robot.simulation.warp import quiet_warp

    try:
        wp = quiet_warp()
    except ImportError:
        return None
    cuda = [str(d) for d in wp.get_devices() if d.is_cuda]
    return cuda[0] if cuda else None


def run(quick: bool = False) -> dict[str, Any]:
    from velora_robot.bench.env import ours_rate

    updates = 3 if quick else 8
    cores = os.cpu_count() or 1
    result: dict[str, Any] = {"cores": cores, "ray": [], "sim": [], "warp_ppo": None}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        base = _ppo(out, "local", N_ENVS, updates)
        result["ray"].append({"workers": 0, **base})
        for workers in sorted({1, 2, cores}):
            row = _ppo(out, f"ray{workers}", N_ENVS, updates,
                       cluster={"workers": workers, "cpus_per_worker": 1})
            result["ray"].append({"workers": workers, **row,
                                  "vs_local": row["steps_per_s"] / base["steps_per_s"]})
        device = _gpu()
        result["device"] = device or "cpu"
        sizes = (1024, 4096, 8192) if device else ((32,) if quick else (32, 128))
        seconds = 2.0 if quick else 5.0
        for n in sizes:
            mj = None if device else ours_rate(ENV, n, 1, seconds, random=True, physics=NEWTON,
                                               threads=cores)
            warp = ours_rate(ENV, n, 1, seconds, random=True, physics=NEWTON, backend="warp",
                             device=device or "cpu")
            result["sim"].append({"robots": n, "mujoco_steps_per_s": mj,
                                  "warp_steps_per_s": warp,
                                  "warp_vs_mujoco": None if mj is None else warp / mj})
        n = sizes[-1]
        result["warp_ppo"] = {"robots": n, **_ppo(
            out, "warp", n, 2 if quick else 4,
            env={"backend": "warp", "kwargs": {"physics": NEWTON}},
            device=device or "cpu")}
    return result


def table(result: dict[str, Any]) -> str:
    lines = [f"PPO on {ENV}, {N_ENVS} robots x {STEPS_PER_ENV} steps per update, learning "
             f"included ({result['cores']} cores)",
             "where the robots are        env steps/s   vs this process   collect s   learn s"]
    for r in result["ray"]:
        where = "this process" if r["workers"] == 0 else f"{r['workers']} Ray worker(s)"
        ratio = f"{r['vs_local']:.2f}x" if "vs_local" in r else "-"
        lines.append(f"{where:<26} {r['steps_per_s']:>12,.0f}   {ratio:>15}   "
                     f"{r['collect_s']:>9.2f}   {r['learn_s']:>7.2f}")
    lines += ["", f"SpotWalk env, random actions, Newton solver; Warp on {result['device']}",
              "robots   mujoco (C) steps/s   warp steps/s   warp / mujoco"]
    for r in result["sim"]:
        mj = "-" if r["mujoco_steps_per_s"] is None else f"{r['mujoco_steps_per_s']:,.0f}"
        ratio = "-" if r["warp_vs_mujoco"] is None else f"{r['warp_vs_mujoco']:.3f}x"
        lines.append(f"{r['robots']:>6}   {mj:>18}   {r['warp_steps_per_s']:>12,.0f}   "
                     f"{ratio:>13}")
    w = result["warp_ppo"]
    lines.append(f"PPO with learning on the warp backend, {w['robots']} robots: "
                 f"{w['steps_per_s']:,.0f} env steps/s (collect {w['collect_s']:.2f} s, "
                 f"learn {w['learn_s']:.2f} s per update)")
    if result["device"] == "cpu":
        lines.append("No GPU seen by Warp: the GPU figures (1,024-8,192 robots) are owed.")
    return "\n".join(lines)
