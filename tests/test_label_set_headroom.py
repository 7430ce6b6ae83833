"""benchmarks/label_set_headroom.py: which label set each chooser takes, and the gains it reports."""

from __future__ import annotations

import pytest

from conftest import benchmark_script


@pytest.fixture(scope="module")
def headroom():
    with benchmark_script("label_set_headroom") as module:
        yield module


def test_best_by_reward_set_is_scored_on_test_and_the_oracle_reads_test(headroom):
    members = {
        0: {
            "margin": {"test": 40.0, "reward_set": 50.0},
            "entropy": {"test": 41.0, "reward_set": 49.0},  # best on test, not on D_R
            "switch0": {"test": 39.5, "reward_set": 51.0},  # best on D_R, worse on test
        },
        1: {
            "margin": {"test": 38.0, "reward_set": 47.0},
            "entropy": {"test": 38.5, "reward_set": 48.0},
            "switch0": {"test": 37.0, "reward_set": 46.0},
        },
    }
    summary = headroom.summarise(members, "margin")
    first, second = summary["per_seed"]
    assert (first["best_by_test"], first["best_by_reward_set"]) == ("entropy", "switch0")
    assert first["best_by_test_gain"] == pytest.approx(1.0) and first["best_by_reward_set_gain"] == pytest.approx(-0.5)
    assert second["best_by_reward_set"] == "entropy" and second["spearman_test_reward_set"] == pytest.approx(1.0)
    over = summary["over_seeds"]["best_by_reward_set_gain"]
    assert over["mean"] == pytest.approx(0.0) and over["se"] == pytest.approx(0.5)


def test_random_switching_draws_every_rule_and_repeats_for_its_seed(headroom):
    def sequence(seed: int) -> list[int]:
        switch = headroom.RandomSwitch(3, seed=seed)
        return [int(switch.predict(None)[0]) for _ in range(60)]

    assert set(sequence(7)) == {0, 1, 2}
    assert sequence(7) == sequence(7) and sequence(7) != sequence(8)
