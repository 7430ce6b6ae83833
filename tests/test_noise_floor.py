"""benchmarks/noise_floor.py: the within-state reward measures on the tiny synthetic env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from conftest import benchmark_script

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_final_training_reward_is_a_function_of_the_labels(tiny_kwargs):
    """Each trial pick is labeled, scored and forgotten: one left labeled would make margin's own step, which labels
    the same regions, raise 'already labeled'."""
    with benchmark_script("noise_floor") as module:
        first = module.section_final_reward("SegAL-Synthetic-v0", tiny_kwargs, [0], 2)
        again = module.section_final_reward("SegAL-Synthetic-v0", tiny_kwargs, [0], 2)
        env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "mode": "train"})
        states = list(module.states_along_margin(env, [0], np.random.default_rng(0)))
    assert first["states"] == len(states) == 2  # steps 0 and 3 of a 4-step episode
    assert first["differences"] == again["differences"]  # fixed seeds: the same picks score the same
    assert first["noise"] >= 0 and np.isfinite(first["signal"])
    assert env.unwrapped.labeled.count == 16  # the walk itself plays margin's whole episode: 4 steps of 4 picks
