"""Unitree SDK2's low-level messages over DDS, for the robot side and the controller side:
`rt/lowcmd` (per motor: mode, q, dq, tau, kp, kd) and `rt/lowstate` (per motor state, IMU),
each sealed with a CRC32, in the two message families: `hg` (G1) and `go` (Go2). Used by
`hal.unitree.UnitreeHardware` (the controller) and `bridge.dds_robot` (our simulated robot
speaking the same topics).

The SDK (`unitree-sdk2` 1.0.1, the one release on PyPI) carries the DDS channels and the
message types; two parts of that wheel are missing, and this module stands in for them:
its package `__init__` imports a `b2` subpackage the wheel does not contain (an empty
module is registered under that name, so the import succeeds; nothing here uses the B2),
and its CRC class loads a `crc_amd64.so` the wheel does not contain. The CRC below is the
SDK's own algorithm (CRC-32/MPEG-2 over the message packed as the C struct, read as
little-endian 32-bit words, the last word — the CRC itself — excluded), checked against
the SDK's pure-Python reference in the tests.

Samples of the two hot topics travel as bytes (`Wire`): packed from a flat list of values
straight into the CDR encoding cyclonedds would produce for the SDK's message object (byte
for byte, tested), and read back with one unpack, because the SDK's objects cost ~1.5 ms
per G1 state between encoding and decoding: at 500 states a second, most of a core.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import sys
import types
from functools import cache
from typing import Any

import numpy as np

from velora_robot.bridge.crc import msb_first_table
from velora_robot.errors import ConfigError

LOWCMD, LOWSTATE = "rt/lowcmd", "rt/lowstate"
# Samples a subscriber's handler thread may fall behind by. The SDK's queue drops the NEWEST
# sample when full, so the handler must keep up: with the CRC below a G1's robot receives
# 99.5 % of its commands at 500 Hz (91 % with a byte-by-byte CRC). Larger queues (10, as
# Unitree's examples) crashed the process (segfault) in 2 of 5 test runs when a subscriber
# closed; no queue (the handler in DDS's listener thread) deadlocked closing a writer.
QUEUE = 1
# Packed C layouts of the messages (4-byte aligned, little-endian), per message family:
# `hg` (G1, H1-2: 35 motor slots) and `go` (Go2, B2: 20 motor slots).
_LAYOUT = {
    "hg": (struct.Struct("<2B2x" + "B3x5fI" * 35 + "5I"),
           struct.Struct("<2I2B2xI" + "13fh2x" + "B3x4f2hf7I" * 35 + "40B5I")),
    "go": (struct.Struct("<4B4IH2x" + "B3x5f3I" * 20 + "4B" + "55Bx2I"),
           struct.Struct("<4B4IH2x" + "13fb3x" + "B3x7fb3x3I" * 20 + "4BiH4b15H"
                         + "8hI41B3xf2b2x2f4h2I")),
}
GO_HEAD, GO_LOWLEVEL = (0xFE, 0xEF), 0xFF  # a go LowCmd's header and level flag
GO_POS_STOP, GO_VEL_STOP = 2.146e9, 16000.0  # a go motor slot that holds no target


@cache
def sdk() -> types.SimpleNamespace:
    """The SDK's DDS channels and RPC client and server classes (imported on first use)."""
    sys.modules.setdefault("unitree_sdk2py.b2", types.ModuleType("unitree_sdk2py.b2"))
    try:
        from unitree_sdk2py.core import channel
    except ImportError as exc:
        raise ConfigError(
            f"the unitree backend needs Unitree SDK2 and Cyclone DDS ({exc}); install the "
            "'unitree' extra: pip install -e '.[unitree]' with Debian's cyclonedds-dev "
            "(the Makefile does both)") from None
    from unitree_sdk2py.rpc.client import Client
    from unitree_sdk2py.rpc.server import Server

    return types.SimpleNamespace(
        init=channel.ChannelFactoryInitialize, Publisher=channel.ChannelPublisher,
        Subscriber=channel.ChannelSubscriber, RpcClient=Client, RpcServer=Server)


