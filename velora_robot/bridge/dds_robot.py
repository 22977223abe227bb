"""A simulated Unitree robot that speaks Unitree SDK2's low-level DDS topics, as Unitree's own
unitree_mujoco does: our MuJoCo robot (`SimRobot`, the training physics) in its own process,
paced to the wall clock at the physics rate. Every physics step it applies the newest
`rt/lowcmd` whose CRC checks (per motor: target, kp, kd; a disabled motor gives no torque)
and publishes `rt/lowstate` (motor states in motor index order, the IMU's quaternion and
gyro, a millisecond tick), sealed with its CRC.

Like a real Unitree robot it boots with its own motion control selected (`motion_mode`,
served by its motion_switcher service): until a controller releases it, low-level commands
are ignored (counted). Until the first command arrives the robot is held still at its home
pose (as on a gantry:
the simulation waits, so the controller starts from the pose a training episode starts
from); when commands stop for `watchdog_s` its motors damp (kp 0, the spec's kd), as a
motor board's own watchdog. `velora-robot dds-robot` runs it; `hil --dds` starts it as a
child process.
Fault injection for tests (`fault`, `fault_after_s` counted from the first command, so a
loaded machine's slow start does not move it into the controller's configuration):
"corrupt" seals every later state with a wrong CRC, "stall" stops stepping and publishing
(the process and its DDS threads live on), "die" kills the process (SIGKILL).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from velora_robot.bridge import unitree as U
from velora_robot.bridge.motion_switcher import BOOT_MODE, MotionSwitcherService
from velora_robot.errors import ConfigError
from velora_robot.robots.spec import RobotSpec
from velora_robot.simulation.path import BasePath
from velora_robot.simulation.physics import Physics

READY = "serving simulated"  # the line a parent process waits for
FAULTS = (None, "corrupt", "stall", "die")  # what a test may inject (module docstring)


class DdsRobot:
    """`spec`'s robot on DDS domain `domain_id` over `interface` (see the module docstring)."""

    def __init__(self, spec: RobotSpec, *, interface: str = "lo", domain_id: int = 0,
                 variant: str = "fast", physics: Physics | None = None,
                 watchdog_s: float = 0.1, fault: str | None = None,
                 fault_after_s: float = 1.0,
                 seed: int = 0, motion_mode: str = BOOT_MODE) -> None:
        from velora_robot.simulation.robot import SimRobot

        self.joint_motor, self.held_motor, which = spec.unitree_motors()
        self.spec, self.interface, self.domain_id = spec, interface, domain_id
        if fault not in FAULTS:
            raise ConfigError(f"fault {fault!r}: one of {', '.join(map(str, FAULTS))}")
        self.watchdog_s, self.fault, self.fault_after_s = watchdog_s, fault, fault_after_s
        self._first_command: float | None = None
        self.sim = SimRobot(spec, variant=variant, physics=physics)  # type: ignore[arg-type]
        self.sim.reset(np.random.default_rng(seed))
        self.held_qpos = self.sim.index.held_qpos[which]
        self.held_dof = self.sim.index.held_dof[which]
        self.kp = np.array([j.kp for j in spec.joints])
        self.kd = np.array([j.kd for j in spec.joints])
        self._latest: tuple[float, tuple] | None = None  # (arrival, the command's values)
        self.commands = self.crc_errors = self.ignored = self.steps = 0
        # Steps begun more than a physics step behind real time (a loaded machine), and the
        # worst lag: what parts the simulated robot from the direct path, not DDS.
        self.late_steps, self.max_lag_s = 0, 0.0
        # Where the base went while commands came (not the slump once they stop): its path
        # and its first and latest positions then, as the direct path measures a run.
        self.path = BasePath()
        self.walked: list[tuple[float, float]] = []
        self.motion = MotionSwitcherService(motion_mode)
        self._stop = False
        # The messages as flat values: where each command field is read from and each
        # measured value goes (joint motors, then the held ones for the state's q and dq).
        self.msgs = U.family(spec.unitree.message)  # type: ignore[union-attr]
        cmd, state = self.msgs.cmd, self.msgs.state
        self._cmd_at = {k: cmd.motors(k, self.joint_motor) for k in ("mode", "q", "kp", "kd")}
        motors = (*self.joint_motor, *self.held_motor)
        self._state_at = {"tick": [state.index["tick"]],
                          "quaternion": state.array("imu_state.quaternion"),
                          "gyroscope": state.array("imu_state.gyroscope"),
                          "q": state.motors("q", motors), "dq": state.motors("dq", motors),
                          "tau_est": state.motors("tau_est", self.joint_motor)}

    def _on_cmd(self, sample: bytes) -> None:
        values = self.msgs.cmd.open(sample)
        if values is None:
            self.crc_errors += 1
            return
        if self.motion.mode:  # its own motion control owns the motors
            self.ignored += 1
            return
        self.commands += 1
        self._latest = (time.monotonic(), values)
        if self._first_command is None:
            self._first_command = self._latest[0]

    def _servo(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """This step's targets and gains: the newest command's, damping once commands
        stop; and whether commands still come."""
        latest = self._latest
        assert latest is not None
        if now - latest[0] > self.watchdog_s:
            return self.sim.io.q0, 0 * self.kp, self.kd, False
        values = latest[1]
        mode, q, kp, kd = (np.array([values[i] for i in self._cmd_at[k]], float)
                           for k in ("mode", "q", "kp", "kd"))
        on = mode == 1
        return q, kp * on, kd * on, True

    def _track(self) -> None:
        """Note where the base is (a commanded step)."""
        b = self.sim.index.base_qpos
        if b is None:
            return
        x, y = (float(v) for v in self.sim.data.qpos[b:b + 2])
        self.path.add(float(self.sim.data.time), x, y)
        if not self.walked:
            self.walked = [(x, y), (x, y)]
        self.walked[1] = (x, y)

    def _state(self, values: list[Any], tick_ms: int, corrupt: bool) -> bytes:
        """This step's `rt/lowstate` sample, from the blank message's `values`."""
        d = self.sim.data
        m = self.sim.measure()
        b = self.sim.index.base_qpos
        measured = {"tick": [tick_ms],
                    "quaternion": d.qpos[b + 3:b + 7] if b is not None else [1, 0, 0, 0],
                    "gyroscope": m.state.gyro,
                    "q": np.concatenate([m.state.q, d.qpos[self.held_qpos]]),
                    "dq": np.concatenate([m.state.dq, d.qvel[self.held_dof]]),
                    "tau_est": m.tau}
        for key, at in self._state_at.items():
            self.msgs.state.fill(values, at, measured[key])
        return self.msgs.state.seal(values, corrupt)

    def run(self, duration_s: float | None = None, status: Path | None = None,
            parent_pid: int | None = None) -> None:
        """Serve until `duration_s` passes, SIGTERM/SIGINT, or (given `parent_pid`) the
        process that started it is gone; then write the base's travel and the counters to
        `status` (JSON) when given. A robot whose runner crashed must not go on publishing
        on the domain, where the next controller would take it for its own."""
        sdk = U.sdk()
        U.open_domain(self.domain_id, self.interface)
        pub = sdk.Publisher(U.LOWSTATE, self.msgs.state.Sample)
        pub.Init()
        sub = sdk.Subscriber(U.LOWCMD, self.msgs.cmd.Sample)
        sub.Init(self._on_cmd, U.QUEUE)
        self.motion.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "_stop", True))
        print(f"{READY} {self.spec.name} on DDS domain {self.domain_id}, interface "
              f"{self.interface} (Ctrl-C stops)", flush=True)
        dt = self.spec.physics_dt
        values = self.msgs.state.values()
        start = next_check = time.monotonic()
        try:
            while not self._stop:
                now = time.monotonic()
                if duration_s is not None and now - start > duration_s:
                    break
                if parent_pid is not None and now >= next_check:  # twice a second
                    if os.getppid() != parent_pid:  # orphaned: its runner is gone
                        break
                    next_check = now + 0.5
                faulty = self._first_command is not None and self.fault is not None and \
                    now - self._first_command > self.fault_after_s
                if faulty and self.fault == "die":
                    os.kill(os.getpid(), signal.SIGKILL)
                if faulty and self.fault == "stall":
                    time.sleep(0.01)  # silent until stopped
                    continue
                if self._latest is not None:  # held still until the first command
                    q, kp, kd, commanded = self._servo(now)
                    self.sim.set_gains(kp, kd)
                    self.sim.step(q, 1)
                    if commanded:
                        self._track()
                self.steps += 1
                pub.Write(self._state(values, round(self.sim.data.time * 1e3),
                                      faulty))  # "corrupt" only
                wait = start + self.steps * dt - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -dt:  # behind real time: the next steps run back to back
                    self.late_steps += 1
                    self.max_lag_s = max(self.max_lag_s, -wait)
        finally:
            sub.Close()
            pub.Close()
            if status is not None:
                status.write_text(json.dumps(self.report(time.monotonic() - start)))

    def report(self, wall_s: float) -> dict[str, float]:
        """Where the base went and what the robot received."""
        m = self.sim.measure()
        (x0, y0), (x1, y1) = self.walked or [(math.nan, math.nan)] * 2
        return {"base_x": float(m.base_pos[0]), "base_y": float(m.base_pos[1]),
                "commanded_distance_m": math.hypot(x1 - x0, y1 - y0),
                "commanded_path_m": self.path.length_m,
                "sim_s": float(self.sim.data.time), "wall_s": wall_s, "steps": self.steps,
                "commands": self.commands, "crc_errors": self.crc_errors,
                "ignored_commands": self.ignored, "mode_releases": self.motion.releases,
                "late_steps": self.late_steps, "max_lag_s": self.max_lag_s}
