"""`velora-robot run launch/spot_sim.yaml`: check the policy's model card against the
robot, open the hardware and run the control loop with a live status line, then print a
summary (`deploy`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from velora_robot.config import check_writable
from velora_robot.errors import ConfigError
from velora_robot.hal.factory import open_hardware
from velora_robot.robots.interface import VELOCITY_COMMANDS, check_command, velocity_errors
from velora_robot.robots.sources import get_spec
from velora_robot.robots.spec import RobotSpec
from velora_robot.runtime.card import check_card, trust_warnings
from velora_robot.runtime.controller import Controller
from velora_robot.runtime.estop import EStop
from velora_robot.runtime.heading import HeadingHold
from velora_robot.runtime.launch import Launch, load_launch
from velora_robot.runtime.loop import ControlLoop, realtime_setup
from velora_robot.runtime.policy import load_policy
from velora_robot.runtime.safety import Safety, SafetyConfig
from velora_robot.runtime.telemetry import Telemetry
from velora_robot.simulation.path import BasePath


def _rates(launch: Launch, spec: RobotSpec, where: str) -> tuple[float, int]:
    """command_hz and how many command cycles per policy step."""
    policy_hz = launch.loop.policy_hz or spec.control_hz
    if policy_hz != spec.control_hz:
        raise ConfigError(f"{where}: field 'loop.policy_hz' is {policy_hz} but the policy was "
                          f"trained at {spec.control_hz} Hz (the robot's control_hz)")
    command_hz = launch.loop.command_hz or policy_hz
    ratio = command_hz / policy_hz
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise ConfigError(f"{where}: field 'loop.command_hz' ({command_hz}) must be a whole "
                          f"multiple of the policy rate ({policy_hz} Hz)")
    return command_hz, round(ratio)


class StatusLine:
    """One live line (rewritten in place on a terminal, a line every few seconds in a log):
    time, mode, fault, command, loop timing, and what the hardware adds (base speed in
    simulation)."""

    def __init__(self, loop: ControlLoop, launch: Launch, extra: str = "",
                 stream: Any = None) -> None:
        self.loop, self.launch, self.extra = loop, launch, extra
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = max(1, round((0.25 if self.tty else 5.0) / loop.period_s))
        self.count = 0
        self.window = max(1, round(1.0 / loop.period_s))

    def __call__(self, cycle: Any) -> None:
        self.count += 1
        if self.count % self.every == 0:
            self.show(cycle)

    def line(self, cycle: Any) -> str:
        stats, safety = self.loop.stats, self.loop.controller.safety
        late = np.asarray(stats.lateness_us[-self.window:])
        comp = np.asarray(stats.compute_us[-self.window:])
        mode = cycle.mode.value.upper()
        if safety is not None and safety.fault is not None:
            mode += f" ({safety.fault.value}: {safety.detail})" if safety.detail else \
                f" ({safety.fault.value})"
        parts = [f"t {self.count * self.loop.period_s:6.1f}s", mode]
        command = self.loop.controller.command
        if len(command):
            parts.append("cmd " + " ".join(f"{v:+.2f}" for v in command))
        hw_status = self.loop.controller.hardware.status()
        if "base_vx" in hw_status:
            parts.append(f"base vx {hw_status['base_vx']:+.2f} m/s")
        if "link_rtt_us" in hw_status:
            parts.append(f"link rtt {hw_status['link_rtt_us']:5.0f}us, "
                         f"{hw_status['link_timeouts']:.0f} timeouts, "
                         f"{hw_status['link_crc_errors']:.0f} CRC errors")
        parts.append(f"late p99 {np.percentile(late, 99):5.0f}us")
        parts.append(f"compute {np.percentile(comp, 50):5.0f}us")
        parts.append(f"overruns {stats.overruns}")
        if self.extra:
            parts.append(self.extra)
        return " | ".join(parts)

    def show(self, cycle: Any) -> None:
        text = self.line(cycle)
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class VelocityTracker:
    """Mean velocity-command error of a simulated legged robot, sampled every `every`
    cycles from the simulator's truth (`Hardware.status()`): |(vx, vy) command - base
    velocity| and |yaw-rate command - yaw rate|; and the length of the base's path
    (`BasePath`)."""

    def __init__(self, hw: Any, command: dict[str, float], every: int) -> None:
        self.hw, self.every, self.count = hw, every, 0
        self.cmd = np.array([command.get(k, 0.0) for k in VELOCITY_COMMANDS])  # in order
        self.lin: list[float] = []
        self.yaw: list[float] = []
        self.path = BasePath()
        self.sample_path(hw.status())  # from where the run starts

    def __call__(self, cycle: Any) -> None:
        self.count += 1
        if self.count % self.every:
            return
        s = self.hw.status()
        if "base_vx" in s:
            lin, yaw = velocity_errors(self.cmd, np.array([s["base_vx"], s["base_vy"]]),
                                       np.array(s["yaw_rate"]))
            self.lin.append(float(lin))
            self.yaw.append(float(yaw))
        self.sample_path(s)

    def sample_path(self, status: dict[str, float]) -> None:
        """Add the base's position in a `Hardware.status()` to its path."""
        if "sim_s" in status:
            self.path.add(status["sim_s"], status["base_x"], status["base_y"])

    def summary(self) -> dict[str, float]:
        if not self.lin:
            return {}
        return {"velocity_error_m_s": float(np.mean(self.lin)),
                "yaw_rate_error_rad_s": float(np.mean(self.yaw)),
                "path_m": self.path.length_m}


