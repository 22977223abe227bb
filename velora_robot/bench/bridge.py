"""`velora-robot bench bridge`: round-trip time of one control exchange (SET_TARGETS for 12
joints -> STATE) between `SerialBridgeHardware` and the firmware emulator on a
pseudo-terminal, with the UART's wire time modelled, at 1 and 3 Mbaud, beside the physical
bound: the wire time of the two frames."""

from __future__ import annotations

from typing import Any

import numpy as np

BAUDS = (1_000_000, 3_000_000)


def run(quick: bool = False) -> dict[str, Any]:
    from velora_robot.bridge import protocol as P
    from velora_robot.bridge.emulator import Emulator
    from velora_robot.hal.base import JointCommand
    from velora_robot.hal.serial_bridge import SerialBridgeHardware
    from velora_robot.robots import SPOT

    exchanges = 500 if quick else 5000
    request, reply = P.exchange_bytes(SPOT.n_joints)
    rows = []
    for baud in BAUDS:
        with Emulator(joints=SPOT.n_joints, baud=baud,
                      pose=[j.default_pos for j in SPOT.joints]) as emu:
            hw = SerialBridgeHardware(SPOT, emu.port, baud=baud)
            hw.configure()
            hw.activate()
            command = JointCommand.hold(SPOT, hw.read().q)
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
        rows.append({"baud": baud, "exchanges": len(rtt), "bound_us": bound,
                     "p50_us": float(np.percentile(rtt, 50)),
                     "p99_us": float(np.percentile(rtt, 99)), "max_us": float(rtt.max()),
                     "p99_over_bound": float(np.percentile(rtt, 99) / bound),
                     "timeouts": counters["timeouts"], "crc_errors": counters["crc_errors"]})
    return {"benchmark": "bridge", "joints": SPOT.n_joints, "request_bytes": request,
            "reply_bytes": reply, "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = [f"bridge round trip, {result['joints']} joints: SET_TARGETS "
             f"{result['request_bytes']} B + STATE {result['reply_bytes']} B "
             f"(8N1, emulator on a pty)",
             f"{'baud':>10} {'bound us':>9} {'p50 us':>8} {'p99 us':>8} {'max us':>8} "
             f"{'p99/bound':>9} {'timeouts':>8}"]
    for r in result["rows"]:
        lines.append(f"{r['baud']:>10,} {r['bound_us']:>9.0f} {r['p50_us']:>8.0f} "
                     f"{r['p99_us']:>8.0f} {r['max_us']:>8.0f} {r['p99_over_bound']:>9.2f} "
                     f"{r['timeouts']:>8}")
    return "\n".join(lines)
