"""benchmarks/final_training_floor.py: the zero-region floor is the env's own quiet score of the start set."""

from __future__ import annotations

import gymnasium as gym
import pytest

import segal_env  # noqa: F401

from conftest import benchmark_script


@pytest.fixture(scope="module")
def floor():
    with benchmark_script("final_training_floor") as module:
        yield module


def test_the_floor_equals_the_quiet_test_score_of_no_regions_and_refuses_a_labeled_env(
    floor, tiny_kwargs, one_torch_thread
):
    def make(final_seed: str) -> gym.Env:
        quiet = {"final_training": True, "final_start": "start", "final_seed": final_seed, "mode": "test"}
        env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, **quiet, "device": "cpu"})
        env.reset(seed=0)
        return env

    fixed = make("fixed")
    u = fixed.unwrapped
    scored = u._test_evaluation(seed=5)  # the fixed seed: the episode's draw is ignored
    with pytest.raises(ValueError, match="final_seed='episode'"):
        floor.floor_scores(fixed, [u.config.checkpoint_seed])  # its seeds would not count
    env = make("episode")
    [(test, reward_set)] = floor.floor_scores(env, [u.config.checkpoint_seed])
    assert test == pytest.approx(100 * scored["test_miou"], abs=1e-9)
    assert reward_set == pytest.approx(100 * scored["reward_set_final_miou"], abs=1e-9)
    env.unwrapped.labeled.mark(env.unwrapped.pools[:, 0].clone())
    with pytest.raises(ValueError, match="labeled regions"):
        floor.floor_scores(env, [0])
