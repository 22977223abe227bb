"""A run's record: metrics as JSON lines, a learning-curve PNG, and Weights & Biases
(it honours WANDB_MODE=offline) and TensorBoard when asked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any


class RunLog:
    """Appends one JSON line per update to metrics.jsonl (flushed, so a crash loses
    nothing written), mirrors it to wandb when enabled."""

    def __init__(self, run_dir: Path, *, keep_until: int | None = None, wandb: bool = False,
                 project: str = "velora-robot", name: str = "", config: dict | None = None,
                 wandb_id: str | None = None, tensorboard: bool = False) -> None:
        self.path = run_dir / "metrics.jsonl"
        purge_step = None  # TensorBoard: events from this env step on are dropped
        if keep_until is not None and self.path.exists():
            # Resuming: drop lines written after the checkpoint we continue from.
            kept = [line for line in self.path.read_text().splitlines()
                    if line and json.loads(line)["update"] <= keep_until]
            self.path.write_text("".join(line + "\n" for line in kept))
            purge_step = json.loads(kept[-1])["env_steps"] + 1 if kept else None
        elif keep_until is None:
            self.path.write_text("")
        self._file = self.path.open("a")
        self.wandb_run = None
        if wandb:
            import wandb as wb

            self.wandb_run = wb.init(project=project, name=name, dir=str(run_dir),
                                     config=config, id=wandb_id, resume="allow")
        self.tensorboard = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # On a resume, events written after the checkpoint are dropped, as the lines.
            self.tensorboard = SummaryWriter(
                str(run_dir / "tensorboard"),
                purge_step=purge_step)

    @property
    def wandb_id(self) -> str | None:
        """The wandb run id, kept in checkpoints so a resume continues the same run."""
        return None if self.wandb_run is None else self.wandb_run.id

    def log(self, row: dict[str, Any]) -> None:
        """Record one update."""
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.wandb_run is not None:
            self.wandb_run.log(row, step=row["env_steps"])
        if self.tensorboard is not None:
            for key, value in row.items():
                if isinstance(value, int | float) and key not in ("update", "env_steps"):
                    self.tensorboard.add_scalar(key, value, row["env_steps"])
            self.tensorboard.flush()

    def video(self, path: Path) -> None:
        """Send an evaluation video to W&B when logging there (the file stays in the run)."""
        if self.wandb_run is not None:
            import wandb as wb

            self.wandb_run.log({"eval_video": wb.Video(str(path), format="gif")},
                               commit=False)

    def rows(self) -> list[dict[str, Any]]:
        """Everything logged so far."""
        return read_metrics(self.path)

    def plot(self, path: Path, title: str) -> Path:
        """Episode return against environment steps, to PNG."""
        return plot_curve(self.rows(), path, title)

    def close(self) -> None:
        """Flush and finish."""
        self._file.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_metrics(path: Path, *, until_update: int | None = None) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl, up to an update (a checkpoint's) when given."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [r for r in rows if until_update is None or r["update"] <= until_update]


# Losses the curve's lower panel shows when the run logged them (PPO; SAC and TD3).
_LOSSES = (("value_loss", "value loss"), ("policy_loss", "policy loss"),
           ("critic_loss", "critic loss"), ("actor_loss", "actor loss"))


def plot_curve(rows: list[dict[str, Any]], path: Path, title: str, *,
               stages: Sequence[tuple[int, str]] = ()) -> Path:
    """Mean episode return against environment steps, to PNG; `stages` (env steps, name)
    marks where each curriculum stage began, and a distilled run's switch from imitating
    its teacher to PPO is marked too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = [r for r in rows if r.get("eval_return") is not None]
    losses = [(key, label) for key, label in _LOSSES if any(key in r for r in rows)]
    if losses:
        fig, (ax, below) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                        gridspec_kw={"height_ratios": [2, 1]})
    else:
        fig, ax = plt.subplots(figsize=(7, 4))
    trained = [r for r in rows if r.get("return_mean") is not None]
    ax.plot([r["env_steps"] for r in trained], [r["return_mean"] for r in trained],
            label="training episodes (mean of the last 100)")
    if evals:
        ax.plot([r["env_steps"] for r in evals], [r["eval_return"] for r in evals], "o-",
                markersize=3, label="evaluation (deterministic, seeded)")
        ax.legend(fontsize=8, loc="lower right")
    marks = [(start, name, 1.0, "top") for start, name in stages] if len(stages) > 1 else []
    switch = next((r["env_steps"] for r in rows if r.get("imitating") == 0), None)
    if switch is not None and any(r.get("imitating") for r in rows):
        marks.append((switch, "imitating the teacher | PPO", 0.02, "bottom"))
    levels = [r for r in rows if "randomization_level" in r]
    marks += [(now["env_steps"], f"randomization {now['randomization_level']:g}", 0.02,
               "bottom") for before, now in pairwise(levels)
              if now["randomization_level"] != before["randomization_level"]]
    tracked = [r for r in rows if r.get("tracking_error_mean") is not None]
    if tracked:  # what the task asks (a walker's velocity error), beside the return
        right = ax.twinx()
        right.plot([r["env_steps"] for r in tracked],
                   [r["tracking_error_mean"] for r in tracked], color="tab:red",
                   linewidth=0.8, label="tracking error (right axis)")
        right.set_ylabel("tracking error (mean of the last 100 episodes)", color="tab:red",
                         fontsize=8)
        right.tick_params(axis="y", labelcolor="tab:red")
        right.set_ylim(bottom=0)
    for start, name, y, va in marks:
        ax.axvline(start, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(name, (start, y), xycoords=("data", "axes fraction"), rotation=90,
                    va=va, ha="right", fontsize=7, color="grey")
    if losses:
        for key, label in losses:
            have = [r for r in rows if r.get(key) is not None]
            below.plot([r["env_steps"] for r in have], [abs(r[key]) for r in have],
                       label=label, linewidth=0.8)
        below.set_yscale("log")
        below.set_ylabel("loss (abs., log)")
        below.legend(fontsize=7, ncol=len(losses))
        below.grid(alpha=0.3)
        below.set_xlabel("environment steps")
    if not losses:
        ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
