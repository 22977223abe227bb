"""Table-driven MSB-first CRCs (no reflection): DYNAMIXEL's CRC-16 and Unitree's CRC-32."""

from __future__ import annotations


def msb_first_table(poly: int, bits: int) -> tuple[int, ...]:
    """The byte table of an MSB-first CRC of `bits` bits with generator `poly`."""
    top, mask = 1 << (bits - 1), (1 << bits) - 1
    table = []
    for byte in range(256):
        c = byte << (bits - 8)
        for _ in range(8):
            c = ((c << 1) ^ poly) if c & top else c << 1
        table.append(c & mask)
    return tuple(table)
