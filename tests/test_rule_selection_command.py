"""segal-select-rule: one rule chosen from paired episodes (train or test mode), written per round and continued."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
import torch

from agents import make_agent
from experiments import rule_selection
from experiments.episodes import play_episode
from segal_env.runtime import torch_threads

from conftest import TINY_SYNTHETIC, as_cli


@pytest.fixture
def env_args(segal_cache, one_torch_thread) -> list[str]:
    return ["--env-kwargs", *as_cli({**TINY_SYNTHETIC, "cache_dir": str(segal_cache)})]


def test_it_chooses_the_leader_writes_every_round_and_continues(tmp_path, env_args, capsys):
    out = tmp_path / "selection.json"
    options = [*env_args, "--rules", "entropy", "margin", "--out", str(out), "--threads", "1"]
    first = rule_selection.main([*options, "--episodes", "4"])
    stored = json.loads(out.read_text())
    assert stored["chosen"] == first["chosen"] and [r["episodes"] for r in stored["rules"].values()] == [2, 2]
    returns = stored["state"]["returns"]
    assert first["chosen"] == max(returns, key=lambda name: sum(returns[name]))
    printed = capsys.readouterr().out
    assert f"chosen: {first['chosen']}" in printed and first["looks"] == []  # 2 rounds: before round 3
    assert "t test at alpha 0.05, but the episodes end before its first look (round 3)" in printed
    second = rule_selection.main([*options, "--episodes", "6"])  # continues: one more round, the first two kept
    assert [len(r) for r in second["state"]["returns"].values()] == [3, 3]
    assert all(second["state"]["returns"][n][:2] == returns[n] for n in returns)
    assert "continuing" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        rule_selection.main([*options, "--episodes", "6", "--z", "1"])
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--episodes", "3"], "less than one round of the 5 rules"),
        (["--env-kwargs", "mode=test"], "'mode' is set by --mode"),
        (["--mode", "test", "--env-kwargs", "final_training=True"], "'final_training' is set by the selection"),
        (["--rules", "oracle"], "unknown rule"),
        (["--rules", "entropy", "margin", "--incumbent", "bald"], "--incumbent bald is not one of --rules"),
        (["--env-kwargs", "budgett=3"], "unknown env keyword"),
        (["--alpha", "0.05", "--z", "2"], "--alpha and --z are two drop rules: give one"),
        (["--alpha", "0.7"], "--alpha 0.7: the chance of dropping a level rule must be in (0, 0.5)"),
        (["--z", "0"], "--z 0: a number of standard errors must be > 0"),
        (["--min-rounds", "1"], "--min-rounds 1: a paired SE needs two rounds"),
    ],
)
def test_bad_input_is_refused_before_any_episode(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        rule_selection.main(options)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_incumbent_that_is_not_shown_worse_is_chosen_and_the_table_says_why(tmp_path, env_args, capsys):
    options = [*env_args, "--rules", "entropy", "margin", "--episodes", "2", "--score", "return"]
    plain = rule_selection.main(options)  # one round: below --min-rounds, no rule can be dropped
    other = next(name for name in ("entropy", "margin") if name != plain["chosen"])
    kept = rule_selection.main([*options, "--incumbent", other])
    assert kept["chosen"] == other and kept["leader"] == plain["chosen"] and kept["incumbent"] == other
    assert kept["state"] == plain["state"]  # the incumbent changes the choice, not the episodes
    shown = "is not ahead of it by a paired t test at alpha 0.05"
    assert f"chosen: {other}, the incumbent: the leader {plain['chosen']} {shown}" in capsys.readouterr().out


def test_a_selection_made_with_the_fixed_z_rule_continues_only_under_it(tmp_path, env_args, capsys):
    out = tmp_path / "selection.json"
    options = [*env_args, "--rules", "entropy", "margin", "--score", "return", "--out", str(out)]
    first = rule_selection.main([*options, "--episodes", "2", "--z", "2"])
    assert first["settings"]["z"] == 2.0 and "alpha" not in first["settings"]
    with pytest.raises(SystemExit):
        rule_selection.main([*options, "--episodes", "4"])  # the default is the t test: not this selection's rule
    assert "made with the drop rule --z 2: add --z 2 to continue it" in capsys.readouterr().err
    second = rule_selection.main([*options, "--episodes", "4", "--z", "2"])
    assert [len(r) for r in second["state"]["returns"].values()] == [2, 2] and second["looks"] is None
    assert "dropped by 2 paired SE behind the leader, after every round from round 3" in capsys.readouterr().out


def test_it_chooses_by_the_final_training_on_one_thread_by_default_and_says_so(tmp_path, env_args, capsys):
    out = tmp_path / "selection.json"
    options = [*env_args, "--rules", "entropy", "margin", "--episodes", "2"]
    by_return = rule_selection.main([*options, "--score", "return", "--out", str(out)])
    with torch_threads(2):  # a caller on two threads: the selection still runs on one (--threads' default)
        by_final = rule_selection.main(options)  # the default score
        assert torch.get_num_threads() == 2  # and the caller gets its setting back
    assert rule_selection.main(options)["rules"] == by_final["rules"]
    assert by_final["settings"]["score"] == "final" and by_return["settings"]["score"] == "return"
    for name, row in by_final["rules"].items():  # a D_R mIoU level in points, not the episode's gain
        assert 0 < row["mean_return"] <= 100 and row["mean_return"] != by_return["rules"][name]["mean_return"]
    assert "mean D_R mIoU after the final training" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a stored selection by return is not continued by final scores
        rule_selection.main([*options, "--score", "final", "--out", str(out)])
    assert "other settings" in capsys.readouterr().err


def test_test_mode_scores_test_mode_episodes_by_the_reward_set_and_train_mode_stays_the_default(
    tmp_path, env_args, segal_cache
):
    base = [*env_args, "--rules", "entropy", "margin", "--seed", "5"]
    options = [*base, "--episodes", "2"]
    by_mode = {}
    for mode in ("train", "test"):
        by_mode[mode] = rule_selection.main([*options, "--out", str(tmp_path / f"{mode}.json"), "--mode", mode])
        env = gym.make("SegAL-Synthetic-v0", device="cpu", **TINY_SYNTHETIC, cache_dir=str(segal_cache), mode=mode)
        play_episode(make_agent("margin", env), env, seed=5)
        assert by_mode[mode]["state"]["returns"]["margin"] == [
            pytest.approx(100 * env.unwrapped.reward_set_final_score(5))
        ]
        assert by_mode[mode]["settings"]["mode"] == mode
    # what the benchmark reports for the same episode (evaluate.py --final-training; the preset's fixed final seeds)
    kwargs = {**TINY_SYNTHETIC, "cache_dir": str(segal_cache), "mode": "test", "final_training": True}
    benchmark_env = gym.make("SegAL-Synthetic-v0", device="cpu", **kwargs)
    benchmark = play_episode(make_agent("margin", benchmark_env), benchmark_env, seed=5)
    assert by_mode["test"]["state"]["returns"]["margin"] == [
        pytest.approx(100 * benchmark.final_info["reward_set_final_miou"])
    ]
    assert by_mode["test"]["state"]["returns"] != by_mode["train"]["state"]["returns"]  # pool D_V, not D_T
    with pytest.raises(SystemExit):  # a test-mode selection is not continued as a train-mode one
        rule_selection.main([*options, "--out", str(tmp_path / "test.json")])
    stored = json.loads((tmp_path / "train.json").read_text())
    del stored["settings"]["mode"]  # written before --mode existed: a train-mode selection, and it continues
    (tmp_path / "train.json").write_text(json.dumps(stored))
    continued = rule_selection.main([*base, "--episodes", "4", "--out", str(tmp_path / "train.json")])
    assert continued["state"]["returns"]["margin"][0] == by_mode["train"]["state"]["returns"]["margin"][0]
    assert len(continued["state"]["returns"]["margin"]) == 2


def test_the_table_names_the_rounds_the_t_test_looks_at():
    row = {"episodes": 20, "mean_return": 40.0, "minus_leader": 0.0, "minus_leader_se": 0.0, "survived": True}
    settings = {"alpha": 0.05, "min_rounds": 3, "seed": 1000, "score": "final", "mode": "test"}
    result = {"settings": settings, "looks": [3, 6, 12, 20], "rules": {"margin": row}, "chosen": "margin"}
    text = rule_selection.table({**result, "leader": "margin"})
    assert (
        "test-mode episodes from seed 1000; a rule is dropped by a one-sided paired t test at alpha 0.05, at " in text
    )
    assert "at rounds 3, 6, 12, 20 (0.0125 each)" in text
