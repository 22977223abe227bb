"""`DynamixelHardware`: a robot built from DYNAMIXEL X-series servos on one Protocol 2.0 bus
(a U2D2 or any half-duplex adapter), joints in spec order on IDs 1..n by default.

Per cycle: one Sync Read of present current, velocity, position and temperature (every
servo answers in turn) and one Sync Write of goal positions. Position control runs in the
servos (their own PID); the spec's kp/kd are not sent, except that damping mode (kp = 0)
sets every Position P Gain to 0, leaving the D gain to damp, and the next stiff command
restores the gains. Activation enables torque and the bus watchdog (the servos stop on
their own when the host goes quiet). A status packet with the alert bit set makes the HAL
read Hardware Error Status and fail with the joint and the error named. The servos have no
IMU: `has_imu` is False and the state's gyro and gravity are NaN (not measured), so the
fall check is off and a policy that observes the IMU is refused before it runs.
"""

from __future__ import annotations

import struct
import time

import numpy as np

from velora_robot.bridge import dynamixel as D
from velora_robot.hal.base import Hardware, HardwareError, HardwareState, JointCommand
from velora_robot.robots.spec import RobotSpec


class DynamixelHardware(Hardware):
    """X-series servos on `port` for `spec`."""

    has_imu = False

    def __init__(self, spec: RobotSpec, port: str, *, baud: int = 1_000_000,
                 ids: list[int] | None = None, timeout_s: float = 0.02, retries: int = 1,
                 watchdog_ms: int = 100, torque_per_amp: float = 1.0) -> None:
        super().__init__(spec)
        self.port, self.baud, self.timeout_s, self.retries = port, baud, timeout_s, retries
        self.ids = list(ids or range(1, spec.n_joints + 1))
        if len(self.ids) != spec.n_joints:
            raise HardwareError(f"DynamixelHardware: {len(self.ids)} IDs for "
                                f"{spec.n_joints} joints")
        self.watchdog_units = max(1, min(127, round(watchdog_ms / D.WATCHDOG_UNIT_MS)))
        self.torque_per_amp = torque_per_amp
        self.names = spec.joint_names
        self.models: dict[int, int] = {}
        self.timeouts = self.crc_errors = 0
        self._serial = None
        self._parser = D.StatusParser()
        self._p_gains: dict[int, bytes] = {}
        self._damped = False
        self._start = time.monotonic()

    # ------------------------------------------------------------------ bus
    def _send(self, data: bytes) -> None:
        self._serial.write(data)

    def _receive(self, ids: list[int], what: str) -> dict[int, D.Status]:
        """Status packets from `ids` (in any order) before the timeout."""
        got: dict[int, D.Status] = {}
        deadline = time.monotonic() + self.timeout_s
        while len(got) < len(ids):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._serial.timeout = remaining
            data = self._serial.read(max(1, self._serial.in_waiting))
            for item in self._parser.push(data):
                if isinstance(item, D.Status) and item.dxl_id in ids:
                    got[item.dxl_id] = item
        self.crc_errors = self._parser.crc_errors
        missing = [i for i in ids if i not in got]
        if missing:
            self.timeouts += 1
            joints = [self.names[self.ids.index(i)] for i in missing]
            raise HardwareError(f"dynamixel: no status from ID {missing} (joints {joints}) to "
                                f"{what} within {self.timeout_s * 1e3:.0f} ms")
        for status in got.values():
            if status.error & 0x7F:
                joint = self.names[self.ids.index(status.dxl_id)]
                raise HardwareError(f"dynamixel: ID {status.dxl_id} (joint {joint!r}) "
                                    f"answered {what} with {status.describe_error()}")
        return got

    def _params(self, status: D.Status, size: int, what: str) -> bytes:
        """A status packet's parameters, which must be `size` bytes for `what`."""
        if len(status.params) != size:
            joint = self.names[self.ids.index(status.dxl_id)]
            raise HardwareError(f"dynamixel: ID {status.dxl_id} (joint {joint!r}) answered "
                                f"{what} with {len(status.params)} bytes, expected {size}")
        return status.params

    def _transact(self, data: bytes, ids: list[int], what: str) -> dict[int, D.Status]:
        """Send `data` and collect the status packets of `ids`, retrying on a failure."""
        for _ in range(self.retries):
            try:
                return self._request(data, ids, what)
            except HardwareError:
                pass
        return self._request(data, ids, what)  # the last try: its error goes to the caller

    def _request(self, data: bytes, ids: list[int], what: str) -> dict[int, D.Status]:
        """One try: a clean input buffer, the packet, the status packets of `ids`."""
        self._serial.reset_input_buffer()
        self._send(data)
        return self._receive(ids, what)

    def _sync_write(self, address: int, values: list[bytes]) -> None:
        self._send(D.sync_write(address, len(values[0]), dict(zip(self.ids, values,
                                                                  strict=True))))

    def _check_alerts(self, statuses: dict[int, D.Status]) -> None:
        for dxl_id, status in statuses.items():
            if status.alert:
                what = "read hardware error"
                status = self._transact(D.read(dxl_id, D.Addr.HARDWARE_ERROR_STATUS, 1),
                                        [dxl_id], what)[dxl_id]
                bits = self._params(status, 1, what)[0]
                joint = self.names[self.ids.index(dxl_id)]
                raise HardwareError(f"dynamixel: ID {dxl_id} (joint {joint!r}) hardware error: "
                                    f"{D.describe_hardware_error(bits)}")

    # ------------------------------------------------------------ lifecycle
    def _on_configure(self) -> None:
        import serial

        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise HardwareError(f"dynamixel: cannot open {self.port}: {exc}") from None
        for dxl_id in self.ids:
            status = self._transact(D.ping(dxl_id), [dxl_id], "ping")[dxl_id]
            self.models[dxl_id] = struct.unpack_from("<H", self._params(status, 3, "ping"))[0]
        self._sync_write(D.Addr.TORQUE_ENABLE, [b"\x00"] * len(self.ids))
        for dxl_id in self.ids:
            status = self._transact(D.read(dxl_id, D.Addr.POSITION_P_GAIN, 2), [dxl_id],
                                    "read P gain")[dxl_id]
            self._p_gains[dxl_id] = self._params(status, 2, "read P gain")

    def _on_activate(self) -> None:
        self._sync_write(D.Addr.TORQUE_ENABLE, [b"\x01"] * len(self.ids))
        self._sync_write(D.Addr.BUS_WATCHDOG, [bytes([self.watchdog_units])] * len(self.ids))

    def _on_deactivate(self) -> None:
        self._sync_write(D.Addr.BUS_WATCHDOG, [b"\x00"] * len(self.ids))
        self._sync_write(D.Addr.TORQUE_ENABLE, [b"\x00"] * len(self.ids))

    def _on_shutdown(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def _read(self) -> HardwareState:
        statuses = self._transact(D.sync_read(D.STATE_ADDR, D.STATE_LEN, self.ids), self.ids,
                                  "sync read")
        self._check_alerts(statuses)
        n = len(self.ids)
        q, dq, tau = np.zeros(n), np.zeros(n), np.zeros(n)
        for k, dxl_id in enumerate(self.ids):
            p = self._params(statuses[dxl_id], D.STATE_LEN, "sync read")
            current, velocity, position = struct.unpack_from("<hii", p)
            q[k] = (position - D.CENTER) * D.RAD_PER_PULSE
            dq[k] = velocity * D.RAD_S_PER_UNIT
            tau[k] = current * D.AMP_PER_UNIT * self.torque_per_amp
        return HardwareState(q=q, dq=dq, tau=tau, gyro=np.full(3, np.nan),
                             gravity=np.full(3, np.nan), time_s=time.monotonic() - self._start)

    def _write(self, command: JointCommand) -> None:
        damp = bool(np.all(command.kp == 0))
        if damp != self._damped:  # damping: P gain 0 (D gain still damps); then restore
            gains = [b"\x00\x00"] * len(self.ids) if damp else \
                [self._p_gains[i] for i in self.ids]
            self._sync_write(D.Addr.POSITION_P_GAIN, gains)
            self._damped = damp
        pulses = np.clip(np.rint(D.CENTER + command.q / D.RAD_PER_PULSE), 0,
                         D.PULSES_PER_REV - 1).astype("<i4")
        self._sync_write(D.Addr.GOAL_POSITION, [p.tobytes() for p in pulses])
