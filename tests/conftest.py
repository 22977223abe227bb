"""Test session set-up."""

# The package picks EGL for off-screen rendering on headless machines when it is imported;
# some test modules import mujoco first, which fixes the GL back end, so do it here too.
import velora_robot.simulation  # noqa: F401
