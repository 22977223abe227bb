"""`velora-robot bench ltc`: our LTC cell against ncps, one thread, same wiring and weights.

Cases (100 neurons, 48 inputs, 24 motor neurons, 6 ODE unfolds):
  a) one step at batch 1, no autograd (a policy step), p50 latency;
  b) forward + backward through time over batch 64 x 32 steps (a training chunk);
  c) one step at batch 4096, no autograd (a large vectorized rollout).
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
    eager = LTCCell(wiring, IN_FEATURES, residual=False)
    compiled = LTCCell(wiring, IN_FEATURES, residual=False, compiled=True)
    compiled.load_state_dict(eager.state_dict())
    cells: dict[str, torch.nn.Module] = {"ours (eager)": eager, "ours (compiled)": compiled}
    if ncps_available():
        cells = {"ncps 1.0.1": to_ncps(eager), **cells}

    n = eager.n_neurons
    x1, h1 = torch.randn(1, IN_FEATURES), torch.zeros(1, n)
    xs = torch.randn(64, 32, IN_FEATURES)
    x4, h4 = torch.randn(4096, IN_FEATURES), torch.zeros(4096, n)
    reps = {"a": 200 if quick else 2000, "b": 2 if quick else 5, "c": 2 if quick else 5}
    cases = {
        "a": ("step, batch 1 (us)", 1e6, lambda c: _step(c, x1, h1)),
        "b": ("fwd+bwd 64x32 (ms)", 1e3,
              lambda c: _through_time(c, xs, looped=not isinstance(c, LTCCell))),
        "c": ("step, batch 4096 (ms)", 1e3, lambda c: _step(c, x4, h4)),
    }
    compile_s = time.perf_counter()
    for make in (case[2] for case in cases.values()):
        make(compiled)()  # compile every shape once, timed separately below
    compile_s = time.perf_counter() - compile_s

    rows = []
    for key, (label, unit, make) in cases.items():
        row: dict[str, Any] = {"case": key, "label": label}
        for name, cell in cells.items():
            slow = name.startswith("ncps")
            repeats = max(1, reps[key] // 4) if slow else reps[key]
            row[name] = _timed(make(cell), repeats) * unit
        if "ncps 1.0.1" in row:
            for mode in ("eager", "compiled"):
                row[f"x ncps, {mode}"] = row["ncps 1.0.1"] / row[f"ours ({mode})"]
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
                       "ours (no residual head)": eager.n_parameters},
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
    lines = [f"{'case':<26}" + "".join(f"{n:>18}" for n in names)]
    for row in result["rows"]:
        cells = "".join(
            f"{row[n]:>17.1f}x" if n.startswith("x ncps") else f"{row[n]:>18.1f}"
            for n in names
        )
        lines.append(f"{row['case'] + ') ' + row['label']:<26}" + cells)
    lines.append("")
    lines += [f"trainable parameters, {k}: {v}" for k, v in result["parameters"].items()]
    lines.append(f"one-time torch.compile warm-up: {result['compile_s']:.1f} s")
    if "note" in result:
        lines.append(result["note"])
    return "\n".join(lines)
