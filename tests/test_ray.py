"""Rollouts on Ray: local workers on this machine stand in for a cluster's."""

import json

import pytest
import torch

from velora_robot.errors import ConfigError
from velora_robot.rl import Recipe, train
from velora_robot.rl.trainer import CHECKPOINT, load_checkpoint

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def joint_track(tmp_path, name, **changes) -> Recipe:
    base = {
        "name": name, "seed": 5,
        "env": {"id": "velora_robot/JointTrack-v0", "n_envs": 8},
        "policy": {"kind": "liquid", "n_neurons": 8},
        "algorithm": {"steps_per_env": 64, "chunk_len": 16, "epochs": 4, "minibatches": 2,
                      "lr": 3e-3},
        "budget": {"env_steps": 8 * 64},
        "logging": {"dir": str(tmp_path), "checkpoint_every": 1},
        "eval": {"episodes": 0},
    }
    base.update(changes)
    return Recipe.model_validate(base)


def test_one_ray_worker_makes_the_single_process_first_update(tmp_path):
    # The single process that collects with its own generator (overlap) and one Ray worker
    # collect the same rollout; the learner's update on it is then the same.
    alone = joint_track(tmp_path, "alone", algorithm={
        **joint_track(tmp_path, "x").algorithm.model_dump(), "overlap": True})
    train(alone, progress=False)
    on_ray = joint_track(tmp_path, "on_ray", cluster={"workers": 1})
    train(on_ray, progress=False)
    expected = load_checkpoint(alone.run_dir / CHECKPOINT)["agent"]
    got = load_checkpoint(on_ray.run_dir / CHECKPOINT)["agent"]
    for key, value in expected.items():
        if "norm" in key:  # merged from counts and sums: equal to rounding
            torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(got[key], value), key


def test_two_ray_workers_train_joint_track_and_resume_exactly(tmp_path):
    two = {"cluster": {"workers": 2}, "budget": {"env_steps": 8 * 64 * 12},
           # 1-s episodes: a return every update
           "env": {"id": "velora_robot/JointTrack-v0", "n_envs": 8,
                   "kwargs": {"episode_s": 1.0}}}
    r = joint_track(tmp_path, "two", **two)
    train(r, progress=False, stop_after=10)
    train(r, resume=True, progress=False)
    rows = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    returns = [row["return_mean"] for row in rows]
    assert len(rows) == 12
    assert returns[-1] > returns[0] + 0.3 * abs(returns[0])  # -0.95 -> -0.57 when written

    straight = joint_track(tmp_path / "b", "two", **two)
    train(straight, progress=False)
    for key, value in load_checkpoint(straight.run_dir / CHECKPOINT)["agent"].items():
        assert torch.equal(value, load_checkpoint(r.run_dir / CHECKPOINT)["agent"][key]), key


@pytest.mark.parametrize("changes,message", [
    ({"algorithm": {"name": "sac"}}, "Ray rollouts serve PPO"),
    ({"algorithm": {"overlap": True}}, "algorithm.overlap"),
    ({"cluster": {"workers": 9}}, "exceeds env.n_envs"),
])
def test_a_cluster_recipe_that_cannot_run_is_refused_naming_the_field(tmp_path, changes,
                                                                      message):
    from pydantic import ValidationError

    base = {"cluster": {"workers": 2}, **changes}
    with pytest.raises((ValidationError, ConfigError), match=message):
        joint_track(tmp_path, "bad", **base)
