"""`velora-robot hil`: a scripted hardware-in-the-loop check of a bridge board (or of the
firmware emulator on a pseudo-terminal) with a pass/fail report.

Steps: ping and info (protocol, firmware version, joint count), configure (the robot
spec's limits and a watchdog), read the state, a small motion within limits (each joint
±0.05 rad around where it stands, 2 s), exchange latency beside the wire-time bound, and a
watchdog trip (the host goes quiet; the board must report damping on its own).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from velora_robot.bridge import protocol as P
from velora_robot.hal.base import HardwareError, JointCommand
from velora_robot.hal.serial_bridge import SerialBridgeHardware
from velora_robot.robots.sources import get_spec

MOTION_AMPLITUDE = 0.05


@dataclass
class Report:
    port: str
    robot: str
    baud: int
    steps: list[dict[str, Any]] = field(default_factory=list)

    def step(self, name: str, passed: bool, **details: Any) -> bool:
        self.steps.append({"step": name, "passed": bool(passed), **details})
        return passed

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s["passed"] for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "robot": self.robot, "baud": self.baud,
                "passed": self.passed, "steps": self.steps}


def run(port: str, *, robot: str = "spot", baud: int = 1_000_000, exchanges: int = 500,
        motion_s: float = 2.0) -> Report:
    """The scripted check; every step is recorded, the first failure ends the run."""
    spec = get_spec(robot)
    report = Report(port, robot, baud)
    hw = SerialBridgeHardware(spec, port, baud=baud)
    try:
        _steps(hw, spec, report, exchanges, motion_s)
    except HardwareError as exc:
        report.step("error", False, detail=str(exc))
    finally:
        try:
            if hw.lifecycle.value == "active":
                hw.deactivate()
        except HardwareError:
            pass
        hw.shutdown()
    report.steps.append({"step": "link counters", "passed": True,
                         **{k: v for k, v in hw.link_status().items()
                            if not k.startswith(("rtt", "wire"))}})
    return report


def _steps(hw: SerialBridgeHardware, spec: Any, report: Report, exchanges: int,
           motion_s: float) -> None:
    n = spec.n_joints
    hw.configure()  # PING -> INFO, CONFIGURE -> ACK
    info = hw.info
    if not report.step("ping and info", info.protocol == P.VERSION and info.max_joints >= n,
                       firmware=".".join(map(str, info.firmware)), board=info.board,
                       max_joints=info.max_joints, protocol=info.protocol):
        return
    report.step("configure", True, joints=n, watchdog_ms=hw.watchdog_ms)
    state = hw.read()
    finite = all(np.isfinite(getattr(state, k)).all() for k in ("q", "dq", "tau", "gyro"))
    if not report.step("read state", finite and len(state.q) == n,
                       q=np.round(state.q, 4).tolist()):
        return

    hw.activate()
    lo = np.array([j.pos_limit[0] for j in spec.joints])
    hi = np.array([j.pos_limit[1] for j in spec.joints])
    center = np.clip(state.q, lo + MOTION_AMPLITUDE, hi - MOTION_AMPLITUDE)
    dt = spec.control_dt
    targets, measured = [], []
    hold = JointCommand.hold(spec, state.q)
    steps = max(1, round(motion_s / dt))
    ramp = max(1, round(0.5 / dt))
    for k in range(steps):
        start = time.monotonic()
        alpha = min(1.0, k / ramp)  # first move to the centre of the motion, gently
        wave = MOTION_AMPLITUDE * np.sin(2 * np.pi * 1.0 * k * dt) * alpha
        target = state.q + alpha * (center - state.q) + wave
        hw.write(JointCommand(q=target, dq=hold.dq, tau_ff=hold.tau_ff, kp=hold.kp,
                              kd=hold.kd))
        measured.append(hw.read().q)
        targets.append(target)
        time.sleep(max(0.0, dt - (time.monotonic() - start)))
    t, m = np.array(targets[ramp:]), np.array(measured[ramp:])
    moved = np.ptp(m, axis=0)
    within = bool(np.all(m >= lo - 0.02) and np.all(m <= hi + 0.02))
    report.step("small motion within limits", within and bool(np.all(moved > 0.2 *
                MOTION_AMPLITUDE)), amplitude_rad=MOTION_AMPLITUDE,
                moved_min_rad=float(moved.min()),
                tracking_rms_rad=float(np.sqrt(np.mean((t - m) ** 2))))

    hw.rtt_us.clear()
    command = JointCommand.hold(spec, measured[-1])
    for _ in range(exchanges):
        hw.read()
        hw.write(command)
    rtt = np.array(hw.rtt_us)
    wire_us = hw.wire_s * 1e6
    report.step("latency", True, exchanges=len(rtt), wire_bound_us=wire_us,
                p50_us=float(np.percentile(rtt, 50)), p99_us=float(np.percentile(rtt, 99)),
                max_us=float(rtt.max()), p99_over_bound=float(np.percentile(rtt, 99) / wire_us))

    quiet_s = 2.5 * hw.watchdog_ms / 1000
    time.sleep(quiet_s)  # the host goes quiet: the board must damp on its own
    try:
        hw.request_state()
        tripped, detail = False, "no damping reported"
    except HardwareError as exc:
        tripped, detail = "watchdog" in str(exc), str(exc)
    report.step("watchdog trip", tripped, quiet_s=quiet_s, detail=detail)


def write(report: Report, path: str | Path) -> Path:
    """The report as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2))
    return path


def _field(key: str, value: Any) -> str:
    """One recorded value as the table shows it (a failure's text as itself)."""
    if key == "detail":
        return str(value)
    return f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"


def table(report: Report) -> str:
    lines = [f"HIL check of {report.port} ({report.robot}, {report.baud} baud): "
             f"{'PASS' if report.passed else 'FAIL'}"]
    for s in report.steps:
        details = ", ".join(_field(k, v) for k, v in s.items() if k not in ("step", "passed"))
        lines.append(f"  [{'ok' if s['passed'] else 'FAIL'}] {s['step']}: {details}")
    return "\n".join(lines)
