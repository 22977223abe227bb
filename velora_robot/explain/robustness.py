"""Robustness, fairness and the trust envelope of a controller, in closed loop on the numpy
network (explain/network.py).

- Robustness: one condition at a time away from nominal (friction, payload, actuation
  latency, sensor noise, pushes, and noise on the network's own parameters), a few seeded
  walks each: falls and mean error.
- Fairness: a controller must not favour a side: paired commands (forward/backward,
  left/right sidestep, left/right turn) and each leg's share of the effort (Gini).
- Trust: the conditions it passed (no fall, error at most twice nominal plus 0.05), and
  from them the envelope it was verified in: along each axis (friction, payload, latency,
  sensor noise, pushes) the range from nominal out to the last condition passed, and each
  command's range over the commands it walked without a fall. `velora-robot explain
  --write-card` puts it into the model card, and `run` warns outside it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from velora_robot.explain.network import BlackBox, LiquidNet
from velora_robot.explain.walk import (
    FORWARD,
    NOMINAL,
    commands_of,
    forward_command,
    make_env,
    walk,
)

# (name, randomization entries, robot physics only): walkers get all, other tasks those
# without robot physics. A condition's first entry is the envelope axis it lies on.
CONDITIONS: list[tuple[str, dict[str, Any], bool]] = [
    ("friction 0.3", {"friction": (0.3, 0.3)}, True),
    ("friction 0.5", {"friction": (0.5, 0.5)}, True),
    ("friction 1.2", {"friction": (1.2, 1.2)}, True),
    ("payload +3 kg", {"payload_kg": (3.0, 3.0)}, True),
    ("payload +6 kg", {"payload_kg": (6.0, 6.0)}, True),
    ("actuation latency 20 ms", {"latency_s": (0.02, 0.02)}, False),
    ("actuation latency 40 ms", {"latency_s": (0.04, 0.04)}, False),
    ("actuation latency 60 ms", {"latency_s": (0.06, 0.06)}, False),
    ("sensor noise x1", {"obs_noise_scale": 1.0}, False),
    ("sensor noise x2", {"obs_noise_scale": 2.0}, False),
    ("sensor noise x4", {"obs_noise_scale": 4.0}, False),
    ("pushes 1 m/s every 4 s", {"push_velocity": (-1.0, 1.0), "push_interval_s": 4.0}, True),
]
NETWORK_NOISE = (0.01, 0.05, 0.1)  # relative, on every parameter
PAIRS = (("forward", "backward", "vx", FORWARD), ("left", "right", "vy", 0.3),
         ("turn left", "turn right", "yaw_rate", 0.5))


def perturbed(net: LiquidNet, scale: float, rng: np.random.Generator) -> LiquidNet:
    """The network with every parameter multiplied by 1 + scale N(0, 1)."""
    arrays = {k: v if k.endswith(("src", "dst")) else v * (1 + scale * rng.standard_normal(
        np.shape(v))) for k, v in net.arrays.items()}
    return replace(net, arrays=arrays)


def _walks(net: LiquidNet | BlackBox, card: Any, command: dict[str, float] | None,
           condition: dict[str, Any] | None, episodes: int, seconds: float,
           noise: float = 0.0) -> dict[str, Any]:
    env = make_env(card, command, condition)
    rng = np.random.default_rng(0)
    falls, errors = 0, []
    try:
        for episode in range(episodes):
            run = perturbed(net, noise, rng) if noise else net
            w = walk(run, env, seconds, seed=episode)
            falls += int(w.fell)
            if len(w.error):
                errors.append(float(w.error.mean()))
    finally:
        env.close()
    return {"falls": falls, "episodes": episodes,
            "error_mean": float(np.mean(errors)) if errors else None}


def robustness(net: LiquidNet | BlackBox, card: Any, episodes: int = 3, seconds: float = 10.0
               ) -> dict[str, Any]:
    """Each condition's falls and mean error, nominal first; and the trust envelope. (The
    network-noise conditions need a network: a black box skips them.)"""
    from velora_robot.envs import ENV_IDS

    ours = card.training.env in ENV_IDS  # other gymnasium envs have no conditions to set
    command = forward_command(card)
    walker = command is not None
    rows = [{"condition": "nominal", **_walks(net, card, command, {}, episodes, seconds)}]
    for name, condition, robot_only in CONDITIONS:
        if ours and (walker or not robot_only):
            axis = next(iter(condition))
            rows.append({"condition": name, "axis": axis, "value": _extent(condition, axis)[1],
                         **_walks(net, card, command, condition, episodes, seconds)})
    for scale in NETWORK_NOISE if isinstance(net, LiquidNet) else ():
        rows.append({"condition": f"network parameters +-{scale:.0%}",
                     **_walks(net, card, command, {}, episodes, seconds, noise=scale)})
    nominal = rows[0]["error_mean"] or 0.0
    limit = 2 * nominal + 0.05
    for row in rows:
        row["passed"] = row["falls"] == 0 and (row["error_mean"] is None
                                               or row["error_mean"] <= limit)
    return {"episodes": episodes, "seconds": seconds, "command": command,
            "error_limit": limit, "rows": rows,
            "trust_envelope": [r["condition"] for r in rows if r["passed"]]}


def _extent(condition: dict[str, Any], axis: str) -> tuple[float, float]:
    """An axis's range in the nominal walk with `condition` applied."""
    from velora_robot.simulation.randomization import Randomization

    return Randomization.model_validate({**NOMINAL, **condition}).extent(axis)


