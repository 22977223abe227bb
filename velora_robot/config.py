"""Validated settings from dicts and YAML files, with errors that name the file and field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from velora_robot.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Settings(BaseModel):
    """Base of every validated settings model: unknown fields are refused, and so are NaN
    and infinities in any number (a recipe's `lr: .inf` would train a policy that outputs
    NaN; a launch command of 1e308 an infinite observation)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a {kind} text file (binary data at byte {exc.start}); "
                          "was another file meant?") from None
    except error as exc:
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None


def load_file(model: type[M], path: str | Path, tags: frozenset[str] = frozenset()) -> M:
    """A YAML or (by its .json suffix) JSON file validated as `model`."""
    return parse(model, read_file(path), str(path), tags)


def check_writable(path: Path | None, option: str, *, folder: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work starts (a result
    computed for minutes and then lost is worse than an error now). `folder`: the path is
    a folder to write into."""
    if path is None:
        return
    path = Path(path)
    target = path if folder else path.parent
    if not folder and path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file name")
    existing = next((p for p in (target, *target.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"{option} {path}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot write into {existing} (permission denied)")
    if path.exists() and not folder and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path}: the file exists and cannot be overwritten "
                          "(permission denied)")
