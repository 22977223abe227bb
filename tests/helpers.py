"""Shared test helpers."""

from pathlib import Path

from velora_robot.rl import Recipe, train
from velora_robot.rl.trainer import CHECKPOINT


def tiny_joint_track_run(out: Path, *, seed: int, neurons_per_dof: int,
                         eval_episodes: int, residual: bool = True, kind: str = "liquid") -> Path:
    """Two PPO updates of an 8-neuron one-joint controller (or an MLP or linear one);
    returns its checkpoint."""
    recipe = Recipe.model_validate({
        "name": "jt", "seed": seed,
        "env": {"id": "velora_robot/JointTrack-v0", "n_envs": 4, "n_workers": 1},
        "policy": {"kind": kind, "n_neurons": 8, "neurons_per_dof": neurons_per_dof,
                   "residual": residual},
        "algorithm": {"steps_per_env": 32, "chunk_len": 8},
        "budget": {"env_steps": 2 * 4 * 32}, "logging": {"dir": str(out)},
        "eval": {"episodes": eval_episodes}})
    train(recipe, progress=False)
    return recipe.run_dir / CHECKPOINT
