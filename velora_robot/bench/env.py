"""`velora-robot bench env`: control steps per second of our environments against the raw
`mj_step` bound, measured in the same run: bare `mj_step(nstep=substeps)` over the same
number of robots per process, built the same way (fast variant, home pose, targets at the
default pose), so both sides have the same physics and the same memory working set.

One core: one process. Both cores: raw is two loops side by side in two processes; ours is
one `BatchedEnv` process stepping its robots on two native threads (MuJoCo's batch), and a
`BatchedEnv` of two processes with one thread each. Actions are zero (hold the default
pose) and then uniform random (the robots move, fall and reset: contacts cost what they
cost in training); both sides set the same targets. Then Spot's contact and solver
settings, each alone and all together (`simulation.physics.CHEAP`), and the set chosen for
Spot (`FAST["spot"]`), with random actions.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

import mujoco
import numpy as np

from velora_robot.simulation.physics import CHEAP, FAST

ENVS = {"velora_robot/SpotWalk-v0": "spot", "velora_robot/G1Walk-v0": "g1",
        "velora_robot/JointTrack-v0": "one_joint"}
ENVS_PER_WORKER = 32


def _actions(rng: np.random.Generator, n: int, n_act: int, random: bool) -> np.ndarray:
    """Zero actions (hold the default pose) or uniform random ones in [-1, 1]."""
    if not random:
        return np.zeros((n, n_act), dtype=np.float32)
    return rng.uniform(-1, 1, (n, n_act)).astype(np.float32)


def raw_rate(robot: str, n_robots: int, seconds: float, random: bool = False,
             physics: dict | None = None) -> float:
    """Control steps/s of bare mj_step(nstep=substeps) looped over `n_robots` robots, the
    targets set from zero or random actions each control step (as the env does)."""
    from velora_robot.robots import get_spec
    from velora_robot.simulation.physics import Physics
    from velora_robot.simulation.robot import SimRobot

    settings = Physics.model_validate(physics or {})
    sims = [SimRobot(get_spec(robot), physics=settings) for _ in range(n_robots)]
    for sim in sims:
        sim.reset(np.random.default_rng(0))
    pairs = [(sim.model, sim.data) for sim in sims]
    io, substeps = sims[0].io, sims[0].spec.substeps
    rng = np.random.default_rng(0)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            targets = io.targets(_actions(rng, n_robots, len(io.q0), random))
            for (model, data), target in zip(pairs, targets, strict=True):
                data.ctrl[:] = target
                mujoco.mj_step(model, data, nstep=substeps)
        count += 10 * n_robots
    return count / (time.perf_counter() - start)


def ours_rate(env_id: str, n_envs: int, n_workers: int, seconds: float,
              random: bool = False, physics: dict | None = None, threads: int = 1,
              backend: str = "mujoco", device: str = "cpu") -> float:
    """Control steps/s (all envs together) of a BatchedEnv of `n_workers` processes with
    `threads` physics threads each (or on MuJoCo Warp on `device`), given zero or random
    actions (episodes that end reset inside the step, as in training)."""
    from velora_robot.envs.vector import BatchedEnv
    from velora_robot.simulation.backend import Simulator

    kwargs = {} if physics is None else {"physics": physics}
    sim = Simulator(backend, threads, device)  # type: ignore[arg-type]
    with BatchedEnv(env_id, n_envs, n_workers=n_workers, sim=sim, **kwargs) as env:
        env.reset(0)
        rng = np.random.default_rng(0)
        n_act = env.single_action_space.shape[0]
        env.step(_actions(rng, n_envs, n_act, random))
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(20):
                env.step(_actions(rng, n_envs, n_act, random))
            count += 20 * n_envs
        return count / (time.perf_counter() - start)


def _raw_worker(robot: str, n_robots: int, seconds: float, random: bool, out: Any) -> None:
    out.put(raw_rate(robot, n_robots, seconds, random))


def raw_rate_parallel(robot: str, n_robots: int, seconds: float, processes: int,
                      random: bool = False) -> float:
    """Sum of raw_rate over `processes` processes running at the same time."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_raw_worker, args=(robot, n_robots, seconds, random, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    rates = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def _many_worker(robot: str, n: int, seconds: float, threads: int, out: Any) -> None:
    import resource

    from velora_robot.robots import get_spec
    from velora_robot.simulation.robot import RobotBatch

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    before, start = rss_mb(), time.perf_counter()
    batch = RobotBatch(get_spec(robot), n, threads=threads)
    rng = np.random.default_rng(0)
    for i in range(n):
        batch.reset(i, rng)
    built = time.perf_counter() - start
    io = batch.io
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch.step(io.targets(rng.uniform(-1, 1, (n, len(io.q0)))))
        count += n
    out.put({"robots": n, "build_s": built, "steps_per_s": count / (time.perf_counter() - start),
             "memory_mb": rss_mb() - before, "state_mb": batch.sim.state.nbytes / 1e6})


