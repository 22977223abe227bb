"""A user's own gymnasium env, registered when this module is imported (for the tests of
`env: {id: "tests.user_envs:Reach1D-v0"}`)."""

import gymnasium as gym
import numpy as np


class Reach1D(gym.Env):
    """Move a point on a line to the origin: observation (position,), action a velocity."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x, self.t = 0.0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-2, 2)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.1 * float(action[0]), -5, 5))
        self.t += 1
        return np.array([self.x], np.float32), -abs(self.x), False, self.t >= 50, {}


if "Reach1D-v0" not in gym.registry:
    gym.register("Reach1D-v0", entry_point=Reach1D)
