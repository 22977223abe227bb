"""`SerialBridgeHardware`: the robot's motor-driver board over a serial line, speaking the
velora bridge protocol (firmware_bridge/PROTOCOL.md) through pyserial — a real
`/dev/tty*`, a pseudo-terminal (the firmware emulator) or a pyserial URL.

One control cycle is one exchange: `write()` sends SET_TARGETS and receives the board's
STATE, which the next `read()` returns (a `read()` with no fresh state asks with GET_STATE).
The state a cycle sees is then up to one command period old; with `fresh_state=True`
every `read()` asks with GET_STATE (two exchanges per cycle, the newest state).
Every exchange has a timeout and a retry budget; CRC errors, timeouts, resyncs, stale
replies, NACKs and faults are counted. A lost link is reopened (the port path is opened
again) within the retry budget. Any failure — budget exhausted, NACK, a FAULT frame, the
board in damping or e-stop, a joint reporting a serious error — raises `HardwareError`,
which the controller turns into damping mode.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from velora_robot.bridge import protocol as P
from velora_robot.hal.base import Hardware, HardwareError, HardwareState, JointCommand
from velora_robot.robots.spec import RobotSpec

TORQUE_OFF_S = 1.0  # how long shutdown keeps asking the board to switch its torque off


@dataclass
class LinkCounters:
    """What happened on the link (frames, not bytes)."""

    sent: int = 0
    received: int = 0
    timeouts: int = 0
    link_errors: int = 0
    retries: int = 0
    stale: int = 0
    nacks: int = 0
    faults: int = 0
    reconnects: int = 0
    crc_errors: int = 0
    length_errors: int = 0
    resyncs: int = 0
    discarded_bytes: int = 0


class SerialBridgeHardware(Hardware):
    """The bridge firmware's board for `spec` (joints in spec order, motor ids 1..n)."""

    def __init__(self, spec: RobotSpec, port: str, *, baud: int = 1_000_000,
                 timeout_s: float | None = None, retries: int = 2,
                 watchdog_ms: int | None = None, damping_kd_scale: float = 1.0,
                 fresh_state: bool = False) -> None:
        super().__init__(spec)
        self.fresh_state = fresh_state
        self.port, self.baud, self.retries = port, baud, retries
        n = spec.n_joints
        request, reply = P.exchange_bytes(n)
        self.wire_s = P.wire_time_s(request + reply, baud)
        # Wire time plus a margin for the OS and USB adapters (a few ms) by default.
        self.timeout_s = timeout_s if timeout_s is not None else self.wire_s + 0.008
        self.watchdog_ms = watchdog_ms or max(50, round(5000 * spec.control_dt))
        self.names = spec.joint_names
        self.joint_config = [
            P.JointConfig(i + 1, j.pos_limit[0], j.pos_limit[1], j.vel_limit, j.torque_limit,
                          j.kd * damping_kd_scale) for i, j in enumerate(spec.joints)]
        self.counters = LinkCounters()
        self.rtt_us: deque[float] = deque(maxlen=100_000)
        self.info: P.Info | None = None
        self.last_fault: P.Fault | None = None
        self._serial = None
        self._fd: int | None = None
        self._parser = P.FrameParser()
        self._seq = 0
        self._state: P.State | None = None
        self._fresh = False
        self._time_base = 0.0
        self._last_us: int | None = None

    # -------------------------------------------------------------- the link
    def _open(self) -> None:
        import serial

        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0,
                                                 write_timeout=self.timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise HardwareError(f"serial bridge: cannot open {self.port}: {exc}") from None
        try:
            self._fd = self._serial.fileno()
        except (AttributeError, OSError, NotImplementedError):  # some URL handlers
            self._fd = None
        self._serial.reset_input_buffer()
        self._parser = P.FrameParser()

    def _close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(OSError):
                self._serial.close()
        self._serial, self._fd = None, None

    def _reconnect(self, reason: str) -> None:
        self._close()
        deadline = time.monotonic() + max(self.timeout_s, 0.5)
        while True:
            try:
                self._open()
                self.counters.reconnects += 1
                return
            except HardwareError:
                if time.monotonic() > deadline:
                    raise HardwareError(f"serial bridge: link to {self.port} lost ({reason}) "
                                        "and not back") from None
                time.sleep(0.01)

    def _read_bytes(self, deadline: float) -> bytes:
        """Whatever arrives before `deadline` (at least one byte, or b"" at the deadline).
        It waits in select, not by polling: on a pseudo-terminal the kernel delivers the
        bytes from a worker thread that a spinning reader would starve."""
        fd = self._fd
        if fd is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b""
            self._serial.timeout = min(remaining, 0.001)
            return self._serial.read(max(1, self._serial.in_waiting))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b""
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return b""
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            if not data:  # ready to read yet nothing: the device is gone (as pyserial says)
                raise OSError("the device reports data but returns none (disconnected?)")
            return data

    def _absorb(self, frames: list[P.Frame], seq: int) -> P.Frame | None:
        """The reply to `seq` among `frames`; faults and stale replies are accounted."""
        found = None
        for frame in frames:
            if frame.type == P.Type.FAULT:
                self.counters.faults += 1
                self.last_fault = P.decode(frame)
            elif frame.seq == seq and found is None:
                found = frame
            else:
                self.counters.stale += 1
        return found

    def _exchange(self, kind: int, payload: bytes, expect: int) -> P.Frame:
        """Send a request and return its reply, within the timeout and retry budget."""
        last_error = "no reply"
        for attempt in range(self.retries + 1):
            if attempt:
                self.counters.retries += 1
            self._seq = (self._seq % 255) + 1  # seq 0 is the firmware's unsolicited FAULT
            frame = P.encode_frame(self._seq, kind, payload)
            start = time.monotonic()
            self.counters.sent += 1  # attempted: answered, timed out, or lost with the link
            try:
                if self._fd is not None:
                    os.write(self._fd, frame)  # the port is non-blocking; frames are small
                else:
                    self._serial.write(frame)
                deadline = start + self.timeout_s
                reply = None
                while reply is None:
                    data = self._read_bytes(deadline)
                    if not data:
                        break
                    reply = self._absorb(self._parser.push(data), self._seq)
            except OSError as exc:  # pyserial's SerialException is an OSError
                self.counters.link_errors += 1
                last_error = f"link error: {exc}"
                self._sync_parser_counters()
                self._reconnect(str(exc))
                continue
            self._sync_parser_counters()
            if reply is not None:
                self.counters.received += 1
                self.rtt_us.append((time.monotonic() - start) * 1e6)
            if self.last_fault is not None:
                fault, self.last_fault = self.last_fault, None
                raise HardwareError(f"serial bridge: {fault.describe()}")
            if reply is None:
                self.counters.timeouts += 1
                last_error = f"timeout after {self.timeout_s * 1e3:.1f} ms"
                continue
            if reply.type == P.Type.NACK:
                self.counters.nacks += 1
                raise HardwareError(f"serial bridge: {P.decode(reply).describe()}")
            if reply.type != expect:
                raise HardwareError(f"serial bridge: expected {P.Type(expect).name}, got "
                                    f"type {reply.type:#04x}")
            return reply
        raise HardwareError(f"serial bridge: no valid reply to {P.Type(kind).name} after "
                            f"{self.retries + 1} tries ({last_error})")

    def _sync_parser_counters(self) -> None:
        p, c = self._parser, self.counters
        c.crc_errors, c.length_errors = p.crc_errors, p.length_errors
        c.resyncs, c.discarded_bytes = p.resyncs, p.discarded

    def _request(self, message: tuple[int, bytes], expect: int) -> P.Info | P.Ack | P.State:
        try:
            return P.decode(self._exchange(*message, expect))
        except P.ProtocolError as exc:
            raise HardwareError(f"serial bridge: bad reply: {exc}") from None

    # ------------------------------------------------------------- lifecycle
    def _on_configure(self) -> None:
        self._open()
        info = self._request(P.ping(), P.Type.INFO)
        if info.protocol != P.VERSION:
            raise HardwareError(f"serial bridge: board speaks protocol {info.protocol}, "
                                f"this host {P.VERSION}")
        n = self.spec.n_joints
        if info.max_joints < n:
            raise HardwareError(f"serial bridge: board {info.board!r} drives {info.max_joints} "
                                f"joints, robot {self.spec.name!r} has {n}")
        self.info = info
        self._request(P.configure(self.joint_config, self.watchdog_ms, self.names),
                      P.Type.ACK)
        self._fresh = False

    def _on_activate(self) -> None:
        self._request(P.enable(True), P.Type.ACK)
        self._fresh = False

    def _on_deactivate(self) -> None:
        self._request(P.enable(False), P.Type.ACK)

    def _on_torque_off(self) -> None:
        """ENABLE 0 until the board acknowledges it, for up to `TORQUE_OFF_S`: after a stall
        or a lost link the board may answer only after a while, and until it does it holds
        its motors in damping with the torque on. The link is reopened when it is gone."""
        deadline = time.monotonic() + TORQUE_OFF_S
        while True:
            try:
                if self._serial is None:
                    self._open()
                self._request(P.enable(False), P.Type.ACK)
                return
            except HardwareError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _on_shutdown(self) -> None:
        self._close()

    def _read(self) -> HardwareState:
        if not self._fresh or self.fresh_state:
            self._state = self._request(P.get_state(), P.Type.STATE)
        self._fresh = False
        return self._checked(self._state)

    def request_state(self) -> HardwareState:
        """Ask the board for its state now (GET_STATE), whatever `read()` holds."""
        self._fresh = False
        return self.read()

    def _write(self, command: JointCommand) -> None:
        self._state = self._request(
            P.set_targets(command.q, command.kp, command.kd, command.tau_ff, self.names),
            P.Type.STATE)
        self._fresh = True

    def _checked(self, s: P.State) -> HardwareState:
        n = self.spec.n_joints
        if len(s.q) != n:
            raise HardwareError(f"serial bridge: board reports {len(s.q)} joints, expected {n}")
        if s.flags & P.Flag.ESTOP:
            raise HardwareError("serial bridge: the board's e-stop input is active")
        if self.lifecycle.value == "active" and s.flags & P.Flag.DAMPING:
            why = "watchdog" if s.flags & P.Flag.WATCHDOG else "a board fault"
            raise HardwareError(f"serial bridge: the board went to damping ({why})")
        serious = s.errors & int(P.SERIOUS_ERRORS)
        if serious.any():
            i = int(np.nonzero(serious)[0][0])
            raise HardwareError(f"serial bridge: joint {self.names[i]!r} reports "
                                f"{P.JointError(int(s.errors[i])).name}")
        if self._last_us is not None and s.time_us < self._last_us:
            self._time_base += 2**32 * 1e-6  # the board's microsecond clock wrapped
        self._last_us = s.time_us
        return HardwareState(q=s.q, dq=s.dq, tau=s.tau, gyro=s.gyro, gravity=s.gravity,
                             time_s=self._time_base + s.time_us * 1e-6)

    def status(self) -> dict[str, float]:
        """The link, for a status display: the last round trip and the losses so far."""
        return {"link_rtt_us": self.rtt_us[-1] if self.rtt_us else 0.0,
                "link_timeouts": float(self.counters.timeouts),
                "link_crc_errors": float(self.counters.crc_errors)}

    def link_status(self) -> dict[str, float]:
        """Counters and round-trip times for reports."""
        rtt = np.asarray(self.rtt_us) if self.rtt_us else np.zeros(1)
        return {**asdict(self.counters), "rtt_p50_us": float(np.percentile(rtt, 50)),
                "rtt_p99_us": float(np.percentile(rtt, 99)), "wire_us": self.wire_s * 1e6}
