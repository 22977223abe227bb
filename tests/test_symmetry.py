"""Mirror symmetry: the mirror maps are the physics' own (a mirrored robot moves as the
mirror image), and PPO trained with them learns from both images."""

import numpy as np
import pytest

from velora_robot.envs import G1WalkTask, JointTrackTask, SpotWalkTask
from velora_robot.errors import ConfigError
from velora_robot.robots.observation import RobotIO, RobotState
from velora_robot.robots.sources import get_spec
from velora_robot.simulation.robot import SimRobot


def _mirror_state(robot: SimRobot, other: SimRobot) -> None:
    """Put `other` in the mirror image of `robot`'s state (reflection through the xz plane:
    y positions and velocities flip, rotations about x and z flip)."""
    mirror = robot.spec.mirror
    perm, sign = np.array(mirror.joints), np.array(mirror.joint_sign, dtype=float)
    idx, src, dst = robot.index, robot.data, other.data
    b, v = idx.base_qpos, idx.base_dof
    dst.qpos[b:b + 3] = src.qpos[b:b + 3] * [1, -1, 1]
    dst.qpos[b + 3:b + 7] = src.qpos[b + 3:b + 7] * [1, -1, 1, -1]
    dst.qvel[v:v + 3] = src.qvel[v:v + 3] * [1, -1, 1]
    dst.qvel[v + 3:v + 6] = src.qvel[v + 3:v + 6] * [-1, 1, -1]
    dst.qpos[idx.qpos] = src.qpos[idx.qpos][perm] * sign
    dst.qvel[idx.dof] = src.qvel[idx.dof][perm] * sign


def _obs(io: RobotIO, robot: SimRobot, command: np.ndarray,
         last_action: np.ndarray) -> np.ndarray:
    m = robot.measure()
    state = RobotState(m.state.q, m.state.dq, m.state.gyro, m.state.gravity)
    return io.observation(state, last_action, command, 0.0)


# The hips' abduction (Spot) and the hips' roll (G1) in the observation's joint_pos block:
# flipping their sign is a wrong map the physics must tell apart.
@pytest.mark.parametrize("task,abduction", [(SpotWalkTask, [6, 9, 12, 15]),
                                            (G1WalkTask, [7, 13])])
def test_a_mirrored_robot_moves_as_the_mirror_image_of_the_robot(task, abduction):
    import mujoco

    obs_index, obs_sign, act_index, act_sign = task.mirror_maps({}, "test")
    spec = get_spec(task.DEFAULTS["robot"])
    robot, image = SimRobot(spec), SimRobot(spec)
    io = RobotIO(spec, task.policy_interface())
    rng = np.random.default_rng(0)
    robot.reset(rng), image.reset(rng)
    d = robot.data
    d.qpos[robot.index.qpos] += rng.uniform(-0.1, 0.1, 12)
    d.qvel[:] = rng.uniform(-0.5, 0.5, d.qvel.shape)
    d.qvel[robot.index.held_dof] = 0.0  # held joints at rest (their pose is symmetric)
    d.qpos[robot.index.base_qpos + 3:robot.index.base_qpos + 7] = [0.99, 0.05, -0.08, 0.1]
    mujoco.mj_normalizeQuat(robot.model, d.qpos)
    mujoco.mj_forward(robot.model, d)
    _mirror_state(robot, image)
    mujoco.mj_forward(image.model, image.data)
    command = np.array([0.4, 0.2, -0.3])
    clock = np.ones(47, bool)
    clock[-2:] = False  # the clock is time, not state: both robots' clocks read the same
    for _ in range(10):  # 0.2 s, through contacts
        action = rng.uniform(-1, 1, 12)
        mirrored_action = action[act_index] * act_sign
        robot.step(robot.io.targets(action))
        image.step(image.io.targets(mirrored_action))
        want = _obs(io, robot, command, action)[obs_index] * obs_sign
        got = _obs(io, image, command * [1, -1, -1], mirrored_action)
        # The model is mirror-symmetric but for details (its thigh limits differ by up to
        # 0.05 rad between legs) and contact chaos: the images drift apart by ~1e-3 here.
        np.testing.assert_allclose(got[clock], want[clock], atol=3e-3)
        # ...where a map with one sign wrong (the hips not flipped) is off by far more.
        wrong = obs_sign.copy()
        wrong[abduction] *= -1
        assert np.abs(got[clock] - (_obs(io, robot, command, action)[obs_index] * wrong)[clock]
                      ).max() > 0.05
    assert abs(robot.data.qpos[1]) > 1e-3  # it did move sideways, so y really was mirrored


