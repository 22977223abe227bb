"""Deploy launch files and `velora-robot run`: the whole robot side from one file, the
simulated fallback, e-stop inputs, and refusals with clear messages."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from velora_robot.config import is_recipe
from velora_robot.envs import SpotWalkTask
from velora_robot.errors import ConfigError
from velora_robot.export import export
from velora_robot.hal import MockHardware
from velora_robot.hal.base import HardwareError
from velora_robot.robots import get_spec
from velora_robot.runtime import Controller, ControlLoop, EStop, Fault, Mode, Safety
from velora_robot.runtime.deploy import deploy
from velora_robot.runtime.launch import load_launch
from velora_robot.runtime.safety import SafetyConfig
from velora_robot.runtime.telemetry import read

from .helpers import tiny_joint_track_run

SPOT = get_spec("spot")
SPOT_WALK = SpotWalkTask.policy_interface()

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """A one-joint policy (two PPO updates) exported to ONNX with its card."""
    ckpt = tiny_joint_track_run(tmp_path_factory.mktemp("launch"), seed=0, neurons_per_dof=1,
                                eval_episodes=0)
    return export(ckpt, "onnx")["policy"]


def write_launch(tmp_path, policy_file, **changes):
    data = {"name": "test_run", "robot": "one_joint", "policy": str(policy_file),
            "command": {"target_pos": 0.3},
            "hardware": {"backend": "mujoco"},
            "loop": {"command_hz": 250, "policy_hz": 50, "duration_s": 1.0},
            "safety": {"ramp_s": 0.2, "min_upright": -1.0},
            "estop": {"keys": False, "file": str(tmp_path / "estop"), "signal": None},
            "telemetry": {"path": str(tmp_path / "{name}.tlm"), "plot": False},
            "status": False}
    for key, value in changes.items():
        if isinstance(value, dict) and key != "command":
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    path = tmp_path / "launch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_file_in_launch_is_a_valid_recipe_or_deploy_launch_file():
    from velora_robot.rl import load_recipe

    deploys = set()
    for path in sorted((ROOT / "launch").glob("*.yaml")):
        if is_recipe(yaml.safe_load(path.read_text())):
            assert load_recipe(path).name == path.stem
        else:
            launch = load_launch(path)
            assert Path(launch.policy).parent == ROOT / "models"
            deploys.add(path.stem)
    assert {"spot_sim", "g1_sim", "one_joint_sim", "spot_serial"} <= deploys


def test_a_launch_file_runs_policy_hardware_loop_and_telemetry(policy, tmp_path, capsys):
    summary = deploy(write_launch(tmp_path, policy))
    # 1 s at 250 Hz (the loop's clock paces the simulation); ramp, then policy.
    assert 240 <= summary["cycles"] <= 252
    assert summary["final_mode"] == "policy" and summary["fault"] is None
    assert summary["fallback"] is None
    _, data = read(summary["telemetry"])
    assert len(data) == summary["cycles"] == summary["telemetry_records"]
    out = capsys.readouterr().out
    assert "test_run: one_joint" in out and "final mode policy" in out


def test_an_absent_device_falls_back_to_the_simulated_robot_loudly(policy, tmp_path, capsys):
    hardware = {"backend": "serial", "port": str(tmp_path / "ttyNOPE"), "fallback": "sim"}
    summary = deploy(write_launch(tmp_path, policy, hardware=hardware,
                                  loop={"duration_s": 0.2}))
    assert "RUNNING THE SIMULATED ROBOT INSTEAD" in summary["fallback"]
    assert summary["final_mode"] in ("ramp", "policy")
    captured = capsys.readouterr()
    assert "!!! serial device" in captured.err and "WARNING" in captured.out


def test_a_duration_that_is_not_positive_is_refused_before_anything_runs(policy, tmp_path):
    path = write_launch(tmp_path, policy)
    for seconds in (0.0, -1.0):  # 0 once meant "the launch file's duration"
        with pytest.raises(ConfigError, match=f"duration {seconds} s: a finite number"):
            deploy(path, duration_s=seconds)


def test_an_absent_device_without_fallback_stops_with_the_reason(policy, tmp_path):
    hardware = {"backend": "serial", "port": str(tmp_path / "ttyNOPE")}
    with pytest.raises(HardwareError, match=r"ttyNOPE is not present.*fallback: sim"):
        deploy(write_launch(tmp_path, policy, hardware=hardware))


@pytest.mark.parametrize("changes,message", [
    ({"hardwear": {}}, "field 'hardwear': unknown field"),
    ({"loop": {"comand_hz": 50}}, "field 'loop.comand_hz': unknown field"),
    ({"robot": "r2d2"}, "unknown robot 'r2d2'"),
])
def test_a_bad_launch_file_names_the_file_and_field(policy, tmp_path, changes, message):
    path = write_launch(tmp_path, policy, **changes)
    with pytest.raises(ConfigError, match=message) as err:
        load_launch(path)
    assert str(path) in str(err.value)


def test_a_command_the_policy_does_not_take_is_refused_before_anything_runs(policy, tmp_path):
    # the commands are the policy's own (its card's interface), checked once it is loaded
    path = write_launch(tmp_path, policy, command={"vx": 1.0})
    with pytest.raises(ConfigError, match=r"launch.yaml: field 'command': no command \['vx'\]; "
                                          r"the commands are \['target_pos', 'target_vel'\]"):
        deploy(path)


@pytest.mark.parametrize("name", ["joint_track.yaml", "spot_walk_1n.yaml"])  # the 2nd extends
def test_a_training_recipe_given_to_run_is_named_as_such(name):
    with pytest.raises(ConfigError, match="this is a training recipe"):
        load_launch(ROOT / "launch" / name)


@pytest.mark.parametrize("changes,message", [
    ({"loop": {"policy_hz": 100}}, "policy was trained at 50.0 Hz"),
    ({"loop": {"command_hz": 75}}, "whole multiple of the policy rate"),
    ({"robot": "spot", "command": {}}, "the policy drives 1 joints, robot 'spot' has 12"),
    ({"policy": "missing.onnx"}, "no policy file at"),
])
def test_a_policy_that_does_not_fit_the_robot_or_rates_is_refused(policy, tmp_path, changes,
                                                                   message):
    with pytest.raises(ConfigError, match=message):
        deploy(write_launch(tmp_path, policy, **changes))


def make_loop(estop, cycles_hz=200):
    hw = MockHardware(SPOT, period_s=1.0 / cycles_hz)
    safety = Safety(SPOT, SafetyConfig(ramp_s=0.02), dt_s=1.0 / cycles_hz)
    controller = Controller(hw, lambda obs: np.zeros(12), SPOT_WALK, np.zeros(3),
                            safety=safety)
    return ControlLoop(controller, cycles_hz, estop=estop), safety


def test_an_estop_file_trips_damping_in_the_next_cycle(tmp_path):
    flag = tmp_path / "estop"
    loop, safety = make_loop(EStop(keys=False, file=flag, signal_name=None))
    modes = []

    def on_cycle(cycle):
        modes.append(cycle.mode)
        if len(modes) == 20:
            flag.touch()

    loop.run(cycles=30, on_cycle=on_cycle)
    assert modes[19] is Mode.POLICY and all(m is Mode.DAMPING for m in modes[20:])
    assert safety.fault is Fault.ESTOP and "appeared" in safety.detail
    cmds = loop.controller.hardware.commands
    assert np.all(cmds[20].kp == 0) and np.all(cmds[20].kd > 0)


def test_an_estop_signal_trips_damping_and_a_stale_estop_file_refuses_the_start(tmp_path):
    loop, safety = make_loop(EStop(keys=False, file=None, signal_name="SIGUSR1"))
    modes = []

    def on_cycle(cycle):
        modes.append(cycle.mode)
        if len(modes) == 10:
            os.kill(os.getpid(), signal.SIGUSR1)

    loop.run(cycles=15, on_cycle=on_cycle)
    assert all(m is Mode.DAMPING for m in modes[10:]) and safety.fault is Fault.ESTOP
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # handler restored

    flag = tmp_path / "estop"
    flag.touch()
    loop, _ = make_loop(EStop(keys=False, file=flag, signal_name=None))
    with pytest.raises(ConfigError, match="exists before the start"):
        loop.run(cycles=5)
    assert loop.controller.hardware.lifecycle.value == "finalized"


def test_velora_robot_run_prints_a_status_line_and_a_summary(policy, tmp_path):
    path = write_launch(tmp_path, policy, status=True, loop={"duration_s": 6.0})
    run = subprocess.run([sys.executable, "-m", "velora_robot.cli", "run", str(path),
                          "--json", str(tmp_path / "summary.json")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "POLICY" in run.stderr and "late p99" in run.stderr  # status line (not a tty)
    assert "final mode policy" in run.stdout and (tmp_path / "summary.json").exists()


def test_run_takes_another_policy_than_the_launch_files(policy, tmp_path):
    # 0.5 s: past the 0.2-s ramp even when a loaded machine skips periods
    path = write_launch(tmp_path, tmp_path / "missing.onnx", loop={"duration_s": 0.5})
    with pytest.raises(ConfigError, match="no policy file at"):
        deploy(path)
    summary = deploy(path, policy=policy)  # `velora-robot run LAUNCH --policy FILE`
    assert summary["policy"] == str(policy) and summary["final_mode"] == "policy"


def test_run_warns_when_asked_beyond_the_envelope_the_card_was_verified_in(policy, tmp_path,
                                                                            capsys):
    from velora_robot.runtime.card import Trust, card_path, load_card

    summary = deploy(write_launch(tmp_path, policy, loop={"duration_s": 0.1}))
    assert summary["trust_warnings"] == [
        "its card carries no verified envelope (measure one with `velora-robot explain "
        "POLICY --write-card`)"]
    verified = tmp_path / "verified.onnx"
    verified.write_bytes(Path(policy).read_bytes())
    card = load_card(card_path(policy))
    card.trust = Trust(verified_by="a test", error_limit=0.1,
                       axes={"latency_s": (0.0, 0.04), "obs_noise_scale": (0.0, 2.0)},
                       commands={"target_pos": (-0.5, 0.5)}, conditions=[])
    card_path(verified).write_text(card.to_json())
    inside = {"enabled": True, "latency_s": (0.0, 0.02), "obs_noise_scale": 1.0}
    summary = deploy(write_launch(tmp_path, verified, loop={"duration_s": 0.1},
                                  hardware={"sim": {"randomization": inside}}))
    assert summary["trust_warnings"] == []
    beyond = {"enabled": True, "latency_s": (0.0, 0.06), "obs_noise_scale": 1.0}
    summary = deploy(write_launch(tmp_path, verified, loop={"duration_s": 0.1},
                                  command={"target_pos": 0.8},
                                  hardware={"sim": {"randomization": beyond}}))
    assert summary["trust_warnings"] == [
        "command target_pos 0.8 is outside the verified -0.5..0.5",
        "simulated latency_s 0..0.06 reaches outside the verified 0..0.04"]
    assert "WARNING, outside what this policy was verified in: command target_pos" in \
        capsys.readouterr().out


def test_a_backend_named_by_import_path_runs_the_readme_example(policy, tmp_path,
                                                                monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    path = write_launch(tmp_path, policy, hardware={
        "backend": "custom_backend:LaggedJoints", "options": {"lag_s": 0.01}})
    summary = deploy(path, status=False)
    assert summary["hardware"] == "custom_backend:LaggedJoints"
    assert summary["final_mode"] == "policy" and summary["torque_off"] == "off"
    _, rows = read(tmp_path / "test_run.tlm")
    assert abs(rows[-1, 4] - rows[0, 4]) > 1e-3  # the joint followed the policy


@pytest.mark.parametrize("backend, message", [
    ("no_such_module_xyz:Hw", "cannot import 'no_such_module_xyz'"),
    ("velora_robot.hal:NoSuchClass", "has no 'NoSuchClass'"),
    ("velora_robot.robots:RobotSpec", "not a subclass of velora_robot.hal.Hardware"),
    ("a backend", "unknown backend 'a backend'"),
])
def test_a_plugin_backend_that_cannot_load_says_which_and_why(policy, tmp_path, backend,
                                                              message):
    with pytest.raises((ConfigError, ValueError), match=message):
        deploy(write_launch(tmp_path, policy, hardware={"backend": backend}), status=False)


def test_a_robot_named_by_its_spec_file_is_read_relative_to_the_launch_file(policy,
                                                                              tmp_path):
    folder = tmp_path / "myrobot"
    folder.mkdir()
    (folder / "robot.yaml").write_text(
        (ROOT / "velora_robot/robots/one_joint/robot.yaml").read_text())
    path = write_launch(tmp_path, policy, robot="myrobot/robot.yaml")
    assert deploy(path, status=False)["final_mode"] == "policy"
    (folder / "robot.yaml").write_text("name: [broken")
    with pytest.raises(ConfigError, match=r"robot\.yaml"):
        deploy(path, status=False)


def test_a_walk_reports_how_far_the_base_went_start_to_end_and_along_its_path(tmp_path,
                                                                            capsys):
    data = yaml.safe_load((ROOT / "launch/g1_sim.yaml").read_text())
    data.update(policy=str(ROOT / "models/g1_walk.onnx"), telemetry={"path": None},
                estop={"keys": False, "file": str(tmp_path / "estop"), "signal": None})
    (tmp_path / "g1.yaml").write_text(yaml.safe_dump(data))
    summary = deploy(tmp_path / "g1.yaml", duration_s=3.0)
    assert summary["final_mode"] == "policy", summary
    # The shipped G1 asked for 0.5 m/s for 3 s; its pelvis sways, which the path's
    # one-second samples average out, so the path is at least the displacement and not
    # much more (it walks nearly straight).
    assert summary["distance_m"] > 0.2
    assert summary["distance_m"] - 1e-9 <= summary["path_m"] <= 1.3 * summary["distance_m"]
    assert f"along a path of {summary['path_m']:.2f} m" in capsys.readouterr().out


def test_the_base_path_averages_out_sway_and_counts_a_curve_in_full():
    from velora_robot.simulation.path import BasePath

    straight, arc = BasePath(1.0), BasePath(1.0)
    for k in range(1001):  # 10 s at 100 Hz
        t = k / 100
        # 0.5 m/s forward with 3 cm of sideways sway at 1.25 Hz (two steps in 0.8 s)
        straight.add(t, 0.5 * t, 0.03 * np.sin(2 * np.pi * 1.25 * t))
        # a quarter circle of radius 4 m walked in the same 10 s
        angle = np.pi / 2 * t / 10
        arc.add(t, 4 * np.sin(angle), 4 * (1 - np.cos(angle)))
    assert straight.length_m == pytest.approx(5.0, abs=0.01)  # sway gone (sampled each 1 s)
    assert arc.length_m == pytest.approx(2 * np.pi, rel=0.002)  # the arc, 6.28 m
    assert np.hypot(4, 4) < 0.91 * arc.length_m  # where start to end says 5.66 m
    with pytest.raises(ValueError, match="interval_s"):
        BasePath(0.0)
