"""`Hardware`: the hardware abstraction in the ros2_control sense, in plain Python.

Lifecycle: unconfigured -> configure() -> inactive (talking, reading) -> activate() ->
active (servos on, writing) -> deactivate() -> inactive -> shutdown() -> finalized; any
failure leads to `error`. `shutdown()` from any state that may have left the servos on
(active, or error after a link loss or a stall) first tries to switch their torque off.
Backends implement the `_on_*`, `_read` and `_write` hooks.
Interfaces are named `<joint>/<position|velocity|effort|kp|kd>` and `imu/<...>`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from velora_robot.robots.observation import RobotState
from velora_robot.robots.spec import RobotSpec


class Lifecycle(enum.Enum):
    """Where a hardware component is in its lifecycle."""

    UNCONFIGURED = "unconfigured"
    INACTIVE = "inactive"
    ACTIVE = "active"
    FINALIZED = "finalized"
    ERROR = "error"


class HardwareError(RuntimeError):
    """A lifecycle call in the wrong state, or a backend failure; says which and where."""


@dataclass
class HardwareState:
    """One reading: joints in spec order (rad, rad/s, N*m), IMU gyro (rad/s, base frame),
    gravity direction in the base frame, and the hardware's clock (s)."""

    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    gyro: np.ndarray
    gravity: np.ndarray
    time_s: float

    def robot_state(self) -> RobotState:
        """What the shared observation builder needs."""
        return RobotState(q=self.q, dq=self.dq, gyro=self.gyro, gravity=self.gravity)


@dataclass
class JointCommand:
    """Per joint, in spec order: position target, velocity target, feed-forward torque and
    PD gains. Damping mode is kp = 0 with kd > 0."""

    q: np.ndarray
    dq: np.ndarray
    tau_ff: np.ndarray
    kp: np.ndarray
    kd: np.ndarray

    @classmethod
    def hold(cls, spec: RobotSpec, q: np.ndarray) -> JointCommand:
        """Track `q` with the spec's gains."""
        n = spec.n_joints
        return cls(q=np.asarray(q, float), dq=np.zeros(n), tau_ff=np.zeros(n),
                   kp=np.array([j.kp for j in spec.joints]),
                   kd=np.array([j.kd for j in spec.joints]))


class Hardware(ABC):
    """Base of every backend: checks lifecycle transitions, names the interfaces, and turns
    backend failures into the error state. A backend without an IMU sets `has_imu` False
    and reports NaN gyro and gravity: never a made-up level, still base."""

    has_imu: bool = True

    def __init__(self, spec: RobotSpec) -> None:
        self.spec = spec
        self.lifecycle = Lifecycle.UNCONFIGURED
        self.last_status: dict[str, float] = {}  # status() as it was at shutdown
        # How the last shutdown left the servos: None (never activated, nothing to do),
        # "off" (torque off confirmed or sent) or "failed: <why>".
        self.torque_off: str | None = None

    # ------------------------------------------------------------- naming
    def state_interfaces(self) -> list[str]:
        """Every value `read()` reports, by name."""
        joints = [f"{j}/{k}" for j in self.spec.joint_names
                  for k in ("position", "velocity", "effort")]
        imu = [f"imu/{k}_{a}" for k in ("gyro", "gravity") for a in "xyz"]
        return joints + (imu if self.has_imu else [])

    def command_interfaces(self) -> list[str]:
        """Every value `write()` accepts, by name."""
        return [f"{j}/{k}" for j in self.spec.joint_names
                for k in ("position", "velocity", "effort", "kp", "kd")]

    # ---------------------------------------------------------- lifecycle
    def configure(self) -> None:
        """Open the connection and start reading (unconfigured -> inactive)."""
        self._transition(Lifecycle.UNCONFIGURED, Lifecycle.INACTIVE, self._on_configure)

    def activate(self) -> None:
        """Enable the servos (inactive -> active)."""
        self._transition(Lifecycle.INACTIVE, Lifecycle.ACTIVE, self._on_activate)

    def deactivate(self) -> None:
        """Disable the servos (active -> inactive)."""
        self._transition(Lifecycle.ACTIVE, Lifecycle.INACTIVE, self._on_deactivate)
        self.torque_off = "off"

    def status(self) -> dict[str, float]:
        """Extra values for a status display (none by default; the simulated robot adds its
        base position and speed). Not for control: a real robot does not measure them."""
        return {}

    def shutdown(self) -> None:
        """Switch the torque off where the servos may still be on (active, or error: a
        failed link may have left them holding), then close everything (any state ->
        finalized). A failed torque-off is recorded in `torque_off`, never raised: the
        connection is closed regardless."""
        try:
            if self.lifecycle in (Lifecycle.INACTIVE, Lifecycle.ACTIVE):
                self.last_status = self.status()
            if self.lifecycle in (Lifecycle.ACTIVE, Lifecycle.ERROR):
                try:
                    self._on_torque_off()
                    self.torque_off = "off"
                except Exception as exc:  # the link is gone: say so, and close anyway
                    self.torque_off = f"failed: {exc}"
            self._on_shutdown()
        finally:
            self.lifecycle = Lifecycle.FINALIZED

    def read(self) -> HardwareState:
        """The current state (inactive or active)."""
        self._require(Lifecycle.INACTIVE, Lifecycle.ACTIVE, action="read")
        return self._guard("read", self._read)

    def write(self, command: JointCommand) -> None:
        """Send a command (active only)."""
        self._require(Lifecycle.ACTIVE, action="write")
        self._guard("write", lambda: self._write(command))

    # ------------------------------------------------------------- hooks
    # Optional: a backend with nothing to do at a transition leaves the hook as it is.
    def _on_configure(self) -> None:
        return None

    def _on_activate(self) -> None:
        return None

    def _on_deactivate(self) -> None:
        return None

    def _on_shutdown(self) -> None:
        return None

    def _on_torque_off(self) -> None:
        """Servos off, from whatever state the link is in (by default: as deactivate)."""
        self._on_deactivate()

    @abstractmethod
    def _read(self) -> HardwareState: ...

    @abstractmethod
    def _write(self, command: JointCommand) -> None: ...

    # ------------------------------------------------------------ helpers
    def _transition(self, start: Lifecycle, end: Lifecycle, hook: object) -> None:
        self._require(start, action=f"go {start.value} -> {end.value}")
        self._guard(end.value, hook)  # type: ignore[arg-type]
        self.lifecycle = end

    def _require(self, *states: Lifecycle, action: str) -> None:
        if self.lifecycle not in states:
            allowed = " or ".join(s.value for s in states)
            raise HardwareError(f"{type(self).__name__}: cannot {action} while "
                                f"{self.lifecycle.value} (needs {allowed})")

    def _guard(self, what: str, fn: object) -> object:
        try:
            return fn()  # type: ignore[operator]
        except HardwareError:
            self.lifecycle = Lifecycle.ERROR
            raise
        except Exception as exc:
            self.lifecycle = Lifecycle.ERROR
            raise HardwareError(f"{type(self).__name__}: {what} failed: {exc}") from exc
