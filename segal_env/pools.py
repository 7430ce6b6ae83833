"""Candidate pools and actions: K disjoint pools of N unlabeled regions, and picks mapped to region ids.

Region ids are global: ``image * regions_per_image + region``. A pool slot holding -1 is empty (the
unlabeled pool ran low) and is masked in the observation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


def check_pool_fits(num_pools: int, pool_size: int, pool_regions: int) -> None:
    """Raise ValueError when K pools of N candidates cannot fit in a pool of ``pool_regions`` regions at all
    (the features of K x N candidates would be computed, and allocated, for mostly empty slots: a
    pool_size of 5000 on a 960-region pool was killed by the kernel at 23.6 GB)."""
    if num_pools * pool_size > pool_regions:
        largest = max(pool_regions // num_pools, 1)
        raise ValueError(
            f"pool_size={pool_size} x num_pools={num_pools} = {num_pools * pool_size} candidates, but the pool has "
            f"{pool_regions} regions in all; use pool_size <= {largest} (or fewer pools, smaller regions)"
        )


def sample_pools(unlabeled: torch.Tensor, num_pools: int, pool_size: int, rng: np.random.Generator) -> torch.Tensor:
    """K disjoint pools of N unlabeled regions, long [K, N] on the CPU (-1 = empty slot).

    ``unlabeled``: bool [num_images, regions_per_image]. As in the paper: draw random images until they
    hold >= K*N unlabeled regions, then draw K*N distinct regions among them and deal them round-robin
    into the pools.
    """
    k, n = num_pools, pool_size
    check_pool_fits(k, n, unlabeled.numel())
    per_image = unlabeled.sum(1).cpu().numpy()
    order = rng.permutation(len(per_image))
    enough = np.searchsorted(np.cumsum(per_image[order]), k * n)
    images = torch.as_tensor(np.sort(order[: enough + 1]), device=unlabeled.device)
    img, reg = torch.nonzero(unlabeled[images], as_tuple=True)
    ids = (images[img] * unlabeled.shape[1] + reg).cpu().numpy()
    take = min(k * n, ids.size)
    ids = ids[rng.choice(ids.size, take, replace=False)]
    pools = torch.full((n, k), -1, dtype=torch.long)
    pools.view(-1)[:take] = torch.as_tensor(ids)
    return pools.T.contiguous()


def chosen_regions(pools: torch.Tensor, action) -> torch.Tensor:
    """Validate an action (one candidate index per pool) and return the chosen global region ids [K].

    Every error says what was wrong and what a valid action is.
    """
    k, n = pools.shape
    picks = np.asarray(action)
    if picks.shape != (k,):
        raise ValueError(f"action must have shape ({k},): one candidate index per pool; got shape {picks.shape}")
    if picks.dtype == np.bool_:  # True would be read as candidate 1
        raise ValueError(f"action must hold integer candidate indices, got booleans {picks.tolist()}")
    if not np.issubdtype(picks.dtype, np.integer):
        if not np.all(np.isfinite(picks)) or np.any(picks != np.round(picks)):
            raise ValueError(f"action must hold integer candidate indices, got {picks.tolist()}")
        picks = picks.astype(np.int64)
    out_of_range = np.flatnonzero((picks < 0) | (picks >= n))
    if out_of_range.size:
        raise ValueError(
            f"action picks candidate(s) {picks[out_of_range].tolist()} in pool(s) {out_of_range.tolist()}; "
            f"indices must be in [0, {n})"
        )
    chosen = pools[torch.arange(k), torch.as_tensor(picks, dtype=torch.long)]
    masked = torch.nonzero(chosen < 0).squeeze(1).tolist()
    if masked:
        raise ValueError(
            f"action picks masked candidate(s) in pool(s) {masked} (the pool ran low); "
            "choose among entries with observation['action_mask'] == 1 (or env.action_masks())"
        )
    return chosen


def random_picks(pools: torch.Tensor, seed: int) -> torch.Tensor:
    """One uniformly random valid candidate per pool (global ids [K]), drawn from ``seed``.

    The same draws as picking ``rng.choice`` of the valid slots pool by pool: ``integers`` with one
    upper bound per pool consumes the generator in the same order.
    """
    valid = (pools >= 0).cpu().numpy()
    nth = np.random.default_rng(seed).integers(0, valid.sum(1))
    slots = np.argmax(np.cumsum(valid, 1) > nth[:, None], 1)
    return pools[torch.arange(pools.shape[0]), torch.as_tensor(slots, dtype=torch.long)]


def action_mask(pools: torch.Tensor) -> np.ndarray:
    """Bool [K, N]: which pool slots hold a candidate."""
    return (pools >= 0).cpu().numpy()


class CandidateImages(NamedTuple):
    """Where the candidates of pools [K, N] lie; each field but ``images`` is flat [K * N]."""

    valid: torch.Tensor  # bool: the slot holds a candidate
    images: torch.Tensor  # the distinct pool images the candidates lie in, sorted (run the network on these once)
    slot: torch.Tensor  # each candidate's position in ``images`` (0 for an empty slot)
    region: torch.Tensor  # each candidate's region index within its image (0 for an empty slot)


def candidate_images(pools: torch.Tensor, per_image: int, device: torch.device | str) -> CandidateImages:
    """The images to run the network on for a step's candidates, and where each candidate's region is in them."""
    flat = pools.reshape(-1).to(device)
    valid = flat >= 0
    ids = flat.clamp(min=0)
    images, position = torch.unique(torch.div(ids[valid], per_image, rounding_mode="floor"), return_inverse=True)
    slot = torch.zeros_like(ids)
    slot[valid] = position
    return CandidateImages(valid, images, slot, ids % per_image)
