"""train.py end to end on a tiny synthetic env: outputs, resume, usage errors, other algorithms.

Every run shares the session's pre-training cache (conftest), so the starting networks are trained once.
"""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # train.py is a script at the repository root, not part of the package

import segal_env  # noqa: E402
from agents import BatchDQN  # noqa: E402
from experiments import training  # noqa: E402
from experiments.checkpoints import newest_checkpoint  # noqa: E402
from experiments.provenance import provenance  # noqa: E402
from experiments.training.comparison import (  # noqa: E402
    ComparisonJob,
    ComparisonSetup,
    compare,
    describe_test_scoring,
    play_jobs,
)
from experiments.training.config import build_parser, resolve_config  # noqa: E402
from experiments.training.envs import comparison_env_kwargs, eval_env_kwargs, make_env  # noqa: E402
from segal_env.config import parse_key_values  # noqa: E402
from segal_env.runtime import torch_threads  # noqa: E402

import train  # noqa: E402
from conftest import TINY_SYNTHETIC, as_cli  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def cache_dir(segal_cache) -> Path:
    return segal_cache


def tiny_env_kwargs(cache_dir: Path, num_pools: int | None = 4) -> list[str]:
    """The shared tiny synthetic config (conftest.TINY_SYNTHETIC): 4 pools of 3 candidates, 4 steps."""
    kwargs = {**TINY_SYNTHETIC, "cache_dir": str(cache_dir)}
    if num_pools is None:
        del kwargs["num_pools"]
    else:
        kwargs["num_pools"] = num_pools
    return ["--env-kwargs", *as_cli(kwargs)]


def run(tmp_path: Path, cache_dir: Path, *options: str, num_pools: int | None = 4, name: str = "run") -> dict:
    return train.main(["--out", str(tmp_path / name), *tiny_env_kwargs(cache_dir, num_pools), *options])


def test_run_writes_model_config_logs_and_comparison(tmp_path, cache_dir, capsys):
    comparison = run(tmp_path, cache_dir, "--timesteps", "8", "--eval-episodes", "2", "--checkpoint-freq", "4")
    out = tmp_path / "run"
    assert (out / "model.zip").is_file()
    assert list((out / "tb").rglob("events.out.tfevents.*")), "no tensorboard event file"
    assert (out / "checkpoints" / "BatchDQN_8_steps.zip").is_file() and (
        out / "checkpoints" / "BatchDQN_4_steps.zip"
    ).is_file()
    assert (out / "checkpoints" / "BatchDQN_replay_buffer_8_steps.pkl").is_file()
    assert not (out / "checkpoints" / "BatchDQN_replay_buffer_4_steps.pkl").exists()  # only the newest buffer stays

    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "BatchDQN" and config["policy"] == "RegionQPolicy"
    assert config["env_id"] == "SegAL-Synthetic-v0"
    assert config["env_kwargs"]["budget"] == 16 and config["env_kwargs"]["role_sizes"] == {"d_s": 2, "d_t": 12}
    assert config["env_resolved"]["steps_per_episode"] == 4
    assert config["total_timesteps"] == 8 and config["num_timesteps"] == 8
    assert config["versions"] == provenance("cpu") and config["versions"]["segal"] == segal_env.__version__

    saved = json.loads((out / "comparison.json").read_text())
    assert saved == json.loads(json.dumps(comparison))
    assert list(comparison["policies"]) == ["BatchDQN", "random", "entropy", "margin", "margin_balance"]
    assert comparison["seeds"] == [training.DEFAULT_EVAL_SEED, training.DEFAULT_EVAL_SEED + 1]
    assert comparison["eval_env_kwargs"]["mode"] == "test"
    assert comparison["eval_env_kwargs"]["final_training"] is True and comparison["eval_env"]["final_training"]
    for row in comparison["policies"].values():
        for key in ("final_miou", "test_miou"):
            assert len(row[key]["values"]) == 2 and all(0.0 <= v <= 1.0 for v in row[key]["values"])
        assert len(row["return"]["values"]) == 2
    reference = comparison["reference"]
    means = {name: row["test_miou"]["mean"] for name, row in comparison["policies"].items()}
    assert reference == max(["random", "entropy", "margin", "margin_balance"], key=means.get)
    assert set(comparison["paired"]) == set(comparison["policies"]) - {reference}
    agent_values = comparison["policies"]["BatchDQN"]["test_miou"]["values"]
    reference_values = comparison["policies"][reference]["test_miou"]["values"]
    differences = [100 * (a - r) for a, r in zip(agent_values, reference_values)]
    paired = comparison["paired"]["BatchDQN"]
    assert paired["mean"] == pytest.approx(sum(differences) / 2) and paired["n"] == 2
    assert paired["se"] == pytest.approx(abs(differences[0] - differences[1]) / 2)
    table = (out / "comparison.md").read_text()
    assert "| BatchDQN |" in table and "| entropy |" in table and "test mIoU" in table
    assert "test mIoU after a 2-step final training from the start network, fixed seeds on the labels" in table
    assert f"test mIoU - {reference} (paired)" in table and f"| {reference} |" in table and "(reference)" in table
    assert f"{paired['mean']:+.2f} ± {paired['se']:.2f} |" in table
    assert "| random |" in capsys.readouterr().out


