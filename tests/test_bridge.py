"""The firmware bridge: golden frames shared with C, the C unit tests, fuzzing the decoder,
the emulator on a pty, SerialBridgeHardware under every injected fault, and the HIL check."""

import contextlib
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velora_robot.bridge import protocol as P
from velora_robot.bridge.emulator import FIRMWARE_DIR, Emulator
from velora_robot.envs import SpotWalkTask
from velora_robot.hal.base import HardwareError, JointCommand
from velora_robot.hal.serial_bridge import SerialBridgeHardware
from velora_robot.robots import get_spec
from velora_robot.runtime import Controller, ControlLoop, Fault, Mode, Safety, SafetyConfig

ONE_JOINT = get_spec("one_joint")
SPOT = get_spec("spot")
SPOT_WALK = SpotWalkTask.policy_interface()

GOLDEN = json.loads((FIRMWARE_DIR.parent / "golden_frames.json").read_text())
FRAMES = {f["name"]: f for f in GOLDEN["frames"]}


def golden(name):
    return bytes.fromhex(FRAMES[name]["hex"])


# ------------------------------------------------------------------ protocol, both sides
def test_crc_matches_the_standard_check_value():
    check = GOLDEN["crc_check"]
    assert P.crc16(check["input_ascii"].encode()) == check["crc"] == 0x29B1


def test_host_messages_encode_to_the_golden_bytes():
    f = FRAMES["configure"]["fields"]
    joints = [P.JointConfig(j["motor_id"], j["pos_min"], j["pos_max"], j["vel_limit"],
                            j["torque_limit"], j["damping_kd"]) for j in f["joints"]]
    t = FRAMES["set_targets"]["fields"]
    cases = {"ping": (1, P.ping()), "configure": (2, P.configure(joints, f["watchdog_ms"])),
             "enable": (3, P.enable(True)), "get_state": (6, P.get_state()),
             "set_targets": (4, P.set_targets(np.array(t["q"]), np.array(t["kp"]),
                                              np.array(t["kd"]), np.array(t["tau_ff"])))}
    for name, (seq, (kind, payload)) in cases.items():
        assert P.encode_frame(seq, kind, payload) == golden(name), name


def test_firmware_messages_decode_to_the_golden_fields():
    state = P.decode(P.FrameParser().push(golden("state"))[0])
    f = FRAMES["state"]["fields"]
    assert state.time_us == f["time_us"] and int(state.flags) == f["flags"]
    for key in ("q", "dq", "tau", "gyro", "gravity"):
        np.testing.assert_allclose(getattr(state, key), f[key], atol=1e-9)
    assert state.temperature.tolist() == f["temperature"] and state.errors.tolist() == f["errors"]
    info = P.decode(P.FrameParser().push(golden("info"))[0])
    assert info.board == "vbemu" and info.firmware == (1, 0, 0) and info.watchdog_ms == 100
    fault = P.decode(P.FrameParser().push(golden("fault_watchdog"))[0])
    assert (fault.code, fault.joint, fault.value) == (1, 255, 50)
    nack = P.decode(P.FrameParser().push(golden("nack_not_enabled"))[0])
    assert nack.describe() == "SET_TARGETS rejected: not enabled"


def test_the_parser_resyncs_through_garbage_and_corrupted_frames():
    stream = bytes.fromhex(GOLDEN["stream"]["hex"])
    parser, frames = P.FrameParser(), []
    for i in range(0, len(stream), 5):  # in pieces, as a UART delivers them
        frames += parser.push(stream[i:i + 5])
    assert [f.type for f in frames] == [FRAMES[n]["type"] for n in GOLDEN["stream"]["frames"]]
    assert (parser.crc_errors, parser.length_errors) == (2, 1)


def test_the_c_firmware_unit_tests_pass_against_the_same_golden_frames():
    run = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "test"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failed" in run.stdout


def test_a_command_value_the_protocol_cannot_carry_names_the_joint():
    with pytest.raises(ValueError, match=r"joint fl_knee: kp 9000\.0 is outside"):
        P.set_targets(np.zeros(2), np.array([1.0, 9000.0]), np.zeros(2), np.zeros(2),
                      ["fl_hip", "fl_knee"])
    with pytest.raises(ValueError, match="position target nan"):
        P.set_targets(np.array([np.nan]), np.zeros(1), np.zeros(1), np.zeros(1))


# ------------------------------------------------------------------------------ fuzzing
@settings(max_examples=10_000, deadline=None, derandomize=True)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_fuzz_arbitrary_bytes_never_crash_or_yield_an_unchecked_frame(data, chunk):
    parser = P.FrameParser()
    frames = []
    for i in range(0, len(data), chunk):
        frames += parser.push(data[i:i + chunk])
    for frame in frames:  # anything accepted is a whole frame with a valid CRC
        wire = P.encode_frame(frame.seq, frame.type, frame.payload)
        assert wire in data
        with contextlib.suppress(P.ProtocolError):  # a frame, but not a firmware message
            P.decode(frame)


