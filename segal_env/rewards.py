"""The env's rewards, one small named unit each: the step's D_R mIoU gain, optionally minus the gain of a
reference pick made from the same state with the same random numbers (common random numbers).

Why a reference: one step's gain mixes the value of the picks with the luck of the fine-tuning (its batch
order, crops, flips). Fine-tuning the reference pick from the same network with the same seed and replay
draws shares that luck, so the difference keeps more of the picks' value (docs/al_dynamics.md,
docs/noise_floor.md). A reward with a reference costs a second fine-tuning per step.

Why a final-training reward: the score after the quiet final training (from the start network, fixed seeds:
``final_start="start"``, ``final_seed="fixed"``) is a function of the labels alone, so the same pick always earns
the same reward and an episode's rewards sum to what its labels are worth to the benchmark's score, read on D_R.
Within a state it separated margin's pick from a random one at signal/noise 1.82, against 0.12 for the step's
fine-tuning gain (docs/noise_floor.md section 4). It costs one final training per step.

A reference is a function ``(pools [K, N] long, candidates [K, N, D] float32, layout, step_seed) -> chosen
region ids [K]``: it sees what the agent sees, never a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .layout import FeatureLayout
from .pools import random_picks

Reference = Callable[[torch.Tensor, np.ndarray, FeatureLayout, int], torch.Tensor]


def score_reference(feature: str) -> Reference:
    """The candidate with the largest value of one uncertainty column (``extra_features``) per pool."""

    def pick(pools: torch.Tensor, candidates: np.ndarray, layout: FeatureLayout, seed: int) -> torch.Tensor:
        valid = (pools >= 0).cpu().numpy()
        slots = np.where(valid, candidates[..., layout.extra(feature)], -np.inf).argmax(axis=-1)
        return pools[torch.arange(pools.shape[0]), torch.as_tensor(slots, dtype=torch.long)]

    pick.__name__ = f"{feature}_reference"
    return pick


@dataclass(frozen=True)
class Reward:
    description: str
    reference: Reference | None = None
    needs_feature: str | None = None  # an extra feature the reference reads
    # scored on D_R after the quiet final training on the labels so far, not after the step's fine-tuning
    after_final_training: bool = False


REWARDS: dict[str, Reward] = {
    "gain": Reward("reward_scale x the D_R mIoU gain of the step (the paper)"),
    "gain_over_random": Reward(
        "the step's gain minus the gain of random picks from the same pools, fine-tuned from the same network with "
        "the same random numbers (twice the fine-tuning cost)",
        lambda pools, candidates, layout, seed: random_picks(pools, seed),
    ),
    "gain_over_margin": Reward(
        "the step's gain minus the gain of the margin rule's picks from the same pools and random numbers: zero for "
        "an agent that copies the best synthetic heuristic, positive when it beats it (twice the fine-tuning cost)",
        score_reference("margin"),
        "margin",
    ),
    "final_gain": Reward(
        "reward_scale x the step's gain in D_R mIoU after the quiet final training on the labels so far (final_* "
        "settings; from the start network with fixed seeds, so a function of the labels): the sum over an episode "
        "is what its labels are worth to the benchmark's score (one final training per step: a synthetic step 18x dearer)",
        after_final_training=True,
    ),
}
