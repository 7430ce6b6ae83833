"""benchmarks/prior_correction.py: reads a prior model's correction against its rule, pool by pool."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import segal_env  # noqa: F401
from agents import BatchDQN

from conftest import as_cli, benchmark_script


@pytest.fixture(scope="module")
def prior_correction():
    with benchmark_script("prior_correction") as module:
        yield module


@pytest.mark.parametrize("rule", ["margin", "margin_balance"])
def test_an_untrained_prior_model_picks_the_rules_region_in_every_pool(
    prior_correction, tiny_kwargs, tmp_path, one_torch_thread, rule
):
    env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "device": "cpu"})
    model = BatchDQN("RegionQPolicy", env, policy_kwargs=dict(prior=rule), seed=0)
    model.save(tmp_path / "prior")
    out = prior_correction.main(
        [
            str(tmp_path / "prior.zip"),
            "--env-kwargs",
            *as_cli(tiny_kwargs),
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "pc"),
        ]
    )
    stats = out["models"][str(tmp_path / "prior.zip")]
    # the correction starts at zero: no spread, no correlation, and every greedy pick is the rule's (margin_balance's
    # differ from margin's column alone: the script reads the prior's whole score)
    assert stats["pools"] > 0
    assert stats["sd_ratio"] == 0.0 and stats["corr"] == 0.0 and stats["rules_pick"] == 1.0
    assert json.loads((tmp_path / "pc.json").read_text())["models"] == out["models"]
    assert "| 100% |" in (tmp_path / "pc.md").read_text()

    plain = BatchDQN("RegionQPolicy", env, seed=0)
    with pytest.raises(ValueError, match="no prior"):
        prior_correction.correction_statistics(plain, env, [0])
