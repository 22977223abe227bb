"""The nominal walk the explain measurements share: the policy's own env from its model card,
randomization off, seed 0, forward at 0.5 m/s for walkers (the shipped criteria's command)
and the task's own reference for the one-joint rig, with every step's network state,
read-out and bypass recorded. A fall ends it; shorter episodes follow each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from velora_robot.explain.network import BlackBox, LiquidNet

NOMINAL_S = 20.0
FORWARD = 0.5  # m/s


@dataclass
class Walk:
    """Per control step: raw observations, network inputs, states after the step, the
    read-out and bypass per joint; velocity (or tracking) error per step; whether it fell."""

    dt_s: float
    obs: np.ndarray
    x: np.ndarray
    states: np.ndarray
    readout: np.ndarray
    bypass: np.ndarray
    error: np.ndarray
    fell: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.x) * self.dt_s

    @property
    def action_mean(self) -> np.ndarray:
        return self.readout + self.bypass


# Every randomized quantity at its nominal point, pushes off: a condition of the robustness
# sweep then changes one of them.
NOMINAL = {"friction": (0.8, 0.8), "mass_scale": (1.0, 1.0), "payload_kg": (0.0, 0.0),
           "com_shift_m": (0.0, 0.0), "motor_strength": (1.0, 1.0), "kp_scale": (1.0, 1.0),
           "kd_scale": (1.0, 1.0), "latency_s": (0.0, 0.0), "sensor_latency_s": (0.0, 0.0),
           "obs_noise_scale": 0.0, "push_velocity": (0.0, 0.0)}


def commands_of(card: Any) -> list[str]:
    """The velocity commands the policy takes; none for a task with its own reference."""
    from velora_robot.envs import ENV_IDS

    task = ENV_IDS.get(card.training.env)
    if task is None or not task.TASK.RANGED_COMMANDS or card.interface is None:
        return []
    return list(card.interface.commands)


def make_env(card: Any, command: dict[str, float] | None = None,
             condition: dict[str, Any] | None = None) -> Any:
    """The card's env with a fixed command (names as the robot's; others 0) and, with a
    `condition`, the randomization at NOMINAL but for the condition's entries."""
    from velora_robot.evaluation import _env

    names = commands_of(card)
    fixed = [float((command or {}).get(name, 0.0)) for name in names] if names else None
    return _env(card, randomize=condition is not None, command=fixed, where="explain",
                overrides=None if condition is None else {**NOMINAL, **condition})


def nominal_env(card: Any) -> Any:
    """The card's env for the nominal walk (see the module)."""
    return make_env(card, forward_command(card))


def forward_command(card: Any) -> dict[str, float] | None:
    """The nominal walk's command: FORWARD m/s ahead for a walker; None for a task with
    its own reference."""
    return {"vx": FORWARD} if "vx" in commands_of(card) else None


def walk(net: LiquidNet | BlackBox, env: Any, seconds: float = NOMINAL_S,
         clamp: np.ndarray | None = None, seed: int = 0) -> Walk:
    """Run the network on `env` in closed loop for `seconds` (neurons in `clamp` held at
    rest); `info["effort"]` is each joint's mean |torque| (N m)."""
    task = getattr(env.unwrapped, "task", None)  # None for other gymnasium envs
    dt = task.dt if task is not None else float(getattr(env.unwrapped, "dt", 1.0))
    locomotion = hasattr(task, "velocity_errors")
    obs, _ = env.reset(seed=seed)
    net.reset()
    effort = np.zeros(net.n_joints)
    v = np.zeros((1, net.n_neurons))
    rec: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "x", "states", "readout",
                                                        "bypass")}
    errors: list[float] = []
    fell = False
    for _ in range(max(1, round(seconds / dt))):
        x = net.normalize(obs[None].astype(np.float64))
        readout, bypass, v = net.step(x, v, clamp)
        for key, value in (("obs", obs), ("x", x[0]), ("states", v[0]),
                           ("readout", readout[0]), ("bypass", bypass[0])):
            rec[key].append(np.array(value, dtype=np.float64))
        obs, _, terminated, truncated, info = env.step(
            net.action(readout[0] + bypass[0]).astype(np.float32))
        m = task._measurement() if task is not None else None
        if m is not None:
            effort += np.abs(m.tau[0])
        if locomotion:
            errors.append(float(task.velocity_errors(m)[0][0]))
        elif "tracking_error" in info:
            errors.append(float(info["tracking_error"]))
        if terminated:
            fell = True
            break
        if truncated:
            obs, _ = env.reset()
            net.reset()
            v = np.zeros_like(v)
    return Walk(dt, *(np.array(rec[k]) for k in ("obs", "x", "states", "readout", "bypass")),
                error=np.array(errors), fell=fell,
                info={"effort": (effort / len(rec["x"])).tolist()})


def neuron_share(w: Walk) -> dict[str, Any]:
    """The part of the action mean's variance the motor neurons' read-out accounts for,
    against the bypass: Var(a) = Cov(a, r) + Cov(a, b) with a = r + b, summed over joints
    for "overall" (1.0 without a bypass)."""
    a, r = w.action_mean, w.readout
    a_c, r_c = a - a.mean(0), r - r.mean(0)
    cov_ar, var_a = (a_c * r_c).mean(0), (a_c ** 2).mean(0)
    per_joint = np.divide(cov_ar, var_a, out=np.ones_like(var_a), where=var_a > 1e-12)
    overall = float(cov_ar.sum() / var_a.sum()) if var_a.sum() > 1e-12 else 1.0
    return {"overall": overall, "per_joint": [float(p) for p in per_joint],
            "seconds": w.seconds}
