"""Choosing among valid candidates only: the one masked argmax and the one uniform valid pick every policy uses.

A candidate is valid where ``action_mask > 0.5`` (the env masks empty pool slots). ``masked_argmax``
takes numpy arrays (baselines, SB3's predict) or torch tensors (the Q-network, on its device).
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def masked_argmax(scores: Array, action_mask: Array) -> Array:
    """Argmax over the last axis among valid candidates: (..., N) -> (...)."""
    if isinstance(scores, torch.Tensor):
        return scores.masked_fill(action_mask < 0.5, -torch.inf).argmax(dim=-1)
    return np.where(action_mask > 0.5, scores, -np.inf).argmax(axis=-1)


def sample_valid(action_mask: np.ndarray, rng: Any = np.random) -> np.ndarray:
    """One uniform pick among the valid candidates of every pool (``rng``: a Generator or ``np.random``)."""
    return masked_argmax(rng.random(action_mask.shape), action_mask)
