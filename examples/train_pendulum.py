"""Train a liquid controller on Pendulum-v1 from Python, export it, run the exported file."""

import sys

import numpy as np

from velora_robot import PPO
from velora_robot.runtime import load_policy

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000  # the tests pass a small budget
model = PPO("Pendulum-v1", "liquid", n_envs=8, n_neurons=16, run_dir="runs/pendulum_api")
model.learn(steps)
policy = load_policy(model.export("out/pendulum.onnx"))  # ONNX + model card, torch-free
print("action for the pendulum hanging still:", policy(np.array([1.0, 0.0, 0.0])))
