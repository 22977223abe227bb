"""A teacher for distillation: a frozen exported policy that labels every state the
student visits with the action it would take there (DAgger, Ross et al. 2011: the student
acts, so it learns on the states its own mistakes lead to). A controller that acts through
a linear bypass can so be distilled into one whose motor neurons carry the whole action, and
an MLP's skill into a liquid network.

A liquid teacher runs as numpy arrays read from its exported file (`explain.network.
LiquidNet`, the same reader the explain tools use); any other exported ONNX policy (an MLP,
a linear one) in onnxruntime (`explain.network.BlackBox`, which `explain --baseline` runs).
Either is batched over the envs, with its own state per env.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from velora_robot.errors import ConfigError
from velora_robot.explain.network import BlackBox, LiquidNet
from velora_robot.robots.observation import RobotIO


class Teacher:
    """`act(obs, state, starts)` -> (action, next state) for N envs at once."""

    def __init__(self, path: str | Path, obs_dim: int, act_dim: int, env_id: str,
                 where: str) -> None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{where}: no policy file at {path}")
        if path.suffix not in (".onnx", ".npz"):
            raise ConfigError(f"{where}: {path}: a teacher is an exported policy file, .onnx "
                              "(liquid, MLP or linear) or a liquid kernel .npz; a TorchScript "
                              "file is code and is not loaded")
        try:
            self.net: LiquidNet | BlackBox = _load(path)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        sizes = (self.net.n_inputs, self.net.n_joints)
        if sizes != (obs_dim, act_dim):
            raise ConfigError(f"{where}: {path} maps {sizes[0]} observations to {sizes[1]} "
                              f"actions; {env_id} has {obs_dim} and {act_dim}")
        self.record, card = self._check_card(path, env_id, where)
        self.state_size = self.net.n_neurons
        self.low, self.high = _action_range(card, act_dim)

    @staticmethod
    def _check_card(path: Path, env_id: str, where: str) -> tuple[dict[str, Any], Any]:
        """What the student's card records of its teacher: the file and its training so
        far (from the teacher's card, where it has one); and that card. Same-sized
        observations of another env are another interface: refused when the card says which
        env it was trained on."""
        from velora_robot.runtime.card import card_path, load_card

        record: dict[str, Any] = {"policy": str(path),
                                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        if not card_path(path).is_file():
            return record, None
        card = load_card(card_path(path))
        if card.training.env != env_id:
            raise ConfigError(f"{where}: {path} was trained on {card.training.env}, this "
                              f"recipe trains {env_id}")
        steps, wall = card.trained()
        return {**record, "env_steps": steps, "wall_s": wall}, card

    def initial_state(self, n_envs: int) -> Tensor:
        """The state at an episode's start (zeros, as the exported runner resets)."""
        return torch.zeros(n_envs, self.state_size, dtype=torch.float64)

    def act(self, obs: np.ndarray, state: Tensor, starts: Tensor) -> tuple[Tensor, Tensor]:
        """The teacher's deterministic actions (N, A) for raw observations (N, F), inside
        the range that reaches the robot (`_action_range`), and its next state; envs
        starting an episode start from the initial state."""
        v = np.where(starts.numpy()[:, None], 0.0, state.numpy())
        readout, bypass, v = self.net.step(self.net.normalize(obs), v)
        action = np.clip(self.net.action(readout + bypass), self.low, self.high)
        return torch.from_numpy(action).float(), torch.from_numpy(v)


def _action_range(card: Any, act_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The actions that still change what the robot is commanded: within [-1, 1], where the
    env clips them, and for a robot within the part of that range whose joint targets
    (default pose + action_scale * action) its position limits let through. Beyond it,
    different actions are one command, and a student taught the difference learns nothing
    that moves the robot: a G1 MLP teacher and its liquid student differed most (1.1 rms)
    in a right ankle roll whose 0.26 rad limit an action of 0.52 already reaches."""
    low, high = -np.ones(act_dim), np.ones(act_dim)
    robot = None if card is None else card.robot
    if robot is not None and robot.n_joints == act_dim:  # the env's own action mapping
        io = RobotIO(robot)
        low, high = ((io.targets(bound) - io.q0) / robot.action_scale for bound in (low, high))
    return low, high


def _load(path: Path) -> LiquidNet | BlackBox:
    """The teacher's network: the liquid reader for a liquid policy (and for a kernel .npz
    or an ONNX file without a card, whose graph that reader checks itself), onnxruntime for
    any other kind its card names. The ONNX file is opened once."""
    if path.suffix == ".onnx":
        from velora_robot.runtime.policy import OnnxPolicy

        try:
            policy = OnnxPolicy(path)
        except ConfigError:
            policy = None
        if policy is not None and policy.card.network.kind != "liquid":
            return BlackBox(path, policy)
    return LiquidNet.load(path)

