"""Liquid time-constant cell (Hasani et al., AAAI 2021) on a sparse NCP wiring.

Each neuron potential v obeys
    cm dv/dt = gleak (vleak - v) + sum_j w_j sigmoid(sigma_j (v_pre_j - mu_j)) (erev_j - v)
solved by the fused semi-implicit Euler step, repeated `ode_unfolds` times per input step:
    v <- (cm_t v + gleak vleak + sum w s erev) / (cm_t + gleak + sum w s)
with cm_t = cm / (dt / unfolds).

Only synapses that exist in the wiring are parameters. They are laid out padded by
destination neuron over the block of neurons that receive synapses, shape (rows, max_fanin):
one gather, one sigmoid, one product and one reduction per unfold cover every synapse. Inside
the solver the state is kept as (n_neurons, batch) so the gather reads whole rows.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from velora_robot.liquid import fused as fused_executor
from velora_robot.liquid.kernel import KernelUnavailableError, LtcKernel
from velora_robot.liquid.wiring import NCPWiring

# Initial ranges of the effective (positive) values, as in Hasani et al. / ncps.
INIT_RANGES = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
}


# Up to this batch size the C kernel beats the compiled torch step (measured on the
# 100-neuron Spot cell: batch 1 19 us against 64 us; batch 16 0.11 ms against 0.10 ms).
KERNEL_MAX_BATCH = 8


class _Layout(NamedTuple):
    """Synapses grouped by destination over the block of neurons that receive any:
    `edge[r, k]` is the k-th synapse into neuron `start + r` (the sentinel `n_edges` pads
    short rows) and `src[r, k]` its presynaptic index."""

    edge: Tensor
    src: Tensor
    start: int


def _layout(edges: np.ndarray, n_neurons: int) -> _Layout:
    fanin = np.bincount(edges[:, 1], minlength=n_neurons)
    rows = np.nonzero(fanin)[0]
    start, stop = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 1)
    edge = np.full((stop - start, max(1, int(fanin.max()))), len(edges), dtype=np.int64)
    src = np.zeros_like(edge)
    fill = np.zeros(n_neurons, dtype=np.int64)
    for e, (s, d, _) in enumerate(edges):
        edge[d - start, fill[d]], src[d - start, fill[d]] = e, s
        fill[d] += 1
    return _Layout(torch.from_numpy(edge), torch.from_numpy(src), start)


def _inverse_softplus(y: Tensor) -> Tensor:
    return torch.log(torch.expm1(y))


class _Synapses(NamedTuple):
    """Padded synapse terms of one layout: `weights` (R, 2, K, 1) holds [w * erev, w] so the
    numerator and denominator sums are one product and one reduction; `sigma` and `bias`
    (R, K, 1) hold sigma and -sigma * mu; `src` (R * K) the presynaptic indices; `pad` the
    rows before and after the block."""

    weights: Tensor
    sigma: Tensor
    bias: Tensor
    src: Tensor
    pad: tuple[int, int, int, int, int, int]


class _Derived(NamedTuple):
    """Everything the step function needs, derived from the parameters once per call."""

    inner: _Synapses
    sensory: _Synapses
    gleak: Tensor  # (N, 1), positive
    leak: Tensor  # gleak * vleak, (N, 1)
    cm: Tensor  # (N, 1), positive
    input_w: Tensor
    input_b: Tensor
    output_w: Tensor
    output_b: Tensor
    residual: Tensor | None  # (F, M)


def _synaptic_sums(v: Tensor, syn: _Synapses) -> Tensor:
    """(N, 2, B): for every neuron, sum of w * s * erev and sum of w * s over its synapses,
    s = sigmoid(sigma (v_pre - mu)) with v_pre gathered from v (P, B)."""
    rows, k = syn.weights.shape[0], syn.weights.shape[2]
    pre = v.index_select(0, syn.src).view(rows, k, -1)
    act = torch.sigmoid(torch.addcmul(syn.bias, pre, syn.sigma))
    return F.pad((act.unsqueeze(1) * syn.weights).sum(2), syn.pad)


def ltc_step(
    x: Tensor, v: Tensor, dt_scale: float | Tensor, p: _Derived, unfolds: int, n_motor: int,
    epsilon: float,
) -> tuple[Tensor, Tensor]:
    """One input step: x (B, F), state v (N, B) -> motor outputs (B, M), new state (N, B).
    `dt_scale` is unfolds / elapsed time, a float or a (1, B) tensor."""
    xm = torch.addcmul(p.input_b, x, p.input_w).t()
    sensory = _synaptic_sums(xm, p.sensory)
    cm_t = p.cm * dt_scale
    leak = p.leak + sensory[:, 0]
    denom = cm_t + p.gleak + sensory[:, 1] + epsilon
    for _ in range(unfolds):
        inner = _synaptic_sums(v, p.inner)
        v = (torch.addcmul(leak, cm_t, v) + inner[:, 0]) / (denom + inner[:, 1])
    y = torch.addcmul(p.output_b, v[:n_motor].t(), p.output_w)
    if p.residual is not None:
        y = torch.addmm(y, x, p.residual)
    return y, v


def joint_actions(y: Tensor, neurons_per_dof: int) -> Tensor:
    """Per-joint actions from motor outputs (..., n_motor): the output itself in 1-neuron
    mode, the difference of the antagonistic pair (positive - negative) in 2-neuron mode."""
    return y if neurons_per_dof == 1 else y[..., 0::2] - y[..., 1::2]


_compiled_step = None


def _compiled() -> object:
    """ltc_step through torch.compile (inductor fuses each unfold into a few C++ loops)."""
    global _compiled_step
    if _compiled_step is None:
        import torch._dynamo

        # Every distinct cell shape and batch size is a graph of its own; training runs
        # meet a dozen or more (rollout, minibatch, evaluation, several networks), more than
        # dynamo's default of 8 before it silently falls back to eager.
        config = torch._dynamo.config
        config.recompile_limit = max(config.recompile_limit, 64)
        _compiled_step = torch.compile(ltc_step, dynamic=False)
    return _compiled_step


class LTCCell(nn.Module):
    """LTC cell wired by an `NCPWiring`: ``y, h = cell(x, h)``.

    `x` is (B, F) for one step or (B, T, F) for a sequence; `h` is (B, n_neurons) or None
    (zeros). `dt` is the elapsed time per step: a float, or a tensor of shape (B,) or (B, T)
    for per-sample times. `resets` (B, T) zeroes a sample's state before that step (episode
    boundaries). `y` holds the motor outputs (B, n_motor) or (B, T, n_motor).
    With `return_states=True` the second result is the state after every step (B, T, N).

    `residual=False` drops the input-to-output projection (to measure its effect).
    `fused=True` (the default; needs a C compiler, else it warns once and runs eager) runs
    calls on float32 CPU tensors through the fused kernel of `fused.py`: the whole sequence
    as one operation, forward and, when gradients are recorded, backward.
    `compiled=True` (needs a C compiler) runs inference calls of small batches in the C
    kernel of `kernel.py`, which has the least overhead per call; with `fused=False` it runs
    the other calls through torch.compile of the step function (the first call of each
    batch size compiles for seconds).
    """

    def __init__(
        self,
        wiring: NCPWiring,
        in_features: int,
        *,
        ode_unfolds: int = 6,
        residual: bool = True,
        epsilon: float = 1e-8,
        seed: int | None = None,
        compiled: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(ode_unfolds, bool) or not isinstance(ode_unfolds, int) or ode_unfolds < 1:
            raise ValueError(f"ode_unfolds must be an integer >= 1, got {ode_unfolds!r}")
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be an integer >= 1, got {in_features!r}")
        self.wiring = wiring.with_inputs(in_features)
        self.in_features = in_features
        self.ode_unfolds = ode_unfolds
        self.epsilon = epsilon
        self.n_neurons = self.wiring.n_neurons
        self.n_motor = self.wiring.n_motor

        gen = torch.Generator().manual_seed(self.wiring.seed if seed is None else seed)

        def uniform(name: str, size: int) -> Tensor:
            lo, hi = INIT_RANGES[name]
            return torch.rand(size, generator=gen) * (hi - lo) + lo

        n, e, es = self.n_neurons, self.wiring.n_synapses, self.wiring.n_sensory_synapses
        # Positive quantities are stored before softplus, so any value the optimizer picks
        # maps to a valid conductance or capacitance.
        self.gleak = nn.Parameter(_inverse_softplus(uniform("gleak", n)))
        self.vleak = nn.Parameter(uniform("vleak", n))
        self.cm = nn.Parameter(_inverse_softplus(uniform("cm", n)))
        self.w = nn.Parameter(_inverse_softplus(uniform("w", e)))
        self.sigma = nn.Parameter(uniform("sigma", e))
        self.mu = nn.Parameter(uniform("mu", e))
        self.sensory_w = nn.Parameter(_inverse_softplus(uniform("w", es)))
        self.sensory_sigma = nn.Parameter(uniform("sigma", es))
        self.sensory_mu = nn.Parameter(uniform("mu", es))
        self.input_w = nn.Parameter(torch.ones(in_features))
        self.input_b = nn.Parameter(torch.zeros(in_features))
        self.output_w = nn.Parameter(torch.ones(self.n_motor))
        self.output_b = nn.Parameter(torch.zeros(self.n_motor))
        if residual:
            # The seed project's fix: a projection of the input straight to the output lets
            # RL gradients reach the actor before the ODE has learned anything useful.
            bound = in_features ** -0.5
            self.residual = nn.Parameter(
                (torch.rand(self.n_motor, in_features, generator=gen) * 2 - 1) * bound
            )
        else:
            self.register_parameter("residual", None)

        self.register_buffer("erev", torch.from_numpy(self.wiring.synapses[:, 2]).float())
        self.register_buffer(
            "sensory_erev", torch.from_numpy(self.wiring.sensory_synapses[:, 2]).float()
        )
        self.compiled = compiled
        self.fused = fused
        self._fused_wiring = fused_executor.Wiring.of(
            self.wiring.synapses, self.wiring.sensory_synapses, n, self.n_motor, ode_unfolds,
            epsilon)
        for name, edges in (("inner", self.wiring.synapses),
                            ("sensory", self.wiring.sensory_synapses)):
            lay = _layout(edges, n)
            self.register_buffer(f"_{name}_edge", lay.edge, persistent=False)
            self.register_buffer(f"_{name}_src", lay.src.reshape(-1), persistent=False)
            setattr(self, f"_{name}_start", lay.start)
        self._cache: tuple[tuple[int, ...], _Derived] | None = None
        self._kernel_cache: tuple[tuple[int, ...], LtcKernel] | None = None
        self._kernel_error: str | None = None
        self._param_names = [name for name, _ in self.named_parameters()]

    # ------------------------------------------------------------------ helpers
    def _edge_terms(self, layer: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Effective per-synapse terms of `layer` ('' or 'sensory_'): softplus(w),
        w * erev, sigma and -sigma * mu."""
        w = F.softplus(getattr(self, layer + "w"))
        sigma = getattr(self, layer + "sigma")
        return w, w * getattr(self, layer + "erev"), sigma, -sigma * getattr(self, layer + "mu")

    def _synapses(self, name: str, layer: str) -> _Synapses:
        edge, start = getattr(self, f"_{name}_edge"), getattr(self, f"_{name}_start")
        w, werev, sigma, bias = self._edge_terms(layer)
        rows = torch.stack([werev, w, sigma, bias])
        rows = F.pad(rows, (0, 1))[:, edge]  # padding slots read the zero column
        after = self.n_neurons - start - edge.shape[0]
        return _Synapses(rows[:2].transpose(0, 1).unsqueeze(-1), rows[2].unsqueeze(-1),
                         rows[3].unsqueeze(-1), getattr(self, f"_{name}_src"),
                         (0, 0, 0, 0, start, after))

    def _tracking(self) -> bool:
        """True when this call must record autograd history."""
        return torch.is_grad_enabled() and any(q.requires_grad for q in self._params())

    def _version_key(self) -> tuple[int, ...]:
        """Changes whenever a parameter is replaced or modified in place."""
        params = self._params()
        return tuple(q._version for q in params) + tuple(id(q) for q in params)

    def _params(self) -> list[Tensor]:
        # Faster than self.parameters(), which matters on the batch-1 inference path.
        return [self._parameters[name] for name in self._param_names]

    def _kernel(self) -> LtcKernel | None:
        """The C inference kernel with the current parameters (rebuilt when they change),
        or None when no C compiler is available (then the torch path runs)."""
        key = self._version_key()
        if self._kernel_cache is not None and self._kernel_cache[0] == key:
            return self._kernel_cache[1]
        if self._kernel_error is not None:
            return None
        arrays = self.kernel_arrays()
        try:
            kernel = LtcKernel(arrays, self.n_motor, self.ode_unfolds, self.epsilon)
        except KernelUnavailableError as exc:
            self._kernel_error = str(exc)
            warnings.warn(f"LTCCell: C inference kernel unavailable ({exc}); "
                          "using the torch path", RuntimeWarning, stacklevel=3)
            return None
        self._kernel_cache = (key, kernel)
        return kernel

    def kernel_arrays(self) -> dict[str, np.ndarray]:
        """The effective parameters as numpy arrays, laid out for the C kernel (per-synapse
        w, w*erev, sigma, -sigma*mu with src/dst; per-neuron gleak, gleak*vleak, cm; the
        affine maps; the residual projection)."""
        with torch.no_grad():
            arrays: dict[str, object] = {}
            for prefix, layer, edges in (("", "", self.wiring.synapses),
                                         ("s_", "sensory_", self.wiring.sensory_synapses)):
                w, werev, sigma, bias = self._edge_terms(layer)
                arrays.update({
                    f"{prefix}src": edges[:, 0], f"{prefix}dst": edges[:, 1],
                    f"{prefix}w": w, f"{prefix}werev": werev, f"{prefix}sigma": sigma,
                    f"{prefix}bias": bias,
                })
            gleak = F.softplus(self.gleak)
            arrays.update(gleak=gleak, leak=gleak * self.vleak, cm=F.softplus(self.cm),
                          in_w=self.input_w, in_b=self.input_b, out_w=self.output_w,
                          out_b=self.output_b, residual=self.residual)
            return {k: v.detach().cpu().numpy() if isinstance(v, Tensor) else v
                    for k, v in arrays.items() if v is not None}

    def _derive(self) -> _Derived:
        """Effective parameters. Without autograd they are cached until a parameter changes
        (optimizer steps and load_state_dict bump the tensors' version counters)."""
        tracking = self._tracking()
        key = self._version_key()
        if not tracking and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        gleak = F.softplus(self.gleak).unsqueeze(-1)
        derived = _Derived(
            inner=self._synapses("inner", ""),
            sensory=self._synapses("sensory", "sensory_"),
            gleak=gleak,
            leak=gleak * self.vleak.unsqueeze(-1),
            cm=F.softplus(self.cm).unsqueeze(-1),
            input_w=self.input_w,
            input_b=self.input_b,
            output_w=self.output_w,
            output_b=self.output_b,
            residual=None if self.residual is None else self.residual.t(),
        )
        self._cache = None if tracking else (key, derived)
        return derived

    def joint_actions(self, y: Tensor) -> Tensor:
        """Per-joint actions from motor outputs (see `joint_actions`)."""
        return joint_actions(y, self.wiring.neurons_per_dof)

    @property
    def n_parameters(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: Tensor,
        h: Tensor | None = None,
        dt: float | Tensor = 1.0,
        resets: Tensor | None = None,
        return_states: bool = False,
    ) -> tuple[Tensor, Tensor]:
        single = x.dim() == 2
        if x.dim() not in (2, 3):
            raise ValueError(
                f"LTCCell input must be (batch, features) or (batch, time, features), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"LTCCell input has {x.shape[-1]} features but the cell was built for "
                f"{self.in_features} (input shape {tuple(x.shape)})"
            )
        batch, steps = x.shape[0], 1 if single else x.shape[1]
        if h is None:
            h = x.new_zeros(batch, self.n_neurons)
        elif h.shape != (batch, self.n_neurons):
            raise ValueError(
                f"hidden state must have shape ({batch}, {self.n_neurons}), got {tuple(h.shape)}"
            )
        if resets is not None and resets.shape != (batch, steps):
            raise ValueError(f"resets must have shape ({batch}, {steps}), "
                             f"got {tuple(resets.shape)}")
        dt = self._check_dt(dt, batch, steps, single)
        if (self.compiled and batch <= KERNEL_MAX_BATCH and x.dtype == torch.float32
                and x.device.type == "cpu" and not self._tracking() and not return_states):
            kernel = self._kernel()
            if kernel is not None:
                return self._forward_kernel(kernel, x, h, dt, resets, single)
        if self._use_fused(x, dt):  # checks its input itself
            return self._forward_fused(x, h, dt, resets, single, return_states)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("LTCCell input contains NaN or inf")
        keep = None if resets is None else (~resets.bool()).to(x.dtype).t().unsqueeze(1)
        scale = (self.ode_unfolds / dt if isinstance(dt, float)
                 else (self.ode_unfolds / dt).t().unsqueeze(1))  # (T, 1, B)
        step = _compiled() if self.compiled else ltc_step
        p = self._derive()
        v = h.t()
        ys, states = [], []
        for t in range(steps):
            if keep is not None:
                v = v * keep[t]
            y, v = step(x if single else x[:, t], v, scale if isinstance(scale, float)
                        else scale[t], p, self.ode_unfolds, self.n_motor, self.epsilon)
            ys.append(y)
            if return_states:
                states.append(v.t())
        y_out = ys[0] if single else torch.stack(ys, dim=1)
        if return_states:  # the state after every step, (B, T, N)
            return y_out, torch.stack(states, dim=1)
        return y_out, v.t().contiguous()

    def _use_fused(self, x: Tensor, dt: float | Tensor) -> bool:
        if not (self.fused and x.dtype == torch.float32 and x.device.type == "cpu") or (
                isinstance(dt, Tensor) and dt.requires_grad):
            return False
        if not fused_executor.available():
            self.fused = False
            warnings.warn("LTCCell: fused training kernel unavailable (no C compiler); "
                          "using the eager path", RuntimeWarning, stacklevel=3)
        return self.fused

    def _forward_fused(self, x: Tensor, h: Tensor, dt: float | Tensor, resets: Tensor | None,
                       single: bool, return_states: bool) -> tuple[Tensor, Tensor]:
        """The sequence through the fused kernel of `fused.py`."""
        xs = x.unsqueeze(1) if single else x
        batch, steps = xs.shape[0], xs.shape[1]
        scale = (xs.new_full((steps, batch), self.ode_unfolds / dt) if isinstance(dt, float)
                 else (self.ode_unfolds / dt).t().to(torch.float32))
        keep = None if resets is None else (~resets.bool()).to(torch.float32).t()
        params = tuple(self._parameters[name] for name in fused_executor.PARAMS)
        y, h, states = fused_executor.sequence(self._fused_wiring, xs, h.to(torch.float32),
                                               scale, keep, params, return_states)
        if single:
            y = y.squeeze(1)
        return (y, states) if return_states else (y, h)

    def _forward_kernel(self, kernel: LtcKernel, x: Tensor, h: Tensor, dt: float | Tensor,
                        resets: Tensor | None, single: bool) -> tuple[Tensor, Tensor]:
        """The same step in the C kernel: no autograd, float32 on the CPU."""
        batch, steps = x.shape[0], 1 if single else x.shape[1]
        x = x.contiguous()
        h = h.to(torch.float32, copy=True).contiguous()
        y = x.new_empty((batch, self.n_motor) if single else (batch, steps, self.n_motor))
        dt_t = None if isinstance(dt, float) else dt.to(torch.float32).contiguous()
        res = None if resets is None else resets.to(torch.uint8).contiguous()
        kernel.forward_into(batch, steps, x.data_ptr(),
                            None if dt_t is None else dt_t.data_ptr(),
                            dt if dt_t is None else 1.0,
                            None if res is None else res.data_ptr(), h.data_ptr(),
                            y.data_ptr())
        return y, h

    def _check_dt(self, dt: float | Tensor, batch: int, steps: int, single: bool
                  ) -> float | Tensor:
        """Elapsed time per step: a float when shared, else a (B, T) tensor."""
        if not isinstance(dt, Tensor) or dt.dim() == 0:
            value = float(dt)
            if not value > 0 or value == float("inf"):
                raise ValueError(f"elapsed time dt must be positive and finite, got {dt!r}")
            return value
        if single and dt.shape == (batch,):
            dt = dt.unsqueeze(1)
        if dt.shape != (batch, steps):
            want = f"({batch},)" if single else f"({batch}, {steps})"
            raise ValueError(f"dt must be a float or have shape {want}, got {tuple(dt.shape)}")
        if not bool(((dt > 0) & torch.isfinite(dt)).all()):
            raise ValueError("elapsed time dt must be positive and finite for every sample")
        return dt.to(torch.get_default_dtype())

    def extra_repr(self) -> str:
        return (f"neurons={self.n_neurons}, motor={self.n_motor}, in_features={self.in_features}, "
                f"synapses={self.wiring.n_synapses}+{self.wiring.n_sensory_synapses} sensory, "
                f"ode_unfolds={self.ode_unfolds}, residual={self.residual is not None}, "
                f"compiled={self.compiled}")
