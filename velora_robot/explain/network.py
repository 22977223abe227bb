"""A liquid policy as numpy arrays, read from an exported file (ONNX or kernel .npz) and run
step by step with its parts apart: the motor neurons' read-out and the residual bypass, and
any neurons clamped (an ablation). Torch-free; the explain tools run on it.

The arrays are the C kernel's (`LTCCell.kernel_arrays()`): per synapse src, dst, w, werev,
sigma, bias (and the same with `s_` for sensory synapses); per neuron gleak, leak
(gleak vleak), cm; the input map in_w, in_b; the read-out out_w, out_b; the residual
projection (n_motor, n_inputs). From ONNX, where the input map is folded into the sensory
synapses and the read-out into joint outputs, the same step is rebuilt in an equivalent
form (in_w 1, in_b 0; in 2-neuron mode the negative neuron of a pair carries no bias and no
bypass of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from velora_robot.errors import ConfigError
from velora_robot.runtime.card import OUTPUTS


@dataclass
class LiquidNet:
    """Arrays (see the module) + observation normalization + the step's constants."""

    arrays: dict[str, np.ndarray]
    obs_mean: np.ndarray
    obs_std: np.ndarray
    clip: float
    unfolds: int
    epsilon: float
    n_motor: int
    neurons_per_dof: int
    squash: bool

    def __post_init__(self) -> None:
        a = self.arrays
        self.n_neurons = len(a["gleak"])
        self.n_inputs = len(a["in_w"])
        self.n_joints = self.n_motor // self.neurons_per_dof
        # Destination one-hot matrices: synapse sums as one matrix product per layer.
        self._to_dst = {p: np.eye(self.n_neurons)[a[p + "dst"].astype(int)] for p in ("", "s_")}

    # ------------------------------------------------------------ reading
    @classmethod
    def load(cls, path: str | Path) -> LiquidNet:
        """From an exported liquid policy: .onnx (the hand-built graph) or .npz (kernel)."""
        path = Path(path)
        if path.suffix == ".npz":
            return cls._from_npz(path)
        if path.suffix == ".onnx":
            return cls._from_onnx(path)
        raise ConfigError(f"{path}: explain reads liquid policies exported as .onnx or .npz "
                          "(kernel); export the checkpoint to one of them")

    @classmethod
    def _from_npz(cls, path: Path) -> LiquidNet:
        try:
            data = np.load(path)
            arrays = {k[4:]: data[k].astype(np.float64) for k in data.files
                      if k.startswith("ltc/")}
            clip, unfolds, eps, n_motor, pairs, squash = data["meta"].tolist()
            mean, std = data["obs_mean"].astype(np.float64), data["obs_std"].astype(np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"{path}: not a kernel policy file: {exc}") from None
        return cls(arrays, mean, std, float(clip), int(unfolds), float(eps), int(n_motor),
                   int(pairs), bool(squash))

    @classmethod
    def _from_onnx(cls, path: Path) -> LiquidNet:
        import onnx
        from onnx import numpy_helper

        try:
            graph = onnx.load(str(path)).graph
        except Exception as exc:  # onnx raises several types for a damaged file
            raise ConfigError(f"{path}: not an ONNX file: {exc}") from None
        init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
        # The stacked [numerator; denominator] constants carry a batch axis of 1 since the
        # batch became symbolic ((2, 1, N, K), (2, 1, N)); files before have none.
        for name, array in list(init.items()):
            if name.endswith("_weights"):
                init[name] = array.reshape(2, *array.shape[-2:])
            elif name in ("base", "own"):
                init[name] = array.reshape(2, array.shape[-1])
        if "u0_index" not in init:
            raise ConfigError(f"{path}: not a liquid policy graph (an MLP, or exported by "
                              "another tool): only a liquid controller can be read as neurons")
        unfolds = sum(1 for name in init if name.endswith("_index") and name[1:-6].isdigit())
        arrays: dict[str, np.ndarray] = {}
        for prefix, tag in (("s_", "sensory"), ("", "u0")):
            index, weights = init[f"{tag}_index"].astype(int), init[f"{tag}_weights"]
            dst, slot = np.nonzero(weights[1] > 0)  # padding slots have w = 0
            arrays.update({f"{prefix}src": index[dst, slot], f"{prefix}dst": dst,
                           f"{prefix}w": weights[1][dst, slot],
                           f"{prefix}werev": weights[0][dst, slot],
                           f"{prefix}sigma": init[f"{tag}_sigma"][dst, slot],
                           f"{prefix}bias": init[f"{tag}_bias"][dst, slot]})
        cm_t = init["own"][0]
        f = len(init["obs_mean"])
        readout, bias = init["readout"], init["readout_bias"]
        n_joints = readout.shape[1]
        motor_rows = np.flatnonzero(np.abs(readout[f:]).sum(1) > 0)
        pairs = 2 if len(motor_rows) == 2 * n_joints else 1
        n_motor = n_joints * pairs
        sign = np.array([1.0, -1.0])[np.arange(n_motor) % pairs]
        joint = np.arange(n_motor) // pairs
        first = np.arange(n_motor) % pairs == 0
        gleak = init["base"][1] - cm_t  # the graph's epsilon stays folded in (1e-8)
        arrays.update(
            gleak=gleak, leak=init["base"][0], cm=cm_t / unfolds,
            in_w=np.ones(f), in_b=np.zeros(f),
            out_w=readout[f + np.arange(n_motor), joint] * sign,
            out_b=np.where(first, bias[joint], 0.0),
            residual=np.where(first[:, None], readout[:f].T[joint], 0.0))
        squash = any(node.op_type == "Tanh" for node in graph.node)
        return cls(arrays, init["obs_mean"], 1.0 / init["obs_inv_std"],
                   float(init["clip_hi"]), unfolds, 0.0, n_motor, pairs, squash)

    # ------------------------------------------------------------ running
    def reset(self) -> None:
        """A new episode (the state is the caller's: nothing to do here)."""

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """The network's input: the observation normalized and clipped as in training."""
        return np.clip((obs - self.obs_mean) / self.obs_std, -self.clip, self.clip)

    def rest(self) -> np.ndarray:
        """Each neuron's resting potential, vleak (where it settles with no input)."""
        return self.arrays["leak"] / self.arrays["gleak"]

    def time_constants(self, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Each neuron's effective time constant range in seconds, cm / (gleak + sum of
        its synaptic conductances): slowest with every synapse closed, fastest with every
        synapse open. `dt_s` is the elapsed time of one network step (the control
        period)."""
        a = self.arrays
        open_in = np.zeros(self.n_neurons)
        for p in ("", "s_"):
            np.add.at(open_in, a[p + "dst"].astype(int), a[p + "w"])
        return (a["cm"] / (a["gleak"] + open_in) * dt_s, a["cm"] / a["gleak"] * dt_s)

    def step(self, x: np.ndarray, v: np.ndarray, clamp: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One control step for normalized inputs x (B, F) from states v (B, N): returns
        the motor neurons' read-out and the bypass, each per joint (B, A), and the new
        state. `clamp` (N,) bool holds those neurons at rest after every unfold."""
        a = self.arrays

        def sums(prefix: str, pre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            act = 1.0 / (1.0 + np.exp(-(a[prefix + "sigma"] * pre[:, a[prefix + "src"]
                                                                  .astype(int)]
                                        + a[prefix + "bias"])))
            to_dst = self._to_dst[prefix]
            return (act * a[prefix + "werev"]) @ to_dst, (act * a[prefix + "w"]) @ to_dst

        xm = x * a["in_w"] + a["in_b"]
        s_num, s_den = sums("s_", xm)
        cm_t = a["cm"] * self.unfolds
        top = a["leak"] + s_num
        bottom = cm_t + a["gleak"] + s_den + self.epsilon
        rest = self.rest()
        for _ in range(self.unfolds):
            num, den = sums("", v)
            v = (cm_t * v + top + num) / (bottom + den)
            if clamp is not None:
                v = np.where(clamp, rest, v)
        readout = v[:, :self.n_motor] * a["out_w"] + a["out_b"]
        bypass = x @ a["residual"].T if "residual" in a else np.zeros_like(readout)
        return self.joints(readout), self.joints(bypass), v

    def joints(self, y: np.ndarray) -> np.ndarray:
        """Per-joint values of motor outputs (the pair's difference in 2-neuron mode)."""
        return y if self.neurons_per_dof == 1 else y[..., 0::2] - y[..., 1::2]

    def action(self, mean: np.ndarray) -> np.ndarray:
        """The action from its mean, as the exported policy gives it."""
        return np.tanh(mean) if self.squash else np.clip(mean, -1.0, 1.0)

    def describe(self) -> dict[str, Any]:
        """Sizes for reports."""
        return {"neurons": self.n_neurons, "inputs": self.n_inputs, "motor": self.n_motor,
                "joints": self.n_joints, "synapses": len(self.arrays["src"]),
                "sensory_synapses": len(self.arrays["s_src"]), "ode_unfolds": self.unfolds}


class BlackBox:
    """Any exported policy that is not read as a liquid network (an MLP, a linear controller)
    behind the network's step interface: the behavioural measurements (`explain --baseline`)
    and distillation (`rl/teacher.py`) run it; no neurons, no bypass, nothing to clamp or
    perturb. An ONNX file runs in onnxruntime on a whole batch with its recurrent state
    carried in `v` (a file exported with a fixed batch of 1 row by row): the graph normalizes
    its input and bounds its action itself. Another runner (TorchScript) acts one robot at a
    time through the runtime, its state its own."""

    def __init__(self, path: str | Path, policy: Any = None) -> None:
        """`policy`: the runtime runner of `path`, where the caller has it open already."""
        from velora_robot.runtime import load_policy

        self.policy = load_policy(path) if policy is None else policy
        self.n_joints, self.n_inputs = self.policy.act_dim, self.policy.obs_dim
        self.session = getattr(self.policy, "session", None)  # an ONNX file's
        self.n_neurons = self.policy.state_size if self.session is not None else 1
        self.batched = self.session is not None and isinstance(
            self.session.get_inputs()[0].shape[0], str)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        return obs  # the graph or runner normalizes

    def reset(self) -> None:
        """A new episode: the runner's own recurrent state (if any) back to zero."""
        self.policy.reset()

    def step(self, x: np.ndarray, v: np.ndarray, clamp: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.session is None:
            action = self.policy(x[0].astype(np.float32))[None].astype(np.float64)
            return action, np.zeros_like(action), v
        x, v = x.astype(np.float32), v.astype(np.float32)
        if self.batched:
            action, state = self.session.run(OUTPUTS, {"obs": x, "state": v})
        else:
            rows = [self.session.run(OUTPUTS, {"obs": x[i:i + 1], "state": v[i:i + 1]})
                    for i in range(len(x))]
            action, state = (np.concatenate(parts) for parts in zip(*rows, strict=True))
        return (action.astype(np.float64), np.zeros_like(action, np.float64),
                state.astype(np.float64))

    def action(self, mean: np.ndarray) -> np.ndarray:
        return mean  # the graph's output is already the action
