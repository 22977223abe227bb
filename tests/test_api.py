"""The Python API (velora_robot.api) in Stable-Baselines3's habit, gymnasium ids on
`import velora_robot`, user envs by import path, and the examples folder."""

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import velora_robot.api
from velora_robot import PPO, SAC
from velora_robot.errors import ConfigError
from velora_robot.rl import Recipe
from velora_robot.runtime import load_policy

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_envs": 4, "n_neurons": 8, "steps_per_env": 16, "verbose": 0}


def test_the_api_docstring_example_runs(tmp_path):
    result = doctest.testmod(velora_robot.api, extraglobs={"tmp": tmp_path, "np": np})
    assert result.attempted >= 4 and result.failed == 0


def test_learn_continues_save_load_predict_and_export_agree(tmp_path):
    model = PPO("velora_robot/JointTrack-v0", "liquid", run_dir=tmp_path / "jt", seed=3,
                env_kwargs={"episode_s": 1.0}, **TINY)
    model.learn(64)
    assert model.num_timesteps == 64
    model.learn(64)  # continues the same run
    assert model.num_timesteps == 128
    saved = model.save(tmp_path / "jt.pt")
    obs = np.array([0.1, -0.2, 0.3, 0.0, 0.5], np.float32)
    a1, h1 = model.predict(obs)
    a2, _ = model.predict(obs, h1, episode_start=False)
    loaded = PPO.load(saved, run_dir=tmp_path / "again", verbose=0)
    assert loaded.num_timesteps == 128
    np.testing.assert_allclose(loaded.predict(obs)[0], a1, atol=1e-6)
    policy = load_policy(loaded.export(tmp_path / "jt.onnx"))
    np.testing.assert_allclose(policy(obs), a1, atol=1e-5)  # the same state runs on
    np.testing.assert_allclose(policy(obs), a2, atol=1e-5)
    batch, states = model.predict(np.stack([obs, obs]))
    assert batch.shape == (2, 1) and states.shape[0] == 2
    loaded.learn(64)  # training continues from the saved checkpoint
    assert loaded.num_timesteps == 192


def test_predict_acts_in_the_env_action_bounds_and_can_explore(tmp_path):
    model = SAC("Pendulum-v1", "liquid", run_dir=tmp_path / "p", n_envs=2, n_neurons=8,
                steps_per_iteration=8, learning_starts=16, batch_size=8, verbose=0)
    model.learn(32)
    obs = np.array([1.0, 0.0, 0.0], np.float32)
    deterministic = [model.predict(obs)[0] for _ in range(3)]
    sampled = [model.predict(obs, deterministic=False)[0] for _ in range(20)]
    assert all((np.abs(a) <= 2.0).all() for a in deterministic + sampled)
    assert len({float(a[0]) for a in deterministic}) == 1
    assert len({float(a[0]) for a in sampled}) > 1


def test_api_arguments_map_one_to_one_onto_a_recipe_and_bad_ones_name_the_field(tmp_path):
    model = PPO("Pendulum-v1", "mlp", run_dir=tmp_path / "r", hidden=[32, 32], lr=1e-3,
                gamma=0.97, verbose=0)
    assert isinstance(model.recipe, Recipe)
    assert model.recipe.policy.hidden == [32, 32] and model.recipe.algorithm.gamma == 0.97
    with pytest.raises(ConfigError, match=r"algorithm.*gama"):
        PPO("Pendulum-v1", gama=0.9)
    with pytest.raises(ConfigError, match="unknown environment 'Pendulm-v1'"):
        PPO("Pendulm-v1")
    with pytest.raises(ConfigError, match="call learn"):
        PPO("Pendulum-v1", run_dir=tmp_path / "none", verbose=0).predict(np.zeros(3))
    recipe = ROOT / "launch" / "pendulum_ppo.yaml"
    assert PPO.from_recipe(recipe).recipe.env.id == "InvertedPendulum-v5"
    with pytest.raises(ConfigError, match=r"SAC\.from_recipe"):
        PPO.from_recipe(ROOT / "launch" / "pendulum_sac.yaml")


def test_importing_velora_robot_registers_the_ids_without_importing_gymnasium():
    code = ("import sys, velora_robot; assert 'gymnasium' not in sys.modules; "
            "assert 'torch' not in sys.modules; import gymnasium as gym; "
            "print(gym.make('velora_robot/JointTrack-v0').observation_space.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "(5,)"


def test_a_user_env_by_import_path_trains_and_a_bad_one_is_named(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    model = PPO("tests.user_envs:Reach1D-v0", "liquid", run_dir=tmp_path / "u", **TINY)
    model.learn(128)
    assert model.predict(np.array([1.0], np.float32))[0].shape == (1,)
    with pytest.raises(ConfigError, match="cannot import 'no_such_pkg'"):
        PPO("no_such_pkg:Reach1D-v0")
    with pytest.raises(ConfigError, match=r"importing 'tests\.user_envs' did not register"):
        PPO("tests.user_envs:Reach2D-v0")
    with pytest.raises(ValueError, match=r"n_workers 2: Pendulum-v1 is a gymnasium env"):
        Recipe.model_validate({"name": "p", "env": {"id": "Pendulum-v1", "n_workers": 2},
                               "budget": {"env_steps": 10}})


def test_the_pendulum_example_trains_exports_and_runs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "train_pendulum.py"), "256"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "return of one episode with the exported policy" in out.stdout
    assert (tmp_path / "out" / "pendulum.onnx.json").is_file()


def test_an_exported_onnx_file_carries_its_model_card_inside(tmp_path):
    model = PPO("velora_robot/JointTrack-v0", "liquid", run_dir=tmp_path / "m", **TINY)
    model.learn(64)
    path = model.export(tmp_path / "jt.onnx")
    beside = (tmp_path / "jt.onnx.json").read_text()
    import onnx

    inside = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert inside["velora.model_card"] == beside
    (tmp_path / "jt.onnx.json").unlink()  # the file alone still runs, card and all
    policy = load_policy(path)
    assert policy.card.io.obs_dim == 5 and policy(np.zeros(5, np.float32)).shape == (1,)


def test_load_never_overwrites_another_runs_checkpoint(tmp_path):
    model = PPO("velora_robot/JointTrack-v0", "liquid", run_dir=tmp_path / "a", **TINY)
    model.learn(64)
    first = model.save(tmp_path / "first.pt")
    again = PPO.load(first, verbose=0)  # learns on in first_run/, beside the file
    assert again.run_dir == tmp_path / "first_run"
    model.learn(64)
    second = model.save(tmp_path / "second.pt")
    with pytest.raises(ConfigError, match="holds another run's checkpoint"):
        PPO.load(second, run_dir=tmp_path / "first_run")