def test_the_mirror_maps_are_an_involution_and_the_trot_clock_is_shifted_half_a_period():
    obs_index, obs_sign, _, _ = SpotWalkTask.mirror_maps({}, "test")
    obs = np.random.default_rng(1).normal(size=47)
    twice = (obs[obs_index] * obs_sign)[obs_index] * obs_sign
    np.testing.assert_array_equal(twice, obs)
    np.testing.assert_array_equal(obs_sign[-2:], [-1, -1])  # (cos, sin) of t + T/2
    in_phase = SpotWalkTask.mirror_maps({"gait_offsets": [0.0, 0.0, 0.5, 0.5]}, "test")
    np.testing.assert_array_equal(in_phase[1][-2:], [1, 1])


@pytest.mark.parametrize("task, given, message", [
    (JointTrackTask, {}, "not left-right symmetric"),
    (SpotWalkTask, {"gait_offsets": [0.0, 0.25, 0.5, 0.75]}, "not a mirror-symmetric gait"),
])
def test_mirror_symmetry_is_refused_where_it_does_not_hold(task, given, message):
    with pytest.raises(ConfigError, match=message):
        task.mirror_maps(given, "recipe 'x': field 'algorithm.symmetry'")


def _spot_recipe(tmp_path, name, **algorithm):
    from velora_robot.rl import Recipe

    return Recipe.model_validate({
        "name": name, "seed": 1,
        "env": {"id": "velora_robot/SpotWalk-v0", "n_envs": 4, "n_workers": 1},
        "policy": {"kind": "liquid", "n_neurons": 30},
        "algorithm": {"steps_per_env": 16, "chunk_len": 8, "epochs": 1, "minibatches": 2,
                      **algorithm},
        "budget": {"env_steps": 3 * 4 * 16},
        "logging": {"dir": str(tmp_path), "checkpoint_every": 1}, "eval": {"episodes": 0}})


def test_the_mirrored_stream_is_the_actor_run_on_the_mirror_image():
    """Each stored mirror step is the actor's state on the mirrored observations from that
    stream's own state, and minibatches carry each chunk's image."""
    import torch

    from velora_robot.rl.agent import Agent
    from velora_robot.rl.ppo import PPO
    from velora_robot.rl.recipe import PolicySection
    from velora_robot.rl.rollout import collect_rollout
    from velora_robot.rl.storage import RolloutStorage
    from velora_robot.rl.symmetry import Mirror
    from velora_robot.rl.vec_env import make_vec_env

    mirror = Mirror.of_env("velora_robot/SpotWalk-v0", {}, "test")
    env = make_vec_env("velora_robot/SpotWalk-v0", 3)
    try:
        obs = env.reset(seed=0)
        agent = Agent(PolicySection(kind="liquid", n_neurons=30), 47, 12, env.privileged.shape[1])
        algo = PPO(agent.actor, agent.critic, chunk_len=8, mirror=mirror)
        storage = RolloutStorage(16, 3, 47, 47 + agent.priv_dim, 12, agent.actor.state_size,
                                 mirrored=True)
        carry = {"obs": obs, "priv": env.privileged, "h": torch.zeros(3, 30),
                 "starts": torch.ones(3, dtype=torch.bool), "h_mirror": torch.zeros(3, 30)}
        collect_rollout(env, agent, algo, storage, torch.Generator().manual_seed(0), carry,
                        [], mirror)
    finally:
        env.close()
    with torch.no_grad():
        _, states = agent.actor(storage.obs_mirror.transpose(0, 1), storage.hidden_mirror[0],
                                resets=storage.starts.t(), return_states=True)
    keep = (~storage.starts[1:]).t().unsqueeze(-1)  # where no episode restarted the state
    torch.testing.assert_close(states[:, :-1] * keep,
                               storage.hidden_mirror[1:].transpose(0, 1) * keep,
                               atol=1e-5, rtol=0)
    for mb in storage.chunks(8, 2, torch.Generator().manual_seed(0)):
        assert mb["obs_mirror"].shape == mb["obs"].shape == (3, 8, 47)
        assert mb["h0_mirror"].shape == mb["h0"].shape == (3, 30)
        torch.testing.assert_close(mb["obs_mirror"][:, 0], mb["obs"][:, 0][:, mirror.obs_index]
                                   * mirror.obs_sign, atol=1e-4, rtol=0)  # the norm is symmetric


