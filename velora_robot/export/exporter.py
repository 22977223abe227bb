"""`velora-robot export CKPT`: a training checkpoint to an ONNX or TorchScript policy plus
its model card (JSON, beside it). The runtime checks the card against the robot spec
before it activates anything."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import torch

from velora_robot.errors import ConfigError
from velora_robot.explain.network import LiquidNet
from velora_robot.explain.walk import neuron_share, nominal_env, walk
from velora_robot.export.deploy import DeployPolicy
from velora_robot.rl.agent import Agent
from velora_robot.rl.recipe import PPOSection, Recipe
from velora_robot.rl.trainer import episode_means, load_checkpoint, trained_so_far
from velora_robot.runtime.card import (
    CARD_FORMAT,
    INPUTS,
    OUTPUTS,
    ModelCard,
    NeuronShare,
    card_path,
    write_card,
)


def load_agent(ckpt: dict[str, Any]) -> tuple[Recipe, Agent]:
    """The recipe and the trained agent of a checkpoint."""
    recipe = Recipe.model_validate(ckpt["recipe"])
    on_policy = isinstance(recipe.algorithm, PPOSection)
    agent = Agent(recipe.policy, ckpt["obs_dim"], ckpt["act_dim"],
                  ckpt["priv_dim"] if on_policy else 0, squash=not on_policy,
                  critic=on_policy)
    agent.load_state_dict(ckpt["agent"])
    return recipe, agent.eval()


def robot_and_interface(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The card's `robot` and `interface`: the robot spec a velora_robot env runs and the
    policy interface its task gives (none for other gymnasium envs)."""
    from velora_robot.envs import ENV_IDS
    from velora_robot.robots import get_spec

    cls = ENV_IDS.get(env_id)
    if cls is None:
        return {}
    config = cls.TASK.settings(kwargs, f"env {env_id}")
    return {"robot": json.loads(get_spec(config.robot).model_dump_json()),
            "interface": json.loads(config.interface.model_dump_json())}


def export(checkpoint: str | Path, fmt: Literal["onnx", "torchscript", "kernel"] = "onnx",
           out: str | Path | None = None) -> dict[str, Path]:
    """Write the policy (`out` or beside the checkpoint), its model card and, when the run's
    metrics.jsonl is beside the checkpoint, its learning curve up to the checkpoint
    (`<policy>_curve.png`). `kernel` writes the liquid network's frozen arrays (.npz) for
    the runtime's C-kernel runner."""
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    recipe, agent = load_agent(ckpt)
    policy = DeployPolicy(agent).eval()
    if fmt == "kernel" and not policy.liquid:
        raise ConfigError(f"{checkpoint}: the kernel format runs liquid (LTC) actors; this "
                          "one is an MLP: export onnx or torchscript")
    suffix = {"onnx": ".onnx", "torchscript": ".pt", "kernel": ".npz"}[fmt]
    path = Path(out) if out is not None else checkpoint.parent / f"{recipe.name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.zeros(1, ckpt["obs_dim"]), torch.zeros(1, policy.state_size))
    with torch.no_grad():
        if fmt == "onnx" and policy.liquid:
            _export_liquid_onnx(agent, path)
        elif fmt == "onnx":
            _export_onnx(policy, example, path)
        elif fmt == "kernel":
            _export_kernel(agent, path)
        else:
            torch.jit.trace(policy, example).save(str(path))
    card = card_path(path)
    written_card = model_card(recipe, ckpt, agent, policy, fmt, path, checkpoint)
    if policy.liquid:  # how much of the action the neurons carry, over the nominal walk
        env = nominal_env(written_card)
        try:
            share = neuron_share(walk(liquid_net(agent), env))
        finally:
            env.close()
        written_card.network.neuron_share = NeuronShare.model_validate(share)
    write_card(path, written_card)
    written = {"policy": path, "card": card}
    if (checkpoint.parent / "metrics.jsonl").is_file():
        from velora_robot.rl.run_log import plot_curve

        rows, stages = history(ckpt, checkpoint)
        steps, wall = trained_so_far(ckpt)
        title = f"{recipe.name}: {steps:,} steps, {wall / 60:.0f} min"
        written["curve"] = plot_curve(rows, path.with_name(f"{path.stem}_curve.png"), title,
                                      stages=stages)
    return written


