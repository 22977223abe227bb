"""Validated settings from dicts and YAML files, with errors that name the file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from velora_robot.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError, where: str,
                              tags: frozenset[str] = frozenset()) -> str:
    """One line per problem: `where: field 'a.b': reason` (`tags`: union tags pydantic puts
    in locations, which are not keys the user wrote)."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"] if p not in tags)
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "unknown field (check the spelling)"
        # A check across fields has no location; its message names the fields itself.
        lines.append(f"{where}: field {field!r}: {reason}" if field else f"{where}: {reason}")
    return "\n".join(lines)


def parse(model: type[M], data: M | dict[str, Any] | None, where: str,
          tags: frozenset[str] = frozenset()) -> M:
    """`data` validated as `model`; a ConfigError naming each bad field otherwise."""
    if isinstance(data, model):
        return data
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where, tags)) from None


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `extra`, merging nested mappings (lists are replaced whole)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def is_recipe(data: Any) -> bool:
    """Whether file data is a training recipe (it has an `env` section, or `extends` one)
    rather than a deploy launch file; told apart here, without importing the trainer."""
    return isinstance(data, dict) and bool({"env", "extends"} & data.keys())


def read_file(path: str | Path) -> Any:
    """The data in a YAML or (by its .json suffix) JSON file; a ConfigError naming the file
    if it cannot be read or decoded."""
    path = Path(path)
    kind, decode, error = (("JSON", json.loads, json.JSONDecodeError) if path.suffix == ".json"
                           else ("YAML", yaml.safe_load, yaml.YAMLError))
    try:
        return decode(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except error as exc:
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None


def load_file(model: type[M], path: str | Path, tags: frozenset[str] = frozenset()) -> M:
    """A YAML or (by its .json suffix) JSON file validated as `model`."""
    return parse(model, read_file(path), str(path), tags)
