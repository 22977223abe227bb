"""Build the hardware a launch file names, with the simulated robot as a fallback.

`open_hardware` creates the backend and configures it (opens the port, reads the first
state). When the configured device is absent (its port does not exist, or opening it
fails) and the launch file allows `fallback: sim`, the simulated robot takes its place and
the caller is told so, loudly; without the permission the run stops with the reason.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any, Literal

from pydantic import Field, field_validator

from velora_robot.config import Settings
from velora_robot.errors import ConfigError
from velora_robot.hal.base import Hardware, HardwareError
from velora_robot.robots.spec import RobotSpec
from velora_robot.simulation.physics import Physics

MAX_BAUD = 20_000_000  # above any UART or USB adapter we know of


class SimSection(Settings):
    """The simulated robot (backend `mujoco`, and the fallback). The control loop's clock
    paces it: each command cycle advances one command period of simulated time."""

    variant: Literal["fast", "full"] = "fast"
    physics: Physics = Physics()  # contact and solver settings, as the policy trained with
    randomization: dict = Field(default_factory=dict)
    seed: int = Field(default=0, ge=0)


BUILTIN = ("mujoco", "mock", "serial", "dynamixel", "unitree")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class HardwareSection(Settings):
    """Which hardware drives the robot: a built-in backend, or a plug-in named by import
    path (`mypkg.hw:MyHardware`, a `Hardware` subclass built as `cls(spec, **options)`)."""

    backend: str = "mujoco"
    port: str | None = None
    baud: int = Field(default=1_000_000, gt=0, le=MAX_BAUD)
    # unitree: the network interface the robot is on, its DDS domain, and whether to release
    # the robot's own motion control before commanding its motors (false: it is already in
    # debug mode and its firmware has no motion_switcher service)
    interface: str = "lo"
    domain_id: int = Field(default=0, ge=0, le=232)
    release_mode: bool = True
    # unitree: a state older than this is a lost link (damping); unitree_rl_gym's robot
    # publishes at 500 Hz, so the default allows 25 missed states
    link_timeout_s: float = Field(default=0.05, gt=0, le=1.0)
    options: dict[str, Any] = Field(default_factory=dict)  # a plug-in's keyword arguments
    fallback: Literal["none", "sim"] = "none"
    sim: SimSection = SimSection()

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in BUILTIN and not _IMPORT_PATH.match(name):
            raise ValueError(f"unknown backend {name!r}: one of {', '.join(BUILTIN)}, or a "
                             "plug-in's import path 'package.module:ClassName'")
        return name


def simulated(spec: RobotSpec, sim: SimSection, period_s: float, where: str = "hardware"
              ) -> Hardware:
    """The simulated robot (MuJoCo is imported only now); `where` starts its errors."""
    from velora_robot.hal.mujoco import MujocoHardware

    randomization = None
    if sim.randomization:
        from velora_robot.config import parse
        from velora_robot.simulation.randomization import Randomization

        randomization = parse(Randomization, sim.randomization,
                              f"{where}: hardware.sim.randomization")
    return MujocoHardware(spec, variant=sim.variant, physics=sim.physics,
                          randomization=randomization,
                          seed=sim.seed, period_s=period_s)


def plugin(section: HardwareSection, spec: RobotSpec) -> Hardware:
    """The plug-in backend `section.backend` names ('module:Class'), built with the
    section's `options`."""
    module_name, _, class_name = section.backend.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise ConfigError(f"hardware: backend {section.backend!r}: cannot import "
                          f"{module_name!r} ({exc})") from None
    except AttributeError:
        raise ConfigError(f"hardware: backend {section.backend!r}: module {module_name!r} "
                          f"has no {class_name!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, Hardware)):
        raise ConfigError(f"hardware: backend {section.backend!r} is not a subclass of "
                          "velora_robot.hal.Hardware")
    try:
        return cls(spec, **section.options)
    except TypeError as exc:
        raise ConfigError(f"hardware: backend {section.backend!r}: field 'options' does not "
                          f"fit its constructor: {exc}") from None


def _device(section: HardwareSection, spec: RobotSpec) -> Hardware:
    if section.backend == "unitree":
        from velora_robot.hal.unitree import UnitreeHardware

        return UnitreeHardware(spec, interface=section.interface,
                               domain_id=section.domain_id, release_mode=section.release_mode,
                               timeout_s=section.link_timeout_s)
    if ":" in section.backend:
        return plugin(section, spec)
    if section.port is None:
        raise ConfigError(f"hardware: backend {section.backend!r} needs field 'port' (a "
                          "device such as /dev/ttyUSB0, or a pyserial URL)")
    if section.port.startswith("/") and not os.path.exists(section.port):
        raise HardwareError(f"device {section.port} is not present")
    if section.backend == "serial":
        from velora_robot.hal.serial_bridge import SerialBridgeHardware

        return SerialBridgeHardware(spec, section.port, baud=section.baud)
    from velora_robot.hal.dynamixel import DynamixelHardware

    return DynamixelHardware(spec, section.port, baud=section.baud)


def open_hardware(section: HardwareSection, spec: RobotSpec, period_s: float,
                  where: str = "launch file") -> tuple[Hardware, str | None]:
    """The configured hardware, configured (inactive, reading), and a fallback warning
    (None when the configured backend is the one running); `where` (the launch file)
    starts setting errors."""
    if section.backend == "mujoco":
        hw = simulated(spec, section.sim, period_s, where)
    elif section.backend == "mock":
        from velora_robot.hal.mock import MockHardware

        hw = MockHardware(spec, period_s=period_s)
    else:
        try:
            hw = _device(section, spec)
            hw.configure()
            return hw, None
        except HardwareError as exc:
            device = {"unitree": f"interface {section.interface}"}.get(
                section.backend, section.port or "its device")
            if section.fallback != "sim":
                raise HardwareError(f"hardware: {section.backend} on {device}: {exc} "
                                    "(set 'fallback: sim' to run the simulated robot "
                                    "instead)") from None
            warning = (f"{section.backend} device {device} unavailable ({exc}): "
                       "RUNNING THE SIMULATED ROBOT INSTEAD (fallback: sim)")
            hw = simulated(spec, section.sim, period_s, where)
            hw.configure()
            return hw, warning
    hw.configure()
    return hw, None
