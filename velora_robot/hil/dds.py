"""`velora-robot hil --dds`: the full deploy path over real DDS on this machine, compared with
the direct simulated path. A `dds-robot` process (our simulated robot speaking Unitree
SDK2's topics on the launch file's interface, loopback by default) is started; the launch
file runs against it through `UnitreeHardware`; then the same launch runs on the direct
`MujocoHardware` (at the policy rate: the simulated hardware steps whole physics steps per
command), and once more with the delays DDS adds (as whole physics steps). Reported: the
distance each walked while commanded (start to end, and along its path: `BasePath`),
their joint trajectories over simulated time, and the age of the state the controller read
(what DDS and the robot's publishing rate add).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from velora_robot.bridge.dds_robot import READY
from velora_robot.bridge.motion_switcher import BOOT_MODE
from velora_robot.config import read_file
from velora_robot.hal.base import HardwareError
from velora_robot.runtime.deploy import deploy


def start_robot(launch: str | Path, status: Path, *, duration_s: float | None = None,
                fault: str | None = None, fault_after_s: float = 1.0,
                motion_mode: str = BOOT_MODE, ready_s: float = 60.0) -> subprocess.Popen:
    """The simulated DDS robot of `launch`, in a child process, once it serves its topics
    (stop it with SIGTERM; it then writes `status`), booted in motion-control mode
    `motion_mode` ("" = debug mode); `fault` ("corrupt", "stall", "die") `fault_after_s`
    after its first command (`DdsRobot`)."""
    cmd = [sys.executable, "-m", "velora_robot.cli", "dds-robot", str(launch),
           "--status", str(status), "--motion-mode", motion_mode,
           "--parent-pid", str(os.getpid())]  # it stops if this process dies
    if duration_s is not None:
        cmd += ["--duration", str(duration_s)]
    if fault is not None:
        cmd += ["--fault", fault, "--fault-after", str(fault_after_s)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def watch() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.startswith(READY):
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    if not ready.wait(ready_s):
        proc.kill()
        proc.wait()
        err = proc.stderr.read() if proc.stderr else ""  # type: ignore[union-attr]
        raise HardwareError(f"the simulated DDS robot did not start in {ready_s:g} s: "
                            f"{err.strip()[-500:]}")
    return proc


def stop_robot(proc: subprocess.Popen, status: Path) -> dict[str, Any]:
    """Stop the robot process and return what it reported."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if not status.is_file():
        err = proc.stderr.read() if proc.stderr else ""
        raise HardwareError(f"the DDS robot process exited ({proc.returncode}) without a "
                           f"report: {err.strip()[-500:]}")
    return json.loads(status.read_text())


