"""Find a robot's spec and its MJCF file. Each built-in robot is a folder beside this file
holding its spec as data (`<name>/robot.yaml`); its MJCF comes from an installed package
(located without importing it), a MuJoCo Menagerie checkout named by $MENAGERIE_ROOT, or our
own scenes. Adding a robot is adding a folder."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from velora_robot.config import load_file
from velora_robot.errors import ConfigError
from velora_robot.robots.spec import RobotSpec


def _folder_robots() -> dict[str, RobotSpec]:
    """The robots in the folders beside this file, by name (read once, at import)."""
    specs = [load_file(RobotSpec, path)
             for path in sorted(Path(__file__).parent.glob("*/robot.yaml"))]
    return {spec.name: spec for spec in specs}


ROBOTS: dict[str, RobotSpec] = _folder_robots()


def is_spec_file(name: str) -> bool:
    """Whether `name` names a robot spec file rather than a built-in robot."""
    return name.endswith((".yaml", ".yml", ".json"))


def get_spec(name: str) -> RobotSpec:
    """The built-in spec called `name`, or the spec in file `name` (robot.yaml)."""
    if is_spec_file(name):
        if not Path(name).is_file():
            raise ConfigError(f"no robot spec file at {name}")
        return load_file(RobotSpec, Path(name))
    try:
        return ROBOTS[name]
    except KeyError:
        raise ConfigError(f"unknown robot {name!r}; known robots: {', '.join(ROBOTS)}") from None


def package_dir(module: str) -> Path:
    """Folder of an installed package, found without running its code."""
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    if found is None or not found.submodule_search_locations:
        raise ConfigError(f"package {module!r} is not installed; it ships a robot model "
                          "(install velora-robot with the 'train' or 'deploy' extra)")
    return Path(next(iter(found.submodule_search_locations)))


def menagerie_root() -> Path:
    """The Menagerie checkout named by $MENAGERIE_ROOT."""
    root = os.environ.get("MENAGERIE_ROOT")
    if not root:
        raise ConfigError("MENAGERIE_ROOT is not set: point it at a mujoco_menagerie checkout")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(f"MENAGERIE_ROOT={root} is not a folder")
    return path


def mjcf_path(spec: RobotSpec, source: str = "default") -> Path:
    """The MJCF file of `spec` from the named source ('default' or e.g. 'menagerie')."""
    if source not in spec.sources:
        raise ConfigError(f"robot {spec.name!r} has no model source {source!r}; sources: "
                          f"{', '.join(spec.sources)}")
    src = spec.sources[source]
    if src.menagerie:
        path = menagerie_root() / src.path
        where = "MENAGERIE_ROOT"
    else:
        module, _, relative = src.path.partition(":")
        path = package_dir(module) / relative
        where = f"package {module!r}"
    if not path.is_file():
        raise ConfigError(f"{where}: model file {path} not found")
    return path
