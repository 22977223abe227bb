"""`SimRobot`: a robot simulated in MuJoCo as its controller sees it — joint targets in,
measurements out — with PD servos at the physics rate, actuation and sensing latency,
domain randomization and pushes. `RobotBatch` does the same for many robots at once on
MuJoCo's own thread pool and measures them as arrays. The simulated hardware uses the first,
the training envs the second; a test holds them to the same bits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import mujoco
import mujoco.batch
import numpy as np

from velora_robot.robots.observation import RobotIO, RobotState, to_base_frame
from velora_robot.robots.spec import RobotSpec
from velora_robot.simulation.delay import History, depth_for
from velora_robot.simulation.model import ModelIndex, Variant, build_model
from velora_robot.simulation.physics import Physics
from velora_robot.simulation.randomization import RANDOMIZED, Draw, Randomization, Randomizer

_DOWN = np.array([0.0, 0.0, -1.0])


@dataclass
class Measurement:
    """Sensor readings (`state`) and simulator truth, with any leading batch dimension."""

    state: RobotState
    base_pos: np.ndarray  # world position, m
    base_lin_vel: np.ndarray  # base frame, m/s (no onboard sensor measures it directly)
    base_yaw: np.ndarray  # world heading of the base, rad
    tau: np.ndarray  # joint torques applied by the servos, N*m
    contacts: np.ndarray  # bool per foot
    foot_heights: np.ndarray  # per foot, its lowest point above z = 0, m


def measure(index: ModelIndex, qpos: np.ndarray, qvel: np.ndarray, tau: np.ndarray,
            sensordata: np.ndarray) -> Measurement:
    """Measurements from MuJoCo state arrays of shape (..., nq), (..., nv), (..., nu),
    (..., nsensordata)."""
    state, lin = _sensed(index, qpos, qvel)
    batch, b = qpos.shape[:-1], index.base_qpos
    return Measurement(
        state=state,
        base_pos=np.zeros((*batch, 3)) if b is None else qpos[..., b:b + 3].copy(),
        base_lin_vel=np.zeros((*batch, 3)) if lin is None else lin,
        base_yaw=np.zeros(batch) if b is None else _yaw(qpos[..., b + 3:b + 7]),
        tau=tau.copy(), contacts=index.contacts(sensordata),
        foot_heights=index.foot_heights(sensordata))


def with_sensors(truth: Measurement, index: ModelIndex, qpos: np.ndarray, qvel: np.ndarray
                 ) -> Measurement:
    """`truth` with its sensor readings (`state`) taken from delayed MuJoCo arrays."""
    return dataclasses.replace(truth, state=_sensed(index, qpos, qvel)[0])


def _sensed(index: ModelIndex, qpos: np.ndarray, qvel: np.ndarray
            ) -> tuple[RobotState, np.ndarray | None]:
    """What the sensors read from these arrays, and the base's linear velocity in its own
    frame (None for a robot without a free base)."""
    batch = qpos.shape[:-1]
    if index.base_qpos is None:
        gyro, gravity, lin = np.zeros((*batch, 3)), np.broadcast_to(_DOWN, (*batch, 3)).copy(), None
    else:
        b, v = index.base_qpos, index.base_dof
        gyro = qvel[..., v + 3:v + 6].copy()
        # Gravity and the base velocity rotated into the base frame in one call.
        world = np.stack([np.broadcast_to(_DOWN, (*batch, 3)), qvel[..., v:v + 3]], axis=-2)
        gravity, lin = np.moveaxis(to_base_frame(qpos[..., None, b + 3:b + 7], world), -2, 0)
    return RobotState(q=qpos[..., index.qpos].copy(), dq=qvel[..., index.dof].copy(),
                      gyro=gyro, gravity=gravity), lin


def _yaw(quat_wxyz: np.ndarray) -> np.ndarray:
    """Heading (rotation about world z) of orientations given as (..., 4) quaternions."""
    w, x, y, z = np.moveaxis(quat_wxyz, -1, 0)
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


_SENSED = ("qpos", "qvel", "sensordata")  # what the sensors report, delayed when they lag


class SimRobot:
    """One simulated robot on its own `MjData`. `step(targets)` advances one control period.

    Latency is a delay line of whole physics steps, of any length: a target sent now
    reaches the servos `draw.latency_steps` later (until then the earlier ones apply, each
    from its own due step), and `measure()` reports the sensors as they were
    `draw.sensor_latency_steps` ago (the simulator's truth fields stay current)."""

    def __init__(self, spec: RobotSpec, *, source: str = "default", variant: Variant = "fast",
                 randomization: Randomization | None = None,
                 physics: Physics | None = None) -> None:
        self.spec = spec
        self.io = RobotIO(spec)
        self.source, self.physics = source, physics
        self.model, self.index = build_model(spec, source, variant, physics)
        self.data = mujoco.MjData(self.model)
        self.randomization = randomization or Randomization()
        self.randomizer = Randomizer(self.model, self.index, self.randomization)
        self.draw: Draw | None = None
        self._frames: Frames | None = None
        act, sense = self.randomizer.max_latency_steps()
        m = self.model
        # Stepped by calls of any length (the HAL's nstep): one target per call, and a
        # sensor record per physics step.
        self._actuation = History(1, depth_for(act, 1), m.nu)
        self._sensors = History(1, sense + 2, m.nq + m.nv + m.nsensordata)
        self._step = 0  # physics steps since the reset
        self._actuation.clear(0, self.io.q0)

    @property
    def act_delay(self) -> int:
        """Physics steps between sending a target and the servos tracking it."""
        return 0 if self.draw is None else self.draw.latency_steps

    @property
    def sensor_delay(self) -> int:
        """Physics steps the measured state lags the simulated one."""
        return 0 if self.draw is None else self.draw.sensor_latency_steps

    def reset(self, rng: np.random.Generator) -> None:
        """Home pose at rest; draw new physical parameters when randomization is on."""
        self.draw = self.randomizer.draw(rng) if self.randomization.enabled else None
        self.randomizer.apply(self.draw)
        d = self.data
        mujoco.mj_resetData(self.model, d)
        home_pose(self.spec, self.index, self.io.q0, d.qpos, d.ctrl)
        mujoco.mj_forward(self.model, d)
        self._step = 0
        self._actuation.clear(0, self.io.q0)
        self._sensors.clear(0, self._record())

    def set_gains(self, kp: np.ndarray, kd: np.ndarray) -> None:
        """The servos' PD gains from now on (kp 0: damping), as a motor driver takes them."""
        self.model.actuator_gainprm[:, 0] = kp
        self.model.actuator_biasprm[:, 1] = -kp
        self.model.actuator_biasprm[:, 2] = -kd

    def step(self, targets: np.ndarray, nstep: int | None = None) -> None:
        """Send `targets` and advance one control period of physics steps (or `nstep`):
        each target takes over at its due step; the sensors are recorded at every step."""
        nstep = self.spec.substeps if nstep is None else nstep
        self._actuation.push(np.asarray(targets, dtype=float)[None],
                             np.array([self._step + self.act_delay]))
        # the targets of this period's steps, and of the next step (ctrl holds it after)
        ctrl = self._actuation.latest(self._step + np.arange(nstep + 1)[None])[0]
        d = self.data
        for j in range(nstep):
            d.ctrl[:] = ctrl[j]
            mujoco.mj_step(self.model, d)
            self._step += 1
            if self.sensor_delay:
                self._sensors.push(self._record()[None], np.array([self._step]))
        d.ctrl[:] = ctrl[nstep]

    def _record(self) -> np.ndarray:
        return np.concatenate([getattr(self.data, name) for name in _SENSED])

    def sensed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """qpos, qvel and sensordata as the sensors report them now (`sensor_delay` old; the
        state at the reset while the episode is younger than that)."""
        if not self.sensor_delay:
            d = self.data
            return d.qpos, d.qvel, d.sensordata
        lagged = self._sensors.latest(np.array([self._step - self.sensor_delay]))[0]
        return _split(self.model, lagged)

    def get_state(self) -> dict:
        """Everything needed to continue exactly from here (physics, this episode's draw,
        the targets on their way, the recorded sensors)."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return {"physics": state,
                "draw": None if self.draw is None else dataclasses.asdict(self.draw),
                "step": self._step, "actuation": self._actuation.get_state(),
                "sensors": self._sensors.get_state()}

    def set_state(self, saved: dict) -> None:
        """Restore a `get_state()` result."""
        _check_saved(saved, ("physics", "draw", "step", "actuation", "sensors"))
        self.draw = None if saved["draw"] is None else Draw(**saved["draw"])
        self.randomizer.apply(self.draw)
        mujoco.mj_setState(self.model, self.data, saved["physics"],
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)
        self._step = saved["step"]
        self._actuation.set_state(saved["actuation"])
        self._sensors.set_state(saved["sensors"])

    def push(self, velocity_xy: np.ndarray) -> None:
        """Add a horizontal velocity to the base (a shove)."""
        if self.index.base_dof is not None:
            self.data.qvel[self.index.base_dof:self.index.base_dof + 2] += velocity_xy

    def measure(self) -> Measurement:
        """Measurements (no noise): the sensors' state as `sensed()`, the truth now."""
        d = self.data
        truth = measure(self.index, d.qpos, d.qvel, d.actuator_force, d.sensordata)
        return with_sensors(truth, self.index, *self.sensed()[:2]) if self.sensor_delay else truth

    def render(self, width: int = 480, height: int = 360) -> np.ndarray:
        """An RGB frame from a camera that follows the base (needs an OpenGL backend:
        MUJOCO_GL=egl on a headless machine, the default this package sets there)."""
        if self._frames is None:
            self._frames = Frames(self.spec, self.source, self.physics, width, height)
        return self._frames.render(self.data.qpos)

    def close(self) -> None:
        """Free the renderer."""
        if self._frames is not None:
            self._frames.close()
            self._frames = None


def home_pose(spec: RobotSpec, index: ModelIndex, q0: np.ndarray, qpos: np.ndarray,
              ctrl: np.ndarray) -> None:
    """Write the home pose (base upright at the spec's height, joints at q0, held joints at
    theirs) and hold it."""
    if index.base_qpos is not None:
        qpos[index.base_qpos:index.base_qpos + 7] = [0, 0, spec.base_height, 1, 0, 0, 0]
    qpos[index.qpos] = q0
    qpos[index.held_qpos] = spec.held_pose
    ctrl[:] = q0


def _split(model: mujoco.MjModel, record: np.ndarray) -> tuple[np.ndarray, ...]:
    """qpos, qvel and sensordata of a sensor record (..., nq + nv + nsensordata)."""
    return tuple(np.split(record, [model.nq, model.nq + model.nv], axis=-1))


def _check_saved(saved: dict, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in saved]
    if missing:
        raise ValueError(
            f"the saved simulator state lacks {missing}: it was written by an earlier "
            "velora-robot whose robots stepped one MjData each; resume it with that version, "
            "or start the run again")


class Frames:
    """RGB frames of a robot from a camera that follows its base. Drawn with the `full`
    model (meshes, textures) whatever variant simulates: the fast one has no visuals, and
    both share their joints, so a pose is the same qpos in either."""

    def __init__(self, spec: RobotSpec, source: str, physics: Physics | None, width: int,
                 height: int) -> None:
        self.model, index = build_model(spec, source, "full", physics)
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, height, width)
        self.camera = mujoco.MjvCamera()
        self.camera.distance, self.camera.elevation, self.camera.azimuth = 2.5, -20.0, 135.0
        self.base = index.base_body
        if self.base is None:
            self.camera.lookat[:] = self.model.stat.center
            self.camera.distance = 3 * self.model.stat.extent

    def render(self, qpos: np.ndarray) -> np.ndarray:
        """The frame of the robot at joint positions `qpos`."""
        data = self.data
        data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, data)
        if self.base is not None:
            self.camera.lookat[:] = data.xpos[self.base]
        self.renderer.update_scene(data, self.camera)
        return self.renderer.render()

    def close(self) -> None:
        """Free the renderer."""
        self.renderer.close()


