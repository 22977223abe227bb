"""Mirror symmetry for PPO: a bilateral robot's policy should act on the mirror image of a
situation as the mirror image of how it acts on the situation. With mirror maps of the
observation and action (from the task, `VecTask.mirror_maps`) PPO adds a loss (rsl_rl's
"mirror loss", made exact for recurrent actors): the actor's mean on each training chunk's
mirror image is pulled towards the mirror image of its mean on the chunk. A recurrent
actor's image needs its own state, so during the rollout the actor also runs on the
mirrored observations (a second stream, no sampling) and each mirrored chunk starts from
the state that stream had.

Measured first, and dropped: augmenting PPO's batch with the mirrored samples themselves
(mirrored action, the same advantage, the mirrored stream's log-probability). An untrained
actor is far from symmetric, so the mirrored actions sit in the tails of its own
distribution; their gradients drove the learned noise down (entropy 11 to -7.6 in 5.7M
steps) and the adaptive step to its floor, and Spot learned no gait (45 falls in 50 at 4M
steps, against 16 without symmetry).
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
