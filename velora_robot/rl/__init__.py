"""Reinforcement learning with liquid (and MLP) actors: recurrent PPO, the trainer and its
recipes. SAC and TD3 are not written yet."""

from velora_robot.rl.agent import Agent
from velora_robot.rl.ppo import PPO
from velora_robot.rl.recipe import Recipe, load_recipe
from velora_robot.rl.trainer import train

__all__ = ["PPO", "Agent", "Recipe", "load_recipe", "train"]
