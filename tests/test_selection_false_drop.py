"""benchmarks/selection_false_drop.py: the real RuleSelection on simulated rules, and what its counts mean."""

from __future__ import annotations

import json

import pytest

from conftest import benchmark_script


@pytest.fixture(scope="module")
def false_drop():
    with benchmark_script("selection_false_drop") as module:
        yield module


def test_level_rules_are_dropped_far_more_often_than_one_look_at_2_se_would(false_drop):
    # one look at z = 2 drops a level rule 2.3% of the time; repeated looks at a few episodes' SE do much more
    level = false_drop.run(delta=0.0, sd=0.58, min_rounds=3, episodes=40, z=2.0, trials=300)
    assert level["incumbent_dropped"] > 0.06 and level["challenger_dropped"] > 0.06
    assert level["challenger_chosen_with_incumbent"] == level["incumbent_dropped"]  # it replaces only a dropped one


def test_a_clearly_better_challenger_replaces_the_incumbent_and_the_table_is_written(false_drop, tmp_path, capsys):
    out = tmp_path / "false_drop"
    result = false_drop.main(["--deltas", "3", "--min-rounds", "3", "--trials", "20", "--out", str(out)])
    assert result["rows"][0]["challenger_chosen_with_incumbent"] == 1.0
    assert json.loads((tmp_path / "false_drop.json").read_text())["rows"] == result["rows"]
    assert "| 3 | +3.00 | 100.0% | 0.0% | 100.0% |" in capsys.readouterr().out
