"""The MuJoCo Warp backend (simulation/warp.py) on Warp's CPU device: the same task gives the
same observations and rewards as on MuJoCo's C library, within float32 and solver tolerance.

Measured sizes (this machine, MuJoCo 4.0.1, MuJoCo Warp 4.0.0, Newton solver both sides):
one control step from the same state gives observations within ~1e-5 and rewards within
~1e-6 while no actuator saturates. Where a leg in the air saturates its torque, the two
engines part (a knee 11 rad/s apart after one period): C MuJoCo's knee then alternates
between about -19 and +4 rad/s from one physics step to the next, Warp's stays near -5.
The first Warp test on a fresh machine compiles Warp's kernels (about 30 s; cached after).
"""

import numpy as np
import pytest

from velora_robot.envs import ENV_IDS
from velora_robot.errors import ConfigError
from velora_robot.rl import Recipe, train
from velora_robot.robots import get_spec
from velora_robot.simulation.backend import Simulator
from velora_robot.simulation.physics import Physics
from velora_robot.simulation.randomization import Randomization
from velora_robot.simulation.robot import RobotBatch

pytest.importorskip("mujoco_warp")

WARP = Simulator("warp", device="cpu")
NEWTON = {"solver": "Newton", "frictionloss": False}


def _pair(env_id: str, n: int, **kwargs):
    task = ENV_IDS[env_id].TASK
    return task(n, **kwargs), task(n, sim=WARP, **kwargs)


@pytest.mark.parametrize("env_id", ["velora_robot/SpotWalk-v0", "velora_robot/G1Walk-v0"])
def test_one_control_step_from_the_same_state_matches_the_c_backend(env_id):
    cpu, warp = _pair(env_id, 4, physics=NEWTON)
    rng = np.random.default_rng(0)
    for i in range(4):
        cpu.reset(i, seed=i)
    for _ in range(30):  # a state away from the home pose, feet on and off the ground
        cpu.step(rng.uniform(-0.3, 0.3, (4, cpu.spec.n_joints)))
    warp.set_state(cpu.get_state())  # the saved state is the same on both backends
    np.testing.assert_allclose(warp.observe(), cpu.observe(), atol=1e-6)
    action = rng.uniform(-0.3, 0.3, (4, cpu.spec.n_joints))
    r_cpu, term_cpu, _, _ = cpu.step(action)
    r_warp, term_warp, _, _ = warp.step(action)
    np.testing.assert_allclose(warp.observe(), cpu.observe(), atol=1e-4)
    np.testing.assert_allclose(r_warp, r_cpu, atol=1e-5)
    np.testing.assert_array_equal(term_warp, term_cpu)


def test_randomized_robots_with_latency_step_alike_on_both_backends():
    # Each world gets its own drawn friction, masses, gains and delays.
    spec = get_spec("spot")
    rand = Randomization(enabled=True, latency_s=(0.0, 0.012), sensor_latency_s=(0.0, 0.006))
    physics = Physics(solver="Newton", frictionloss=False)
    cpu = RobotBatch(spec, 3, randomization=rand, physics=physics)
    warp = WARP.batch(spec, 3, randomization=rand, physics=physics)
    for i in range(3):
        cpu.reset(i, np.random.default_rng(i))
        warp.reset(i, np.random.default_rng(i))
    for field in ("body_mass", "actuator_gainprm", "geom_friction"):
        for i in range(3):
            np.testing.assert_allclose(getattr(warp.model_of(i), field),
                                       getattr(cpu.model_of(i), field), rtol=1e-6)
    assert cpu.draws[0].friction != cpu.draws[1].friction
    rng = np.random.default_rng(1)
    for _ in range(10):
        targets = cpu.io.targets(rng.uniform(-0.3, 0.3, (3, spec.n_joints)))
        cpu.step(targets)
        warp.step(targets)
    a, b = cpu.measure(), warp.measure()
    np.testing.assert_allclose(b.state.q, a.state.q, atol=1e-4)
    np.testing.assert_allclose(b.state.gyro, a.state.gyro, atol=1e-3)
    np.testing.assert_array_equal(b.contacts, a.contacts)


def test_warp_resumes_exactly_from_its_own_saved_state():
    _, warp = _pair("velora_robot/SpotWalk-v0", 2, physics=NEWTON)
    for i in range(2):
        warp.reset(i, seed=i)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 0.3, (8, 2, 12))
    for a in actions[:4]:
        warp.step(a)
    saved = warp.get_state()
    for a in actions[4:]:
        warp.step(a)
    end = warp.observe()
    warp.set_state(saved)
    for a in actions[4:]:
        warp.step(a)
    np.testing.assert_array_equal(warp.observe(), end)


def test_warp_refuses_the_pgs_solver_naming_the_field(tmp_path):
    # The G1 recipe's fast physics uses PGS, which MuJoCo Warp does not have.
    with pytest.raises(ValueError, match=r"physics\.solver"):
        Recipe.model_validate({"name": "g", "env": {
            "id": "velora_robot/G1Walk-v0", "backend": "warp",
            "kwargs": {"physics": {"solver": "PGS"}}}, "budget": {"env_steps": 100}})
    with pytest.raises(ConfigError, match="PGS"):
        WARP.batch(get_spec("spot"), 1, physics=Physics(solver="PGS"))
    with pytest.raises(ValueError, match="gymnasium env"):
        Recipe.model_validate({"name": "p", "env": {"id": "Pendulum-v1", "backend": "warp"},
                               "budget": {"env_steps": 100}})
    with pytest.raises(ConfigError, match="cuda:7"):
        Simulator("warp", device="cuda:7").batch(get_spec("one_joint"), 1)


def test_ppo_trains_on_the_warp_backend_and_exports_the_same_policy_interface(tmp_path):
    def run(backend):
        recipe = Recipe.model_validate({
            "name": backend, "seed": 0,
            "env": {"id": "velora_robot/JointTrack-v0", "n_envs": 4, "backend": backend,
                    "kwargs": {"episode_s": 1.0}},
            "policy": {"n_neurons": 8}, "algorithm": {"steps_per_env": 16, "chunk_len": 8},
            "budget": {"env_steps": 4 * 16 * 2}, "logging": {"dir": str(tmp_path)},
            "eval": {"episodes": 2}})
        return train(recipe, progress=False)

    cpu, warp = run("mujoco"), run("warp")
    assert warp["env_steps"] == cpu["env_steps"]
    # Same seed, same robots: the returns agree to the simulators' float tolerance.
    assert warp["eval"]["return_mean"] == pytest.approx(cpu["eval"]["return_mean"], rel=1e-3)
    # The robot side cannot tell: the same policy interface, the same file layout, and the
    # Warp-trained policy runs through the same torch-free runner.
    from velora_robot.export import export
    from velora_robot.runtime import load_policy
    from velora_robot.runtime.card import load_card

    files = {b: export(tmp_path / b / "checkpoint.pt", "onnx", tmp_path / f"{b}.onnx")
             for b in ("mujoco", "warp")}
    cards = {b: load_card(f["card"]) for b, f in files.items()}
    assert cards["warp"].interface == cards["mujoco"].interface
    assert cards["warp"].io == cards["mujoco"].io and cards["warp"].robot == cards["mujoco"].robot
    policy = load_policy(files["warp"]["policy"])
    assert policy(np.zeros(cards["warp"].io.obs_dim, np.float32)).shape == (1,)
