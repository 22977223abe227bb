"""Policy runners for the robot: `OnnxPolicy` (onnxruntime, one thread) and
`TorchScriptPolicy` (when torch is installed). Each carries its recurrent state between
calls: `action = policy(obs)`; `reset()` at the start of an episode."""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path

import numpy as np

from velora_robot.errors import ConfigError
from velora_robot.runtime.card import (
    METADATA_KEY,
    OUTPUTS,
    ModelCard,
    card_from_data,
    card_path,
    load_card,
)


class _Runner:
    """Shared: the card, the state, the shape checks."""

    def __init__(self, path: Path, card: ModelCard | None) -> None:
        self.path = path
        self.card = card or load_card(card_path(path))
        io = self.card.io
        self.obs_dim, self.state_size, self.act_dim = io.obs_dim, io.state_size, io.act_dim
        self.state = np.zeros((1, self.state_size), np.float32)
        self._obs = np.zeros((1, self.obs_dim), np.float32)

    def reset(self) -> None:
        """Zero the recurrent state (a new episode)."""
        self.state[:] = 0.0

    def _input(self, obs: np.ndarray) -> np.ndarray:
        if obs.shape != (self.obs_dim,):
            raise ValueError(f"{self.path.name}: observation must have shape ({self.obs_dim},),"
                             f" got {obs.shape}")
        self._obs[0] = obs
        return self._obs


class OnnxPolicy(_Runner):
    """An exported ONNX policy in onnxruntime (one thread, sequential execution)."""

    def __init__(self, path: str | Path, card: ModelCard | None = None) -> None:
        """The card: `card`, else the file beside the policy, else the one inside it."""
        import onnxruntime as ort

        path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigError(f"{path}: not a loadable ONNX model: {exc}") from None
        if card is None and not card_path(path).is_file():
            inside = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
            if inside is None:
                raise ConfigError(f"{path}: no model card beside it ({card_path(path).name}) "
                                  "and none inside it; export it again with velora-robot "
                                  "export")
            try:
                data = json.loads(inside)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: the model card inside it is not JSON: {exc}") \
                    from None
            card = card_from_data(data, f"{path}: the model card inside it")
        super().__init__(path, card)
        # A symbolic first dimension (a batch of any size) fits the card's batch of 1.
        def shapes(values: list) -> dict:
            return {v.name: [1 if i == 0 and isinstance(d, str) else d
                             for i, d in enumerate(v.shape)] for v in values}

        got_in, got_out = shapes(self.session.get_inputs()), shapes(self.session.get_outputs())
        want_in, want_out = self.card.io.shapes()
        if got_in != want_in or got_out != want_out:
            raise ConfigError(f"{path}: ONNX inputs {got_in} and outputs {got_out} do not match "
                              f"the model card's {want_in} -> {want_out}")

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        action, self.state = self.session.run(OUTPUTS, {"obs": self._input(obs),
                                                        "state": self.state})
        return action[0]


class TorchScriptPolicy(_Runner):
    """An exported TorchScript policy (needs torch on the robot). A TorchScript file is a
    program: loading it runs its code, so take only files you trust (ONNX and the kernel
    format are data: those are the formats to take from others)."""

    def __init__(self, path: str | Path, card: ModelCard | None = None) -> None:
        # Loaded only here: the rest of the runtime never needs torch.
        torch = importlib.import_module("torch")

        path = Path(path)
        super().__init__(path, card)
        torch.set_num_threads(1)
        self._torch = torch
        warnings.warn(f"{path}: a TorchScript policy is code, run as it is loaded; load only "
                      "files you trust (ONNX and .npz kernel files are data)", stacklevel=3)
        self.module = torch.jit.load(str(path))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.no_grad():
            action, state = self.module(torch.from_numpy(self._input(obs)),
                                        torch.from_numpy(self.state))
        self.state = state.numpy()
        return action.numpy()[0]


class KernelPolicy(_Runner):
    """A liquid policy run by the C kernel (numpy + ctypes, no torch and no onnxruntime):
    the same step as training, several times faster than ONNX Runtime at batch 1."""

    def __init__(self, path: str | Path, card: ModelCard | None = None) -> None:
        from velora_robot.liquid.kernel import LtcKernel

        path = Path(path)
        super().__init__(path, card)
        try:
            data = np.load(path)
            arrays = {k[4:]: data[k] for k in data.files if k.startswith("ltc/")}
            clip, unfolds, eps, n_motor, pairs, squash = data["meta"].tolist()
            self._mean = data["obs_mean"].astype(np.float32)
            self._std = data["obs_std"].astype(np.float32)
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"{path}: not a kernel policy file: {exc}") from None
        self._clip, self._pairs, self._squash = clip, int(pairs) == 2, bool(squash)
        self.kernel = LtcKernel(arrays, int(n_motor), int(unfolds), eps)
        if self.kernel.n_inputs != self.obs_dim or self.kernel.n_neurons != self.state_size:
            raise ConfigError(f"{path}: network ({self.kernel.n_inputs} inputs, "
                              f"{self.kernel.n_neurons} neurons) does not match the model card")
        self._x = np.zeros((1, 1, self.obs_dim), np.float32)
        self._y = np.zeros((1, 1, int(n_motor)), np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = self._x
        np.divide(np.subtract(self._input(obs), self._mean, out=x[0]), self._std, out=x[0])
        np.clip(x, -self._clip, self._clip, out=x)
        self.kernel.forward_into(1, 1, x.ctypes.data, None, 1.0, None, self.state.ctypes.data,
                                 self._y.ctypes.data)
        y = self._y[0, 0]
        mean = y[0::2] - y[1::2] if self._pairs else y.copy()
        return np.tanh(mean) if self._squash else np.clip(mean, -1.0, 1.0)


def load_policy(path: str | Path) -> OnnxPolicy | TorchScriptPolicy | KernelPolicy:
    """The runner for a policy file (.onnx, .pt or .npz), with its card beside it. ONNX and
    kernel (.npz) files are data, safe to take from others; a TorchScript file (.pt) is a
    program that runs as it loads (a warning says so): only from sources you trust."""
    path = Path(path)
    runners = {".onnx": OnnxPolicy, ".pt": TorchScriptPolicy, ".npz": KernelPolicy}
    if path.suffix not in runners:
        raise ConfigError(f"{path}: unknown policy format (expected .onnx, .pt or .npz)")
    return runners[path.suffix](path)
