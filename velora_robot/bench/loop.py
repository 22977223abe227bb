"""`velora-robot bench loop` (see `deploy.py`)."""

from velora_robot.bench.deploy import run_loop as run
from velora_robot.bench.deploy import table_loop as table

__all__ = ["run", "table"]
