"""Candidate pools and actions (segal_env.pools): disjoint unlabeled pools, validated picks, random references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segal_env.pools import action_mask, chosen_regions, random_picks, sample_pools


def test_pools_hold_distinct_unlabeled_regions_and_mask_what_is_missing():
    unlabeled = torch.ones(6, 16, dtype=torch.bool)
    unlabeled[0] = False
    pools = sample_pools(unlabeled, num_pools=4, pool_size=5, rng=np.random.default_rng(0))
    ids = pools[pools >= 0]
    assert pools.shape == (4, 5) and ids.numel() == 20 and ids.unique().numel() == 20
    assert bool(unlabeled.view(-1)[ids].all())
    few = torch.zeros(6, 16, dtype=torch.bool)
    few[2, :7] = True  # 7 unlabeled regions for 20 slots
    pools = sample_pools(few, num_pools=4, pool_size=5, rng=np.random.default_rng(0))
    assert int(action_mask(pools).sum()) == 7 and sorted(pools[pools >= 0].tolist()) == list(range(32, 39))


def test_random_picks_draw_like_a_choice_per_pool():
    rng = np.random.default_rng(3)
    pools = torch.as_tensor(rng.permutation(200)[:80].reshape(8, 10))
    pools[rng.random((8, 10)) < 0.3] = -1
    pools[:, 0] = torch.arange(8)  # every pool keeps a candidate
    for seed in range(20):
        per_pool = np.random.default_rng(seed)
        expected = [int(row[row >= 0][per_pool.choice((row >= 0).sum())]) for row in pools.numpy()]
        picked = random_picks(pools, seed)
        assert picked.tolist() == expected and bool((picked >= 0).all())


def test_actions_are_validated_with_the_fix_in_the_message():
    pools = torch.tensor([[3, 4, -1], [7, 8, 9]])
    assert chosen_regions(pools, np.array([1, 2])).tolist() == [4, 9]
    assert chosen_regions(pools, np.array([1.0, 0.0])).tolist() == [4, 7]
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        chosen_regions(pools, [1])
    with pytest.raises(ValueError, match=r"indices must be in \[0, 3\)"):
        chosen_regions(pools, [0, 3])
    with pytest.raises(ValueError, match="integer candidate indices"):
        chosen_regions(pools, [0.5, 1])
    with pytest.raises(ValueError, match="masked candidate"):
        chosen_regions(pools, [2, 0])


def test_boolean_actions_are_rejected():
    pools = torch.tensor([[3, 4, -1], [7, 8, 9]])
    for action in (np.array([True, False]), [True, True], np.array([False, False])):
        with pytest.raises(ValueError, match="integer candidate indices, got booleans"):
            chosen_regions(pools, action)


def test_pools_larger_than_the_whole_pool_are_rejected_before_any_work():
    unlabeled = torch.ones(60, 16, dtype=torch.bool)  # 960 regions
    with pytest.raises(
        ValueError, match=r"pool_size=5000 x num_pools=8 = 40000 candidates, but the pool has 960 .*pool_size <= 120"
    ):
        sample_pools(unlabeled, num_pools=8, pool_size=5000, rng=np.random.default_rng(0))
    assert sample_pools(unlabeled, num_pools=8, pool_size=120, rng=np.random.default_rng(0)).shape == (8, 120)


@pytest.mark.usefixtures("one_torch_thread")
def test_the_env_names_pool_size_when_its_pools_cannot_fit(tiny_kwargs, tmp_path):
    """At construction, before the start network is pre-trained (an empty cache: nothing is trained first)."""
    import gymnasium as gym

    import segal_env  # noqa: F401 - registers the ids

    settings = {**tiny_kwargs, "pool_size": 100, "cache_dir": str(tmp_path)}  # 4 x 100 > 12 images x 16 regions
    with pytest.raises(ValueError, match=r"pool_size=100 x num_pools=4 = 400 candidates, but the pool has 192 regions"):
        gym.make("SegAL-Synthetic-v0", **settings)
    assert not any(tmp_path.iterdir())
