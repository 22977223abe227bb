"""The `velora-robot` command. Heavy imports happen inside each subcommand."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path

from velora_robot.config import check_writable, parse

BENCHMARKS = ("ltc", "env", "solve", "walk", "throughput", "scale", "policy", "loop",
              "bridge", "dynamixel", "dds", "imitation")


class UserError(Exception):
    """A problem the user can fix; printed as one line, never as a traceback."""


def _write_json(result: dict, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        print(f"wrote {path}")


def _numbers(text: str, option: str) -> list[float]:
    """Comma-separated finite numbers."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{option} {text!r}: comma-separated numbers, e.g. 0.5,0,0") from None
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"{option} {text!r}: every value must be a finite number")
    return values


def cmd_bench(args: argparse.Namespace) -> None:
    """Run one benchmark, print its table and write its JSON."""
    if args.name not in BENCHMARKS:
        raise UserError(f"unknown benchmark {args.name!r}; available: {', '.join(BENCHMARKS)}")
    import importlib

    check_writable(args.json, "--json")
    bench = importlib.import_module(f"velora_robot.bench.{args.name}")
    if args.recipe is not None:
        if args.name not in ("walk", "imitation"):
            raise UserError(f"--recipe is for `bench walk` (the recipe it trains) and `bench "
                            f"imitation` (the teacher it imitates), not `bench {args.name}`")
        result = bench.run(quick=args.quick, recipe=args.recipe)
    else:
        result = bench.run(quick=args.quick)
    print(bench.table(result))
    _write_json(result, args.json)


ROOT = Path(__file__).resolve().parents[1]


# What `demo --robot` runs: the shipped controller, its deploy launch file, its env and the
# command its video shows. Spot's is the one whose motor neurons drive every joint (two per
# joint, no bypass: 0 falls in 400 evaluation episodes); the launch file's own controller
# carries 99 % of its action through a linear bypass.
DEMOS = {"spot": ("spot_walk_neurons_2n.onnx", "spot_sim.yaml", "velora_robot/SpotWalk-v0",
                  [0.5, 0.0, 0.0]),
         "g1": ("g1_walk.onnx", "g1_sim.yaml", "velora_robot/G1Walk-v0", [0.5, 0.0, 0.0])}


def cmd_demo(args: argparse.Namespace) -> None:
    """The main job: a shipped walking controller (its neurons by role, then 20 s in the
    real-time loop on the simulated robot with a live status line, telemetry, a plot, a
    short video and a summary)."""
    from velora_robot.runtime.deploy import deploy

    out = Path(args.out)
    check_writable(out, "--out", folder=True)
    if not args.seconds > 0 or not math.isfinite(args.seconds):
        raise UserError(f"--seconds {args.seconds}: a finite number of seconds above 0")
    model, launch, env_id, command = DEMOS[args.robot]
    policy = ROOT / "models" / model
    if not policy.is_file():
        raise UserError(f"--robot {args.robot}: {policy} is not shipped in this checkout")
    out.mkdir(parents=True, exist_ok=True)
    _describe_controller(policy)
    summary = deploy(ROOT / "launch" / launch, duration_s=args.seconds, policy=policy)
    _record_policy(policy, env_id, out / f"{policy.stem}.gif", command=command)
    _write_json(summary, out / "summary.json")


def _describe_controller(path: Path) -> None:
    """The controller's neurons by role and joint, from its model card."""
    from velora_robot.liquid.wiring import NCPWiring
    from velora_robot.runtime import load_card
    from velora_robot.runtime.card import card_path

    card = load_card(card_path(path))
    net = card.network
    if net.wiring is not None:  # by the robot's joint names (the wiring knows no robot)
        names = card.robot.joint_names if card.robot else None
        named = {**net.wiring, "joint_names": names} \
            if names and len(names) == net.wiring["n_dof"] else net.wiring
        print(NCPWiring.from_dict(named).describe())
    steps, wall = card.trained()
    stages = " (with the stages before it)" if card.training.init_from else ""
    print(f"{card.name}: {net.neurons} neurons, {net.synapses} + {net.sensory_synapses} "
          f"synapses, {net.trainable_parameters} trainable parameters; trained {steps:,} env "
          f"steps in {wall / 3600:.2f} h{stages}")
    if net.neuron_share is not None:  # honest controllers: say how much the neurons do
        print(f"{net.neuron_share.sentence()} (`velora-robot explain {path}` measures the "
              "rest)")
    print()