def test_the_symmetry_loss_makes_the_actor_more_symmetric():
    """A few updates on the loss alone (PPO's other terms off) shrink the gap between the
    mean on a mirror image and the mirror image of the mean."""
    import torch

    from velora_robot.rl.agent import Agent
    from velora_robot.rl.ppo import PPO
    from velora_robot.rl.recipe import PolicySection
    from velora_robot.rl.storage import RolloutStorage
    from velora_robot.rl.symmetry import Mirror

    torch.manual_seed(0)
    mirror = Mirror.of_env("velora_robot/SpotWalk-v0", {}, "test")
    agent = Agent(PolicySection(kind="liquid", n_neurons=30), 47, 12, 0)
    algo = PPO(agent.actor, agent.critic, chunk_len=8, epochs=20, minibatches=1, lr=3e-3,
               desired_kl=None, clip_param=1e-9, value_coef=0.0, mirror=mirror)
    storage = RolloutStorage(8, 16, 47, 47, 12, agent.actor.state_size, mirrored=True)
    storage.obs.normal_()
    storage.obs_mirror.copy_(mirror.obs(storage.obs))

    def gap() -> float:
        with torch.no_grad():
            mean, _ = agent.actor(storage.obs.transpose(0, 1))
            image, _ = agent.actor(storage.obs_mirror.transpose(0, 1))
        return float(((image - mirror.action(mean)) ** 2).sum(-1).mean())

    before = gap()
    metrics = algo.update(storage, torch.Generator().manual_seed(0))
    assert "symmetry_loss" in metrics
    assert gap() < 0.5 * before


def test_a_symmetric_spot_run_trains_and_resumes_exactly(tmp_path):
    import torch

    from velora_robot.rl import train
    from velora_robot.rl.trainer import CHECKPOINT, load_checkpoint

    straight = _spot_recipe(tmp_path / "a", "sym", symmetry=True)
    train(straight, progress=False)
    expected = load_checkpoint(straight.run_dir / CHECKPOINT)
    stopped = _spot_recipe(tmp_path / "b", "sym", symmetry=True)
    train(stopped, progress=False, stop_after=2)
    train(stopped, resume=True, progress=False)
    resumed = load_checkpoint(stopped.run_dir / CHECKPOINT)
    for key, value in expected["agent"].items():
        assert torch.equal(value, resumed["agent"][key]), key
    plain = _spot_recipe(tmp_path / "c", "plain")
    train(plain, progress=False)
    other = load_checkpoint(plain.run_dir / CHECKPOINT)["agent"]
    assert not torch.equal(other["actor.cell.w"], expected["agent"]["actor.cell.w"])


def test_symmetry_on_a_task_without_a_mirror_is_refused_before_any_work(tmp_path):
    from velora_robot.rl import Recipe, train

    r = Recipe.model_validate({
        "name": "jt", "env": {"id": "velora_robot/JointTrack-v0", "n_envs": 2},
        "policy": {"kind": "liquid", "n_neurons": 6},
        "algorithm": {"steps_per_env": 8, "chunk_len": 8, "symmetry": True},
        "budget": {"env_steps": 16}, "logging": {"dir": str(tmp_path)}})
    with pytest.raises(ConfigError, match=r"recipe 'jt': field 'algorithm.symmetry': .*not "
                                          "left-right symmetric"):
        train(r, progress=False)
