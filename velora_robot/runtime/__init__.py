"""The robot side: policy runners, model-card checks, the control loop, safety, e-stop,
telemetry and launch files (no torch, gymnasium or wandb)."""

from velora_robot.runtime.card import ModelCard, check_card, load_card
from velora_robot.runtime.controller import Controller
from velora_robot.runtime.estop import EStop
from velora_robot.runtime.loop import ControlLoop
from velora_robot.runtime.policy import KernelPolicy, OnnxPolicy, TorchScriptPolicy, load_policy
from velora_robot.runtime.safety import Fault, Mode, Safety, SafetyConfig

__all__ = [
           "ControlLoop",
           "Controller",
           "EStop",
           "Fault",
           "KernelPolicy",
           "Mode",
           "ModelCard",
           "OnnxPolicy",
           "Safety",
           "SafetyConfig",
           "TorchScriptPolicy",
           "check_card",
           "load_card",
           "load_policy",
]
