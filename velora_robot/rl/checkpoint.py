"""Checkpoint files: tensors and plain data only, loaded without running any code.

A checkpoint is shared between people (colleagues, model zoos), so reading one must never
execute what it holds. `torch.save` writes a pickle; `load` reads it with torch's
`weights_only` unpickler, which builds only tensors, numbers, strings, None and lists,
tuples and dicts of them, and refuses every other Python object before creating it. To fit
that, `save` turns numpy arrays into tagged tensors and numpy scalars into Python numbers,
and `load` turns them back. Why not safetensors: a checkpoint also holds the recipe, the
optimizer's nested state and the envs' random generators (128-bit integers), which
safetensors' flat string-to-tensor map cannot carry without a second, hand-written format.

Checkpoints written before this format pickled numpy arrays and the randomization's `Draw`
dataclass; they are refused, and `convert` rewrites one (`velora-robot convert-checkpoint
FILE`), still without running code: the weights-only unpickler with exactly those few
classes allowed.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from velora_robot.errors import ConfigError

FORMAT = "velora-checkpoint/2"
_ARRAY = "__ndarray__"  # the tag of a numpy array stored as a tensor


def to_plain(obj: Any) -> Any:
    """`obj` with numpy arrays as tagged tensors, numpy scalars as Python numbers and
    dataclasses as dicts: what the weights-only unpickler accepts."""
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.array(obj, copy=True, order="C"))}
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, dict):
        return {key: to_plain(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [to_plain(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(value) for value in obj)
    return obj


def from_plain(obj: Any) -> Any:
    """The inverse of `to_plain` (dataclasses stay dicts: their owners rebuild them)."""
    if isinstance(obj, dict):
        if obj.keys() == {_ARRAY}:
            return obj[_ARRAY].numpy()
        return {key: from_plain(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [from_plain(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(value) for value in obj)
    return obj


def save(obj: dict[str, Any], path: Path) -> None:
    """Write `obj` as a checkpoint: to a temporary file in the same folder, then renamed, so
    a reader (or a crash) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **to_plain(obj)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, where: str = "") -> dict[str, Any]:
    """A checkpoint's contents, read without executing code; a ConfigError (starting with
    `where`) for a missing file, a file that is not a torch file, or one that holds other
    Python objects (an old-format checkpoint, or a crafted one)."""
    at = f"{where}: " if where else ""
    if not path.is_file():
        raise ConfigError(f"{at}no checkpoint at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:  # not a pickle at all
            raise ConfigError(f"{at}{path}: not a checkpoint written by `velora-robot train` "
                              "(UnpicklingError: not a torch file)") from None
        raise ConfigError(
            f"{at}{path}: refused: it holds Python objects, not only tensors and plain data "
            f"(first: {found.group(1)}), and loading those could run code. If it is a "
            f"checkpoint from an earlier velora-robot, convert it once: velora-robot "
            f"convert-checkpoint {path}") from None
    except Exception as exc:  # truncated, or not a torch file
        raise ConfigError(f"{at}{path}: not a checkpoint written by `velora-robot train` "
                          f"({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{at}{path}: not a checkpoint written by `velora-robot train` "
                          f"(format {got!r}, expected {FORMAT!r})")
    return from_plain({k: v for k, v in data.items() if k != "format"})


def _old_format_globals() -> list[Any]:
    """What an old-format checkpoint pickled besides tensors: numpy arrays, scalars and
    dtypes, and the randomization's per-episode `Draw`."""
    from velora_robot.simulation.randomization import Draw

    dtypes = ("float64", "float32", "int64", "int32", "int16", "int8", "uint8", "uint32",
              "uint64", "bool")
    return [np._core.multiarray._reconstruct, np._core.multiarray.scalar, np.ndarray,
            np.dtype, Draw, *(type(np.dtype(name)) for name in dtypes)]


def convert(path: Path, out: Path | None = None) -> Path:
    """Rewrite an old-format checkpoint (pickled numpy arrays and `Draw`s) in this format,
    read with the weights-only unpickler and those classes allowed (nothing else is built,
    no code runs). Writes to `out` (default: in place)."""
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    try:
        with torch.serialization.safe_globals(_old_format_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a torch checkpoint ({type(exc).__name__}: "
                          f"{exc})") from None
    if not isinstance(data, dict) or "agent" not in data or "recipe" not in data:
        raise ConfigError(f"{path}: not a checkpoint written by `velora-robot train` (no "
                          "agent and recipe)")
    data.pop("format", None)
    target = out or path
    save(data, target)
    return target