def gini(values: np.ndarray) -> float:
    """0 when every value is equal, towards 1 when one holds everything."""
    v = np.sort(np.abs(np.asarray(values, float)))
    if v.sum() == 0:
        return 0.0
    n = len(v)
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))


def fairness(net: LiquidNet | BlackBox, card: Any, seconds: float = 10.0) -> dict[str, Any]:
    """Paired commands' errors and their gap; each leg's share of the effort."""
    names = commands_of(card)
    pairs = []
    for a, b, command, value in PAIRS:
        if command not in names:
            continue
        results = []
        for sign in (1.0, -1.0):
            env = make_env(card, {command: sign * value})
            try:
                w = walk(net, env, seconds)
            finally:
                env.close()
            results.append({"fell": w.fell, "error_mean": float(w.error.mean())
                            if len(w.error) else None, "effort": w.info["effort"]})
        gap = (abs(results[0]["error_mean"] - results[1]["error_mean"])
               if None not in (results[0]["error_mean"], results[1]["error_mean"]) else None)
        pairs.append({"pair": [a, b], "command": command, "value": value,
                      "results": results, "error_gap": gap})
    legs: dict[str, list[int]] = {}
    joints = card.robot.joint_names if card.robot else []
    for j, name in enumerate(joints):
        legs.setdefault(name.split("_")[0], []).append(j)
    effort = None
    if pairs and len(legs) > 1:
        forward = np.array(pairs[0]["results"][0]["effort"])
        per_leg = {leg: float(forward[ids].sum()) for leg, ids in legs.items()}
        effort = {"per_leg_nm": per_leg, "gini": gini(np.array(list(per_leg.values())))}
    return {"seconds": seconds, "pairs": pairs, "leg_effort": effort}


def envelope(rob: dict[str, Any], fair: dict[str, Any]) -> dict[str, Any]:
    """The envelope a controller was verified in (the model card's `trust`): each axis's
    range from its nominal value out to the last condition passed before one failed (the
    nominal point alone if the nearest failed), and each command's range over the
    commands walked without a fall and within the error limit (0 included: standing is
    asked at every start). Nothing is verified when the nominal walk fell."""
    axes: dict[str, list[float]] = {}
    walked: dict[str, list[float]] = {}
    if not rob["rows"][0]["falls"]:
        for axis in dict.fromkeys(r["axis"] for r in rob["rows"] if "axis" in r):
            tested = sorted((r["value"], r["passed"]) for r in rob["rows"]
                            if r.get("axis") == axis)
            lo = hi = nominal = _extent({}, axis)[1]
            for value, passed in (t for t in tested if t[0] > nominal):
                if not passed:
                    break
                hi = value
            for value, passed in (t for t in reversed(tested) if t[0] < nominal):
                if not passed:
                    break
                lo = value
            axes[axis] = [lo, hi]
        walked = {name: [0.0, value] for name, value in (rob["command"] or {}).items()}
        for pair in fair["pairs"]:
            for sign, result in zip((1.0, -1.0), pair["results"], strict=True):
                error = result["error_mean"]
                if not result["fell"] and (error is None or error <= rob["error_limit"]):
                    walked.setdefault(pair["command"], [0.0]).append(sign * pair["value"])
    return {"error_limit": rob["error_limit"], "axes": axes,
            "commands": {k: [min(v), max(v)] for k, v in walked.items()},
            "conditions": _conditions(rob)}


def _conditions(rob: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("condition", "passed", "falls", "episodes", "error_mean")}
            for r in rob["rows"]]
