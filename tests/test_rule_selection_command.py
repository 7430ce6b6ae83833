"""segal-select-rule: one rule chosen from paired train-mode episodes, written per round and continued."""

from __future__ import annotations

import json

import pytest
import torch

from experiments import rule_selection
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
    assert f"chosen: {first['chosen']}" in capsys.readouterr().out
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
        (["--env-kwargs", "mode=test"], "'mode' is fixed"),
        (["--rules", "oracle"], "unknown rule"),
        (["--env-kwargs", "budgett=3"], "unknown env keyword"),
    ],
)
def test_bad_input_is_refused_before_any_episode(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        rule_selection.main(options)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


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
