"""`velora-robot bench policy` and `bench loop`: the onboard side's speed.

policy: step latency of the default ~100-neuron Spot controller exported to ONNX, in
onnxruntime with one thread (the weights are untrained; the cost does not depend on them):
our hand-built graph (what `export` writes), the torch exporter's graph of the same
policy, and the C-kernel runner.
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
    import shutil

    import onnx
    import torch

    from velora_robot.export.deploy import DeployPolicy
    from velora_robot.export.exporter import _export_onnx, load_agent
    from velora_robot.rl.trainer import load_checkpoint
    from velora_robot.runtime.card import card_path

    steps = 2000 if quick else 20000
    with tempfile.TemporaryDirectory(prefix="velora-bench-") as tmp:
        onnx_path = _spot_policy(Path(tmp))
        # The same policy through the torch exporter, for comparison.
        _, agent = load_agent(load_checkpoint(onnx_path.parent / "checkpoint.pt"))
        traced = onnx_path.with_name("traced.onnx")
        example = (torch.zeros(1, agent.obs_norm.mean.shape[0]),
                   torch.zeros(1, agent.actor.cell.n_neurons))
        with torch.no_grad():
            _export_onnx(DeployPolicy(agent).eval(), example, traced)
        shutil.copy(card_path(onnx_path), card_path(traced))
        nodes = {name: len(onnx.load(str(p)).graph.node) for name, p in
                 (("onnx", onnx_path), ("onnx_traced", traced))}
        results = {"onnx": policy_latency(onnx_path, steps),
                   "onnx_traced": policy_latency(traced, steps),
                   "kernel": policy_latency(_spot_policy(Path(tmp), "kernel"), steps)}
    return {"benchmark": "policy", "model": "Spot LTC-NCP, 100 neurons", "nodes": nodes,
            **results}


def run_loop(quick: bool = False, seconds: float | None = None) -> dict[str, Any]:
    """bench loop: 500 Hz, simulated Spot, policy at 50 Hz."""
    from velora_robot.hal import MujocoHardware
    from velora_robot.robots import get_spec
    from velora_robot.runtime import OnnxPolicy
    from velora_robot.runtime.controller import Controller
    from velora_robot.runtime.loop import ControlLoop, realtime_setup
    from velora_robot.runtime.safety import Safety, SafetyConfig

    seconds = seconds or (5.0 if quick else 60.0)
    spec = get_spec("spot").model_copy(update={"physics_hz": 500.0})
    with tempfile.TemporaryDirectory(prefix="velora-bench-") as tmp:
        policy = OnnxPolicy(_spot_policy(Path(tmp)))
        hw = MujocoHardware(spec, period_s=0.002)
        safety = Safety(spec, SafetyConfig(ramp_s=1.0, min_upright=-1.0), dt_s=0.002)
        controller = Controller(hw, policy, policy.card.interface, np.array([0.5, 0.0, 0.0]),
                                safety=safety, policy_every=10)
        notes = realtime_setup()
        steal = _steal_ms()
        stats = ControlLoop(controller, 500.0).run(seconds=seconds).summary()
        steal = None if steal is None else _steal_ms() - steal
    return {"benchmark": "loop", "command_hz": 500, "policy_hz": 50, "seconds": seconds,
            "realtime": notes, "final_mode": safety.mode.value, "vm_steal_ms": steal, **stats}


def _steal_ms() -> float | None:
    """CPU time the hypervisor took from this virtual machine so far (all CPUs; Linux
    /proc/stat), in ms; None where it cannot be read. Stalls in a VM show up here."""
    import os

    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def table_policy(result: dict[str, Any]) -> str:
    lines = [f"{result['model']}, one step, batch 1 ({result['onnx']['steps']} steps):"]
    nodes = result["nodes"]
    for name, key in ((f"ONNX Runtime, our graph ({nodes['onnx']} nodes)", "onnx"),
                      (f"ONNX Runtime, torch exporter ({nodes['onnx_traced']} nodes)",
                       "onnx_traced"),
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
        "hypervisor steal time during the run: " + (
            "unknown" if result["vm_steal_ms"] is None else f"{result['vm_steal_ms']:.0f} ms"),
        *("  " + n for n in result["realtime"])])
