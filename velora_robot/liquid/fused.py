"""The fused executor: a whole sequence of LTC steps (ODE unfolds, output map and the
parameters' positivity maps included) as one operation in C (ltc_train.c), with a
hand-written backward behind a custom autograd function.

Autograd over the eager step records about a dozen small operations per unfold, six unfolds
per step; here the forward keeps what the adjoint needs (each unfold's state and
denominator; the synapse activations are recomputed) and the backward walks the unfolds in
reverse. The gradients equal autograd's to float32 rounding (tests check 1e-5). Calls
without autograd keep one step of that record, so long rollouts need no more memory than
short ones.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from velora_robot.liquid.kernel import KernelUnavailableError, build, rowptr

SOURCE = Path(__file__).with_name("ltc_train.c")
# Built on the machine that runs it, so it may use every vector unit the CPU has. No fused
# multiply-adds: they round differently from torch's eager step, and over 100 stiff steps
# (dt 0.02) the difference grew to 8e-6 against ncps (1e-6 without).
FLAGS = ("-march=native", "-fopenmp-simd", "-ffp-contract=off", "-pthread")
# Samples per thread below which a batch is not split (thread start-up would dominate).
MIN_PART = 32
MAX_THREADS = 64
# The raw parameters in the order of the C struct `ltc_params` (LTCCell attribute names).
PARAMS = ("gleak", "vleak", "cm", "w", "sigma", "mu", "sensory_w", "sensory_sigma",
          "sensory_mu", "input_w", "input_b", "output_w", "output_b", "residual")

_F = ctypes.POINTER(ctypes.c_float)
_I = ctypes.POINTER(ctypes.c_int32)


class _Shape(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in
                ("n_neurons", "n_inputs", "n_motor", "n_edges", "n_sensory", "unfolds",
                 "batch", "steps", "tape_steps")]
    _fields_ += [(name, _I) for name in ("src", "dst", "s_src", "s_dst", "rowptr", "s_rowptr")]
    _fields_ += [(name, _F) for name in ("erev", "s_erev")]
    _fields_ += [("epsilon", ctypes.c_float)]


class _Params(ctypes.Structure):
    _fields_ = [(name, _F) for name in PARAMS]


_lib: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        lib = build(SOURCE, FLAGS)
        p = ctypes.c_void_p
        i = ctypes.c_int
        lib.ltc_forward_threads.restype = ctypes.c_int
        lib.ltc_forward_threads.argtypes = [p] * 11 + [i]
        lib.ltc_backward_threads.restype = None
        lib.ltc_backward_threads.argtypes = [p] * 13 + [i]
        lib.ltc_tape_size_threads.restype = ctypes.c_int64
        lib.ltc_tape_size_threads.argtypes = [p, i]
        lib.ltc_scratch_size_threads.restype = ctypes.c_int64
        lib.ltc_scratch_size_threads.argtypes = [p, i, i]
        _lib = lib
    return _lib


def built() -> bool:
    """True when this machine has the kernel compiled already (no wait on first use)."""
    from velora_robot.liquid.kernel import is_built

    return is_built(SOURCE, FLAGS)


def available() -> bool:
    """True when the kernel builds here (a C compiler is present)."""
    try:
        _library()
    except KernelUnavailableError:
        return False
    return True


class Wiring(NamedTuple):
    """What the kernel needs of a cell besides its parameters: the synapse lists (int32)
    with their polarities, sizes, unfolds and epsilon."""

    src: np.ndarray
    dst: np.ndarray
    s_src: np.ndarray
    s_dst: np.ndarray
    erev: np.ndarray
    s_erev: np.ndarray
    rowptr: np.ndarray
    s_rowptr: np.ndarray
    n_neurons: int
    n_motor: int
    unfolds: int
    epsilon: float

    @classmethod
    def of(cls, synapses: np.ndarray, sensory: np.ndarray, n_neurons: int, n_motor: int,
           unfolds: int, epsilon: float) -> Wiring:
        def column(edges: np.ndarray, k: int, dtype: type) -> np.ndarray:
            return np.ascontiguousarray(edges[:, k], dtype=dtype)

        def rows(edges: np.ndarray) -> np.ndarray:
            return rowptr(edges[:, 1], n_neurons, "fused LTC kernel").astype(np.int32)

        return cls(column(synapses, 0, np.int32), column(synapses, 1, np.int32),
                   column(sensory, 0, np.int32), column(sensory, 1, np.int32),
                   column(synapses, 2, np.float32), column(sensory, 2, np.float32),
                   rows(synapses), rows(sensory), n_neurons, n_motor, unfolds, epsilon)

    def shape(self, n_inputs: int, batch: int, steps: int, tape_steps: int) -> _Shape:
        s = _Shape(self.n_neurons, n_inputs, self.n_motor, len(self.src), len(self.s_src),
                   self.unfolds, batch, steps, tape_steps)
        for name in ("src", "dst", "s_src", "s_dst", "rowptr", "s_rowptr"):
            setattr(s, name, getattr(self, name).ctypes.data_as(_I))
        s.erev, s.s_erev = self.erev.ctypes.data_as(_F), self.s_erev.ctypes.data_as(_F)
        s.epsilon = self.epsilon
        return s


class _Tapes:
    """Tapes of recent training calls, reused once their graph is gone. A fresh tape of a few
    MB is a fresh mapping from the OS each time: its page faults cost a third of a
    forward (measured: 760 faults, 1.3 of 3.8 ms at batch 64 x 32 steps)."""

    KEEP = 4  # per size: a training loop holds one or two graphs at a time

    def __init__(self) -> None:
        self._free: dict[int, list[Tensor]] = {}

    def take(self, numel: int) -> Tensor:
        tapes = self._free.setdefault(numel, [])
        for tape in tapes:
            # held by the list, this loop and getrefcount: nothing else (no live graph)
            if sys.getrefcount(tape) <= 3:
                return tape
        tape = torch.empty(numel)
        if len(tapes) < self.KEEP:
            tapes.append(tape)
        return tape


_tapes = _Tapes()


def _pointers(tensors: tuple[Tensor | None, ...]) -> _Params:
    return _Params(*(None if t is None else ctypes.cast(t.data_ptr(), _F) for t in tensors))


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def threads_for(batch: int) -> int:
    """Threads for a batch: torch's intra-op thread count, fewer for small batches."""
    return max(1, min(torch.get_num_threads(), MAX_THREADS, batch // MIN_PART))


def _scratch(x: Tensor, shape: _Shape, threads: int, residual: bool) -> Tensor:
    return x.new_empty(_library().ltc_scratch_size_threads(ctypes.byref(shape), threads,
                                                           int(residual)))


def _forward(wiring: Wiring, scale: Tensor, keep: Tensor | None, x: Tensor, h0: Tensor,
             params: tuple[Tensor | None, ...], keep_tape: bool, return_states: bool
             ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, _Shape, int]:
    batch, steps, n_inputs = x.shape
    shape = wiring.shape(n_inputs, batch, steps, steps if keep_tape else 1)
    lib = _library()
    threads = threads_for(batch)
    size = lib.ltc_tape_size_threads(ctypes.byref(shape), threads)
    tape = _tapes.take(size) if keep_tape else x.new_empty(size)
    scratch = _scratch(x, shape, threads, params[-1] is not None)
    y = x.new_empty(batch, steps, wiring.n_motor)
    h = x.new_empty(batch, wiring.n_neurons)
    states = x.new_empty(steps, wiring.n_neurons, batch) if return_states else None
    status = lib.ltc_forward_threads(
        ctypes.byref(shape), ctypes.byref(_pointers(params)), x.data_ptr(), scale.data_ptr(),
        _ptr(keep), h0.data_ptr(), y.data_ptr(), _ptr(states), h.data_ptr(),
        tape.data_ptr(), scratch.data_ptr(), threads)
    if status:
        raise ValueError("LTCCell input contains NaN or inf")
    return y, h, states, tape, shape, threads


class _Sequence(torch.autograd.Function):
    """(x (B, T, F), h0 (B, N), *raw parameters) -> y (B, T, M), h (B, N) and, when asked,
    the states after every step (T, N, B). `scale` (T, B) and `keep` (T, B) or None are
    data, not differentiated."""

    @staticmethod
    def forward(ctx, wiring: Wiring, return_states: bool, scale: Tensor, keep: Tensor | None,
                x: Tensor, h0: Tensor, *params: Tensor | None) -> tuple[Tensor, ...]:
        params = tuple(None if q is None else q.detach() for q in params)
        y, h, states, tape, shape, threads = _forward(wiring, scale, keep, x, h0, params, True,
                                                      return_states)
        ctx.set_materialize_grads(False)
        # The tape is an attribute, not a saved tensor: the reference tells _Tapes that a
        # graph still needs it.
        ctx.wiring, ctx.shape, ctx.scale, ctx.keep, ctx.tape = wiring, shape, scale, keep, tape
        ctx.threads = threads  # the tape's layout depends on it
        ctx.save_for_backward(x, *params)
        return (y, h) if states is None else (y, h, states)

    @staticmethod
    def backward(ctx, gy: Tensor | None, gh: Tensor | None,
                 gstates: Tensor | None = None) -> tuple[Tensor | None, ...]:
        x, *params = ctx.saved_tensors
        tape = ctx.tape
        sizes = [0 if q is None else q.numel() for q in params]
        flat = x.new_zeros(sum(sizes))
        grads = tuple(None if q is None else g.view_as(q)
                      for q, g in zip(params, flat.split(sizes), strict=True))
        held = [None if t is None else t.contiguous() for t in (gy, gstates, gh)]
        gx, gh0 = torch.empty_like(x), torch.empty(x.shape[0], ctx.wiring.n_neurons)
        scratch = _scratch(x, ctx.shape, ctx.threads, params[-1] is not None)
        _library().ltc_backward_threads(
            ctypes.byref(ctx.shape), ctypes.byref(_pointers(tuple(params))), x.data_ptr(),
            ctx.scale.data_ptr(), _ptr(ctx.keep), tape.data_ptr(), *map(_ptr, held),
            gx.data_ptr(), gh0.data_ptr(), ctypes.byref(_pointers(grads)), scratch.data_ptr(),
            ctx.threads)
        return (None, None, None, None, gx, gh0, *grads)


def sequence(wiring: Wiring, x: Tensor, h0: Tensor, scale: Tensor, keep: Tensor | None,
             params: tuple[Tensor | None, ...], return_states: bool = False
             ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Motor outputs y (B, T, M), the final state (B, N) and, with `return_states`, the
    state after every step (B, T, N), for inputs x (B, T, F) from h0 (B, N). `scale` (T, B)
    is unfolds / dt, `keep` (T, B) zero where a sample's state resets before a step;
    `params` are the cell's raw parameters in the order of PARAMS (float32, CPU, contiguous).
    Records autograd history when gradients are on and anything requires them."""
    x, h0 = x.contiguous(), h0.contiguous()
    scale = scale.contiguous()
    keep = None if keep is None else keep.contiguous()
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (x, h0, *params)):
        out = _Sequence.apply(wiring, return_states, scale, keep, x, h0, *params)
    else:
        out = _forward(wiring, scale, keep, x, h0, params, False, return_states)[:3]
    states = out[2] if return_states else None
    return out[0], out[1], None if states is None else states.permute(2, 0, 1)
