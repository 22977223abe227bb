"""`velora-robot bench solve`: how many environment steps and how much training time the
liquid controllers need to solve their tasks, over seeds.

Cases run the recipes in launch/ with other seeds. Every `eval_every` env steps the policy
is evaluated deterministically (mean action, 10 seeded episodes); a case is solved when
InvertedPendulum's mean return reaches 950, or JointTrack's mean tracking error falls to
0.05 rad. Wall time counts training only (evaluation excluded).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from velora_robot.errors import ConfigError

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
SEEDS = (0, 1, 2)

# name: (recipe file, recipe changes, eval every env steps, criterion)
CASES: dict[str, tuple[str, dict[str, Any], int, tuple[str, str, float]]] = {
    "pendulum ppo": ("pendulum_ppo.yaml", {}, 5_000, ("return_mean", ">=", 950.0)),
    "pendulum sac": ("pendulum_sac.yaml", {}, 5_000, ("return_mean", ">=", 950.0)),
    "pendulum td3": ("pendulum_td3.yaml", {}, 5_000, ("return_mean", ">=", 950.0)),
    "pendulum ppo, no residual": ("pendulum_ppo.yaml", {"policy": {"residual": False}},
                                  5_000, ("return_mean", ">=", 950.0)),
    "joint track, 1 neuron/DoF": ("joint_track.yaml", {}, 20_000,
                                  ("tracking_error_mean", "<=", 0.05)),
    "joint track, 2 neurons/DoF": ("joint_track.yaml", {"policy": {"neurons_per_dof": 2}},
                                   20_000, ("tracking_error_mean", "<=", 0.05)),
}


def _recipe(file: str, changes: dict[str, Any], seed: int, out: Path) -> Any:
    from velora_robot.rl.recipe import Recipe, load_recipe

    path = LAUNCH / file
    if not path.is_file():
        raise ConfigError(f"bench solve reads the recipes in {LAUNCH}; {file} is missing "
                          "(run it from a source checkout)")
    data = load_recipe(path).model_dump()
    for key, value in changes.items():
        data[key] = {**data[key], **value}
    data.update(seed=seed, name=f"{Path(file).stem}_seed{seed}")
    data["logging"] = {**data["logging"], "dir": str(out), "checkpoint_every": 10_000}
    data["eval"] = {"episodes": 0}
    return Recipe.model_validate(data)


def solve(case: str, seed: int, out: Path) -> dict[str, Any]:
    """Train one case until solved (or out of budget); steps and wall time to solve."""
    from velora_robot.rl import train
    from velora_robot.rl.evaluate import evaluate

    file, changes, every, (metric, op, goal) = CASES[case]
    recipe = _recipe(file, changes, seed, out)
    state: dict[str, Any] = {"next": every, "solved_at": None, "last": None}

    def check(update: int, env_steps: int, agent: Any) -> bool:
        if env_steps < state["next"]:
            return False
        state["next"] += every
        result = evaluate(agent, recipe.env.id, 10, seed=1000 + seed, **recipe.env.kwargs)
        state["last"] = result[metric]
        solved = result[metric] >= goal if op == ">=" else result[metric] <= goal
        if solved:
            state["solved_at"] = env_steps
        return solved

    start = time.perf_counter()
    summary = train(recipe, progress=False, on_update=check)
    return {"case": case, "seed": seed, "solved": state["solved_at"] is not None,
            "env_steps": state["solved_at"] or summary["env_steps"],
            "train_wall_s": summary["wall_s"], "total_wall_s": time.perf_counter() - start,
            metric: state["last"], "actor_parameters": summary["actor_parameters"],
            "neurons": recipe.policy.n_neurons}


def run(quick: bool = False, cases: list[str] | None = None) -> dict[str, Any]:
    """Every case (or `cases`) over every seed (quick: one seed, PPO pendulum only)."""
    cases = ["pendulum ppo"] if quick else (cases or list(CASES))
    seeds = SEEDS[:1] if quick else SEEDS
    with tempfile.TemporaryDirectory(prefix="velora-bench-") as tmp:
        runs = [solve(case, seed, Path(tmp)) for case in cases for seed in seeds]
    return {"benchmark": "solve", "seeds": list(seeds), "runs": runs}


def table(result: dict[str, Any]) -> str:
    """Per case: solved seeds, median steps and training time to solve."""
    lines = [f"{'case':<30}{'neurons':>8}{'params':>8}{'solved':>8}{'median steps':>14}"
             f"{'median s':>10}   steps per seed"]
    by_case: dict[str, list[dict[str, Any]]] = {}
    for run in result["runs"]:
        by_case.setdefault(run["case"], []).append(run)
    for case, runs in by_case.items():
        solved = [r for r in runs if r["solved"]]
        steps = statistics.median(r["env_steps"] for r in solved) if solved else float("nan")
        wall = statistics.median(r["train_wall_s"] for r in solved) if solved else float("nan")
        per_seed = ", ".join(f"{r['env_steps']:,}{'' if r['solved'] else ' (not solved)'}"
                             for r in runs)
        count = f"{len(solved)}/{len(runs)}"
        lines.append(f"{case:<30}{runs[0]['neurons']:>8}{runs[0]['actor_parameters']:>8}"
                     f"{count:>8}{steps:>14,.0f}{wall:>10.1f}   {per_seed}")
    return "\n".join(lines)
