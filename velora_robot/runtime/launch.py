"""Deploy launch files, what they may say: the robot, the exported policy, the hardware
(with an optional simulated fallback), the rates, the velocity command and whether to hold
its heading, safety thresholds, the e-stop inputs and the telemetry file. `load_launch`
validates one (unknown fields are refused, naming the file and field); `runtime/deploy.py`
runs it. Relative policy paths are taken from the launch file's folder; output paths from
the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator

from velora_robot.config import Settings, is_recipe, parse, read_file
from velora_robot.errors import ConfigError
from velora_robot.hal.factory import HardwareSection
from velora_robot.robots.sources import get_spec, is_spec_file
from velora_robot.runtime.estop import ESTOP_SIGNALS

MAX_RATE_HZ = 10_000.0  # beyond any servo bus or motor board we drive


class _Section(Settings):
    """A launch file section."""


class LoopSection(_Section):
    """Rates (default: the robot's control rate for both) and real-time settings."""

    command_hz: float | None = Field(default=None, gt=0, le=MAX_RATE_HZ)
    policy_hz: float | None = Field(default=None, gt=0, le=MAX_RATE_HZ)
    duration_s: float | None = Field(default=None, gt=0)
    sched_fifo: bool = False
    cpu: int | None = Field(default=None, ge=0, le=4095)


class SafetySection(_Section):
    """See `SafetyConfig`."""

    ramp_s: float = Field(default=2.0, ge=0, le=60)
    min_upright: float = Field(default=0.5, ge=-1, le=1)
    max_missed_deadlines: int = Field(default=5, ge=1, le=1000)
    damping_kd_scale: float = Field(default=1.0, gt=0, le=10)


class EStopSection(_Section):
    """E-stop inputs (see `EStop`)."""

    keys: bool = True
    file: str | None = "/tmp/velora.estop"
    signal: str | None = "SIGUSR1"

    @field_validator("signal")
    @classmethod
    def _catchable(cls, name: str | None) -> str | None:
        if name is not None and name not in ESTOP_SIGNALS:
            raise ValueError(f"{name!r} cannot be an e-stop signal; use one of "
                             f"{', '.join(ESTOP_SIGNALS)} (SIGKILL and SIGSTOP cannot be "
                             "caught; SIGINT and SIGTERM already stop the loop cleanly)")
        return name


class TelemetrySection(_Section):
    """Where every cycle is recorded (None: not recorded), and whether to plot it."""

    path: str | None = "out/run/{name}.tlm"
    plot: bool = True

    @field_validator("path")
    @classmethod
    def _template(cls, path: str | None) -> str | None:
        if path is not None:
            try:
                path.format(name="x")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{path!r}: only {{name}} (the launch name) may be filled "
                                 f"in ({type(exc).__name__}: {exc}); write other braces "
                                 "as {{ and }}") from None
        return path


class HeadingHoldSection(_Section):
    """Keep the heading the yaw-rate command asks for (see `HeadingHold`): the yaw-rate
    command the policy sees gains kp_per_s x the heading error, at most max_rad_s."""

    kp_per_s: float = Field(default=1.0, gt=0, le=20)
    max_rad_s: float = Field(default=0.5, gt=0, le=5)


class Launch(_Section):
    """A deploy launch file."""

    name: str
    robot: str  # a built-in robot's name, or a robot spec file (robot.yaml)
    policy: str
    command: dict[str, float] = Field(default_factory=dict)
    heading_hold: HeadingHoldSection | None = None  # off unless given
    hardware: HardwareSection = HardwareSection()
    loop: LoopSection = LoopSection()
    safety: SafetySection = SafetySection()
    estop: EStopSection = EStopSection()
    telemetry: TelemetrySection = TelemetrySection()
    status: bool = True

    @field_validator("robot")
    @classmethod
    def _known_robot(cls, name: str) -> str:
        if not is_spec_file(name):  # a file is read relative to the launch file, below
            get_spec(name)
        return name


def load_launch(path: str | Path) -> Launch:
    """A launch file, validated; a training recipe given by mistake is named as such."""
    path = Path(path)
    data = read_file(path)
    if is_recipe(data):
        raise ConfigError(f"{path}: this is a training recipe; train it with "
                          f"`velora-robot train {path}`")
    launch = parse(Launch, data, str(path))
    launch.policy = os.path.normpath(path.parent / launch.policy)  # an absolute one stays
    if is_spec_file(launch.robot):
        launch.robot = os.path.normpath(path.parent / launch.robot)
        try:
            get_spec(launch.robot)
        except ConfigError as exc:
            raise ConfigError(f"{path}: field 'robot': {exc}") from None
    return launch
