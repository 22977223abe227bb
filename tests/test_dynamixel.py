"""DYNAMIXEL Protocol 2.0: the ROBOTIS e-manual's byte examples, stuffing, and
DynamixelHardware on an emulated bus of X-series servos."""

import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velora_robot.bridge import dynamixel as D
from velora_robot.bridge.dynamixel_bus import EmulatedBus
from velora_robot.hal.base import HardwareError, JointCommand
from velora_robot.hal.dynamixel import DynamixelHardware
from velora_robot.robots import RobotSpec, get_spec

ONE_JOINT = get_spec("one_joint")

# Instruction and status packets from the e-manual's Protocol 2.0 page.
MANUAL = {
    "ping id 1": ("FF FF FD 00 01 03 00 01 19 4E", lambda: D.ping(1)),
    "broadcast ping": ("FF FF FD 00 FE 03 00 01 31 42", lambda: D.ping(D.BROADCAST)),
    "read present position": ("FF FF FD 00 01 07 00 02 84 00 04 00 1D 15",
                              lambda: D.read(1, 132, 4)),
    "write goal position 512": ("FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89",
                                lambda: D.write(1, 116, struct.pack("<i", 512))),
    "sync write 150, 170": (
        "FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87",
        lambda: D.sync_write(116, 4, {1: struct.pack("<i", 150), 2: struct.pack("<i", 170)})),
    "sync read ids 1, 2": ("FF FF FD 00 FE 09 00 82 84 00 04 00 01 02 CE FA",
                           lambda: D.sync_read(132, 4, [1, 2])),
    "factory reset": ("FF FF FD 00 01 04 00 06 01 A1 E6", lambda: D.packet(1, 0x06, b"\x01")),
    "reboot": ("FF FF FD 00 01 03 00 08 2F 4E", lambda: D.packet(1, D.Inst.REBOOT)),
}


@pytest.mark.parametrize("name", sorted(MANUAL))
def test_instruction_packets_match_the_e_manual(name):
    expected, build = MANUAL[name]
    assert build() == bytes.fromhex(expected.replace(" ", ""))


def test_status_packets_from_the_e_manual_decode():
    packets = {"ping": "FF FF FD 00 01 07 00 55 00 06 04 26 65 5D",
               "read": "FF FF FD 00 01 08 00 55 00 A6 00 00 00 8C C0",
               "write": "FF FF FD 00 01 04 00 55 00 A1 0C"}
    parser = D.StatusParser()
    got = parser.push(b"".join(bytes.fromhex(p.replace(" ", "")) for p in packets.values()))
    ping, read, write = got
    assert struct.unpack_from("<HB", ping.params) == (1030, 0x26)  # model number, firmware
    assert struct.unpack("<i", read.params)[0] == 166  # present position
    assert write.params == b"" and write.error == 0 and parser.crc_errors == 0


def test_byte_stuffing_round_trips_and_the_crc_covers_the_stuffed_bytes():
    data = b"\x01\xff\xff\xfd\x02\xff\xff\xfd"
    wire = D.write(3, 200, data)
    assert wire.count(b"\xff\xff\xfd\xfd") == 2
    assert D.crc16(wire[:-2]) == struct.unpack("<H", wire[-2:])[0]
    (dxl_id, inst, params), = D.StatusParser().push(b"\x00\xff" + wire)
    assert (dxl_id, inst, params) == (3, D.Inst.WRITE, struct.pack("<H", 200) + data)


def test_a_corrupted_status_is_rejected_and_the_next_one_found():
    good = D.packet(1, D.Inst.STATUS, b"\x00\x10")
    bad = bytearray(good)
    bad[9] ^= 0x40
    parser = D.StatusParser()
    assert parser.push(bytes(bad) + good) == [D.Status(1, 0, b"\x10")]
    assert parser.crc_errors == 1


