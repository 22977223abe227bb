"""`velora-robot bench walk`: Spot trained from scratch with the fast recipe
(launch/spot_walk_quick.yaml: the contact settings chosen for Spot, `physics.FAST`,
128 robots) until a
checkpoint meets the shipped walking criteria, and the wall time and env steps that took.

Every `every` env steps the latest checkpoint is exported to ONNX and evaluated as the
shipped controller was: 50 episodes (seeds 0-49), 0.5 m/s forward, the core randomization
(friction, mass, latency, pushes); it passes with no falls and a mean velocity error of at
most 0.1 m/s. The first checkpoint that passes is then evaluated on the full-fidelity
model (the MJCF's own contacts, every geom colliding). Training time and evaluation time
are reported apart. `--quick` trains the one-joint rig instead, to its own criterion.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from velora_robot.bench.solve import LAUNCH

SPOT = {"recipe": "spot_walk_quick.yaml", "every": 2_000_000, "budget": 30_000_000,
        "command": [0.5, 0.0, 0.0], "ranges": "core", "max_velocity_error": 0.1}
QUICK = {"recipe": "joint_track.yaml", "every": 100_000, "budget": 600_000,
         "command": None, "ranges": "standard", "max_tracking_error": 0.1}


def _passes(result: dict[str, Any], case: dict[str, Any]) -> bool:
    if "max_velocity_error" in case:
        return result["falls"] == 0 and result["velocity_error_mean"] <= \
            case["max_velocity_error"]
    return result["tracking_error_mean"] <= case["max_tracking_error"]


def run(quick: bool = False, recipe: Path | None = None) -> dict[str, Any]:
    """Train, evaluating every `every` env steps, until a checkpoint passes; `recipe`
    replaces the case's own (to measure a variant's steps to walk)."""
    from velora_robot import evaluation
    from velora_robot.export import export
    from velora_robot.rl import train
    from velora_robot.rl.recipe import Recipe, load_recipe
    from velora_robot.rl.trainer import CHECKPOINT

    case = QUICK if quick else SPOT
    path = LAUNCH / case["recipe"] if recipe is None else Path(recipe)
    case = {**case, "recipe": path.name}
    with tempfile.TemporaryDirectory(prefix="velora-bench-walk-") as tmp:
        data = load_recipe(path).model_dump()
        per_update = data["env"]["n_envs"] * data["algorithm"]["steps_per_env"]
        every_updates = max(1, case["every"] // per_update)
        data["logging"] = {**data["logging"], "dir": tmp, "checkpoint_every": every_updates}
        data["budget"] = {"env_steps": case["budget"]}
        data["eval"] = {"episodes": 0}
        recipe = Recipe.model_validate(data)
        state: dict[str, Any] = {"evals": [], "eval_s": 0.0, "passed": None}

        def check(update: int, env_steps: int, agent: Any) -> bool:
            if update % every_updates != 1 or update == 1:
                return False  # the checkpoint of update - 1 is on disk from here
            start, trained = time.perf_counter(), state["train_s"]()
            policy = export(recipe.run_dir / CHECKPOINT, "onnx",
                            Path(tmp) / f"u{update - 1}.onnx")["policy"]
            result = evaluation.evaluate(policy, episodes=50, seed=0, randomize=True,
                                         command=case["command"], ranges=case["ranges"])
            row = {"update": update - 1, "env_steps": env_steps - per_update,
                   "train_wall_s": trained, **_figures(result)}
            if _passes(result, case):
                state["policy"] = _keep(policy, recipe.name)
                if not quick:
                    full = evaluation.evaluate(policy, episodes=50, seed=0, randomize=True,
                                               command=case["command"],
                                               ranges=case["ranges"], physics="full")
                    row["full_model"] = _figures(full)
                state["passed"] = row
            state["evals"].append(row)
            state["eval_s"] += time.perf_counter() - start
            print(_row_line(row), flush=True)  # a long benchmark shows each evaluation
            return state["passed"] is not None

        started = time.perf_counter()
        state["train_s"] = lambda: time.perf_counter() - started - state["eval_s"]
        summary = train(recipe, progress=False, on_update=check)
    return {"benchmark": "walk", "recipe": case["recipe"], "every_env_steps": case["every"],
            "passed": state["passed"], "policy": state.get("policy"), "evals": state["evals"],
            "train_wall_s": state["train_s"](), "eval_wall_s": state["eval_s"],
            "env_steps": summary["env_steps"], "actor_parameters": summary["actor_parameters"]}


KEEP = Path("out") / "bench_walk"


def _keep(policy: Path, name: str) -> str:
    """The passing policy and its card, copied out of the run's temporary folder."""
    import shutil

    from velora_robot.runtime.card import card_path

    KEEP.mkdir(parents=True, exist_ok=True)
    target = KEEP / f"{name}.onnx"
    shutil.copyfile(policy, target)
    shutil.copyfile(card_path(policy), card_path(target))
    return str(target)


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("falls", "velocity_error_mean", "velocity_error_max", "forward_speed_mean",
            "tracking_error_mean", "return_mean")
    return {k: result[k] for k in keys if k in result}


HEADER = f"{'update':>7}{'env steps':>12}{'train s':>9}  figures"


def _row_line(row: dict[str, Any]) -> str:
    figures = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in row.items()
                        if k not in ("update", "env_steps", "train_wall_s", "full_model"))
    return f"{row['update']:>7}{row['env_steps']:>12,}{row['train_wall_s']:>9.0f}  {figures}"


def table(result: dict[str, Any]) -> str:
    lines = [f"bench walk: {result['recipe']}, evaluated every {result['every_env_steps']:,} "
             f"env steps ({result['actor_parameters']} actor parameters)", HEADER]
    lines += [_row_line(row) for row in result["evals"]]
    passed = result["passed"]
    if passed is None:
        lines.append(f"no checkpoint passed within {result['env_steps']:,} env steps "
                     f"({result['train_wall_s'] / 60:.1f} min of training)")
    else:
        lines.append(f"passed at {passed['env_steps']:,} env steps after "
                     f"{passed['train_wall_s'] / 60:.1f} min of training (evaluation "
                     f"{result['eval_wall_s'] / 60:.1f} min apart)")
        if "full_model" in passed:
            lines.append(f"  on the full-fidelity model: {passed['full_model']}")
        lines.append(f"  the passing policy: {result['policy']}")
    return "\n".join(lines)
