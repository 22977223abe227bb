"""The velora bridge protocol, host side (firmware_bridge/PROTOCOL.md): frames, CRC-16, the
resynchronizing stream parser, and the messages with their fixed-point fields.

Byte-compatible with the C firmware core: both are checked against
firmware_bridge/golden_frames.json.
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass, field

import numpy as np

SYNC = b"\xa5\x5a"
HEADER, OVERHEAD, MAX_PAYLOAD, MAX_JOINTS, VERSION = 6, 8, 512, 32, 1

POS, VEL, TAU, KP, KD, GYRO, GRAV = 1e-4, 1e-3, 1e-2, 0.1, 1e-3, 1e-3, 1e-4


class Type(enum.IntEnum):
    """Message types; replies have bit 7 set."""

    PING = 0x01
    CONFIGURE = 0x02
    ENABLE = 0x03
    SET_TARGETS = 0x04
    GET_STATE = 0x05
    INFO = 0x81
    ACK = 0x82
    STATE = 0x84
    FAULT = 0x86
    NACK = 0x8F


class Flag(enum.IntFlag):
    """Board state flags of a STATE frame."""

    ENABLED = 1 << 0
    DAMPING = 1 << 1
    WATCHDOG = 1 << 2
    CONFIGURED = 1 << 3
    ESTOP = 1 << 4
    FAULT = 1 << 5


class JointError(enum.IntFlag):
    """Per-joint error bits of a STATE frame."""

    OVERTEMP = 1 << 0
    OVERCURRENT = 1 << 1
    POS_LIMIT = 1 << 2
    OVERSPEED = 1 << 3
    ENCODER = 1 << 4
    DRIVER = 1 << 5
    UNDERVOLTAGE = 1 << 6
    NO_RESPONSE = 1 << 7


# Joint errors that mean the joint cannot be trusted (the others are informational).
SERIOUS_ERRORS = (JointError.OVERTEMP | JointError.OVERSPEED | JointError.ENCODER
                  | JointError.DRIVER | JointError.UNDERVOLTAGE | JointError.NO_RESPONSE)

FAULT_CODES = {1: "watchdog", 2: "overspeed", 3: "overtemp", 4: "e-stop", 5: "driver"}
NACK_REASONS = {1: "bad length", 2: "unknown type", 3: "not configured",
                4: "bad joint count", 5: "bad value", 6: "not enabled"}


class ProtocolError(ValueError):
    """A frame that is well formed on the wire but not a valid message."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): binascii's CRC-CCITT in C."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(seq: int, kind: int, payload: bytes = b"") -> bytes:
    """A whole frame: sync, length, sequence, type, payload, CRC."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = struct.pack("<HBB", len(payload), seq & 0xFF, kind) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


@dataclass(frozen=True)
class Frame:
    """A frame that passed the CRC check."""

    seq: int
    type: int
    payload: bytes


@dataclass
class FrameParser:
    """Bytes in, checked frames out. After a CRC or length failure the search restarts
    at the byte after the rejected frame's first byte, so a frame inside garbage or
    inside a corrupted frame is still found. The frames out do not depend on how the
    stream is split into reads."""

    buf: bytearray = field(default_factory=bytearray)
    frames: int = 0
    crc_errors: int = 0
    length_errors: int = 0
    resyncs: int = 0
    discarded: int = 0

    def push(self, data: bytes) -> list[Frame]:
        """Feed received bytes; returns the frames they complete."""
        self.buf += data
        out: list[Frame] = []
        buf = self.buf
        start = 0
        while True:
            at = buf.find(SYNC, start)
            if at < 0:  # keep a trailing first sync byte, unless it was already passed
                tail = len(buf) - 1
                keep = tail if tail >= start and buf[tail] == SYNC[0] else len(buf)
                self.discarded += keep - start
                start = keep
                break
            self.discarded += at - start
            start = at
            if len(buf) - start < HEADER:
                break
            length = buf[start + 2] | buf[start + 3] << 8
            if length > MAX_PAYLOAD:
                self.length_errors += 1
                self.resyncs += 1
                start += 1
                continue
            end = start + length + OVERHEAD
            if len(buf) < end:
                break
            crc = buf[end - 2] | buf[end - 1] << 8
            if crc16(bytes(buf[start + 2:end - 2])) != crc:
                self.crc_errors += 1
                self.resyncs += 1
                start += 1
                continue
            out.append(Frame(buf[start + 4], buf[start + 5], bytes(buf[start + HEADER:end - 2])))
            self.frames += 1
            start = end
        del buf[:start]
        return out


# ----------------------------------------------------------------------------- messages
TARGET = np.dtype([("q", "<i2"), ("kp", "<u2"), ("kd", "<u2"), ("tau", "<i2")])
JOINT_STATE = np.dtype([("q", "<i2"), ("dq", "<i2"), ("tau", "<i2"), ("temp", "u1"),
                        ("err", "u1")])
JOINT_CONFIG = np.dtype([("id", "u1"), ("pos_min", "<i2"), ("pos_max", "<i2"),
                         ("vel_limit", "<u2"), ("tau_limit", "<u2"), ("damping_kd", "<u2")])
_LIMITS = {"<i2": (-32768, 32767), "<u2": (0, 65535), "u1": (0, 255)}


def fixed(values: np.ndarray, scale: float, kind: str, what: str,
          names: list[str] | None = None) -> np.ndarray:
    """Physical values as fixed-point integers; a value outside the field's range or not
    finite is an error naming the joint and the field."""
    raw = np.rint(np.asarray(values, float) / scale)
    lo, hi = _LIMITS[kind]
    bad = ~np.isfinite(raw) | (raw < lo) | (raw > hi)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        joint = names[i] if names is not None else f"#{i}"
        raise ValueError(f"joint {joint}: {what} {float(np.asarray(values, float)[i])} is outside "
                         f"what the protocol carries ({lo * scale:g}..{hi * scale:g})")
    return raw


def ping() -> tuple[int, bytes]:
    return Type.PING, b""


def get_state() -> tuple[int, bytes]:
    return Type.GET_STATE, b""


def enable(on: bool) -> tuple[int, bytes]:
    return Type.ENABLE, bytes([1 if on else 0])


@dataclass(frozen=True)
class JointConfig:
    """One joint's limits for CONFIGURE."""

    motor_id: int
    pos_min: float
    pos_max: float
    vel_limit: float
    torque_limit: float
    damping_kd: float


