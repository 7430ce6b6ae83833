"""benchmarks/selection_look_schedule.py: more looks at a Bonferroni share each cost power and level."""

from __future__ import annotations

import json

import pytest

from conftest import benchmark_script


@pytest.fixture(scope="module")
def look_schedule():
    with benchmark_script("selection_look_schedule") as module:
        yield module


def test_looking_every_round_is_far_below_its_level_and_its_power(look_schedule, tmp_path):
    result = look_schedule.main(["--deltas", "0", "0.3", "--trials", "4000", "--out", str(tmp_path / "looks")])
    rows = {(r["schedule"], r["delta"]): r for r in result["rows"]}
    assert rows["doubling (the default)", 0.0]["looks"] == [3, 6, 12, 20]
    every, doubling, last = (
        rows[name, 0.0] for name in ("every round", "doubling (the default)", "the last round only")
    )
    assert every["incumbent_dropped"] < doubling["incumbent_dropped"] < last["incumbent_dropped"] < 0.065
    power = [rows[name, 0.3]["incumbent_dropped"] for name in ("every round", "doubling (the default)")]
    assert power[0] + 0.1 < power[1]  # a challenger 0.3 better is found far more often with four looks than with 18
    assert last["mean_rounds"] == 20 and rows["doubling (the default)", 0.3]["mean_rounds"] < 20  # early drops
    assert json.loads((tmp_path / "looks.json").read_text())["rows"] == result["rows"]