def _record_policy(path: Path, env_id: str, gif: Path, command: list[float]) -> None:
    """A short off-screen video of the policy in its env (skipped where GL does not work)."""
    import gymnasium as gym

    import velora_robot.envs  # noqa: F401  (registers the ids)
    from velora_robot.envs.video import record
    from velora_robot.robots.interface import VELOCITY_COMMANDS
    from velora_robot.runtime import load_policy

    policy = load_policy(path)
    ranges = dict(zip(VELOCITY_COMMANDS, ((v, v) for v in command), strict=True))
    def progress(done: int, total: int) -> None:
        if sys.stdout.isatty():
            print(f"\rvideo: rendering frame {done}/{total}", end="", flush=True)
        elif done == 1:
            print(f"video: rendering {total} frames", flush=True)

    try:
        env = gym.make(env_id, render_mode="rgb_array", command_ranges=ranges)
        written = record(env, gif, seconds=5.0, policy=policy, on_frame=progress)
        print(f"{chr(10) if sys.stdout.isatty() else ''}video: {written} "
              f"({written.stat().st_size / 1e6:.1f} MB)")
        env.close()
    except Exception as exc:  # no OpenGL back end on this machine
        print(f"video skipped: off-screen rendering is not available ({exc})")


def cmd_train(args: argparse.Namespace) -> None:
    """Train from a recipe; --resume continues from the run's last checkpoint."""
    from velora_robot.rl import load_recipe, train

    recipe = load_recipe(args.recipe)
    if args.budget is not None:
        recipe.budget.env_steps = _env_steps(args.budget)
    changes = [_setting(item) for item in args.set]
    if args.seed is not None:
        changes.append((["seed"], args.seed))
    if args.device is not None:
        changes.append((["device"], args.device))
    if changes:
        data = recipe.model_dump()
        for path, value in changes:
            _set_dotted(data, path, value)
        recipe = parse(type(recipe), data, f"{args.recipe} with the command line's settings",
                       tags=frozenset({"ppo", "sac", "td3"}))
    if args.tensorboard:
        recipe.logging.tensorboard = True
    summary = train(recipe, resume=args.resume, overwrite=args.overwrite,
                    wandb=True if args.wandb else None, progress=not args.quiet)
    print(json.dumps(summary, indent=2))


def _setting(item: str) -> tuple[list[str], object]:
    """`--set section.field=value`: the field's path and its value read as YAML."""
    import yaml

    key, eq, text = item.partition("=")
    if not eq or not key.strip():
        raise UserError(f"--set {item!r}: write it as field=value, e.g. algorithm.lr=3e-4")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"--set {item!r}: the value is not YAML: {exc}") from None
    return key.strip().split("."), value


def _set_dotted(data: dict, path: list[str], value: object) -> None:
    for i, key in enumerate(path[:-1]):
        inner = data.get(key)
        if inner is None:
            inner = data[key] = {}
        if not isinstance(inner, dict):
            raise UserError(f"--set {'.'.join(path)}: {'.'.join(path[:i + 1])} is a value, "
                            "not a section")
        data = inner
    data[path[-1]] = value


def _env_steps(text: str) -> int:
    """`--budget`: a whole number of env steps, optionally with k or M (500k, 14M, 2.5M)."""
    scale = {"k": 1e3, "M": 1e6}.get(text[-1:], 1.0)
    try:
        steps = float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        steps = float("nan")
    if not (steps >= 1 and steps == int(steps)):
        raise UserError(f"--budget {text}: a whole number of env steps above 0 (e.g. "
                        "14000000, 14M or 500k)")
    return int(steps)


