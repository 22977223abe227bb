"""The gymnasium environments: API, determinism, standing, falling, randomization, config
errors, vectorization, rendering, and a Stable-Baselines3 PPO run."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import velora_robot.envs  # noqa: F401  (registers the ids)
from velora_robot.envs import ENV_IDS, SpotWalkEnv, SpotWalkTask
from velora_robot.envs.vector import BatchedEnv
from velora_robot.errors import ConfigError
from velora_robot.robots import get_spec


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_each_env_passes_gymnasiums_checker(env_id):
    env = gym.make(env_id, disable_env_checker=True).unwrapped
    check_env(env, skip_render_check=True)


def _rollout(env, seed, steps=60):
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(rng.uniform(-0.3, 0.3, 12))
        out.append(np.concatenate([obs, [reward]]))
        if terminated or truncated:
            break
    return np.array(out)


def test_same_seed_gives_the_identical_trajectory_with_randomization_on():
    env = SpotWalkEnv(randomization={"enabled": True})
    first, second = _rollout(env, 7), _rollout(env, 7)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, _rollout(env, 8))


def test_spot_stands_for_10_s_under_zero_action():
    env = SpotWalkEnv()
    env.reset(seed=0)
    heights = []
    for _ in range(500):
        _, _, terminated, _truncated, _ = env.step(np.zeros(12))
        assert not terminated
        heights.append(env.robot.measure().base_pos[2])
    assert np.max(np.abs(np.array(heights) - env.robot_spec.base_height)) < 0.05


def test_a_random_policy_falls_and_the_episode_terminates():
    env = SpotWalkEnv()
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(1000):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 12))
        if terminated or truncated:
            break
    assert terminated and not truncated


def test_info_reports_every_weighted_reward_term_and_they_sum_to_the_reward():
    env = SpotWalkEnv()
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(12))
    assert set(info["reward_terms"]) == set(SpotWalkTask.REWARDS)
    assert reward == pytest.approx(max(0.0, sum(info["reward_terms"].values())))


def test_locomotion_rewards_are_clipped_at_zero_so_falling_early_never_pays():
    # With penalties this heavy every step's terms sum below zero; the reward stays at 0.
    env = SpotWalkEnv(reward_weights={"orientation": -1e3, "torques": -1.0})
    env.reset(seed=0)
    for _ in range(5):
        _, reward, _, _, info = env.step(np.full(12, 0.5))
        assert sum(info["reward_terms"].values()) < 0 and reward == 0.0
    env = SpotWalkEnv(reward_weights={"torques": -1.0}, only_positive_rewards=False)
    env.reset(seed=0)
    assert env.step(np.full(12, 0.5))[1] < 0


@pytest.mark.parametrize("yaw_rate", [0.0, 1.0])
def test_the_heading_term_follows_the_integrated_yaw_rate_command(yaw_rate):
    # Spot stands still under zero action: asked to turn at 1 rad/s, after 0.5 s its
    # heading is 0.5 rad behind, exp(-0.5^2 / 0.25) = e^-1; asked to hold, it is on course.
    still = {"vx": (0.0, 0.0), "vy": (0.0, 0.0), "yaw_rate": (yaw_rate, yaw_rate)}
    env = SpotWalkEnv(reward_weights={"heading": 1.0}, command_ranges=still)
    env.reset(seed=0)
    for _ in range(25):
        info = env.step(np.zeros(12))[4]
    dt = env.unwrapped.task.dt
    expected = np.exp(-((0.5 * yaw_rate) ** 2) / 0.25)
    assert info["reward_terms"]["heading"] / dt == pytest.approx(expected, abs=0.02)


def test_feet_phase_pays_feet_that_rise_and_fall_on_the_gait_clock():
    # The G1's 0.8 s clock: 0.1 s into it the left foot (offset 0) is a quarter into its
    # swing, at sin(pi/4) of the 10 cm peak, and the right (offset 0.5) stands.
    from velora_robot.envs import G1WalkTask

    task = G1WalkTask(1)
    task.reset(0)
    task.steps[:] = 5  # 0.1 s at 50 Hz
    ahead, still = np.array([[0.5, 0.0, 0.0]]), np.zeros((1, 3))
    swing = np.array([[0.1 * np.sin(np.pi / 4), 0.0]])
    standing = np.zeros((1, 2))
    assert task._feet_phase(swing, ahead)[0] == pytest.approx(1.0)
    assert task._feet_phase(standing, ahead)[0] == pytest.approx(np.exp(-swing[0, 0] ** 2 / 0.01))
    assert task._feet_phase(standing, still)[0] == pytest.approx(1.0)  # asked to stand
    assert task._feet_phase(swing, still)[0] < 0.7


@pytest.mark.parametrize("sigma", [0.25, 0.1])
def test_tracking_sigma_sets_the_width_of_the_velocity_tracking_term(sigma):
    # Spot under zero action, asked for 0.5 m/s: the term is exp(-e^2 / sigma) of its
    # velocity error e, about 0.5 m/s.
    ahead = {"vx": (0.5, 0.5), "vy": (0.0, 0.0), "yaw_rate": (0.0, 0.0)}
    env = SpotWalkEnv(command_ranges=ahead, tracking_sigma=sigma)
    env.reset(seed=0)
    for _ in range(10):
        info = env.step(np.zeros(12))[4]
    task = env.unwrapped.task
    error2 = np.sum((np.array([0.5, 0.0]) - task._measurement().base_lin_vel[0, :2]) ** 2)
    assert 0.1 < error2 < 0.5
    term = info["reward_terms"]["tracking_lin_vel"] / (task.weights["tracking_lin_vel"] * task.dt)
    assert term == pytest.approx(np.exp(-error2 / sigma), rel=1e-3)


def test_zeroed_commands_ask_for_one_axis_or_none_as_a_joystick_does():
    from velora_robot.envs import G1WalkTask

    ranges = {"vx": (0.2, 1.0), "vy": (0.2, 0.5), "yaw_rate": (0.2, 1.0)}
    plain, zeroed = (G1WalkTask(400, command_ranges=ranges, command_zero_prob=p)
                     for p in (0.0, 0.5))
    for task in (plain, zeroed):
        for i in range(task.n):
            task.reset(i, seed=i)
    assert np.all(plain.command != 0)  # uniform draws never ask for one axis alone
    zero = zeroed.command == 0
    assert 0.4 < zero.mean() < 0.6  # each component on its own, with the probability
    single = (zero.sum(axis=1) == 2).mean()  # one axis moving: 3 x 0.5^3 of draws
    assert 0.28 < single < 0.47
    assert np.all(zeroed.command[~zero] >= 0.2)  # the rest drawn from the ranges


def test_error_terms_charge_the_tracking_errors_per_m_s_and_per_rad_s():
    # Off by default (every shipped recipe's reward is unchanged); weighted, each is its
    # weight times |command - velocity| (the norm over vx, vy) or |yaw-rate command - gyro z|.
    ahead = {"vx": (0.5, 0.5), "vy": (0.2, 0.2), "yaw_rate": (0.4, 0.4)}
    plain = SpotWalkEnv(command_ranges=ahead)
    assert plain.unwrapped.task.weights["lin_vel_error"] == 0.0
    env = SpotWalkEnv(command_ranges=ahead,
                      reward_weights={"lin_vel_error": -2.0, "yaw_rate_error": -1.0})
    env.reset(seed=0)
    for _ in range(10):
        info = env.step(np.zeros(12))[4]
    task = env.unwrapped.task
    m = task._measurement()
    lin = np.linalg.norm(np.array([0.5, 0.2]) - m.base_lin_vel[0, :2])
    yaw = abs(0.4 - m.state.gyro[0, 2])
    assert lin > 0.3 and yaw > 0.2
    terms = info["reward_terms"]
    assert terms["lin_vel_error"] == pytest.approx(-2.0 * lin * task.dt, rel=1e-6)
    assert terms["yaw_rate_error"] == pytest.approx(-1.0 * yaw * task.dt, rel=1e-6)


def test_actor_sees_only_onboard_measurements_and_critics_get_privileged_state():
    env = SpotWalkEnv()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (47,)  # gyro, gravity, q - q0, dq, last action, command, clock
    priv = env.privileged()
    np.testing.assert_allclose(priv[3], env.robot.measure().base_pos[2], rtol=1e-6)
    assert priv.shape == (3 + 1 + 4 + 6,)


def test_randomization_is_off_by_default_and_draws_within_its_ranges():
    plain = SpotWalkEnv()
    plain.reset(seed=0)
    assert plain.robot.draw is None
    env = SpotWalkEnv(randomization={"enabled": True, "latency_s": (0.01, 0.02)})
    for seed in range(5):
        env.reset(seed=seed)
        d = env.robot.draw
        assert 0.4 <= d.friction <= 1.0 and 0.9 <= d.motor_strength <= 1.1
        assert 2 <= d.latency_steps <= 5
        assert env.robot.model.geom_friction[0, 0] == d.friction
    env.reset(seed=0)
    mass = env.robot.model.body_mass.copy()
    plain_mass = plain.robot.model.body_mass
    assert not np.allclose(mass, plain_mass)


def test_latency_delays_the_new_target():
    slow = SpotWalkEnv(randomization={"enabled": True, "latency_s": (0.02, 0.02),
                                      "obs_noise_scale": 0.0})
    slow.reset(seed=0)
    assert slow.robot.draw.latency_steps == slow.robot_spec.substeps
    q_before = slow.robot.measure().state.q.copy()
    slow.step(np.ones(12))  # the whole period still runs on the old (default) target
    moved = np.abs(slow.robot.measure().state.q - q_before).max()
    fast = SpotWalkEnv()
    fast.reset(seed=0)
    fast.step(np.ones(12))
    assert moved < 0.5 * np.abs(fast.robot.measure().state.q - q_before).max()


def _fixed_latency_robot(actuation_s: float, sensing_s: float):
    from velora_robot.simulation.randomization import Randomization
    from velora_robot.simulation.robot import SimRobot

    rand = Randomization(enabled=True, latency_s=(actuation_s, actuation_s),
                         sensor_latency_s=(sensing_s, sensing_s))
    robot = SimRobot(get_spec("spot"), randomization=rand)
    robot.reset(np.random.default_rng(0))
    return robot


@pytest.mark.parametrize("latency_s", [0.03, 0.04, 0.1])
def test_a_new_target_reaches_the_motors_after_the_configured_actuation_latency(latency_s):
    robot = _fixed_latency_robot(latency_s, 0.0)
    dt = robot.spec.physics_dt
    home, new = robot.io.q0.copy(), robot.io.q0 + 0.1
    for _ in range(40):  # one physics step per call: ctrl then holds the next step's target
        robot.step(home, nstep=1)
    sent = robot.data.time
    applied = None
    while applied is None and robot.data.time < sent + 3 * latency_s:
        robot.step(new, nstep=1)  # sent again every step, as a control loop does
        if np.allclose(robot.data.ctrl, new):
            applied = robot.data.time
    assert applied == pytest.approx(sent + latency_s, abs=dt * 1.01)


def test_with_sensing_latency_the_observed_state_is_the_state_that_long_ago():
    lagged, truth = _fixed_latency_robot(0.0, 0.03), _fixed_latency_robot(0.0, 0.0)
    spec = truth.spec
    rng = np.random.default_rng(1)
    history = {0: truth.data.qpos[truth.index.qpos].copy()}
    for _ in range(10):
        target = truth.io.targets(rng.uniform(-1, 1, spec.n_joints))
        lagged.step(target)
        for _ in range(spec.substeps):
            truth.step(target, nstep=1)
            history[truth._step] = truth.data.qpos[truth.index.qpos].copy()
        seen = lagged.measure()
        back = max(0, lagged._step - round(0.03 / spec.physics_dt))
        np.testing.assert_array_equal(seen.state.q, history[back])
        np.testing.assert_array_equal(seen.base_pos, truth.measure().base_pos)  # truth: now
    assert not np.allclose(seen.state.q, history[lagged._step])


def test_latency_beyond_half_a_second_or_not_finite_is_refused():
    for bad in ({"latency_s": (0.0, 2.0)}, {"sensor_latency_s": (-0.01, 0.0)},
                {"latency_s": (0.0, float("nan"))}):
        with pytest.raises(ConfigError, match="latency"):
            SpotWalkEnv(randomization={"enabled": True, **bad})


@pytest.mark.parametrize("settings,message", [
    ({"robot": "atlas"}, "field 'robot': unknown robot 'atlas'"),
    ({"randomization": {"friction": (1.0, 0.4)}}, "field 'randomization.friction': inverted"),
    ({"randomization": {"latency_s": (-0.01, 0.02)}}, "latency must be within"),
    ({"command_ranges": {"vx": (1.0, -1.0)}}, "inverted range"),
    ({"episode_seconds": 3}, "field 'episode_seconds': unknown field"),
    ({"reward_weights": {"speed": 1.0}}, "unknown term"),
    ({"tracking_sigma": 0.0}, "field 'tracking_sigma'"),
    ({"source": "menagerie"}, "MENAGERIE_ROOT"),
])
def test_bad_config_is_a_clear_error_naming_the_field(settings, message, monkeypatch):
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    with pytest.raises(ConfigError, match=message):
        SpotWalkEnv(**settings)


def test_batched_env_matches_single_envs_and_resets_in_the_same_step():
    single = [SpotWalkEnv() for _ in range(3)]
    with BatchedEnv("velora_robot/SpotWalk-v0", 3, n_workers=2) as batch:
        obs = batch.reset(seed=10)
        for i, env in enumerate(single):
            np.testing.assert_array_equal(env.reset(seed=10 + i)[0], obs[i])
        # Full-range actions held for half a second: the joint limits smooth out noise, not
        # these, and the Spots fall.
        actions = np.random.default_rng(0).choice([-1.0, 1.0], (12, 3, 12))
        actions = np.repeat(actions, 25, axis=0).astype(np.float32)
        ended = []
        sums = np.zeros((3, 3))  # per env: return, length, velocity error summed
        for a in actions:
            result = batch.step(a)
            expected = []
            for i, env in enumerate(single):
                o, r, te, tr, info = env.step(a[i])
                sums[i] += r, 1, info["tracking_error"]
                if te or tr:
                    np.testing.assert_array_equal(result.final_obs[i], o)
                    o, _ = env.reset()
                    expected.append((sums[i, 0], sums[i, 1], sums[i, 2] / sums[i, 1]))
                    sums[i] = 0
                np.testing.assert_array_equal(result.obs[i], o)
                assert result.reward[i] == pytest.approx(r, rel=1e-5, abs=1e-6)
            # each ended episode: its return, length and mean planar velocity error
            np.testing.assert_allclose(np.array(result.episodes).reshape(-1, 3),
                                       np.array(expected).reshape(-1, 3), rtol=1e-5)
            ended += result.episodes
    assert ended  # random actions make some Spots fall


def test_batched_env_workers_partition_the_envs_this_process_included():
    with BatchedEnv("velora_robot/JointTrack-v0", 5, n_workers=3) as batch:
        assert batch.slices == [(0, 1), (1, 3), (3, 5)]
        assert len(batch._procs) == 2  # the first slice runs in this process


def test_gymnasium_vector_envs_work_too():
    envs = gym.make_vec("velora_robot/JointTrack-v0", num_envs=2, vectorization_mode="sync")
    obs, _ = envs.reset(seed=0)
    obs, reward, *_ = envs.step(np.zeros((2, 1), dtype=np.float32))
    assert obs.shape == (2, 5) and reward.shape == (2,)


def test_rgb_array_rendering_shows_the_robot_in_every_variant():
    frames = {}
    for variant in ("full", "fast"):  # the fast one simulates without any visual geometry
        env = gym.make("velora_robot/SpotWalk-v0", render_mode="rgb_array", variant=variant)
        env.reset(seed=0)
        frames[variant] = env.render().astype(float)
        env.close()
    frame = frames["fast"]
    assert frame.shape == (360, 480, 3) and frame.std() > 5
    # Spot's yellow body panels are in the picture, drawn as in the full model
    yellow = (frame[..., 0] > 150) & (frame[..., 1] > 100) & (frame[..., 2] < 80)
    assert yellow.sum() > 500
    assert np.abs(frames["fast"] - frames["full"]).mean() < 2.0


def test_gymnasium_record_video_writes_an_mp4_of_a_robot(tmp_path):
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(gym.make("velora_robot/JointTrack-v0", render_mode="rgb_array"),
                      str(tmp_path), episode_trigger=lambda episode: True)
    env.reset(seed=0)
    for _ in range(25):
        env.step(env.action_space.sample())
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_stable_baselines3_ppo_runs_on_spotwalk_unchanged():
    from stable_baselines3 import PPO

    env = gym.make("velora_robot/SpotWalk-v0")
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (12,)


def test_record_writes_an_animated_gif_of_the_robot(tmp_path):
    from PIL import Image

    from velora_robot.envs.video import record

    env = gym.make("velora_robot/JointTrack-v0", render_mode="rgb_array")
    path = record(env, tmp_path / "rig.gif", seconds=0.4, fps=25,
                  policy=lambda obs: np.array([0.8]))  # identical frames would be merged
    with Image.open(path) as gif:
        assert gif.n_frames == 10 and gif.size == (480, 360)
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        record(gym.make("velora_robot/JointTrack-v0"), tmp_path / "x.gif", seconds=0.1)


def test_batched_env_state_round_trip_continues_identically():
    kwargs = {"randomization": {"enabled": True}}
    actions = np.random.default_rng(1).uniform(-1, 1, (30, 4, 12)).astype(np.float32)
    with BatchedEnv("velora_robot/SpotWalk-v0", 4, n_workers=2, **kwargs) as env:
        env.reset(seed=5)
        for a in actions[:10]:
            env.step(a)
        saved = env.get_state()
        first = [env.step(a).obs for a in actions[10:]]
    with BatchedEnv("velora_robot/SpotWalk-v0", 4, n_workers=2, **kwargs) as other:
        other.reset(seed=99)
        other.set_state(saved)
        second = [other.step(a).obs for a in actions[10:]]
    np.testing.assert_array_equal(np.array(first), np.array(second))


def test_physics_settings_override_the_mjcf_and_unset_ones_keep_it():
    from velora_robot.simulation.model import build_model
    from velora_robot.simulation.physics import CHEAP, Physics

    mjcf, idx = build_model(get_spec("spot"))
    cheap, _ = build_model(get_spec("spot"), physics=CHEAP)
    only_cone, _ = build_model(get_spec("spot"), physics=Physics(cone="pyramidal"))
    assert (mjcf.opt.cone, mjcf.opt.impratio, mjcf.opt.iterations) == (1, 100.0, 100)
    assert (cheap.opt.cone, cheap.opt.impratio, cheap.opt.solver, cheap.opt.iterations) == (
        0, 1.0, 0, 10)
    assert set(cheap.geom_condim[idx.feet]) == {3} and cheap.dof_frictionloss.max() == 0
    assert (only_cone.opt.cone, only_cone.opt.impratio) == (0, 100.0)
    assert only_cone.dof_frictionloss.max() == mjcf.dof_frictionloss.max() > 0
    env = SpotWalkEnv(physics={"cone": "pyramidal"})
    assert env.robot.model.opt.cone == 0


@pytest.mark.parametrize("physics,field", [({"impratio": 0.5}, "physics.impratio"),
                                           ({"foot_condim": 2}, "physics.foot_condim"),
                                           ({"solver": "Euler"}, "physics.solver"),
                                           ({"iterations": float("inf")}, "physics.iterations")])
def test_bad_physics_settings_are_refused_by_field(physics, field):
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        SpotWalkEnv(physics=physics)


def test_a_fast_spot_holds_about_a_megabyte_and_its_arena_never_fills():
    # MuJoCo's default arena (14.7 MB) and Spot's textures (5 MB) made each robot ~20 MB:
    # a thousand did not fit in 24 GB. The fast model keeps what feet-only contacts need.
    from velora_robot.simulation.model import FAST_ARENA_BYTES
    from velora_robot.simulation.robot import SimRobot

    rng = np.random.default_rng(0)
    robot = SimRobot(get_spec("spot"))
    assert robot.model.narena == FAST_ARENA_BYTES and robot.model.ntex == 0
    assert robot.model.nbuffer < 1_000_000
    used = 0
    for k in range(600):  # random actions: it falls, and resets
        if k % 150 == 0:
            robot.reset(rng)
        robot.step(robot.io.targets(rng.uniform(-1, 1, 12)))
        used = max(used, robot.data.maxuse_arena)
    assert 0 < used < FAST_ARENA_BYTES / 10
    assert all(w.number == 0 for w in robot.data.warning)


def test_the_batch_on_native_threads_steps_bit_identical_to_one_robot_at_a_time():
    # MuJoCo's batch (one model, a state row per robot, per-robot randomized fields, two
    # threads) against separate SimRobots with the same draws: latency on both sides,
    # pushes, resets mid-run.
    from velora_robot.simulation.randomization import Randomization
    from velora_robot.simulation.robot import RobotBatch, SimRobot

    spec = get_spec("spot")
    rand = Randomization(enabled=True, latency_s=(0.0, 0.03), sensor_latency_s=(0.0, 0.03))
    n = 4
    batch = RobotBatch(spec, n, randomization=rand, threads=2)
    alone = [SimRobot(spec, randomization=rand) for _ in range(n)]
    for i in range(n):
        batch.reset(i, np.random.default_rng(i))
        alone[i].reset(np.random.default_rng(i))
    assert len({(d.latency_steps, d.sensor_latency_steps) for d in batch.draws}) > 1
    rng = np.random.default_rng(0)
    for k in range(40):
        targets = batch.io.targets(rng.uniform(-1, 1, (n, spec.n_joints)))
        batch.step(targets)
        for robot, target in zip(alone, targets, strict=True):
            robot.step(target)
        if k == 10:
            batch.push(1, np.array([0.5, -0.3]))
            alone[1].push(np.array([0.5, -0.3]))
        if k == 20:
            batch.reset(2, np.random.default_rng(7))
            alone[2].reset(np.random.default_rng(7))
        got = batch.measure()
        for i, robot in enumerate(alone):
            want = robot.measure()
            np.testing.assert_array_equal(got.state.q[i], want.state.q)
            np.testing.assert_array_equal(got.state.gyro[i], want.state.gyro)
            np.testing.assert_array_equal(got.base_pos[i], want.base_pos)
            np.testing.assert_array_equal(got.tau[i], want.tau)
    assert not batch.unstable.any()


def test_a_thousand_spots_fit_in_one_batch_of_state_rows():
    from velora_robot.simulation.robot import RobotBatch

    batch = RobotBatch(get_spec("spot"), 1024)
    assert batch.sim.state.nbytes < 2_000_000  # the state of 1,024 robots: under 2 MB
    rng = np.random.default_rng(0)
    for i in range(1024):
        batch.reset(i, rng)
    for _ in range(3):
        batch.step(batch.io.targets(rng.uniform(-1, 1, (1024, 12))))
    assert np.isfinite(batch.measure().state.q).all()


def test_sensor_noise_is_each_robots_own_uniform_draw_bit_for_bit():
    # The noise is drawn in place for speed; it must stay exactly what each robot's
    # generator gives for rng.uniform(-w, w), so that evaluations stay reproducible.
    from velora_robot.simulation.randomization import add_noise

    task = SpotWalkTask(3, randomization={"enabled": True})
    for i in range(3):
        task.reset(i, seed=10 + i)
    state = task._measurement().state
    twins = [np.random.default_rng() for _ in range(3)]
    for twin, rng in zip(twins, task.rngs, strict=True):
        twin.bit_generator.state = rng.bit_generator.state
    expected = task.io.observation(
        add_noise(state, np.stack([t.uniform(-task._noise, task._noise) for t in twins])),
        task.last_action, task.command, task.steps * task.dt)
    np.testing.assert_array_equal(task.observe(), expected)
