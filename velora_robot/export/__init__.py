"""Export a trained agent for the robot: ONNX or TorchScript, with a model card."""

from velora_robot.export.exporter import export, load_agent

__all__ = ["export", "load_agent"]
