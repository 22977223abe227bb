"""`velora-robot explain MODEL`: a report folder (report.json, figures, index.html) on an
exported liquid controller, torch-free, measured on the nominal walk (walk.py):

- structure: neurons by role and joint, learned synapse strengths and polarity, inputs and
  joints by name, each neuron's effective time-constant range;
- how much of the action the neurons carry against the residual bypass;
- activity: every neuron over the walk, and how strongly each follows the gait clock;
- causality: each neuron and each joint's command group clamped to rest, on the walk's own
  inputs (the change in each joint's action) and, for the groups, in closed loop (velocity
  error and falls);
- robustness, fairness and the trust envelope (robustness.py).

Still to come (issue 21): input attributions and their stability, and `--baseline`
comparisons with MLP and linear controllers.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from velora_robot.errors import ConfigError
from velora_robot.explain.network import BlackBox, LiquidNet
from velora_robot.explain.robustness import envelope, fairness, robustness
from velora_robot.explain.walk import Walk, neuron_share, nominal_env, walk
from velora_robot.liquid.wiring import NCPWiring
from velora_robot.runtime.card import bypass_share

PHASE_BINS = 20


def input_names(card: Any, n_inputs: int) -> list[str]:
    """Each observation entry by name (term/part), from the card's robot and interface
    (a term without named parts numbers them)."""
    from velora_robot.robots.observation import obs_sizes

    robot, interface = card.robot, card.interface
    if robot is None or interface is None:
        return [f"obs{i}" for i in range(n_inputs)]
    joints = robot.joint_names
    parts = {"gyro": ["x", "y", "z"], "gravity": ["x", "y", "z"], "joint_pos": joints,
             "joint_vel": joints, "last_action": joints, "command": list(interface.commands),
             "gait_clock": ["cos", "sin"]}
    return [f"{term}/{part}" for term, size in obs_sizes(robot, interface).items()
            for part in parts.get(term, range(size))]


def _structure(net: LiquidNet, wiring: NCPWiring, joints: list[str], inputs: list[str],
               dt_s: float) -> dict[str, Any]:
    tau_fast, tau_slow = net.time_constants(dt_s)
    rest = net.rest()
    a = net.arrays
    neurons = []
    for i in range(net.n_neurons):
        joint = wiring.joint(i)
        neurons.append({"id": i, "role": wiring.role(i),
                        "joint": None if joint is None else joints[joint],
                        "tau_s": [float(tau_fast[i]), float(tau_slow[i])],
                        "rest": float(rest[i])})

    def synapses(prefix: str, name: Any) -> list[dict[str, Any]]:
        return [{"from": name(int(s)), "to": int(d), "polarity": int(np.sign(we)),
                 "strength": float(w)}
                for s, d, w, we in zip(a[prefix + "src"], a[prefix + "dst"], a[prefix + "w"],
                                       a[prefix + "werev"], strict=True)]

    return {"neurons": neurons, "inputs": inputs, "joints": joints,
            "synapses": synapses("", int), "sensory_synapses": synapses(
                "s_", lambda s: inputs[s])}


def _gait_locking(w: Walk, gait_hz: float | None) -> np.ndarray | None:
    """Per neuron, the share of its variance over the walk that the gait phase explains
    (eta squared of the phase-binned means); None without a gait clock."""
    if gait_hz is None:
        return None
    if len(w.states) < 2 * PHASE_BINS:
        return np.zeros(w.states.shape[1])
    phase = (np.arange(len(w.states)) * w.dt_s * gait_hz) % 1.0
    bins = np.minimum((phase * PHASE_BINS).astype(int), PHASE_BINS - 1)
    total = w.states.var(0)
    means = np.stack([w.states[bins == b].mean(0) for b in range(PHASE_BINS)])
    counts = np.bincount(bins, minlength=PHASE_BINS)[:, None]
    between = (counts * (means - w.states.mean(0)) ** 2).sum(0) / len(w.states)
    return np.divide(between, total, out=np.zeros_like(total), where=total > 1e-12)


def _replay(net: LiquidNet, x: np.ndarray, clamps: np.ndarray | None = None) -> np.ndarray:
    """The action means over inputs x, (T, F) shared or (K, T, F) per variant, with each
    row of `clamps` (K, N) held at rest; all K variants as one batch: (K, T, A)."""
    k = len(clamps) if clamps is not None else len(x)
    xs = np.broadcast_to(x, (k, *x.shape)) if x.ndim == 2 else x
    v = np.zeros((k, net.n_neurons))
    out = np.empty((k, xs.shape[1], net.n_joints))
    for t in range(xs.shape[1]):
        readout, bypass, v = net.step(xs[:, t], v, clamps)
        out[:, t] = readout + bypass
    return out


ATTRIBUTION_NOISE = (0.1, 0.3)  # input noise (in normalized units) for the stability check


def attributions(net: LiquidNet, x: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """Occlusion over time: each input held at its normalized mean (0) through the walk's
    own inputs, the RMS change of every joint's action: an (F, A) sensor x joint map, with
    the part that goes through the linear bypass alone (exact: |residual| times the
    input's RMS). Stability: the same map from inputs with noise added, compared by
    correlation with the clean one (as the NCP paper measures saliency under noise)."""
    def occlusion(inputs: np.ndarray) -> np.ndarray:
        base = _replay(net, inputs[None])[0]
        occluded = np.repeat(inputs[None], net.n_inputs, axis=0)
        occluded[np.arange(net.n_inputs), :, np.arange(net.n_inputs)] = 0.0
        return np.sqrt(((_replay(net, occluded) - base) ** 2).mean(1))

    clean = occlusion(x)
    residual = net.arrays.get("residual")
    bypass = np.zeros_like(clean) if residual is None else \
        np.abs(net.joints(residual.T)) * np.sqrt((x ** 2).mean(0))[:, None]
    stability = []
    for sigma in ATTRIBUTION_NOISE:
        noisy = occlusion(x + sigma * rng.standard_normal(x.shape))
        stability.append({"noise": sigma, "correlation": float(np.corrcoef(
            clean.ravel(), noisy.ravel())[0, 1])})
    return {"map": clean.tolist(), "bypass_map": bypass.tolist(), "stability": stability}


def explain(model: str | Path, out: str | Path, seconds: float = 20.0,
            episodes: int = 3, baseline: str | Path | None = None,
            write_card: bool = False) -> dict[str, Any]:
    """Measure the controller at `model` and write the report into `out` (`episodes` walks
    per robustness condition); with a `baseline` (any exported policy of the same env,
    e.g. the MLP), its behaviour is measured the same way beside it. `write_card` puts the
    envelope it was verified in into its model card (`trust`), for `run` to warn outside."""
    from velora_robot.runtime.card import card_path, load_card

    started = time.perf_counter()
    model, out = Path(model), Path(out)
    card = load_card(card_path(model))
    if card.network.kind != "liquid" or card.network.wiring is None:
        raise ConfigError(f"{model}: explain measures liquid controllers; this one is "
                          f"{card.network.kind!r}: measure its behaviour beside a liquid "
                          "one of the same env with `velora-robot explain LIQUID "
                          f"--baseline {model}`")
    net = LiquidNet.load(model)
    wiring = NCPWiring.from_dict(card.network.wiring)
    joints = card.robot.joint_names if card.robot else [f"joint{j}" for j in
                                                        range(net.n_joints)]
    inputs = input_names(card, net.n_inputs)
    env = nominal_env(card)
    try:
        nominal = walk(net, env, seconds)
        dt_s = nominal.dt_s
        groups = np.zeros((net.n_joints, net.n_neurons), bool)
        for j in range(net.n_joints):
            groups[j, wiring.command_neurons(j)] = True
        closed = [walk(net, env, seconds, clamp=groups[j]) for j in range(net.n_joints)]
    finally:
        env.close()

    base = nominal.action_mean
    singles = np.eye(net.n_neurons, dtype=bool)
    effect_neuron = np.sqrt(((_replay(net, nominal.x, singles) - base) ** 2).mean(1))
    effect_group = np.sqrt(((_replay(net, nominal.x, groups) - base) ** 2).mean(1))
    own_largest = [bool(np.argmax(effect_group[j]) == j) for j in range(net.n_joints)]
    attribution = attributions(net, nominal.x, np.random.default_rng(0))
    locking = _gait_locking(nominal, card.interface.gait_hz if card.interface else None)
    share = neuron_share(nominal)

    report = {
        "model": str(model), "name": card.name, "network": net.describe(),
        "parameters": card.network.trainable_parameters,
        "nominal_walk": {"seconds": nominal.seconds, "dt_s": dt_s, "fell": nominal.fell,
                         "error_mean": float(nominal.error.mean()) if len(nominal.error)
                         else None},
        "neuron_share": share,
        "structure": _structure(net, wiring, joints, inputs, dt_s),
        "activity": {"gait_locking": None if locking is None else [float(v) for v in locking],
                     "most_gait_locked": [] if locking is None
                     else [int(i) for i in np.argsort(-locking)[:10]]},
        "ablation": {
            "neuron_effect_rms": effect_neuron.tolist(),
            "command_group_effect_rms": effect_group.tolist(),
            "own_joint_changes_most": own_largest,
            "localised_joints": int(sum(own_largest)),
            "closed_loop": [{"joint": joints[j], "fell": w.fell, "seconds": w.seconds,
                             "error_mean": float(w.error.mean()) if len(w.error) else None}
                            for j, w in enumerate(closed)],
        },
        "attribution": attribution,
        "robustness": robustness(net, card, episodes=episodes, seconds=min(seconds, 10.0)),
        "fairness": fairness(net, card, seconds=min(seconds, 10.0)),
    }
    report["trust"] = envelope(report["robustness"], report["fairness"])
    if write_card:
        from velora_robot.runtime.card import Trust, write_card

        card.trust = Trust(verified_by=f"velora-robot explain {model.name} --seconds "
                           f"{seconds:g}: {episodes} walks per condition", **report["trust"])
        write_card(model, card)
    if baseline is not None:
        report["baseline"] = _baseline(Path(baseline), card, seconds, episodes)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(out, report, nominal, wiring)
    report["figures"] = [p.name for p in figures]
    report["elapsed_s"] = time.perf_counter() - started
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "index.html").write_text(_html(report))
    return report


def _baseline(path: Path, card: Any, seconds: float, episodes: int) -> dict[str, Any]:
    """The behavioural measurements of another policy of the same env."""
    from velora_robot.runtime.card import card_path, load_card

    other = load_card(card_path(path))
    if other.training.env != card.training.env:
        raise ConfigError(f"--baseline {path}: trained on {other.training.env!r}, the "
                          f"controller on {card.training.env!r}; compare policies of the "
                          "same env")
    box = BlackBox(path)
    env = nominal_env(card)
    try:
        nominal = walk(box, env, seconds)
    finally:
        env.close()
    return {"model": str(path), "name": other.name, "kind": other.network.kind,
            "trainable_parameters": other.network.trainable_parameters,
            "nominal_walk": {"seconds": nominal.seconds, "fell": nominal.fell,
                             "error_mean": float(nominal.error.mean()) if len(nominal.error)
                             else None},
            "robustness": robustness(box, card, episodes=episodes,
                                     seconds=min(seconds, 10.0)),
            "fairness": fairness(box, card, seconds=min(seconds, 10.0))}


# A densely wired network (the G1's every synapse: 5,576) draws as a thicket; drawing each
# neuron's strongest few inputs keeps the figure a picture of what drives what.
_DRAWN_PER_NEURON = 6


def _strongest_into_each(synapses: list[dict], keep: int) -> list[dict]:
    """The `keep` strongest of each target neuron's incoming synapses."""
    into: dict[int, list[dict]] = {}
    for s in synapses:
        into.setdefault(s["to"], []).append(s)
    return [s for group in into.values()
            for s in sorted(group, key=lambda s: -s["strength"])[:keep]]


def _figures(out: Path, report: dict[str, Any], w: Walk, wiring: NCPWiring) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    joints = report["structure"]["joints"]
    order = np.concatenate([wiring.neurons("motor"), wiring.neurons("command"),
                            wiring.neurons("inter")])
    edges = np.cumsum([len(wiring.neurons(r)) for r in ("motor", "command", "inter")])[:-1]
    paths = []

    # Activity: every neuron over the first 4 s of the walk; motor neurons apart, by joint.
    steps = min(len(w.states), round(4.0 / w.dt_s))
    motor = wiring.neurons("motor")
    rest = np.concatenate([wiring.neurons("command"), wiring.neurons("inter")])
    rows_top = max(1.0, len(motor) / 12)  # a pair per joint gets twice the room
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7 + 2 * rows_top), sharex=True,
                                      gridspec_kw={"height_ratios": [rows_top, 2.2]})
    extent = (0, steps * w.dt_s)
    for ax, ids in ((top, motor), (bottom, rest)):
        image = ax.imshow(w.states[:steps, ids].T, aspect="auto", cmap="RdBu_r",
                          extent=(*extent, len(ids), 0), vmin=-1, vmax=1,
                          interpolation="nearest")
    pair = ("", "") if wiring.neurons_per_dof == 1 else (" +", " -")
    top.set_yticks(np.arange(len(motor)) + 0.5,
                   [joints[wiring.joint(i)] + pair[i % 2] for i in motor],
                   fontsize=max(5, min(9, 110 * rows_top // max(1, len(motor)))))
    top.set_title(f"{report['name']}: neuron potentials over the nominal walk "
                  "(motor neurons by joint)")
    n_command = len(wiring.neurons("command"))
    bottom.axhline(n_command, color="k", linewidth=0.8)
    bottom.set_yticks([n_command / 2, (n_command + len(rest)) / 2], ["command", "inter"])
    bottom.set_xlabel("time (s)")
    fig.colorbar(image, ax=[top, bottom], label="potential v")
    paths.append(_save(fig, out / "activity.png", tight=False))

    # Structure: the wiring with learned strengths, inputs and joints by name.
    from velora_robot.liquid.wiring_plot import neuron_positions

    wired = wiring if wiring.n_inputs else wiring.with_inputs(len(report["structure"]["inputs"]))
    pos = neuron_positions(wired)
    inputs = report["structure"]["inputs"]
    fig, ax = plt.subplots(figsize=(12, max(7.0, 0.2 * len(inputs) + 2)))
    drawn = total = 0
    for key, source in (("sensory_synapses", "input"), ("synapses", "neuron")):
        syn = report["structure"][key]
        top = max(s["strength"] for s in syn) if syn else 1.0
        total += len(syn)
        syn = _strongest_into_each(syn, _DRAWN_PER_NEURON)
        drawn += len(syn)
        for s in syn:
            a = (pos["input"][inputs.index(s["from"])] if source == "input"
                 else pos["neuron"][s["from"]])
            b = pos["neuron"][s["to"]]
            k = s["strength"] / top
            ax.plot([a[0], b[0]], [a[1], b[1]], linewidth=0.3 + 2.5 * k, alpha=0.15 + 0.6 * k,
                    color="#2ca02c" if s["polarity"] > 0 else "#d62728", zorder=1)
    ax.scatter(*pos["input"].T, s=12, color="#9e9e9e", zorder=2)
    for name, (x, y) in zip(inputs, pos["input"], strict=True):
        ax.text(x - 0.04, y, name, fontsize=6 if len(inputs) > 20 else 8, ha="right",
                va="center")
    for role, color in (("inter", "#4c72b0"), ("command", "#dd8452"), ("motor", "#55a868")):
        ax.scatter(*pos["neuron"][wired.neurons(role)].T, s=24, color=color, zorder=2,
                   label=role)
    for j, joint in enumerate(joints):
        y = pos["neuron"][wired.motor_neurons(j), 1].mean()
        ax.text(3.06, y, joint, fontsize=7, va="center")
    ax.set_xticks([0, 1, 2, 3], ["inputs", "inter", "command", "motor"])
    ax.set_yticks([])
    ax.set_xlim(-0.9, 3.5)
    ax.set_title("wiring with learned strengths (line width: synaptic weight, within each "
                 "layer; green excitatory, red inhibitory)"
                 + ("" if drawn == total else f"\neach neuron's {_DRAWN_PER_NEURON} strongest "
                    f"incoming synapses: {drawn:,} of {total:,}"))
    ax.legend(loc="upper right", ncol=3, fontsize=8, bbox_to_anchor=(1.0, -0.03))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    paths.append(_save(fig, out / "wiring.png"))

    # Causality: each joint's command group clamped -> change in every joint's action.
    group = np.array(report["ablation"]["command_group_effect_rms"])
    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(group, cmap="viridis")
    ax.set_xticks(range(len(joints)), joints, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(joints)), [f"{j} commands" for j in joints], fontsize=8)
    ax.set_xlabel("joint whose action changes")
    ax.set_title(f"ablation: a joint's command neurons held at rest\n"
                 f"({report['ablation']['localised_joints']} of {len(joints)} change their "
                 "own joint most)")
    fig.colorbar(image, ax=ax, label="RMS change of the action mean")
    paths.append(_save(fig, out / "ablation_groups.png"))

    # Each neuron's effect, summed over joints, against how gait-locked it is (a task
    # without a gait clock: against the neuron's number).
    effect = np.array(report["ablation"]["neuron_effect_rms"]).sum(1)
    gait = report["activity"]["gait_locking"]
    x = np.arange(len(effect)) if gait is None else np.array(gait)
    colors = {"motor": "#55a868", "command": "#dd8452", "inter": "#4c72b0"}
    fig, ax = plt.subplots(figsize=(8, 5))
    for role, color in colors.items():
        ids = wiring.neurons(role)
        ax.scatter(x[ids], effect[ids], s=22, color=color, label=role)
    ax.set_xlabel("neuron" if gait is None
                  else "gait locking (share of variance explained by the gait phase)")
    ax.set_ylabel("ablation effect (RMS action change, summed over joints)")
    ax.set_title("each neuron: how much the action needs it" if gait is None
                 else "each neuron: how much it follows the gait, how much the action needs it")
    ax.legend()
    paths.append(_save(fig, out / "neurons.png"))

    # Time constants.
    tau = np.array([n["tau_s"] for n in report["structure"]["neurons"]])[order]
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.vlines(np.arange(len(order)), tau[:, 0], tau[:, 1], color="#4c72b0")
    ax.set_yscale("log")
    for x in edges:
        ax.axvline(x - 0.5, color="k", linewidth=0.8)
    ax.axhline(w.dt_s, color="#c44e52", linestyle="--", linewidth=1,
               label=f"one control period ({w.dt_s * 1e3:.0f} ms)")
    ax.legend(loc="upper right")
    ax.set_xlabel("neuron (motor | command | inter)")
    ax.set_ylabel("time constant (s)")
    ax.set_title("each neuron's effective time constant: every synapse open to every "
                 "synapse closed")
    paths.append(_save(fig, out / "time_constants.png"))

    # Where the action comes from: read-out vs bypass for each joint.
    share = report["neuron_share"]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(range(len(joints)), share["per_joint"], color="#55a868")
    ax.axhline(1.0, color="k", linewidth=0.6)
    ax.set_xticks(range(len(joints)), joints, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("neuron share of the action")
    ax.set_title(f"how much of each joint's action the motor neurons carry\n(overall "
                 f"{share['overall']:.0%}; {bypass_share(share['overall'])})")
    paths.append(_save(fig, out / "neuron_share.png"))

    # Attribution: sensor x joint map.
    amap = np.array(report["attribution"]["map"])
    inputs = report["structure"]["inputs"]
    fig, ax = plt.subplots(figsize=(8, max(4.0, 0.16 * len(inputs) + 1.5)))
    image = ax.imshow(amap, aspect="auto", cmap="magma")
    ax.set_yticks(range(len(inputs)), inputs, fontsize=6 if len(inputs) > 20 else 8)
    ax.set_xticks(range(len(joints)), joints, rotation=60, ha="right", fontsize=8)
    stab = ", ".join(f"{s['correlation']:.2f} at noise {s['noise']}"
                     for s in report["attribution"]["stability"])
    ax.set_title(f"which input drives which joint (occlusion)\nstability: {stab}",
                 fontsize=10)
    fig.colorbar(image, ax=ax, label="RMS change of the action mean")
    paths.append(_save(fig, out / "attribution.png"))

    # Robustness: falls and error per condition.
    rows = report["robustness"]["rows"]
    names = [r["condition"] for r in rows]
    fig, (ax_f, ax_e) = plt.subplots(1, 2, figsize=(12, 0.32 * len(rows) + 1.5),
                                     sharey=True)
    y = np.arange(len(rows))
    colors_ = ["#55a868" if r["passed"] else "#c44e52" for r in rows]
    ax_f.barh(y, [r["falls"] for r in rows], color=colors_)
    ax_f.set_yticks(y, names, fontsize=8)
    ax_f.invert_yaxis()
    ax_f.set_xlabel(f"falls in {report['robustness']['episodes']} walks")
    ax_f.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_f.set_xlim(0, max([1] + [r["falls"] for r in rows]))
    ax_e.barh(y, [r["error_mean"] or 0.0 for r in rows], color=colors_)
    ax_e.axvline(report["robustness"]["error_limit"], color="k", linestyle="--", linewidth=1,
                 label="pass limit")
    walking = report["robustness"]["command"] is not None
    ax_e.set_xlabel("mean velocity error (m/s)" if walking else "mean tracking error (rad)")
    ax_e.legend(loc="lower right")
    fig.suptitle("robustness: one condition at a time away from nominal (green: passed)")
    paths.append(_save(fig, out / "robustness.png"))

    # Fairness: paired commands.
    pairs = report["fairness"]["pairs"]
    if pairs:
        fig, ax = plt.subplots(figsize=(8, 4))
        for i, p in enumerate(pairs):
            for k, r in enumerate(p["results"]):
                ax.bar(i * 3 + k, r["error_mean"] or 0.0,
                       color="#4c72b0" if k == 0 else "#dd8452")
        ax.set_xticks([i * 3 + k for i in range(len(pairs)) for k in (0, 1)],
                      [name for p in pairs for name in p["pair"]], rotation=30, ha="right")
        ax.set_ylabel("mean velocity error (m/s)")
        ax.set_title("fairness: each command against its mirror")
        paths.append(_save(fig, out / "fairness.png"))
    return paths


def _save(fig: Any, path: Path, tight: bool = True) -> Path:
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The one-screen summary an operator reads first."""
    n, share, abl = report["network"], report["neuron_share"], report["ablation"]
    walk_ = report["nominal_walk"]
    lines = [f"{report['name']}: {n['neurons']} neurons ({n['motor']} motor), "
             f"{n['synapses']} + {n['sensory_synapses']} sensory synapses, {n['inputs']} "
             "inputs",
             f"the neurons carry {share['overall']:.0%} of the action over the nominal walk; "
             f"{bypass_share(share['overall'])}",
             f"nominal walk: {walk_['seconds']:.0f} s, " + ("fell" if walk_["fell"] else
                                                           "no fall")
             + (f", mean error {walk_['error_mean']:.3f}" if walk_["error_mean"] is not None
                else ""),
             f"ablation: {abl['localised_joints']} of {len(abl['own_joint_changes_most'])} "
             "joints' command groups change their own joint most",
             "closed loop without a joint's command group: "
             + f"{sum(r['fell'] for r in abl['closed_loop'])} of {len(abl['closed_loop'])} "
             "walks fall"]
    att = report["attribution"]
    amap = np.array(att["map"])
    inputs = report["structure"]["inputs"]
    top = [inputs[i] for i in np.argsort(-amap.sum(1))[:3]]
    lines.append("strongest inputs: " + ", ".join(top) + "; attribution stability "
                 + ", ".join(f"{s['correlation']:.2f}" for s in att["stability"])
                 + " (correlation under input noise "
                 + ", ".join(str(s["noise"]) for s in att["stability"]) + ")")
    rob = report["robustness"]
    failed = [r["condition"] for r in rob["rows"] if not r["passed"]]
    lines.append(f"robustness: passed {len(rob['trust_envelope'])} of {len(rob['rows'])} "
                 "conditions" + (f"; failed: {', '.join(failed)}" if failed else ""))
    fair = report["fairness"]
    gaps = [f"{p['pair'][0]}/{p['pair'][1]} {p['error_gap']:.3f}" for p in fair["pairs"]
            if p["error_gap"] is not None]
    if gaps:
        lines.append("fairness, error gaps between mirrored commands: " + ", ".join(gaps))
    if fair["leg_effort"]:
        lines.append(f"leg effort Gini {fair['leg_effort']['gini']:.2f} (0: every leg "
                     "works equally)")
    if "baseline" in report:
        b = report["baseline"]
        lines.append(
            f"beside {b['name']} ({b['kind']}, {b['trainable_parameters']:,} parameters "
            f"against {report['parameters']:,}): nominal error "
            f"{_num(walk_['error_mean'])} against {_num(b['nominal_walk']['error_mean'])}; "
            f"robustness passed {len(rob['trust_envelope'])}/{len(rob['rows'])} against "
            f"{len(b['robustness']['trust_envelope'])}/{len(b['robustness']['rows'])}")
    return lines


CAPTIONS = {
    "wiring.png": "The network as trained: inputs by name on the left, then inter, command "
                  "and motor neurons (motor by joint); each synapse's line width is its "
                  "learned weight, its colour its polarity (a densely wired network: each "
                  "neuron's strongest incoming synapses).",
    "activity.png": "Every neuron's potential over the first 4 s of the nominal walk: the "
                    "motor neurons (what moves each joint) on top, command and inter neurons "
                    "below.",
    "ablation_groups.png": "Each joint's command neurons held at their resting potential, "
                           "the rest of the network as trained, on the walk's own inputs: "
                           "how much each joint's action changes (RMS). A diagonal means "
                           "each joint's own command group drives it.",
    "neurons.png": "Each neuron: how much of its activity the gait phase explains (for a "
                   "task with a gait clock), and how much the action changes when it alone "
                   "is held at rest.",
    "time_constants.png": "Each neuron's effective time constant, from every synapse open "
                          "(fastest) to every synapse closed (slowest); below the dashed "
                          "line a neuron settles within one control period.",
    "neuron_share.png": "The part of each joint's action variance over the nominal walk "
                        "that comes through the motor neurons; the rest comes through the "
                        "linear bypass from observation to action.",
    "attribution.png": "Each input held at its mean through the nominal walk: how much "
                       "each joint's action changes. The stability figures correlate this "
                       "map with the one from inputs with noise added.",
    "robustness.png": "Falls and mean error with one condition changed at a time (seeded "
                      "walks); a condition passes with no fall and an error below the "
                      "dashed line. The passed ones are the trust envelope.",
    "fairness.png": "Mean error walking forward against backward, sidestepping left "
                    "against right, turning left against right.",
}


def _baseline_html(report: dict[str, Any]) -> str:
    if "baseline" not in report:
        return ""
    b = report["baseline"]
    theirs = {r["condition"]: r for r in b["robustness"]["rows"]}
    rows = "".join(
        f"<tr><td>{html.escape(r['condition'])}</td><td>{r['falls']}</td>"
        f"<td>{_num(r['error_mean'])}</td><td>{theirs[r['condition']]['falls']}</td>"
        f"<td>{_num(theirs[r['condition']]['error_mean'])}</td></tr>"
        for r in report["robustness"]["rows"] if r["condition"] in theirs)
    return (f"<h2>Beside {html.escape(b['name'])} ({html.escape(b['kind'])}, "
            f"{b['trainable_parameters']:,} parameters)</h2><table><tr><th>condition</th>"
            f"<th>falls (this)</th><th>error (this)</th><th>falls ({html.escape(b['name'])})"
            f"</th><th>error ({html.escape(b['name'])})</th></tr>{rows}</table>")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _html(report: dict[str, Any]) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(report))
    figures = "".join(f'<figure><img src="{html.escape(name)}" alt="{html.escape(name)}">'
                      f"<figcaption>{html.escape(CAPTIONS.get(name, name))}</figcaption>"
                      "</figure>" for name in report["figures"])
    rows = "".join(
        f"<tr><td>{html.escape(r['joint'])}</td><td>{'yes' if r['fell'] else 'no'}</td>"
        f"<td>{r['seconds']:.1f}</td><td>{_num(r['error_mean'])}</td></tr>"
        for r in report["ablation"]["closed_loop"])
    rob = "".join(
        f"<tr><td>{html.escape(r['condition'])}</td><td>{r['falls']} of {r['episodes']}</td>"
        f"<td>{_num(r['error_mean'])}</td><td>{'yes' if r['passed'] else 'no'}</td></tr>"
        for r in report["robustness"]["rows"])
    trust = report["trust"]
    ranges = "".join(f"<tr><td>{html.escape(kind)} {html.escape(name)}</td><td>{lo:g}</td>"
                     f"<td>{hi:g}</td></tr>" for kind, part in (("command", "commands"),
                                                               ("condition", "axes"))
                     for name, (lo, hi) in trust[part].items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>explain: {html.escape(report['name'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
img{{max-width:100%}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 8px}}</style></head><body>
<h1>{html.escape(report['name'])}</h1><ul>{items}</ul>
<h2>Figures</h2>{figures}
<h2>Closed loop with a joint's command neurons held at rest</h2>
<table><tr><th>joint</th><th>fell</th><th>seconds</th><th>mean error</th></tr>{rows}</table>
{_baseline_html(report)}<h2>Robustness and the trust envelope</h2>
<table><tr><th>condition</th><th>falls</th><th>mean error</th><th>passed</th></tr>{rob}</table>
<p>The envelope it was verified in (each range from nominal out to the last condition or
command passed; <code>velora-robot explain MODEL --write-card</code> writes it into the
model card, and <code>velora-robot run</code> warns outside it):</p>
<table><tr><th>verified</th><th>from</th><th>to</th></tr>{ranges}</table>
<p>All numbers: report.json.</p></body></html>
"""
