"""Measurements that explain a controller (issue 21): how much of its action its neurons
carry, and (to come) structure, activity, ablation, attribution, robustness, fairness."""

from velora_robot.explain.share import neuron_share

__all__ = ["neuron_share"]
