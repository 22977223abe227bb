"""The robot side: policy runners and model-card checks (no torch, gymnasium or wandb)."""

from velora_robot.runtime.card import ModelCard, check_card, load_card
from velora_robot.runtime.policy import KernelPolicy, OnnxPolicy, TorchScriptPolicy, load_policy

__all__ = ["KernelPolicy", "ModelCard", "OnnxPolicy", "TorchScriptPolicy", "check_card",
           "load_card", "load_policy"]
