"""velora-robot: small liquid neural controllers, trained in MuJoCo, run on the robot."""

__version__ = "0.1.0"
