"""Reinforcement learning with liquid (and MLP) actors: recurrent PPO, SAC and TD3, the
trainer and its recipes."""

from velora_robot.rl.agent import Agent
from velora_robot.rl.ppo import PPO
from velora_robot.rl.recipe import Recipe, load_recipe
from velora_robot.rl.sac import SAC
from velora_robot.rl.td3 import TD3
from velora_robot.rl.trainer import train

__all__ = ["PPO", "SAC", "TD3", "Agent", "Recipe", "load_recipe", "train"]
