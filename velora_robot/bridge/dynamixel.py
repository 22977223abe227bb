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

from velora_robot.bridge.crc import msb_first_table

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


_CRC_TABLE = msb_first_table(0x8005, 16)


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16 of the DYNAMIXEL protocol (poly 0x8005, init 0), continued from `crc`."""
    table = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
    return crc


class _ZeroShift:
    """The CRC register after m zero bytes, from any start value: linear in the start (the
    CRC has init 0 and no final XOR), so it is the XOR of the 16 basis vectors' images,
    tabulated per m. With it the CRC of any stretch of a stream is
    crc(a..b) = P(b) ^ shift(P(a), b - a), P being the running CRC of the stream: each byte
    is fed to the CRC once, however often the parser resyncs inside it."""

    def __init__(self) -> None:
        self.rows: list[list[int]] = [[1 << i for i in range(16)]]

    def __call__(self, crc: int, m: int) -> int:
        rows = self.rows
        while len(rows) <= m:
            rows.append([crc16(b"\0", v) for v in rows[-1]])
        row, out, i = rows[m], 0, 0
        while crc:
            if crc & 1:
                out ^= row[i]
            crc >>= 1
            i += 1
        return out


_shift = _ZeroShift()


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


RESERVED_IDS = (0xFD, 0xFF)  # never on the wire as a packet's ID (0xFE: broadcast)
MAX_LENGTH = 1024  # the longest packet (LEN field) the parser waits for


def well_stuffed(body: bytes) -> bool:
    """Whether every FF FF FD in a stuffed instruction-and-parameters field is followed by
    the added FD (a packet whose sender forgot it, or whose bytes were damaged, is not)."""
    at = body.find(b"\xff\xff\xfd")
    while at >= 0:
        if body[at + 3:at + 4] != b"\xfd":
            return False
        at = body.find(b"\xff\xff\xfd", at + 4)
    return True


@dataclass
class StatusParser:
    """Packets out of a byte stream. A candidate is refused, and the search resumes one
    byte after its header, when its ID is reserved, its LEN is impossible, its CRC fails,
    its byte stuffing is broken, or it is a status packet without an error byte or from
    the broadcast ID. Which packets come out does not depend on how the stream is split
    into reads. The CRC of each byte is computed once (see `_ZeroShift`), so a stream full
    of false headers costs no more than a clean one."""

    buf: bytearray = field(default_factory=bytearray)
    crc_errors: int = 0
    malformed: int = 0
    discarded: int = 0
    max_length: int = MAX_LENGTH
    _prefix: list[int] = field(default_factory=lambda: [0])  # running CRC before each byte

    def push(self, data: bytes) -> list[Status | tuple[int, int, bytes]]:
        """Complete packets: `Status` for status packets, (id, inst, params) otherwise."""
        prefix, table = self._prefix, _CRC_TABLE
        crc = prefix[-1]
        for b in data:
            crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
            prefix.append(crc)
        self.buf += data
        out: list[Status | tuple[int, int, bytes]] = []
        buf, start = self.buf, 0
        while True:
            at = buf.find(HEADER, start)
            if at < 0:  # keep a tail that may begin a header, never bytes already passed
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
            if dxl_id in RESERVED_IDS or not 3 <= length <= self.max_length:
                self.malformed += 1
                start += 1
                continue
            end = start + 7 + length
            if len(buf) < end:
                break
            crc = prefix[end - 2] ^ _shift(prefix[start], end - 2 - start)
            if crc != buf[end - 2] | buf[end - 1] << 8:
                self.crc_errors += 1
                start += 1
                continue
            packet = self._decode(dxl_id, bytes(buf[start + 7:end - 2]))
            if packet is None:
                self.malformed += 1
                start += 1
                continue
            out.append(packet)
            start = end
        del buf[:start]
        del prefix[:start]
        return out

    @staticmethod
    def _decode(dxl_id: int, stuffed: bytes) -> Status | tuple[int, int, bytes] | None:
        """The packet in a CRC-checked instruction-and-parameters field (None: malformed)."""
        if not well_stuffed(stuffed):
            return None
        body = unstuff(stuffed)
        if body[0] != Inst.STATUS:
            return dxl_id, body[0], body[1:]
        if len(body) < 2 or dxl_id == BROADCAST:  # no error byte; a status from nobody
            return None
        return Status(dxl_id, body[1], body[2:])
