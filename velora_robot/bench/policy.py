"""`velora-robot bench policy` (see `deploy.py`)."""

from velora_robot.bench.deploy import run_policy as run
from velora_robot.bench.deploy import table_policy as table

__all__ = ["run", "table"]
