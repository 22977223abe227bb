"""`velora-robot bench policy` and `bench loop`: the onboard side's speed.

policy: step latency of the default ~100-neuron Spot controller exported to ONNX, in
onnxruntime with one thread (the weights are untrained; the cost does not depend on them).
loop: the control loop at 500 Hz for 60 s with the simulated Spot (physics at 500 Hz, one
physics step per cycle) and the policy inside at 50 Hz: lateness p50/p99/max, overruns.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _spot_policy(out: Path, fmt: str = "onnx") -> Path:
    """Export the default Spot controller (fresh weights) via a one-update run."""
    from velora_robot.export import export
    from velora_robot.rl import Recipe, train

    recipe = Recipe.model_validate({
        "name": "spot_policy", "env": {"id": "velora_robot/SpotWalk-v0", "n_envs": 2},
        "policy": {"kind": "liquid", "n_neurons": 100, "neurons_per_dof": 2},
        "algorithm": {"steps_per_env": 8, "chunk_len": 8}, "budget": {"env_steps": 16},
        "logging": {"dir": str(out)}, "eval": {"episodes": 0}})
    if not (recipe.run_dir / "checkpoint.pt").exists():
        train(recipe, progress=False)
    return export(recipe.run_dir / "checkpoint.pt", fmt)["policy"]


def policy_latency(path: Path, steps: int) -> dict[str, float]:
    """p50/p99/max of policy steps (runner by file type), microseconds."""
    from velora_robot.runtime import load_policy

    policy = load_policy(path)
    obs = np.random.default_rng(0).normal(size=policy.obs_dim).astype(np.float32)
    for _ in range(200):
        policy(obs)
    samples = np.empty(steps)
    for i in range(steps):
        start = time.perf_counter_ns()
        policy(obs)
        samples[i] = (time.perf_counter_ns() - start) / 1e3
    return {"p50_us": float(np.percentile(samples, 50)),
            "p99_us": float(np.percentile(samples, 99)), "max_us": float(samples.max()),
            "steps": steps}


def run_policy(quick: bool = False) -> dict[str, Any]:
    """bench policy: ONNX Runtime, and the C-kernel runner for comparison."""
    import onnx

    steps = 2000 if quick else 20000
    with tempfile.TemporaryDirectory(prefix="velora-bench-") as tmp:
        onnx_path = _spot_policy(Path(tmp))
        nodes = len(onnx.load(str(onnx_path)).graph.node)
        onnx_result = policy_latency(onnx_path, steps)
        kernel_result = policy_latency(_spot_policy(Path(tmp), "kernel"), steps)
    return {"benchmark": "policy", "model": "Spot LTC-NCP, 100 neurons", "onnx_nodes": nodes,
            "onnx": onnx_result, "kernel": kernel_result}


def run_loop(quick: bool = False, seconds: float | None = None) -> dict[str, Any]:
    """bench loop: 500 Hz, simulated Spot, policy at 50 Hz."""
    from velora_robot.hal import MujocoHardware
    from velora_robot.robots import SPOT
    from velora_robot.runtime import OnnxPolicy
    from velora_robot.runtime.controller import Controller
    from velora_robot.runtime.loop import ControlLoop, realtime_setup
    from velora_robot.runtime.safety import Safety, SafetyConfig

    seconds = seconds or (5.0 if quick else 60.0)
    spec = SPOT.model_copy(update={"physics_hz": 500.0})
    with tempfile.TemporaryDirectory(prefix="velora-bench-") as tmp:
        policy = OnnxPolicy(_spot_policy(Path(tmp)))
        hw = MujocoHardware(spec, period_s=0.002)
        safety = Safety(spec, SafetyConfig(ramp_s=1.0, min_upright=-1.0), dt_s=0.002)
        controller = Controller(hw, policy, np.array([0.5, 0.0, 0.0]), safety=safety,
                                policy_every=10)
        notes = realtime_setup()
        stats = ControlLoop(controller, 500.0).run(seconds=seconds).summary()
    return {"benchmark": "loop", "command_hz": 500, "policy_hz": 50, "seconds": seconds,
            "realtime": notes, "final_mode": safety.mode.value, **stats}


def table_policy(result: dict[str, Any]) -> str:
    lines = [f"{result['model']}, one step, batch 1 ({result['onnx']['steps']} steps):"]
    for name, key in ((f"ONNX Runtime, 1 thread ({result['onnx_nodes']} nodes)", "onnx"),
                      ("C kernel (KernelPolicy, numpy + ctypes)", "kernel")):
        r = result[key]
        lines.append(f"  {name:<44} p50 {r['p50_us']:7.1f} us  p99 {r['p99_us']:7.1f} us  "
                     f"max {r['max_us']:8.1f} us")
    return "\n".join(lines)


def table_loop(result: dict[str, Any]) -> str:
    late, comp = result["lateness_us"], result["compute_us"]
    return "\n".join([
        f"control loop {result['command_hz']} Hz (policy {result['policy_hz']} Hz), simulated "
        f"Spot, {result['seconds']:.0f} s, {result['cycles']} cycles",
        f"lateness us: p50 {late['p50']:.1f}  p99 {late['p99']:.1f}  max {late['max']:.1f}",
        f"compute us:  p50 {comp['p50']:.1f}  p99 {comp['p99']:.1f}  max {comp['max']:.1f}",
        f"overruns {result['overruns']}, skipped periods {result['skipped_periods']}, "
        f"final mode {result['final_mode']}",
        *("  " + n for n in result["realtime"])])