def run_over_dds(data: dict[str, Any], folder: Path, duration_s: float
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run launch settings `data` (absolute paths) against their simulated DDS robot, both
    written into `folder`; the run's summary and the robot's report."""
    launch, status = folder / "dds.yaml", folder / "robot.json"
    launch.write_text(json.dumps(data))
    proc = start_robot(launch, status)
    try:
        summary = _quiet_deploy(launch, duration_s)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return summary, stop_robot(proc, status)


def absolute(launch: str | Path) -> dict[str, Any]:
    """A launch file's settings with its policy (and robot spec file) as absolute paths,
    for a copy written elsewhere."""
    from velora_robot.robots.sources import is_spec_file
    from velora_robot.runtime.launch import load_launch

    settings = load_launch(launch)
    data = read_file(Path(launch))
    data["policy"] = str(Path(settings.policy).resolve())
    if is_spec_file(settings.robot):
        data["robot"] = str(Path(settings.robot).resolve())
    return data


# Randomization that changes nothing but the delays it is given (friction 1: the floor's,
# which MuJoCo's max rule makes every foot contact's).
_NOMINAL_FIXED = {"enabled": True, "friction": [1.0, 1.0], "mass_scale": [1.0, 1.0],
                  "payload_kg": [0.0, 0.0], "com_shift_m": [0.0, 0.0],
                  "motor_strength": [1.0, 1.0], "kp_scale": [1.0, 1.0],
                  "kd_scale": [1.0, 1.0], "obs_noise_scale": 0.0,
                  "push_velocity": [0.0, 0.0], "push_interval_s": 1e9}


def _quiet_deploy(launch: Path, duration_s: float) -> dict[str, Any]:
    """Run a launch file without its printed summary; the summary."""
    with open(os.devnull, "w") as quiet:
        return deploy(launch, duration_s=duration_s, status=False, out=quiet)


def _direct(data: dict[str, Any], path: Path, duration_s: float) -> dict[str, Any]:
    path.write_text(json.dumps(data))
    return _quiet_deploy(path, duration_s)


def _q_by_sim_time(telemetry: str, joints: int) -> tuple[np.ndarray, np.ndarray]:
    from velora_robot.runtime.telemetry import read

    _, rows = read(telemetry)
    rows = rows[np.isfinite(rows[:, 0])]
    _, first = np.unique(rows[:, 0], return_index=True)  # one row per state (500 Hz reads)
    rows = rows[np.sort(first)]
    return rows[:, 0], rows[:, 4:4 + joints]


def run(launch: str | Path, duration_s: float = 10.0) -> dict[str, Any]:
    """Run `launch` over DDS and directly; the comparison (see the module docstring)."""
    from velora_robot.robots.sources import get_spec

    data = absolute(launch)
    spec = get_spec(data["robot"])
    with tempfile.TemporaryDirectory() as tmp:
        dds_tlm, direct_tlm = str(Path(tmp) / "dds.tlm"), str(Path(tmp) / "direct.tlm")
        data["telemetry"] = {"path": dds_tlm, "plot": False}
        over_dds, robot = run_over_dds(data, Path(tmp), duration_s)
        data["hardware"] = {**data["hardware"], "backend": "mujoco"}
        data["loop"] = {**data.get("loop", {}), "command_hz": spec.control_hz}
        data["telemetry"] = {"path": direct_tlm, "plot": False}
        direct = _direct(data, Path(tmp) / "direct.yaml", duration_s)
        # The same, with the delays DDS adds as whole physics steps: a command lands at the
        # robot's next step (one), the state read is as old as measured (rounded up).
        dt = spec.physics_dt
        sensing = math.ceil(over_dds["link"]["state_age_ms"]["p50"] * 1e-3 / dt - 1e-9) * dt
        data["hardware"]["sim"] = {**data["hardware"].get("sim", {}), "randomization": {
            **_NOMINAL_FIXED, "latency_s": [dt, dt], "sensor_latency_s": [sensing, sensing]}}
        data["telemetry"] = {"path": None}
        delayed = _direct(data, Path(tmp) / "delayed.yaml", duration_s)
        t_dds, q_dds = _q_by_sim_time(dds_tlm, spec.n_joints)
        t_dir, q_dir = _q_by_sim_time(direct_tlm, spec.n_joints)
    t_dds, t_dir = t_dds - t_dds[0], t_dir - t_dir[0]
    diff = np.stack([np.interp(t_dir, t_dds, q_dds[:, j]) for j in range(spec.n_joints)],
                    axis=1) - q_dir
    span = t_dir <= min(t_dds[-1], t_dir[-1])

    def within(seconds: float, of: np.ndarray, stat: str) -> float:
        rows = span & (t_dir <= seconds)
        if not rows.any():
            return float("nan")
        part = np.abs(of[rows])
        return float(part.max() if stat == "max" else np.sqrt(np.mean(part**2)))

    moved = q_dir - q_dir[0]  # how far the direct path's joints went from where both began

    def agreement(seconds: float) -> float:
        """Cosine between the two paths' joint displacements from the start: 1 when the
        robot over DDS moves its joints the way the direct one does, about 0 when it ignores
        the commands. A late robot (a loaded machine) shifts the timing, not the direction."""
        rows = span & (t_dir <= seconds)
        a, b = (diff + moved)[rows].ravel(), moved[rows].ravel()
        norm = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float(a @ b) / norm if norm > 0 else float("nan")

    # Both while commanded: the direct run's from its first cycle to its last, the DDS
    # robot's from the first command to the last before its watchdog (not the slump after).
    distance_dds, path_dds = robot["commanded_distance_m"], robot["commanded_path_m"]
    distance_direct = direct.get("distance_m", float("nan"))
    path_direct = direct.get("path_m", float("nan"))
    return {
        "launch": str(launch), "duration_s": duration_s,
        "dds": {"final_mode": over_dds["final_mode"], "fault": over_dds["fault"],
                "distance_m": distance_dds, "path_m": path_dds, "robot": robot,
                "cycles": over_dds["cycles"], "lateness_us": over_dds["lateness_us"],
                "overruns": over_dds["overruns"], "link": over_dds.get("link", {})},
        "direct": {"final_mode": direct["final_mode"], "fault": direct["fault"],
                   "distance_m": distance_direct, "path_m": path_direct},
        "direct_delayed": {"latency_s": dt, "sensor_latency_s": sensing,
                           "final_mode": delayed["final_mode"],
                           "distance_m": delayed.get("distance_m", float("nan")),
                           "path_m": delayed.get("path_m", float("nan"))},
        "distance_ratio": distance_dds / distance_direct if distance_direct else float("nan"),
        "distance_ratio_delayed": distance_dds / delayed["distance_m"]
        if delayed.get("distance_m") else float("nan"),
        "path_ratio": path_dds / path_direct if path_direct else float("nan"),
        "path_ratio_delayed": path_dds / delayed["path_m"]
        if delayed.get("path_m") else float("nan"),
        "q_max_diff_rad": {f"{w:g}s": within(w, diff, "max") for w in (0.2, 1.0, 5.0)},
        # Root mean square over joints and states: the DDS path against the direct one, and
        # the direct one against its start (what a robot that ignored the commands scores).
        "q_rms_diff_rad": {f"{w:g}s": within(w, diff, "rms") for w in (0.2, 1.0, 5.0)},
        "q_rms_moved_rad": {f"{w:g}s": within(w, moved, "rms") for w in (0.2, 1.0, 5.0)},
        "q_motion_cosine": {f"{w:g}s": agreement(w) for w in (0.2, 1.0, 5.0)},
    }


def _walked(run: dict[str, Any]) -> str:
    return f"{run['distance_m']:.2f} m ({run['path_m']:.2f} m of path)"


def table(report: dict[str, Any]) -> str:
    d, r, dl = report["dds"], report["direct"], report["direct_delayed"]
    q = report["q_max_diff_rad"]
    lines = [f"hil --dds: {report['launch']}, {report['duration_s']:g} s (walked: start to "
             "end, and along the path)",
             f"  over DDS:  walked {_walked(d)}, final mode {d['final_mode']}, "
             f"robot got {d['robot']['commands']} commands ({d['robot']['crc_errors']} bad "
             "CRC)",
             f"  direct:    walked {_walked(r)}, final mode {r['final_mode']}",
             f"  direct with DDS's delays as physics steps (command {dl['latency_s'] * 1e3:g} "
             f"ms, state {dl['sensor_latency_s'] * 1e3:g} ms): walked {_walked(dl)}",
             f"  distance ratio DDS / direct: {report['distance_ratio']:.3f} (path "
             f"{report['path_ratio']:.3f}); DDS / direct with its delays: "
             f"{report['distance_ratio_delayed']:.3f} (path {report['path_ratio_delayed']:.3f})",
             f"  joint trajectories, worst difference: {q['0.2s']:.4f} rad in 0.2 s, "
             f"{q['1s']:.4f} in 1 s, {q['5s']:.4f} in 5 s"]
    rms, moved = report["q_rms_diff_rad"], report["q_rms_moved_rad"]
    lines.append(f"  root mean square over joints: {rms['1s']:.4f} rad in 1 s, against "
                 f"{moved['1s']:.4f} that the direct path's joints moved from their start "
                 f"(cosine of the two motions {report['q_motion_cosine']['1s']:.3f})")
    if d["robot"].get("late_steps"):
        lines.append(f"  the simulated robot fell behind real time in {d['robot']['late_steps']}"
                     f" physics steps (worst {d['robot']['max_lag_s'] * 1e3:.1f} ms), then "
                     "caught up: a loaded machine, not DDS")
    age = d["link"].get("state_age_ms")
    if age:
        lines.append(f"  age of the state read: median {age['p50']:.2f} ms, p99 "
                     f"{age['p99']:.2f} ms (the robot publishes every physics step)")
    lines.append(f"  loop over DDS: {d['cycles']} cycles, lateness p99 "
                 f"{d['lateness_us']['p99']:.0f} us, {d['overruns']} overruns")
    return "\n".join(lines)
