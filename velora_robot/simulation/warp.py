"""`WarpBatch`: a `RobotBatch` whose physics runs on MuJoCo Warp (GPU, or Warp's CPU device)
instead of MuJoCo's C thread pool. Everything above the physics — draws, delay lines,
pushes, measurements, exact resume — is `RobotBatch`'s own code, so a task runs unchanged
on either backend.

MuJoCo Warp steps every world of the batch in one launch and keeps the state in float32
device arrays. The host sees them as numpy arrays: on Warp's CPU device these are views of
the same memory; on CUDA they are copied across after each period (`_pull`) and back after
host edits (`_push`). Resets are deferred and done together (one masked `reset_data` and one
`forward` for all the robots reset since the last step), since a launch costs the same for
one world as for all.

Differences from the C backend (a test states their size): float32 state; MuJoCo Warp has
no PGS solver (use CG or Newton) and no warnings, so a robot is `unstable` when its state
stops being finite or its acceleration passes MuJoCo's own bound (1e10, mjMAXVAL).
"""

from __future__ import annotations

import copy
from typing import Any

import mujoco
import numpy as np

from velora_robot.errors import ConfigError
from velora_robot.simulation.randomization import RANDOMIZED
from velora_robot.simulation.robot import RobotBatch, home_pose

# What a step reads and writes that the host also reads or edits.
_STATE = ("qpos", "qvel", "act", "ctrl", "qacc_warmstart")
_OUTPUTS = ("actuator_force", "sensordata", "qacc")
_MAX_ACC = 1e10  # MuJoCo's mjMAXVAL: past it, mj_checkAcc warns and resets


def quiet_warp() -> Any:
    """Warp, configured before anything initializes it: no start-up banner, no line per
    kernel load."""
    import warp as wp

    wp.config.quiet = True
    wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
    return wp


def warp_device(device: str) -> str:
    """The Warp device for a `device` setting ("cpu", "cuda", "cuda:1"), checked to exist."""
    wp = quiet_warp()
    try:
        return str(wp.get_device(device))
    except (RuntimeError, ValueError) as exc:
        have = ", ".join(str(d) for d in wp.get_devices())
        raise ConfigError(f"device {device!r} is not available to MuJoCo Warp (this machine "
                          f"has: {have}): {exc}") from exc


