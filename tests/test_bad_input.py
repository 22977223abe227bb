"""Bad input to every subcommand, as an outside tester would give it: each case exits with
code 2 and one message that names the file or option and the field, never a traceback,
and nothing starts before the input is checked."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from velora_robot.cli import main

ROOT = Path(__file__).resolve().parents[1]
JOINT_TRACK = ROOT / "models" / "joint_track.onnx"

RECIPE = {"name": "bad", "env": {"id": "velora_robot/JointTrack-v0", "n_envs": 2,
                                 "n_workers": 1},
          "policy": {"n_neurons": 6}, "algorithm": {"steps_per_env": 16, "chunk_len": 8},
          "budget": {"env_steps": 64}, "eval": {"episodes": 0}}
LAUNCH = {"name": "bad", "robot": "one_joint", "policy": str(JOINT_TRACK),
          "hardware": {"backend": "mujoco"}, "loop": {"duration_s": 0.2},
          "safety": {"ramp_s": 0.1, "min_upright": -1.0},
          "estop": {"keys": False, "file": None, "signal": None},
          "telemetry": {"path": None}, "status": False}


def _merged(base: dict, changes: dict) -> dict:
    out = json.loads(json.dumps(base))
    for key, value in changes.items():
        section, _, field = key.partition(".")
        if field:
            out.setdefault(section, {})[field] = value
        else:
            out[key] = value
    return out


def _yaml(value: object) -> str:
    """JSON is YAML, except for the non-finite numbers YAML writes as .inf and .nan."""
    text = json.dumps(value)
    return text.replace("Infinity", ".inf").replace("NaN", ".nan")


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A folder of good and bad inputs; `{name}` in a case is its path."""
    monkeypatch.chdir(tmp_path)
    paths = {"tmp": tmp_path}
    (tmp_path / "a_file").write_text("not a folder")
    paths["under_a_file"] = tmp_path / "a_file" / "out.json"
    (tmp_path / "notes.txt").write_text("# just text\n")
    paths["text"] = tmp_path / "notes.txt"
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    paths["not_yaml"] = tmp_path / "bad.yaml"
    # policies with tampered model cards
    for name, edit in {
        "no_state": lambda c: c["io"]["inputs"].pop("state"),
        "two_joints": lambda c: (c["robot"]["joints"].append(
            {**c["robot"]["joints"][0], "name": "joint2"}),
            c["robot"]["sources"]["default"]["joints"].append("joint2")),
        "wrong_format": lambda c: c.update(format="velora-model-card/9"),
        "negative_obs": lambda c: c["io"]["inputs"].update(obs=[1, -3]),
        "unknown_term": lambda c: c["interface"]["observation"].append({"name": "lidar"}),
        "extra_command": lambda c: c["interface"]["commands"].append("vx"),
        "other_limits": lambda c: c["robot"]["joints"][0].update(pos_limit=[-1.0, 1.0]),
        "nan_params": lambda c: c["network"].update(trainable_parameters=float("nan")),
    }.items():
        policy = tmp_path / f"{name}.onnx"
        shutil.copy(JOINT_TRACK, policy)
        card = json.loads((ROOT / "models" / "joint_track.onnx.json").read_text())
        edit(card)
        Path(f"{policy}.json").write_text(json.dumps(card))
        paths[f"card_{name}"] = policy
    no_card = tmp_path / "no_card.onnx"
    shutil.copy(JOINT_TRACK, no_card)
    paths["no_card"] = no_card
    # telemetry files
    good_header = {"format": "velora-telemetry/1", "robot": "one_joint",
                   "columns": ["time_s", "lateness_us", "compute_us", "mode"], "modes": {}}
    for name, header in {"tlm_columns": {**good_header, "columns": "time_s"},
                         "tlm_robot": {k: v for k, v in good_header.items() if k != "robot"},
                         "tlm_no_mode": {**good_header, "columns": ["time_s"]}}.items():
        path = tmp_path / f"{name}.tlm"
        path.write_bytes((json.dumps(header) + "\n").encode() + bytes(64))
        paths[name] = path
    # checkpoints
    crafted = tmp_path / "crafted.pt"
    torch.save({"recipe": {}, "payload": _Runs()}, crafted)
    paths["crafted"] = crafted
    return paths


class _Runs:
    def __reduce__(self):
        return (print, ("ran code",))


def _recipe(files, changes, raw=None):
    path = files["tmp"] / "recipe.yaml"
    path.write_text(raw if raw is not None else _yaml(_merged(RECIPE, changes)))
    return path


