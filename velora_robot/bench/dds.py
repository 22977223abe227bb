"""`velora-robot bench dds`: the control loop over DDS at the G1's 500 Hz command rate.

The shipped G1 controller (policy at 50 Hz, commands at 500 Hz) runs through
`UnitreeHardware` against the simulated G1 speaking Unitree SDK2's topics on the loopback
interface (its own process, paced at the 250 Hz physics rate) for 60 s (10 s with
--quick). Reported: the loop's lateness (p50, p99, max), overruns and skipped periods,
compute time per cycle, how old the states it read were, and what reached the robot.
Both processes share this machine's cores: say the load with the figures.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "g1_dds.yaml"


def run(quick: bool = False) -> dict[str, Any]:
    from velora_robot.hil import dds as dds_hil

    seconds = 10.0 if quick else 60.0
    data = dds_hil.absolute(LAUNCH)
    data["telemetry"] = {"path": None}
    data["estop"] = {"keys": False, "file": None, "signal": None}
    with tempfile.TemporaryDirectory() as tmp:
        summary, robot = dds_hil.run_over_dds(data, Path(tmp), seconds)
    return {"seconds": seconds, "command_hz": data["loop"]["command_hz"],
            "cycles": summary["cycles"], "lateness_us": summary["lateness_us"],
            "compute_us": summary["compute_us"], "overruns": summary["overruns"],
            "skipped_periods": summary["skipped_periods"], "final_mode": summary["final_mode"],
            "fault": summary["fault"], "link": summary["link"], "robot": robot,
            "load_avg_1min": os.getloadavg()[0]}


def table(r: dict[str, Any]) -> str:
    late, comp, age = r["lateness_us"], r["compute_us"], r["link"]["state_age_ms"]
    return "\n".join([
        f"G1 over DDS (loopback), commands {r['command_hz']:g} Hz, {r['seconds']:g} s, "
        f"final mode {r['final_mode']}",
        f"  cycles {r['cycles']}, overruns {r['overruns']}, skipped periods "
        f"{r['skipped_periods']}",
        f"  lateness us: p50 {late['p50']:.0f}  p99 {late['p99']:.0f}  max {late['max']:.0f}",
        f"  compute us:  p50 {comp['p50']:.0f}  p99 {comp['p99']:.0f}  max {comp['max']:.0f}",
        f"  state age ms: p50 {age['p50']:.2f}  p99 {age['p99']:.2f}  max {age['max']:.2f}",
        f"  robot received {r['robot']['commands']} commands ({r['robot']['crc_errors']} bad "
        f"CRC); {r['link']['crc_errors']} states dropped for a bad CRC",
        f"  load average (1 min) at the end: {r['load_avg_1min']:.2f}"])