def configure(joints: list[JointConfig], watchdog_ms: int,
              names: list[str] | None = None) -> tuple[int, bytes]:
    """CONFIGURE: the joint count, the watchdog and every joint's limits."""
    if not 1 <= len(joints) <= MAX_JOINTS:
        raise ValueError(f"{len(joints)} joints; the protocol carries 1..{MAX_JOINTS}")
    if not 1 <= watchdog_ms <= 65535:
        raise ValueError(f"watchdog_ms {watchdog_ms} must be 1..65535")
    rows = np.zeros(len(joints), JOINT_CONFIG)
    rows["id"] = [j.motor_id for j in joints]
    for name, scale in (("pos_min", POS), ("pos_max", POS), ("vel_limit", VEL),
                        ("tau_limit", TAU), ("damping_kd", KD)):
        attr = {"tau_limit": "torque_limit"}.get(name, name)
        rows[name] = fixed([getattr(j, attr) for j in joints], scale,
                           JOINT_CONFIG[name].str, name, names)
    return Type.CONFIGURE, struct.pack("<BH", len(joints), watchdog_ms) + rows.tobytes()


def set_targets(q: np.ndarray, kp: np.ndarray, kd: np.ndarray, tau_ff: np.ndarray,
                names: list[str] | None = None) -> tuple[int, bytes]:
    """SET_TARGETS for all joints."""
    rows = np.empty(len(q), TARGET)
    rows["q"] = fixed(q, POS, "<i2", "position target", names)
    rows["kp"] = fixed(kp, KP, "<u2", "kp", names)
    rows["kd"] = fixed(kd, KD, "<u2", "kd", names)
    rows["tau"] = fixed(tau_ff, TAU, "<i2", "feed-forward torque", names)
    return Type.SET_TARGETS, rows.tobytes()