def _launch(files, changes):
    path = files["tmp"] / "launch.yaml"
    path.write_text(_yaml(_merged(LAUNCH, changes)))
    return path


# (argv builder, what the message must contain)
CASES = {
    # ------------------------------------------------------------------------ train
    "train: no such recipe": (lambda f: ["train", "nope.yaml"], "nope.yaml: cannot read"),
    "train: not YAML": (lambda f: ["train", str(f["not_yaml"])], "not valid YAML"),
    "train: a policy file given as the recipe": (lambda f: ["train", str(JOINT_TRACK)],
                                                 "not a YAML text file"),
    "train: lr inf": (lambda f: ["train", str(_recipe(f, {"algorithm.lr": float("inf")}))],
                      "field 'algorithm.lr'"),
    "train: lr nan": (lambda f: ["train", str(_recipe(f, {"algorithm.lr": float("nan")}))],
                      "field 'algorithm.lr'"),
    "train: gamma above 1": (lambda f: ["train", str(_recipe(f, {"algorithm.gamma": 1.5}))],
                             "field 'algorithm.gamma'"),
    "train: no envs": (lambda f: ["train", str(_recipe(f, {"env.n_envs": 0}))],
                       "field 'env.n_envs'"),
    "train: unknown field": (lambda f: ["train", str(_recipe(f, {"epochz": 3}))],
                             "field 'epochz': unknown field"),
    "train: unknown env": (lambda f: ["train", str(_recipe(f, {"env.id": "Nope-v9"}))],
                           "unknown environment 'Nope-v9'"),
    "train: no budget": (lambda f: ["train", str(_recipe(f, {}, raw="name: a\nenv: {id: "
                                                              "velora_robot/JointTrack-v0}\n"))],
                         "field 'budget': Field required"),
    "train: negative budget": (lambda f: ["train", str(_recipe(f, {"budget.env_steps": -5}))],
                               "field 'budget.env_steps'"),
    "train: 3 neurons per dof": (lambda f: ["train", str(_recipe(
        f, {"policy.neurons_per_dof": 3}))], "field 'policy.neurons_per_dof'"),
    "train: extends a missing file": (lambda f: ["train", str(_recipe(
        f, {}, raw="extends: gone.yaml\nname: a\n"))], "field 'extends': no recipe at"),
    "train: name with a slash": (lambda f: ["train", str(_recipe(f, {"name": "a/b"}))],
                                 "field 'name'"),
    "train: latency of 2 s": (lambda f: ["train", str(_recipe(
        f, {"env.kwargs": {"randomization": {"latency_s": [0, 2]}}}))],
        "latency must be within 0..0.5 s"),
    "train: reward weight nan": (lambda f: ["train", str(_recipe(
        f, {"env.kwargs": {"reward_weights": {"tracking": float("nan")}}}))],
        "field 'reward_weights.tracking'"),
    "train: command ranges on JointTrack": (lambda f: ["train", str(_recipe(
        f, {"env.kwargs": {"command_ranges": {"target_pos": [0, 1]}}}))],
        "field 'command_ranges': JointTrackTask makes its own commands"),
    "train: zeroed commands on JointTrack": (lambda f: ["train", str(_recipe(
        f, {"env.kwargs": {"command_zero_prob": 0.5}}))],
        "field 'command_zero_prob': JointTrackTask makes its own commands"),
    "train: zero probability above 1": (lambda f: ["train", str(_recipe(
        f, {"env": {"id": "velora_robot/SpotWalk-v0",
                    "kwargs": {"command_zero_prob": 1.5}}}))], "command_zero_prob"),
    "train: absurd command range": (lambda f: ["train", str(_recipe(
        f, {"env": {"id": "velora_robot/SpotWalk-v0",
                    "kwargs": {"command_ranges": {"vx": [0, 1e308]}}}}))],
        "command_ranges.vx: 1e+308 is outside -10..10"),
    "train: resume and overwrite": (lambda f: ["train", str(_recipe(f, {})), "--resume",
                                               "--overwrite"], "give one of them"),
    "train: resume with nothing to resume": (lambda f: ["train", str(_recipe(f, {})),
                                                        "--resume"], "nothing to resume"),
    "train: init_from a missing checkpoint": (lambda f: ["train", str(_recipe(
        f, {"init_from": "gone.pt"}))], "field 'init_from': no checkpoint at gone.pt"),
    "train: init_from a crafted checkpoint": (lambda f: ["train", str(_recipe(
        f, {"init_from": str(f["crafted"])}))], "refused: it holds Python objects"),
    "train: a budget of 0": (lambda f: ["train", str(_recipe(f, {})), "--budget", "0"],
                             "--budget 0: a whole number of env steps above 0"),
    "train: a budget in words": (lambda f: ["train", str(_recipe(f, {})), "--budget", "lots"],
                                 "--budget lots: a whole number"),
    "train: a teacher file that is not there": (lambda f: ["train", str(_recipe(
        f, {"algorithm.teacher": "gone.onnx", "algorithm.teacher_until": 32}))],
        "field 'algorithm.teacher': no policy file at gone.onnx"),
    "train: a teacher of another robot": (lambda f: ["train", str(_recipe(
        f, {"algorithm.teacher": str(ROOT / "models" / "spot_walk.onnx"),
            "algorithm.teacher_until": 32}))], "maps 47 observations to 12 actions"),
    "train: an MLP teacher of another robot": (lambda f: ["train", str(_recipe(
        f, {"algorithm.teacher": str(ROOT / "models" / "spot_walk_mlp.onnx"),
            "algorithm.teacher_until": 32}))], "maps 47 observations to 12 actions"),
    "train: a checkpoint as the teacher": (lambda f: ["train", str(_recipe(
        f, {"algorithm.teacher": str(f["crafted"]),
            "algorithm.teacher_until": 32}))], "a TorchScript file is code"),
    "train: a teacher without teacher_until": (lambda f: ["train", str(_recipe(
        f, {"algorithm.teacher": str(JOINT_TRACK)}))], "a teacher needs teacher_until"),
    "train: run folder under a file": (lambda f: ["train", str(_recipe(
        f, {"logging.dir": str(f["tmp"] / "a_file")}))], "field 'logging.dir'"),
    # ----------------------------------------------------------------------- export
    "export: no such checkpoint": (lambda f: ["export", "gone.pt"], "no checkpoint at gone.pt"),
    "export: a text file": (lambda f: ["export", str(f["text"])], "not a torch file"),
    "export: a crafted checkpoint": (lambda f: ["export", str(f["crafted"])],
                                     "refused: it holds Python objects"),
    "export: --out under a file": (lambda f: ["export", str(f["crafted"]), "--out",
                                              str(f["under_a_file"])], "--out"),
    "export: unknown format": (lambda f: ["export", "x.pt", "--format", "tflite"],
                               "--format: invalid choice: 'tflite'"),
    # ------------------------------------------------------------------------- eval
    "eval: no such policy": (lambda f: ["eval", "gone.onnx"], "no policy file at gone.onnx"),
    "eval: no card": (lambda f: ["eval", str(f["no_card"])],
                      "no model card beside it (no_card.onnx.json) and none inside it"),
    "eval: --episodes 0": (lambda f: ["eval", str(JOINT_TRACK), "--episodes", "0"],
                           "--episodes 0: at least 1"),
    "eval: --episodes -3": (lambda f: ["eval", str(JOINT_TRACK), "--episodes", "-3"],
                            "--episodes -3: at least 1"),
    "eval: --workers 0": (lambda f: ["eval", str(JOINT_TRACK), "--workers", "0"],
                          "--workers 0: at least 1"),
    "eval: --command nan": (lambda f: ["eval", str(JOINT_TRACK), "--command", "nan,0"],
                            "--command 'nan,0': every value must be a finite number"),
    "eval: --command inf": (lambda f: ["eval", str(JOINT_TRACK), "--command", "inf,0"],
                            "--command 'inf,0': every value must be a finite number"),
    "eval: --command words": (lambda f: ["eval", str(JOINT_TRACK), "--command", "fast"],
                              "--command 'fast': comma-separated numbers"),
    "eval: --command on JointTrack": (lambda f: ["eval", str(JOINT_TRACK), "--command", "3,0"],
                                      "--command: velora_robot/JointTrack-v0 makes its own"),
    "eval: --command beyond any robot": (lambda f: ["eval", str(ROOT / "models" /
                                                                "spot_walk.onnx"),
                                                    "--command", "1e308,0,0"],
                                         "is outside -10..10"),
    "eval: --json under a file": (lambda f: ["eval", str(JOINT_TRACK), "--json",
                                             str(f["under_a_file"])], "--json"),
    "eval: card without io.state": (lambda f: ["eval", str(f["card_no_state"])],
                                    "field 'io.inputs.state': Field required"),
    "eval: card whose robot has 2 joints": (lambda f: ["eval", str(f["card_two_joints"])],
                                            "the policy drives 2 joints"),
    "eval: card of another format": (lambda f: ["eval", str(f["card_wrong_format"])],
                                     "field 'format'"),
    "eval: card with a negative size": (lambda f: ["eval", str(f["card_negative_obs"])],
                                        "field 'io': inputs.obs: size -3 must be at least 1"),
    "eval: card with NaN parameters": (lambda f: ["eval", str(f["card_nan_params"])],
                                       "field 'network.trainable_parameters'"),
    "eval: missing baseline": (lambda f: ["eval", str(JOINT_TRACK), "--baseline", "gone.onnx"],
                               "no policy file at gone.onnx"),
    "eval: unknown randomization": (lambda f: ["eval", str(JOINT_TRACK), "--randomization",
                                               "wild"], "--randomization: invalid choice"),
    # -------------------------------------------------------------------------- run
    "run: no such launch file": (lambda f: ["run", "gone.yaml"], "gone.yaml: cannot read"),
    "run: not YAML": (lambda f: ["run", str(f["not_yaml"])], "not valid YAML"),
    "run: a recipe": (lambda f: ["run", str(_recipe(f, {}))], "this is a training recipe"),
    "run: unknown robot": (lambda f: ["run", str(_launch(f, {"robot": "atlas"}))],
                           "field 'robot'"),
    "run: command 1e308": (lambda f: ["run", str(_launch(f, {"command": {"target_pos":
                                                                         1e308}}))],
                           "field 'command'.target_pos: 1e+308 is outside"),
    "run: command nan": (lambda f: ["run", str(_launch(f, {"command": {"target_pos":
                                                                       float("nan")}}))],
                         "field 'command.target_pos'"),
    "run: command_hz inf": (lambda f: ["run", str(_launch(f, {"loop.command_hz":
                                                              float("inf")}))],
                            "field 'loop.command_hz'"),
    "run: ramp_s inf": (lambda f: ["run", str(_launch(f, {"safety.ramp_s": float("inf")}))],
                        "field 'safety.ramp_s'"),
    "run: telemetry path with {nam}": (lambda f: ["run", str(_launch(
        f, {"telemetry.path": "out/{nam}.tlm"}))], "field 'telemetry.path'"),
    "run: telemetry path under a file": (lambda f: ["run", str(_launch(
        f, {"telemetry.path": str(f["under_a_file"])}))], "field 'telemetry.path'"),
    "run: e-stop signal SIGFOO": (lambda f: ["run", str(_launch(f, {"estop.signal": "SIGFOO"}))],
                                  "field 'estop.signal'"),
    "run: e-stop signal SIGKILL": (lambda f: ["run", str(_launch(
        f, {"estop.signal": "SIGKILL"}))], "field 'estop.signal'"),
    "run: e-stop file in a missing folder": (lambda f: ["run", str(_launch(
        f, {"estop.file": "/no/such/folder/estop"}))], "its folder does not exist"),
    "run: missing policy": (lambda f: ["run", str(_launch(f, {"policy": "gone.onnx"}))],
                            "field 'policy': no policy file"),
    "run: --duration 0": (lambda f: ["run", str(_launch(f, {})), "--duration", "0"],
                          "a finite number of seconds above 0"),
    "run: --duration nan": (lambda f: ["run", str(_launch(f, {})), "--duration", "nan"],
                            "a finite number of seconds above 0"),
    "run: --json under a file": (lambda f: ["run", str(_launch(f, {})), "--json",
                                            str(f["under_a_file"])], "--json"),
    "run: another policy rate": (lambda f: ["run", str(_launch(f, {"loop.policy_hz": 100}))],
                                 "field 'loop.policy_hz'"),
    "run: baud 0": (lambda f: ["run", str(_launch(f, {"hardware.baud": 0}))],
                    "field 'hardware.baud'"),
    "run: serial without a port": (lambda f: ["run", str(_launch(
        f, {"hardware": {"backend": "serial"}}))], "needs field 'port'"),
    "run: simulated latency of 3 s": (lambda f: ["run", str(_launch(
        f, {"hardware": {"backend": "mujoco", "sim": {"randomization": {
            "enabled": True, "latency_s": [0, 3]}}}}))],
        "launch.yaml: hardware.sim.randomization: latency_s (0.0, 3.0)"),
    "run: unknown field": (lambda f: ["run", str(_launch(f, {"speed": 3}))],
                           "field 'speed': unknown field"),
    "run: card observing an unknown term": (lambda f: ["run", str(_launch(
        f, {"policy": str(f["card_unknown_term"])}))],
        "field 'interface.observation.4.name': unknown observation term 'lidar'"),
    "run: card whose interface does not give its input size": (lambda f: ["run", str(_launch(
        f, {"policy": str(f["card_extra_command"])}))],
        "the policy takes 5 observations and gives 1 actions; its interface on robot "
        "'one_joint' gives 6"),
    "run: card with other position limits": (lambda f: ["run", str(_launch(
        f, {"policy": str(f["card_other_limits"])}))], "pos_limit"),
    "run: card without io.state": (lambda f: ["run", str(_launch(
        f, {"policy": str(f["card_no_state"])}))], "field 'io.inputs.state'"),
    # -------------------------------------------------------------------------- hil
    "hil: --baud 0": (lambda f: ["hil", "--emulate", "--baud", "0"], "--baud 0"),
    "hil: --baud -5": (lambda f: ["hil", "--emulate", "--baud", "-5"], "--baud -5"),
    "hil: unknown robot": (lambda f: ["hil", "--emulate", "--robot", "atlas"],
                           "unknown robot 'atlas'"),
    "hil: neither port nor emulator": (lambda f: ["hil"], "give --port PORT"),
    "hil: --report under a file": (lambda f: ["hil", "--emulate", "--report",
                                              str(f["under_a_file"])], "--report"),
    # ------------------------------------------------------------------------- plot
    "plot: no such file": (lambda f: ["plot", "gone.tlm"], "no telemetry file at gone.tlm"),
    "plot: not telemetry": (lambda f: ["plot", str(f["text"])], "not a velora telemetry file"),
    "plot: columns not a list": (lambda f: ["plot", str(f["tlm_columns"])],
                                 "header: field 'columns'"),
    "plot: header without robot": (lambda f: ["plot", str(f["tlm_robot"])],
                                   "header: field 'robot'"),
    "plot: header without mode": (lambda f: ["plot", str(f["tlm_no_mode"])],
                                  "header: field 'columns'"),
    "plot: --out under a file": (lambda f: ["plot", str(f["tlm_columns"]), "--out",
                                            str(f["under_a_file"])], "--out"),
    # -------------------------------------------------------------- bench, convert, demo
    "bench: unknown": (lambda f: ["bench", "nope"], "unknown benchmark 'nope'"),
    "bench: --json under a file": (lambda f: ["bench", "ltc", "--json", str(f["under_a_file"])],
                                   "--json"),
    "bench: --recipe on ltc": (lambda f: ["bench", "ltc", "--recipe", "launch/joint_track.yaml"],
                               "--recipe is for `bench walk`"),
    "bench: imitation without a teacher": (lambda f: ["bench", "imitation", "--recipe",
                                                     str(ROOT / "launch/joint_track.yaml")],
                                            "field 'algorithm.teacher'"),
    "bench: walk --recipe missing": (lambda f: ["bench", "walk", "--recipe", "gone.yaml"],
                                     "gone.yaml"),
    "explain: --seconds nan": (lambda f: ["explain", str(JOINT_TRACK), "--seconds",
                                          "nan"], "--seconds nan"),
    "explain: --out under a file": (lambda f: ["explain", str(JOINT_TRACK), "--out",
                                               str(f["under_a_file"])], "--out"),
    "explain: a text file as the model": (lambda f: ["explain", str(f["text"])],
                                          "cannot read"),
    "convert-checkpoint: no such file": (lambda f: ["convert-checkpoint", "gone.pt"],
                                         "no checkpoint at gone.pt"),
    "convert-checkpoint: a text file": (lambda f: ["convert-checkpoint", str(f["text"])],
                                        "not a torch checkpoint"),
    "demo: --seconds 0": (lambda f: ["demo", "--seconds", "0"], "--seconds 0.0"),
    "demo: --seconds nan": (lambda f: ["demo", "--seconds", "nan"], "--seconds nan"),
    "demo: --out under a file": (lambda f: ["demo", "--out", str(f["under_a_file"])], "--out"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_a_message_naming_where(case, files, capsys):
    build, expected = CASES[case]
    try:
        code = main(build(files))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (case, out, err)
    assert expected in err, (case, err)
    assert "Traceback" not in err + out and "ran code" not in out
    first = err.splitlines()[0]
    assert first.startswith((f"velora-robot {build(files)[0]}: error: ", "usage: ")), err


def test_there_are_at_least_60_cases_across_every_subcommand():
    verbs = {name.split(":")[0] for name in CASES}
    assert len(CASES) >= 60
    assert verbs >= {"train", "export", "eval", "run", "hil", "plot", "bench",
                     "convert-checkpoint", "demo", "explain"}
