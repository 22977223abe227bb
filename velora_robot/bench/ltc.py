"""`velora-robot bench ltc`: our LTC cell against ncps and a torch LSTM of the same parameter
count, one thread, same wiring and weights.

Cases (100 neurons, 48 inputs, 24 motor neurons, 6 ODE unfolds):
  a) one step at batch 1, no autograd (a policy step), p50 latency;
  b) forward + backward through time over batch 64 x 32 steps (a training chunk), and
     b48 / b96) over batch 48 and 96 x 8 steps (PPO minibatches of truncated BPTT);
  c) one step at batch 4096, no autograd (a large vectorized rollout).
Our executors: eager torch; torch.compile of the step; "C": the default cell with
`compiled=True`, i.e. the C inference kernel at batch 1 and the fused kernel (forward and
hand-written backward in C) everywhere else.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from velora_robot.bench.ncps_ref import ncps_available, to_ncps
from velora_robot.liquid import LTCCell, NCPWiring

IN_FEATURES = 48


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of `repeats` calls (after two warm-up calls)."""
    fn()
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _step(cell: torch.nn.Module, x: torch.Tensor, h: torch.Tensor) -> Callable[[], Any]:
    def run() -> Any:
        with torch.no_grad():
            return cell(x, h)
    return run


class _LSTM(torch.nn.Module):
    """torch.nn.LSTM behind the cell's call signature: y, h = cell(x, h) with the hidden and
    cell states concatenated in h."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(in_features, hidden, batch_first=True)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        single = x.dim() == 2
        state = None if h is None else tuple(
            part.unsqueeze(0).contiguous() for part in h.split(self.hidden, dim=1))
        y, (hn, cn) = self.lstm(x.unsqueeze(1) if single else x, state)
        return (y[:, 0] if single else y), torch.cat([hn[0], cn[0]], dim=1)


def lstm_like(n_parameters: int, in_features: int) -> _LSTM:
    """The largest single-layer LSTM with at most `n_parameters` parameters."""
    hidden = 1
    while 4 * (hidden + 1) * (in_features + hidden + 3) <= n_parameters:
        hidden += 1
    return _LSTM(in_features, hidden)


def _through_time(cell: torch.nn.Module, xs: torch.Tensor, looped: bool) -> Callable[[], Any]:
    """Forward over the sequence then backward of the summed outputs."""
    def run() -> None:
        cell.zero_grad(set_to_none=True)
        if looped:  # ncps steps its cell in a Python loop (as ncps.torch.LTC does)
            h = xs.new_zeros(xs.shape[0], cell.state_size)
            total = 0.0
            for t in range(xs.shape[1]):
                y, h = cell(xs[:, t], h)
                total = total + y.sum()
        else:
            total = cell(xs)[0].sum()
        total.backward()
    return run


def run(quick: bool = False) -> dict[str, Any]:
    """Measure all cases; returns the JSON-ready result."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(quick)
    finally:
        torch.set_num_threads(threads)


