"""Training: learning happens, resume is exact, checkpoints are atomic, recipes and wandb."""

import json
import math
import os
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError

from velora_robot.errors import ConfigError
from velora_robot.rl import Recipe, checkpoint, load_recipe, train
from velora_robot.rl.trainer import CHECKPOINT, load_checkpoint


def recipe(tmp_path, name, **changes) -> Recipe:
    base = {
        "name": name, "seed": 3,
        "env": {"id": "velora_robot/JointTrack-v0", "n_envs": 4, "n_workers": 2},
        "policy": {"kind": "liquid", "n_neurons": 6},
        "algorithm": {"steps_per_env": 32, "chunk_len": 8, "epochs": 2, "minibatches": 2},
        "budget": {"env_steps": 3 * 4 * 32},
        "logging": {"dir": str(tmp_path), "checkpoint_every": 1},
        "eval": {"episodes": 0},
    }
    for key, value in changes.items():
        replace = not isinstance(value, dict) or (key == "algorithm" and "name" in value)
        base[key] = value if replace else {**base.get(key, {}), **value}
    if not base["env"]["id"].startswith("velora_robot/"):  # gymnasium envs: one process
        base["env"].setdefault("n_workers", 1)
        if "n_workers" not in changes.get("env", {}):
            base["env"]["n_workers"] = 1
    return Recipe.model_validate(base)


@pytest.mark.parametrize("overlap", [False, True])
def test_a_short_run_improves_the_return_on_inverted_pendulum(tmp_path, overlap):
    r = recipe(tmp_path, "pendulum", env={"id": "InvertedPendulum-v5", "n_envs": 8},
               policy={"n_neurons": 12}, algorithm={"steps_per_env": 64, "chunk_len": 16,
                                                     "epochs": 5, "minibatches": 4, "lr": 1e-3,
                                                     "overlap": overlap},
               budget={"env_steps": 15_000}, logging={"checkpoint_every": 100},
               eval={"episodes": 3})
    summary = train(r, progress=False)
    rows = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    early = [row["return_mean"] for row in rows[:3] if row["return_mean"] is not None]
    assert summary["return_mean"] > 2 * max(early)
    assert (r.run_dir / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["eval"]["return_mean"] > 0 and (r.run_dir / "eval.json").exists()


def test_resume_after_a_stop_makes_the_same_next_update(tmp_path):
    straight = recipe(tmp_path / "a", "run")
    train(straight, progress=False)
    expected = load_checkpoint(straight.run_dir / CHECKPOINT)

    stopped = recipe(tmp_path / "b", "run", env={"kwargs": {}})
    train(stopped, progress=False, stop_after=2)
    assert load_checkpoint(stopped.run_dir / CHECKPOINT)["update"] == 2
    train(stopped, resume=True, progress=False)
    resumed = load_checkpoint(stopped.run_dir / CHECKPOINT)

    assert resumed["update"] == expected["update"] == 3
    for key, value in expected["agent"].items():
        assert torch.equal(value, resumed["agent"][key]), key
    lines = (stopped.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["update"] for line in lines] == [1, 2, 3]


def test_overlapped_physics_and_learning_is_reproducible_and_resumes_exactly(tmp_path):
    # The next rollout is collected on a thread while the learner updates: the same seed
    # gives the same weights, a stop and resume (the rollout in flight saved with the
    # checkpoint) gives them too, and they differ from the turn-taking run's (the acting
    # policy is one update behind).
    def run(folder, stop_after=None, overlap=True):
        r = recipe(tmp_path / folder, "run", env={"n_workers": 1, "threads": 2},
                   algorithm={"overlap": overlap}, budget={"env_steps": 4 * 4 * 32})
        train(r, progress=False, stop_after=stop_after)
        if stop_after is not None:
            assert load_checkpoint(r.run_dir / CHECKPOINT)["overlap"]["rollout"] is not None
            train(r, resume=True, progress=False)
        return load_checkpoint(r.run_dir / CHECKPOINT)

    first, again, resumed = run("a"), run("b"), run("c", stop_after=2)
    turns = run("d", overlap=False)
    for key, value in first["agent"].items():
        assert torch.equal(value, again["agent"][key]), key
        assert torch.equal(value, resumed["agent"][key]), key
    assert first["update"] == resumed["update"] == 4 and first["overlap"]["rollout"] is None
    assert not torch.equal(first["agent"]["actor.cell.w"], turns["agent"]["actor.cell.w"])


def test_processes_and_physics_threads_change_the_speed_not_the_run(tmp_path):
    runs = []
    for workers, threads in ((2, 1), (1, 2), (1, 1)):
        r = recipe(tmp_path / f"{workers}{threads}", "run",
                   env={"n_workers": workers, "threads": threads})
        train(r, progress=False)
        runs.append(load_checkpoint(r.run_dir / CHECKPOINT)["agent"])
    for other in runs[1:]:
        for key, value in runs[0].items():
            assert torch.equal(value, other[key]), key


def test_resume_refuses_a_different_recipe(tmp_path):
    train(recipe(tmp_path, "run"), progress=False, stop_after=1)
    with pytest.raises(ConfigError, match="different recipe"):
        train(recipe(tmp_path, "run", seed=4), resume=True, progress=False)
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(recipe(tmp_path, "other"), resume=True, progress=False)


def test_a_checkpoint_from_an_env_with_another_observation_is_refused_by_name(tmp_path):
    # as when the env's observation changed since the run: a clear error, not torch's
    # size-mismatch traceback, and the checkpoint left as it was
    train(recipe(tmp_path, "run"), progress=False, stop_after=1)
    path = tmp_path / "run" / CHECKPOINT
    ckpt = load_checkpoint(path)
    ckpt["obs_dim"] += 3
    checkpoint.save(ckpt, path)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"'run': --resume: .*checkpoint.pt has \(obs, "
                                          r"action, privileged\) sizes"):
        train(recipe(tmp_path, "run"), resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"'init_from': .*sizes"):
        train(recipe(tmp_path, "stage", init_from=str(path)), progress=False)
    assert path.read_bytes() == before


