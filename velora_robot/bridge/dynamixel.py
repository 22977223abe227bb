"""DYNAMIXEL Protocol 2.0 (ROBOTIS e-manual, "DYNAMIXEL Protocol 2.0"): packets, CRC-16,
byte stuffing, and the X-series control table entries the HAL uses.

Packet: FF FF FD 00 | ID | LEN (2, LE) | INST | PARAMS | CRC (2, LE). LEN counts the bytes
after itself (instruction, stuffed parameters, CRC). Inside the instruction and
parameters, every FF FF FD is followed by an added FD (byte stuffing). The CRC is
CRC-16 with polynomial 0x8005 (x^16 + x^15 + x^2 + 1), initial value 0, not reflected,
over everything before it as sent (header to the last stuffed parameter).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

HEADER = b"\xff\xff\xfd\x00"
BROADCAST = 0xFE


class Inst(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REBOOT = 0x08
    STATUS = 0x55
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


class Addr(enum.IntEnum):
    """X-series (XM430, XH430, XM540...) control table: (address)."""

    MODEL_NUMBER = 0
    OPERATING_MODE = 11
    TORQUE_ENABLE = 64
    HARDWARE_ERROR_STATUS = 70
    POSITION_D_GAIN = 80
    POSITION_P_GAIN = 84
    BUS_WATCHDOG = 98
    GOAL_POSITION = 116
    PRESENT_CURRENT = 126
    PRESENT_VELOCITY = 128
    PRESENT_POSITION = 132
    PRESENT_TEMPERATURE = 146


# One sync read covers present current (126, 2), velocity (128, 4), position (132, 4),
# velocity and position trajectory (136, 140), input voltage (144, 2), temperature (146, 1).
STATE_ADDR, STATE_LEN = 126, 21

# X-series units.
PULSES_PER_REV = 4096
CENTER = 2048
RAD_PER_PULSE = 2 * 3.141592653589793 / PULSES_PER_REV
RAD_S_PER_UNIT = 0.229 * 2 * 3.141592653589793 / 60  # 0.229 rpm
AMP_PER_UNIT = 2.69e-3  # XM430; other models differ
WATCHDOG_UNIT_MS = 20

HARDWARE_ERRORS = {0: "input voltage", 2: "overheating", 3: "motor encoder",
                   4: "electrical shock", 5: "overload"}
STATUS_ERRORS = {1: "result fail", 2: "instruction error", 3: "CRC error",
                 4: "data range error", 5: "data length error", 6: "data limit error",
                 7: "access error"}
ALERT = 0x80


def _table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) if c & 0x8000 else c << 1
        table.append(c & 0xFFFF)
    return table


_CRC_TABLE = _table()


def crc16(data: bytes) -> int:
    """CRC-16 of the DYNAMIXEL protocol (poly 0x8005, init 0)."""
    crc = 0
    for b in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(data: bytes) -> bytes:
    """Add FD after every FF FF FD."""
    return data.replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")


def unstuff(data: bytes) -> bytes:
    """Remove the FD added after every FF FF FD."""
    return data.replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")


def packet(dxl_id: int, inst: int, params: bytes = b"") -> bytes:
    """An instruction (or status) packet with stuffing and CRC."""
    body = stuff(bytes([inst]) + params)
    head = HEADER + struct.pack("<BH", dxl_id, len(body) + 2)
    data = head + body
    return data + struct.pack("<H", crc16(data))


def ping(dxl_id: int) -> bytes:
    return packet(dxl_id, Inst.PING)


def read(dxl_id: int, address: int, length: int) -> bytes:
    return packet(dxl_id, Inst.READ, struct.pack("<HH", address, length))


def write(dxl_id: int, address: int, data: bytes) -> bytes:
    return packet(dxl_id, Inst.WRITE, struct.pack("<H", address) + data)


def sync_write(address: int, length: int, data: dict[int, bytes]) -> bytes:
    """One packet writing `length` bytes at `address` on every servo in `data`."""
    params = struct.pack("<HH", address, length)
    for dxl_id, value in data.items():
        if len(value) != length:
            raise ValueError(f"sync write: {len(value)} bytes for ID {dxl_id}, expected {length}")
        params += bytes([dxl_id]) + value
    return packet(BROADCAST, Inst.SYNC_WRITE, params)


def sync_read(address: int, length: int, ids: list[int]) -> bytes:
    """One packet asking every servo in `ids` for `length` bytes at `address`; each answers
    with its own status packet, in order."""
    return packet(BROADCAST, Inst.SYNC_READ, struct.pack("<HH", address, length) + bytes(ids))


@dataclass(frozen=True)
class Status:
    """A status packet: the servo, its error byte and the (unstuffed) parameters."""

    dxl_id: int
    error: int
    params: bytes

    @property
    def alert(self) -> bool:
        """Set when the servo's Hardware Error Status is not zero."""
        return bool(self.error & ALERT)

    def describe_error(self) -> str:
        code = self.error & 0x7F
        return STATUS_ERRORS.get(code, f"error {code}") if code else ""


def describe_hardware_error(bits: int) -> str:
    """Hardware Error Status bits as words."""
    names = [name for bit, name in HARDWARE_ERRORS.items() if bits & (1 << bit)]
    return ", ".join(names) or "none"


@dataclass
class StatusParser:
    """Status packets out of a byte stream; resyncs on a bad CRC or impossible length."""

    buf: bytearray = field(default_factory=bytearray)
    crc_errors: int = 0
    discarded: int = 0

    def push(self, data: bytes) -> list[Status | tuple[int, int, bytes]]:
        """Complete packets: `Status` for status packets, (id, inst, params) otherwise."""
        self.buf += data
        out: list[Status | tuple[int, int, bytes]] = []
        buf, start = self.buf, 0
        while True:
            at = buf.find(HEADER, start)
            if at < 0:
                keep = max(start, len(buf) - 3)
                self.discarded += keep - start
                start = keep
                break
            self.discarded += at - start
            start = at
            if len(buf) - start < 7:
                break
            dxl_id = buf[start + 4]
            length = buf[start + 5] | buf[start + 6] << 8
            if length < 3 or length > 1024:
                start += 1
                self.crc_errors += 1
                continue
            end = start + 7 + length
            if len(buf) < end:
                break
            wire = bytes(buf[start:end])
            if crc16(wire[:-2]) != (wire[-2] | wire[-1] << 8):
                self.crc_errors += 1
                start += 1
                continue
            body = unstuff(wire[7:-2])
            if body[0] == Inst.STATUS:
                out.append(Status(dxl_id, body[1] if len(body) > 1 else 0, body[2:]))
            else:
                out.append((dxl_id, body[0], body[1:]))
            start = end
        del buf[:start]
        return out
