"""benchmarks/selection_false_drop.py: the real RuleSelection on simulated rules, and what its counts mean."""

from __future__ import annotations

import json

import pytest

from conftest import benchmark_script


@pytest.fixture(scope="module")
def false_drop():
    with benchmark_script("selection_false_drop") as module:
        yield module


def test_the_fixed_z_drops_a_level_rule_far_more_often_than_the_t_test(false_drop):
    # one look at z = 2 drops a level rule 2.3% of the time; repeated looks at a few episodes' SE do much more
    fixed = false_drop.run([0.0, 0.0], sd=0.58, min_rounds=3, episodes=40, rule={"z": 2.0}, trials=300)
    tested = false_drop.run([0.0, 0.0], sd=0.58, min_rounds=3, episodes=40, rule={"alpha": 0.05}, trials=300)
    assert fixed["incumbent_dropped"] > 0.1 and fixed["challenger_dropped"] > 0.1
    assert tested["incumbent_dropped"] < 0.08 and tested["challenger_dropped"] < 0.08  # alpha = 0.05, 300 trials
    assert tested["mean_rounds"] > fixed["mean_rounds"]  # fewer drops: more rounds played


def test_a_clearly_better_challenger_replaces_the_incumbent_and_the_table_is_written(false_drop, tmp_path, capsys):
    out = tmp_path / "false_drop"
    options = ["--deltas", "3", "--min-rounds", "3", "--trials", "20", "--z", "--out", str(out)]
    result = false_drop.main(options)
    assert [row["rule"] for row in result["rows"]] == [{"alpha": 0.05}] * 2  # two rules, then five level ones
    assert result["rows"][0]["incumbent_dropped"] == 1.0 and result["rows"][1]["rules"] == 5
    assert json.loads((tmp_path / "false_drop.json").read_text())["rows"] == result["rows"]
    assert "| --alpha 0.05 | 3 | 2 | +3.00 | 100.0% | 0.0% |" in capsys.readouterr().out