def test_resume_with_a_larger_budget_extends_the_run(tmp_path):
    train(recipe(tmp_path, "run"), progress=False)
    summary = train(recipe(tmp_path, "run", budget={"env_steps": 4 * 4 * 32}), resume=True,
                    progress=False)
    assert summary["updates"] == 4
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["update"] for line in lines] == [1, 2, 3, 4]


def test_a_stage_starts_from_an_earlier_runs_networks_and_counts_its_training(tmp_path):
    first = recipe(tmp_path, "stage1")
    train(first, progress=False)
    done = load_checkpoint(first.run_dir / CHECKPOINT)
    path = str(first.run_dir / CHECKPOINT)
    second = recipe(tmp_path, "stage2", init_from=path, budget={"env_steps": 4 * 32})
    train(second, progress=False)
    after = load_checkpoint(second.run_dir / CHECKPOINT)
    assert after["init"] == {"checkpoint": path, "recipe": "stage1", "env_steps": 3 * 4 * 32,
                             "wall_s": done["wall_s"]}
    # the normalizer went on counting from the first stage's samples
    assert after["agent"]["obs_norm.count"] == done["agent"]["obs_norm.count"] + 4 * 32
    third = recipe(tmp_path, "stage3", init_from=str(second.run_dir / CHECKPOINT),
                   budget={"env_steps": 4 * 32})
    train(third, progress=False)
    assert load_checkpoint(third.run_dir / CHECKPOINT)["init"]["env_steps"] == 4 * 4 * 32


def test_a_stage_starts_at_the_earlier_runs_adapted_learning_rate(tmp_path, monkeypatch):
    from velora_robot.rl import ppo

    first = recipe(tmp_path, "stage1")
    train(first, progress=False)
    done = load_checkpoint(first.run_dir / CHECKPOINT)
    done["algo"]["lr"] = 2e-5  # as a long run's KL-adapted rate ends up
    path = tmp_path / "adapted.pt"
    checkpoint.save(done, path)
    seen = []
    update = ppo.PPO.update

    def record(self, *args, **kwargs):
        seen.append(self.lr)
        return update(self, *args, **kwargs)

    monkeypatch.setattr(ppo.PPO, "update", record)
    train(recipe(tmp_path, "stage2", init_from=str(path), budget={"env_steps": 4 * 32}),
          progress=False)
    assert seen == [2e-5]  # not the recipe's 1e-3 with fresh optimizer moments
    seen.clear()  # a recipe asking for less than the earlier run ended with keeps its own
    train(recipe(tmp_path, "stage3", init_from=str(path), budget={"env_steps": 4 * 32},
                 algorithm={"lr": 1e-5}), progress=False)
    assert seen == [1e-5]


def test_a_run_stalled_at_the_learning_rates_floor_is_told_to_use_more_samples(
        tmp_path, monkeypatch, capsys):
    from velora_robot.rl import loops, ppo

    monkeypatch.setattr(loops, "STALL_WINDOW", 3)
    update = ppo.PPO.update

    def stalled(self, *args, **kwargs):  # as the G1's updates at 6,144 samples went
        return {**update(self, *args, **kwargs), "lr": 1e-5, "kl": 0.012}

    monkeypatch.setattr(ppo.PPO, "update", stalled)
    train(recipe(tmp_path, "stalled", budget={"env_steps": 5 * 4 * 32}), progress=False)
    err = capsys.readouterr().err
    assert err.count("learning rate has sat near its floor") == 1  # said once, not per update
    assert "env.n_envs x algorithm.steps_per_env is 128" in err
    monkeypatch.setattr(ppo.PPO, "update", update)  # a rate that adapts freely says nothing
    train(recipe(tmp_path, "free", budget={"env_steps": 5 * 4 * 32}), progress=False)
    assert "floor" not in capsys.readouterr().err


def test_the_stall_warning_needs_both_a_floored_rate_and_a_kl_at_its_target():
    from velora_robot.rl.loops import StepSizeWatch

    def warned(lr, kl):
        watch = StepSizeWatch(1e-5, 0.01, 6144, window=4)
        return [watch.see({"lr": lr, "kl": kl}) for _ in range(4)]

    stalled = warned(1e-5, 0.012)
    assert stalled[:3] == [None] * 3 and "6,144" in stalled[3]
    assert warned(3e-4, 0.012) == [None] * 4  # the rate moves: learning
    assert warned(1e-5, 0.001) == [None] * 4  # at the floor but barely moving: converged
    watch = StepSizeWatch(1e-5, 0.01, 6144, window=2)
    imitating = {"lr": 1e-5, "kl": 0.5, "imitating": 1}  # the rate holds while a teacher teaches
    assert [watch.see(imitating) for _ in range(3)] == [None] * 3