def test_the_comparison_plays_in_worker_processes_and_gets_the_numbers_of_one_process(tmp_path, cache_dir, capsys):
    """With --n-envs 2 the comparison's episodes run in two spawned workers of one torch thread; played one after
    the other in this (one-thread) process instead, every episode's numbers are the same, random's included
    (each episode builds its own agent, so no row depends on which worker played which episode)."""
    argv = ["--out", str(tmp_path / "run"), *tiny_env_kwargs(cache_dir), "--timesteps", "8", "--eval-episodes", "2"]
    in_workers = train.main(argv)
    assert in_workers["workers"] == 2
    assert "compared random: 2 episodes" in capsys.readouterr().out
    config = resolve_config(build_parser().parse_args(argv), argv)
    assert config.n_envs == 2
    here = compare(replace(config, n_envs=1), config.out / "model.zip", in_workers["eval_env_kwargs"])
    assert here["workers"] == 1 and list(here["policies"]) == list(in_workers["policies"])
    for name, row in here["policies"].items():
        for key in ("final_miou", "test_miou", "return"):
            assert row[key]["values"] == in_workers["policies"][name][key]["values"], (name, key)
    assert here["paired"] == in_workers["paired"] and here["eval_env"] == in_workers["eval_env"]


def test_an_episode_that_fails_in_a_worker_raises_its_error_here(tmp_path, cache_dir):
    """A comparison episode that fails in a worker process surfaces its own error in train.py's process (not a
    hang, not a pickling error), and the episodes not started yet are dropped."""
    kwargs = {**TINY_SYNTHETIC, "cache_dir": str(cache_dir), "mode": "test"}
    setup = ComparisonSetup("SegAL-Synthetic-v0", kwargs, "BatchDQN", 0, "cpu")
    jobs = [ComparisonJob("BatchDQN", str(tmp_path / "missing.zip"), 10_000)]
    jobs += [ComparisonJob("random", "random", 10_000 + i) for i in range(8)]
    played = []
    with pytest.raises(ValueError, match="unknown agent .*missing.zip"):
        for job, _ in play_jobs(jobs, setup, gym.make("SegAL-Synthetic-v0", **kwargs), 2, 1):
            played.append(job)
    assert len(played) < 8


def test_batchdqn_starts_from_margin_balance_where_the_env_scores_margin(tmp_path, cache_dir, capsys):
    """train.py's BatchDQN default: Q = V + A + margin_balance's score (prior kept out of the loss), level with margin
    where the network from scratch was below it; policy_kwargs merge key by key, and prior=None opts out."""
    run(
        tmp_path,
        cache_dir,
        "--timesteps",
        "4",
        "--no-compare",
        "--n-envs",
        "1",
        "--algo-kwargs",
        'policy_kwargs={"state_embed_dim":8}',
    )
    assert "BatchDQN on SegAL-Synthetic-v0, starting from margin_balance's ranking" in capsys.readouterr().out
    model = BatchDQN.load(tmp_path / "run" / "model.zip", device="cpu")
    assert model.q_net.prior_column is not None and model.q_net.prior_rarity is not None
    assert model.q_net.prior_in_loss is False
    assert model.q_net.state_embed[-1].out_features == 8  # the user's policy_kwargs kept beside the default prior
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["algo_kwargs_used"]["policy_kwargs"] == {"prior": "margin_balance", "state_embed_dim": 8}
    run(
        tmp_path,
        cache_dir,
        "--timesteps",
        "4",
        "--no-compare",
        "--n-envs",
        "1",
        "--algo-kwargs",
        'policy_kwargs={"prior":null}',
        name="plain",
    )
    assert BatchDQN.load(tmp_path / "plain" / "model.zip", device="cpu").q_net.prior_column is None
    kwargs = {**TINY_SYNTHETIC, "cache_dir": str(cache_dir), "num_pools": 4, "extra_features": []}
    train.main(
        [
            "--out",
            str(tmp_path / "bare"),
            "--env-kwargs",
            *as_cli(kwargs),
            "--timesteps",
            "4",
            "--no-compare",
            "--n-envs",
            "1",
        ]
    )
    assert BatchDQN.load(tmp_path / "bare" / "model.zip", device="cpu").q_net.prior_column is None  # no margin feature


