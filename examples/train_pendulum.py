"""Train a liquid controller on Pendulum-v1 from Python, export it, run the exported file."""

import sys

import gymnasium as gym

from velora_robot import PPO
from velora_robot.runtime import load_policy

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000  # about 30 s on 2 cores
model = PPO("Pendulum-v1", "liquid", n_neurons=16, n_envs=16, steps_per_env=256, epochs=10,
            lr=1e-3, gamma=0.95, lam=0.9, run_dir="runs/pendulum_api")
model.learn(steps)
policy = load_policy(model.export("out/pendulum.onnx"))  # ONNX + model card, torch-free
env, total = gym.make("Pendulum-v1"), 0.0
obs, _ = env.reset(seed=0)
for _ in range(200):  # one episode; the policy acts in [-1, 1], the pendulum takes ±2 N*m
    obs, reward, *_ = env.step(2.0 * policy(obs))
    total += reward
print(f"return of one episode with the exported policy: {total:.0f} (random: about -1200)")
