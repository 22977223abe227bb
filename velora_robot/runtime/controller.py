"""`Controller`: one control cycle on the robot — read the hardware, build the observation
with the same `RobotIO` the training env used, run the policy, map the action to joint
targets the same way, and write what `Safety` allows. Timing lives in `loop.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from velora_robot.hal.base import Hardware, HardwareError, HardwareState, JointCommand
from velora_robot.robots.interface import PolicyInterface
from velora_robot.robots.observation import RobotIO
from velora_robot.runtime.heading import YAW_RATE, HeadingHold
from velora_robot.runtime.safety import Fault, Mode, Safety


@dataclass
class Cycle:
    """What one cycle saw and did (`obs`/`action` only on cycles that ran the policy)."""

    state: HardwareState | None
    obs: np.ndarray | None
    action: np.ndarray | None
    command: JointCommand | None
    mode: Mode


class Controller:
    """read -> observation -> policy -> targets -> safety -> write, for any backend. The
    observation is the policy's `interface` (its card's) on the hardware's robot.

    The policy runs every `policy_every` cycles (the command rate may be a multiple of the
    policy rate); in between, its last targets are sent again. Without `safety` the
    targets go straight to the hardware (used to prove sim-to-sim equality). With a
    `heading_hold` the policy sees the yaw-rate command corrected toward the heading the
    commands asked for (`policy_command`); `command` stays what the user asked.
    """

    def __init__(self, hardware: Hardware, policy: Callable[[np.ndarray], np.ndarray],
                 interface: PolicyInterface, command: np.ndarray | None = None, *,
                 safety: Safety | None = None, policy_every: int = 1,
                 heading_hold: HeadingHold | None = None) -> None:
        self.hardware, self.policy, self.safety = hardware, policy, safety
        self.heading_hold = heading_hold
        self.io = RobotIO(hardware.spec, interface)
        self.command = np.zeros(len(interface.commands)) if command is None \
            else np.asarray(command, float)
        self.policy_command = self.command
        self.policy_every = policy_every
        self.last_action = np.zeros(hardware.spec.n_joints)
        self._targets: np.ndarray | None = None
        self._count = 0
        self._policy_steps = 0  # since the policy took over: its clock, as in training
        self._policy_dt = hardware.spec.control_dt
        self._policy_running = False

    def start(self) -> None:
        """Begin (the safety ramp starts from the measured pose)."""
        self._policy_running = False
        if self.safety is not None:
            self.safety.start(self.hardware.read())

    def cycle(self) -> Cycle:
        """One cycle; returns what it saw and sent."""
        safety = self.safety
        try:
            state = self.hardware.read()
        except HardwareError as exc:
            if safety is None:
                raise
            safety.trip(Fault.HARDWARE, str(exc))
            return Cycle(None, None, None, None, safety.mode)
        if safety is not None:
            safety.check(state)
        obs = action = None
        active = safety is None or safety.mode is Mode.POLICY
        if active and not self._policy_running:
            self._targets = None  # the policy takes over: its first targets come now
            if hasattr(self.policy, "reset"):
                self.policy.reset()  # and its episode starts with a fresh state
            self._policy_steps = 0
            if self.heading_hold is not None:
                self.heading_hold.reset()
        self._policy_running = active
        if active and self.heading_hold is not None:
            self.heading_hold.update(self.command[YAW_RATE], state.gyro, state.gravity)
        if active and (self._count % self.policy_every == 0 or self._targets is None):
            self.policy_command = self.command if self.heading_hold is None \
                else self.heading_hold.command(self.command)
            obs = self.io.observation(state.robot_state(), self.last_action, self.policy_command,
                                      self._policy_steps * self._policy_dt)
            self._policy_steps += 1
            action = np.asarray(self.policy(obs), float)
            self._targets = self.io.targets(action) if np.isfinite(action).all() \
                else np.full_like(action, np.nan)
            self.last_action = np.clip(action, -1.0, 1.0)
        self._count += 1
        if safety is None:
            command = JointCommand.hold(self.hardware.spec, self._targets)
        else:
            command = safety.command(state, self._targets if active else None)
        try:
            self.hardware.write(command)
        except HardwareError as exc:
            if safety is None:
                raise
            safety.trip(Fault.HARDWARE, str(exc))
        return Cycle(state, obs, action, command,
                     Mode.POLICY if safety is None else safety.mode)