def test_resume_continues_from_checkpoint_with_replay_buffer(tmp_path, cache_dir):
    one_env = ("--n-envs", "1")  # one monitor file whose episodes span the pause
    run(
        tmp_path, cache_dir, "--timesteps", "4", "--checkpoint-freq", "4", "--no-compare", "--no-progress-bar", *one_env
    )
    assert (tmp_path / "run" / "checkpoints" / "BatchDQN_4_steps.zip").is_file()
    time.sleep(1.0)  # a pause between the run and its resume, which the monitor's time column must span
    result = run(
        tmp_path,
        cache_dir,
        "--timesteps",
        "12",
        "--checkpoint-freq",
        "4",
        "--resume",
        "--no-compare",
        "--no-progress-bar",
        *one_env,
    )
    assert result == {}
    out = tmp_path / "run"
    config = json.loads((out / "config.json").read_text())
    assert config["resumed_from"].endswith("BatchDQN_4_steps.zip")
    assert config["num_timesteps"] == 12  # same total, not 4 + 12
    assert not (out / "checkpoints" / "BatchDQN_16_steps.zip").exists()
    # the buffer saved at 12 steps holds the 4 steps of the first run + the 8 new ones
    with open(out / "checkpoints" / "BatchDQN_replay_buffer_12_steps.pkl", "rb") as handle:
        buffer = pickle.load(handle)
    assert buffer.pos == 12 and buffer.actions.shape[0] == 12  # the filled part only
    assert len(list((out / "tb").iterdir())) == 1, "a resumed run keeps logging into the same tensorboard run"
    # monitor.csv: one header, and the time column continues from the first run's start (SB3's t_start)
    lines = (out / "monitor.csv").read_text().splitlines()
    assert [line.startswith("#") for line in lines].count(True) == 1 and lines[1].startswith("r,l,t")
    times = [float(line.split(",")[2]) for line in lines[2:]]
    assert len(times) == 3 and times[1] >= times[0] + 1.0 and times == sorted(times)


