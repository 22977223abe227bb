"""Contact and solver settings of a simulated robot, as validated data (no MuJoCo import,
so launch files can carry them too). Every field left unset keeps the robot MJCF's own
value; the training env and the runtime's simulated robot apply the same settings.

Why they matter: on Spot in motion, the elliptic friction cone with impratio 100, six-
dimensional foot contacts and joint friction loss cost 2.5-4.3x the physics time of the
cheapest settings that still walk (issue 20's measurements; `velora-robot bench env`).
Whether a policy trained on cheaper settings keeps its figures on the MJCF's own is what
`full-fidelity` evaluation measures.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from velora_robot.config import Settings


class Physics(Settings):
    """Overrides of the MJCF's contact and solver options (None: keep the MJCF's)."""

    cone: Literal["pyramidal", "elliptic"] | None = None
    impratio: float | None = Field(default=None, ge=1, le=1000)
    foot_condim: Literal[1, 3, 4, 6] | None = None
    frictionloss: bool = True  # False: no dry friction in the joints
    solver: Literal["PGS", "CG", "Newton"] | None = None
    iterations: int | None = Field(default=None, ge=1, le=1000)
    ls_iterations: int | None = Field(default=None, ge=1, le=1000)


# The settings of mjbatch's Go1 example (and close to MuJoCo Playground's locomotion
# defaults): the cheap end that legged-robot training commonly uses. On Spot they do not
# hold: a policy trained on them fell 9 times in 50 on the MJCF's contacts (core, 0.5 m/s).
CHEAP = Physics(cone="pyramidal", impratio=1, foot_condim=3, frictionloss=False,
                solver="PGS", iterations=10)

# Per robot, the cheapest settings measured to keep a walking policy's figures. Spot: the
# shipped controller (trained on the MJCF's contacts) keeps 0 falls and 0.079 m/s (0.077 on
# the MJCF's) at 4.3x the MJCF's env steps/s; impratio stays 100 (impratio 1 alone: 0.093).
FAST = {"spot": Physics(cone="pyramidal", foot_condim=3, frictionloss=False, solver="PGS",
                        iterations=10)}