def test_a_stages_learning_curve_continues_the_earlier_stages(tmp_path):
    from velora_robot.export.exporter import export, history
    from velora_robot.runtime import load_card

    first = recipe(tmp_path, "stage1")
    train(first, progress=False)  # 3 updates of 128 steps
    path = first.run_dir / CHECKPOINT
    kept = first.run_dir / "at_stage2.pt"  # the checkpoint the stage starts from, kept
    kept.write_bytes(path.read_bytes())
    second = recipe(tmp_path, "stage2", init_from=str(path), budget={"env_steps": 2 * 4 * 32})
    train(second, progress=False)
    # the first run goes on after the stage began: its later rows are not the stage's past
    train(recipe(tmp_path, "stage1", budget={"env_steps": 5 * 4 * 32}), resume=True,
          progress=False)
    ckpt = load_checkpoint(second.run_dir / CHECKPOINT)
    ckpt["init"]["checkpoint"] = str(kept)
    rows, stages = history(ckpt, second.run_dir / CHECKPOINT)
    assert [r["env_steps"] for r in rows] == [128, 256, 384, 512, 640]
    assert [r["update"] for r in rows] == [1, 2, 3, 1, 2]
    assert stages == [(0, "stage1"), (384, "stage2")]
    ckpt["init"]["checkpoint"] = str(path)  # the live checkpoint, 2 updates further on
    assert [r["env_steps"] for r in history(ckpt, second.run_dir / CHECKPOINT)[0]] == [
        128, 256, 384, 512, 640]
    # an earlier stage whose files are gone leaves a gap, not an error
    ckpt["init"]["checkpoint"] = str(tmp_path / "gone.pt")
    rows, stages = history(ckpt, second.run_dir / CHECKPOINT)
    assert [r["env_steps"] for r in rows] == [512, 640]
    assert stages == [(384, "stage2")]
    written = export(second.run_dir / CHECKPOINT, "onnx", tmp_path / "s2.onnx")
    assert written["curve"].read_bytes()[:4] == b"\x89PNG"
    # the card counts the whole curriculum's training (as the demo and eval report it)
    steps, wall = load_card(written["card"]).trained()
    assert steps == 640 and wall == pytest.approx(ckpt["wall_s"] + ckpt["init"]["wall_s"])


def test_a_stage_refuses_a_missing_or_mismatched_checkpoint(tmp_path):
    train(recipe(tmp_path, "stage1"), progress=False, stop_after=1)
    path = str(tmp_path / "stage1" / CHECKPOINT)
    with pytest.raises(ConfigError, match="'init_from': no checkpoint"):
        train(recipe(tmp_path, "a", init_from=str(tmp_path / "none.pt")), progress=False)
    with pytest.raises(ConfigError, match=r"'init_from'.*policy"):
        train(recipe(tmp_path, "b", init_from=path, policy={"n_neurons": 8}), progress=False)


def test_checkpoints_are_written_atomically(tmp_path):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        checkpoint.save({"step": 2, "bad": Unpicklable()}, path)
    assert checkpoint.load(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["algorithm"].update(chunk_len=7), r"field 'algorithm': steps_per_env \(32\) "
                                                    r"must be a multiple of chunk_len \(7\)"),
    (lambda d: d["policy"].update(kind="lstm"), "field 'policy.kind'"),
    (lambda d: d.pop("budget"), "field 'budget': Field required"),
    (lambda d: d["env"].update(n_envz=3), "field 'env.n_envz': unknown field"),
    (lambda d: d["env"].update(id="InvertedPendulum-v9"),
     "field 'env.id': unknown environment 'InvertedPendulum-v9'; did you mean"),
])
def test_a_malformed_recipe_names_file_field_and_reason(tmp_path, edit, message):
    data = recipe(tmp_path, "bad").model_dump()
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message) as err:
        load_recipe(path)
    assert str(path) in str(err.value)