@dataclass(frozen=True)
class Info:
    protocol: int
    firmware: tuple[int, int, int]
    max_joints: int
    joints: int
    watchdog_ms: int
    board: str


@dataclass(frozen=True)
class Ack:
    acked: int


@dataclass(frozen=True)
class Nack:
    rejected: int
    reason: int

    def describe(self) -> str:
        try:
            what = Type(self.rejected).name
        except ValueError:
            what = f"type {self.rejected:#04x}"
        return f"{what} rejected: {NACK_REASONS.get(self.reason, f'reason {self.reason}')}"


@dataclass(frozen=True)
class Fault:
    code: int
    joint: int
    value: int

    def describe(self) -> str:
        where = "" if self.joint == 255 else f" on joint {self.joint}"
        return f"firmware fault: {FAULT_CODES.get(self.code, f'code {self.code}')}{where}"


@dataclass(frozen=True)
class State:
    time_us: int
    flags: Flag
    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    temperature: np.ndarray
    errors: np.ndarray
    gyro: np.ndarray
    gravity: np.ndarray


def _expect(frame: Frame, size: int) -> None:
    if len(frame.payload) != size:
        raise ProtocolError(f"{Type(frame.type).name} payload is {len(frame.payload)} bytes, "
                            f"expected {size}")


def decode(frame: Frame) -> Info | Ack | Nack | Fault | State:
    """The message in a checked frame (replies and faults: what the host receives)."""
    p = frame.payload
    if frame.type == Type.STATE:
        if len(p) < 18:
            raise ProtocolError(f"STATE payload is {len(p)} bytes, expected at least 18")
        time_us, flags, n = struct.unpack_from("<IBB", p)
        _expect(frame, 18 + JOINT_STATE.itemsize * n)
        rows = np.frombuffer(p, JOINT_STATE, n, 6)
        imu = np.frombuffer(p, "<i2", 6, 6 + JOINT_STATE.itemsize * n).astype(float)
        return State(time_us, Flag(flags), rows["q"] * POS, rows["dq"] * VEL,
                     rows["tau"] * TAU, rows["temp"].astype(float), rows["err"].copy(),
                     imu[:3] * GYRO, imu[3:] * GRAV)
    if frame.type == Type.INFO:
        _expect(frame, 14)
        proto, major, minor, patch, max_j, n, wd = struct.unpack_from("<BBBBBBH", p)
        return Info(proto, (major, minor, patch), max_j, n, wd,
                    p[8:14].rstrip(b"\0").decode("ascii", "replace"))
    if frame.type == Type.ACK:
        _expect(frame, 2)
        return Ack(p[0])
    if frame.type == Type.NACK:
        _expect(frame, 2)
        return Nack(p[0], p[1])
    if frame.type == Type.FAULT:
        _expect(frame, 4)
        return Fault(p[0], p[1], struct.unpack_from("<h", p, 2)[0])
    raise ProtocolError(f"frame type {frame.type:#04x} is not a firmware message")


def wire_time_s(n_bytes: int, baud: int) -> float:
    """Time on an 8N1 UART: 10 bits per byte."""
    return n_bytes * 10.0 / baud


def exchange_bytes(n_joints: int) -> tuple[int, int]:
    """Sizes of one cycle's SET_TARGETS and STATE frames."""
    return OVERHEAD + TARGET.itemsize * n_joints, OVERHEAD + 18 + JOINT_STATE.itemsize * n_joints
