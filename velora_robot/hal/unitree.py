"""`UnitreeHardware`: a Unitree robot (the G1) through Unitree SDK2's low-level interface over
DDS — the loop unitree_rl_gym's `deploy_real` runs. Each `write` publishes one `rt/lowcmd`
(every motor: enabled, target, kp, kd; the spec's held joints at their pose with their
gains) sealed with its CRC; `read` returns the newest `rt/lowstate` whose CRC checks.

Faults: a state older than `timeout_s` (the robot stopped publishing, stalled, or every
message failed its CRC) raises `HardwareError` after publishing one damping command (kp 0,
the spec's kd: if the robot still listens, it damps at once), which the controller turns
into damping mode. Shutdown from an active or failed link publishes motors-off commands.
`configure` waits up to `connect_s` for a first state and says which network interface and
DDS domain stayed silent; then, with `release_mode` (the default), it releases the robot's
own motion control through its motion_switcher service so that low-level commands reach
the motors (a G1 released while standing falls: hang it from its gantry first).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass
from operator import itemgetter

import numpy as np

from velora_robot.bridge import unitree as U
from velora_robot.bridge.motion_switcher import RPC_API_TIMEOUT, MotionSwitcherClient
from velora_robot.hal.base import Hardware, HardwareError, HardwareState, JointCommand
from velora_robot.robots.observation import to_base_frame
from velora_robot.robots.spec import RobotSpec

ENABLE, DISABLE = 1, 0  # a motor's mode in LowCmd
YIELDS = 5  # 1 ms waits for queued states before a stale one is a fault
RPC_CALL_S = 0.25  # one motion_switcher call's wait for its answer
TORQUE_OFF_FRAMES = 5  # motors-off commands published at shutdown (DDS may drop one)


@dataclass
class DdsCounters:
    """What happened on the topics."""

    sent: int = 0
    received: int = 0
    crc_errors: int = 0  # states dropped for a bad CRC
    stale_reads: int = 0


class UnitreeHardware(Hardware):
    """The robot of `spec` (which must carry a `unitree` motor table) on DDS domain
    `domain_id` over network `interface` ("lo" for the simulated robot on this machine)."""

    def __init__(self, spec: RobotSpec, *, interface: str = "lo", domain_id: int = 0,
                 timeout_s: float = 0.05, connect_s: float = 3.0,
                 damping_kd_scale: float = 1.0, release_mode: bool = True) -> None:
        super().__init__(spec)
        if spec.unitree is None:
            raise HardwareError(f"robot {spec.name!r} has no Unitree motor table (spec field "
                                "'unitree'): the unitree backend cannot address its motors")
        self.interface, self.domain_id = interface, domain_id
        self.timeout_s, self.connect_s = timeout_s, connect_s
        self.release_mode = release_mode
        self.released_mode: str | None = None  # the motion-control mode configure released
        self.joint_motor, self.held_motor, which = spec.unitree_motors()
        held = [spec.held[i] for i in which]
        self.held_q = np.array([h.default_pos for h in held])
        self.held_kp = np.array([h.kp for h in held])
        self.held_kd = np.array([h.kd for h in held])
        self.damping_kd = np.array([j.kd for j in spec.joints]) * damping_kd_scale
        self.counters = DdsCounters()
        self.state_age_s: deque[float] = deque(maxlen=100_000)  # per read: the state's age
        self._latest: tuple[float, tuple] | None = None  # (arrival, the state's values)
        self._mode_machine = 0
        self.msgs = U.family(spec.unitree.message)
        self._pub = self._sub = None
        # The messages as flat values. A blank command with what never changes in place
        # (every motor used: no velocity target; the held joints' pose and damping), and
        # where each call's values go; getters of the state's values.
        cmd, state = self.msgs.cmd, self.msgs.state
        motors = (*self.joint_motor, *self.held_motor)
        self._blank_cmd = cmd.values()
        for field, slots, column in (("dq", motors, np.zeros(len(motors))),
                                     ("tau", self.held_motor, 0 * self.held_q),
                                     ("q", self.held_motor, self.held_q),
                                     ("kd", self.held_motor, self.held_kd)):
            cmd.fill(self._blank_cmd, cmd.motors(field, slots), column)
        self._mode_at = cmd.motors("mode", motors)
        self._joint_at = {k: cmd.motors(k, self.joint_motor) for k in ("q", "kp", "kd", "tau")}
        self._held_kp_at = cmd.motors("kp", self.held_motor)
        self._head_at = [cmd.index[k] for k in ("mode_pr", "mode_machine") if k in cmd.index]
        self._get = {k: itemgetter(*state.motors(k, self.joint_motor))
                     for k in ("q", "dq", "tau_est")}
        self._get |= {k: itemgetter(*state.array(f"imu_state.{k}"))
                      for k in ("quaternion", "gyroscope")}
        self._tick_at = state.index["tick"]
        self._mode_machine_at = state.index.get("mode_machine")

    # ------------------------------------------------------------ the link
    def _on_state(self, sample: bytes) -> None:
        """DDS reader thread: keep the newest state whose CRC checks."""
        values = self.msgs.state.open(sample)
        if values is None:
            self.counters.crc_errors += 1
            return
        self.counters.received += 1
        self._latest = (time.monotonic(), values)

    def _on_configure(self) -> None:
        sdk = U.sdk()
        U.open_domain(self.domain_id, self.interface)
        self._pub = sdk.Publisher(U.LOWCMD, self.msgs.cmd.Sample)
        self._pub.Init()
        self._sub = sdk.Subscriber(U.LOWSTATE, self.msgs.state.Sample)
        self._sub.Init(self._on_state, U.QUEUE)
        deadline = time.monotonic() + self.connect_s
        while self._latest is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._latest is None:
            bad = f" ({self.counters.crc_errors} with a bad CRC)" if self.counters.crc_errors \
                else ""
            raise HardwareError(
                f"no Unitree robot answered on network interface {self.interface!r}, DDS "
                f"domain {self.domain_id}: no valid {U.LOWSTATE} in {self.connect_s:g} s"
                f"{bad}. Is the robot on, and the interface the one its cable is on?")
        if self._mode_machine_at is not None:  # the robot's model, echoed in commands
            self._mode_machine = int(self._latest[1][self._mode_machine_at])
        if self.release_mode:
            self.released_mode = self._release_motion_control()

    def _release_motion_control(self) -> str:
        """Release the robot's motion-control mode (retrying for `connect_s`); returns
        the mode released ("" if none was selected)."""
        where = f"unitree on {self.interface!r}, DDS domain {self.domain_id}"
        # Short calls, retried: a request sent before DDS has matched the service's
        # reader is lost, and its answer would be waited for in vain.
        client = MotionSwitcherClient(min(RPC_CALL_S, self.connect_s))
        deadline = time.monotonic() + self.connect_s
        released: str | None = None  # the mode the first answer named
        asked = False
        while True:
            code, mode = client.check_mode()
            if code == 0:
                released = mode if released is None else released
                if not mode:
                    return released
                if asked:  # it has not let go yet
                    time.sleep(0.1)
                client.release_mode()
                asked = True
            if time.monotonic() > deadline:
                break
        if released is None:
            why = "no answer" if code == RPC_API_TIMEOUT else f"error code {code}"
            raise HardwareError(
                f"{where}: the robot's motion_switcher service gave {why} to CheckMode in "
                f"{self.connect_s:g} s. If its firmware has no such service and it is "
                "already in debug mode (G1: L2+R2 on the remote), set hardware.release_mode: "
                "false")
        raise HardwareError(f"{where}: the robot stays in motion-control mode {released!r} "
                            f"after {self.connect_s:g} s of ReleaseMode requests; nothing was "
                            "sent to its motors")

    def _on_shutdown(self) -> None:
        for end in (self._sub, self._pub):
            if end is not None:
                end.Close()
        self._pub = self._sub = None

    def _on_deactivate(self) -> None:
        self._damp()

    def _on_torque_off(self) -> None:
        if self._pub is None:  # never connected
            return
        for _ in range(TORQUE_OFF_FRAMES):
            self._publish(np.zeros(len(self.joint_motor)), np.zeros(len(self.joint_motor)),
                          np.zeros(len(self.joint_motor)), mode=DISABLE)
            time.sleep(0.002)

    def link_report(self) -> dict[str, object]:
        """The topics' counters and how old the states read were (ms)."""
        ages = np.array(self.state_age_s or [np.nan]) * 1e3
        return {**asdict(self.counters), "released_mode": self.released_mode,
                "state_age_ms": {"p50": float(np.percentile(ages, 50)),
                                 "p99": float(np.percentile(ages, 99)),
                                 "max": float(ages.max())}}

    # ------------------------------------------------------------ commands
    def _publish(self, q: np.ndarray, kp: np.ndarray, kd: np.ndarray, *,
                 mode: int = ENABLE, tau: np.ndarray | None = None) -> None:
        values, fill = self._blank_cmd.copy(), self.msgs.cmd.fill
        if self._head_at:  # hg: pitch/roll ankle mode, and the robot's own mode echoed
            values[self._head_at[0]], values[self._head_at[1]] = 0, self._mode_machine
        fill(values, self._mode_at, [mode] * len(self._mode_at))
        for k, column in (("q", q), ("kp", kp), ("kd", kd),
                          ("tau", tau if tau is not None else 0 * q)):
            fill(values, self._joint_at[k], column)
        fill(values, self._held_kp_at, 0.0 * self.held_kp if not kp.any() else self.held_kp)
        self._pub.Write(self.msgs.cmd.seal(values))  # type: ignore[union-attr]
        self.counters.sent += 1

    def _damp(self) -> None:
        n = len(self.joint_motor)
        self._publish(np.zeros(n), np.zeros(n), self.damping_kd)

    def _write(self, command: JointCommand) -> None:
        if (~np.isfinite(command.q) & (command.kp > 0)).any():
            raise HardwareError("unitree: a non-finite joint target with kp > 0")
        q = np.where(np.isfinite(command.q), command.q, 0.0)
        self._publish(q, command.kp, command.kd, tau=command.tau_ff)

    # --------------------------------------------------------------- state
    def _age(self) -> float:
        latest = self._latest
        return float("inf") if latest is None else time.monotonic() - latest[0]

    def _read(self) -> HardwareState:
        age = self._age()
        # The reader thread needs the interpreter: after this thread held it (loading a
        # policy, a slow cycle), states wait in DDS's queue. Let them in before judging.
        for _ in range(YIELDS):
            if age <= self.timeout_s:
                break
            time.sleep(0.001)
            age = self._age()
        if age > self.timeout_s:
            self.counters.stale_reads += 1
            self._damp()
            raise HardwareError(
                f"unitree: no valid {U.LOWSTATE} for {age * 1e3:.0f} ms (limit "
                f"{self.timeout_s * 1e3:.0f} ms; {self.counters.crc_errors} dropped for a "
                "bad CRC): robot stopped, stalled or unreachable; damping sent")
        self.state_age_s.append(age)
        values = self._latest[1]  # type: ignore[index]
        get = {k: np.array(g(values), float) for k, g in self._get.items()}
        gravity = to_base_frame(get["quaternion"], np.array([0.0, 0.0, -1.0]))
        return HardwareState(q=get["q"], dq=get["dq"], tau=get["tau_est"],
                             gyro=get["gyroscope"], gravity=gravity,
                             time_s=values[self._tick_at] * 1e-3)