def cmd_export(args: argparse.Namespace) -> None:
    """Export a checkpoint to ONNX or TorchScript with its model card."""
    from velora_robot.export import export

    check_writable(args.out, "--out")
    paths = export(args.checkpoint, args.format, args.out)
    print(f"wrote {paths['policy']} and its model card {paths['card']}")


def cmd_convert_checkpoint(args: argparse.Namespace) -> None:
    """Rewrite a checkpoint of an earlier version in the code-free format."""
    from velora_robot.rl.checkpoint import convert

    check_writable(args.out, "--out")
    print(f"wrote {convert(args.checkpoint, args.out)} (tensors and plain data only)")


def cmd_run(args: argparse.Namespace) -> None:
    """Run a deploy launch file: policy, hardware (or the simulated fallback), loop."""
    from velora_robot.runtime.deploy import deploy

    check_writable(args.json, "--json")
    summary = deploy(args.launch, duration_s=args.duration,
                     status=False if args.no_status else None, policy=args.policy)
    _write_json(summary, args.json)
    if summary["fault"] is not None and summary["fault"] != "signal":
        raise UserError(f"ended in damping: {summary['fault']} ({summary['fault_detail']})")


def cmd_hil(args: argparse.Namespace) -> None:
    """The scripted hardware-in-the-loop check, on a board or on the emulator."""
    from velora_robot.hil import firmware as hil
    from velora_robot.robots import get_spec

    if args.dds is not None:
        from velora_robot.hil import dds as dds_hil

        check_writable(args.report, "--report")
        report = dds_hil.run(args.dds, duration_s=args.duration)
        print(dds_hil.table(report))
        _write_json(report, args.report)
        return
    if (args.port is None) == (not args.emulate):
        raise UserError("give --port PORT (a board), --emulate (the firmware emulator) or "
                        "--dds (the deploy path over DDS)")
    from velora_robot.hal.factory import MAX_BAUD

    if not 0 < args.baud <= MAX_BAUD:
        raise UserError(f"--baud {args.baud}: a UART rate in 1..{MAX_BAUD:,} bit/s (the "
                        "bridge's default is 1,000,000)")
    check_writable(args.report, "--report")
    get_spec(args.robot)  # an unknown robot is named before anything starts
    if args.emulate:
        from velora_robot.bridge.emulator import Emulator

        with Emulator.for_robot(get_spec(args.robot), baud=args.baud,
                                sim_plant=args.sim_plant) as emu:
            report = hil.run(emu.port, robot=args.robot, baud=args.baud)
            report.steps.append({"step": "emulator counters", "passed": True, **emu.stats()})
    else:
        report = hil.run(args.port, robot=args.robot, baud=args.baud)
    print(hil.table(report))
    print(f"wrote {hil.write(report, args.report)}")
    if not report.passed:
        raise UserError("HIL check failed (see the report)")


def cmd_dds_robot(args: argparse.Namespace) -> None:
    """Serve the launch file's robot, simulated, on its DDS topics."""
    from velora_robot.bridge.dds_robot import DdsRobot
    from velora_robot.robots import get_spec
    from velora_robot.runtime.launch import load_launch

    launch = load_launch(args.launch)
    hw = launch.hardware
    if args.status is not None:
        check_writable(args.status, "--status")
    robot = DdsRobot(get_spec(launch.robot), interface=hw.interface, domain_id=hw.domain_id,
                     variant=hw.sim.variant, physics=hw.sim.physics, seed=hw.sim.seed,
                     fault=args.fault, fault_after_s=args.fault_after,
                     motion_mode=args.motion_mode)
    robot.run(args.duration, args.status, parent_pid=args.parent_pid)