@cache
def family(name: str) -> types.SimpleNamespace:
    """Message family `name` ("hg" or "go"): constructors of blank LowCmd and LowState
    messages with the family's header set, and each message as a `Wire` (`cmd`, `state`)."""
    sdk()
    from unitree_sdk2py.idl import default

    if name == "hg":
        from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_

        return types.SimpleNamespace(
            name=name, new_cmd=default.unitree_hg_msg_dds__LowCmd_,
            new_state=default.unitree_hg_msg_dds__LowState_,
            cmd=Wire(LowCmd_, _LAYOUT[name][0], default.unitree_hg_msg_dds__LowCmd_),
            state=Wire(LowState_, _LAYOUT[name][1], default.unitree_hg_msg_dds__LowState_))
    if name == "go":
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_

        def new_cmd() -> Any:
            msg = default.unitree_go_msg_dds__LowCmd_()
            msg.head, msg.level_flag = list(GO_HEAD), GO_LOWLEVEL
            for m in msg.motor_cmd:
                m.q, m.dq = GO_POS_STOP, GO_VEL_STOP
            return msg

        return types.SimpleNamespace(
            name=name, new_cmd=new_cmd,
            new_state=default.unitree_go_msg_dds__LowState_,
            cmd=Wire(LowCmd_, _LAYOUT[name][0], new_cmd),
            state=Wire(LowState_, _LAYOUT[name][1], default.unitree_go_msg_dds__LowState_))
    raise ConfigError(f"unknown Unitree message family {name!r} (hg or go)")


_joined: list[tuple[int, str]] = []  # the SDK joins one domain per process


def open_domain(domain_id: int, interface: str) -> None:
    """Join DDS domain `domain_id` on network `interface` (the SDK allows one per process:
    asking for another is refused instead of silently ignored)."""
    if _joined:
        if _joined[0] != (domain_id, interface):
            raise ConfigError(f"this process already uses DDS domain {_joined[0][0]} on "
                              f"{_joined[0][1]!r}; Unitree SDK2 cannot also join domain "
                              f"{domain_id} on {interface!r} (use another process)")
        return
    try:
        sdk().init(domain_id, interface)
    except Exception as exc:  # the SDK raises a bare Exception naming nothing
        raise ConfigError(f"cannot open DDS domain {domain_id} on network interface "
                          f"{interface!r}: {exc} (is the interface up? `ip link`)") from None
    _joined.append((domain_id, interface))


_TABLE = np.array(msb_first_table(0x04C11DB7, 32), dtype=np.uint32)


