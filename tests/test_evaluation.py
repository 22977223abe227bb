"""`velora-robot eval`: an exported policy in its training env, with and without
randomization, over seeded episodes."""

import json
from pathlib import Path

import numpy as np
import pytest

from velora_robot.cli import main
from velora_robot.errors import ConfigError
from velora_robot.evaluation import compare, evaluate, fall_shove, per_period_error, table
from velora_robot.export import export

from .helpers import tiny_joint_track_run


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    ckpt = tiny_joint_track_run(tmp_path_factory.mktemp("eval"), seed=0, neurons_per_dof=1,
                                eval_episodes=0)
    return export(ckpt, "onnx")["policy"]


def test_eval_reports_return_length_falls_and_tracking_error_per_setting(policy, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["eval", str(policy), "--episodes", "2", "--json", str(out)]) == 0
    on, off = json.loads(out.read_text())["results"]
    assert (on["randomization"], off["randomization"]) == (True, False)
    for r in (on, off):
        assert r["episodes"] == 2 and r["falls"] == 0 and r["length_s_mean"] == 10.0
        assert r["tracking_error_mean"] > 0 and "return_mean" in r


def test_baseline_comparison_reports_tracking_reward_and_parameter_ratios(policy, tmp_path,
                                                                         capsys):
    other = export(tiny_joint_track_run(tmp_path, seed=1, neurons_per_dof=2, eval_episodes=0),
                   "onnx")["policy"]
    out = tmp_path / "cmp.json"
    assert main(["eval", str(policy), "--baseline", str(other), "--episodes", "2",
                 "--randomization", "off", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (mine,), (base,), (cmp,) = data["results"], data["baseline"], data["comparison"]
    assert mine["tracking_reward_mean"] > 0 and base["tracking_reward_mean"] > 0
    assert cmp["tracking_reward_ratio"] == pytest.approx(
        mine["tracking_reward_mean"] / base["tracking_reward_mean"])
    assert cmp["parameter_ratio"] == pytest.approx(
        mine["trainable_parameters"] / base["trainable_parameters"])
    assert mine["trainable_parameters"] != base["trainable_parameters"]
    assert "of the baseline's" in capsys.readouterr().out
    same = evaluate(policy, episodes=1, randomize=False)
    assert compare(same, same)["tracking_reward_ratio"] == 1.0
    with pytest.raises(ConfigError, match="randomization differs"):
        compare(same, evaluate(policy, episodes=1, randomize=True))


def test_a_baseline_of_another_env_is_refused_before_any_episode_runs(policy, tmp_path,
                                                                      capsys):
    other = tmp_path / "other.onnx"
    other.write_bytes(policy.read_bytes())
    card = json.loads(Path(str(policy) + ".json").read_text())
    card["training"]["env"] = "velora_robot/SpotWalk-v0"
    Path(str(other) + ".json").write_text(json.dumps(card))
    assert main(["eval", str(policy), "--baseline", str(other), "--episodes", "2"]) == 2
    captured = capsys.readouterr()
    assert f"velora-robot eval: error: --baseline {other}: trained on " \
           "'velora_robot/SpotWalk-v0'" in captured.err
    assert captured.out == ""  # refused before the first episode, not after them all


def test_randomization_on_draws_the_standard_ranges_whatever_the_model_trained_with(policy,
                                                                                   tmp_path):
    # A curriculum stage trained with narrow ranges is measured on the standard ones;
    # "trained" asks for the card's own.
    from velora_robot.evaluation import _env
    from velora_robot.runtime import load_policy

    card = load_policy(policy).card
    card.training.env_kwargs = {"randomization": {"enabled": True, "friction": [0.9, 0.9]}}
    for randomize, ranges, friction in ((True, "standard", (0.4, 1.0)),
                                        (True, "trained", (0.9, 0.9)),
                                        (False, "standard", (0.4, 1.0))):
        config = _env(card, randomize, None, ranges).unwrapped.task.config.randomization
        assert (config.enabled, tuple(config.friction)) == (randomize, friction)
    with pytest.raises(ConfigError, match="'standard', 'core' or 'trained'"):
        evaluate(policy, episodes=1, ranges="narrow")
    standard = evaluate(policy, episodes=1)
    assert standard["ranges"] == "standard"
    with pytest.raises(ConfigError, match="ranges differs"):
        compare(standard, evaluate(policy, episodes=1, ranges="trained"))
    out = tmp_path / "trained.json"
    assert main(["eval", str(policy), "--episodes", "1", "--randomization", "trained",
                 "--json", str(out)]) == 0
    assert [r["ranges"] for r in json.loads(out.read_text())["results"]] == ["trained"]


def test_core_randomization_keeps_friction_mass_latency_and_pushes_only(policy, tmp_path):
    # The parts issue 7 names; payload, CoM shift, actuator scaling and sensor noise nominal.
    from velora_robot.evaluation import _env
    from velora_robot.runtime import load_policy
    from velora_robot.simulation.randomization import Randomization

    config = _env(load_policy(policy).card, True, None, "core").unwrapped.task.config
    r, standard = config.randomization, Randomization()
    for name in ("friction", "mass_scale", "latency_s", "push_velocity", "push_interval_s"):
        assert getattr(r, name) == getattr(standard, name), name
    assert (r.payload_kg, r.com_shift_m, r.obs_noise_scale) == ((0, 0), (0, 0), 0.0)
    assert r.motor_strength == r.kp_scale == r.kd_scale == (1, 1)
    out = tmp_path / "core.json"
    assert main(["eval", str(policy), "--episodes", "1", "--randomization", "core",
                 "--json", str(out)]) == 0
    [result] = json.loads(out.read_text())["results"]
    assert (result["randomization"], result["ranges"]) == (True, "core")


def test_eval_is_deterministic_for_a_seed(policy):
    a = evaluate(policy, episodes=1, seed=3, randomize=True)
    b = evaluate(policy, episodes=1, seed=3, randomize=True)
    assert a == b


def test_episodes_shared_among_worker_processes_give_the_same_figures(policy):
    spot = Path(__file__).resolve().parents[1] / "models/spot_walk.onnx"
    for path, episodes, command in ((policy, 3, None), (spot, 2, [0.0, 0.3, 0.0])):
        alone = evaluate(path, episodes=episodes, seed=5, command=command)
        shared = evaluate(path, episodes=episodes, seed=5, command=command, workers=2)
        assert shared == alone
    with pytest.raises(ConfigError, match="workers 0: at least 1"):
        evaluate(policy, episodes=2, workers=0)


def test_a_fixed_command_must_fit_the_robot(policy, capsys):
    # JointTrack follows its own reference trajectory: a fixed command is refused, not
    # silently ignored
    for command in ([0.5, 0.0, 0.0], [3.0, 0.0]):
        with pytest.raises(ConfigError, match="makes its own commands"):
            evaluate(policy, episodes=1, command=command)
    assert main(["eval", str(policy), "--command", "fast"]) == 2
    err = capsys.readouterr().err
    # the line names the subcommand (eval's --command option once took its place)
    assert err.startswith("velora-robot eval: error: --command 'fast': comma-separated")


def test_the_walking_criteria_pass_or_fail_each_condition_and_the_command_says_which(
        tmp_path, capsys, policy):
    out = tmp_path / "criteria.json"  # the shipped Spot: 0.08-0.09 m/s over 2 episodes
    spot = Path(__file__).resolve().parents[1] / "models/spot_walk.onnx"
    args = ["eval", str(spot), "--criteria", "--episodes", "1", "--json",
            str(out), "--max-yaw-rate-error", "1"]
    assert main([*args, "--max-velocity-error", "1"]) == 0
    rows = json.loads(out.read_text())["criteria"]
    assert [r["result"]["command"] for r in rows] == [[0.5, 0, 0], [0, 0.3, 0], [0, 0, 0.5],
                                                      None]
    assert [r["result"]["ranges"] for r in rows] == ["core"] * 3 + ["standard"]
    assert all(r["passed"] for r in rows)
    # the same walk held to 1 mm/s: every fixed command fails, the random ones still pass
    assert main([*args, "--max-velocity-error", "0.001"]) == 2
    rows = json.loads(out.read_text())["criteria"]
    assert [r["passed"] for r in rows] == [False, False, False, True]
    err = capsys.readouterr().err
    assert "the walking criteria are not met (forward 0.5 m/s, sideways 0.3 m/s, yaw 0.5" in err
    # and with the yaw rate held to 1 mrad/s per gait period (a later option wins)
    assert main([*args, "--max-velocity-error", "1", "--max-yaw-rate-error", "0.001"]) == 2
    rows = json.loads(out.read_text())["criteria"]
    assert [r["passed"] for r in rows] == [False, False, False, True]
    assert all(r["result"]["yaw_rate_error_gait_mean"] > 0.001 for r in rows)
    assert "yaw rate error <= 0.001 rad/s" in rows[2]["criterion"]
    capsys.readouterr()
    # against itself as the baseline: 100 % of its tracking reward passes 0.9, not 1.1
    assert main([*args, "--max-velocity-error", "1", "--baseline", str(spot)]) == 0
    assert json.loads(out.read_text())["comparison"]["tracking_reward_ratio"] == 1.0
    assert main([*args, "--max-velocity-error", "1", "--baseline", str(spot),
                 "--min-reward-ratio", "1.1"]) == 2
    assert "tracking reward below 110% of the baseline's" in capsys.readouterr().err
    assert main(["eval", str(policy), "--criteria"]) == 2  # JointTrack takes no velocity
    assert "the walking criteria command vx, vy and yaw_rate" in capsys.readouterr().err


def test_zero_episodes_is_a_clear_error(policy, capsys):
    assert main(["eval", str(policy), "--episodes", "0"]) == 2
    assert "velora-robot eval: error: --episodes 0: at least 1" in capsys.readouterr().err


def test_spot_locomotion_metrics_are_reported(tmp_path):
    from velora_robot.bench.deploy import _spot_policy

    path = _spot_policy(tmp_path)
    r = evaluate(path, episodes=1, randomize=False, command=[0.5, 0.0, 0.0])
    assert r["command"] == [0.5, 0.0, 0.0]
    for key in ("velocity_error_mean", "yaw_rate_error_mean", "forward_speed_mean",
                "energy_j_mean", "falls", "velocity_error_gait_mean"):
        assert key in r
    assert r["velocity_error_mean"] > 0 and r["energy_j_mean"] > 0
    assert "tracking_error_mean" not in r  # a walker's tracking error is its velocity error
    assert (r["falls_after_shove"], r["fall_shoves_mps"]) == (0, [])  # nothing shoved it
    assert "tracking error" not in table([r])
    # Averaging over each gait period can only remove the within-step part of the error.
    assert 0 <= r["velocity_error_gait_mean"] <= r["velocity_error_mean"] + 1e-9


def test_the_per_gait_period_error_ignores_sway_but_not_a_slow_pace():
    t = np.arange(200) * 0.02  # 4 s at 50 Hz; a 0.8 s gait period is 40 steps
    sway = 0.15 * np.sin(2 * np.pi * t / 0.8)
    command = np.tile([0.5, 0.0], (200, 1))
    on_pace = np.stack([0.5 + sway, sway], axis=1)
    assert np.mean(np.linalg.norm(command - on_pace, axis=1)) > 0.1  # per step
    assert per_period_error(on_pace, command, 40) < 1e-9
    slow = on_pace - [0.2, 0.0]
    assert per_period_error(slow, command, 40) == pytest.approx(0.2)
    assert per_period_error(slow[:10], command[:10], 40) > 0.1  # a short episode: one window
    # a yaw rate (one axis): a twist with every step is no error, a slow turn is
    yaw_command = np.full(200, 0.5)
    assert per_period_error(0.5 + 3 * sway, yaw_command, 40) < 1e-9
    assert per_period_error(0.3 + 3 * sway, yaw_command, 40) == pytest.approx(0.2)


def test_eval_works_for_other_gymnasium_envs_too(tmp_path):
    from velora_robot.rl import Recipe, train
    from velora_robot.rl.trainer import CHECKPOINT

    recipe = Recipe.model_validate({
        "name": "pend", "env": {"id": "InvertedPendulum-v5", "n_envs": 2, "n_workers": 1},
        "policy": {"kind": "liquid", "n_neurons": 6},
        "algorithm": {"steps_per_env": 16, "chunk_len": 8}, "budget": {"env_steps": 32},
        "logging": {"dir": str(tmp_path)}, "eval": {"episodes": 0}})
    train(recipe, progress=False)
    path = export(recipe.run_dir / CHECKPOINT, "onnx")["policy"]
    r = evaluate(path, episodes=2, randomize=False)
    assert r["env"] == "InvertedPendulum-v5" and r["return_mean"] > 0
    assert "velocity_error_mean" not in r and r["randomization"] is None


def test_random_commands_are_the_tasks_uniform_draws_whatever_the_model_zeroed():
    # A model trained with a share of zeroed (one-axis, standing) commands is measured on the
    # same random commands as one trained without: standing still is easier than walking.
    from velora_robot.evaluation import _env
    from velora_robot.runtime import load_policy

    spot = Path(__file__).resolve().parents[1] / "models" / "spot_walk.onnx"
    card = load_policy(spot).card
    card.training.env_kwargs = {**card.training.env_kwargs, "command_zero_prob": 0.5}
    assert _env(card, True, None).unwrapped.task.config.command_zero_prob == 0.0


def test_physics_runs_the_policy_on_other_contacts_than_it_trained_with(tmp_path):
    # A policy trained on cheap contacts is measured on the MJCF's own ones, and on the full
    # model where every geom collides (full fidelity).
    from velora_robot.evaluation import _env
    from velora_robot.runtime import load_policy

    spot = Path(__file__).resolve().parents[1] / "models" / "spot_walk.onnx"
    card = load_policy(spot).card
    card.training.env_kwargs = {**card.training.env_kwargs, "physics": {"cone": "pyramidal"}}
    for physics, cone, variant in (("trained", 0, "fast"), ("mjcf", 1, "fast"),
                                   ("full", 1, "full"), ("cheap", 0, "fast")):
        task = _env(card, False, None, physics=physics).unwrapped.task
        assert (task.batch.model.opt.cone, task.config.variant) == (cone, variant)
    with pytest.raises(ConfigError, match="physics 'soft'"):
        evaluate(spot, episodes=1, physics="soft")


def test_a_fall_soon_after_a_shove_is_put_down_to_the_shove():
    from velora_robot.envs import G1WalkTask

    # The G1 holding its default pose, shoved at (2.5, 3) m/s every 0.5 s, goes down.
    rand = {"enabled": True, "push_velocity": (2.5, 3.0), "push_interval_s": 0.5}
    task = G1WalkTask(1, randomization=rand)
    task.reset(0, seed=0)
    assert task.shove_step[0] == -1
    for _ in range(150):
        _, terminated, _, _ = task.step(np.zeros((1, task.spec.n_joints)))
        if terminated[0]:
            break
    assert terminated[0], "a 4 m/s shove should topple a standing G1"
    step = int(task.steps[0])
    assert 0 < task.shove_step[0] <= step and 2.5 * 2 ** 0.5 <= task.shove_mps[0] <= 4.25
    speed = fall_shove(True, step, int(task.shove_step[0]), float(task.shove_mps[0]),
                       task.dt)
    assert speed == task.shove_mps[0]
    task.reset(0)
    assert task.shove_step[0] == -1  # a new episode has not been shoved
    # Only a fall within SHOVE_FALL_S of the shove is the shove's.
    assert fall_shove(False, 100, 90, 1.2, 0.02) == 0.0
    assert fall_shove(True, 100, 90, 1.2, 0.02) == 1.2
    assert fall_shove(True, 400, 90, 1.2, 0.02) == 0.0
    assert fall_shove(True, 100, -1, 0.0, 0.02) == 0.0
    line = table([{"model": "g1.onnx", "env": "G1", "episodes": 50, "randomization": True,
                   "ranges": "core", "command": None, "return_mean": 1.0,
                   "length_s_mean": 19.0, "falls": 3, "falls_after_shove": 2,
                   "fall_shoves_mps": [0.94, 1.29]}])
    assert "falls 3 (2 within 3 s of a shove, 0.94-1.29 m/s)" in line  # seeds not known
    one = table([{"model": "g1.onnx", "env": "G1", "episodes": 50, "randomization": True,
                  "ranges": "core", "command": None, "return_mean": 1.0,
                  "length_s_mean": 19.0, "falls": 1, "falls_after_shove": 1,
                  "fall_shoves_mps": [1.29]}])
    assert "falls 1 (1 within 3 s of a shove, 1.29 m/s)" in one


def test_an_evaluation_names_the_seeds_that_fell_so_one_can_be_replayed(policy, monkeypatch):
    import velora_robot.evaluation as evaluation

    def every_third_falls(seeds, **_):
        return [{"return": 1.0, "length_s": 1.0, "fell": float(s % 3 == 0),
                 "action_change": 0.0} for s in seeds]

    monkeypatch.setattr(evaluation, "_episodes", every_third_falls)
    r = evaluate(policy, episodes=7, seed=10)
    assert (r["falls"], r["fall_seeds"]) == (2, [12, 15])
    assert "falls 2 (seeds 12, 15)" in table([r])
    many = evaluate(policy, episodes=30, seed=0)
    assert many["fall_seeds"] == list(range(0, 30, 3))
    assert "falls 10 (seeds 0, 3, 6, 9, 12, 15, 18, 21, ...)" in table([many])
    shoved = {**r, "fall_shoves_mps": [1.1], "falls_after_shove": 1}
    assert "falls 2 (seeds 12, 15; 1 within 3 s of a shove, 1.1" in table([shoved])


def test_an_evaluation_says_how_far_its_episodes_pin_the_fall_rate_down(policy, monkeypatch):
    import velora_robot.evaluation as evaluation
    from velora_robot.evaluation import wilson_interval

    # Textbook Wilson 95 % intervals: none in 50 still allows 7 %; 2 of 7 is 8-64 %.
    assert wilson_interval(0, 50) == (0.0, pytest.approx(0.0714, abs=1e-4))
    assert wilson_interval(2, 7) == (pytest.approx(0.0822, abs=1e-4),
                                     pytest.approx(0.6411, abs=1e-4))
    assert wilson_interval(50, 50)[1] == 1.0

    def every_third_falls(seeds, **_):
        return [{"return": 1.0, "length_s": 1.0, "fell": float(s % 3 == 0),
                 "action_change": 0.0} for s in seeds]

    monkeypatch.setattr(evaluation, "_episodes", every_third_falls)
    r = evaluate(policy, episodes=7, seed=10)
    assert r["fall_rate_ci95"] == pytest.approx([0.0822, 0.6411], abs=1e-4)
    assert "falls 2 (seeds 12, 15), fall rate 8-64 % (95 %)" in table([r])
    old = {k: v for k, v in r.items() if k != "fall_rate_ci95"}  # a result written earlier
    assert "fall rate" not in table([old])


def test_the_action_change_per_step_is_the_chatter_a_motor_feels(policy):
    from velora_robot.evaluation import _episodes
    from velora_robot.runtime import load_policy

    runner = load_policy(policy)

    class Alternating:  # +0.5, -0.5, ...: every step's action moves by 1.0
        card = runner.card

        def __init__(self, value):
            self.value, self.sign = value, 1.0

        def reset(self):
            self.sign = 1.0

        def __call__(self, obs):
            self.sign = -self.sign
            return np.full(runner.card.io.act_dim, self.sign * self.value)

    common = {"path": str(policy), "randomize": False, "command": None, "ranges": "standard",
              "physics": "trained"}
    assert _episodes([0], policy=Alternating(0.5), **common)[0]["action_change"] == \
        pytest.approx(1.0)
    # What reaches the joints is clipped to [-1, 1]: +-3 moves by 2, not 6.
    assert _episodes([0], policy=Alternating(3.0), **common)[0]["action_change"] == \
        pytest.approx(2.0)
    result = evaluate(policy, episodes=1, randomize=False)
    assert 0.0 < result["action_change_mean"] < 2.0
    assert f"action change {result['action_change_mean']:.3f} per step" in table([result])
