"""`MujocoHardware`: the simulated robot behind the HAL — the same `SimRobot` the training
envs use, so the runtime loop and training see the same physics. Free-running (each write
advances one control period) or paced to the wall clock."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from velora_robot.hal.base import Hardware, HardwareError, HardwareState, JointCommand
from velora_robot.robots.spec import RobotSpec

if TYPE_CHECKING:  # MuJoCo loads only when a simulated robot is configured
    from velora_robot.simulation.physics import Physics
    from velora_robot.simulation.randomization import Randomization


class MujocoHardware(Hardware):
    """Each `write` sets the servo gains and targets and advances `period_s` of simulated
    time (default: one control period; a whole number of physics steps); `realtime=True`
    then waits until the wall clock catches up with simulated time."""

    def __init__(self, spec: RobotSpec, *, source: str = "default", variant: str = "fast",
                 physics: Physics | None = None,
                 realtime: bool = False, randomization: Randomization | None = None,
                 seed: int = 0, period_s: float | None = None) -> None:
        super().__init__(spec)
        period_s = spec.control_dt if period_s is None else period_s
        steps = period_s / spec.physics_dt
        if round(steps) < 1 or abs(steps - round(steps)) > 1e-6:
            raise HardwareError(f"MujocoHardware: period_s {period_s} must be a whole number "
                                f"of physics steps of {spec.physics_dt} s (physics_hz "
                                f"{spec.physics_hz})")
        self.nstep = round(steps)
        self.source, self.variant, self.realtime = source, variant, realtime
        self.physics = physics
        self.randomization, self.seed = randomization, seed
        self.sim = None
        self._start = 0.0

    def _on_configure(self) -> None:
        from velora_robot.simulation.robot import SimRobot

        self.sim = SimRobot(self.spec, source=self.source, variant=self.variant,
                            physics=self.physics,
                            randomization=self.randomization)
        self.sim.reset(np.random.default_rng(self.seed))

    def _on_activate(self) -> None:
        self._start = time.monotonic() - float(self.sim.data.time)

    def _on_shutdown(self) -> None:
        if self.sim is not None:
            self.sim.close()

    def status(self) -> dict[str, float]:
        """Base position (world), velocity (base frame), yaw rate and the simulated time
        from the simulator."""
        if self.sim is None:
            return {}
        if self.sim.index.base_qpos is None:  # a fixed-base robot
            return {}
        m = self.sim.measure()
        return {"base_x": float(m.base_pos[0]), "base_y": float(m.base_pos[1]),
                "base_vx": float(m.base_lin_vel[0]), "base_vy": float(m.base_lin_vel[1]),
                "yaw_rate": float(m.state.gyro[2]), "sim_s": float(self.sim.data.time)}

    def _read(self) -> HardwareState:
        m = self.sim.measure()
        return HardwareState(q=m.state.q, dq=m.state.dq, tau=m.tau, gyro=m.state.gyro,
                             gravity=m.state.gravity, time_s=float(self.sim.data.time))

    def _write(self, command: JointCommand) -> None:
        self.sim.set_gains(command.kp, command.kd)
        self.sim.step(command.q, self.nstep)
        if self.realtime:
            wait = self._start + float(self.sim.data.time) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