@settings(max_examples=2_000, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(FRAMES)), st.lists(st.integers(0, 10_000), min_size=1,
                                                 max_size=3, unique=True))
def test_fuzz_bit_flips_in_a_golden_frame_are_never_accepted(name, flips):
    frame = bytearray(golden(name))
    for bit in flips:
        frame[(bit // 8) % len(frame)] ^= 1 << (bit % 8)
    frames = P.FrameParser().push(bytes(frame))
    assert frames == [] or bytes(frame) == golden(name)  # flips that cancel out


def _pushed(parser, stream, cuts):
    """What `parser` returns for `stream` read in pieces ending at `cuts`."""
    out, last = [], 0
    for cut in [*sorted(cuts), len(stream)]:
        out += parser.push(stream[last:cut])
        last = cut
    return out


_PIECES = st.one_of(
    st.builds(lambda seq, kind, payload: P.encode_frame(seq, kind, payload),
              st.integers(0, 255), st.integers(0, 255), st.binary(max_size=20)),
    st.binary(max_size=12),  # garbage
    st.sampled_from([b"\xa5", b"\x5a", b"\xa5\x5a", b"\xa5\x5a\xff\x01"]),  # sync-like
    st.builds(lambda f, i: f[:i] + bytes([f[i] ^ 0x10]) + f[i + 1:] if f else f,  # corrupted
              st.sampled_from([golden(n) for n in sorted(FRAMES)]), st.integers(0, 7)),
)


@settings(max_examples=3_000, deadline=None, derandomize=True)
@given(st.lists(_PIECES, max_size=8), st.lists(st.integers(0, 400), max_size=40))
def test_the_bridge_parser_gives_the_same_frames_however_the_stream_is_split(pieces, cuts):
    stream = b"".join(pieces)
    whole = P.FrameParser().push(stream)
    assert _pushed(P.FrameParser(), stream, [c for c in cuts if c <= len(stream)]) == whole
    assert _pushed(P.FrameParser(), stream, range(len(stream))) == whole  # byte by byte


def test_a_frame_ending_in_a_sync_byte_is_not_reused_when_bytes_arrive_one_at_a_time():
    # The last CRC byte of a frame is 0xA5; the next bytes are a frame without its first
    # sync byte. Read at once that is one frame; the parser once re-used the CRC byte as a
    # sync byte when the bytes came one at a time, and accepted a second frame.
    first = next(f for seq in range(256) for f in [P.encode_frame(seq, 0x84, b"ab")]
                 if f[-1] == 0xA5)
    stream = first + P.encode_frame(7, 0x82, b"\x01\x00")[1:]
    whole = P.FrameParser().push(stream)
    assert len(whole) == 1
    assert _pushed(P.FrameParser(), stream, range(len(stream))) == whole


# ---------------------------------------------------------------- emulator + hardware
SPOT_POSE = [j.default_pos for j in SPOT.joints]


@pytest.fixture
def emulator():
    with Emulator.for_robot(SPOT) as emu:
        yield emu


def test_serial_bridge_hardware_drives_the_emulated_board(emulator):
    hw = SerialBridgeHardware(SPOT, emulator.port)
    hw.configure()
    assert hw.info.max_joints == 12 and hw.info.firmware == (1, 0, 0)
    hw.activate()
    start = hw.read().q
    target = start + 0.05
    target[2] = -3.0  # below fl_calf's lower limit (-2.79): the firmware clamps it
    soft = JointCommand(q=target, dq=np.zeros(12), tau_ff=np.zeros(12), kp=np.full(12, 50.0),
                        kd=np.full(12, 6.0))  # gentle gains: a 1 rad move stays slow
    for _ in range(150):
        hw.read()
        hw.write(soft)
        time.sleep(0.005)
    state = hw.read()
    np.testing.assert_allclose(state.q[[0, 1, 3]], target[[0, 1, 3]], atol=0.01)
    assert abs(state.q[2] - SPOT.joints[2].pos_limit[0]) < 0.01
    assert hw._state.errors[2] & P.JointError.POS_LIMIT
    hw.deactivate()
    hw.shutdown()
    c = hw.counters
    assert c.crc_errors == c.length_errors == c.nacks == c.faults == 0
    # Every exchange answered, but a loaded machine may hold one answer past the timeout
    # (seen once in 157 with two training runs beside the tests): it is retried, and the
    # late answer is dropped as stale.
    assert c.stale <= c.timeouts <= 2 and c.received == c.sent - c.timeouts


def test_the_firmware_alone_goes_to_damping_when_the_host_stops(emulator):
    hw = SerialBridgeHardware(SPOT, emulator.port, watchdog_ms=50)
    hw.configure()
    hw.activate()
    hw.write(JointCommand.hold(SPOT, hw.read().q))
    time.sleep(0.15)
    stats = emulator.stats()
    assert stats["watchdog_trips"] == 1 and stats["flags"] & P.Flag.DAMPING
    with pytest.raises(HardwareError, match="watchdog"):
        hw.request_state()
    hw.shutdown()


def loop_over_bridge(port, cycles, on_cycle, retries=2, watchdog_ms=100):
    hw = SerialBridgeHardware(SPOT, port, retries=retries, watchdog_ms=watchdog_ms)
    safety = Safety(SPOT, SafetyConfig(ramp_s=0.1, min_upright=-1.0))
    controller = Controller(hw, lambda obs: np.zeros(12), SPOT_WALK, np.zeros(3),
                            safety=safety)
    modes = []

    def seen(cycle):
        modes.append(cycle.mode)
        on_cycle(len(modes))

    ControlLoop(controller, 50.0).run(cycles=cycles, on_cycle=seen)
    return hw, safety, modes


@pytest.mark.parametrize("fault,args,survives", [
    ("drop", (1,), True), ("corrupt", (1,), True), ("garbage", (40,), True),
    ("delay", (12, 1), True), ("drop", (3,), False), ("stall", (300,), False),
    ("joint-error", (4, 1), False), ("estop", (1,), False), ("disconnect", (30,), True),
])
def test_each_injected_fault_is_survived_or_ends_in_damping_and_is_counted(
        emulator, fault, args, survives):
    def on_cycle(k):
        if k == 12:
            emulator.inject(fault, *args)

    hw, safety, modes = loop_over_bridge(emulator.port, 30, on_cycle)
    c, stats = hw.counters, emulator.stats()
    assert len(modes) >= 13  # the loop ran on, never crashed
    if survives:
        assert safety.fault is None and modes[-1] is Mode.POLICY, safety.detail
    else:
        assert safety.fault is Fault.HARDWARE
        first = next(i for i, m in enumerate(modes) if m is Mode.DAMPING)
        # damping within the watchdog time (100 ms = 5 cycles at 50 Hz) of the fault
        assert 12 <= first <= 12 + 5
    # Every request is answered, timed out or lost with the link; every timed-out reply
    # was dropped or corrupted by the emulator, or arrived late and was counted as stale.
    assert c.sent == c.received + c.timeouts + c.link_errors
    assert c.retries <= c.timeouts + c.link_errors
    if fault != "stall":  # a stalled board answers after the host has given up
        assert c.timeouts == stats["dropped"] + stats["corrupted"] + c.stale
    assert stats["dropped"] == (args[0] if fault == "drop" else 0)
    assert c.crc_errors == stats["corrupted"] == (1 if fault == "corrupt" else 0)
    if fault in ("delay", "stall"):
        assert c.timeouts >= 1
    # the bytes of garbage and of a rejected frame are dropped while resyncing
    assert (c.discarded_bytes > 0) == (fault in ("garbage", "corrupt"))
    assert c.reconnects == (1 if fault == "disconnect" else 0)


def test_hil_check_against_the_emulator_passes_and_writes_a_report(tmp_path):
    from velora_robot.cli import main

    report = tmp_path / "hil.json"
    assert main(["hil", "--emulate", "--report", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["passed"] and [s["step"] for s in result["steps"]][:7] == [
        "ping and info", "configure", "read state", "small motion within limits", "latency",
        "watchdog trip", "link counters"]


def test_hil_against_a_board_that_is_absent_fails_clearly(tmp_path, capsys):
    from velora_robot.cli import main

    assert main(["hil", "--port", str(tmp_path / "ttyUSB9"), "--report",
                 str(tmp_path / "r.json")]) == 2
    assert "cannot open" in json.loads((tmp_path / "r.json").read_text())["steps"][0]["detail"]
    assert "[FAIL] error: serial bridge: cannot open" in capsys.readouterr().out


def test_a_launch_file_runs_the_one_joint_rig_through_the_serial_path(tmp_path):
    from velora_robot.runtime.deploy import deploy

    root = Path(__file__).resolve().parents[1]
    with Emulator(joints=1, baud=1_000_000) as emu:
        launch = tmp_path / "serial.yaml"
        launch.write_text(
            f"name: serial_one_joint\nrobot: one_joint\npolicy: {root}/models/joint_track.onnx\n"
            f"command: {{target_pos: 0.4}}\nhardware: {{backend: serial, port: {emu.port}}}\n"
            "loop: {duration_s: 1.5}\nsafety: {ramp_s: 0.2, min_upright: -1.0}\n"
            f"estop: {{keys: false, file: null, signal: null}}\n"
            f"telemetry: {{path: null}}\nstatus: false\n")
        summary = deploy(launch)
    assert summary["final_mode"] == "policy" and summary["fallback"] is None
    assert summary["cycles"] == 75  # 1.5 s at the rig's 50 Hz
    assert ONE_JOINT.n_joints == 1


def test_sim_plant_mode_drives_the_simulated_robot_through_the_serial_path():
    from velora_robot.bench.bridge import compare_paths

    root = Path(__file__).resolve().parents[1]
    result = compare_paths(str(root / "models" / "joint_track.onnx"), "one_joint", [0.5, 0.0],
                           seconds=2.0, command_hz=250)
    # A few of the 4-ms exchanges may time out when other work loads both cores (seen
    # while a demo rendered beside the suite); a broken path times out on every one.
    assert result["cycles"] == 500 and result["timeouts"] <= 5
    # Both paths hold the rig near the command; the serial path's latency (state one
    # period old, wire time, 1 ms firmware tick, physics step) makes them differ: 0.06-0.07
    # rad on a quiet machine, 0.16 with three training runs beside the suite on 2 cores. A
    # path that did not drive the rig would be ~0.5 rad (the whole command) away.
    assert 0.0 < result["rms_diff_rad"] < 0.25 and result["latency_s"] > 0.004


def test_hil_in_sim_plant_mode_drives_the_simulated_spot_through_the_serial_path(tmp_path):
    from velora_robot.cli import main

    report = tmp_path / "hil.json"
    assert main(["hil", "--emulate", "--sim-plant", "--report", str(report)]) == 0
    steps = {s["step"]: s for s in json.loads(report.read_text())["steps"]}
    assert steps["small motion within limits"]["passed"]
    assert steps["read state"]["q"][1] == pytest.approx(SPOT.joints[1].default_pos, abs=0.01)


def test_a_stalled_link_still_ends_with_the_board_reporting_torque_off(emulator):
    # The emulator process stops for 50 ms mid-run (SIGSTOP): the host's exchange fails, the
    # loop latches damping and the HAL goes to its error state; shutdown must still switch
    # the board's torque off (it used to skip deactivate and leave the board holding).
    import os
    import signal
    import threading

    def on_cycle(k):
        if k == 12:
            os.kill(emulator.proc.pid, signal.SIGSTOP)
            threading.Timer(0.05, os.kill, (emulator.proc.pid, signal.SIGCONT)).start()

    hw, safety, modes = loop_over_bridge(emulator.port, 30, on_cycle, retries=0)
    assert safety.fault is Fault.HARDWARE and modes[-1] is Mode.DAMPING
    assert hw.torque_off == "off"
    stats = emulator.stats()
    assert stats["enabled"] == 0 and not stats["flags"] & P.Flag.ENABLED


def test_a_killed_host_leaves_the_board_with_torque_off_after_the_damping_hold(tmp_path):
    # SIGKILL runs no shutdown code at all: the firmware's own watchdog damps, and after
    # VB_DAMPING_HOLD_MS (1 s) of silence it switches the torque off by itself.
    import os
    import signal
    import sys

    root = Path(__file__).resolve().parents[1]
    with Emulator(joints=1) as emu:
        launch = tmp_path / "serial.yaml"
        launch.write_text(
            f"name: killed\nrobot: one_joint\npolicy: {root}/models/joint_track.onnx\n"
            f"hardware: {{backend: serial, port: {emu.port}}}\nloop: {{duration_s: 60}}\n"
            "safety: {ramp_s: 0.2, min_upright: -1.0}\n"
            "estop: {keys: false, file: null, signal: null}\ntelemetry: {path: null}\n"
            "status: false\n")
        host = subprocess.Popen([sys.executable, "-m", "velora_robot.cli", "run", str(launch)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while emu.stats()["enabled"] == 0:
                assert time.monotonic() < deadline and host.poll() is None
                time.sleep(0.05)
            time.sleep(0.3)  # running: torque on, targets flowing
            os.kill(host.pid, signal.SIGKILL)
            host.wait()
            time.sleep(0.3)
            held = emu.stats()
            assert held["watchdog_trips"] == 1 and held["enabled"] == 1  # damping, holding
            time.sleep(1.2)
            after = emu.stats()
        finally:
            if host.poll() is None:
                host.kill()
    assert after["enabled"] == 0 and after["torque_offs"] == 1
