"""`velora-robot bench bridge`: round-trip time of one control exchange (SET_TARGETS for 12
joints -> STATE) between `SerialBridgeHardware` and the firmware emulator on a
pseudo-terminal, with the UART's wire time modelled, at 1 and 3 Mbaud, beside the physical
bound: the wire time of the two frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BAUDS = (1_000_000, 3_000_000)


def run(quick: bool = False) -> dict[str, Any]:
    """Both emulator modes: polling (`--spin`, one busy core: the lowest latency, as a
    board's firmware loop would be) and sleeping in ppoll between events; then the
    sim-plant comparison for each shipped controller."""
    from velora_robot.bridge import protocol as P
    from velora_robot.robots import get_spec

    spot = get_spec("spot")
    rows = [row for spin in (True, False) for row in _exchanges(quick, spin)]
    request, reply = P.exchange_bytes(spot.n_joints)
    plant = []
    models = Path(__file__).resolve().parents[2] / "models"
    for robot, name, command, hz in (("one_joint", "joint_track.onnx", [0.5, 0.0], 250),
                                     ("spot", "spot_walk.onnx", [0.5, 0.0, 0.0], 50)):
        if (models / name).is_file():
            plant.append(compare_paths(str(models / name), robot, command,
                                       seconds=2.0 if quick else 5.0, command_hz=hz))
    return {"benchmark": "bridge", "joints": spot.n_joints, "request_bytes": request,
            "reply_bytes": reply, "rows": rows, "sim_plant": plant}


def _exchanges(quick: bool, spin: bool) -> list[dict[str, Any]]:
    from velora_robot.bridge import protocol as P
    from velora_robot.bridge.emulator import Emulator
    from velora_robot.hal.base import JointCommand
    from velora_robot.hal.serial_bridge import SerialBridgeHardware
    from velora_robot.robots import get_spec

    spot = get_spec("spot")
    exchanges = 500 if quick else 5000
    request, reply = P.exchange_bytes(spot.n_joints)
    rows = []
    for baud in BAUDS:
        with Emulator.for_robot(spot, baud=baud, spin=spin) as emu:
            hw = SerialBridgeHardware(spot, emu.port, baud=baud)
            hw.configure()
            hw.activate()
            command = JointCommand.hold(spot, hw.read().q)
            for _ in range(200):  # warm-up
                hw.write(command)
            hw.rtt_us.clear()
            for _ in range(exchanges):
                hw.write(command)
            rtt = np.array(hw.rtt_us)
            hw.deactivate()
            hw.shutdown()
            counters = hw.link_status()
        bound = P.wire_time_s(request + reply, baud) * 1e6
        rows.append({"baud": baud, "emulator": "spin" if spin else "sleep",
                     "exchanges": len(rtt), "bound_us": bound,
                     "p50_us": float(np.percentile(rtt, 50)),
                     "p99_us": float(np.percentile(rtt, 99)), "max_us": float(rtt.max()),
                     "p99_over_bound": float(np.percentile(rtt, 99) / bound),
                     "timeouts": counters["timeouts"], "crc_errors": counters["crc_errors"]})
    return rows


def table(result: dict[str, Any]) -> str:
    lines = [f"bridge round trip, {result['joints']} joints: SET_TARGETS "
             f"{result['request_bytes']} B + STATE {result['reply_bytes']} B "
             f"(8N1, emulator on a pty)",
             f"{'emulator':>8} {'baud':>10} {'bound us':>9} {'p50 us':>8} {'p99 us':>8} "
             f"{'max us':>8} {'p99/bound':>9} {'timeouts':>8}"]
    for r in result["rows"]:
        lines.append(f"{r['emulator']:>8} {r['baud']:>10,} {r['bound_us']:>9.0f} "
                     f"{r['p50_us']:>8.0f} "
                     f"{r['p99_us']:>8.0f} {r['max_us']:>8.0f} {r['p99_over_bound']:>9.2f} "
                     f"{r['timeouts']:>8}")
    for c in result.get("sim_plant", []):
        lines.append(f"sim-plant, {c['robot']} at {c['command_hz']:g} Hz, {c['seconds']:g} s: "
                     f"joint trajectories through the serial path vs direct: max "
                     f"{c['max_abs_diff_rad']:.4f} rad, rms {c['rms_diff_rad']:.4f} rad; "
                     f"latency {c['latency_s'] * 1e3:.1f} ms explains {c['explained_rad']:.4f} "
                     "rad")
    return "\n".join(lines)


def compare_paths(policy_path: str, robot: str, command: list[float], seconds: float = 3.0,
                  command_hz: float | None = None, baud: int = 1_000_000,
                  fresh_state: bool = False) -> dict[str, Any]:
    """The same policy run twice by the control loop: on the simulated robot directly
    (`MujocoHardware`, one command period of physics per cycle) and through the serial path
    in sim-plant mode (`SerialBridgeHardware` -> emulator on a pty with wire time -> the
    same simulated robot as its motors). Returns the joint trajectories' differences and
    the part of them the serial path's latency explains: max |dq| times the latency (the
    state is up to one command period old, and a new target reaches the motors after the
    request's wire time, the firmware's 1 ms tick and the next physics step)."""
    from velora_robot.bridge import protocol as P
    from velora_robot.bridge.emulator import Emulator
    from velora_robot.hal.mujoco import MujocoHardware
    from velora_robot.hal.serial_bridge import SerialBridgeHardware
    from velora_robot.robots import get_spec
    from velora_robot.runtime import Controller, ControlLoop, Safety, SafetyConfig, load_policy

    spec = get_spec(robot)
    command_hz = command_hz or spec.control_hz
    every = round(command_hz / spec.control_hz)
    cycles = round(seconds * command_hz)

    def trajectory(hw: Any) -> np.ndarray:
        safety = Safety(spec, SafetyConfig(ramp_s=0.0, min_upright=-1.0), dt_s=1 / command_hz)
        policy = load_policy(policy_path)
        controller = Controller(hw, policy, policy.card.interface, np.asarray(command, float),
                                safety=safety, policy_every=every)
        rows: list[np.ndarray] = []
        ControlLoop(controller, command_hz).run(
            cycles=cycles, on_cycle=lambda c: rows.append(
                np.concatenate([c.state.q, c.state.dq]) if c.state is not None
                else np.full(2 * spec.n_joints, np.nan)))
        if safety.fault is not None:
            raise RuntimeError(f"{type(hw).__name__}: {safety.fault.value} ({safety.detail})")
        return np.array(rows)

    direct = trajectory(MujocoHardware(spec, period_s=1 / command_hz))
    with Emulator.for_robot(spec, baud=baud, sim_plant=True) as emu:
        hw = SerialBridgeHardware(spec, emu.port, baud=baud, fresh_state=fresh_state)
        serial = trajectory(hw)
        link = hw.link_status()
    n = spec.n_joints
    diff = np.abs(direct[:, :n] - serial[:, :n])
    request, reply = P.exchange_bytes(n)
    state_age = P.wire_time_s(reply, baud) if fresh_state else 1 / command_hz
    latency = state_age + P.wire_time_s(request, baud) + 1e-3 + spec.physics_dt
    explained = float(np.nanmax(np.abs(direct[:, n:])) * latency)
    return {"robot": robot, "seconds": seconds, "command_hz": command_hz, "baud": baud,
            "fresh_state": fresh_state,
            "cycles": len(direct), "max_abs_diff_rad": float(np.nanmax(diff)),
            "rms_diff_rad": float(np.sqrt(np.nanmean(diff ** 2))),
            "latency_s": latency, "explained_rad": explained,
            "rtt_p50_us": link["rtt_p50_us"], "timeouts": link["timeouts"]}
