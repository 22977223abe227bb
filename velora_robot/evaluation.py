"""`velora-robot eval MODEL`: an exported policy (ONNX, TorchScript or kernel file with its
model card) in the environment it was trained in, over seeded episodes, with and without
domain randomization. Randomization "on" draws the standard ranges (`Randomization()`'s
defaults: friction 0.4-1.0, mass +-10 %, latency 0-20 ms, sensor noise, pushes, ...)
whatever ranges the model was trained with, so curriculum stages are measured alike (and
random commands are the task's uniform draws, whatever share it trained with zeroed);
`ranges="core"` keeps only friction, mass, latency and pushes (the parts issue 7 names;
payload, CoM shift, actuator scaling and sensor noise nominal); `ranges="trained"` uses the
ranges in its model card instead.

Reported per setting: return, episode length, falls (episodes that ended before the time
limit; those within `SHOVE_FALL_S` of a randomization shove are counted apart, with the
shove's speed; the fall rate's 95 % Wilson interval, since a few falls more or fewer in 50
episodes is within chance), the action's change per step (mean over joints of |a_t - a_t-1|
of the clipped action: the chatter a motor feels), and for locomotion the velocity tracking
error (|command - base velocity| in the base frame, from simulator truth; yaw rate
separately), forward speed and energy (sum of |tau * dq| dt); for JointTrack its tracking
error. For a walker with a gait clock also the velocity error per gait period
(`velocity_error_gait`: |mean command - mean base velocity| over each whole period,
averaged) and the yaw rate's (`yaw_rate_error_gait`): a biped's pelvis sways sideways,
surges and twists with every step, which the per-step errors count even when the robot keeps
its pace and heading (a G1 walking straight shows a per-step yaw-rate error near 0.5 rad/s).
The tracking reward is the episode's sum of the env's weighted `tracking*` reward terms
(what training maximizes for following the command; an early fall forfeits the rest). The
policy runs through the same runtime runner as on the robot.

`compare(results, baseline)` sets a policy against a baseline evaluated on the same seeds
(issue 7's liquid-vs-MLP figure): tracking reward as a fraction of the baseline's, and the
ratio of trainable parameters.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from velora_robot.config import merge
from velora_robot.errors import ConfigError
from velora_robot.robots.interface import VELOCITY_COMMANDS
from velora_robot.runtime.card import check_card
from velora_robot.simulation.physics import CHEAP
from velora_robot.simulation.randomization import CORE_NOMINAL

# The physics an evaluation may run: as trained (the card's), the MJCF's own contact and
# solver settings (training's fast model: only feet collide), those on the full model (every
# geom collides: full fidelity), or the cheap settings.
PHYSICS = ("trained", "mjcf", "full", "cheap")

# The randomization ranges an evaluation may draw, with how a result's table line names them.
RANGES = {"standard": "", "core": " (core: friction, mass, latency, pushes)",
          "trained": " (the model's trained ranges)"}


def _env(card: Any, randomize: bool, command: list[float] | None, ranges: str = "standard",
         where: str = "policy", physics: str = "trained",
         overrides: dict[str, Any] | None = None) -> Any:
    import gymnasium as gym

    from velora_robot.envs import ENV_IDS  # importing the package registers the ids

    env_id = card.training.env
    kwargs = dict(card.training.env_kwargs)
    if env_id in ENV_IDS:  # other gymnasium envs have no randomization setting
        # The task's own uniform command draws, whatever share the model trained with zeroed.
        kwargs.pop("command_zero_prob", None)
        base = {"standard": {}, "core": CORE_NOMINAL,
                "trained": kwargs.get("randomization") or {}}[ranges]
        kwargs["randomization"] = merge(merge(base, overrides or {}), {"enabled": randomize})
        if physics != "trained":
            kwargs["physics"] = CHEAP.model_dump() if physics == "cheap" else {}
        if physics == "full":
            kwargs["variant"] = "full"
    if command is not None:
        names = list(card.interface.commands) if card.interface else []
        task = ENV_IDS[env_id].TASK if env_id in ENV_IDS else None
        if task is not None and not task.RANGED_COMMANDS:
            raise ConfigError(f"--command: {env_id} makes its own commands (a reference "
                              "trajectory); it takes no fixed command")
        if len(command) != len(names):
            raise ConfigError(f"--command: {len(command)} values, but {env_id} takes "
                              f"{len(names)} ({', '.join(names)})")
        kwargs["command_ranges"] = {n: (v, v) for n, v in zip(names, command, strict=True)}
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise ConfigError(f"model card: env {env_id!r} cannot be made: {exc}") from None
    spec = getattr(env.unwrapped, "robot_spec", None)
    sizes = (env.observation_space.shape[0], env.action_space.shape[0])
    if spec is not None:  # the same check `run` makes before it drives the robot (sizes too)
        check_card(card, spec, where=f"{where} (model card)")
    elif (card.io.obs_dim, card.io.act_dim) != sizes:
        raise ConfigError(f"{where} (model card): the policy takes {card.io.obs_dim} "
                          f"observations and gives {card.io.act_dim} actions; {env_id} has "
                          f"{sizes[0]} and {sizes[1]}")
    return env


def evaluate(path: str | Path, *, episodes: int = 50, seed: int = 0, randomize: bool = True,
             command: list[float] | None = None, ranges: str = "standard",
             physics: str = "trained", workers: int = 1) -> dict[str, Any]:
    """Metrics of the policy at `path` over `episodes` seeded episodes; `ranges`: the
    randomization's, one of `RANGES`; `physics`: one of `PHYSICS` (see the module
    docstring). `workers` processes share the episodes (each episode is its seed's, so the
    figures are the same for any number)."""
    if episodes < 1:
        raise ConfigError(f"episodes {episodes}: at least 1")
    if workers < 1:
        raise ConfigError(f"workers {workers}: at least 1")
    if ranges not in RANGES:
        *first, last = RANGES
        raise ConfigError(f"ranges {ranges!r}: {', '.join(map(repr, first))} or {last!r}")
    if physics not in PHYSICS:
        raise ConfigError(f"physics {physics!r}: one of {', '.join(PHYSICS)}")
    from velora_robot.envs import ENV_IDS
    from velora_robot.runtime import load_policy

    policy = load_policy(path)  # a bad file or card is said here, before any worker starts
    card = policy.card
    seeds = list(range(seed, seed + episodes))
    blocks = [part.tolist() for part in np.array_split(seeds, min(workers, episodes))]
    run = partial(_episodes, path=str(path), randomize=randomize, command=command,
                  ranges=ranges, physics=physics)
    if len(blocks) == 1:
        rows = run(seeds, policy=policy)
    else:  # spawned: a forked child would inherit the parent's threads mid-state
        with ProcessPoolExecutor(len(blocks), mp_context=get_context("spawn")) as pool:
            rows = [row for block in pool.map(run, blocks) for row in block]
    simulated = card.training.env in ENV_IDS  # randomization applies (not another env)
    locomotion = "velocity_error" in rows[0]
    keys = rows[0].keys()
    summary = {f"{k}_mean": float(np.mean([r[k] for r in rows])) for k in keys}
    summary["falls"] = int(sum(r["fell"] for r in rows))
    # The seeds that fell (rows come back in seed order): `--seed S --episodes 1` replays one.
    summary["fall_seeds"] = [s for s, r in zip(seeds, rows, strict=True) if r["fell"]]
    summary["fall_rate_ci95"] = list(wilson_interval(summary["falls"], episodes))
    summary.pop("fell_mean")
    if "fall_shove_mps" in rows[0]:  # which falls a shove explains, and how hard it was
        summary.pop("fall_shove_mps_mean")
        shoves = sorted(r["fall_shove_mps"] for r in rows if r["fall_shove_mps"] > 0)
        summary["falls_after_shove"] = len(shoves)
        summary["fall_shoves_mps"] = [round(v, 3) for v in shoves]
    if locomotion:
        summary["velocity_error_max"] = float(max(r["velocity_error"] for r in rows))
    return {"model": str(path), "env": card.training.env, "episodes": episodes,
            "seed": seed, "randomization": randomize if simulated else None,
            "ranges": ranges if randomize and simulated else None,
            "physics": physics,
            "command": command,
            "trainable_parameters": card.network.trainable_parameters,
            "env_steps": card.trained()[0], **summary}


def _episodes(seeds: list[int], *, path: str, randomize: bool, command: list[float] | None,
              ranges: str, physics: str, policy: Any = None) -> list[dict[str, float]]:
    """One row of figures per seeded episode (`policy`: the runner of `path`, where this
    process has it loaded already)."""
    from velora_robot.runtime import load_policy

    if policy is None:
        policy = load_policy(path)
    env = _env(policy.card, randomize, command, ranges, where=path, physics=physics)
    task = getattr(env.unwrapped, "task", None)  # None for other gymnasium envs
    locomotion = hasattr(task, "velocity_command")
    dt = task.dt if task is not None else float(getattr(env.unwrapped, "dt", 1.0))
    rows: list[dict[str, float]] = []
    for episode_seed in seeds:
        obs, _ = env.reset(seed=episode_seed)
        policy.reset()
        total, steps, energy, tracking, change = 0.0, 0, 0.0, 0.0, 0.0
        lin_err, yaw_err, extra, vel, cmd, turn, turn_cmd = [], [], [], [], [], [], []
        terminated = truncated = False
        last = None
        while not (terminated or truncated):
            action = np.asarray(policy(obs.astype(np.float32)), float)
            obs, reward, terminated, truncated, info = env.step(action)
            # What reaches the joints is the clipped action: its step-to-step change is the
            # chatter a motor feels (x the action scale, in rad of target per step).
            action = np.clip(action, -1.0, 1.0)
            if last is not None:
                change += float(np.mean(np.abs(action - last)))
            last = action
            total += reward
            steps += 1
            tracking += sum(v for k, v in info.get("reward_terms", {}).items()
                            if k.startswith("tracking"))
            if locomotion:
                m = task._measurement()
                lin, yaw = task.velocity_errors(m)
                lin_err.append(float(lin[0]))
                yaw_err.append(float(yaw[0]))
                asked = task.velocity_command()[0]
                vel.append(m.base_lin_vel[0, :2].copy())
                cmd.append(asked[:2])
                turn.append(float(m.state.gyro[0, 2]))
                turn_cmd.append(float(asked[2]))
                energy += float(np.sum(np.abs(m.tau[0] * m.state.dq[0]))) * dt
            elif "tracking_error" in info:  # (a walker's is the velocity error above)
                extra.append(info["tracking_error"])
        row = {"return": total, "length_s": steps * dt, "fell": float(terminated),
               "action_change": change / max(steps - 1, 1)}
        if task is not None and hasattr(task, "shove_step"):
            row["fall_shove_mps"] = fall_shove(bool(terminated), steps, int(task.shove_step[0]),
                                               float(task.shove_mps[0]), dt)
        if "reward_terms" in info:
            row["tracking_reward"] = tracking
        if locomotion:
            planar = np.array(vel)
            row.update(velocity_error=float(np.mean(lin_err)), yaw_rate_error=float(
                np.mean(yaw_err)), forward_speed=float(np.mean(planar[:, 0])), energy_j=energy)
            gait_hz = task.interface.gait_hz
            if gait_hz:
                period = max(1, round(1 / (gait_hz * dt)))
                row["velocity_error_gait"] = per_period_error(planar, np.array(cmd), period)
                row["yaw_rate_error_gait"] = per_period_error(np.array(turn), np.array(turn_cmd),
                                                              period)
        if extra:
            row["tracking_error"] = float(np.mean(extra))
        rows.append(row)
    env.close()
    return rows


# A fall this soon after a shove is the shove's: a walker pushed at 1 m/s that does not
# recover goes down within 1-2 s (the G1's falls under the core randomization: 0.9-2.0 s).
SHOVE_FALL_S = 3.0


def fall_shove(fell: bool, steps: int, shove_step: int, shove_mps: float, dt: float) -> float:
    """The speed (m/s) of the shove an episode's fall came within `SHOVE_FALL_S` of; 0 when
    it did not fall, was never shoved, or fell later."""
    if not fell or shove_step < 0 or (steps - shove_step) * dt > SHOVE_FALL_S:
        return 0.0
    return shove_mps


# The walking criteria (issue 22's, for the G1): three fixed commands under the core
# randomization with no falls, a mean velocity error within its bound and the yaw rate
# followed within its own (a robot that stands still passes the yaw command's velocity
# bound), and the env's random commands under the standard randomization with few falls.
WALK_CONDITIONS = (("forward 0.5 m/s", [0.5, 0.0, 0.0], "core"),
                   ("sideways 0.3 m/s", [0.0, 0.3, 0.0], "core"),
                   ("yaw 0.5 rad/s", [0.0, 0.0, 0.5], "core"),
                   ("random commands", None, "standard"))


def walk_criteria(path: str | Path, *, episodes: int = 50, seed: int = 0,
                  max_velocity_error: float = 0.15, max_yaw_rate_error: float = 0.15,
                  max_random_falls: int = 2, physics: str = "trained", workers: int = 1
                  ) -> list[dict[str, Any]]:
    """Each of `WALK_CONDITIONS` evaluated, with whether it meets its criterion: for a fixed
    command no falls, a mean velocity error of at most `max_velocity_error` (m/s) and a
    yaw-rate error of at most `max_yaw_rate_error` (rad/s; per gait period where the walker
    has a gait clock, else per step); at most `max_random_falls` falls for the random
    commands. The command's axes are the robot's (vx, vy, yaw rate): a walker without one of
    them is refused. `workers`: processes per condition (`evaluate`)."""
    from velora_robot.runtime import load_policy

    card = load_policy(path).card
    if card.interface.commands != VELOCITY_COMMANDS:
        raise ConfigError(f"{path}: trained on {card.training.env}, whose commands are "
                          f"{list(card.interface.commands)}: the walking criteria command "
                          "vx, vy and yaw_rate")
    rows = []
    for name, command, ranges in WALK_CONDITIONS:
        result = evaluate(path, episodes=episodes, seed=seed, randomize=True, command=command,
                          ranges=ranges, physics=physics, workers=workers)
        if command is None:
            passed = result["falls"] <= max_random_falls
            criterion = f"falls <= {max_random_falls}"
        else:
            yaw = result.get("yaw_rate_error_gait_mean", result["yaw_rate_error_mean"])
            passed = result["falls"] == 0 and result["velocity_error_mean"] <= \
                max_velocity_error and yaw <= max_yaw_rate_error
            criterion = (f"no falls, velocity error <= {max_velocity_error:g} m/s, yaw rate "
                         f"error <= {max_yaw_rate_error:g} rad/s")
        rows.append({"condition": name, "criterion": criterion, "passed": passed,
                     "result": result})
    return rows


def criteria_table(rows: list[dict[str, Any]]) -> str:
    """One line per walking condition: its figures, its criterion, pass or fail."""
    first = rows[0]["result"]
    lines = [f"{Path(first['model']).name} on {first['env']}, {first['episodes']} episodes "
             f"per condition (seeds {first['seed']}-{first['seed'] + first['episodes'] - 1})"]
    for row in rows:
        r = row["result"]
        gait = (f" (per gait period {r['velocity_error_gait_mean']:.3f})"
                if "velocity_error_gait_mean" in r else "")
        yaw_gait = (f" (per gait period {r['yaw_rate_error_gait_mean']:.3f})"
                    if "yaw_rate_error_gait_mean" in r else "")
        lines.append(f"  {'PASS' if row['passed'] else 'FAIL'}  {row['condition']:<17} "
                     f"randomization {r['ranges']}: falls {falls_phrase(r)}, "
                     f"velocity error {r['velocity_error_mean']:.3f} m/s{gait}, yaw rate error "
                     f"{r['yaw_rate_error_mean']:.3f} rad/s{yaw_gait}, forward speed "
                     f"{r['forward_speed_mean']:.3f} m/s  [{row['criterion']}]")
    return "\n".join(lines)


# Seeds listed after a fall count, at most this many (the JSON has them all).
SEEDS_SHOWN = 8


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % at z 1.96) of a rate seen k times in n episodes: how
    far 50 seeded episodes pin a fall rate down (0 of 50: 0-7 %; 2 of 50: 1-13 %)."""
    p, z2 = k / n, z * z
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, float(center - half)), min(1.0, float(center + half))


