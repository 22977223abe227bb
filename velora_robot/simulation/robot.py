"""`SimRobot`: a robot simulated in MuJoCo as its controller sees it — joint targets in,
measurements out — with PD servos at the physics rate, actuation latency, domain
randomization and pushes. `RobotBatch` steps several and measures them as arrays. The
training envs and the simulated hardware both use these."""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from velora_robot.robots.observation import RobotIO, RobotState, to_base_frame
from velora_robot.robots.spec import RobotSpec
from velora_robot.simulation.model import ModelIndex, Variant, build_model
from velora_robot.simulation.physics import Physics
from velora_robot.simulation.randomization import Draw, Randomization, Randomizer

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


def measure(index: ModelIndex, qpos: np.ndarray, qvel: np.ndarray, tau: np.ndarray,
            sensordata: np.ndarray) -> Measurement:
    """Measurements from MuJoCo state arrays of shape (..., nq), (..., nv), (..., nu),
    (..., nsensordata)."""
    batch = qpos.shape[:-1]
    if index.base_qpos is None:
        quat = pos = lin = None
        gyro = np.zeros((*batch, 3))
    else:
        b, v = index.base_qpos, index.base_dof
        quat, pos = qpos[..., b + 3:b + 7], qpos[..., b:b + 3]
        gyro = qvel[..., v + 3:v + 6].copy()
        # Gravity and the base velocity rotated into the base frame in one call.
        world = np.stack([np.broadcast_to(_DOWN, (*batch, 3)), qvel[..., v:v + 3]], axis=-2)
        gravity, lin = np.moveaxis(to_base_frame(quat[..., None, :], world), -2, 0)
    state = RobotState(
        q=qpos[..., index.qpos].copy(), dq=qvel[..., index.dof].copy(), gyro=gyro,
        gravity=np.broadcast_to(_DOWN, (*batch, 3)).copy() if quat is None else gravity)
    return Measurement(
        state=state,
        base_pos=np.zeros((*batch, 3)) if pos is None else pos.copy(),
        base_lin_vel=np.zeros((*batch, 3)) if lin is None else lin,
        base_yaw=np.zeros(batch) if quat is None else _yaw(quat),
        tau=tau.copy(), contacts=sensordata[..., index.touch] > 0)


def with_sensors(truth: Measurement, index: ModelIndex, qpos: np.ndarray, qvel: np.ndarray,
                 sensordata: np.ndarray) -> Measurement:
    """`truth` with its sensor readings (`state`) taken from delayed MuJoCo arrays."""
    sensed = measure(index, qpos, qvel, truth.tau, sensordata)
    return dataclasses.replace(truth, state=sensed.state)


