"""The simulated robot: MJCF built from the spec (PD servos, fast/full variants), domain
randomization, `SimRobot`. Used by the training envs and by the simulated hardware."""

import os

# Off-screen rendering on a headless machine: EGL (Mesa's surfaceless EGL works on CPUs).
# MuJoCo reads this when it is first imported, so it must be set before that.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")
