"""Model cards on the robot side: load one, and refuse to run a policy whose card does not
match the robot spec (joints and their order, default pose, gains, action scale, rates,
observation layout, commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from velora_robot.config import load_file
from velora_robot.errors import ConfigError
from velora_robot.robots.spec import RobotSpec

CARD_FORMAT = "velora-model-card/1"


class ModelCard(BaseModel):
    """The JSON written beside every exported policy."""

    model_config = ConfigDict(extra="allow")

    format: str
    name: str
    policy_file: str
    policy_format: str
    io: dict[str, dict[str, list[int]]]
    robot: dict[str, Any] | None
    network: dict[str, Any]
    training: dict[str, Any]

    def trained(self) -> tuple[int | None, float | None]:
        """Env steps and wall-clock seconds of all its training: a curriculum stage's own
        plus those of the stages before it (`training.init_from`); None where the card
        does not say."""
        earlier = self.training.get("init_from") or {}
        steps, wall = self.training.get("env_steps"), self.training.get("wall_s")
        return (None if steps is None else steps + earlier.get("env_steps", 0),
                None if wall is None else wall + earlier.get("wall_s", 0.0))


def card_path(policy: str | Path) -> Path:
    """Where a policy file's card lives: beside it, `<policy file>.json`."""
    policy = Path(policy)
    return policy.with_name(policy.name + ".json")


def load_card(path: str | Path) -> ModelCard:
    """A model card file, validated."""
    card = load_file(ModelCard, path)
    if card.format != CARD_FORMAT:
        raise ConfigError(f"{path}: field 'format' is {card.format!r}, expected {CARD_FORMAT!r}")
    return card


def check_card(card: ModelCard, spec: RobotSpec, where: str = "model card") -> None:
    """Raise ConfigError naming the first difference between the card and the robot."""
    if card.robot is None:
        raise ConfigError(f"{where}: policy {card.name!r} was trained on "
                          f"{card.training.get('env')!r}, not on a robot; it cannot drive "
                          f"{spec.name!r}")
    trained = RobotSpec.model_validate(card.robot)
    mine, theirs = spec.joint_names, trained.joint_names
    if len(mine) != len(theirs):
        raise ConfigError(f"{where}: the policy drives {len(theirs)} joints, robot "
                          f"{spec.name!r} has {len(mine)}")
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        if a != b:
            raise ConfigError(f"{where}: joint {i} is {a!r} on the robot but {b!r} in the "
                              "policy (joint order differs)")
    for j_robot, j_card in zip(spec.joints, trained.joints, strict=True):
        for field in ("default_pos", "kp", "kd"):
            if getattr(j_robot, field) != getattr(j_card, field):
                raise ConfigError(f"{where}: joint {j_robot.name!r}: {field} is "
                                  f"{getattr(j_robot, field)} on the robot but "
                                  f"{getattr(j_card, field)} in training")
    for field in ("action_scale", "control_hz", "observation", "commands"):
        if getattr(spec, field) != getattr(trained, field):
            raise ConfigError(f"{where}: field {field!r} is {getattr(spec, field)} on the "
                              f"robot but {getattr(trained, field)} in training")
