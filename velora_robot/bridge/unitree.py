"""Unitree SDK2's low-level messages over DDS, for the robot side and the controller side:
`rt/lowcmd` (per motor: mode, q, dq, tau, kp, kd) and `rt/lowstate` (per motor state, IMU),
each sealed with a CRC32. Used by `hal.unitree.UnitreeHardware` (the controller) and
`bridge.dds_robot` (our simulated robot speaking the same topics).

The SDK (`unitree-sdk2` 1.0.1, the one release on PyPI) carries the DDS channels and the
message types; two parts of that wheel are missing, and this module stands in for them:
its package `__init__` imports a `b2` subpackage the wheel does not contain (an empty
module is registered under that name, so the import succeeds; nothing here uses the B2),
and its CRC class loads a `crc_amd64.so` the wheel does not contain. The CRC below is the
SDK's own algorithm (CRC-32/MPEG-2 over the message packed as the C struct, read as
little-endian 32-bit words, the last word — the CRC itself — excluded), checked against
the SDK's pure-Python reference in the tests.
"""

from __future__ import annotations

import struct
import sys
import types
from functools import cache
from typing import Any

from velora_robot.bridge.crc import msb_first_table
from velora_robot.errors import ConfigError

LOWCMD, LOWSTATE = "rt/lowcmd", "rt/lowstate"
N_MOTORS = 35  # motor slots of an hg message (the G1 uses 29)
# Packed C layouts of the hg messages (4-byte aligned, little-endian).
_HG_CMD = struct.Struct("<2B2x" + "B3x5fI" * N_MOTORS + "5I")
_HG_STATE = struct.Struct("<2I2B2xI" + "13fh2x" + "B3x4f2hf7I" * N_MOTORS + "40B5I")


@cache
def sdk() -> types.SimpleNamespace:
    """The SDK's channel functions and hg message types (imported on first use)."""
    sys.modules.setdefault("unitree_sdk2py.b2", types.ModuleType("unitree_sdk2py.b2"))
    try:
        from unitree_sdk2py.core import channel
        from unitree_sdk2py.idl import default
        from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_
    except ImportError as exc:
        raise ConfigError(
            f"the unitree backend needs Unitree SDK2 and Cyclone DDS ({exc}); install the "
            "'unitree' extra: pip install -e '.[unitree]' with Debian's cyclonedds-dev "
            "(the Makefile does both)") from None
    return types.SimpleNamespace(
        init=channel.ChannelFactoryInitialize, Publisher=channel.ChannelPublisher,
        Subscriber=channel.ChannelSubscriber, LowCmd=LowCmd_, LowState=LowState_,
        new_cmd=default.unitree_hg_msg_dds__LowCmd_,
        new_state=default.unitree_hg_msg_dds__LowState_)


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


_TABLE = msb_first_table(0x04C11DB7, 32)


def crc32_words(packed: bytes) -> int:
    """The SDK's CRC of a packed message: MSB-first CRC-32 (poly 0x04C11DB7, initial
    0xFFFFFFFF) of its little-endian 32-bit words, the last word excluded."""
    crc, table = 0xFFFFFFFF, _TABLE
    for w in range(0, len(packed) - 4, 4):
        for b in (packed[w + 3], packed[w + 2], packed[w + 1], packed[w]):
            crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ b]
    return crc


def cmd_crc(msg: Any) -> int:
    """CRC of an hg LowCmd."""
    fields: list[Any] = [msg.mode_pr, msg.mode_machine]
    for m in msg.motor_cmd:
        fields += [m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve]
    return crc32_words(_HG_CMD.pack(*fields, *msg.reserve, msg.crc))


def state_crc(msg: Any) -> int:
    """CRC of an hg LowState."""
    imu = msg.imu_state
    fields: list[Any] = [*msg.version, msg.mode_pr, msg.mode_machine, msg.tick,
                         *imu.quaternion, *imu.gyroscope, *imu.accelerometer, *imu.rpy,
                         imu.temperature]
    for m in msg.motor_state:
        fields += [m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor,
                   m.motorstate, *m.reserve]
    return crc32_words(_HG_STATE.pack(*fields, *msg.wireless_remote, *msg.reserve, msg.crc))