# A pan-tilt head of two servos (no simulation model needed for the HAL).
_source = {**ONE_JOINT.sources["default"].model_dump(), "joints": ["pan", "tilt"]}
TWO = RobotSpec.model_validate({**ONE_JOINT.model_dump(), "name": "two_servos",
                                "sources": {"default": _source},
                                "joints": [{**ONE_JOINT.joints[0].model_dump(), "name": n}
                                           for n in ("pan", "tilt")]})


def eventually(condition, timeout_s=1.0):
    """Sync writes get no reply: wait for the bus thread to apply them."""
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.002)


@pytest.fixture
def bus():
    with EmulatedBus([1, 2]) as b:
        yield b


def test_dynamixel_hardware_drives_x_series_servos(bus):
    hw = DynamixelHardware(TWO, bus.port)
    hw.configure()
    assert hw.models == {1: 1020, 2: 1020}
    hw.activate()
    eventually(lambda: bus.table(1)[D.Addr.TORQUE_ENABLE] == 1
               and bus.table(2)[D.Addr.BUS_WATCHDOG] == 5)
    target = np.array([0.5, -0.3])
    for _ in range(30):
        hw.read()
        hw.write(JointCommand.hold(TWO, target))
        time.sleep(0.01)
    np.testing.assert_allclose(hw.read().q, target, atol=0.01)
    # damping: P gain 0 on every servo, and back when stiff commands return
    hw.write(JointCommand(q=target, dq=np.zeros(2), tau_ff=np.zeros(2), kp=np.zeros(2),
                          kd=np.ones(2)))
    eventually(lambda: struct.unpack_from("<H", bus.table(1), D.Addr.POSITION_P_GAIN)[0] == 0)
    hw.write(JointCommand.hold(TWO, target))
    eventually(lambda: struct.unpack_from("<H", bus.table(2), D.Addr.POSITION_P_GAIN)[0] == 800)
    hw.deactivate()
    hw.shutdown()
    eventually(lambda: bus.table(1)[D.Addr.TORQUE_ENABLE] == 0)


def test_a_hardware_error_names_the_joint_and_the_error(bus):
    hw = DynamixelHardware(TWO, bus.port)
    hw.configure()
    hw.activate()
    hw.read()
    bus.inject_hardware_error(2, 1 << 2)
    with pytest.raises(HardwareError, match=r"ID 2 \(joint 'tilt'\) hardware error: overheating"):
        hw.read()


def test_the_bus_watchdog_stops_the_servos_when_the_host_goes_quiet(bus):
    hw = DynamixelHardware(TWO, bus.port, watchdog_ms=40)
    hw.configure()
    hw.activate()
    hw.write(JointCommand.hold(TWO, np.zeros(2)))
    time.sleep(0.15)
    assert bus.table(1)[D.Addr.BUS_WATCHDOG] == 0xFF
    before = hw.read().q
    hw.write(JointCommand.hold(TWO, np.array([1.0, 1.0])))  # ignored while tripped
    time.sleep(0.1)
    np.testing.assert_allclose(hw.read().q, before, atol=1e-3)


def test_a_missing_servo_is_a_clear_error(bus):
    hw = DynamixelHardware(ONE_JOINT, bus.port, ids=[7])
    with pytest.raises(HardwareError, match=r"no status from ID \[7\] \(joints \['joint'\]\)"):
        hw.configure()


def _raw(dxl_id: int, body: bytes) -> bytes:
    """A packet with a valid CRC around `body` exactly as given (no stuffing added)."""
    head = D.HEADER + struct.pack("<BH", dxl_id, len(body) + 2)
    return head + body + struct.pack("<H", D.crc16(head + body))


@pytest.mark.parametrize("name,packet", [
    ("no error byte", _raw(1, bytes([D.Inst.STATUS]))),
    ("reserved ID 0xFD", _raw(0xFD, bytes([D.Inst.STATUS, 0, 7]))),
    ("reserved ID 0xFF", _raw(0xFF, bytes([D.Inst.STATUS, 0, 7]))),
    ("status from the broadcast ID", _raw(D.BROADCAST, bytes([D.Inst.STATUS, 0, 7]))),
    ("broken byte stuffing", _raw(1, bytes([D.Inst.STATUS, 0]) + b"\xff\xff\xfd\x01\x02")),
    ("a length below instruction and CRC", D.HEADER + b"\x01\x02\x00\x55\x00"),
])
def test_the_status_parser_refuses_malformed_packets(name, packet):
    good = D.packet(2, D.Inst.STATUS, b"\x00\x10")
    parser = D.StatusParser()
    assert parser.push(packet + good) == [D.Status(2, 0, b"\x10")], name
    assert parser.malformed + parser.crc_errors >= 1