class RobotBatch:
    """`n` robots of one spec stepped together by MuJoCo's own batch (`mujoco.batch`: one
    model, a row of state per robot, a native thread pool with the GIL released, per-robot
    values only for the model fields randomization draws) and measured as arrays. Steps
    bit-identical to a loop of `SimRobot`s with the same draws (a test)."""

    def __init__(self, spec: RobotSpec, n: int, *, source: str = "default",
                 variant: Variant = "fast", randomization: Randomization | None = None,
                 physics: Physics | None = None, threads: int = 1) -> None:
        self.spec, self.io = spec, RobotIO(spec)
        self.source, self.physics = source, physics
        self.model, self.index = build_model(spec, source, variant, physics)
        self.randomization = randomization or Randomization()
        self.randomizer = Randomizer(self.model, self.index, self.randomization)
        self.n = n
        self.draws: list[Draw | None] = [None] * n
        self._open(n, threads)
        self.steps = np.zeros(n, dtype=np.int64)  # physics steps since each robot's reset
        self._act_delay = np.zeros(n, dtype=np.int64)
        self._sense_delay = np.zeros(n, dtype=np.int64)
        nstep, m = spec.substeps, self.model
        self._substeps = np.arange(nstep)
        act, sense = self.randomizer.max_latency_steps()
        self._actuation = History(n, depth_for(act, nstep), m.nu)
        # One sensor record per period, of the step a later measure() reports.
        self._sensors = (History(n, depth_for(sense, nstep), m.nq + m.nv + m.nsensordata)
                         if sense else None)
        self._records: dict | None = None  # rollout's output arrays, reused
        self.unstable = np.zeros(n, dtype=bool)  # MuJoCo warned while stepping (diverged)
        self._frames: Frames | None = None

    def _open(self, n: int, threads: int) -> None:
        """Create the simulator of `n` robots: MuJoCo's batch, its live state arrays and the
        per-robot rows of the randomized model fields."""
        self.sim = mujoco.batch.Batch(self.model, n, nthread=threads)
        self._fields = ({name: self.sim.expand(name) for name in RANDOMIZED}
                        if self.randomization.enabled else None)
        self.qpos, self.qvel, self.ctrl = (self.sim.bind(k) for k in ("qpos", "qvel", "ctrl"))
        self._tau, self._sensordata = self.sim.bind("actuator_force"), self.sim.bind("sensordata")
        self._warnings = self._warning_counts()

    def __len__(self) -> int:
        return self.n

    def _warning_counts(self) -> np.ndarray:
        return self.sim.warning[..., 1].sum(axis=1)

    def reset(self, i: int, rng: np.random.Generator) -> None:
        """Reset robot `i`: home pose at rest, a new draw when randomization is on."""
        draw = self.randomizer.draw(rng) if self.randomization.enabled else None
        self._apply(i, draw)
        self._home(i)
        self._started(i)

    def _home(self, i: int) -> None:
        """Robot `i`'s simulation at the home pose, at rest, its sensors computed."""
        self.sim.reset([i], stage=mujoco.mjtStage.mjSTAGE_NONE)
        home_pose(self.spec, self.index, self.io.q0, self.qpos[i], self.ctrl[i])
        self.sim.forward([i])
        self._warnings[i] = self._warning_counts()[i]

    def _started(self, i: int) -> None:
        """Robot `i`'s delay lines and counters at the start of an episode."""
        self.steps[i] = 0
        self._actuation.clear(i, self.io.q0)
        if self._sensors is not None:
            self._sensors.clear(i, self._record(i))
        self.unstable[i] = False

    def _apply(self, i: int, draw: Draw | None) -> None:
        self.draws[i] = draw
        self._act_delay[i] = 0 if draw is None else draw.latency_steps
        self._sense_delay[i] = 0 if draw is None else draw.sensor_latency_steps
        if self._fields is not None:
            self.randomizer.apply(draw, {k: v[i] for k, v in self._fields.items()})

    def _record(self, i: int) -> np.ndarray:
        return np.concatenate([self.qpos[i], self.qvel[i], self._sensordata[i]])

    def step(self, targets: np.ndarray) -> None:
        """One control period for every robot; targets (n, n_joints). Each target reaches
        the servos at its due step; robots whose simulation diverged are `unstable`."""
        nstep = self.spec.substeps
        self._actuation.push(targets, self.steps + self._act_delay)
        control = None
        if self._act_delay.any():  # each step's targets, per robot
            control = self._actuation.latest(self.steps[:, None] + self._substeps)
        record = _SENSED if self._sensors is not None else ()
        records = self._advance(nstep, targets, control, record)
        if self._sensors is not None:
            # the step of this period a measure() `lag` after some period's end reports
            j = nstep - 1 - self._sense_delay % nstep
            rows = np.arange(len(self))
            self._sensors.push(np.concatenate([records[k][rows, j] for k in _SENSED], axis=1),
                               self.steps + j + 1)
        self.steps += nstep
        self.unstable = self._diverged()

    def _advance(self, nstep: int, targets: np.ndarray, control: np.ndarray | None,
                 record: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        """Step the physics `nstep` times holding `targets`, or each robot's `control`
        (n, nstep, nu) per step; return the `record`ed arrays after every step (n, nstep, w)."""
        if control is None:
            self.ctrl[:] = targets
            if not record:
                self.sim.step(nstep=nstep)
                return None
        self._records = self.sim.rollout(nstep, control=control, record=record,
                                         out=self._records)
        return self._records

    def _diverged(self) -> np.ndarray:
        """Per robot, whether MuJoCo warned while stepping (its simulation diverged)."""
        counts = self._warning_counts()
        unstable = counts > self._warnings
        self._warnings = counts
        return unstable

    def push(self, i: int, velocity_xy: np.ndarray) -> None:
        """Add a horizontal velocity to robot `i`'s base (a shove)."""
        if self.index.base_dof is not None:
            self.qvel[i, self.index.base_dof:self.index.base_dof + 2] += velocity_xy

    def measure(self) -> Measurement:
        """Measurements of all robots, each array with a leading dimension n."""
        truth = measure(self.index, *self._arrays())
        if self._sensors is None:
            return truth
        sensed = self._sensors.latest(self.steps - self._sense_delay)
        return with_sensors(truth, self.index, *_split(self.model, sensed)[:2])

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The live qpos, qvel, actuator_force and sensordata of all robots."""
        return self.qpos, self.qvel, self._tau, self._sensordata

    def _physics_state(self) -> np.ndarray:
        """A copy of every robot's integration state, one row each."""
        return self.sim.state.copy()

    def _restore_physics(self, state: np.ndarray) -> None:
        """Set the integration state of every robot (rows from `_physics_state`), then
        compute what follows from it."""
        if state.shape != self.sim.state.shape:
            raise ValueError(f"saved simulator state is {state.shape}, this batch "
                             f"{self.sim.state.shape} (use the same robot and n_envs)")
        self.sim.state[:] = state
        self.sim.forward()
        self._warnings = self._warning_counts()

    def get_state(self) -> dict:
        """Everything needed to continue exactly from here (the state rows, the draws, the
        targets on their way, the recorded sensors)."""
        return {"state": self._physics_state(), "steps": self.steps.copy(),
                "draws": [None if d is None else dataclasses.asdict(d) for d in self.draws],
                "actuation": self._actuation.get_state(),
                "sensors": None if self._sensors is None else self._sensors.get_state()}

    def set_state(self, saved: dict) -> None:
        """Restore a `get_state()` result."""
        if not isinstance(saved, dict):
            _check_saved({}, ("state",))
        _check_saved(saved, ("state", "steps", "draws", "actuation", "sensors"))
        for i, d in enumerate(saved["draws"]):
            self._apply(i, None if d is None else Draw(**d))
        self._restore_physics(saved["state"])
        self.steps[:] = saved["steps"]
        self._actuation.set_state(saved["actuation"])
        if self._sensors is not None:
            self._sensors.set_state(saved["sensors"])

    def view(self, i: int) -> RobotView:
        """Robot `i` alone (measure, draw, model, render), as a single-robot env shows it."""
        return RobotView(self, i)

    def render(self, i: int, width: int = 480, height: int = 360) -> np.ndarray:
        """An RGB frame of robot `i` from a camera that follows its base."""
        if self._frames is None:
            self._frames = Frames(self.spec, self.source, self.physics, width, height)
        return self._frames.render(self._arrays()[0][i])

    def model_of(self, i: int) -> mujoco.MjModel:
        """A copy of the model robot `i` runs on, its drawn parameters included."""
        return self.sim.get_model(i)

    def close(self) -> None:
        """Free the renderer."""
        if self._frames is not None:
            self._frames.close()
            self._frames = None


@dataclass
class RobotView:
    """One robot of a `RobotBatch`."""

    batch: RobotBatch
    i: int

    @property
    def draw(self) -> Draw | None:
        """This episode's randomization draw (None: nominal)."""
        return self.batch.draws[self.i]

    @property
    def model(self) -> mujoco.MjModel:
        """A copy of the model this robot runs on, its drawn parameters included."""
        return self.batch.model_of(self.i)

    def measure(self) -> Measurement:
        """This robot's measurements (arrays without the batch dimension)."""
        return _row(self.batch.measure(), self.i)

    def render(self, width: int = 480, height: int = 360) -> np.ndarray:
        """An RGB frame of this robot."""
        return self.batch.render(self.i, width, height)

    def close(self) -> None:
        """Free the renderer."""
        self.batch.close()


def _row(m: Measurement, i: int) -> Measurement:
    """Robot `i`'s measurements out of a batch's: every array indexed on its first axis."""
    rows = {f.name: getattr(m, f.name)[i] for f in dataclasses.fields(m) if f.name != "state"}
    state = RobotState(**{f.name: getattr(m.state, f.name)[i]
                          for f in dataclasses.fields(m.state)})
    return Measurement(state=state, **rows)
