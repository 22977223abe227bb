"""The model card: the JSON written beside every exported policy, as one typed schema used
by the exporter (which writes it) and the runtime (which reads it and refuses to run a
policy whose card does not match the robot). Torch-free. The policy interface lives here
once: the card's format tag and the policy files' input and output names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from velora_robot.config import Settings, parse, read_file
from velora_robot.errors import ConfigError
from velora_robot.robots.interface import PolicyInterface
from velora_robot.robots.observation import obs_sizes
from velora_robot.robots.spec import RobotSpec

CARD_FORMAT = "velora-model-card/2"
# Format 1 kept the policy interface (observation, commands, gait clock) inside the robot
# spec; format 2 has it apart, as the task's. Format 1 cards are read by moving it over.
_INTERFACE_FIELDS = ("observation", "commands", "gait_hz")
# Every exported policy: observation and recurrent state in, action and next state out.
INPUTS, OUTPUTS = ("obs", "state"), ("action", "next_state")

Shape = tuple[Literal[1], int]


class Inputs(Settings):
    """Shapes of the policy's inputs: (batch 1, size)."""

    obs: Shape
    state: Shape


class Outputs(Settings):
    """Shapes of the policy's outputs."""

    action: Shape
    next_state: Shape


class PolicyIO(Settings):
    """The policy file's inputs and outputs."""

    inputs: Inputs
    outputs: Outputs

    @model_validator(mode="after")
    def _sizes(self) -> PolicyIO:
        for name, (_, size) in (("inputs.obs", self.inputs.obs),
                                ("inputs.state", self.inputs.state),
                                ("outputs.action", self.outputs.action)):
            if size < 1:
                raise ValueError(f"{name}: size {size} must be at least 1")
        if self.outputs.next_state != self.inputs.state:
            raise ValueError(f"outputs.next_state {self.outputs.next_state} must equal "
                             f"inputs.state {self.inputs.state}")
        return self

    @property
    def obs_dim(self) -> int:
        """Observation size."""
        return self.inputs.obs[1]

    @property
    def state_size(self) -> int:
        """Recurrent state size (1 for a stateless MLP)."""
        return self.inputs.state[1]

    @property
    def act_dim(self) -> int:
        """Action size."""
        return self.outputs.action[1]

    def shapes(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Input and output shapes by name, as a policy file reports them."""
        return ({"obs": list(self.inputs.obs), "state": list(self.inputs.state)},
                {"action": list(self.outputs.action),
                 "next_state": list(self.outputs.next_state)})


class NeuronShare(Settings):
    """How much of the action the motor neurons carry over a nominal walk, against the
    residual bypass (`velora_robot.explain.share`): 1.0 without a bypass."""

    overall: float
    per_joint: list[float]
    seconds: float = Field(gt=0)

    def sentence(self) -> str:
        """What the share says of where the action comes from, in words. Only an actor
        without a bypass has exactly 1.0; one whose bypass pulls against its neurons has
        more."""
        if abs(self.overall - 1.0) < 5e-4:
            return "every action is its motor neurons' read-out (no linear bypass)"
        return (f"its motor neurons carry {self.overall:.0%} of the action over a nominal "
                f"walk, {bypass_share(self.overall)}")


def bypass_share(neuron_share: float) -> str:
    """The linear bypass's share of the action, said so that a share above 100 % for the
    neurons (the bypass covarying against them) reads right."""
    rest = 1.0 - neuron_share
    return f"the linear bypass {rest:.0%}" + (" (it pulls against the neurons)" if rest < -0.005
                                              else "")


class Network(Settings):
    """What the actor is: its kind and size (and, for a liquid one, its wiring)."""

    kind: Literal["liquid", "mlp", "linear"]
    trainable_parameters: int = Field(ge=1)
    state_size: int = Field(ge=1)
    squashed: bool
    neurons: int | None = Field(default=None, ge=1)
    motor_neurons: int | None = Field(default=None, ge=1)
    neurons_per_dof: Literal[1, 2] | None = None
    synapses: int | None = Field(default=None, ge=0)
    sensory_synapses: int | None = Field(default=None, ge=0)
    ode_unfolds: int | None = Field(default=None, ge=1)
    wiring: dict[str, Any] | None = None
    neuron_share: NeuronShare | None = None  # liquid networks; absent from older cards


class InitFrom(Settings):
    """The earlier curriculum stage a run started from, and its training so far."""

    checkpoint: str
    recipe: str
    env_steps: int = Field(ge=0)
    wall_s: float = Field(ge=0)


class TeacherRecord(Settings):
    """The policy a distilled one imitated (`algorithm.teacher`), and that policy's own
    training (from its card, where it had one)."""

    policy: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    env_steps: int | None = Field(default=None, ge=0)
    wall_s: float | None = Field(default=None, ge=0)


class Training(Settings):
    """How the policy was trained."""

    env: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    algorithm: Literal["ppo", "sac", "td3"]
    updates: int = Field(ge=0)
    env_steps: int = Field(ge=0)
    wall_s: float = Field(ge=0)
    return_mean_last_100: float | None = None
    init_from: InitFrom | None = None
    teacher: TeacherRecord | None = None
    eval: dict[str, Any] | None = None


class SourceCheckpoint(Settings):
    """The checkpoint the policy was exported from."""

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Exported(Settings):
    """When and with what the policy was exported."""

    at: str
    torch: str


class TrustCondition(Settings):
    """One condition the controller was measured in, and whether it passed."""

    condition: str
    passed: bool
    falls: int = Field(ge=0)
    episodes: int = Field(ge=1)
    error_mean: float | None = None


class Trust(Settings):
    """The envelope the controller was verified in (`velora-robot explain --write-card`,
    explain/robustness.py): per axis (friction, payload_kg, latency_s, obs_noise_scale,
    push_velocity) and per command, the [low, high] range it passed; `run` warns outside."""

    verified_by: str
    error_limit: float = Field(ge=0)
    axes: dict[str, tuple[float, float]]
    commands: dict[str, tuple[float, float]]
    conditions: list[TrustCondition]


class ModelCard(Settings):
    """The JSON written beside every exported policy."""

    format: Literal["velora-model-card/2"]
    name: str
    policy_file: str
    policy_format: Literal["onnx", "torchscript", "kernel"]
    io: PolicyIO
    robot: RobotSpec | None = None  # None: trained on an env without a robot spec
    # What the policy observes and is asked (the training task's); with `robot`, the
    # runtime builds the observation from it.
    interface: PolicyInterface | None = None
    network: Network
    training: Training
    source_checkpoint: SourceCheckpoint | None = None
    exported: Exported | None = None
    trust: Trust | None = None

    def trained(self) -> tuple[int, float]:
        """Env steps and wall-clock seconds of all its training: a curriculum stage's own
        plus those of the stages before it (`training.init_from`)."""
        t = self.training
        before = t.init_from
        return (t.env_steps + (before.env_steps if before else 0),
                t.wall_s + (before.wall_s if before else 0.0))

    def to_json(self) -> str:
        """The card as written beside the policy (unset optional fields left out)."""
        return self.model_dump_json(indent=2, exclude_none=True)


def card_path(policy: str | Path) -> Path:
    """Where a policy file's card lives: beside it, `<policy file>.json`."""
    policy = Path(policy)
    return policy.with_name(policy.name + ".json")


METADATA_KEY = "velora.model_card"  # the card, as JSON, inside an exported ONNX file


def write_card(policy: str | Path, card: ModelCard) -> Path:
    """Write `card` beside the policy file and, for an ONNX policy, into the file's own
    metadata too (so the file alone carries its interface; needs the `onnx` package, a
    training-side dependency). Returns the card file."""
    policy = Path(policy)
    text = card.to_json()
    path = card_path(policy)
    path.write_text(text)
    if policy.suffix == ".onnx":
        import onnx

        model = onnx.load(str(policy))
        kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        model.metadata_props.add(key=METADATA_KEY, value=text)
        onnx.save(model, str(policy))
    return path


def load_card(path: str | Path) -> ModelCard:
    """A model card file, validated (every field typed; errors name the file and field).
    A format 1 card is read as format 2."""
    return card_from_data(read_file(path), str(path))


def card_from_data(data: Any, where: str) -> ModelCard:
    """A card from its parsed JSON, validated (errors start with `where`)."""
    if isinstance(data, dict) and data.get("format") == "velora-model-card/1":
        data = dict(data, format=CARD_FORMAT)
        robot = data.get("robot")
        if isinstance(robot, dict):
            robot = data["robot"] = dict(robot)
            data["interface"] = {k: robot.pop(k) for k in _INTERFACE_FIELDS if k in robot}
    return parse(ModelCard, data, where)


def check_card(card: ModelCard, spec: RobotSpec, where: str = "model card") -> PolicyInterface:
    """Raise ConfigError naming the first difference between the card and the robot in
    anything the observation and action mapping read: joints and their order, default
    pose, gains, position limits (target clipping), action scale and control rate; and
    whether the card's policy interface gives the policy's input size on this robot.
    Returns that interface (the runtime observes with it)."""
    if card.robot is None or card.interface is None:
        raise ConfigError(f"{where}: policy {card.name!r} was trained on "
                          f"{card.training.env!r}, not on a robot; it cannot drive "
                          f"{spec.name!r}")
    trained = card.robot
    mine, theirs = spec.joint_names, trained.joint_names
    if len(mine) != len(theirs):
        raise ConfigError(f"{where}: the policy drives {len(theirs)} joints, robot "
                          f"{spec.name!r} has {len(mine)}")
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        if a != b:
            raise ConfigError(f"{where}: joint {i} is {a!r} on the robot but {b!r} in the "
                              "policy (joint order differs)")
    for j_robot, j_card in zip(spec.joints, trained.joints, strict=True):
        for field in ("default_pos", "kp", "kd", "pos_limit"):
            if getattr(j_robot, field) != getattr(j_card, field):
                raise ConfigError(f"{where}: joint {j_robot.name!r}: {field} is "
                                  f"{getattr(j_robot, field)} on the robot but "
                                  f"{getattr(j_card, field)} in training")
    if len(spec.held) != len(trained.held):
        raise ConfigError(f"{where}: robot {spec.name!r} holds {len(spec.held)} joints, the "
                          f"policy was trained with {len(trained.held)} held")
    for j_robot, j_card in zip(spec.held, trained.held, strict=True):
        if j_robot != j_card:
            raise ConfigError(f"{where}: held joint {j_robot.name!r} is {j_robot} on the robot "
                              f"but {j_card} in training")
    for field in ("action_scale", "control_hz"):
        if getattr(spec, field) != getattr(trained, field):
            raise ConfigError(f"{where}: field {field!r} is {getattr(spec, field)} on the "
                              f"robot but {getattr(trained, field)} in training")
    try:
        obs_dim = sum(obs_sizes(spec, card.interface).values())
    except ValueError as exc:
        raise ConfigError(f"{where}: field 'interface': {exc}") from None
    if card.io.obs_dim != obs_dim or card.io.act_dim != spec.n_joints:
        raise ConfigError(f"{where}: field 'io': the policy takes {card.io.obs_dim} "
                          f"observations and gives {card.io.act_dim} actions; its interface "
                          f"on robot {spec.name!r} gives {obs_dim} and the robot has "
                          f"{spec.n_joints} joints")
    return card.interface


def trust_warnings(card: ModelCard, command: dict[str, float],
                   randomization: dict[str, Any] | None = None) -> list[str]:
    """What a run asks of the policy beyond the envelope its card says it was verified in:
    commands outside their verified ranges, and a simulated robot's randomization (when on)
    reaching past a verified axis. One line each; none when all is inside. (A command the
    envelope has no range for, such as a task's own reference, was not verified either
    way: nothing is said of it.)"""
    if card.trust is None:
        return ["its card carries no verified envelope (measure one with `velora-robot "
                "explain POLICY --write-card`)"]
    lines = []
    for name, value in command.items():
        if name not in card.trust.commands:
            continue
        lo, hi = card.trust.commands[name]
        if not lo - 1e-9 <= value <= hi + 1e-9:
            lines.append(f"command {name} {value:g} is outside the verified {lo:g}..{hi:g}")
    if randomization and randomization.get("enabled"):
        from velora_robot.simulation.randomization import Randomization

        asked = Randomization.model_validate(randomization)
        for axis, (lo, hi) in card.trust.axes.items():
            low, high = asked.extent(axis)
            if low < lo - 1e-9 or high > hi + 1e-9:
                lines.append(f"simulated {axis} {low:g}..{high:g} reaches outside the verified "
                             f"{lo:g}..{hi:g}")
    return lines
