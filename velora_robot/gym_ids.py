"""The package's gymnasium ids, registered when `velora_robot` is imported without importing
gymnasium (the deploy side does not install it): if gymnasium is already loaded they are
registered at once, else the moment it loads (a one-shot import hook on its registration
module). So `import velora_robot; gym.make("velora_robot/SpotWalk-v0")` works, and so does
gymnasium's own `gym.make("velora_robot:velora_robot/SpotWalk-v0")`."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

ENTRY_POINTS = {
    "velora_robot/SpotWalk-v0": "velora_robot.envs.spot_walk:SpotWalkEnv",
    "velora_robot/G1Walk-v0": "velora_robot.envs.g1_walk:G1WalkEnv",
    "velora_robot/Go2Walk-v0": "velora_robot.envs.go2_walk:Go2WalkEnv",
    "velora_robot/JointTrack-v0": "velora_robot.envs.joint_track:JointTrackEnv",
}
_REGISTRATION = "gymnasium.envs.registration"


def register(registration: Any) -> None:
    """Register every id with gymnasium's registration module (ids already there stay)."""
    for env_id, entry_point in ENTRY_POINTS.items():
        if env_id not in registration.registry:
            registration.register(env_id, entry_point=entry_point)


class _WhenGymnasiumLoads(importlib.abc.MetaPathFinder):
    """Finds gymnasium's registration module as usual, and registers the ids once it ran."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _REGISTRATION:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            register(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def register_when_gymnasium_loads() -> None:
    """Register now if gymnasium is loaded, else when it is (see the module docstring)."""
    if _REGISTRATION in sys.modules:
        register(sys.modules[_REGISTRATION])
    elif not any(isinstance(f, _WhenGymnasiumLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenGymnasiumLoads())
