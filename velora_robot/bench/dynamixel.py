"""`velora-robot bench dynamixel`: how many bytes per second the DYNAMIXEL status parser
(CRC included) takes in, on a clean bus and on the worst streams we know, beside what a
4 Mbaud bus delivers (400,000 bytes/s at 10 bits a byte). The worst case for a parser that
resyncs is a stream of false headers, each claiming a long packet: a parser that computes
each candidate's CRC afresh does ~150 times the work there."""

from __future__ import annotations

import random
import time
from typing import Any

BUS_BYTES_S = 4_000_000 / 10  # 4 Mbaud, 8N1


def _streams(size: int) -> dict[str, bytes]:
    from velora_robot.bridge import dynamixel as D

    rng = random.Random(0)
    status = b"".join(D.packet(i % 12 + 1, D.Inst.STATUS, b"\x00" + rng.randbytes(21))
                      for i in range(size // 32 + 1))
    # A header every 7 bytes, each claiming a 1000-byte packet whose CRC never matches.
    false_headers = (D.HEADER + bytes([1]) + (1000).to_bytes(2, "little")) * (size // 7 + 1)
    return {"clean status packets": status[:size],
            "a false header every 7 bytes (LEN 1000)": false_headers[:size],
            "random bytes": rng.randbytes(size)}


def run(quick: bool = False) -> dict[str, Any]:
    """Bytes/s through `StatusParser.push` in 4 KiB reads, best of three, per stream."""
    from velora_robot.bridge import dynamixel as D

    size = 200_000 if quick else 2_000_000
    rows = []
    for name, stream in _streams(size).items():
        best = float("inf")
        for _ in range(3):
            parser = D.StatusParser()
            start = time.perf_counter()
            packets = 0
            for i in range(0, len(stream), 4096):
                packets += len(parser.push(stream[i:i + 4096]))
            best = min(best, time.perf_counter() - start)
        rows.append({"stream": name, "bytes": len(stream), "packets": packets,
                     "bytes_per_s": len(stream) / best,
                     "x_4mbaud_bus": len(stream) / best / BUS_BYTES_S})
    return {"benchmark": "dynamixel", "bus_bytes_per_s": BUS_BYTES_S, "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = ["DYNAMIXEL status parser (CRC included), 4 KiB reads, best of 3",
             f"{'stream':<42} {'MB/s':>7} {'x 4 Mbaud bus':>14} {'packets':>8}"]
    for r in result["rows"]:
        lines.append(f"{r['stream']:<42} {r['bytes_per_s'] / 1e6:>7.2f} "
                     f"{r['x_4mbaud_bus']:>14.1f} {r['packets']:>8}")
    return "\n".join(lines)
