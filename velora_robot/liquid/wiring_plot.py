"""Draw an NCPWiring to PNG: inputs, inter, command and motor neurons left to right,
command and motor neurons grouped by joint, excitatory synapses green, inhibitory red."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from velora_robot.liquid.wiring import NCPWiring

_COLORS = {"input": "#9e9e9e", "inter": "#4c72b0", "command": "#dd8452", "motor": "#55a868"}


def _column(count: int, height: float) -> np.ndarray:
    """Evenly spaced y positions, top to bottom."""
    return np.linspace(height, 0.0, count) if count > 1 else np.array([height / 2])


def neuron_positions(wiring: NCPWiring) -> dict[str, np.ndarray]:
    """(x, y) of every input and neuron; motor and command neurons ordered by joint."""
    height = float(max(wiring.n_inputs or 1, wiring.n_neurons // 2, 8))
    pos = {"neuron": np.zeros((wiring.n_neurons, 2))}
    pos["input"] = np.stack([np.zeros(wiring.n_inputs or 0),
                             _column(wiring.n_inputs or 0, height)], 1) if wiring.n_inputs \
        else np.zeros((0, 2))
    for x, role in ((1.0, "inter"), (2.0, "command"), (3.0, "motor")):
        ids = wiring.neurons(role)
        pos["neuron"][ids] = np.stack([np.full(len(ids), x), _column(len(ids), height)], 1)
    return pos


def plot_wiring(wiring: NCPWiring, path: Path) -> Path:
    """Write the wiring diagram to `path` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = neuron_positions(wiring)
    fig, ax = plt.subplots(figsize=(11, max(6.0, wiring.n_neurons * 0.09)))
    segments = []
    if wiring.n_inputs:
        for s, d, p in wiring.sensory_synapses:
            segments.append((pos["input"][s], pos["neuron"][d], p))
    for s, d, p in wiring.synapses:
        segments.append((pos["neuron"][s], pos["neuron"][d], p))
    from matplotlib.patches import FancyArrowPatch

    for a, b, p in segments:
        color = "#2ca02c" if p > 0 else "#d62728"
        if a[0] == b[0]:  # recurrent command synapse: an arc beside the column
            ax.add_patch(FancyArrowPatch(tuple(a), tuple(b), connectionstyle="arc3,rad=0.5",
                                         arrowstyle="-", color=color, alpha=0.5,
                                         linewidth=0.7, zorder=1))
        else:
            ax.plot([a[0], b[0]], [a[1], b[1]], color=color, alpha=0.25, linewidth=0.6,
                    zorder=1)
    if wiring.n_inputs:
        ax.scatter(*pos["input"].T, s=18, color=_COLORS["input"], zorder=2, label="input")
    for role in ("inter", "command", "motor"):
        ax.scatter(*pos["neuron"][wiring.neurons(role)].T, s=28, color=_COLORS[role],
                   zorder=2, label=role)
    for j in range(wiring.n_dof):
        ids = wiring.motor_neurons(j)
        y = pos["neuron"][ids, 1].mean()
        ax.text(3.08, y, wiring.joint_names[j], fontsize=7, va="center")
    ax.set_xticks([0, 1, 2, 3], ["inputs", "inter", "command", "motor"])
    ax.set_yticks([])
    ax.set_xlim(-0.3, 3.8)
    ax.set_title(f"NCP wiring: {wiring.n_neurons} neurons, {wiring.n_synapses} synapses "
                 f"+ {wiring.n_sensory_synapses} sensory (green excitatory, red inhibitory)")
    ax.legend(loc="upper center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