def deploy(path: str | Path, *, duration_s: float | None = None, status: bool | None = None,
           out: Any = None, policy: str | Path | None = None) -> dict[str, Any]:
    """Run a launch file to its duration, a quit key or a signal (`policy`: another
    policy file than the launch file's); returns the summary."""
    out = out or sys.stdout
    if duration_s is not None and not 0 < duration_s < float("inf"):
        raise ConfigError(f"duration {duration_s} s: a finite number of seconds above 0")
    launch = load_launch(path)
    if policy is not None:
        launch.policy = str(policy)
    where = str(path)
    spec = get_spec(launch.robot)
    command_hz, policy_every = _rates(launch, spec, where)
    telemetry_path = None
    if launch.telemetry.path is not None:
        telemetry_path = Path(launch.telemetry.path.format(name=launch.name))
        check_writable(telemetry_path, f"{where}: field 'telemetry.path'")
    if not Path(launch.policy).is_file():
        raise ConfigError(f"{where}: field 'policy': no policy file at {launch.policy} (export "
                          "one with `velora-robot export CHECKPOINT`)")
    policy = load_policy(launch.policy)
    interface = check_card(policy.card, spec, where=f"{launch.policy} (model card)")
    try:  # the commands are the policy's (its card's interface)
        check_command(launch.command, interface.commands, "field 'command'")
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    command = np.array([launch.command.get(name, 0.0) for name in interface.commands])
    if launch.heading_hold is not None and interface.commands != VELOCITY_COMMANDS:
        raise ConfigError(f"{where}: field 'heading_hold': the policy's commands are "
                          f"{list(interface.commands)}; holding a heading needs vx, vy and "
                          "yaw_rate")
    safety = Safety(spec, SafetyConfig(**launch.safety.model_dump()), dt_s=1.0 / command_hz)
    notes = realtime_setup(launch.loop.cpu) if launch.loop.sched_fifo else []
    hw, fallback = open_hardware(launch.hardware, spec, 1.0 / command_hz, where)
    if not hw.has_imu:
        imu_terms = [t.name for t in interface.observation if t.name in ("gyro", "gravity")]
        if imu_terms:
            hw.shutdown()
            raise ConfigError(f"{where}: field 'hardware.backend': {launch.hardware.backend} "
                              f"has no IMU, but the policy observes {', '.join(imu_terms)}")
        safety.fall_check = False
        if launch.heading_hold is not None:
            hw.shutdown()
            raise ConfigError(f"{where}: field 'heading_hold': {launch.hardware.backend} has "
                              "no IMU to measure the heading with; remove heading_hold")
        notes.append(f"fall check: OFF ({launch.hardware.backend} has no IMU; nothing "
                     "measures the base)")
    if fallback:
        bar = "!" * 78
        print(f"{bar}\n!!! {fallback}\n{bar}", file=sys.stderr)
    telemetry = None
    if telemetry_path is not None:
        truth = [k for k in ("base_vx", "base_vy", "yaw_rate") if k in hw.status()]
        telemetry = Telemetry(telemetry_path, spec, policy.card.io.obs_dim,
                              command=dict(zip(interface.commands, command, strict=True)),
                              truth=hw.status if truth else None, truth_keys=truth)
    estop = EStop(keys=launch.estop.keys, file=launch.estop.file,
                  signal_name=launch.estop.signal)
    hold = launch.heading_hold
    controller = Controller(hw, policy, interface, command, safety=safety,
                            policy_every=policy_every,
                            heading_hold=None if hold is None else
                            HeadingHold(hold.kp_per_s, hold.max_rad_s, 1.0 / command_hz))
    loop = ControlLoop(controller, command_hz, telemetry=telemetry, estop=estop)
    backend = "SIMULATED (fallback)" if fallback else launch.hardware.backend
    print(f"{launch.name}: {spec.name}, {Path(launch.policy).name} "
          f"({policy.card.network.neurons or '-'} neurons), hardware {backend}, "
          f"command {command_hz:g} Hz, policy {spec.control_hz:g} Hz", file=out)
    if hold is not None:
        notes.append(f"heading hold: yaw rate += {hold.kp_per_s:g}/s x heading error, at most "
                     f"{hold.max_rad_s:g} rad/s")
    for note in notes:
        print(f"  {note}", file=out)
    simulated = launch.hardware.sim.randomization if launch.hardware.backend == "mujoco" or \
        fallback else None
    given = dict(zip(interface.commands, command.tolist(), strict=True))
    warnings = trust_warnings(policy.card, given, simulated)
    for warning in warnings:
        print(f"  WARNING, outside what this policy was verified in: {warning}", file=out)
    show = launch.status if status is None else status
    line = StatusLine(loop, launch, extra="SIM FALLBACK" if fallback else "") if show else None
    tracker = VelocityTracker(hw, given, policy_every) \
        if "vx" in given and "base_vx" in hw.status() else None

    def on_cycle(cycle: Any) -> None:
        if line is not None:
            line(cycle)
        if tracker is not None:
            tracker(cycle)

    start_status = hw.status()
    started = time.monotonic()
    try:
        seconds = duration_s if duration_s is not None else launch.loop.duration_s
        stats = loop.run(seconds=seconds, on_cycle=on_cycle)
    finally:
        if line is not None:
            line.end()
    summary: dict[str, Any] = {
        "launch": launch.name, "robot": spec.name, "policy": launch.policy,
        "hardware": launch.hardware.backend, "fallback": fallback,
        "wall_s": time.monotonic() - started, "final_mode": safety.mode.value,
        "fault": None if safety.fault is None else safety.fault.value,
        "fault_detail": safety.detail, "torque_off": hw.torque_off,
        "fall_check": safety.fall_check, "trust_warnings": warnings, **stats.summary()}
    if tracker is not None:
        tracker.sample_path(hw.last_status)  # to where it ended, as the distance
        summary.update(tracker.summary())
    if controller.heading_hold is not None:
        summary["heading_error_rad"] = controller.heading_hold.error_rad
    if hasattr(hw, "link_report"):  # a networked backend's counters
        summary["link"] = hw.link_report()
    end_status = hw.last_status
    if "base_x" in start_status and "base_x" in end_status:
        summary["distance_m"] = float(np.hypot(end_status["base_x"] - start_status["base_x"],
                                               end_status["base_y"] - start_status["base_y"]))
    if telemetry is not None:
        summary["telemetry"] = str(telemetry.path)
        summary["telemetry_records"] = telemetry.records
        if launch.telemetry.plot and telemetry.records:
            from velora_robot.runtime import telemetry as telemetry_module

            summary["plot"] = str(telemetry_module.plot(telemetry.path))
    print(format_summary(summary), file=out)
    return summary