def test_two_envs_step_in_subprocesses_reproducibly_whatever_the_callers_threads(tmp_path, cache_dir):
    """The default: two training envs in worker processes, one monitor file each, one gradient step per env
    step, and the same seed gives the same agent, also when the caller's torch runs two threads: the learner
    runs on --threads (default 1), and the caller gets its setting back."""
    options = ("--timesteps", "8", "--no-compare", "--no-progress-bar")
    run(tmp_path, cache_dir, *options, name="a")
    with torch_threads(2):
        run(tmp_path, cache_dir, *options, name="b")
        assert torch.get_num_threads() == 2
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["n_envs"] == 2 and config["algo_kwargs_used"]["gradient_steps"] == 2 and config["threads"] == 1
    for name in ("monitor.csv", "monitor_1.monitor.csv"):
        lines = (tmp_path / "a" / name).read_text().splitlines()
        assert lines[0].startswith("#") and len(lines) == 3  # header, columns, the one episode of 4 steps
    a, b = (BatchDQN.load(tmp_path / name / "model.zip").policy.state_dict() for name in ("a", "b"))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_resume_without_checkpoint_is_a_usage_error(tmp_path, cache_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path, cache_dir, "--timesteps", "4", "--resume")
    assert exit_info.value.code == 2
    assert "--resume: no BatchDQN checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--algo", "SAC"], "unknown algorithm 'SAC'; choose from BatchDQN"),
        (["--env", "CartPole-v1"], "registered SegAL envs: SegAL-CamVid-v0"),
        (["--env-kwargs", "budget"], "--env-kwargs: expected KEY=VALUE"),
        (["--env-kwargs", "budgett=16"], "unknown env keyword(s) ['budgett']"),
        (["--algo-kwargs", "gama=0.9"], "unknown BatchDQN keyword(s) ['gama']"),
        (["--algo", "DQN", "--env-kwargs", "num_pools=4"], "needs num_pools=1"),
        (["--timesteps", "8", "--episodes", "2"], "not allowed with argument"),
        (["--env-kwargs", "budget=15", "num_pools=4"], "not a multiple of num_pools"),
        (["--env-kwargs", "freeze_bn=yes"], "--env-kwargs: env keyword 'freeze_bn' must be bool or None, got 'yes'"),
        (["--eval-env-kwargs", "lr=fast"], "--eval-env-kwargs: env keyword 'lr' must be float or None, got 'fast'"),
        (["--eval-patience", "2"], "--eval-patience needs --eval-freq"),
        (["--eval-freq", "-1"], "--eval-freq must be >= 0"),
        (["--device", "tpu"], "--device: device='tpu' is not a torch device; use device='auto'"),
        (["--env-kwargs", "reward_scale=NaN"], "reward_scale must be a finite number > 0, got nan"),
        (["--env-kwargs", "budget=0", "num_pools=4"], "budget must be >= num_pools=4"),
    ],
)
def test_usage_errors_exit_with_code_2(tmp_path, cache_dir, capsys, options, message):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--out", str(tmp_path / "run"), "--env-kwargs", f"cache_dir={cache_dir}", *options])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("prior", "message"),
    [("missing.npz", "no such error model file"), ("class_balance", "neither an extra feature of this env")],
)
def test_a_bad_prior_is_refused_before_the_start_network_is_built(tmp_path, cache_dir, capsys, prior, message):
    with pytest.raises(SystemExit) as exit_info:
        train.main(
            [
                "--out",
                str(tmp_path / "run"),
                "--env-kwargs",
                f"cache_dir={tmp_path / 'empty_cache'}",  # a late error would first pre-train into it
                "--algo-kwargs",
                f'policy_kwargs={{"prior": "{prior}"}}',
            ]
        )
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and "--algo-kwargs" in captured.err
    assert "output in" not in captured.out and not list((tmp_path / "empty_cache").glob("*.pt"))


def test_key_values_parse_json_and_python_literals_the_same_way_in_both_scripts():
    from experiments.benchmark import protocol as cli

    items = ["a=1", "b=[45,40]", "c=../data", "d=0.5", "e=true", 'f={"x": 1}', "g=False", "h=None"]
    expected = {"a": 1, "b": [45, 40], "c": "../data", "d": 0.5, "e": True, "f": {"x": 1}, "g": False, "h": None}
    assert parse_key_values(items, "--x") == expected
    assert training.parse_env_settings is cli.parse_env_settings  # both scripts check env keywords the same way
    assert cli.parse_env_kwargs(["freeze_bn=False", "lr=1e-3"]) == {"freeze_bn": False, "lr": 1e-3}
    with pytest.raises(cli.UsageError, match="'freeze_bn' must be bool or None, got 'no'"):
        cli.parse_env_kwargs(["freeze_bn=no"])
    with pytest.raises(ValueError, match="given twice"):
        parse_key_values(["a=1", "a=2"], "--x")