def test_an_unreadable_recipe_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_recipe(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("env: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(tmp_path / "broken.yaml")


def test_a_recipe_extends_another_changing_only_the_fields_it_writes(tmp_path):
    base = recipe(tmp_path, "base").model_dump()
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "stages").mkdir()
    stage = tmp_path / "stages" / "stage.yaml"
    stage.write_text("extends: ../base.yaml\nname: stage\nalgorithm: {lr: 0.0001}\n"
                     "env: {kwargs: {randomization: {enabled: true}}}\n")
    (tmp_path / "stages" / "stage2.yaml").write_text("extends: stage.yaml\nname: stage2\n")
    got = load_recipe(tmp_path / "stages" / "stage2.yaml").model_dump()
    expected = {**base, "name": "stage2", "algorithm": {**base["algorithm"], "lr": 0.0001},
                "env": {**base["env"], "kwargs": {**base["env"]["kwargs"],
                                                  "randomization": {"enabled": True}}}}
    assert got == expected


@pytest.mark.parametrize("files,message", [
    ({"a.yaml": "extends: gone.yaml\nname: a\n"}, r"a.yaml: field 'extends': no recipe at"),
    ({"a.yaml": "extends: b.yaml\nname: a\n", "b.yaml": "extends: a.yaml\nname: b\n"},
     "a cycle"),
    ({"a.yaml": "extends: [b.yaml]\n"}, "field 'extends': expected a recipe file name"),
    ({"a.yaml": "extends: b.yaml\nname: a\n", "b.yaml": "env: [unclosed"},
     r"b.yaml: not valid YAML"),
    ({"a.yaml": "extends: b.yaml\nname: a\n", "b.yaml": "name: b\n"},
     r"a.yaml: field 'env': Field required"),
])
def test_a_bad_extends_is_a_clear_error_naming_the_file(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(tmp_path / "a.yaml")


def test_wandb_offline_writes_its_files_without_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_SILENT", "true")
    r = recipe(tmp_path, "wb", budget={"env_steps": 4 * 32})
    train(r, wandb=True, progress=False)
    runs = list((r.run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert os.environ["WANDB_MODE"] == "offline"


@pytest.mark.parametrize("algo,critic", [("sac", "mlp"), ("td3", "mlp"), ("sac", "liquid"),
                                         ("td3", "liquid")])
def test_off_policy_runs_learn_and_resume_exactly_with_their_replay(tmp_path, algo, critic):
    changes = {"algorithm": {"name": algo, "batch_size": 16, "seq_len": 4, "burn_in": 2,
                             "learning_starts": 64, "steps_per_iteration": 24,
                             "critic": critic, "critic_hidden": [32, 32],
                             "critic_neurons": 6},
               "budget": {"env_steps": 3 * 4 * 24}}
    straight = recipe(tmp_path / "a", "run", **changes)
    summary = train(straight, progress=False)
    expected = load_checkpoint(straight.run_dir / CHECKPOINT)
    assert summary["updates"] == 3 and expected["replay"]["size"] == 72
    assert "critic_loss" in json.loads(
        (straight.run_dir / "metrics.jsonl").read_text().splitlines()[-1])

    stopped = recipe(tmp_path / "b", "run", **changes)
    train(stopped, progress=False, stop_after=2)
    train(stopped, resume=True, progress=False)
    resumed = load_checkpoint(stopped.run_dir / CHECKPOINT)
    for key, value in expected["agent"].items():
        assert torch.equal(value, resumed["agent"][key]), key
    for key in ("q1", "q2"):
        for name, value in expected["algo"][key].items():
            assert torch.equal(value, resumed["algo"][key][name]), (key, name)


def test_sequence_replay_never_samples_across_the_write_point():
    import numpy as np

    from velora_robot.rl.replay import SequenceReplay

    replay = SequenceReplay(n_envs=2, capacity=10, obs_dim=1, act_dim=1, state_size=0)
    for t in range(23):  # wraps twice; the oldest kept step is 13
        replay.add(obs=np.full((2, 1), t), next_obs=np.full((2, 1), t + 1),
                   action=np.zeros((2, 1)), reward=np.zeros(2), terminated=np.zeros(2),
                   start=np.zeros(2, bool), hidden=np.zeros((2, 0)))
    batch = replay.sample(200, 4, torch.Generator().manual_seed(0))
    steps = batch["obs"][..., 0]
    assert torch.all(steps[:, 1:] - steps[:, :-1] == 1) and steps.min() >= 13
    assert steps.max() == 22


def test_on_update_can_end_a_run_early(tmp_path):
    seen = []

    def stop_at_second(update, env_steps, agent):
        seen.append((update, env_steps))
        return update == 2

    summary = train(recipe(tmp_path, "early"), progress=False, on_update=stop_at_second)
    assert seen == [(1, 128), (2, 256)] and summary["updates"] == 2


def test_a_liquid_critic_values_the_taken_actions_as_its_own_sequence_does():
    from velora_robot.rl.normalizer import RunningNorm
    from velora_robot.rl.off_policy import OffPolicy
    from velora_robot.rl.policies import LiquidActor

    algo = OffPolicy(LiquidActor(3, 2, n_neurons=6), RunningNorm(3), 3, 2, critic="liquid",
                     critic_neurons=6)
    gen = torch.Generator().manual_seed(0)
    start = torch.zeros(4, 5, dtype=torch.bool)
    start[1, 2] = True
    b = {"obs": torch.randn(4, 5, 3, generator=gen), "action": torch.rand(4, 5, 2) * 2 - 1,
         "start": start, "critic_h0": {"q1": torch.randn(4, 6) * 0.1}}
    along, _ = algo.q1(torch.cat([b["obs"], b["action"]], -1), b["critic_h0"]["q1"],
                       resets=start)
    torch.testing.assert_close(algo._q_for(b, "q1", b["action"]), along, atol=1e-5, rtol=0)


def test_the_bound_loss_pulls_ppo_means_back_into_the_action_range():
    from velora_robot.rl.policies import MLPActor, MLPCritic
    from velora_robot.rl.ppo import PPO
    from velora_robot.rl.storage import RolloutStorage

    torch.manual_seed(0)
    actor, critic = MLPActor(3, 2, hidden=[16]), MLPCritic(3, [16])
    with torch.no_grad():
        actor.net[-1].bias.fill_(3.0)  # means far outside [-1, 1]
    algo = PPO(actor, critic, lr=1e-2, chunk_len=4, minibatches=1, epochs=10, bound_coef=1.0,
               desired_kl=None)
    storage = RolloutStorage(8, 4, 3, 3, 2, 0)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(8, 4, 3)
    for t in range(8):
        action, logp, mean, _ = algo.act(obs[t], storage.hidden[t], torch.zeros(4, dtype=bool), g)
        storage.obs[t], storage.critic_obs[t] = obs[t], obs[t]
        storage.actions[t], storage.logp[t], storage.mean[t] = action, logp, mean
    storage.compute_returns(torch.zeros(4), 0.99, 0.95)
    before = actor(obs[:1].transpose(0, 1))[0].abs().mean()
    algo.update(storage, g)
    after = actor(obs[:1].transpose(0, 1))[0].abs().mean()
    assert before > 2.5 and after < before - 0.5


def test_ppo_explores_with_a_held_noise_when_the_recipe_sets_action_std():
    from velora_robot.rl.policies import MLPActor, MLPCritic
    from velora_robot.rl.ppo import PPO
    from velora_robot.rl.storage import RolloutStorage

    torch.manual_seed(0)
    actor, critic = MLPActor(3, 2, hidden=[16], init_log_std=-0.5), MLPCritic(3, [16])
    algo = PPO(actor, critic, lr=1e-2, chunk_len=4, minibatches=1, epochs=2, action_std=0.1)
    storage = RolloutStorage(8, 64, 3, 3, 2, 0)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(8, 64, 3)
    spread = []
    for t in range(8):
        action, logp, mean, _ = algo.act(obs[t], storage.hidden[t], torch.zeros(64, dtype=bool), g)
        spread.append(action - mean)
        storage.obs[t], storage.critic_obs[t] = obs[t], obs[t]
        storage.actions[t], storage.logp[t], storage.mean[t] = action, logp, mean
        storage.rewards[t] = torch.randn(64)
    assert torch.cat(spread).std().item() == pytest.approx(0.1, rel=0.1)  # not exp(-0.5)
    storage.compute_returns(torch.zeros(64), 0.99, 0.95)
    metrics = algo.update(storage, g)
    # the learned log_std is left alone; the entropy is the held noise's
    assert torch.equal(actor.log_std, torch.full((2,), -0.5))
    held = 2 * (math.log(0.1) + 0.5 * (1 + math.log(2 * math.pi)))
    assert metrics["entropy"] == pytest.approx(held)


def test_ppo_exploration_noise_never_grows_past_the_action_range():
    # Actions are clipped to [-1, 1]: a wider noise explores nothing, and the entropy bonus
    # alone must not widen it (the G1's learned noise grew to a standard deviation of 10).
    from velora_robot.rl.policies import MLPActor, MLPCritic
    from velora_robot.rl.ppo import PPO
    from velora_robot.rl.storage import RolloutStorage

    torch.manual_seed(0)
    actor, critic = MLPActor(3, 2, hidden=[16], init_log_std=-0.1), MLPCritic(3, [16])
    algo = PPO(actor, critic, lr=0.1, chunk_len=4, minibatches=1, epochs=20,
               entropy_coef=1.0, desired_kl=None)
    storage = RolloutStorage(8, 64, 3, 3, 2, 0)
    g = torch.Generator().manual_seed(0)
    for t in range(8):
        obs = torch.randn(64, 3)
        action, logp, mean, _ = algo.act(obs, storage.hidden[t], torch.zeros(64, dtype=bool), g)
        storage.obs[t], storage.critic_obs[t] = obs, obs
        storage.actions[t], storage.logp[t], storage.mean[t] = action, logp, mean
    storage.compute_returns(torch.zeros(64), 0.99, 0.95)
    algo.update(storage, g)
    assert actor.log_std.min().item() > 0.0  # the bonus pushed the parameter past 1 ...
    spread = algo.act(torch.zeros(4096, 3), storage.hidden[0], torch.zeros(4096, dtype=bool),
                      g)[0] - algo.act(torch.zeros(1, 3), storage.hidden[0][:1],
                                       torch.zeros(1, dtype=bool), g)[2]
    assert spread.std().item() == pytest.approx(1.0, rel=0.05)  # ... the noise stops at 1


def test_a_run_resumes_after_a_setting_it_predates_was_added_with_its_old_default(tmp_path):
    train(recipe(tmp_path, "run"), progress=False, stop_after=1)
    path = tmp_path / "run" / CHECKPOINT
    ckpt = load_checkpoint(path)
    del ckpt["recipe"]["algorithm"]["action_std"]  # as saved before the field existed
    checkpoint.save(ckpt, path)
    assert train(recipe(tmp_path, "run"), resume=True, progress=False)["updates"] == 3


class _WritesAFile:
    """What a crafted pickle does: run code while it is loaded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_a_crafted_checkpoint_never_runs_code_on_export_resume_or_init_from(tmp_path):
    from velora_robot.cli import main

    train(recipe(tmp_path, "run"), progress=False, stop_after=1)
    path = tmp_path / "run" / CHECKPOINT
    proof = tmp_path / "pwned"
    torch.save({**load_checkpoint(path), "payload": _WritesAFile(proof)}, path)
    with pytest.raises(ConfigError, match="refused: it holds Python objects"):
        train(recipe(tmp_path, "run"), resume=True, progress=False)
    with pytest.raises(ConfigError, match="refused: it holds Python objects"):
        train(recipe(tmp_path, "b", init_from=str(path)), progress=False)
    assert main(["export", str(path)]) == 2
    assert not proof.exists()


def test_an_old_format_checkpoint_is_refused_with_a_way_to_convert_a_trusted_one(
        tmp_path, capsys):
    import numpy as np

    from velora_robot.cli import main

    train(recipe(tmp_path, "run"), progress=False, stop_after=2)
    path = tmp_path / "run" / CHECKPOINT
    new = load_checkpoint(path)
    old = {k: v for k, v in new.items()}  # as pickled before: numpy arrays as themselves
    old["carry"] = {**new["carry"], "obs": np.asarray(new["carry"]["obs"])}
    torch.save(old, path)  # plain torch.save: numpy arrays pickled as objects
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert "velora-robot convert-checkpoint" in err and "Traceback" not in err
    assert main(["convert-checkpoint", str(path)]) == 0
    converted = load_checkpoint(path)
    np.testing.assert_array_equal(converted["carry"]["obs"], new["carry"]["obs"])
    assert train(recipe(tmp_path, "run"), resume=True, progress=False)["updates"] == 3


def test_training_again_without_resume_or_overwrite_leaves_the_earlier_run_untouched(tmp_path):
    train(recipe(tmp_path, "run"), progress=False, stop_after=2)
    run_dir = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(ConfigError, match=r"already holds a run \(checkpoint.pt, "
                                          r"metrics.jsonl.*continue it with --resume"):
        train(recipe(tmp_path, "run"), progress=False)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    summary = train(recipe(tmp_path, "run"), overwrite=True, progress=False, stop_after=1)
    assert summary["updates"] == 1 and load_checkpoint(run_dir / CHECKPOINT)["update"] == 1
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["update"] for line in lines] == [1]


def test_progress_says_when_it_compiles_and_takes_the_eta_from_after_the_warm_up(tmp_path,
                                                                                capsys):
    from velora_robot.rl.trainer import _Progress

    bar = _Progress(100, enabled=True, compiling=True)
    bar.start()
    bar.show(1, 512, 40.0, (1.0, 39.0), None)  # the first update: 40 s of compiling
    for update in range(2, 11):
        bar.show(update, 512 * update, 0.5, (0.3, 0.2), 1.0)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("compiling the liquid C kernels")
    assert lines[1].endswith("ETA after warm-up")
    # 90 updates left at 0.5 s each: 45 s (the 40-s first update does not count)
    assert lines[-1].endswith("ETA 00:00:45") and "collect  60% learn  40%" in lines[-1]
    bar.show(20, 512 * 20, 0.5, (0.3, 0.2), 1.0, 0.25)  # a task that reports its error
    assert "return     1.00  error 0.250  collect" in capsys.readouterr().err
    bar.show(30, 512 * 30, 0.5, (0.3, 0.2), 1.0, 0.25, 0.4)  # a randomization curriculum
    assert "error 0.250  ranges 0.4  collect" in capsys.readouterr().err
    rows = [json.loads(line) for line in (train(recipe(tmp_path, "run"), progress=False)
                                           and (tmp_path / "run" / "metrics.jsonl")
                                           .read_text().splitlines())]
    assert all(r["collect_s"] > 0 and r["learn_s"] > 0 for r in rows)


def test_converting_an_old_checkpoint_builds_only_arrays_and_draws_and_runs_no_code(tmp_path):
    import numpy as np

    from velora_robot.simulation.randomization import Draw

    draw = Draw(friction=0.5, mass_scale=np.ones(3), payload_kg=0.1, com_shift_m=np.zeros(3),
                motor_strength=1.0, kp_scale=1.0, kd_scale=1.0, latency_steps=2)
    old = tmp_path / "old.pt"
    torch.save({"recipe": {}, "agent": {}, "draw": draw, "obs": np.arange(3.0)}, old)
    converted = checkpoint.load(checkpoint.convert(old))
    assert (converted["draw"]["latency_steps"], converted["draw"]["sensor_latency_steps"]) == (
        2, 0)
    np.testing.assert_array_equal(converted["obs"], np.arange(3.0))
    proof = tmp_path / "pwned"
    crafted = tmp_path / "crafted.pt"
    torch.save({"recipe": {}, "agent": {}, "payload": _WritesAFile(proof)}, crafted)
    with pytest.raises(ConfigError, match="not a torch checkpoint"):
        checkpoint.convert(crafted)
    assert not proof.exists()


def test_action_std_holds_from_its_env_step_on(tmp_path):
    """Learned noise until `action_std_from`, the fixed noise after it: the stored log-probs
    of the rollouts say which noise acted."""
    import math

    r = recipe(tmp_path, "noise", algorithm={"action_std": 0.1, "action_std_from": 2 * 4 * 32,
                                             "epochs": 1})
    from velora_robot.rl import loops

    logps = []
    original = loops.collect_rollout

    def collect(env, agent, algo, storage, *args):
        carry = original(env, agent, algo, storage, *args)
        logps.append((algo.noise_log_std().mean().item(), algo.hold_noise))
        return carry

    loops.collect_rollout = collect
    try:
        train(r, progress=False)
    finally:
        loops.collect_rollout = original
    assert [held for _, held in logps] == [False, False, True]
    assert logps[0][0] != pytest.approx(math.log(0.1))
    assert logps[2][0] == pytest.approx(math.log(0.1))


def test_the_randomization_curriculum_starts_nominal_and_widens_as_episodes_succeed(tmp_path):
    from velora_robot.simulation.randomization import Randomization

    full = Randomization(enabled=True)
    nominal, half = full.narrowed(0.0), full.narrowed(0.5)
    assert nominal.latency_s == (0.0, 0.0) and nominal.push_velocity == (0.0, 0.0)
    assert nominal.friction == (0.7, 0.7) and nominal.obs_noise_scale == 0.0
    assert half.mass_scale == pytest.approx((0.95, 1.05)) and full.narrowed(1.0) is full
    from velora_robot.envs import SpotWalkTask

    task = SpotWalkTask(1, randomization={"enabled": True})
    task.set_randomization_level(0.0)
    task.reset(0, seed=1)
    draw = task.batch.draws[0]
    assert draw.friction == 0.7 and draw.latency_steps == 0 and draw.payload_kg == 0.0
    task.set_randomization_level(1.0)
    task.reset(0, seed=1)
    assert task.batch.draws[0].friction != 0.7

    def run(folder, stop_after=None):
        r = recipe(tmp_path / folder, "run",
                   env={"kwargs": {"randomization": {"enabled": True}, "episode_s": 0.2}},
                   curriculum={"start": 0.0, "step": 0.5, "window": 4},
                   budget={"env_steps": 4 * 4 * 32})
        train(r, progress=False, stop_after=stop_after)
        if stop_after is not None:
            train(r, resume=True, progress=False)
        rows = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text()
                .splitlines()]
        return [row["randomization_level"] for row in rows], load_checkpoint(
            r.run_dir / CHECKPOINT)

    levels, straight = run("a")
    assert levels[0] == 0.5 and levels[-1] == 1.0 and levels == sorted(levels)
    strict = recipe(tmp_path / "c", "run",
                    env={"kwargs": {"randomization": {"enabled": True}, "episode_s": 0.2}},
                    curriculum={"start": 0.0, "step": 0.5, "window": 4, "min_return": 1e9},
                    budget={"env_steps": 4 * 4 * 32})
    train(strict, progress=False)  # no episode returns that much: the ranges stay nominal
    assert load_checkpoint(strict.run_dir / CHECKPOINT)["curriculum"]["level"] == 0.0
    resumed_levels, resumed = run("b", stop_after=1)
    assert resumed_levels == levels
    for key, value in straight["agent"].items():
        assert torch.equal(value, resumed["agent"][key]), key


def test_a_curriculum_gated_on_tracking_error_widens_only_for_episodes_that_track(
        tmp_path, monkeypatch):
    def level(name, max_error):
        r = recipe(tmp_path / name, "run",
                   env={"kwargs": {"randomization": {"enabled": True}, "episode_s": 0.2}},
                   curriculum={"start": 0.0, "step": 0.5, "window": 4,
                               "max_tracking_error": max_error},
                   budget={"env_steps": 4 * 4 * 32})
        train(r, progress=False)
        rows = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text()
                .splitlines()]
        errors = [row["tracking_error_mean"] for row in rows]
        return load_checkpoint(r.run_dir / CHECKPOINT)["curriculum"], errors

    loose, errors = level("loose", 10.0)  # every episode tracks within 10 rad
    assert loose["level"] == 1.0
    assert all(0 < e < 1.0 for e in errors)  # the mean |q - target| of the last episodes, rad
    strict, _ = level("strict", 1e-4)  # none within 0.1 mrad: the ranges stay nominal
    assert strict["level"] == 0.0
    assert len(strict["outcomes"]) == 4 and all(len(o) == 4 for o in strict["outcomes"])
    from velora_robot.envs.joint_track import JointTrackTask

    monkeypatch.setattr(JointTrackTask, "TRACKING_ERROR", None)
    with pytest.raises(ValidationError, match=r"max_tracking_error: .* reports no tracking"):
        recipe(tmp_path, "run", env={"kwargs": {"randomization": {"enabled": True}}},
               curriculum={"start": 0.0, "max_tracking_error": 0.1})


def test_a_widening_waits_for_episodes_that_began_at_the_new_level():
    from velora_robot.rl.recipe import CurriculumSection
    from velora_robot.rl.trainer import _Curriculum

    class Env:
        def __init__(self):
            self.levels = []

        def set_randomization_level(self, level):
            self.levels.append(level)

    env, limit, steps = Env(), 100, 25  # a 100-step time limit, rollouts of 25 steps
    curriculum = _Curriculum(CurriculumSection(start=0.0, step=0.1, success=0.6, window=4))
    widened_at = []
    for update in range(1, 31):  # every episode runs its time limit: every one succeeds
        curriculum.inbox.extend((True, 1.0, 0.0, limit) for _ in range(4))
        curriculum.after_update(env, steps)
        if env.levels and len(widened_at) < len(env.levels):
            widened_at.append(update)
    # the first widening on the start level's evidence; each next one only after a whole
    # time limit (4 rollouts) at the new level plus the rollout that shows it
    assert widened_at[:3] == [1, 6, 11]
    saved = curriculum.state_dict()
    again = _Curriculum(CurriculumSection(start=0.0, step=0.1, success=0.6, window=4))
    again.load_state_dict(saved)
    assert (again.level, again.level_steps, again.episode_steps) == (
        curriculum.level, curriculum.level_steps, limit)


def test_a_checkpoint_from_before_episodes_carried_their_error_resumes(tmp_path):
    from velora_robot.rl import checkpoint

    r = recipe(tmp_path, "run",
               env={"kwargs": {"randomization": {"enabled": True}, "episode_s": 0.2}},
               curriculum={"start": 0.0, "step": 0.5, "window": 50},
               budget={"env_steps": 5 * 4 * 32})  # 12 episodes an update
    train(r, progress=False, stop_after=2)
    path = r.run_dir / CHECKPOINT
    old = load_checkpoint(path)  # as written before: (return, length) pairs, no error sums
    old["recent_episodes"] = [e[:2] for e in old["recent_episodes"]]
    old["curriculum"]["outcomes"] = [o[:2] for o in old["curriculum"]["outcomes"]]
    for part in old["env_state"]:
        del part["errors"]
    assert old["recent_episodes"] and old["curriculum"]["outcomes"]
    checkpoint.save(old, path)
    summary = train(r, resume=True, progress=False)
    assert summary["updates"] == 5
    saved = load_checkpoint(path)
    assert all(len(e) == 3 for e in saved["recent_episodes"])
    # the window of 50 filled at the fifth update, outcomes of the old format among them
    assert saved["curriculum"]["level"] == 0.5


def test_a_curriculum_on_an_env_without_randomization_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="randomization is off"):
        recipe(tmp_path, "run", curriculum={"start": 0.0})


def test_a_student_without_a_bypass_learns_to_act_as_its_teacher_then_ppo_takes_over(
        tmp_path):
    teacher = "models/joint_track.onnx"  # 8 neurons and a linear bypass
    r = recipe(tmp_path, "student", env={"n_envs": 8, "n_workers": 1},
               policy={"n_neurons": 8, "residual": False},
               algorithm={"lr": 3e-3, "action_std": 0.1, "teacher": teacher,
                          "teacher_until": 8 * 32 * 120, "epochs": 5, "minibatches": 4},
               budget={"env_steps": 8 * 32 * 124}, logging={"checkpoint_every": 100})
    train(r, progress=False)
    rows = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["imitating"] for row in rows] == [1] * 120 + [0] * 4
    imitation = [row["policy_loss"] for row in rows[:120]]
    assert max(imitation[-5:]) < 0.05 * imitation[0]

    # its motor neurons alone now act as the teacher's neurons and bypass together
    from velora_robot.export import export
    from velora_robot.runtime import OnnxPolicy, load_card
    from velora_robot.runtime.card import card_path

    files = export(r.run_dir / CHECKPOINT, "onnx")
    card = load_card(card_path(files["policy"]))
    assert card.training.teacher.policy == teacher and card.training.teacher.env_steps > 0
    student, master = OnnxPolicy(files["policy"]), OnnxPolicy(teacher)
    env = gymnasium.make("velora_robot/JointTrack-v0")
    obs, _ = env.reset(seed=0)
    gaps = []
    for _ in range(500):
        action, expected = student(obs), master(obs)
        gaps.append(float(np.abs(action - expected).max()))
        obs, *_ = env.step(action)
    assert np.mean(gaps) < 0.1 and np.median(gaps) < 0.05


def test_a_distillation_run_resumes_exactly_across_the_switch_to_ppo(tmp_path):
    taught = {"teacher": "models/joint_track.onnx", "teacher_until": 2 * 4 * 32,
              "action_std": 0.1}
    straight = recipe(tmp_path / "a", "run", policy={"residual": False}, algorithm=taught)
    train(straight, progress=False)
    expected = load_checkpoint(straight.run_dir / CHECKPOINT)

    stopped = recipe(tmp_path / "b", "run", policy={"residual": False}, algorithm=taught)
    train(stopped, progress=False, stop_after=1)
    train(stopped, resume=True, progress=False)
    resumed = load_checkpoint(stopped.run_dir / CHECKPOINT)
    for key, value in expected["agent"].items():
        assert torch.equal(value, resumed["agent"][key]), key
    rows = [json.loads(line) for line in (stopped.run_dir / "metrics.jsonl").read_text()
            .splitlines()]
    assert [row["imitating"] for row in rows] == [1, 1, 0]


def test_tensorboard_and_periodic_evaluation_land_in_the_logs_and_the_curve(tmp_path):
    r = recipe(tmp_path, "tb", env={"n_workers": 1}, budget={"env_steps": 4 * 4 * 32},
               logging={"tensorboard": True}, eval={"episodes": 2, "every": 2})
    summary = train(r, progress=False)
    rows = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [row.get("eval_return") for row in rows]
    assert [e is not None for e in evals] == [False, True, False, True]
    assert evals[-1] == pytest.approx(summary["eval"]["return_mean"])  # same seeds, same agent
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(r.run_dir / "tensorboard"))
    events.Reload()
    assert {"value_loss", "eval_return", "steps_per_s"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("eval_return")] == [256, 512]
    train(recipe(tmp_path, "tb", env={"n_workers": 1}, logging={"tensorboard": True}),
          overwrite=True, progress=False)  # starting again removes the old events
    assert len(list((r.run_dir / "tensorboard").iterdir())) == 1


def test_evaluation_videos_are_written_at_the_chosen_updates(tmp_path):
    r = recipe(tmp_path, "video", env={"n_workers": 1}, budget={"env_steps": 4 * 4 * 32},
               eval={"episodes": 0, "video_every": 2, "video_s": 0.5})
    train(r, progress=False)
    videos = sorted(p.name for p in (r.run_dir / "videos").iterdir())
    assert videos == ["update_000002.gif", "update_000004.gif"]
    from PIL import Image

    gif = Image.open(r.run_dir / "videos" / videos[0])
    assert gif.n_frames >= 5 and gif.size == (480, 360)
    rows = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [("video" in row) for row in rows] == [False, True, False, True]


@pytest.mark.parametrize("name", ["g1_walk_mlp", "spot_walk_mlp"])
def test_an_mlp_teacher_labels_a_batch_as_its_runner_acts_on_each_robot(name):
    # g1_walk_mlp.onnx has a symbolic batch (one onnxruntime call for all robots);
    # spot_walk_mlp.onnx was exported with a batch of 1 (row by row)
    from velora_robot.rl.teacher import Teacher
    from velora_robot.runtime import OnnxPolicy

    path = Path("models") / f"{name}.onnx"
    teacher = Teacher(path, 47, 12, OnnxPolicy(path).card.training.env, "test")
    obs = np.random.default_rng(0).normal(size=(5, 47))
    starts = torch.tensor([True] * 5)
    action, state = teacher.act(obs, teacher.initial_state(5), starts)
    assert action.shape == (5, 12) and state.shape == (5, teacher.state_size)
    # the labels are the runner's actions inside what reaches the robot: [-1, 1], and the
    # part of it whose joint targets (default + action_scale * action) the limits let through
    spec = OnnxPolicy(path).card.robot
    q0 = np.array([j.default_pos for j in spec.joints])
    limits = np.array([j.pos_limit for j in spec.joints])
    acted = np.stack([OnnxPolicy(path)(row.astype(np.float32)) for row in obs])
    reached = np.clip(q0 + spec.action_scale * np.clip(acted, -1, 1), *limits.T)
    np.testing.assert_allclose(q0 + spec.action_scale * action.numpy(), reached, atol=1e-5)
    # the G1's ankle rolls reach their 0.26 rad limits at half the action range
    assert (np.abs(action.numpy() - acted) > 0.1).any() == (name == "g1_walk_mlp")
    assert teacher.record["env_steps"] > 0


def test_bench_imitation_fits_actors_to_a_teacher_on_the_teachers_own_states(tmp_path):
    from velora_robot.bench import imitation
    from velora_robot.liquid import NCPWiring

    r = recipe(tmp_path, "imitation", policy={"n_neurons": 8},
               algorithm={"teacher": "models/joint_track.onnx", "teacher_until": 1000,
                          "action_std": 0.1})
    data = imitation.collect(r, segments=1)
    assert data["obs"].shape[:2] == (128, 48) and data["labels"].shape == (128, 48, 1)
    assert data["starts"][:, 0].all()  # every robot's first step starts an episode
    assert np.abs(data["labels"]).max() <= 1.0 and data["labels"].std() > 0.05
    wiring = NCPWiring(n_dof=1, neurons_per_dof=1, n_neurons=8)
    cases = imitation._candidates(r.policy, wiring.n_inter, wiring.n_command)
    assert cases["liquid, every synapse"]["sensory_fanout"] == wiring.n_inter
    for name in ("linear", "liquid, NCP 4/4/1"):
        result = imitation.fit(cases[name], data, epochs=20, held_out=16)
        assert result["held_out"] < 0.7 * result["untrained"], (name, result)
    assert "synapses" in result and result["parameters"] > 0
