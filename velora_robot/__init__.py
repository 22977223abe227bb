"""velora-robot: small liquid neural controllers, trained in MuJoCo, run on the robot.

`PPO`, `SAC` and `TD3` (the Python training API, `velora_robot.api`) load on first use, so
importing the package stays torch-free for the robot side. Importing it registers the
gymnasium ids (`velora_robot/SpotWalk-v0`, ...) without importing gymnasium."""

from typing import Any

from velora_robot.gym_ids import register_when_gymnasium_loads

__version__ = "0.1.0"
__all__ = ["PPO", "SAC", "TD3", "__version__"]

register_when_gymnasium_loads()


def __getattr__(name: str) -> Any:
    if name in ("PPO", "SAC", "TD3"):
        from velora_robot import api

        return getattr(api, name)
    raise AttributeError(f"module 'velora_robot' has no attribute {name!r}")