def cmd_explain(args: argparse.Namespace) -> None:
    """Measure an exported liquid controller and write the report folder."""
    from velora_robot.explain.report import explain, summary_lines

    if not args.model.is_file():
        raise UserError(f"no policy file at {args.model}")
    if not args.seconds > 0 or args.seconds > 600:
        raise UserError(f"--seconds {args.seconds}: between 0 and 600")
    out = args.out if args.out is not None else Path("out") / "explain" / args.model.stem
    check_writable(out, "--out", folder=True)
    if args.baseline is not None and not args.baseline.is_file():
        raise UserError(f"--baseline: no policy file at {args.baseline}")
    report = explain(args.model, out, seconds=args.seconds, baseline=args.baseline,
                     write_card=args.write_card)
    print("\n".join(summary_lines(report)))
    print(f"report: {out / 'index.html'} ({report['elapsed_s']:.0f} s)")


def cmd_eval(args: argparse.Namespace) -> None:
    """Evaluate an exported policy in its training env, with and without randomization."""
    from velora_robot import evaluation

    for model in (args.model, args.baseline):
        if model is not None and not model.is_file():
            raise UserError(f"no policy file at {model}")
    check_writable(args.json, "--json")
    for flag, value in (("--episodes", args.episodes), ("--workers", args.workers)):
        if value < 1:
            raise UserError(f"{flag} {value}: at least 1")
    if args.baseline is not None:  # before any episode runs, not after them all
        from velora_robot.runtime.card import card_path, load_card

        envs = [load_card(card_path(m)).training.env for m in (args.model, args.baseline)]
        if envs[0] != envs[1]:
            raise UserError(f"--baseline {args.baseline}: trained on {envs[1]!r}, {args.model} "
                            f"on {envs[0]!r}; compare policies of the same env")
    if args.criteria:
        _eval_criteria(args)
        return
    command = None if args.command is None else _numbers(args.command, "--command")
    settings = {"on": [True], "off": [False], "both": [True, False], "core": [True],
                "trained": [True]}[args.randomization]
    ranges = args.randomization if args.randomization in evaluation.RANGES else "standard"
    results, baselines = [], []
    for randomize in settings:
        for model, into in ((args.model, results), (args.baseline, baselines)):
            if model is not None:
                into.append(evaluation.evaluate(model, episodes=args.episodes, seed=args.seed,
                                                randomize=randomize, command=command,
                                                ranges=ranges, physics=args.physics,
                                                workers=args.workers))
        if results[-1]["randomization"] is None:  # an env without randomization
            break
    print(evaluation.table(results + baselines))
    out: dict = {"results": results}
    if baselines:
        out["baseline"] = baselines
        out["comparison"] = [evaluation.compare(r, b)
                             for r, b in zip(results, baselines, strict=True)]
        print(evaluation.comparison_table(out["comparison"]))
    _write_json(out, args.json)


def _eval_criteria(args: argparse.Namespace) -> None:
    """`eval --criteria`: the walking criteria (evaluation.WALK_CONDITIONS), and with a
    baseline its figures too and the tracking reward ratio under the random commands."""
    from velora_robot import evaluation

    if min(args.max_velocity_error, args.max_yaw_rate_error, args.min_reward_ratio) <= 0 \
            or args.max_random_falls < 0:
        raise UserError("--max-velocity-error, --max-yaw-rate-error and --min-reward-ratio "
                        "must be above 0, --max-random-falls at least 0")
    if args.command is not None or args.randomization != "both":
        raise UserError("--criteria sets its own commands and randomization; drop --command "
                        "and --randomization")
    options = {"episodes": args.episodes, "seed": args.seed, "physics": args.physics,
               "workers": args.workers, "max_velocity_error": args.max_velocity_error,
               "max_yaw_rate_error": args.max_yaw_rate_error,
               "max_random_falls": args.max_random_falls}
    rows = evaluation.walk_criteria(args.model, **options)
    print(evaluation.criteria_table(rows))
    out: dict = {"criteria": rows}
    failed = [row["condition"] for row in rows if not row["passed"]]
    if args.baseline is not None:
        base = evaluation.walk_criteria(args.baseline, **options)
        print(evaluation.criteria_table(base))
        out["baseline"] = base
        comparison = evaluation.compare(rows[-1]["result"], base[-1]["result"])
        comparison["passed"] = comparison["tracking_reward_ratio"] >= args.min_reward_ratio
        out["comparison"] = comparison
        print(evaluation.comparison_table([comparison])
              + f"  [{'PASS' if comparison['passed'] else 'FAIL'}: at least "
                f"{args.min_reward_ratio:.0%}]")
        if not comparison["passed"]:
            failed.append(f"tracking reward below {args.min_reward_ratio:.0%} of the "
                          "baseline's")
    _write_json(out, args.json)
    if failed:
        raise UserError(f"{args.model}: the walking criteria are not met ({', '.join(failed)})")