class WarpBatch(RobotBatch):
    """`n` robots of one spec stepped by MuJoCo Warp on `device` (see the module docstring).
    Same interface and bookkeeping as `RobotBatch`; `threads` is unused."""

    def __init__(self, *args: Any, device: str = "cpu", **kwargs: Any) -> None:
        self.device = device
        self._pending: list[int] = []  # robots reset since the last flush
        super().__init__(*args, **kwargs)

    def _open(self, n: int, threads: int) -> None:
        wp = quiet_warp()
        import mujoco_warp as mjw

        self._mjw, self._wp = mjw, wp
        self.device = warp_device(self.device)
        self._aliased = self.device == "cpu"  # numpy() is then a view, not a copy
        model = self.model
        with wp.ScopedDevice(self.device):
            try:
                self.wmodel = mjw.put_model(model)
            except NotImplementedError as exc:
                raise ConfigError(f"robot {self.spec.name!r}: MuJoCo Warp cannot simulate this "
                                  f"model: {exc} (set physics.solver to CG or Newton)") from exc
            # C MuJoCo stops at its iteration limit silently; Warp would print a line per
            # step. Buffer overflows (contacts, constraints) still warn.
            self.wmodel.opt.warn_overflow &= ~mjw.OverflowType.ITERATIONS
            data = mujoco.MjData(model)
            # Contacts per world: a few per foot geom (only feet collide in the fast
            # variant) and constraint rows for each contact's friction pyramid or cone.
            nconmax = max(16, 4 * len(self.index.feet))
            self.wdata = mjw.put_data(model, data, nworld=n, nconmax=nconmax,
                                      njmax=6 * nconmax + 2 * model.nv)
            self._fields = None
            if self.randomization.enabled:
                self._fields = {}
                for name in RANDOMIZED:
                    nominal = getattr(self.wmodel, name)
                    rows = np.repeat(nominal.numpy(), n, axis=0)
                    setattr(self.wmodel, name, wp.array(rows, dtype=nominal.dtype))
                    self._fields[name] = self._host(getattr(self.wmodel, name))
        self._arr = {k: getattr(self.wdata, k) for k in (*_STATE, *_OUTPUTS)}
        self._np = {k: self._host(a) for k, a in self._arr.items()}
        self.qpos, self.qvel, self.ctrl = self._np["qpos"], self._np["qvel"], self._np["ctrl"]
        self._tau, self._sensordata = self._np["actuator_force"], self._np["sensordata"]

    def _host(self, array: Any) -> np.ndarray:
        """The host copy of a Warp array (a view of it on the CPU device)."""
        return array.numpy()

    def _pull(self, *names: str) -> None:
        """Bring the named data arrays from the device to the host copies."""
        if not self._aliased:
            for k in names:
                self._np[k][:] = self._arr[k].numpy()

    def _push(self, *names: str) -> None:
        """Send the host copies of the named data arrays to the device."""
        if not self._aliased:
            for k in names:
                self._arr[k].assign(self._np[k])

    def _push_fields(self) -> None:
        if self._fields is not None and not self._aliased:
            for name, rows in self._fields.items():
                getattr(self.wmodel, name).assign(rows)

    # ---------------------------------------------------------------- resets
    def _home(self, i: int) -> None:
        self._pending.append(i)

    def _started(self, i: int) -> None:
        """Deferred to `_flush`, with the reset itself."""

    def step(self, targets: np.ndarray) -> None:
        self._flush()
        super().step(targets)

    def get_state(self) -> dict:
        self._flush()
        return super().get_state()

    def _flush(self) -> None:
        """Carry out the deferred resets: worlds cleared together, home poses written, one
        forward pass; the other robots' outputs stay those of their last step."""
        if not self._pending:
            return
        ids, self._pending = np.unique(self._pending), []
        wp, mjw = self._wp, self._mjw
        mask = np.zeros(self.n, dtype=bool)
        mask[ids] = True
        self._push_fields()
        self._push("qvel")  # pushes given since the last step
        mjw.reset_data(self.wmodel, self.wdata, reset=wp.array(mask, device=self.device))
        self._pull(*_STATE)
        for i in ids:
            home_pose(self.spec, self.index, self.io.q0, self.qpos[i], self.ctrl[i])
        self._push("qpos", "ctrl")
        kept = {k: self._np[k][~mask].copy() for k in _OUTPUTS}
        mjw.forward(self.wmodel, self.wdata)
        self._pull(*_OUTPUTS)
        for k, rows in kept.items():
            self._np[k][~mask] = rows
        self._push(*_OUTPUTS)
        for i in ids:
            RobotBatch._started(self, int(i))

    # --------------------------------------------------------------- stepping
    def _advance(self, nstep: int, targets: np.ndarray, control: np.ndarray | None,
                 record: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        self._push("qvel")  # pushes given since the last step
        records = {k: np.zeros((self.n, nstep, self._np[k].shape[1])) for k in record}
        if control is None:
            self.ctrl[:] = targets
        for j in range(nstep):
            if control is not None:
                self.ctrl[:] = control[:, j]
            self._push("ctrl")
            self._mjw.step(self.wmodel, self.wdata)
            if record:
                self._pull(*record)
                for k in record:
                    records[k][:, j] = self._np[k]
        self._wp.synchronize_device(self.device)
        self._pull(*_STATE, *_OUTPUTS)
        return records

    def _diverged(self) -> np.ndarray:
        state = np.concatenate([self.qpos, self.qvel, self._np["qacc"]], axis=1)
        return ~np.isfinite(state).all(axis=1) | (np.abs(self._np["qacc"]) > _MAX_ACC).any(1)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._flush()
        return tuple(a.astype(float) for a in (self.qpos, self.qvel, self._tau,  # type: ignore[return-value]
                                              self._sensordata))

    # ------------------------------------------------------------ exact resume
    # The saved rows are MuJoCo's integration state (mjSTATE_INTEGRATION), as the C batch
    # saves them: a run may resume on the other backend.
    def _physics_state(self) -> np.ndarray:
        scratch, spec = mujoco.MjData(self.model), mujoco.mjtState.mjSTATE_INTEGRATION
        rows = np.empty((self.n, mujoco.mj_stateSize(self.model, spec)))
        for i in range(self.n):
            for k in _STATE:
                getattr(scratch, k)[:] = self._np[k][i]
            mujoco.mj_getState(self.model, scratch, rows[i], spec)
        return rows

    def _restore_physics(self, state: np.ndarray) -> None:
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        size = mujoco.mj_stateSize(self.model, spec)
        if state.shape != (self.n, size):
            raise ValueError(f"saved simulator state is {state.shape}, this batch "
                             f"{(self.n, size)} (use the same robot and n_envs)")
        self._pending = []
        scratch = mujoco.MjData(self.model)
        for i in range(self.n):
            mujoco.mj_setState(self.model, scratch, state[i], spec)
            for k in _STATE:
                self._np[k][i] = getattr(scratch, k)
        self._push_fields()
        self._push(*_STATE)
        self._mjw.forward(self.wmodel, self.wdata)
        self._pull(*_OUTPUTS)

    # ------------------------------------------------------------- one robot
    def model_of(self, i: int) -> mujoco.MjModel:
        model = copy.copy(self.model)
        for name, rows in (self._fields or {}).items():
            getattr(model, name)[:] = rows[i]
        return model