def _yaw(quat_wxyz: np.ndarray) -> np.ndarray:
    """Heading (rotation about world z) of orientations given as (..., 4) quaternions."""
    w, x, y, z = np.moveaxis(quat_wxyz, -1, 0)
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class SimRobot:
    """One simulated robot. `step(targets)` advances one control period.

    Latency is a delay line of whole physics steps, of any length: a target sent now
    reaches the servos `draw.latency_steps` later (until then the earlier ones apply, each
    from its own due step), and `measure()` reports the sensors as they were
    `draw.sensor_latency_steps` ago (the simulator's truth fields stay current)."""

    def __init__(self, spec: RobotSpec, *, source: str = "default", variant: Variant = "fast",
                 randomization: Randomization | None = None,
                 physics: Physics | None = None) -> None:
        self.spec = spec
        self.io = RobotIO(spec)
        self.model, self.index = build_model(spec, source, variant, physics)
        self.data = mujoco.MjData(self.model)
        self.randomization = randomization or Randomization()
        self.randomizer = Randomizer(self.model, self.index, self.randomization)
        self.draw: Draw | None = None
        self._renderer: mujoco.Renderer | None = None
        self._clear_delay_lines(self.io.q0)

    def _clear_delay_lines(self, target: np.ndarray) -> None:
        self._step = 0  # physics steps since the reset
        self._pending: deque[tuple[int, np.ndarray]] = deque()  # (due step, targets)
        self._target = np.array(target, dtype=float)  # what the servos track now
        self._sensed: deque[tuple[int, tuple[np.ndarray, ...]]] = deque()  # (step, sensors)

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
        d, idx = self.data, self.index
        mujoco.mj_resetData(self.model, d)
        if idx.base_qpos is not None:
            d.qpos[idx.base_qpos:idx.base_qpos + 7] = [0, 0, self.spec.base_height, 1, 0, 0, 0]
        d.qpos[idx.qpos] = self.io.q0
        d.ctrl[:] = self.io.q0
        mujoco.mj_forward(self.model, d)
        self._clear_delay_lines(self.io.q0)
        if self.sensor_delay:
            self._snapshot()

    def step(self, targets: np.ndarray, nstep: int | None = None) -> None:
        """Send `targets` and advance one control period of physics steps (or `nstep`):
        each queued target takes over at its due step; the sensors are recorded at the
        steps a later `measure()` will report."""
        nstep = self.spec.substeps if nstep is None else nstep
        self._pending.append((self._step + self.act_delay, np.array(targets, dtype=float)))
        end = self._step + nstep
        # The one step of this period whose sensors are read `sensor_delay` after a period
        # ends (periods end at multiples of nstep since the reset).
        lag = self.sensor_delay
        record = end - lag % nstep if lag else None
        while True:
            while self._pending and self._pending[0][0] <= self._step:
                self._target = self._pending.popleft()[1]
            self.data.ctrl[:] = self._target
            if self._step >= end:
                break
            stop = end
            if self._pending:
                stop = min(stop, self._pending[0][0])
            if record is not None and self._step < record:
                stop = min(stop, record)
            mujoco.mj_step(self.model, self.data, nstep=stop - self._step)
            self._step = stop
            if self._step == record:
                self._snapshot()
        while len(self._sensed) > 1 and self._sensed[1][0] <= self._step - lag:
            self._sensed.popleft()

    def _snapshot(self) -> None:
        d = self.data
        self._sensed.append((self._step, (d.qpos.copy(), d.qvel.copy(), d.sensordata.copy())))

    def sensed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """qpos, qvel and sensordata as the sensors report them now (`sensor_delay` old; the
        state at the reset while the episode is younger than that)."""
        if not self.sensor_delay:
            d = self.data
            return d.qpos, d.qvel, d.sensordata
        return self._sensed[0][1]

    def get_state(self) -> dict:
        """Everything needed to continue exactly from here (physics, this episode's draw,
        the targets on their way and the one applied, the recorded sensors)."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return {"physics": state,
                "draw": None if self.draw is None else dataclasses.asdict(self.draw),
                "target": self._target.copy(), "step": self._step,
                "pending": [(due, t.copy()) for due, t in self._pending],
                "sensed": [(at, tuple(a.copy() for a in arrays)) for at, arrays in self._sensed]}

    def set_state(self, saved: dict) -> None:
        """Restore a `get_state()` result."""
        self.draw = None if saved["draw"] is None else Draw(**saved["draw"])
        self.randomizer.apply(self.draw)
        mujoco.mj_setState(self.model, self.data, saved["physics"],
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)
        self._clear_delay_lines(saved["target"])
        self._step = saved["step"]
        self._pending.extend((due, np.array(t)) for due, t in saved["pending"])
        self._sensed.extend((at, tuple(np.array(a) for a in arrays))
                            for at, arrays in saved["sensed"])

    def push(self, velocity_xy: np.ndarray) -> None:
        """Add a horizontal velocity to the base (a shove)."""
        if self.index.base_dof is not None:
            self.data.qvel[self.index.base_dof:self.index.base_dof + 2] += velocity_xy

    def measure(self) -> Measurement:
        """Measurements (no noise): the sensors' state as `sensed()`, the truth now."""
        d = self.data
        truth = measure(self.index, d.qpos, d.qvel, d.actuator_force, d.sensordata)
        return with_sensors(truth, self.index, *self.sensed()) if self.sensor_delay else truth

    def render(self, width: int = 480, height: int = 360) -> np.ndarray:
        """An RGB frame from a camera that follows the base (needs an OpenGL backend:
        MUJOCO_GL=egl on a headless machine, the default this package sets there)."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, height, width)
            self._camera = mujoco.MjvCamera()
            self._camera.distance, self._camera.elevation = 2.5, -20.0
            self._camera.azimuth = 135.0
            if self.index.base_body is None:
                self._camera.lookat[:] = self.model.stat.center
                self._camera.distance = 3 * self.model.stat.extent
        if self.index.base_body is not None:
            self._camera.lookat[:] = self.data.xpos[self.index.base_body]
        self._renderer.update_scene(self.data, self._camera)
        return self._renderer.render()

    def close(self) -> None:
        """Free the renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class RobotBatch:
    """`n` independent robots of one spec (each with its own model, so each can have its own
    randomization), stepped in a loop and measured together as arrays."""

    def __init__(self, spec: RobotSpec, n: int, **robot_kwargs: object) -> None:
        self.robots = [SimRobot(spec, **robot_kwargs) for _ in range(n)]  # type: ignore[arg-type]
        first = self.robots[0]
        self.spec, self.index = spec, first.index
        m = first.model
        self._qpos = np.zeros((n, m.nq))
        self._qvel = np.zeros((n, m.nv))
        self._tau = np.zeros((n, m.nu))
        self._sensors = np.zeros((n, m.nsensordata))
        # What each robot's sensors report (delayed copies of the three arrays above).
        # What the sensors report, delayed copies of the three arrays above; kept only when
        # the randomization can draw a sensing latency (the robots share its ranges).
        rand = first.randomization
        self._sensing = rand.enabled and rand.sensor_latency_s[1] > 0
        self._sensed = [np.zeros_like(a) for a in (self._qpos, self._qvel, self._sensors)]

    def __len__(self) -> int:
        return len(self.robots)

    def _gather(self, i: int) -> None:
        d = self.robots[i].data
        self._qpos[i], self._qvel[i] = d.qpos, d.qvel
        self._tau[i], self._sensors[i] = d.actuator_force, d.sensordata
        if self._sensing:
            for into, value in zip(self._sensed, self.robots[i].sensed(), strict=True):
                into[i] = value

    def reset(self, i: int, rng: np.random.Generator) -> None:
        """Reset robot `i`."""
        self.robots[i].reset(rng)
        self._gather(i)

    def get_state(self) -> list[dict]:
        """Per-robot `SimRobot.get_state()`."""
        return [robot.get_state() for robot in self.robots]

    def set_state(self, saved: list[dict]) -> None:
        """Restore a `get_state()` result."""
        for i, (robot, state) in enumerate(zip(self.robots, saved, strict=True)):
            robot.set_state(state)
            self._gather(i)

    def step(self, targets: np.ndarray) -> None:
        """One control period for every robot; targets (n, n_joints)."""
        for i, robot in enumerate(self.robots):
            robot.step(targets[i])
            self._gather(i)

    def measure(self) -> Measurement:
        """Measurements of all robots, each array with a leading dimension n."""
        truth = measure(self.index, self._qpos, self._qvel, self._tau, self._sensors)
        if not self._sensing:
            return truth
        return with_sensors(truth, self.index, *self._sensed)