def cmd_plot(args: argparse.Namespace) -> None:
    """Plot a telemetry file to PNG."""
    from velora_robot.runtime import telemetry

    if not args.telemetry.is_file():
        raise UserError(f"no telemetry file at {args.telemetry}")
    check_writable(args.out, "--out")
    joints: int | list[str] | None = 3
    if args.joints == "all":
        joints = None
    elif args.joints is not None:
        joints = [j.strip() for j in args.joints.split(",") if j.strip()]
    print(f"wrote {telemetry.plot(args.telemetry, args.out, joints=joints)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="velora-robot",
        description="Liquid neural controllers for robots: train in MuJoCo, run on the robot.",
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    demo = sub.add_parser("demo", help="run the main demo")
    demo.add_argument("--out", default="out/demo", help="folder for the demo's files")
    demo.add_argument("--seconds", type=float, default=20.0, help="how long the robot runs")
    demo.add_argument("--robot", choices=sorted(DEMOS), default="spot",
                      help="which shipped walker to run (default: spot)")
    demo.set_defaults(func=cmd_demo)
    train = sub.add_parser("train", help="train a controller from a YAML recipe")
    train.add_argument("recipe", type=Path, help="recipe file (see launch/)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the run's checkpoint")
    train.add_argument("--overwrite", action="store_true",
                       help="start the run again, removing the earlier run's files")
    train.add_argument("--wandb", action="store_true",
                       help="log to Weights & Biases (honours WANDB_MODE=offline)")
    train.add_argument("--tensorboard", action="store_true",
                       help="also log to TensorBoard (runs/<name>/tensorboard; view with "
                            "tensorboard --logdir runs)")
    train.add_argument("--quiet", action="store_true", help="no progress line")
    train.add_argument("--budget", default=None,
                       help="env steps to train for instead of the recipe's budget "
                            "(14000000, 14M, 500k); with --resume a larger one extends the run")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="change a recipe field, e.g. --set algorithm.lr=3e-4 --set "
                            "env.n_envs=64 (the value is YAML; repeatable)")
    train.add_argument("--seed", type=int, default=None, help="instead of the recipe's seed")
    train.add_argument("--device", default=None,
                       help="where MuJoCo Warp simulates (env.backend warp): cpu, cuda or "
                            "cuda:N, instead of the recipe's device")
    train.set_defaults(func=cmd_train)
    exp = sub.add_parser("export", help="export a checkpoint for the robot")
    exp.add_argument("checkpoint", type=Path, help="runs/<name>/checkpoint.pt")
    exp.add_argument("--format", choices=("onnx", "torchscript", "kernel"), default="onnx",
                     help="kernel: the liquid network's arrays for the runtime's C kernel")
    exp.add_argument("--out", type=Path, default=None,
                     help="policy file to write (default: beside the checkpoint, named after "
                          "its recipe: <name>.onnx, .pt or .npz)")
    exp.set_defaults(func=cmd_export)
    conv = sub.add_parser("convert-checkpoint",
                          help="rewrite a checkpoint of an earlier version in the code-free "
                               "format (read allowing only numpy arrays and randomization "
                               "draws: no code runs)")
    conv.add_argument("checkpoint", type=Path)
    conv.add_argument("--out", type=Path, default=None, help="default: in place")
    conv.set_defaults(func=cmd_convert_checkpoint)
    ev = sub.add_parser("eval", help="evaluate an exported policy in its training env")
    ev.add_argument("model", type=Path, help="policy file (.onnx, .pt or .npz) with its card")
    ev.add_argument("--episodes", type=int, default=50,
                    help="episodes per condition (default: %(default)s)")
    ev.add_argument("--seed", type=int, default=0,
                    help="seed of the first episode; episode i uses seed + i, the same for "
                         "every condition and for --baseline (default: %(default)s)")
    ev.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes that share the episodes (default: one per core); the "
                         "figures do not depend on it")
    ev.add_argument("--command", default=None,
                    help="fixed command, e.g. 0.5,0,0 (default: the env's random commands)")
    ev.add_argument("--randomization", choices=("on", "off", "both", "core", "trained"),
                    default="both", help="both (default): with the standard ranges, then "
                    "without randomization; on: the standard ranges, whatever the model was "
                    "trained with; core: friction, mass, latency and pushes only (sensor "
                    "noise, payload, CoM shift, actuator scaling nominal); trained: the "
                    "ranges in its model card")
    ev.add_argument("--physics", choices=("trained", "mjcf", "full", "cheap"),
                    default="trained", help="contacts and solver: as trained (default), the "
                    "MJCF's own, the MJCF's on the full model (every geom collides), or the "
                    "cheap settings (simulation.physics.CHEAP)")
    ev.add_argument("--baseline", type=Path, default=None,
                    help="a second policy (e.g. the MLP) on the same seeds: reports the "
                         "tracking reward ratio and the parameter ratio")
    ev.add_argument("--criteria", action="store_true",
                    help="the walking criteria: 0.5 m/s forward, 0.3 m/s sideways and 0.5 "
                         "rad/s yaw under the core randomization (no falls, velocity error "
                         "within --max-velocity-error, yaw rate within --max-yaw-rate-error "
                         "per gait period), random commands under the standard "
                         "one (at most --max-random-falls falls); fails unless all pass")
    ev.add_argument("--max-velocity-error", type=float, default=0.15,
                    help="m/s (--criteria; default: %(default)s)")
    ev.add_argument("--max-yaw-rate-error", type=float, default=0.15,
                    help="rad/s, per gait period where the walker has a gait clock "
                         "(--criteria; default: %(default)s)")
    ev.add_argument("--max-random-falls", type=int, default=2,
                    help="of --episodes (--criteria; default: %(default)s)")
    ev.add_argument("--min-reward-ratio", type=float, default=0.9,
                    help="(--criteria with --baseline) the tracking reward under the random "
                         "commands as a fraction of the baseline's (default: %(default)s)")
    ev.add_argument("--json", type=Path, default=None, help="write the results here")
    ev.set_defaults(func=cmd_eval)
    ex = sub.add_parser("explain", help="measure an exported liquid controller: structure, "
                        "neuron share of the action, activity, ablations (a report folder)")
    ex.add_argument("model", type=Path, help="liquid policy file (.onnx or .npz) with its card")
    ex.add_argument("--out", type=Path, default=None,
                    help="report folder (default: out/explain/<model name>)")
    ex.add_argument("--seconds", type=float, default=20.0,
                    help="length of the nominal walk (default: %(default)s)")
    ex.add_argument("--baseline", type=Path, default=None,
                    help="another policy of the same env (e.g. the MLP): its behaviour "
                         "measured the same way, side by side")
    ex.add_argument("--write-card", action="store_true",
                    help="write the envelope it was verified in into its model card "
                         "(`trust`), so that `run` warns outside it")
    ex.set_defaults(func=cmd_explain)
    run = sub.add_parser("run", help="run a policy on a robot from a launch file")
    run.add_argument("launch", type=Path, help="deploy launch file (see launch/*_sim.yaml)")
    run.add_argument("--duration", type=float, default=None,
                     help="seconds to run (default: the launch file's, else until Ctrl-C)")
    run.add_argument("--no-status", action="store_true", help="no live status line")
    run.add_argument("--policy", type=Path, default=None,
                     help="run this policy file instead of the launch file's")
    run.add_argument("--json", type=Path, default=None, help="write the summary here")
    run.set_defaults(func=cmd_run)
    dds = sub.add_parser("dds-robot", help="the simulated robot of a launch file, speaking "
                         "Unitree SDK2's DDS topics (the other end of backend unitree)")
    dds.add_argument("launch", type=Path, help="deploy launch file (see launch/g1_dds.yaml)")
    dds.add_argument("--duration", type=float, default=None, help="seconds (default: until "
                     "Ctrl-C or SIGTERM)")
    dds.add_argument("--status", type=Path, default=None,
                     help="write where the base went and the counters here at the end")
    dds.add_argument("--fault", choices=("corrupt", "stall", "die"), default=None,
                     help="fault injection, --fault-after seconds after the first command: "
                          "seal every state with a wrong CRC, stop stepping and publishing, "
                          "or die (SIGKILL)")
    dds.add_argument("--fault-after", type=float, default=1.0, help="seconds (--fault)")
    dds.add_argument("--motion-mode", default="ai",  # bridge.motion_switcher.BOOT_MODE
                     help="the motion-control mode it boots in, which a controller must "
                          "release before its commands count ('' = booted in debug mode)")
    dds.add_argument("--parent-pid", type=int, default=None,
                     help="stop when the process of this pid is no longer its parent (a "
                          "runner that started it and crashed)")
    dds.set_defaults(func=cmd_dds_robot)
    hil = sub.add_parser("hil", help="hardware-in-the-loop check of a bridge board, or of "
                         "the deploy path over DDS (--dds)")
    hil.add_argument("--port", default=None, help="serial device or pyserial URL of the board")
    hil.add_argument("--emulate", action="store_true",
                     help="run against the firmware emulator on a pseudo-terminal")
    hil.add_argument("--sim-plant", action="store_true",
                     help="with --emulate: the emulator's motors are the simulated robot's joints")
    hil.add_argument("--robot", default="spot",
                     help="robot spec giving joints and limits (default: %(default)s)")
    hil.add_argument("--baud", type=int, default=1_000_000,
                     help="UART rate of the board, bit/s (default: %(default)s)")
    hil.add_argument("--report", type=Path, default=Path("out/hil/report.json"),
                     help="JSON report to write (default: %(default)s)")
    hil.add_argument("--dds", type=Path, nargs="?", const=Path("launch/g1_dds.yaml"),
                     default=None, metavar="LAUNCH",
                     help="run LAUNCH (default launch/g1_dds.yaml) over DDS against the "
                          "simulated robot and compare with the direct simulated path")
    hil.add_argument("--duration", type=float, default=10.0,
                     help="with --dds: seconds (default: %(default)s)")
    hil.set_defaults(func=cmd_hil)
    plot = sub.add_parser("plot", help="plot a telemetry file to PNG")
    plot.add_argument("telemetry", type=Path, help="telemetry file written by run or demo")
    plot.add_argument("--out", type=Path, default=None,
                      help="PNG to write (default: beside the telemetry file)")
    plot.add_argument("--joints", default=None,
                      help="joints to plot: all, or names or numbers separated by commas "
                           "(default: the first three)")
    plot.set_defaults(func=cmd_plot)
    names = ", ".join(BENCHMARKS)
    bench = sub.add_parser("bench", help=f"run a benchmark: {names}")
    bench.add_argument("name", help=f"one of: {names}")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--json", type=Path, default=None, help="write the result here")
    bench.add_argument("--recipe", type=Path, default=None,
                       help="bench walk: train this recipe instead of the fast one; "
                            "bench imitation: the distillation recipe (env and teacher)")
    bench.set_defaults(func=cmd_bench)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of `velora-robot`; returns the exit status."""
    from velora_robot.hal.base import HardwareError

    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # `kill` stops like Ctrl-C: env workers closed, temporary folders removed (the
        # control loop installs its own handlers, which put the robot in damping)
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        args.func(args)
    except (UserError, ValueError, HardwareError) as exc:
        print(f"velora-robot {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or device the user named: say which and why
        where = exc.filename if exc.filename is not None else "system call"
        print(f"velora-robot {args.verb}: error: {where}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"velora-robot {args.verb}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
