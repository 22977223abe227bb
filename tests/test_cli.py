"""The velora-robot command: benchmarks run and report; mistakes get one clear line."""

import json
import subprocess
import sys

from velora_robot.cli import main


def test_unknown_benchmark_is_a_clear_error(capsys):
    assert main(["bench", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'nope'" in err and "ltc" in err and "Traceback" not in err


def test_export_of_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("# not a checkpoint")
    other = tmp_path / "other.pt"
    import torch

    torch.save({"weights": torch.zeros(2)}, other)
    for path, why in ((text, "not a torch file"), (other, "not a checkpoint written by"),
                      (tmp_path / "none.pt", "no checkpoint at")):
        assert main(["export", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("velora-robot export: error: ") and why in err, err
        assert "Traceback" not in err


def test_bench_ltc_reports_every_case_against_ncps(tmp_path):
    out = tmp_path / "ltc.json"
    run = subprocess.run([sys.executable, "-m", "velora_robot.cli", "bench", "ltc", "--quick",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert [r["case"] for r in result["rows"]] == ["a", "b", "b48", "b96", "c"]
    for row in result["rows"]:
        for name in ("ncps 1.0.1", "ours (eager)", "ours (torch.compile)", "ours (C)",
                     "LSTM (same params)", "x ncps", "/ LSTM"):
            assert row[name] > 0
    assert result["model"] == {"neurons": 100, "motor": 24, "inputs": 48, "synapses": 304,
                               "sensory_synapses": 192, "ode_unfolds": 6}
    lstm = [v for k, v in result["parameters"].items() if k.startswith("LSTM")]
    assert 0.9 * result["parameters"]["ours (no residual head)"] < lstm[0] \
        <= result["parameters"]["ours (no residual head)"]
    assert "/ LSTM" in run.stdout


def test_the_demo_runs_a_shipped_controller_in_the_real_time_loop(tmp_path):
    run = subprocess.run([sys.executable, "-m", "velora_robot.cli", "demo", "--seconds", "1",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_mode"] in ("ramp", "policy") and summary["cycles"] >= 45
    assert summary["fault"] is None and "final mode" in run.stdout
    # the controller whose motor neurons drive the joints, and it says so
    assert summary["policy"].endswith("spot_walk_neurons_2n.onnx")
    assert "every action is its motor neurons' read-out (no linear bypass)" in run.stdout
    assert "fl_hip          0+ 1-" in run.stdout  # its neurons by the robot's joint names


def test_a_killed_training_run_stops_like_ctrl_c_and_keeps_its_checkpoint(tmp_path):
    import signal
    import subprocess
    import time

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: killed\nenv: {id: velora_robot/JointTrack-v0, n_envs: 4, n_workers: 2}\n"
        "policy: {kind: liquid, n_neurons: 6}\n"
        "algorithm: {steps_per_env: 32, chunk_len: 8, epochs: 1, minibatches: 1}\n"
        f"budget: {{env_steps: 100000000}}\nlogging: {{dir: {tmp_path}, checkpoint_every: 1}}\n"
        "eval: {episodes: 0}\n")
    proc = subprocess.Popen([sys.executable, "-m", "velora_robot.cli", "train", str(recipe)],
                            stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    assert checkpoint.exists()


def test_train_budget_overrides_the_recipe_and_extends_a_resumed_run(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: budget\nenv: {id: velora_robot/JointTrack-v0, n_envs: 4, n_workers: 1}\n"
        "policy: {kind: liquid, n_neurons: 6}\n"
        "algorithm: {steps_per_env: 32, chunk_len: 8, epochs: 1, minibatches: 1}\n"
        f"budget: {{env_steps: 100000000}}\nlogging: {{dir: {tmp_path}}}\n"
        "eval: {episodes: 0}\n")
    assert main(["train", str(recipe), "--quiet", "--budget", "256"]) == 0
    assert json.loads(capsys.readouterr().out)["env_steps"] == 256
    assert main(["train", str(recipe), "--quiet", "--budget", "0.384k", "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["env_steps"] == 384


def test_train_set_and_seed_change_recipe_fields_and_bad_ones_name_the_field(tmp_path,
                                                                            capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: sets\nenv: {id: velora_robot/JointTrack-v0, n_envs: 4, n_workers: 1}\n"
        "policy: {kind: liquid, n_neurons: 6}\n"
        "algorithm: {steps_per_env: 32, chunk_len: 8, epochs: 1, minibatches: 1}\n"
        f"budget: {{env_steps: 128}}\nlogging: {{dir: {tmp_path}}}\neval: {{episodes: 0}}\n")
    assert main(["train", str(recipe), "--quiet", "--set", "env.n_envs=2", "--set",
                 "algorithm.lr=5e-4", "--seed", "7"]) == 0
    ran = json.loads((tmp_path / "sets" / "recipe.json").read_text())
    assert (ran["env"]["n_envs"], ran["algorithm"]["lr"], ran["seed"]) == (2, 5e-4, 7)
    capsys.readouterr()
    assert main(["train", str(recipe), "--set", "algorithm.lrr=1"]) == 2
    assert "field 'algorithm.lrr': unknown field" in capsys.readouterr().err
    assert main(["train", str(recipe), "--set", "algorithm.lr"]) == 2
    assert "write it as field=value" in capsys.readouterr().err
