"""Mirror symmetry for PPO, as data augmentation (in the spirit of rsl_rl's symmetry
extension, made exact for recurrent actors).

A bilateral robot's mirror image is as valid an experience as the original: with mirror
maps of the observation and action (from the task, `VecTask.mirror_maps`), every rollout
step also yields its image — mirrored observation, mirrored action, the same advantage.
A recurrent actor's image needs its own state: during the rollout the actor also runs on
the mirrored observations (a second stream, no sampling), so each mirrored training chunk
starts from the state that stream really had and its old log-probability is the behaviour
policy's own for that action. The update then sees each minibatch and its image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from velora_robot.errors import ConfigError


class Mirror:
    """Index and sign maps: mirrored x = x[..., index] * sign, for observations and
    actions."""

    def __init__(self, obs_index: np.ndarray, obs_sign: np.ndarray, act_index: np.ndarray,
                 act_sign: np.ndarray) -> None:
        self.obs_index = torch.as_tensor(obs_index, dtype=torch.long)
        self.obs_sign = torch.as_tensor(obs_sign, dtype=torch.float32)
        self.act_index = torch.as_tensor(act_index, dtype=torch.long)
        self.act_sign = torch.as_tensor(act_sign, dtype=torch.float32)

    @classmethod
    def of_env(cls, env_id: str, kwargs: dict[str, Any], where: str) -> Mirror:
        """The maps of one of our tasks; ConfigError (starting with `where`) for an env
        that has none."""
        import velora_robot.envs as velora_envs

        if env_id not in velora_envs.ENV_IDS:
            raise ConfigError(f"{where}: mirror symmetry needs one of our envs "
                              f"({', '.join(velora_envs.ENV_IDS)}), not {env_id!r}")
        return cls(*velora_envs.ENV_IDS[env_id].TASK.mirror_maps(kwargs, where))

    def obs(self, x: Tensor) -> Tensor:
        """The mirror image of observations (..., F)."""
        return x[..., self.obs_index] * self.obs_sign

    def action(self, a: Tensor) -> Tensor:
        """The mirror image of actions (..., A)."""
        return a[..., self.act_index] * self.act_sign
