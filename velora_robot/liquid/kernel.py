"""The C LTC inference kernel (ltc_kernel.c): built with the system C compiler on first use,
cached, and called through ctypes on numpy float32 arrays. Needs no torch, so the onboard
runtime can use it too."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("ltc_kernel.c")
CFLAGS = ("-O3", "-std=c99", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math")
EDGE_FIELDS = ("w", "werev", "sigma", "bias")
NEURON_FIELDS = ("gleak", "leak", "cm")
MAP_FIELDS = ("in_w", "in_b", "out_w", "out_b")

_F = ctypes.POINTER(ctypes.c_float)
_I = ctypes.POINTER(ctypes.c_int32)


class KernelUnavailableError(RuntimeError):
    """No C compiler, or the kernel failed to build; the message says which."""


class _Model(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in
                ("n_neurons", "n_motor", "n_inputs", "n_edges", "n_sensory", "unfolds")]
    _fields_ += [("src", _I), ("rowptr", _I)] + [(name, _F) for name in EDGE_FIELDS]
    _fields_ += [("s_src", _I), ("s_rowptr", _I)] + [(f"s_{name}", _F) for name in EDGE_FIELDS]
    _fields_ += [(name, _F) for name in NEURON_FIELDS + MAP_FIELDS + ("residual",)]
    _fields_ += [("epsilon", ctypes.c_float)]


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "velora-robot" / "kernels"


_libraries: dict[str, ctypes.CDLL] = {}


def _target(source: Path, flags: tuple[str, ...]) -> tuple[str, Path]:
    """The compiler and the cached library's path for this source, flags and machine."""
    cc = os.environ.get("CC", "cc")
    tag = hashlib.sha256(source.read_bytes() + " ".join((cc, *flags, platform.machine(),
                                                          platform.node())).encode())
    return cc, _cache_dir() / f"{source.stem}-{tag.hexdigest()[:16]}.so"


def is_built(source: Path, extra_flags: tuple[str, ...] = ()) -> bool:
    """True when `build` would load a cached library without compiling."""
    return _target(source, (*CFLAGS, *extra_flags))[1].exists()


def build(source: Path, extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL:
    """`source` compiled into a shared library, once per source version, flags and machine
    (cached under ~/.cache/velora-robot/kernels), and loaded."""
    flags = (*CFLAGS, *extra_flags)
    cc, target = _target(source, flags)
    if str(target) in _libraries:
        return _libraries[str(target)]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            built = Path(tmp) / target.name
            try:
                subprocess.run([cc, *flags, str(source), "-o", str(built), "-lm"],
                               check=True, capture_output=True, text=True)
            except FileNotFoundError as exc:
                msg = f"no C compiler {cc!r} to build {source.name}"
                raise KernelUnavailableError(msg) from exc
            except subprocess.CalledProcessError as exc:
                msg = f"building {source.name} failed: {exc.stderr}"
                raise KernelUnavailableError(msg) from exc
            os.replace(built, target)  # atomic: a concurrent build never loads a partial file
    lib = _libraries[str(target)] = ctypes.CDLL(str(target))
    return lib


def library() -> ctypes.CDLL:
    """The compiled inference kernel."""
    lib = build(SOURCE)
    lib.ltc_forward.restype = ctypes.c_int
    lib.ltc_forward.argtypes = [ctypes.POINTER(_Model), ctypes.c_int32, ctypes.c_int32,
                                ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float,
                                ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                ctypes.c_void_p]
    return lib


def rowptr(dst: np.ndarray, n_neurons: int, what: str) -> np.ndarray:
    """CSR row pointers (n_neurons + 1) of synapses sorted by destination `dst`; ValueError
    (starting with `what`) when they are not sorted."""
    dst = np.asarray(dst)
    if np.any(np.diff(dst) < 0):
        raise ValueError(f"{what}: synapses must be sorted by destination")
    return np.searchsorted(dst, np.arange(n_neurons + 1))


class LtcKernel:
    """One LTC network's effective parameters, ready for the C kernel.

    `arrays` holds per-synapse `src`, `dst`, `w`, `werev`, `sigma`, `bias` (and the same with
    an `s_` prefix for sensory synapses), per-neuron `gleak`, `leak`, `cm`, the affine maps
    `in_w`, `in_b`, `out_w`, `out_b` and optionally `residual` (n_motor, n_inputs). Not
    thread-safe: calls share one scratch buffer.
    """

    def __init__(self, arrays: dict[str, np.ndarray], n_motor: int, unfolds: int,
                 epsilon: float) -> None:
        self._lib = library()
        ints = ("src", "rowptr", "s_src", "s_rowptr")
        n = len(arrays["gleak"])
        a = {k: v for k, v in arrays.items() if v is not None and k not in ("dst", "s_dst")}
        for prefix in ("", "s_"):
            a[prefix + "rowptr"] = rowptr(arrays[prefix + "dst"], n, f"{prefix}dst")
        self._arrays = a = {k: np.ascontiguousarray(v, dtype=np.int32 if k in ints
                                                    else np.float32) for k, v in a.items()}
        f = len(a["in_w"])
        self.n_neurons, self.n_inputs, self.n_motor = n, f, n_motor
        model = _Model(n, n_motor, f, len(a["src"]), len(a["s_src"]), unfolds)
        for name, array in a.items():
            setattr(model, name, array.ctypes.data_as(_I if name in ints else _F))
        model.epsilon = epsilon
        self._model = model
        self._scratch = np.zeros(5 * n + f + max(len(a["src"]), len(a["s_src"]), 1),
                                 dtype=np.float32)

    def forward_into(self, batch: int, steps: int, x: int, dt: int | None, dt_all: float,
                     resets: int | None, h: int, y: int) -> None:
        """Raw call on data pointers: x (B, T, F), dt (B, T) or None, resets (B, T) uint8 or
        None, h (B, N) updated in place, y (B, T, M) written. Raises on NaN/inf input."""
        status = self._lib.ltc_forward(ctypes.byref(self._model), batch, steps, x, dt, dt_all,
                                       resets, h, y, self._scratch.ctypes.data)
        if status:
            raise ValueError("LTC input contains NaN or inf")

    def forward(self, x: np.ndarray, h: np.ndarray, dt: float | np.ndarray = 1.0,
                resets: np.ndarray | None = None) -> np.ndarray:
        """x (B, T, F) float32; h (B, N) float32 is updated in place; returns y (B, T, M)."""
        if x.dtype != np.float32 or x.ndim != 3 or x.shape[2] != self.n_inputs:
            raise ValueError(f"x must be float32 (batch, time, {self.n_inputs}), "
                             f"got {x.dtype} {x.shape}")
        if h.dtype != np.float32 or h.shape != (x.shape[0], self.n_neurons) \
                or not h.flags.c_contiguous:
            raise ValueError(f"h must be a contiguous float32 ({x.shape[0]}, "
                             f"{self.n_neurons}) array, got {h.dtype} {h.shape}")
        x = np.ascontiguousarray(x)
        y = np.empty((x.shape[0], x.shape[1], self.n_motor), dtype=np.float32)
        dt_arr = None if np.isscalar(dt) else np.ascontiguousarray(dt, dtype=np.float32)
        res = None if resets is None else np.ascontiguousarray(resets, dtype=np.uint8)
        self.forward_into(x.shape[0], x.shape[1], x.ctypes.data,
                          None if dt_arr is None else dt_arr.ctypes.data,
                          float(dt) if dt_arr is None else 1.0,
                          None if res is None else res.ctypes.data, h.ctypes.data,
                          y.ctypes.data)
        return y
