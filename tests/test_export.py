"""Export: ONNX and TorchScript equal PyTorch over a closed loop; the model card; refusals."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import velora_robot.envs  # noqa: F401
from velora_robot.errors import ConfigError
from velora_robot.export import export, load_agent
from velora_robot.rl.trainer import load_checkpoint
from velora_robot.robots import get_spec
from velora_robot.runtime import (
    KernelPolicy,
    OnnxPolicy,
    TorchScriptPolicy,
    check_card,
    load_card,
)
from velora_robot.runtime.card import card_path

from .helpers import tiny_joint_track_run

ONE_JOINT = get_spec("one_joint")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ckpt = tiny_joint_track_run(tmp_path_factory.mktemp("export"), seed=1, neurons_per_dof=2,
                                eval_episodes=1)
    return {"ckpt": ckpt, "onnx": export(ckpt, "onnx"), "ts": export(ckpt, "torchscript"),
            "kernel": export(ckpt, "kernel")}


def test_onnx_and_torchscript_equal_pytorch_over_a_1000_step_closed_loop(trained):
    _, agent = load_agent(load_checkpoint(trained["ckpt"]))
    env = gym.make("velora_robot/JointTrack-v0")
    obs, _ = env.reset(seed=0)
    h, start, observations, starts, actions = None, True, [], [], []
    with torch.no_grad():
        for _ in range(1000):  # two 500-step episodes
            x = agent.obs_norm(torch.as_tensor(obs, dtype=torch.float32)).view(1, 1, -1)
            mean, h = agent.actor(x, h, resets=torch.tensor([[start]]))
            action = agent.deterministic_action(mean.view(-1)).numpy()
            observations.append(obs.astype(np.float32))
            starts.append(start)
            actions.append(action)
            obs, _, terminated, truncated, _ = env.step(action)
            start = terminated or truncated
            if start:
                obs, _ = env.reset()
    assert sum(starts) == 2
    for runner in (OnnxPolicy(trained["onnx"]["policy"]),
                   TorchScriptPolicy(trained["ts"]["policy"]),
                   KernelPolicy(trained["kernel"]["policy"])):
        for o, s, expected in zip(observations, starts, actions, strict=True):
            if s:
                runner.reset()
            np.testing.assert_allclose(runner(o), expected, atol=1e-5, rtol=0)


def test_the_model_card_describes_policy_robot_and_source(trained):
    card = load_card(trained["onnx"]["card"])
    assert card.policy_file == "jt.onnx" and card.policy_format == "onnx"
    assert trained["onnx"]["card"].name == "jt.onnx.json"
    assert load_card(trained["ts"]["card"]).policy_format == "torchscript"
    assert card.robot.joints[0].name == "joint"
    assert card.network.neurons == 8 and card.network.neurons_per_dof == 2
    assert card.network.wiring["joint_names"] == ["joint"]  # the robot's, not "joint0"
    assert card.io.shapes()[0] == {"obs": [1, 5], "state": [1, 8]}
    import hashlib

    digest = hashlib.sha256(trained["ckpt"].read_bytes()).hexdigest()
    assert json.loads(trained["onnx"]["card"].read_text())["source_checkpoint"]["sha256"] == digest
    check_card(card, ONE_JOINT)  # matches its robot


def test_export_writes_the_learning_curve_up_to_the_checkpoint(trained, tmp_path):
    curve = trained["onnx"]["curve"]
    assert curve.name == "jt_curve.png" and curve.read_bytes()[:4] == b"\x89PNG"
    lone = tmp_path / "elsewhere.pt"  # a checkpoint without its run's metrics
    lone.write_bytes(trained["ckpt"].read_bytes())
    assert "curve" not in export(lone, "onnx", tmp_path / "p.onnx")


@pytest.mark.parametrize("change,message", [
    ({"joints": ONE_JOINT.joints * 2}, "drives 1 joints, robot 'one_joint' has 2"),
    ({"joints": (ONE_JOINT.joints[0].model_copy(update={"name": "elbow"}),)},
     "joint 0 is 'elbow' on the robot but 'joint' in the policy"),
    ({"control_hz": 100.0, "physics_hz": 500.0}, "field 'control_hz' is 100.0 on the robot"),
    ({"joints": (ONE_JOINT.joints[0].model_copy(update={"kp": 9.0}),)}, "kp is 9.0"),
])
def test_a_card_that_does_not_match_the_robot_is_refused(trained, change, message):
    card = load_card(trained["onnx"]["card"])
    with pytest.raises(ConfigError, match=message):
        check_card(card, ONE_JOINT.model_copy(update=change))


def test_an_onnx_file_with_the_wrong_inputs_is_refused(trained, tmp_path):
    path = tmp_path / "other.onnx"
    torch.onnx.export(torch.nn.Linear(5, 1).eval(), (torch.zeros(1, 5),), str(path),
                      input_names=["x"], output_names=["y"], dynamo=True)
    card_path(path).write_text(trained["onnx"]["card"].read_text())
    with pytest.raises(ConfigError, match="do not match the model card"):
        OnnxPolicy(path)


def test_load_policy_picks_the_runner_by_file_type(trained):
    from velora_robot.runtime import load_policy

    assert isinstance(load_policy(trained["kernel"]["policy"]), KernelPolicy)
    assert isinstance(load_policy(trained["onnx"]["policy"]), OnnxPolicy)
    with pytest.raises(ConfigError, match="unknown policy format"):
        load_policy(trained["onnx"]["card"])


@pytest.mark.parametrize("neurons_per_dof,squash", [(2, False), (1, True)])
def test_the_lean_onnx_graph_equals_the_pytorch_policy_for_a_spot_sized_controller(
        neurons_per_dof, squash, tmp_path):
    import onnx

    from velora_robot.rl.agent import Agent
    from velora_robot.rl.recipe import PolicySection

    torch.manual_seed(0)
    agent = Agent(PolicySection(kind="liquid", n_neurons=100, neurons_per_dof=neurons_per_dof),
                  47, 12, 0, squash=squash, critic=False).eval()
    rng = np.random.default_rng(0)
    agent.obs_norm.update(torch.as_tensor(rng.normal(1.0, 3.0, size=(500, 47)),
                                          dtype=torch.float32))
    path = tmp_path / "spot.onnx"
    _assert_onnx_equals_pytorch(agent, path, rng, steps=300)
    assert len(onnx.load(str(path)).graph.node) <= 80  # the torch exporter's graph had 126


def _assert_onnx_equals_pytorch(agent, path, rng, steps: int) -> None:
    """Export `agent`'s liquid actor to `path`; over `steps` random observations its ONNX
    Runtime actions and states equal the PyTorch deploy policy's."""
    import onnxruntime as ort

    from velora_robot.export.deploy import DeployPolicy
    from velora_robot.export.exporter import _export_liquid_onnx

    _export_liquid_onnx(agent, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = DeployPolicy(agent).eval()
    n = agent.actor.cell.n_neurons
    state, ref_state = np.zeros((1, n), np.float32), torch.zeros(1, n)
    for _ in range(steps):
        obs = rng.normal(1.0, 3.0, size=(1, 47)).astype(np.float32)
        action, state = session.run(None, {"obs": obs, "state": state})
        with torch.no_grad():
            ref_action, ref_state = reference(torch.from_numpy(obs), ref_state)
        np.testing.assert_allclose(action, ref_action.numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(state, ref_state.numpy(), atol=1e-5, rtol=0)


def test_a_recipe_sets_how_dense_the_wiring_is_and_a_denser_one_exports_exactly(tmp_path):
    from velora_robot.liquid import NCPWiring
    from velora_robot.rl.agent import Agent
    from velora_robot.rl.recipe import PolicySection

    torch.manual_seed(0)
    sparse = Agent(PolicySection(kind="liquid", n_neurons=100), 47, 12, 0, critic=False)
    agent = Agent(PolicySection(kind="liquid", n_neurons=100, sensory_fanout=24,
                                inter_fanout=18, cross_joint_fanout=8),
                  47, 12, 0, critic=False).eval()
    w0, w = sparse.actor.cell.wiring, agent.actor.cell.wiring
    assert (w.sensory_fanout, w.inter_fanout, w.cross_joint_fanout) == (24, 18, 8)
    assert w.n_synapses > 2 * w0.n_synapses
    assert w.n_sensory_synapses > 4 * w0.n_sensory_synapses
    assert w.n_neurons == w0.n_neurons and (w.neurons("motor") == w0.neurons("motor")).all()
    again = NCPWiring.from_dict(w.to_dict())  # what a model card rebuilds
    assert (again.synapses == w.synapses).all()
    assert (again.sensory_synapses == w.sensory_synapses).all()
    rng = np.random.default_rng(1)
    agent.obs_norm.update(torch.as_tensor(rng.normal(1.0, 3.0, size=(500, 47)),
                                          dtype=torch.float32))
    _assert_onnx_equals_pytorch(agent, tmp_path / "dense.onnx", rng, steps=50)


def test_the_card_says_how_much_of_the_action_the_neurons_carry(trained, tmp_path):
    share = load_card(trained["onnx"]["card"]).network.neuron_share
    assert share is not None and len(share.per_joint) == 1 and share.seconds == 20.0
    assert share.overall == pytest.approx(share.per_joint[0])
    # the split is exact: with the bypass as it is, the share is neither 0 nor 1
    assert 0.0 < share.overall < 1.0
    bare = tiny_joint_track_run(tmp_path, seed=1, neurons_per_dof=1, eval_episodes=0,
                                residual=False)
    assert load_card(export(bare, "onnx")["card"]).network.neuron_share.overall == 1.0


def test_a_linear_policy_exports_as_one_affine_map_of_the_normalized_observation(tmp_path):
    ckpt = tiny_joint_track_run(tmp_path, seed=2, neurons_per_dof=1, eval_episodes=0,
                                kind="linear")
    files = export(ckpt, "onnx")
    card = load_card(card_path(files["policy"]))
    _, agent = load_agent(load_checkpoint(ckpt))
    (layer,) = agent.actor.net
    assert card.network.kind == "linear"
    assert card.network.trainable_parameters == layer.weight.numel() + layer.bias.numel() + 1
    runner = OnnxPolicy(files["policy"])
    rng = np.random.default_rng(0)
    for obs in rng.normal(size=(20, layer.in_features)).astype(np.float32):
        with torch.no_grad():
            x = agent.obs_norm(torch.as_tensor(obs))
            expected = (layer.weight @ x + layer.bias).clamp(-1, 1).numpy()
        np.testing.assert_allclose(runner(obs), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["liquid", "mlp"])
def test_an_exported_onnx_policy_steps_a_batch_as_it_steps_each_robot(tmp_path, kind):
    import onnxruntime as ort

    from velora_robot.api import PPO

    model = PPO("velora_robot/JointTrack-v0", kind, run_dir=tmp_path / kind, n_envs=4,
                steps_per_env=16, verbose=0, **({"n_neurons": 8} if kind == "liquid" else {}))
    model.learn(64)
    path = model.export(tmp_path / f"{kind}.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    state_size = session.get_inputs()[1].shape[1]
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(6, 5)).astype(np.float32)
    state = rng.normal(size=(6, state_size)).astype(np.float32) * 0.1
    action, next_state = session.run(None, {"obs": obs, "state": state})
    for i in range(6):
        a, s = session.run(None, {"obs": obs[i:i + 1], "state": state[i:i + 1]})
        np.testing.assert_allclose(action[i], a[0], atol=1e-6)
        np.testing.assert_allclose(next_state[i], s[0], atol=1e-6)