@cache
def _position_tables(n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """For messages of `n` CRC'd bytes: what each byte value at each position contributes
    to the CRC (n x 256), and the CRC of n zero bytes from the initial 0xFFFFFFFF. The CRC
    is linear in the message, so it is the XOR of the two: one gather and one reduction
    instead of a Python loop over every byte (15 us instead of 290 us for a G1 LowState,
    which arrives 500 times a second). Built once per message size (~11 ms, 2 MB for it),
    with the positions' index the gather takes."""
    tables = np.empty((n, 256), np.uint32)
    x = _TABLE.copy()  # a byte's contribution with n - 1 - i zero bytes after it
    tables[n - 1] = x
    for i in range(n - 2, -1, -1):
        x = (x << np.uint32(8)) ^ _TABLE[x >> np.uint32(24)]
        tables[i] = x
    zeros = 0xFFFFFFFF
    for _ in range(n):
        zeros = ((zeros << 8) & 0xFFFFFFFF) ^ int(_TABLE[zeros >> 24])
    return tables, np.arange(n), zeros


def crc32_words(packed: bytes) -> int:
    """The SDK's CRC of a packed message: MSB-first CRC-32 (poly 0x04C11DB7, initial
    0xFFFFFFFF) of its little-endian 32-bit words, the last word excluded."""
    n = len(packed) - 4
    tables, positions, zeros = _position_tables(n)
    # each word's bytes most significant first: the order the CRC takes them in
    order = np.frombuffer(packed, np.uint8, n).reshape(-1, 4)[:, ::-1].ravel()
    return zeros ^ int(np.bitwise_xor.reduce(tables[positions, order]))


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """A message's values in wire order (its fields as declared, nested structs and arrays
    in place: the order the C layout and CDR pack them in, the CRC last), each with its
    name: ('tick', 123), ('motor_state.3.q', 0.1), ('imu_state.quaternion.0', 1.0)."""
    if dataclasses.is_dataclass(value):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif isinstance(value, (list, bytes)):  # a uint8 array read back comes as bytes
        items = list(enumerate(value))
    else:
        return [(path, value)]
    return [leaf for name, v in items for leaf in _leaves(v, f"{path}.{name}" if path
                                                          else str(name))]


def _flat(msg: Any) -> list[Any]:
    """A message's values in wire order (`_leaves`)."""
    return [v for _, v in _leaves(msg)]


_ENCAPSULATION = b"\x00\x01\x00\x00"  # XCDR1, little-endian: the SDK's DDS samples


def _cdr_format(c_format: str) -> str:
    """The CDR layout of a packed C layout's values: the same values in the same order,
    each aligned to its own size from the payload's start (C also pads a struct to its
    alignment, CDR does not: a G1 state's first motor begins 2 bytes earlier)."""
    out, offset = ["<"], 0
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", c_format.lstrip("<=")):
        if code == "x":
            continue
        size = struct.calcsize("<" + code)
        for _ in range(int(count or 1)):
            pad = -offset % size
            out.append(f"{pad}x{code}" if pad else code)
            offset += pad + size
    return "".join(out)


def _sample_type(data_type: Any) -> type:
    """A stand-in for IDL type `data_type` that carries a sample as its encoded bytes: the
    same topic type on the wire (its `__idl__`: name and type information), so a reader of
    it hands over samples undecoded and a writer sends the bytes given."""

    class Sample(bytes):
        __idl__ = data_type.__idl__

        def serialize(self, use_version_2: bool | None = None, **_: Any) -> bytes:
            return bytes(self)

        @classmethod
        def deserialize(cls, data: bytes, has_header: bool = True,
                        use_version_2: bool | None = None, **_: Any) -> Sample:
            return cls(data)

    Sample.__name__ = Sample.__qualname__ = f"{data_type.__name__}Bytes"
    return Sample


class Wire:
    """One message type as a flat tuple of its values in wire order (named by `index`),
    sealed with the SDK's CRC and sent and received as the DDS sample's bytes (`Sample`,
    the topic's type as bytes) instead of the SDK's message objects: the SDK's cyclonedds
    serialization of a G1 state takes ~840 us and its decoding ~630 us, a robot's 500
    states a second 70 % of a core between the two ends; this packs one in ~50 us."""

    def __init__(self, data_type: Any, layout: struct.Struct, blank: Any) -> None:
        self.layout, self._blank = layout, blank
        self.cdr = struct.Struct(_cdr_format(layout.format))
        self.index = {p: i for i, (p, _) in enumerate(_leaves(blank()))}
        self.Sample = _sample_type(data_type)
        self._motors = "motor_cmd" if "motor_cmd.0.q" in self.index else "motor_state"

    def array(self, name: str) -> list[int]:
        """Where an array field's values are ('imu_state.quaternion')."""
        return [i for p, i in self.index.items() if p.rpartition(".")[0] == name]

    def motors(self, field: str, slots: Any) -> list[int]:
        """Where `field` ('q', 'kp', ...) of each of these motor slots is."""
        return [self.index[f"{self._motors}.{int(k)}.{field}"] for k in slots]

    @staticmethod
    def fill(values: list[Any], positions: list[int], column: Any) -> None:
        """Put `column` (numbers, or an array) at `positions` of a message's `values`."""
        for i, v in zip(positions, np.asarray(column).tolist(), strict=True):
            values[i] = v

    def values(self) -> list[Any]:
        """A blank message's values (the family's header set), to fill by `index`."""
        return _flat(self._blank())

    def crc(self, values: Any) -> int:
        """The SDK's CRC of a message with these values (its own CRC value not counted)."""
        return crc32_words(self.layout.pack(*values))

    def crc_of(self, msg: Any) -> int:
        """The SDK's CRC of a message object (slow: for tests and tools)."""
        return self.crc(_flat(msg))

    def seal(self, values: list[Any], corrupt: bool = False) -> Any:
        """Set the CRC (the last value; inverted when `corrupt`); the sample to send."""
        values[-1] = self.crc(values) ^ (0xFFFFFFFF if corrupt else 0)
        return self.Sample(_ENCAPSULATION + self.cdr.pack(*values))

    def open(self, sample: bytes) -> tuple[Any, ...] | None:
        """A received sample's values, or None if it is not one (its encoding or size) or
        its CRC does not check."""
        if sample[:4] != _ENCAPSULATION or len(sample) < 4 + self.cdr.size:
            return None
        values = self.cdr.unpack_from(sample, 4)
        return values if self.crc(values) == values[-1] else None
