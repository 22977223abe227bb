"""`velora-robot bench imitation`: how closely each kind of actor can represent a teacher.

A distillation recipe (`--recipe`, default launch/g1_walk_distill6.yaml) names an env and a
teacher (an exported policy). The teacher drives the recipe's robots, acting with the
recipe's noise (`algorithm.action_std`), for `segments` x 48 steps of 128 robots; every
state is labelled with its deterministic action (inside the range that reaches the robot,
as distillation labels it). Then each candidate actor, built exactly as training builds it,
learns those labels by supervised regression over whole sequences (Adam, cosine schedule,
batches of 64 sequences; the first 8 steps of a sequence, whose recurrent state starts from
zero, are not scored), and is scored on held-out robots: the squared error of its action
summed over the joints, the loss distillation minimizes.

This separates what an architecture can represent from what a training method finds: on
the teacher's own states, with the labels fixed, a gap between candidates is capacity.
Candidates: a linear policy (the liquid actor's bypass alone), a 64-64 MLP, and the liquid
actor of the recipe at four wiring densities: the NCP default (each input to 4 inter neurons,
each inter to 4 command neurons, 1 cross-joint synapse per command neuron), fanouts 12, half
of the possible synapses (ncps's AutoNCP default, sparsity 0.5) and every possible synapse.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
RECIPE = LAUNCH / "g1_walk_distill6.yaml"
ROBOTS, STEPS, BURN_IN, BATCH = 128, 48, 8, 64


def _candidates(policy: Any, n_inter: int, n_command: int) -> dict[str, dict[str, Any]]:
    """Policy-section changes per candidate (`policy` is the recipe's liquid section)."""
    half = {"sensory_fanout": max(1, n_inter // 2), "inter_fanout": max(1, n_command // 2),
            "cross_joint_fanout": max(1, n_command // 2)}
    every = {"sensory_fanout": n_inter, "inter_fanout": n_command,
             "cross_joint_fanout": n_command}
    liquid = {"kind": "liquid", "n_neurons": policy.n_neurons,
              "neurons_per_dof": policy.neurons_per_dof, "residual": policy.residual,
              "ode_unfolds": policy.ode_unfolds, "compiled": True}
    sparse = {"sensory_fanout": 4, "inter_fanout": 4, "cross_joint_fanout": 1}
    return {"linear": {"kind": "linear"}, "mlp 64-64": {"kind": "mlp", "hidden": [64, 64]},
            "liquid, NCP 4/4/1": {**liquid, **sparse},
            "liquid, fanouts 12": {**liquid, "sensory_fanout": 12, "inter_fanout": 12,
                                   "cross_joint_fanout": 1},
            "liquid, half the synapses": {**liquid, **half},
            "liquid, every synapse": {**liquid, **every}}


def collect(recipe: Any, segments: int, seed: int = 0) -> dict[str, Any]:
    """Teacher-driven sequences of `recipe`'s env: observations (R, T, F), episode starts
    (R, T) and the teacher's actions (R, T, A), R = segments x 128 robots."""
    import torch

    from velora_robot.rl.teacher import Teacher
    from velora_robot.rl.vec_env import make_vec_env

    env_cfg, algo = recipe.env, recipe.algorithm
    env = make_vec_env(env_cfg.id, ROBOTS, 1, env_cfg.simulator(), **env_cfg.kwargs)
    try:
        obs = env.reset(seed)
        act_dim = env.single_action_space.shape[0]
        teacher = Teacher(algo.teacher, obs.shape[1], act_dim, env_cfg.id,
                          f"recipe {recipe.name!r}: field 'algorithm.teacher'")
        state, starts = teacher.initial_state(ROBOTS), torch.ones(ROBOTS, dtype=torch.bool)
        noise = algo.action_std or 0.2
        rng = np.random.default_rng(seed)
        rows: dict[str, list[np.ndarray]] = {"obs": [], "starts": [], "labels": []}
        for _ in range(segments):
            seq: dict[str, list[np.ndarray]] = {k: [] for k in rows}
            for _ in range(STEPS):
                action, state = teacher.act(obs, state, starts)
                seq["obs"].append(obs)
                seq["starts"].append(starts.numpy().copy())
                seq["labels"].append(action.numpy())
                acted = np.clip(action.numpy() + noise * rng.standard_normal(action.shape),
                                -1.0, 1.0)
                result = env.step(acted)
                obs, starts = result.obs, torch.from_numpy(result.terminated |
                                                           result.truncated)
            for k in rows:
                rows[k].append(np.stack(seq[k], axis=1))
    finally:
        env.close()
    return {k: np.concatenate(v) for k, v in rows.items()}


def fit(section: dict[str, Any], data: dict[str, Any], epochs: int, held_out: int,
        seed: int = 0) -> dict[str, Any]:
    """Train one candidate actor on all but the last `held_out` sequences; its losses."""
    import torch

    from velora_robot.rl.agent import Agent
    from velora_robot.rl.recipe import PolicySection

    torch.manual_seed(seed)
    obs = torch.as_tensor(data["obs"], dtype=torch.float32)
    starts = torch.as_tensor(data["starts"])
    labels = torch.as_tensor(data["labels"], dtype=torch.float32)
    agent = Agent(PolicySection(**section), obs.shape[-1], labels.shape[-1], 0, critic=False)
    agent.obs_norm.update(obs.reshape(-1, obs.shape[-1]))
    x = agent.obs_norm(obs)
    n_train = len(x) - held_out
    train, test = slice(0, n_train), slice(n_train, None)

    def loss(rows: slice | torch.Tensor) -> torch.Tensor:
        mean, _ = agent.actor(x[rows], None, resets=starts[rows])
        return ((mean - labels[rows]) ** 2).sum(-1)[:, BURN_IN:].mean()

    def score(rows: slice) -> float:
        with torch.no_grad():
            return float(loss(rows))

    before = score(test)
    optimizer = torch.optim.Adam(agent.actor.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n_train)
        for i in range(0, n_train, BATCH):
            optimizer.zero_grad()
            loss(order[i:i + BATCH]).backward()
            torch.nn.utils.clip_grad_norm_(agent.actor.parameters(), 1.0)
            optimizer.step()
        schedule.step()
    result = {"parameters": sum(p.numel() for p in agent.actor.parameters()),
              "untrained": before, "train": score(train), "held_out": score(test),
              "seconds": time.perf_counter() - start}
    cell = getattr(agent.actor, "cell", None)
    if cell is not None:
        result["synapses"] = cell.wiring.n_synapses + cell.wiring.n_sensory_synapses
    return result


def run(quick: bool = False, recipe: str | Path | None = None) -> dict[str, Any]:
    import torch

    from velora_robot.errors import ConfigError
    from velora_robot.liquid import NCPWiring
    from velora_robot.rl.recipe import load_recipe

    rec = load_recipe(recipe or RECIPE)
    if rec.algorithm.teacher is None:
        raise ConfigError(f"{recipe or RECIPE}: bench imitation needs a recipe with a "
                          "teacher (field 'algorithm.teacher')")
    torch.set_num_threads(1)
    segments, epochs = (6, 4) if quick else (40, 40)
    start = time.perf_counter()
    data = collect(rec, segments)
    collect_s = time.perf_counter() - start
    act_dim = data["labels"].shape[-1]
    wiring = NCPWiring(n_dof=act_dim, neurons_per_dof=rec.policy.neurons_per_dof,
                       n_neurons=rec.policy.n_neurons)
    held_out = max(1, math.ceil(len(data["obs"]) / 20))
    cases = {}
    for name, section in _candidates(rec.policy, wiring.n_inter, wiring.n_command).items():
        cases[name] = {"policy": section, **fit(section, data, epochs, held_out)}
    return {"recipe": str(recipe or RECIPE), "teacher": rec.algorithm.teacher,
            "sequences": len(data["obs"]), "steps_per_sequence": STEPS,
            "held_out_sequences": held_out, "epochs": epochs, "collect_s": collect_s,
            "cases": cases}


def table(r: dict[str, Any]) -> str:
    lines = [f"imitation of {r['teacher']} ({r['sequences']} sequences of "
             f"{r['steps_per_sequence']} steps, {r['held_out_sequences']} held out, "
             f"{r['epochs']} epochs); squared error summed over joints",
             f"  {'actor':<28}{'params':>8}{'synapses':>10}{'untrained':>11}{'train':>8}"
             f"{'held-out':>10}{'s':>7}"]
    for name, c in r["cases"].items():
        lines.append(f"  {name:<28}{c['parameters']:>8}{c.get('synapses', ''):>10}"
                     f"{c['untrained']:>11.3f}{c['train']:>8.3f}{c['held_out']:>10.3f}"
                     f"{c['seconds']:>7.0f}")
    return "\n".join(lines)
