"""Telemetry: every control cycle — timing, mode, joint state, command, action and
observation — appended to a file as it happens.

Format: one JSON header line (the column names), then fixed-size float64 records, written
and flushed every cycle (a few microseconds; JSON per cycle would cost tens). A process
killed by SIGINT or a crash leaves every finished record readable; a record torn by a crash
mid-write is dropped by the reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from velora_robot.config import Settings, parse
from velora_robot.errors import ConfigError
from velora_robot.robots.spec import RobotSpec
from velora_robot.runtime.controller import Cycle
from velora_robot.runtime.safety import Mode

FORMAT = "velora-telemetry/1"
MODES = {Mode.RAMP: 0.0, Mode.POLICY: 1.0, Mode.DAMPING: 2.0}


def columns(spec: RobotSpec, obs_dim: int) -> list[str]:
    """Column names of a telemetry record for `spec` and a policy observing `obs_dim`."""
    joints = spec.joint_names
    return (["time_s", "lateness_us", "compute_us", "mode"]
            + [f"q/{j}" for j in joints] + [f"dq/{j}" for j in joints]
            + [f"target/{j}" for j in joints] + [f"kp/{j}" for j in joints]
            + [f"action/{j}" for j in joints] + [f"obs/{i}" for i in range(obs_dim)])


class Telemetry:
    """Appends one record per cycle to `path`; `close()` (or the loop) finishes the file."""

    def __init__(self, path: str | Path, spec: RobotSpec, obs_dim: int, *,
                 command: dict[str, float] | None = None,
                 truth: Callable[[], dict[str, float]] | None = None,
                 truth_keys: Sequence[str] = ()) -> None:
        """`command`: the velocity (or other) command the run was given, kept in the
        header; `truth()`: simulator values recorded each cycle as `sim/<key>` columns for
        `truth_keys` (the simulated robot's base velocity: no real robot measures it)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.truth, self.truth_keys = truth, list(truth_keys)
        self.columns = columns(spec, obs_dim) + [f"sim/{k}" for k in self.truth_keys]
        self.n, self.obs_dim = spec.n_joints, obs_dim
        self._file = self.path.open("wb")
        header = {"format": FORMAT, "robot": spec.name, "columns": self.columns,
                  "modes": {m.value: v for m, v in MODES.items()},
                  "command": dict(command or {})}
        self._file.write((json.dumps(header) + "\n").encode())
        self._file.flush()
        self._row = np.full(len(self.columns), np.nan)
        self.records = 0

    def record(self, cycle: Cycle, lateness_us: float, compute_us: float) -> None:
        """Append one cycle (NaN where the cycle had nothing: no reading, no policy step)."""
        n, row = self.n, self._row
        row[:] = np.nan
        row[1], row[2], row[3] = lateness_us, compute_us, MODES[cycle.mode]
        if cycle.state is not None:
            row[0] = cycle.state.time_s
            row[4:4 + n], row[4 + n:4 + 2 * n] = cycle.state.q, cycle.state.dq
        if cycle.command is not None:
            row[4 + 2 * n:4 + 3 * n], row[4 + 3 * n:4 + 4 * n] = cycle.command.q, cycle.command.kp
        if cycle.action is not None:
            row[4 + 4 * n:4 + 5 * n] = cycle.action
        if cycle.obs is not None:
            row[4 + 5 * n:4 + 5 * n + self.obs_dim] = cycle.obs
        if self.truth is not None:
            values = self.truth()
            row[len(row) - len(self.truth_keys):] = [values.get(k, np.nan)
                                                     for k in self.truth_keys]
        self._file.write(row.tobytes())
        self._file.flush()
        self.records += 1

    def close(self) -> None:
        """Flush to disk and close."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()


class Header(Settings):
    """A telemetry file's first line."""

    format: Literal["velora-telemetry/1"]
    robot: str
    columns: list[str] = Field(min_length=1)
    modes: dict[str, float]
    command: dict[str, float] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _needed(cls, columns: list[str]) -> list[str]:
        missing = [c for c in ("time_s", "lateness_us", "mode") if c not in columns]
        if missing:
            raise ValueError(f"no column {missing}")
        if any(c.startswith("q/") and f"target/{c[2:]}" not in columns for c in columns):
            raise ValueError("a joint's q column without its target column")
        if len(set(columns)) != len(columns):
            raise ValueError("column names repeat")
        return columns


def read(path: str | Path) -> tuple[dict[str, Any], np.ndarray]:
    """The header and the complete records (records, columns) of a telemetry file; a
    ConfigError naming the file (and the header field) for anything else."""
    raw = Path(path).read_bytes()
    end = raw.find(b"\n")
    try:
        header = json.loads(raw[:end]) if end >= 0 else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a velora telemetry file (its first line is not a "
                          f"{FORMAT!r} header)")
    header = parse(Header, header, f"{path}: header").model_dump()
    width = len(header["columns"]) * 8
    body = raw[end + 1:]
    complete = len(body) // width * width  # a record torn by a crash is dropped
    return header, np.frombuffer(body[:complete], dtype=np.float64).reshape(
        -1, len(header["columns"]))


def plot(path: str | Path, out: str | Path | None = None,
         joints: int | Sequence[str] | None = 3) -> Path:
    """Joint positions against targets (the first `joints` joints, those named or
    numbered, or all with None), the simulated base velocity against the command when
    recorded, mode and loop lateness, to PNG (beside the telemetry file by default)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    header, data = read(path)
    cols = {name: i for i, name in enumerate(header["columns"])}
    names = _joints(path, [c[2:] for c in header["columns"] if c.startswith("q/")], joints)
    velocity = [k for k in ("base_vx", "base_vy", "yaw_rate") if f"sim/{k}" in cols]
    t = data[:, cols["time_s"]]
    rows = len(names) + 2 + (1 if velocity else 0)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.0 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, name in zip(axes, names, strict=False):
        ax.plot(t, data[:, cols[f"q/{name}"]], label="q")
        ax.plot(t, data[:, cols[f"target/{name}"]], "--", label="target")
        ax.set_ylabel(f"{name} (rad)")
        ax.legend(loc="upper right", fontsize=7)
    if velocity:
        ax = axes[len(names)]
        command = header["command"]
        for key, color in zip(velocity, ("C0", "C1", "C2"), strict=False):
            ax.plot(t, data[:, cols[f"sim/{key}"]], color=color, linewidth=0.8,
                    label=f"{key} (simulator)")
            asked = command.get({"base_vx": "vx", "base_vy": "vy"}.get(key, key))
            if asked is not None:
                ax.axhline(asked, color=color, linestyle="--", linewidth=1.0,
                           label=f"{key} commanded")
        ax.set_ylabel("m/s, rad/s")
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    axes[-2].plot(t, data[:, cols["mode"]], drawstyle="steps-post")
    axes[-2].set_yticks([0, 1, 2], ["ramp", "policy", "damping"])
    axes[-1].plot(t, data[:, cols["lateness_us"]], ".", markersize=2)
    axes[-1].set_ylabel("lateness (us)")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"{header['robot']}: {len(data)} cycles")
    fig.tight_layout()
    out = Path(out) if out is not None else Path(path).with_suffix(".png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _joints(path: str | Path, have: list[str], joints: int | Sequence[str] | None
            ) -> list[str]:
    """The joints to plot: the first `joints`, each given by name or number, or all."""
    if joints is None or isinstance(joints, int):
        return have[:joints]
    chosen = []
    for j in joints:
        if j in have:
            chosen.append(j)
        elif j.isdigit() and int(j) < len(have):
            chosen.append(have[int(j)])
        else:
            raise ConfigError(f"{path}: no joint {j!r}; its joints are {', '.join(have)} "
                              f"(or 0-{len(have) - 1})")
    return chosen
