"""`Safety`: decides every cycle what the motors are told, whatever the policy says.

On start it ramps from the measured pose to the default pose (never a jump to a stale
target), unless the ramp is 0 s. Then the policy's targets pass through the joint limits of
the robot spec (`robots.limits.JointLimits`, which the training env applies too): position,
velocity (each new target moves at most vel_limit * dt from the previous one) and torque.
Any fault — NaN or inf in a reading or an action, a fall, too many missed deadlines, an
e-stop, a signal, a hardware error — latches damping mode: kp = 0, kd > 0, no target. Only a
new `start()` leaves it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from velora_robot.hal.base import HardwareState, JointCommand
from velora_robot.robots.limits import JointLimits
from velora_robot.robots.spec import RobotSpec


class Mode(enum.Enum):
    """What the motors are doing."""

    RAMP = "ramp"
    POLICY = "policy"
    DAMPING = "damping"


class Fault(enum.Enum):
    """Why the robot went to damping."""

    BAD_READING = "NaN or inf in a reading"
    BAD_ACTION = "NaN or inf in an action"
    FALL = "fell (base tilted past the limit)"
    MISSED_DEADLINES = "missed deadlines in a row"
    ESTOP = "e-stop"
    SIGNAL = "signal"
    HARDWARE = "hardware error"


@dataclass
class SafetyConfig:
    """Thresholds; `min_upright` is the smallest allowed -gravity_z of the base frame."""

    ramp_s: float = 2.0
    min_upright: float = 0.5
    max_missed_deadlines: int = 5
    damping_kd_scale: float = 1.0


class Safety:
    """The mode machine and the limits, for one robot spec."""

    def __init__(self, spec: RobotSpec, config: SafetyConfig | None = None,
                 dt_s: float | None = None) -> None:
        self.spec, self.config = spec, config or SafetyConfig()
        self.dt_s = dt_s or spec.control_dt
        self.q0 = np.array([j.default_pos for j in spec.joints])
        self.limits = JointLimits(spec, self.dt_s)  # the same limits the training env applies
        self.kp, self.kd = self.limits.kp, self.limits.kd
        self.mode = Mode.DAMPING
        self.fault: Fault | None = None
        self.detail = ""
        self._ramp_from = self.q0.copy()
        self._ramp_step = 0
        self._last_target: np.ndarray | None = None
        self._missed = 0
        # Off on hardware without an IMU (nothing measures the base): readings are then
        # checked without gyro and gravity, and no fall can be detected.
        self.fall_check = True

    # ------------------------------------------------------------ events
    def start(self, state: HardwareState) -> None:
        """Begin a ramp from the measured pose (clears a latched fault); with `ramp_s` 0 the
        policy takes over at once, its targets limited from the measured pose (as in the
        training env's first step)."""
        ramp = self.config.ramp_s > 0
        self.mode, self.fault, self.detail = Mode.RAMP if ramp else Mode.POLICY, None, ""
        self._ramp_from = self.limits.start(state.q)
        self._ramp_step = 0
        self._last_target = self._ramp_from.copy()
        self._missed = 0

    def trip(self, fault: Fault, detail: str = "") -> None:
        """Go to damping now and stay there."""
        if self.mode is not Mode.DAMPING:
            self.mode, self.fault, self.detail = Mode.DAMPING, fault, detail

    def deadline(self, missed: bool) -> None:
        """Count consecutive missed deadlines; too many trip damping."""
        self._missed = self._missed + 1 if missed else 0
        if self._missed >= self.config.max_missed_deadlines:
            self.trip(Fault.MISSED_DEADLINES, f"{self._missed} in a row")

    def check(self, state: HardwareState) -> None:
        """Trip on a bad reading or a fall (the IMU's part only with `fall_check`)."""
        fields = ("q", "dq", "gyro", "gravity") if self.fall_check else ("q", "dq")
        for name in fields:
            if not np.isfinite(getattr(state, name)).all():
                self.trip(Fault.BAD_READING, f"field {name!r}")
                return
        if self.fall_check and -state.gravity[2] < self.config.min_upright:
            self.trip(Fault.FALL, f"upright {-state.gravity[2]:.2f} < "
                      f"{self.config.min_upright}")

    # ---------------------------------------------------------- commands
    def command(self, state: HardwareState, policy_targets: np.ndarray | None = None
                ) -> JointCommand:
        """The command for this cycle, given the measured state and (in policy mode) the
        policy's targets."""
        n = self.spec.n_joints
        zeros = np.zeros(n)
        if self.mode is Mode.DAMPING:
            return JointCommand(q=state.q.copy(), dq=zeros, tau_ff=zeros, kp=zeros.copy(),
                                kd=self.kd * self.config.damping_kd_scale)
        if self.mode is Mode.RAMP:
            self._ramp_step += 1  # counted, not summed: float time would drift past the end
            alpha = min(1.0, self._ramp_step / max(1, round(self.config.ramp_s / self.dt_s)))
            smooth = alpha * alpha * (3.0 - 2.0 * alpha)  # zero velocity at both ends
            target = self._ramp_from + smooth * (self.q0 - self._ramp_from)
            if alpha >= 1.0:
                self.mode = Mode.POLICY
        else:
            if policy_targets is None or not np.isfinite(policy_targets).all():
                self.trip(Fault.BAD_ACTION, "policy output")
                return self.command(state)
            target = self.limits.apply(policy_targets, self._last_target, state.q, state.dq)
        self._last_target = target
        return JointCommand(q=target, dq=zeros, tau_ff=zeros, kp=self.kp.copy(),
                            kd=self.kd.copy())
