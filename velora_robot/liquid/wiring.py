"""Neural Circuit Policy wiring: sensory -> inter -> command -> motor, grouped by joint.

Neuron indices are laid out as ``[motor | command | inter]`` (the ncps convention, so the
first ``n_motor`` potentials are the outputs). Each joint owns ``neurons_per_dof`` motor
neurons and ``command_per_dof`` command neurons; inter neurons are shared by all joints.
Every synapse has a fixed polarity: +1 (excitatory, reversal potential +1) or -1
(inhibitory, reversal potential -1).
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "velora-ncp-wiring/1"
ROLES = ("motor", "command", "inter")


class WiringError(ValueError):
    """A wiring argument or a wiring file is invalid; the message names the field."""


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise WiringError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _draw_layer(
    rng: np.random.Generator,
    adjacency: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
    fanout: int,
) -> None:
    """Connect each source to `fanout` distinct targets; targets left without input get a
    fan-in of the mean size from distinct sources, so every target is reachable."""
    fanout = min(fanout, len(targets))
    reached = np.zeros(len(targets), dtype=bool)
    for src in sources:
        picks = rng.choice(len(targets), size=fanout, replace=False)
        reached[picks] = True
        adjacency[src, targets[picks]] = rng.choice((-1, 1), size=fanout)
    fanin = int(np.clip(len(sources) * fanout // len(targets), 1, len(sources)))
    for dst in targets[~reached]:
        picks = rng.choice(sources, size=fanin, replace=False)
        adjacency[picks, dst] = rng.choice((-1, 1), size=fanin)


def _edges(adjacency: np.ndarray) -> np.ndarray:
    """(E, 3) int array of [src, dst, polarity], sorted by destination then source."""
    src, dst = np.nonzero(adjacency)
    order = np.lexsort((src, dst))
    src, dst = src[order], dst[order]
    return np.stack([src, dst, adjacency[src, dst]], axis=1).astype(np.int64)


class NCPWiring:
    """Sparse NCP wiring with per-joint motor neurons (1, or 2 as an antagonistic pair).

    ``NCPWiring(n_dof=12, neurons_per_dof=2)`` is the default Spot controller: 100 neurons
    (24 motor, 36 command, 40 inter). The graph is drawn from its own generator seeded by
    ``seed``; the same arguments always give the same synapses.
    """

    def __init__(
        self,
        n_dof: int = 12,
        neurons_per_dof: int = 2,
        seed: int = 0,
        *,
        n_neurons: int | None = None,
        n_inputs: int | None = None,
        sensory_fanout: int = 4,
        inter_fanout: int = 4,
        cross_joint_fanout: int = 1,
        joint_names: list[str] | None = None,
    ) -> None:
        self.n_dof = _positive_int("n_dof", n_dof)
        if neurons_per_dof not in (1, 2) or isinstance(neurons_per_dof, bool):
            raise WiringError(
                f"neurons_per_dof must be 1 (one signed motor neuron per joint) or 2 "
                f"(an antagonistic pair), got {neurons_per_dof!r}"
            )
        self.neurons_per_dof = int(neurons_per_dof)
        self.seed = _positive_int("seed", seed, minimum=0)
        self.sensory_fanout = _positive_int("sensory_fanout", sensory_fanout)
        self.inter_fanout = _positive_int("inter_fanout", inter_fanout)
        self.cross_joint_fanout = _positive_int("cross_joint_fanout", cross_joint_fanout, 0)
        self.joint_names = _joint_names(joint_names, self.n_dof)
        self.n_motor = self.n_dof * self.neurons_per_dof

        if n_neurons is None:
            n_neurons = self.n_motor + 3 * self.n_dof + (3 * self.n_dof + 4)
        self.n_neurons = _positive_int("n_neurons", n_neurons)
        hidden = self.n_neurons - self.n_motor
        needed = self.n_motor + self.n_dof + 1
        if self.n_neurons < needed:
            raise WiringError(
                f"n_neurons={self.n_neurons} is too few: {self.n_dof} joints x "
                f"{self.neurons_per_dof} motor neurons need {self.n_motor} motor neurons plus "
                f"at least one command neuron per joint and one inter neuron ({needed} in all)"
            )
        command_per_dof = max(1, round(0.4 * hidden / self.n_dof))
        while hidden - command_per_dof * self.n_dof < 1:
            command_per_dof -= 1
        self.command_per_dof = command_per_dof
        self.n_command = command_per_dof * self.n_dof
        self.n_inter = hidden - self.n_command

        self.synapses = _edges(self._draw_neuron_graph())
        self.n_inputs: int | None = None
        self.sensory_synapses = np.zeros((0, 3), dtype=np.int64)
        if n_inputs is not None:
            self._draw_sensory(_positive_int("n_inputs", n_inputs))
        self.validate()

    # ----------------------------------------------------------------- drawing
    def _draw_neuron_graph(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0])
        adjacency = np.zeros((self.n_neurons, self.n_neurons), dtype=np.int64)
        inter = self.neurons("inter")
        _draw_layer(rng, adjacency, inter, self.neurons("command"), self.inter_fanout)
        for joint in range(self.n_dof):
            group = self.command_neurons(joint)
            others = np.setdiff1d(self.neurons("command"), group)
            for src in group:
                # One recurrent synapse inside the joint's group keeps a local memory.
                adjacency[src, rng.choice(group)] = rng.choice((-1, 1))
                # Sparse synapses to other joints' command neurons let joints coordinate.
                k = min(self.cross_joint_fanout, len(others))
                if k:
                    picks = rng.choice(others, size=k, replace=False)
                    adjacency[src, picks] = rng.choice((-1, 1), size=k)
                polarity = rng.choice((-1, 1))
                motors = self.motor_neurons(joint)
                adjacency[src, motors[0]] = polarity
                if self.neurons_per_dof == 2:
                    # Antagonistic pair: what drives one side of the joint holds the other back.
                    adjacency[src, motors[1]] = -polarity
        return adjacency

    def _draw_sensory(self, n_inputs: int) -> None:
        # A separate stream: the neuron graph does not depend on the number of inputs.
        rng = np.random.default_rng([self.seed, 1])
        adjacency = np.zeros((n_inputs, self.n_neurons), dtype=np.int64)
        _draw_layer(rng, adjacency, np.arange(n_inputs), self.neurons("inter"), self.sensory_fanout)
        self.n_inputs = n_inputs
        self.sensory_synapses = _edges(adjacency)

    def with_inputs(self, n_inputs: int) -> NCPWiring:
        """This wiring with sensory synapses drawn for `n_inputs` input features."""
        if self.n_inputs is not None:
            if n_inputs != self.n_inputs:
                raise WiringError(
                    f"this wiring was built for {self.n_inputs} inputs, not {n_inputs}"
                )
            return self
        return NCPWiring.from_dict({**self.to_dict(), "n_inputs": None}, n_inputs=n_inputs)

    # ------------------------------------------------------------- inspection
    @property
    def n_synapses(self) -> int:
        """Neuron-to-neuron synapses (sensory synapses are counted in `n_sensory_synapses`)."""
        return len(self.synapses)

    @property
    def n_sensory_synapses(self) -> int:
        """Input-to-neuron synapses."""
        return len(self.sensory_synapses)

    def neurons(self, role: str) -> np.ndarray:
        """Indices of all neurons with `role` ('motor', 'command' or 'inter')."""
        start = {"motor": 0, "command": self.n_motor, "inter": self.n_motor + self.n_command}
        stop = {"motor": self.n_motor, "command": self.n_motor + self.n_command,
                "inter": self.n_neurons}
        if role not in start:
            raise WiringError(f"unknown neuron role {role!r}; roles are {ROLES}")
        return np.arange(start[role], stop[role])

    def motor_neurons(self, joint: int) -> np.ndarray:
        """Motor neuron(s) of `joint`: [positive, negative] in 2-neuron mode."""
        npd = self.neurons_per_dof
        return np.arange(joint * npd, (joint + 1) * npd)

    def command_neurons(self, joint: int) -> np.ndarray:
        """The command group owned by `joint`."""
        start = self.n_motor + joint * self.command_per_dof
        return np.arange(start, start + self.command_per_dof)

    def role(self, neuron: int) -> str:
        """'motor', 'command' or 'inter'."""
        if neuron < self.n_motor:
            return "motor"
        return "command" if neuron < self.n_motor + self.n_command else "inter"

    def joint(self, neuron: int) -> int | None:
        """The joint that owns `neuron`, or None for the shared inter neurons."""
        if neuron < self.n_motor:
            return neuron // self.neurons_per_dof
        if neuron < self.n_motor + self.n_command:
            return (neuron - self.n_motor) // self.command_per_dof
        return None

    def adjacency(self) -> np.ndarray:
        """Dense (n_neurons, n_neurons) polarity matrix [src, dst] for inspection."""
        out = np.zeros((self.n_neurons, self.n_neurons), dtype=np.int64)
        out[self.synapses[:, 0], self.synapses[:, 1]] = self.synapses[:, 2]
        return out

    def sensory_adjacency(self) -> np.ndarray:
        """Dense (n_inputs, n_neurons) polarity matrix [input, dst] for inspection."""
        self._require_inputs("sensory_adjacency")
        out = np.zeros((self.n_inputs, self.n_neurons), dtype=np.int64)
        s = self.sensory_synapses
        out[s[:, 0], s[:, 1]] = s[:, 2]
        return out

    def synapse_counts(self) -> dict[str, dict[str, int]]:
        """Synapse counts by pathway, each split into excitatory and inhibitory."""
        def pathway(src: int, dst: int) -> str:
            a, b = self.role(src), self.role(dst)
            if a == b == "command":
                return "command->command (same joint)" if self.joint(src) == self.joint(dst) \
                    else "command->command (cross joint)"
            return f"{a}->{b}"

        counts: dict[str, dict[str, int]] = {}
        rows = [("sensory->inter", p) for _, _, p in self.sensory_synapses]
        rows += [(pathway(s, d), p) for s, d, p in self.synapses]
        for name, polarity in rows:
            entry = counts.setdefault(name, {"excitatory": 0, "inhibitory": 0})
            entry["excitatory" if polarity > 0 else "inhibitory"] += 1
        return counts

    def describe(self) -> str:
        """A readable table: neurons by role and joint, synapse counts by pathway."""
        inputs = "not built" if self.n_inputs is None else str(self.n_inputs)
        lines = [
            f"NCPWiring  seed={self.seed}  joints={self.n_dof}  "
            f"motor neurons per joint={self.neurons_per_dof}  inputs={inputs}",
            f"neurons {self.n_neurons}: motor {self.n_motor}, command {self.n_command} "
            f"({self.command_per_dof} per joint), inter {self.n_inter}",
            "",
            f"{'joint':<16}{'motor':<14}{'command':<20}{'in':>5}{'out':>5}",
        ]
        adj = self.adjacency() != 0
        for j in range(self.n_dof):
            motors, commands = self.motor_neurons(j), self.command_neurons(j)
            signs = ["+", "-"] if self.neurons_per_dof == 2 else [""]
            motor_txt = " ".join(f"{m}{s}" for m, s in zip(motors, signs, strict=True))
            group = np.concatenate([motors, commands])
            fan_in = int(adj[:, commands].sum())
            fan_out = int(adj[np.ix_(commands, np.setdiff1d(np.arange(self.n_neurons), group))]
                          .sum())
            lines.append(
                f"{self.joint_names[j]:<16}{motor_txt:<14}"
                f"{_ranges(commands):<20}{fan_in:>5}{fan_out:>5}"
            )
        lines.append(f"{'(shared inter)':<16}{'':<14}{_ranges(self.neurons('inter')):<20}")
        lines += ["", f"{'pathway':<32}{'excit.':>8}{'inhib.':>8}{'total':>8}"]
        total = 0
        for name, c in self.synapse_counts().items():
            n = c["excitatory"] + c["inhibitory"]
            total += n
            lines.append(f"{name:<32}{c['excitatory']:>8}{c['inhibitory']:>8}{n:>8}")
        lines.append(f"{'all synapses':<32}{'':>8}{'':>8}{total:>8}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Draw the wiring (layers left to right, joints grouped) to a PNG file."""
        from velora_robot.liquid.wiring_plot import plot_wiring

        return plot_wiring(self, Path(path))

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Check indices, polarities, layer rules and reachability; raise WiringError."""
        n = self.n_neurons
        s = self.synapses
        if s.ndim != 2 or s.shape[1] != 3:
            raise WiringError("synapses must be a list of [src, dst, polarity] triples")
        if len(s) and (s[:, :2].min() < 0 or s[:, :2].max() >= n):
            raise WiringError(f"synapses: a neuron index is outside 0..{n - 1}")
        if len(s) and not np.isin(s[:, 2], (-1, 1)).all():
            raise WiringError("synapses: every polarity must be -1 or +1")
        if len({(a, b) for a, b, _ in s}) != len(s):
            raise WiringError("synapses: a (src, dst) pair appears twice")
        order = {"inter": 0, "command": 1, "motor": 2}
        for src, dst, _ in s:
            a, b = self.role(src), self.role(dst)
            if a == "motor" or order[b] < order[a] or (a == b == "inter") or \
                    (a == "inter" and b == "motor"):
                raise WiringError(f"synapses: {a} neuron {src} -> {b} neuron {dst} breaks "
                                  "the sensory->inter->command->motor order")
        if self.n_inputs is not None:
            ss = self.sensory_synapses
            if len(ss) and (ss[:, 0].min() < 0 or ss[:, 0].max() >= self.n_inputs):
                raise WiringError(f"sensory_synapses: an input index is outside "
                                  f"0..{self.n_inputs - 1}")
            if len(ss) and not np.isin(ss[:, 2], (-1, 1)).all():
                raise WiringError("sensory_synapses: every polarity must be -1 or +1")
            if len(ss) and any(self.role(d) != "inter" for d in ss[:, 1]):
                raise WiringError("sensory_synapses: inputs may only reach inter neurons")
            unreached = sorted(set(range(n)) - self._reachable_from_inputs())
            if unreached:
                raise WiringError(f"neurons {unreached} cannot be reached from the inputs")
        cannot = sorted(set(range(n)) - self._reaching_motors())
        if cannot:
            raise WiringError(f"neurons {cannot} reach no motor neuron")

    def _reachable_from_inputs(self) -> set[int]:
        start = set(int(d) for d in self.sensory_synapses[:, 1])
        return _closure(start, self.synapses[:, 0], self.synapses[:, 1])

    def _reaching_motors(self) -> set[int]:
        start = set(int(m) for m in self.neurons("motor"))
        return _closure(start, self.synapses[:, 1], self.synapses[:, 0])

    def _require_inputs(self, what: str) -> None:
        if self.n_inputs is None:
            raise WiringError(f"{what} needs sensory synapses: pass n_inputs or call "
                              "with_inputs(n) first")

    # ---------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this exact wiring, synapse by synapse."""
        return {
            "format": FORMAT,
            "n_dof": self.n_dof,
            "neurons_per_dof": self.neurons_per_dof,
            "seed": self.seed,
            "n_neurons": self.n_neurons,
            "n_inputs": self.n_inputs,
            "sensory_fanout": self.sensory_fanout,
            "inter_fanout": self.inter_fanout,
            "cross_joint_fanout": self.cross_joint_fanout,
            "joint_names": list(self.joint_names),
            "command_per_dof": self.command_per_dof,
            "synapses": self.synapses.tolist(),
            "sensory_synapses": self.sensory_synapses.tolist(),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of `to_dict()`; also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, n_inputs: int | None = None) -> NCPWiring:
        """Rebuild a wiring from `to_dict()` output; synapse lists are taken as stored
        (with `n_inputs`, sensory synapses are drawn anew for that many inputs)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise WiringError(f"not an NCP wiring: field 'format' must be {FORMAT!r}")
        keys = ("n_dof", "neurons_per_dof", "seed", "n_neurons", "sensory_fanout",
                "inter_fanout", "cross_joint_fanout", "joint_names")
        missing = [k for k in (*keys, "synapses", "sensory_synapses") if k not in data]
        if missing:
            raise WiringError(f"wiring is missing field(s) {missing}")
        wiring = cls(**{k: data[k] for k in keys})
        if wiring.command_per_dof != data.get("command_per_dof", wiring.command_per_dof):
            raise WiringError("field 'command_per_dof' does not match n_neurons and n_dof")
        wiring.synapses = _as_edges("synapses", data["synapses"])
        if n_inputs is not None:
            wiring._draw_sensory(_positive_int("n_inputs", n_inputs))
        elif data.get("n_inputs") is not None:
            wiring.n_inputs = _positive_int("n_inputs", data["n_inputs"])
            wiring.sensory_synapses = _as_edges("sensory_synapses", data["sensory_synapses"])
        wiring.validate()
        return wiring

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> NCPWiring:
        """Load a wiring from JSON text or from a .json file."""
        source = str(text_or_path)
        if not source.lstrip().startswith("{"):
            try:
                source = Path(source).read_text()
            except OSError as exc:
                raise WiringError(f"cannot read wiring file {text_or_path}: {exc}") from exc
        try:
            data = json.loads(source)
        except json.JSONDecodeError as exc:
            raise WiringError(f"wiring JSON is malformed: {exc}") from exc
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NCPWiring) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"NCPWiring(n_dof={self.n_dof}, neurons_per_dof={self.neurons_per_dof}, "
                f"seed={self.seed}, n_neurons={self.n_neurons}, n_inputs={self.n_inputs}, "
                f"n_synapses={self.n_synapses}, n_sensory_synapses={self.n_sensory_synapses})")


def _joint_names(names: list[str] | None, n_dof: int) -> list[str]:
    if names is None:
        return [f"joint{j}" for j in range(n_dof)]
    names = list(names)
    if len(names) != n_dof or not all(isinstance(n, str) and n for n in names):
        raise WiringError(f"joint_names must be {n_dof} non-empty strings, got {names!r}")
    return names


def _as_edges(field: str, rows: Any) -> np.ndarray:
    try:
        edges = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    except (TypeError, ValueError) as exc:
        raise WiringError(f"field {field!r} must be a list of [src, dst, polarity]") from exc
    return edges


def _closure(start: set[int], frm: np.ndarray, to: np.ndarray) -> set[int]:
    """All nodes reachable from `start` along edges frm -> to."""
    nxt: dict[int, list[int]] = {}
    for a, b in zip(frm.tolist(), to.tolist(), strict=True):
        nxt.setdefault(a, []).append(b)
    seen, queue = set(start), deque(start)
    while queue:
        for b in nxt.get(queue.popleft(), ()):
            if b not in seen:
                seen.add(b)
                queue.append(b)
    return seen


def _ranges(ids: np.ndarray) -> str:
    """'24-26' for a contiguous run of neuron ids."""
    return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0])