def format_summary(s: dict[str, Any]) -> str:
    """The end-of-run report."""
    late, comp = s["lateness_us"], s["compute_us"]
    lines = [f"{s['launch']}: {s['cycles']} cycles in {s['wall_s']:.1f} s; final mode "
             f"{s['final_mode']}" + (f" ({s['fault']}: {s['fault_detail']})" if s["fault"]
                                     else "")]
    if s["fallback"]:
        lines.append(f"  WARNING: {s['fallback']}")
    if (s.get("torque_off") or "").startswith("failed"):
        lines.append(f"  WARNING: switching the torque off {s['torque_off']}")
    if not s.get("fall_check", True):
        lines.append("  fall check was OFF (no IMU)")
    for warning in s.get("trust_warnings", []):
        lines.append(f"  WARNING, outside what the policy was verified in: {warning}")
    if "distance_m" in s:
        lines.append(f"  base moved {s['distance_m']:.2f} m"
                     + (f" (along a path of {s['path_m']:.2f} m)" if "path_m" in s else ""))
    if "heading_error_rad" in s:
        lines.append(f"  heading held: {s['heading_error_rad']:+.3f} rad from the commanded "
                     "heading at the end (IMU)")
    if "velocity_error_m_s" in s:
        lines.append(f"  velocity command error {s['velocity_error_m_s']:.3f} m/s, yaw rate "
                     f"error {s['yaw_rate_error_rad_s']:.3f} rad/s (simulator truth)")
    lines.append(f"  lateness us p50 {late['p50']:.1f} p99 {late['p99']:.1f} max "
                 f"{late['max']:.1f}; compute us p50 {comp['p50']:.1f} p99 {comp['p99']:.1f}; "
                 f"overruns {s['overruns']}, skipped periods {s['skipped_periods']}")
    if "telemetry" in s:
        lines.append(f"  telemetry {s['telemetry']} ({s['telemetry_records']} records)"
                     + (f", plot {s['plot']}" if "plot" in s else ""))
    return "\n".join(lines)
