"""Telemetry: every cycle on file, readable after SIGINT or a crash, and plotted."""

import os
import signal
import subprocess
import sys
import threading

import numpy as np

from velora_robot.envs import SpotWalkTask
from velora_robot.hal import MockHardware
from velora_robot.robots import get_spec
from velora_robot.runtime import telemetry
from velora_robot.runtime.controller import Controller
from velora_robot.runtime.loop import ControlLoop
from velora_robot.runtime.safety import Safety, SafetyConfig
from velora_robot.runtime.telemetry import Telemetry

SPOT = get_spec("spot")
SPOT_WALK = SpotWalkTask.policy_interface()


def loop_with(path, hz=200):
    hw = MockHardware(SPOT, period_s=1.0 / hz)
    safety = Safety(SPOT, SafetyConfig(ramp_s=0.05), dt_s=1.0 / hz)
    controller = Controller(hw, lambda obs: np.full(12, 0.1), SPOT_WALK, np.zeros(3),
                            safety=safety)
    return ControlLoop(controller, hz, telemetry=Telemetry(path, SPOT, 47)), hw


def test_every_cycle_is_recorded_with_state_command_action_and_timing(tmp_path):
    loop, hw = loop_with(tmp_path / "run.telemetry")
    stats = loop.run(cycles=40)
    header, data = telemetry.read(tmp_path / "run.telemetry")
    cols = {c: i for i, c in enumerate(header["columns"])}
    assert data.shape == (40, len(telemetry.columns(SPOT, 47)))
    np.testing.assert_allclose(data[:, cols["lateness_us"]], stats.lateness_us)
    acted = ~np.isnan(data[:, cols["action/fl_hip"]])  # cycles that ran the policy
    assert acted.sum() > 20 and np.all(data[acted, cols["mode"]] == 1.0)
    np.testing.assert_allclose(data[acted, cols["action/fl_hip"]], 0.1)
    np.testing.assert_allclose(data[-1, cols["target/fl_hip"]], hw.commands[-1].q[0])


def test_telemetry_survives_sigint(tmp_path):
    loop, _ = loop_with(tmp_path / "run.telemetry")
    timer = threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    stats = loop.run(seconds=5.0)
    timer.join()
    _, data = telemetry.read(tmp_path / "run.telemetry")
    assert len(data) == stats.summary()["cycles"] and data[-1, 3] == 2.0  # ends damping


def test_telemetry_survives_a_crash_and_drops_only_a_torn_record(tmp_path):
    path = tmp_path / "run.telemetry"
    code = ("import os, numpy as np\n"
            "from tests.test_telemetry import loop_with\n"
            f"loop, _ = loop_with({str(path)!r})\n"
            "def crash(cycle):\n"
            "    if loop.telemetry.records == 25:\n"
            "        os._exit(3)\n"
            "loop.run(cycles=1000, on_cycle=crash)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(
        os.path.dirname(__file__)), capture_output=True, text=True)
    assert run.returncode == 3, run.stderr
    _, data = telemetry.read(path)
    assert len(data) == 25
    with path.open("ab") as f:
        f.write(b"\x00" * 100)  # half a record, as a crash mid-write would leave
    assert len(telemetry.read(path)[1]) == 25


def test_plot_writes_a_png(tmp_path):
    loop, _ = loop_with(tmp_path / "run.telemetry")
    loop.run(cycles=30)
    png = telemetry.plot(tmp_path / "run.telemetry")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_file_that_is_not_telemetry_is_named_in_a_clear_error(tmp_path, capsys):
    from velora_robot.cli import main

    for name, content in (("notes.md", b"# notes\n"), ("blob.bin", b"\xff\xfe\x00"),
                          ("other.json", b'{"format": "csv"}\n')):
        (tmp_path / name).write_bytes(content)
        assert main(["plot", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert f"velora-robot plot: error: {tmp_path / name}: not a velora telemetry" in err


def test_a_simulated_run_records_its_base_velocity_against_the_command_and_plots_any_joints(
        tmp_path):
    import json
    from pathlib import Path

    import pytest
    import yaml

    from velora_robot.errors import ConfigError
    from velora_robot.runtime.deploy import deploy

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "launch" / "spot_sim.yaml").read_text())
    data.update(policy=str(root / "models" / "spot_walk.onnx"), status=False,
                telemetry={"path": str(tmp_path / "run.tlm"), "plot": False},
                estop={"keys": False, "file": None, "signal": None})
    launch = tmp_path / "spot.yaml"
    launch.write_text(json.dumps(data))
    with open(os.devnull, "w") as quiet:
        deploy(launch, duration_s=1.0, out=quiet)
    header, rows = telemetry.read(tmp_path / "run.tlm")
    assert header["command"] == {"vx": 0.5, "vy": 0.0, "yaw_rate": 0.0}
    vx = rows[:, header["columns"].index("sim/base_vx")]
    assert np.isfinite(vx).all() and np.abs(vx).max() < 2.0
    out = telemetry.plot(tmp_path / "run.tlm", tmp_path / "p.png", joints=["fl_hip", "11"])
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="no joint 'knee'; its joints are fl_hip"):
        telemetry.plot(tmp_path / "run.tlm", tmp_path / "p.png", joints=["knee"])
