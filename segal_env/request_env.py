"""The selection loop of SegALEnv on images nobody has labelled: which regions should a person label next?

Same candidate pools (pools.py), same features (observation.Observer), same action checks and spaces as
SegALEnv, so every SegAL policy (a baseline or a saved agent) acts on it unchanged. What differs is what
cannot exist without ground truth: there is no reward (0.0), the network is not fine-tuned between steps,
and a requested region counts in the "labelled so far" features with the classes the network predicts for
it (its real labels come back only after annotation).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from .config import DEFAULT_EXTRAS
from .layout import FeatureLayout
from .observation import Observer
from .pools import action_mask, chosen_regions, sample_pools
from .regions import LabeledRegions, RegionGrid
from .runtime import seeded_torch
from .trainer import SegTrainer


class RequestEnv(gym.Env):
    """Choose ``budget`` regions of ``images`` (uint8 [M, 3, H, W]), ``num_pools`` per step, each from a pool
    of ``pool_size`` candidates. ``state_images`` are labelled images whose predictions form the state set;
    ``exclude`` (bool [M, regions per image]) marks regions never to request (already labelled)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        trainer: SegTrainer,
        images: torch.Tensor,
        state_images: torch.Tensor,
        region_size: Sequence[int],
        budget: int,
        num_pools: int,
        pool_size: int,
        extra_features: Sequence[str] = DEFAULT_EXTRAS,
        mc_samples: int = 20,
        exclude: torch.Tensor | None = None,
    ):
        self.trainer = trainer
        self.grid = RegionGrid(
            (int(images.shape[-2]), int(images.shape[-1])), (int(region_size[0]), int(region_size[1]))
        )
        self.layout = FeatureLayout(trainer.num_classes, tuple(extra_features))
        if "bald" in self.layout.extras and mc_samples < 2:
            raise ValueError("the 'bald' feature needs mc_samples >= 2; raise it or leave 'bald' out of extra_features")
        if budget < 1 or budget % num_pools:
            raise ValueError(
                f"budget {budget} must be a positive multiple of num_pools={num_pools} (one region per pool and step)"
            )
        device = trainer.device
        self.requested = LabeledRegions(self.grid, images.shape[0], device)
        self.exclude = (
            torch.zeros(images.shape[0], self.grid.per_image, dtype=torch.bool) if exclude is None else exclude.bool()
        ).to(device)
        available = int((~self.exclude).sum())
        if budget > available:
            raise ValueError(
                f"budget {budget} is larger than the {available} regions that can be requested "
                f"({images.shape[0]} images x {self.grid.per_image} regions, minus those already labelled); lower it"
            )
        self.budget, self.num_pools, self.pool_size = int(budget), int(num_pools), int(pool_size)
        images = images.to(device)
        with torch.no_grad():  # the classes the network sees in each region: the stand-in for labels not given yet
            step = trainer.eval_batch_size
            predicted = torch.cat(
                [trainer.probabilities(images[i : i + step]).argmax(1) for i in range(0, len(images), step)]
            )
        predicted_histograms = self.grid.class_histograms(predicted, trainer.num_classes).view(-1, trainer.num_classes)
        self.observer = Observer(
            self.layout, self.grid, images, predicted_histograms, state_images.to(device), mc_samples
        )
        n_state = state_images.shape[0] * self.grid.per_image
        self.observation_space = spaces.Dict(
            {
                "state": spaces.Box(0.0, 1.0, (n_state, self.layout.state_dim), np.float32),
                "candidates": spaces.Box(0.0, 1.0, (num_pools, pool_size, self.layout.candidate_dim), np.float32),
                "action_mask": spaces.Box(0.0, 1.0, (num_pools, pool_size), np.float32),
                "labeled_class_fraction": spaces.Box(0.0, 1.0, (trainer.num_classes,), np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([pool_size] * num_pools)
        self.pools = torch.empty(0, dtype=torch.long)
        self._state_rows: np.ndarray | None = None

    @property
    def feature_layout(self) -> FeatureLayout:
        return self.layout

    def action_masks(self) -> np.ndarray:
        """Flat [K * N] mask of valid candidates (sb3-contrib's MaskablePPO reads it)."""
        if self.pools.numel() == 0:
            raise RuntimeError("call reset() before action_masks(): the pools are drawn at reset")
        return action_mask(self.pools).reshape(-1)

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.requested.clear()
        self.pools = self._next_pools()
        obs = self._observe(None)
        self._state_rows = obs["state"]  # the network does not change: the state set's rows neither
        return obs, {"regions_requested": 0}

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.pools.numel() == 0:
            raise RuntimeError("call reset() before step()")
        chosen = chosen_regions(self.pools, action)
        self.requested.mark(chosen.to(self.trainer.device))
        done = self.requested.count >= self.budget
        info = {"chosen": chosen.tolist(), "regions_requested": self.requested.count}
        if not done:
            self.pools = self._next_pools()
        return self._observe(self._state_rows), 0.0, done, False, info

    def _observe(self, state_rows: np.ndarray | None) -> dict[str, np.ndarray]:
        """The observation, with BALD's dropout draws seeded from the env's generator (same seed, same episode)."""
        with seeded_torch(int(self.np_random.integers(2**31 - 1)), self.trainer.device):
            return self.observer.observe(self.trainer, self.pools, self.requested.labeled_ids(), state_rows)

    def _next_pools(self) -> torch.Tensor:
        available = ~(self.requested.labeled | self.exclude)
        return sample_pools(available, self.num_pools, self.pool_size, self.np_random)
