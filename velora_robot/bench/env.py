"""`velora-robot bench env`: control steps per second of our environments against the raw
`mj_step` bound, measured in the same run: bare `mj_step(nstep=substeps)` over the same
number of robots per process, built the same way (fast variant, home pose, targets at the
default pose), so both sides have the same physics and the same memory working set.

One core: one process. Both cores: two processes (raw: two loops side by side; ours: a
`BatchedEnv` with two workers). Actions are zero (hold the default pose), so both sides
simulate the same motion.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

import mujoco
import numpy as np

ENVS = {"velora_robot/SpotWalk-v0": "spot", "velora_robot/HumanoidWalk-v0": "humanoid",
        "velora_robot/JointTrack-v0": "one_joint"}
ENVS_PER_WORKER = 32


def raw_rate(robot: str, n_robots: int, seconds: float) -> float:
    """Control steps/s of bare mj_step(nstep=substeps) looped over `n_robots` robots."""
    from velora_robot.robots import get_spec
    from velora_robot.simulation.robot import SimRobot

    sims = [SimRobot(get_spec(robot)) for _ in range(n_robots)]
    for sim in sims:
        sim.reset(np.random.default_rng(0))
    pairs = [(sim.model, sim.data) for sim in sims]
    substeps = sims[0].spec.substeps
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            for model, data in pairs:
                mujoco.mj_step(model, data, nstep=substeps)
        count += 10 * n_robots
    return count / (time.perf_counter() - start)


def ours_rate(env_id: str, n_envs: int, n_workers: int, seconds: float) -> float:
    """Control steps/s (all envs together) of a BatchedEnv holding the default pose."""
    from velora_robot.envs.vector import BatchedEnv

    with BatchedEnv(env_id, n_envs, n_workers=n_workers) as env:
        env.reset(0)
        actions = np.zeros((n_envs, env.single_action_space.shape[0]), dtype=np.float32)
        env.step(actions)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(20):
                env.step(actions)
            count += 20 * n_envs
        return count / (time.perf_counter() - start)


def _raw_worker(robot: str, n_robots: int, seconds: float, out: Any) -> None:
    out.put(raw_rate(robot, n_robots, seconds))


def raw_rate_parallel(robot: str, n_robots: int, seconds: float, processes: int) -> float:
    """Sum of raw_rate over `processes` processes running at the same time."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_raw_worker, args=(robot, n_robots, seconds, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    rates = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every environment; returns the JSON-ready result."""
    seconds = 1.0 if quick else 4.0
    cores = min(2, os.cpu_count() or 1)
    rows = []
    for env_id, robot in ENVS.items():
        raw1 = raw_rate(robot, ENVS_PER_WORKER, seconds)
        ours1 = ours_rate(env_id, ENVS_PER_WORKER, 1, seconds)
        raw2 = raw_rate_parallel(robot, ENVS_PER_WORKER, seconds, cores)
        ours2 = ours_rate(env_id, ENVS_PER_WORKER * cores, cores, seconds)
        rows.append({"env": env_id, "raw_1core": raw1, "ours_1core": ours1,
                     "ratio_1core": ours1 / raw1, f"raw_{cores}cores": raw2,
                     f"ours_{cores}cores": ours2, f"ratio_{cores}cores": ours2 / raw2})
    return {"benchmark": "env", "cores": cores, "envs_per_worker": ENVS_PER_WORKER,
            "seconds_per_measurement": seconds, "mujoco": mujoco.__version__, "rows": rows}


def table(result: dict[str, Any]) -> str:
    """The result as a plain-text table (control steps per second)."""
    c = result["cores"]
    head = (f"{'environment':<32}{'raw 1 core':>12}{'ours':>10}{'ratio':>8}"
            f"{f'raw {c} cores':>14}{'ours':>10}{'ratio':>8}")
    lines = [head]
    for r in result["rows"]:
        lines.append(f"{r['env']:<32}{r['raw_1core']:>12.0f}{r['ours_1core']:>10.0f}"
                     f"{r['ratio_1core']:>8.0%}{r[f'raw_{c}cores']:>14.0f}"
                     f"{r[f'ours_{c}cores']:>10.0f}{r[f'ratio_{c}cores']:>8.0%}")
    lines.append(f"(control steps/s; ours = BatchedEnv, {result['envs_per_worker']} envs per "
                 "process, zero actions; raw = bare mj_step(nstep=substeps) over as many "
                 "robots per process)")
    return "\n".join(lines)
