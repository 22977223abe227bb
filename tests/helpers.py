"""Shared test helpers."""

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

import velora_robot.envs  # noqa: F401  (registers the ids)
from velora_robot.hal import MujocoHardware
from velora_robot.rl import Recipe, train
from velora_robot.rl.trainer import CHECKPOINT
from velora_robot.robots import get_spec
from velora_robot.runtime.controller import Controller
from velora_robot.runtime.safety import Safety, SafetyConfig


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


def env_and_runtime_joint_trajectories(env_id: str, robot: str,
                                       policy: Callable[[np.ndarray], np.ndarray],
                                       reset: Callable[[], None] = lambda: None,
                                       physics: dict | None = None,
                                       ) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions over 5 s at 0.5 m/s forward, in the training env and through the
    runtime `Controller` and its safety layer (no ramp, as the deploy launch files) on the
    simulated hardware, the same policy driving both (`reset` starts it afresh between the
    two)."""
    env = gym.make(env_id, command_ranges={"vx": (0.5, 0.5), "vy": (0.0, 0.0),
                                           "yaw_rate": (0.0, 0.0)}, physics=physics or {})
    obs, _ = env.reset(seed=0)
    reset()
    env_q = []
    for _ in range(250):  # 5 s at 50 Hz
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        env_q.append(env.unwrapped.robot.measure().state.q)
        if terminated or truncated:
            break
    hw = MujocoHardware(get_spec(robot), physics=env.unwrapped.task.config.physics)
    hw.configure()
    hw.activate()
    reset()
    controller = Controller(hw, policy, env.unwrapped.task.interface,
                            command=np.array([0.5, 0.0, 0.0]),
                            safety=Safety(hw.spec, SafetyConfig(ramp_s=0.0)))
    controller.start()
    runtime_q = []
    for _ in env_q:
        controller.cycle()
        runtime_q.append(hw.read().q)
    return np.array(env_q), np.array(runtime_q)
