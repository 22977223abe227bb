"""The liquid core: NCP wiring and the LTC cell. Knows nothing of robots or environments.

`NCPWiring` and the C inference kernel need only numpy; `LTCCell` (torch) loads on first use.
"""

from typing import Any

from velora_robot.liquid.wiring import NCPWiring, WiringError

__all__ = ["LTCCell", "NCPWiring", "WiringError"]


def __getattr__(name: str) -> Any:
    if name == "LTCCell":
        from velora_robot.liquid.ltc_cell import LTCCell

        return LTCCell
    raise AttributeError(f"module 'velora_robot.liquid' has no attribute {name!r}")
