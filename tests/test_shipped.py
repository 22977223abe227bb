"""The controllers shipped in models/: each loads with its card, fits its robot and its
training env, and its eval JSON and curve are the ones of that file."""

import json
from pathlib import Path

import numpy as np
import pytest

from velora_robot.evaluation import _env
from velora_robot.robots import get_spec
from velora_robot.runtime import load_policy
from velora_robot.runtime.card import card_path, check_card, load_card

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(MODELS.glob("*.onnx"))


def test_the_three_controllers_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"spot_walk", "joint_track", "g1_walk",
                                         "spot_walk_mlp", "g1_walk_mlp"}  # MLP baselines


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_controller_fits_its_robot_env_and_records(path):
    card = load_card(card_path(path))
    check_card(card, get_spec(card.robot.name), where=str(path))
    env = _env(card, randomize=False, command=None)  # as `velora-robot eval` makes it
    obs, _ = env.reset(seed=0)
    assert obs.shape[0] == card.io.obs_dim
    assert env.action_space.shape[0] == card.io.act_dim

    policy = load_policy(path)
    policy.reset()
    for _ in range(3):  # a few closed-loop steps: finite actions in the env's range
        action = policy(obs)
        assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0 + 1e-6)
        obs, *_ = env.step(action)
    env.close()

    network = card.network
    if network.kind == "liquid" and path.stem != "joint_track":  # the walkers' budget
        # About 100 neurons; the G1's every layer-to-layer synapse (18k parameters, a
        # fifth of its MLP's) is what let it follow its teacher (docs/results.md).
        assert network.neurons <= 100 and network.trainable_parameters <= 20_000
    steps, _ = card.trained()
    data = json.loads((MODELS / f"{path.stem}_eval.json").read_text())
    # `eval --json` writes results; `eval --criteria --json` writes criteria, each its result
    results = data.get("results") or [row["result"] for row in data["criteria"]]
    assert results
    for row in results:  # the figures are this file's, at this file's training
        assert Path(row["model"]).name == path.name
        assert row["env"] == card.training.env
        assert row["trainable_parameters"] == network.trainable_parameters
        assert row["env_steps"] == steps
    assert (MODELS / f"{path.stem}_curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("path", [p for p in SHIPPED if load_card(card_path(p)).network.kind
                                  == "liquid"], ids=lambda p: p.stem)
def test_a_shipped_liquid_controller_carries_the_envelope_it_was_verified_in(path):
    card = load_card(card_path(path))
    assert card.trust is not None and card.trust.conditions[0].condition == "nominal"
    assert card.trust.conditions[0].passed


def test_the_neurons_only_spot_has_no_bypass_and_names_the_shipped_file_it_learned_from():
    import hashlib

    card = load_card(MODELS / "spot_walk_neurons.onnx.json")
    assert card.network.neuron_share.overall == 1.0 and card.network.neurons <= 100
    teacher = card.training.teacher
    assert teacher.sha256 == hashlib.sha256((MODELS.parent / teacher.policy).read_bytes()
                                            ).hexdigest()


def test_the_demo_asks_the_shipped_spot_nothing_outside_its_envelope():
    from velora_robot.runtime.card import trust_warnings
    from velora_robot.runtime.launch import load_launch

    launch = load_launch(MODELS.parent / "launch" / "spot_sim.yaml")
    card = load_card(card_path(launch.policy))
    assert trust_warnings(card, launch.command, launch.hardware.sim.randomization) == []


def test_the_shipped_g1_walks_the_same_joint_trajectories_in_env_and_deploy_sim():
    # Sim-to-sim for the G1 as for Spot: its policy in the training env and through the
    # runtime controller on the simulated robot of launch/g1_sim.yaml (its physics).
    from velora_robot.runtime.launch import load_launch

    from .helpers import env_and_runtime_joint_trajectories

    launch = load_launch(MODELS.parent / "launch" / "g1_sim.yaml")
    policy = load_policy(launch.policy)
    physics = launch.hardware.sim.physics.model_dump(exclude_none=True)
    env_q, runtime_q = env_and_runtime_joint_trajectories(
        "velora_robot/G1Walk-v0", "g1", policy, reset=policy.reset, physics=physics)
    assert len(env_q) == 250  # 5 s without a fall
    np.testing.assert_allclose(runtime_q, env_q, atol=1e-4, rtol=0)
