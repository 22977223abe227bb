"""The liquid core: NCP wiring and the LTC cell. Knows nothing of robots or environments."""

from velora_robot.liquid.ltc_cell import LTCCell
from velora_robot.liquid.wiring import NCPWiring, WiringError

__all__ = ["LTCCell", "NCPWiring", "WiringError"]
