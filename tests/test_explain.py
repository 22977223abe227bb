"""`velora-robot explain`: the numpy network is the exported one, and the report is made
from the exported file alone."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from velora_robot.explain.network import LiquidNet
from velora_robot.export import export
from velora_robot.runtime import load_card, load_policy

from .helpers import tiny_joint_track_run


@pytest.mark.parametrize("npd", [1, 2])
def test_the_network_read_from_onnx_or_npz_is_the_exported_policy(tmp_path, npd):
    ckpt = tiny_joint_track_run(tmp_path, seed=2, neurons_per_dof=npd, eval_episodes=0)
    onnx_path, npz_path = export(ckpt, "onnx")["policy"], export(ckpt, "kernel")["policy"]
    policy = load_policy(onnx_path)
    nets = [LiquidNet.load(onnx_path), LiquidNet.load(npz_path)]
    states = [np.zeros((1, n.n_neurons)) for n in nets]
    rng = np.random.default_rng(0)
    for _ in range(200):
        obs = rng.normal(size=policy.obs_dim).astype(np.float32)
        want = policy(obs)
        for k, net in enumerate(nets):
            readout, bypass, states[k] = net.step(net.normalize(obs[None].astype(float)),
                                                  states[k])
            np.testing.assert_allclose(net.action(readout + bypass)[0], want, atol=1e-5)


def test_explain_writes_a_report_on_the_shipped_one_joint_controller(tmp_path):
    for suffix in ("", ".json"):  # a copy: --write-card changes the card
        shutil.copy(f"models/joint_track.onnx{suffix}", tmp_path / f"jt.onnx{suffix}")
    run = subprocess.run([sys.executable, "-m", "velora_robot.cli", "explain",
                          str(tmp_path / "jt.onnx"), "--out", str(tmp_path / "r"),
                          "--seconds", "5", "--write-card"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "neurons carry" in run.stdout and "index.html" in run.stdout
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["nominal_walk"]["seconds"] == pytest.approx(5.0)
    share = report["neuron_share"]  # the shipped rig's neurons carry almost nothing (bypass)
    assert abs(share["overall"]) < 0.2 and share["per_joint"] == [share["overall"]]
    neurons = report["structure"]["neurons"]
    assert [n["role"] for n in neurons].count("motor") == 1
    assert all(0 < n["tau_s"][0] <= n["tau_s"][1] for n in neurons)
    assert report["structure"]["inputs"][0] == "joint_pos/joint"
    # every neuron held at rest in turn: some matter to the action, none is ignored by all
    effect = np.array(report["ablation"]["neuron_effect_rms"])
    assert effect.shape == (8, 1) and effect.max() > 0
    attribution = np.array(report["attribution"]["map"])
    assert attribution.shape == (5, 1) and attribution.max() > 0
    # the bypass alone can only account for part of what occluding an input changes here
    assert len(report["attribution"]["stability"]) == 2
    assert all(-1 <= s["correlation"] <= 1 for s in report["attribution"]["stability"])
    rows = {r["condition"]: r for r in report["robustness"]["rows"]}
    assert "nominal" in rows and "network parameters +-10%" in rows
    assert "friction 0.3" not in rows  # robot physics conditions are for walkers
    assert report["robustness"]["trust_envelope"] == [
        name for name, r in rows.items() if r["passed"]]
    assert report["fairness"]["pairs"] == []  # the rig has no commands to mirror
    assert report["activity"]["gait_locking"] is None  # nor a gait clock
    # the envelope it passed, in its card for `run`: latency and sensor noise out to the
    # last condition passed before one failed; no commands on the rig
    trust = load_card(tmp_path / "jt.onnx.json").trust
    assert trust.commands == {} and set(trust.axes) == {"latency_s", "obs_noise_scale"}
    for axis, (lo, hi) in trust.axes.items():
        expected = 0.0
        for value, passed in sorted((r["value"], r["passed"]) for r in rows.values()
                                    if r.get("axis") == axis):
            if not passed:
                break
            expected = value
        assert (lo, hi) == (0.0, expected)
    assert [c.condition for c in trust.conditions] == list(rows)
    page = (tmp_path / "r" / "index.html").read_text()
    import matplotlib.image

    for name in report["figures"]:
        assert name in page
        assert matplotlib.image.imread(tmp_path / "r" / name).shape[0] > 200


@pytest.mark.parametrize("args, message", [
    (["models/spot_walk_mlp.onnx"], "measures liquid controllers"),
    (["models/nothing.onnx"], "no policy file"),
    (["models/joint_track.onnx", "--seconds", "0"], "--seconds 0"),
])
def test_explain_refuses_what_it_cannot_measure(tmp_path, args, message):
    run = subprocess.run([sys.executable, "-m", "velora_robot.cli", "explain", *args,
                          "--out", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_gini_is_zero_for_equal_legs_and_grows_as_one_leg_takes_over():
    from velora_robot.explain.robustness import gini

    assert gini(np.array([5.0, 5.0, 5.0, 5.0])) == 0.0
    assert gini(np.array([0.0, 0.0, 0.0, 8.0])) == pytest.approx(0.75)
    assert 0 < gini(np.array([4.0, 5.0, 5.0, 6.0])) < 0.1


def test_the_wiring_figure_of_a_dense_network_keeps_each_neurons_strongest_inputs():
    from velora_robot.explain.report import _strongest_into_each

    rng = np.random.default_rng(0)
    synapses = [{"from": i, "to": to, "strength": float(rng.random()), "polarity": 1}
                for to in range(5) for i in range(20)]
    kept = _strongest_into_each(synapses, 6)
    assert len(kept) == 5 * 6
    for to in range(5):
        into = sorted((s["strength"] for s in synapses if s["to"] == to), reverse=True)
        assert sorted((s["strength"] for s in kept if s["to"] == to), reverse=True) == into[:6]
    sparse = synapses[:3]  # a sparse network's figure draws every synapse
    assert _strongest_into_each(sparse, 6) == sparse


def test_a_controller_beside_itself_measures_the_same(tmp_path):
    """--baseline runs the other policy through its own runner on the same walks: the
    shipped rig beside itself gives the same behaviour, condition by condition."""
    from velora_robot.explain.report import explain

    report = explain("models/joint_track.onnx", tmp_path, seconds=4.0, episodes=1,
                     baseline="models/joint_track.onnx")
    base = report["baseline"]
    assert base["nominal_walk"]["error_mean"] == pytest.approx(
        report["nominal_walk"]["error_mean"], abs=1e-4)
    theirs = {r["condition"]: r for r in base["robustness"]["rows"]}
    for row in report["robustness"]["rows"]:
        # float32 (ONNX) against float64 (numpy), in closed loop, where the joint limits'
        # clipping (as on the robot) lets rounding grow: a 20 ms latency differs by ~5 %
        if row["condition"] in theirs:
            assert theirs[row["condition"]]["error_mean"] == pytest.approx(
                row["error_mean"], rel=0.1), row["condition"]
    assert "Beside joint_track" in (tmp_path / "index.html").read_text()


def test_a_neuron_share_above_one_says_the_bypass_pulls_against_the_neurons():
    from velora_robot.runtime.card import NeuronShare, bypass_share

    assert bypass_share(0.9) == "the linear bypass 10%"
    assert bypass_share(1.0) == "the linear bypass 0%"
    assert bypass_share(1.09) == "the linear bypass -9% (it pulls against the neurons)"
    # Only an actor without a bypass reads out exactly its neurons; above 1.0 there is one.
    said = {x: NeuronShare(overall=x, per_joint=[x], seconds=1.0).sentence()
            for x in (1.0, 1.14, 0.94)}
    assert said[1.0] == "every action is its motor neurons' read-out (no linear bypass)"
    assert said[1.14] == ("its motor neurons carry 114% of the action over a nominal walk, "
                          "the linear bypass -14% (it pulls against the neurons)")
    assert said[0.94].endswith("the linear bypass 6%")