def history(ckpt: dict[str, Any], checkpoint: Path
            ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The metrics rows of a run up to `checkpoint`, after those of the curriculum stages it
    started from (`init_from`, followed back while their checkpoints and metrics are still
    on disk), with env_steps counted from the first stage's start; and where each stage
    began (env steps, recipe name). A stage whose files are gone leaves a gap."""
    from velora_robot.rl.run_log import read_metrics

    metrics = checkpoint.parent / "metrics.jsonl"
    rows = read_metrics(metrics, until_update=ckpt["update"]) if metrics.is_file() else []
    init, name = ckpt.get("init"), ckpt["recipe"]["name"]
    if not init:
        return rows, [(0, name)]
    offset, earlier, stages = init["env_steps"], [], []
    parent = Path(init["checkpoint"])
    if parent.is_file():
        earlier, stages = history(load_checkpoint(parent), parent)
        # The earlier run may have gone on after this stage started from it.
        earlier = [r for r in earlier if r["env_steps"] <= offset]
    shifted = [{**r, "env_steps": r["env_steps"] + offset} for r in rows]
    return earlier + shifted, [*stages, (offset, name)]


def liquid_net(agent: Agent) -> LiquidNet:
    """The liquid actor's frozen arrays, normalization and constants (what the kernel file
    holds and the explain tools run)."""
    cell, norm = agent.actor.cell, agent.obs_norm
    return LiquidNet(cell.kernel_arrays(), norm.mean.numpy(),
                     torch.sqrt(norm.var + norm.eps).numpy(), norm.clip, cell.ode_unfolds,
                     cell.epsilon, cell.n_motor, cell.wiring.neurons_per_dof, agent.squash)


def _export_kernel(agent: Agent, path: Path) -> None:
    """The C kernel's arrays plus the observation normalization and the action head."""
    import numpy as np

    net = liquid_net(agent)
    np.savez(path, **{f"ltc/{k}": v for k, v in net.arrays.items()}, obs_mean=net.obs_mean,
             obs_std=net.obs_std,
             meta=np.array([net.clip, net.unfolds, net.epsilon, net.n_motor,
                            net.neurons_per_dof, float(net.squash)]))


def _export_liquid_onnx(agent: Agent, path: Path) -> None:
    """A liquid actor as the lean hand-built graph (see `onnx_graph`): about half the
    onnxruntime latency of the traced graph, same outputs within 1e-5."""
    from velora_robot.export import onnx_graph

    net = liquid_net(agent)
    model = onnx_graph.build(
        net.arrays, obs_mean=net.obs_mean, obs_std=net.obs_std, clip=net.clip,
        unfolds=net.unfolds, epsilon=net.epsilon, n_motor=net.n_motor,
        neurons_per_dof=net.neurons_per_dof, squash=net.squash)
    onnx_graph.save(model, path)


def _export_onnx(policy: DeployPolicy, example: tuple[torch.Tensor, ...], path: Path) -> None:
    import logging
    import warnings

    import onnx

    # Quiet: without these the exporter prints its progress, a line for each torchvision
    # op it cannot find (torchvision is not a dependency) and a torch-internal deprecation.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        batch = torch.export.Dim("batch", min=1)  # any number of robots in one call
        torch.onnx.export(policy, example, str(path), input_names=list(INPUTS),
                          output_names=list(OUTPUTS), dynamo=True, external_data=False,
                          verbose=False, dynamic_shapes=({0: batch}, {0: batch}))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def model_card(recipe: Recipe, ckpt: dict[str, Any], agent: Agent, policy: DeployPolicy,
               fmt: str, path: Path, checkpoint: Path) -> ModelCard:
    """Everything the runtime (and a person) needs to know about an exported policy."""
    from velora_robot.rl.policies import LiquidActor

    actor = agent.actor
    robot = robot_and_interface(recipe.env.id, recipe.env.kwargs)
    network: dict[str, Any] = {"kind": recipe.policy.kind,
                               "trainable_parameters": agent.actor_parameters,
                               "state_size": policy.state_size, "squashed": agent.squash}
    if isinstance(actor, LiquidActor):
        wiring = actor.cell.wiring
        network.update(neurons=wiring.n_neurons, motor_neurons=wiring.n_motor,
                       neurons_per_dof=wiring.neurons_per_dof, synapses=wiring.n_synapses,
                       sensory_synapses=wiring.n_sensory_synapses,
                       ode_unfolds=actor.cell.ode_unfolds, wiring=wiring.to_dict())
        names = [j["name"] for j in robot["robot"]["joints"]] if robot.get("robot") else []
        if len(names) == wiring.n_dof:  # the card's wiring by the robot's joint names
            network["wiring"]["joint_names"] = names
    summary = {"env": recipe.env.id, "env_kwargs": recipe.env.kwargs,
               "algorithm": recipe.algorithm.name, "updates": ckpt["update"],
               "env_steps": ckpt["env_steps"], "wall_s": ckpt["wall_s"],
               "return_mean_last_100": episode_means(ckpt["recent_episodes"])[0]}
    if ckpt.get("init"):  # a curriculum stage: the earlier stages' steps and time
        summary["init_from"] = ckpt["init"]
    if ckpt.get("teacher"):  # distilled: the policy it imitated and that one's training
        summary["teacher"] = ckpt["teacher"]
    eval_path = checkpoint.parent / "eval.json"
    if eval_path.exists():
        summary["eval"] = json.loads(eval_path.read_text())
    return ModelCard.model_validate({
        "format": CARD_FORMAT,
        "name": recipe.name,
        "policy_file": path.name,
        "policy_format": fmt,
        "io": {"inputs": {"obs": [1, ckpt["obs_dim"]], "state": [1, policy.state_size]},
               "outputs": {"action": [1, ckpt["act_dim"]],
                           "next_state": [1, policy.state_size]}},
        **robot,
        "network": network,
        "training": summary,
        "source_checkpoint": {"file": str(checkpoint),
                              "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()},
        "exported": {"at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                     "torch": torch.__version__},
    })
