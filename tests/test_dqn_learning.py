"""benchmarks/dqn_learning.py: the end-to-end check of BatchDQN's learning signal, on the tiny synthetic env."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import as_cli, benchmark_script


@pytest.fixture(scope="module")
def dqn_learning():
    with benchmark_script("dqn_learning") as module:
        yield module


def test_trains_scores_on_held_out_episodes_paired_and_resumes(dqn_learning, tiny_kwargs, tmp_path, monkeypatch):
    args = [
        "--env-kwargs",
        *as_cli(tiny_kwargs),
        "--seeds",
        "0",
        "--timesteps",
        "8",
        "--eval-episodes",
        "2",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "learning"),
    ]
    summary = dqn_learning.main(args)
    (record,) = summary["per_seed"]
    assert len(record["agent_gains"]) == 2 and 0.0 <= record["picks_equal_to_entropy"] <= 1.0
    for name in ("random", "entropy"):  # paired on the same held-out episodes
        expected = np.mean(np.subtract(record["agent_gains"], summary["baselines"][name]["gains"]))
        assert record["minus"][name]["mean"] == pytest.approx(expected)
    assert summary["settings"]["resolved_algorithm"]["prior_column"] is None  # from scratch: the learning signal
    assert json.loads((tmp_path / "learning.json").read_text())["per_seed"][0]["agent_gains"] == record["agent_gains"]
    assert "| 0 |" in (tmp_path / "learning.md").read_text()

    def no_training(*_, **__):
        raise AssertionError("a stored seed with the same settings must be reused")

    monkeypatch.setattr(dqn_learning, "train_seed", no_training)
    assert dqn_learning.main(args)["per_seed"][0]["agent_gains"] == record["agent_gains"]
    with pytest.raises(AssertionError, match="reused"):  # another agent: trained again
        dqn_learning.main([*args, "--algo-kwargs", "learning_rate=0.0005"])