def many_robots(robot: str = "spot", n: int = 1024, seconds: float = 4.0,
                threads: int = 1) -> dict[str, Any]:
    """Build, reset and step `n` robots in one fresh process on `threads` physics threads
    (random actions); its peak memory growth, in MB."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_many_worker, args=(robot, n, seconds, threads, out))
    proc.start()
    result = out.get(timeout=seconds + 600)
    proc.join()
    return {"robot": robot, "threads": threads, **result}


# Spot's contact and solver settings, one change at a time and all together (random
# actions, one core): what each costs in motion.
PHYSICS = {"MJCF (elliptic, impratio 100, condim 6, Newton)": {},
           "pyramidal cone": {"cone": "pyramidal"},
           "impratio 1": {"impratio": 1},
           "foot condim 3": {"foot_condim": 3},
           "no joint friction loss": {"frictionloss": False},
           "PGS, 10 iterations": {"solver": "PGS", "iterations": 10},
           "cheap (all above)": CHEAP.model_dump(exclude_defaults=True),
           "Spot's fast (all but impratio 1)": FAST["spot"].model_dump(exclude_defaults=True)}


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every environment with zero and random actions, then Spot's physics
    settings; returns the JSON-ready result."""
    seconds = 1.0 if quick else 4.0
    cores = min(2, os.cpu_count() or 1)
    rows = []
    for env_id, robot in ENVS.items():
        for random in (False, True):
            raw1 = raw_rate(robot, ENVS_PER_WORKER, seconds, random)
            ours1 = ours_rate(env_id, ENVS_PER_WORKER, 1, seconds, random)
            raw2 = raw_rate_parallel(robot, ENVS_PER_WORKER, seconds, cores, random)
            n = ENVS_PER_WORKER * cores
            ours2 = ours_rate(env_id, n, 1, seconds, random, threads=cores)
            procs2 = ours_rate(env_id, n, cores, seconds, random)
            rows.append({"env": env_id, "actions": "random" if random else "zero",
                         "raw_1core": raw1, "ours_1core": ours1, "ratio_1core": ours1 / raw1,
                         f"raw_{cores}cores": raw2, f"ours_{cores}cores": ours2,
                         f"ratio_{cores}cores": ours2 / raw2,
                         f"ours_{cores}processes": procs2,
                         f"ratio_{cores}processes": procs2 / raw2})
    physics = []
    for name, settings in PHYSICS.items():
        raw = raw_rate("spot", ENVS_PER_WORKER, seconds, True, settings)
        ours = ours_rate("velora_robot/SpotWalk-v0", ENVS_PER_WORKER, 1, seconds, True,
                         settings)
        physics.append({"settings": name, "physics": settings, "raw_1core": raw,
                        "ours_1core": ours})
    base = physics[0]["ours_1core"]
    for row in physics:
        row["x_mjcf"] = row["ours_1core"] / base
    return {"benchmark": "env", "cores": cores, "envs_per_worker": ENVS_PER_WORKER,
            "seconds_per_measurement": seconds, "mujoco": mujoco.__version__, "rows": rows,
            "spot_physics": physics, "many": many_robots("spot", 1024, seconds, cores)}


def table(result: dict[str, Any]) -> str:
    """The result as a plain-text table (control steps per second)."""
    c = result["cores"]
    head = (f"{'environment (actions)':<40}{'raw 1 core':>12}{'ours':>10}{'ratio':>8}"
            f"{f'raw {c} cores':>14}{f'{c} threads':>11}{'ratio':>8}{f'{c} procs':>10}"
            f"{'ratio':>8}")
    lines = [head]
    for r in result["rows"]:
        lines.append(f"{r['env'] + ' (' + r['actions'] + ')':<40}{r['raw_1core']:>12.0f}"
                     f"{r['ours_1core']:>10.0f}"
                     f"{r['ratio_1core']:>8.0%}{r[f'raw_{c}cores']:>14.0f}"
                     f"{r[f'ours_{c}cores']:>11.0f}{r[f'ratio_{c}cores']:>8.0%}"
                     f"{r[f'ours_{c}processes']:>10.0f}{r[f'ratio_{c}processes']:>8.0%}")
    lines.append(f"(control steps/s; ours = BatchedEnv, {result['envs_per_worker']} envs per "
                 f"core: one process stepping physics on {c} native threads, or {c} processes "
                 "of one; raw = bare mj_step(nstep=substeps) looped over as many robots per "
                 "process, the same targets, in as many processes as cores)")
    lines.append("")
    lines.append(f"{'Spot, random actions, 1 core':<52}{'raw':>9}{'ours':>9}{'x MJCF':>8}")
    for r in result["spot_physics"]:
        lines.append(f"{r['settings']:<52}{r['raw_1core']:>9.0f}{r['ours_1core']:>9.0f}"
                     f"{r['x_mjcf']:>8.2f}")
    m = result["many"]
    lines.append(f"\n{m['robots']} {m['robot']} robots in one process: built and reset in "
                 f"{m['build_s']:.1f} s, peak memory +{m['memory_mb']:.1f} MB (state rows "
                 f"{m['state_mb']:.1f} MB), "
                 f"{m['steps_per_s']:.0f} control steps/s (random actions, {m['threads']} "
                 "physics threads)")
    return "\n".join(lines)