def _measure(quick: bool) -> dict[str, Any]:
    torch.manual_seed(0)
    wiring = NCPWiring(n_dof=12, neurons_per_dof=2, seed=0)
    eager = LTCCell(wiring, IN_FEATURES, residual=False, fused=False)
    cells: dict[str, torch.nn.Module] = {
        "ours (eager)": eager,
        "ours (torch.compile)": LTCCell(wiring, IN_FEATURES, residual=False, fused=False,
                                        compiled=True),
        "ours (C)": LTCCell(wiring, IN_FEATURES, residual=False, compiled=True),
    }
    for cell in cells.values():
        cell.load_state_dict(eager.state_dict())
    lstm = lstm_like(eager.n_parameters, IN_FEATURES)
    if ncps_available():
        cells = {"ncps 1.0.1": to_ncps(eager), **cells}
    cells["LSTM (same params)"] = lstm

    n = eager.n_neurons
    x1 = torch.randn(1, IN_FEATURES)
    x4 = torch.randn(4096, IN_FEATURES)
    reps = {"a": 200 if quick else 2000, "b": 2 if quick else 5, "b48": 5 if quick else 20,
            "b96": 5 if quick else 20, "c": 2 if quick else 5}

    def state(c: torch.nn.Module, batch: int) -> torch.Tensor:
        return torch.zeros(batch, 2 * c.hidden if isinstance(c, _LSTM) else n)

    def through_time(batch: int, steps: int) -> Callable[[torch.nn.Module], Callable]:
        xs = torch.randn(batch, steps, IN_FEATURES)
        return lambda c: _through_time(c, xs, looped=not isinstance(c, LTCCell | _LSTM))

    cases = {
        "a": ("step, batch 1 (us)", 1e6, lambda c: _step(c, x1, state(c, 1))),
        "b": ("fwd+bwd 64x32 (ms)", 1e3, through_time(64, 32)),
        "b48": ("fwd+bwd 48x8 (ms)", 1e3, through_time(48, 8)),
        "b96": ("fwd+bwd 96x8 (ms)", 1e3, through_time(96, 8)),
        "c": ("step, batch 4096 (ms)", 1e3, lambda c: _step(c, x4, state(c, 4096))),
    }
    compile_s = time.perf_counter()
    for make in (case[2] for case in cases.values()):
        make(cells["ours (torch.compile)"])()  # compile every shape once, timed apart
    compile_s = time.perf_counter() - compile_s

    rows = []
    for key, (label, unit, make) in cases.items():
        row: dict[str, Any] = {"case": key, "label": label}
        for name, cell in cells.items():
            slow = name.startswith("ncps")
            repeats = max(1, reps[key] // 4) if slow else reps[key]
            row[name] = _timed(make(cell), repeats) * unit
        if "ncps 1.0.1" in row:
            row["x ncps"] = row["ncps 1.0.1"] / row["ours (C)"]
        row["/ LSTM"] = row["ours (C)"] / row["LSTM (same params)"]
        rows.append(row)

    default = LTCCell(wiring, IN_FEATURES)  # the default Spot controller, residual head on
    result: dict[str, Any] = {
        "benchmark": "ltc",
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "threads": 1},
        "model": {"neurons": n, "motor": eager.n_motor, "inputs": IN_FEATURES,
                  "synapses": wiring.n_synapses,
                  "sensory_synapses": eager.wiring.n_sensory_synapses,
                  "ode_unfolds": eager.ode_unfolds},
        "compile_s": compile_s,
        "rows": rows,
        "parameters": {"ours (default Spot controller)": default.n_parameters,
                       "ours (no residual head)": eager.n_parameters,
                       f"LSTM (hidden {lstm.hidden})": sum(
                           p.numel() for p in lstm.parameters())},
    }
    if "ncps 1.0.1" in cells:
        result["parameters"]["ncps (same wiring)"] = sum(
            p.numel() for p in cells["ncps 1.0.1"].parameters() if p.requires_grad)
    else:
        result["note"] = "ncps is not installed (pip install '.[dev]'): ours only"
    return result


def table(result: dict[str, Any]) -> str:
    """The result as a plain-text table."""
    names = [k for k in result["rows"][0] if k not in ("case", "label")]
    width = max(len(n) for n in names) + 2
    lines = [f"{'case':<28}" + "".join(f"{n:>{width}}" for n in names)]
    for row in result["rows"]:
        cells = "".join(
            f"{row[n]:>{width - 1}.1f}x" if n in ("x ncps", "/ LSTM")
            else f"{row[n]:>{width}.{2 if row[n] < 10 else 1}f}" for n in names
        )
        lines.append(f"{row['case'] + ') ' + row['label']:<28}" + cells)
    lines.append("")
    lines += [f"trainable parameters, {k}: {v}" for k, v in result["parameters"].items()]
    lines.append(f"one-time torch.compile warm-up: {result['compile_s']:.1f} s")
    if "note" in result:
        lines.append(result["note"])
    return "\n".join(lines)
