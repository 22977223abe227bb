"""Train a liquid controller on your own gymnasium env: define it, register it, train."""

import sys

import gymnasium as gym
import numpy as np

from velora_robot import PPO


class Reach1D(gym.Env):
    """Drive a point on a line to the origin; the action is its velocity."""

    observation_space = gym.spaces.Box(-5.0, 5.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-2, 2)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x, self.t = float(np.clip(self.x + 0.1 * float(action[0]), -5, 5)), self.t + 1
        return np.array([self.x], np.float32), -abs(self.x), False, self.t >= 50, {}


gym.register("Reach1D-v0", entry_point=Reach1D)  # in a package: env id "my_pkg.envs:Reach1D-v0"

if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    model = PPO("Reach1D-v0", "liquid", n_neurons=8, n_envs=8, run_dir="runs/reach1d")
    model.learn(steps)
    env = gym.make("Reach1D-v0")
    obs, _ = env.reset(seed=1)
    start, state = obs[0], None
    for _ in range(50):
        action, state = model.predict(obs, state)
        obs, *_ = env.step(action)
    print(f"the point went from x={start:+.3f} to x={obs[0]:+.3f} in 50 steps")
