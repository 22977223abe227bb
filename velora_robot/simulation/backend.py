"""Where a task's robots are simulated: MuJoCo's C library on a native thread pool
(`mujoco`, the default) or MuJoCo Warp (`warp`: a GPU, or Warp's CPU device for tests).
Both are `RobotBatch`es, so a task and its policy interface are the same on either."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from velora_robot.robots.spec import RobotSpec
from velora_robot.simulation.robot import RobotBatch

Backend = Literal["mujoco", "warp"]


@dataclass(frozen=True)
class Simulator:
    """A simulation backend and its resources: physics `threads` (mujoco) or the Warp
    `device` ("cpu", "cuda", "cuda:1"; warp)."""

    backend: Backend = "mujoco"
    threads: int = 1
    device: str = "cpu"

    def batch(self, spec: RobotSpec, n: int, **kwargs: Any) -> RobotBatch:
        """`n` robots of `spec` on this backend (`kwargs` as `RobotBatch`'s)."""
        if self.backend == "warp":
            from velora_robot.simulation.warp import WarpBatch

            return WarpBatch(spec, n, device=self.device, **kwargs)
        return RobotBatch(spec, n, threads=self.threads, **kwargs)