def falls_phrase(result: dict[str, Any]) -> str:
    """The fall count with which seeds fell, how many of the falls came right after a shove
    and how hard those shoves were, and the fall rate's 95 % interval (absent from results
    written before it was reported)."""
    seeds, shoves = result.get("fall_seeds"), result.get("fall_shoves_mps")
    parts = []
    if seeds:
        more = ", ..." if len(seeds) > SEEDS_SHOWN else ""
        parts.append(f"seed{'s' if len(seeds) > 1 else ''} "
                     + ", ".join(map(str, seeds[:SEEDS_SHOWN])) + more)
    if shoves:
        speeds = f"{min(shoves):.2f}" + (f"-{max(shoves):.2f}" if len(shoves) > 1 else "")
        parts.append(f"{len(shoves)} within {SHOVE_FALL_S:g} s of a shove, {speeds} m/s")
    phrase = f"{result['falls']}" + (f" ({'; '.join(parts)})" if parts else "")
    if "fall_rate_ci95" in result:
        lo, hi = result["fall_rate_ci95"]
        phrase += f", fall rate {100 * lo:.0f}-{100 * hi:.0f} % (95 %)"
    return phrase


def per_period_error(velocity: np.ndarray, command: np.ndarray, period: int) -> float:
    """Mean over the whole periods of `period` steps of |mean command - mean velocity|
    (planar (T, 2) in m/s, or a yaw rate (T,) in rad/s; an episode shorter than one period
    is one window)."""
    period = min(period, len(velocity))
    whole = len(velocity) // period * period
    width = velocity.shape[1:]
    v = velocity[:whole].reshape(-1, period, *width).mean(axis=1)
    c = command[:whole].reshape(-1, period, *width).mean(axis=1)
    gap = c - v
    return float(np.mean(np.linalg.norm(gap, axis=1) if width else np.abs(gap)))