@settings(max_examples=2_000, deadline=None, derandomize=True)
@given(st.lists(st.one_of(
    st.builds(lambda i, p: D.packet(i, D.Inst.STATUS, b"\x00" + p), st.integers(0, 252),
              st.binary(max_size=12)),
    st.binary(max_size=10), st.sampled_from([D.HEADER, D.HEADER[:3], b"\xff\xff\xfd\xfd"])),
    max_size=8), st.lists(st.integers(0, 300), max_size=30))
def test_the_status_parser_gives_the_same_packets_however_the_stream_is_split(pieces, cuts):
    stream = b"".join(pieces)
    whole = D.StatusParser().push(stream)
    out, last = [], 0
    parser = D.StatusParser()
    for cut in [*sorted(c for c in cuts if c <= len(stream)), len(stream)]:
        out += parser.push(stream[last:cut])
        last = cut
    assert out == whole


def test_a_short_status_is_a_clear_error_naming_the_servo_not_an_unpack_error(bus):
    # A servo answering ping with one parameter byte instead of three (model, firmware).
    bus._handle = lambda dxl_id, inst, params: D.packet(dxl_id, D.Inst.STATUS, b"\x00\x01")
    hw = DynamixelHardware(TWO, bus.port, retries=0)
    with pytest.raises(HardwareError, match=r"ID 1 \(joint 'pan'\) answered ping with 1 "
                                            r"bytes, expected 3"):
        hw.configure()


def test_the_servos_report_no_imu_instead_of_a_level_still_base(bus):
    hw = DynamixelHardware(TWO, bus.port)
    hw.configure()
    state = hw.read()
    assert not hw.has_imu and np.isnan(state.gyro).all() and np.isnan(state.gravity).all()
    assert not any(name.startswith("imu/") for name in hw.state_interfaces())
    hw.shutdown()


def test_a_run_on_servos_without_an_imu_has_its_fall_check_visibly_off(tmp_path):
    from pathlib import Path

    from velora_robot.errors import ConfigError
    from velora_robot.runtime.deploy import deploy

    root = Path(__file__).resolve().parents[1]
    out = []
    with EmulatedBus([1]) as one:
        launch = tmp_path / "dxl.yaml"
        launch.write_text(
            f"name: dxl\nrobot: one_joint\npolicy: {root}/models/joint_track.onnx\n"
            f"hardware: {{backend: dynamixel, port: {one.port}}}\nloop: {{duration_s: 0.5}}\n"
            "safety: {ramp_s: 0.1}\nestop: {keys: false, file: null, signal: null}\n"
            "telemetry: {path: null}\nstatus: false\n")

        class Lines:
            def write(self, text):
                out.append(text)

            def flush(self):
                pass

        summary = deploy(launch, out=Lines())
    text = "".join(out)
    assert "fall check: OFF (dynamixel has no IMU" in text and "fall check was OFF" in text
    assert summary["fall_check"] is False and summary["fault"] is None
    assert summary["torque_off"] == "off"
    with EmulatedBus(list(range(1, 13))) as twelve:  # Spot's policy observes the IMU
        spot = tmp_path / "spot_dxl.yaml"
        spot.write_text(f"name: s\nrobot: spot\npolicy: {root}/models/spot_walk.onnx\n"
                        f"hardware: {{backend: dynamixel, port: {twelve.port}}}\n"
                        "estop: {keys: false, file: null, signal: null}\n")
        with pytest.raises(ConfigError, match="dynamixel has no IMU, but the policy observes "
                                              "gyro, gravity"):
            deploy(spot)