def test_freeze_bn_false_on_the_command_line_unfreezes_batchnorm(tmp_path, cache_dir):
    train.main(
        [
            "--out",
            str(tmp_path / "run"),
            *tiny_env_kwargs(cache_dir),
            "freeze_bn=False",
            "--timesteps",
            "4",
            "--no-compare",
            "--no-progress-bar",
        ]
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["env_kwargs"]["freeze_bn"] is False


def test_dqn_gets_one_pool(tmp_path, cache_dir):
    comparison = run(
        tmp_path,
        cache_dir,
        "--algo",
        "DQN",
        "--timesteps",
        "16",
        "--eval-episodes",
        "1",
        "--algo-kwargs",
        "learning_starts=4",
        "--no-progress-bar",
        num_pools=None,
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["env_kwargs"]["num_pools"] == 1 and config["env_resolved"]["num_pools"] == 1
    assert config["algo_kwargs_used"]["learning_starts"] == 4
    assert comparison["eval_env"]["num_pools"] == 1
    assert list(comparison["policies"]) == ["DQN", "random", "entropy", "margin", "margin_balance"]


@pytest.mark.parametrize("algo", ["PPO", "MaskablePPO"])
def test_ppo_family_runs_with_region_set_extractor(tmp_path, cache_dir, algo):
    comparison = run(
        tmp_path, cache_dir, "--algo", algo, "--episodes", "2", "--eval-episodes", "1", "--no-progress-bar"
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["policy"] == "MultiInputPolicy" and config["total_timesteps"] == 8 and config["num_timesteps"] >= 8
    assert config["algo_kwargs_used"]["n_steps"] * config["n_envs"] == 8  # a rollout holds two episodes in all
    assert list(comparison["policies"])[0] == algo
    assert comparison["eval_env"]["pool_size"] == 3 and comparison["eval_env"]["num_pools"] == 4
    assert comparison["paired"][algo]["n"] == 1 and " ± n/a |" in (tmp_path / "run" / "comparison.md").read_text()


def test_the_comparison_scores_by_the_final_training_unless_told_otherwise(tmp_path, cache_dir):
    """The comparison scores as evaluate.py --final-training does; --eval-freq's env stays without it (its
    selection reads the reward set); --eval-env-kwargs final_training=False restores the episode network's score."""
    parser = training.build_parser()
    base = ["--out", str(tmp_path), *tiny_env_kwargs(cache_dir)]
    probe = make_env("SegAL-Synthetic-v0", {**TINY_SYNTHETIC, "cache_dir": str(cache_dir)}, "BatchDQN")
    config = training.resolve_config(parser.parse_args(base), base)
    assert comparison_env_kwargs(eval_env_kwargs(config, probe))["final_training"] is True
    assert "final_training" not in eval_env_kwargs(config, probe)
    opted_out = [*base, "--eval-env-kwargs", "final_training=False"]
    config = training.resolve_config(parser.parse_args(opted_out), opted_out)
    assert comparison_env_kwargs(eval_env_kwargs(config, probe))["final_training"] is False
    # a reward read after a final training is the step's gain in the test envs unless asked for there
    final_reward = [*base, "reward=final_gain"]  # one more of base's --env-kwargs
    config = training.resolve_config(parser.parse_args(final_reward), final_reward)
    assert config.env_kwargs["reward"] == "final_gain" and eval_env_kwargs(config, probe)["reward"] == "gain"
    kept = [*final_reward, "--eval-env-kwargs", "reward=final_gain"]
    config = training.resolve_config(parser.parse_args(kept), kept)
    assert eval_env_kwargs(config, probe)["reward"] == "final_gain"
    scorings = {
        "episode": {"final_training": False},
        "paper": {"final_training": True, "final_steps": 300, "final_start": "current", "final_seed": "episode"},
    }
    assert describe_test_scoring(scorings["episode"]) == "test mIoU of the episode's fine-tuned network"
    assert describe_test_scoring(scorings["paper"]) == (
        "test mIoU after a 300-step final training from the episode's network on the labels"
    )


def test_an_env_the_comparison_cannot_read_is_refused_before_training(tmp_path, cache_dir, capsys):
    kwargs = {**TINY_SYNTHETIC, "cache_dir": str(cache_dir), "extra_features": ["entropy"]}
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--out", str(tmp_path / "run"), "--env-kwargs", *as_cli(kwargs), "--timesteps", "4"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "margin cannot read this env" in message and "extra_features including 'margin'" in message
    assert "--no-compare" in message and not (tmp_path / "run" / "model.zip").exists()


@pytest.mark.parametrize("algo", ["BatchDQN", "MaskablePPO"])
def test_eval_freq_evaluates_the_same_episodes_and_keeps_the_best_model(tmp_path, cache_dir, algo):
    """Test-mode budget 16 = 4 steps of 4 picks; training 8 steps evaluated every 4: two evaluations."""
    # BatchDQN is evaluated on pools of another size than it trains on, as in the paper (N=20 -> N=10)
    other_pools = ["--eval-env-kwargs", "pool_size=2"] if algo == "BatchDQN" else []
    comparison = run(
        tmp_path,
        cache_dir,
        "--algo",
        algo,
        "--timesteps",
        "8",
        "--eval-freq",
        "4",
        "--eval-freq-episodes",
        "1",
        "--eval-episodes",
        "1",
        "--no-progress-bar",
        *other_pools,
    )
    out = tmp_path / "run"
    record = json.loads((out / "evaluations.json").read_text())
    assert [e["timesteps"] for e in record["evaluations"]] == [4, 8]
    for evaluation in record["evaluations"]:
        assert len(evaluation["returns"]) == 1 and 0.0 < evaluation["test_miou"][0] < 1.0
    best = max(e["mean_return"] for e in record["evaluations"])
    assert record["evaluations"][-1]["best_mean_return"] == pytest.approx(best)
    assert (out / "best_model.zip").is_file()
    monitor = (out / "eval_monitor.csv").read_text().splitlines()
    assert monitor[1].split(",")[-2:] == ["miou", "test_miou"] and len(monitor) == 4  # header, columns, 2 episodes
    assert list(comparison["policies"]) == [algo, f"{algo} (best)", "random", "entropy", "margin", "margin_balance"]


def test_same_episodes_at_every_evaluation(tmp_path, cache_dir):
    """Re-seeding before each evaluation: a policy that does not learn scores identically every time."""
    run(
        tmp_path,
        cache_dir,
        "--timesteps",
        "12",
        "--eval-freq",
        "4",
        "--eval-freq-episodes",
        "1",
        "--no-compare",
        "--no-progress-bar",
        "--algo-kwargs",
        "learning_starts=100",
    )  # never updated
    returns = [e["returns"] for e in json.loads((tmp_path / "run" / "evaluations.json").read_text())["evaluations"]]
    assert len(returns) == 3 and returns[0] == returns[1] == returns[2]


def test_run_configuration_is_typed_and_recorded_as_given(tmp_path):
    args = training.build_parser().parse_args(
        ["--out", str(tmp_path / "x"), "--algo", "PPO", "--episodes", "3", "--env-kwargs", "lr=0.01", "--no-compare"]
    )
    config = training.resolve_config(args, ["--algo", "PPO"])
    assert isinstance(config, training.RunConfig) and isinstance(config.out, Path)
    assert config.algo == "PPO" and config.env_kwargs == {"lr": 0.01, "device": "auto"} and not config.compare
    assert config.total_timesteps(steps_per_episode=4) == 12
    record = config.to_dict()
    assert record["out"] == str(tmp_path / "x") and record["argv"] == ["--algo", "PPO"]
    assert json.loads(json.dumps(record)) == record  # config.json takes it as is


def test_provenance_names_segal_python_torch_and_device():
    import platform

    import torch

    stamp = provenance("cuda:1")
    assert stamp == {
        "segal": segal_env.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": "cuda:1",
    }
    assert provenance()["device"] is None


def test_kill_9_during_training_then_resume(tmp_path, cache_dir):
    """train.py killed with SIGKILL after its first checkpoint (no handler runs): --resume continues from the
    newest complete checkpoint to the same total, with its replay buffer, one monitor header and a time axis
    that keeps counting."""
    out = tmp_path / "run"
    options = [
        "--out",
        str(out),
        *tiny_env_kwargs(cache_dir),
        "--checkpoint-freq",
        "4",
        "--no-compare",
        "--no-progress-bar",
        "--threads",
        "1",
    ]
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *options, "--timesteps", "400"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        first = out / "checkpoints" / "BatchDQN_4_steps.zip"
        while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert first.is_file() and not (out / "model.zip").exists(), "killed before its first checkpoint or after the end"
    newest = newest_checkpoint(out, "BatchDQN", needs_buffer=True)
    steps = int(newest.stem.split("_")[1])
    train.main([*options, "--timesteps", str(steps + 8), "--resume"])
    config = json.loads((out / "config.json").read_text())
    assert config["resumed_from"] == str(newest) and config["num_timesteps"] == steps + 8
    with open(out / "checkpoints" / f"BatchDQN_replay_buffer_{steps + 8}_steps.pkl", "rb") as handle:
        # the killed run's transitions up to its checkpoint + the new ones, two envs per buffer row
        assert pickle.load(handle).pos == (steps + 8) // 2
    assert [p.name for p in (out / "checkpoints").glob("*.pkl")] == [f"BatchDQN_replay_buffer_{steps + 8}_steps.pkl"]
    lines = (out / "monitor.csv").read_text().splitlines()
    assert [line.startswith("#") for line in lines].count(True) == 1
    times = [float(line.split(",")[2]) for line in lines[2:]]
    assert times == sorted(times)