def compare(result: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """`result` against `baseline` (the same env, seeds, episodes and setting)."""
    for key in ("env", "seed", "episodes", "randomization", "ranges", "command", "physics"):
        if result.get(key) != baseline.get(key):
            raise ConfigError(f"--baseline: {key} differs ({result[key]!r} vs "
                              f"{baseline[key]!r}); compare policies of the same env")
    if "tracking_reward_mean" not in result:
        raise ConfigError(f"--baseline: {result['env']} has no tracking reward terms")
    ratio = (result["tracking_reward_mean"] / baseline["tracking_reward_mean"]
             if baseline["tracking_reward_mean"] > 0 else float("nan"))
    params = (result["trainable_parameters"] / baseline["trainable_parameters"]
              if result["trainable_parameters"] and baseline["trainable_parameters"]
              else float("nan"))
    return {"model": result["model"], "baseline": baseline["model"],
            "randomization": result["randomization"],
            "tracking_reward_ratio": ratio, "parameter_ratio": params,
            "env_steps": [result["env_steps"], baseline["env_steps"]]}


def _setting(result: dict[str, Any]) -> str:
    """on, off, or n/a for envs without randomization."""
    setting = {True: "on", False: "off"}.get(result["randomization"], "n/a")
    return setting + RANGES.get(result.get("ranges") or "standard", "")


def table(results: list[dict[str, Any]]) -> str:
    """One line per setting."""
    lines = []
    for r in results:
        head = (f"{Path(r['model']).name} on {r['env']}, {r['episodes']} episodes, "
                f"randomization {_setting(r)}"
                + (f", physics {r['physics']}" if r.get("physics", "trained") != "trained"
                   else "")
                + (f", command {r['command']}" if r["command"] else ""))
        body = [f"return {r['return_mean']:.2f}", f"length {r['length_s_mean']:.1f} s",
                f"falls {falls_phrase(r)}"]
        if "action_change_mean" in r:
            body.append(f"action change {r['action_change_mean']:.3f} per step")
        if "velocity_error_mean" in r:
            body += [f"velocity error {r['velocity_error_mean']:.3f} m/s (worst episode "
                     f"{r['velocity_error_max']:.3f}"
                     + (f"; per gait period {r['velocity_error_gait_mean']:.3f}"
                        if "velocity_error_gait_mean" in r else "") + ")",
                     f"yaw rate error {r['yaw_rate_error_mean']:.3f} rad/s"
                     + (f" (per gait period {r['yaw_rate_error_gait_mean']:.3f})"
                        if "yaw_rate_error_gait_mean" in r else ""),
                     f"forward speed {r['forward_speed_mean']:.3f} m/s",
                     f"energy {r['energy_j_mean']:.0f} J"]
        if "tracking_error_mean" in r:
            body.append(f"tracking error {r['tracking_error_mean']:.4f} rad")
        if "tracking_reward_mean" in r:
            body.append(f"tracking reward {r['tracking_reward_mean']:.2f}")
        lines.append(head + ":\n  " + ", ".join(body))
    return "\n".join(lines)


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """One line per setting of `compare` results."""
    return "\n".join(
        f"{Path(c['model']).name} vs {Path(c['baseline']).name}, randomization "
        f"{_setting(c)}: tracking reward "
        f"{100 * c['tracking_reward_ratio']:.1f}% of the baseline's, "
        f"{c['parameter_ratio']:.4f}x its parameters (env steps {c['env_steps'][0]:,} vs "
        f"{c['env_steps'][1]:,})" for c in rows)
