"""The observation of a step: feature rows of the state set and of every candidate, from one batched forward.

The network runs once over the state images and the distinct images the candidates lie in; BALD adds
MC-dropout draws of the head on the candidate images only. Every feature is a tensor op over all
regions at once (features.py); the column order is layout.py's.
"""

from __future__ import annotations

import numpy as np
import torch

from .features import base_region_features, candidate_rows, extra_region_features
from .layout import FeatureLayout
from .pools import candidate_images
from .regions import RegionGrid
from .scores import Predictions
from .trainer import SegTrainer


class Observer:
    """Builds observations for one env: its grid, feature layout, pool images and state images."""

    def __init__(
        self,
        layout: FeatureLayout,
        grid: RegionGrid,
        pool_images: torch.Tensor,
        pool_class_histograms: torch.Tensor,
        state_images: torch.Tensor,
        mc_samples: int,
    ):
        self.layout, self.grid, self.mc_samples = layout, grid, mc_samples
        self.pool_images, self.state_images = pool_images, state_images
        self.pool_class_histograms = pool_class_histograms  # ground truth, [num regions, C]: labeled regions only

    def state_rows(self, probs: torch.Tensor) -> np.ndarray:
        """[n_state regions, state_dim] rows of the state images' softmax maps."""
        rows = base_region_features(Predictions(probs), self.grid)
        return rows.reshape(-1, self.layout.state_dim).cpu().numpy()

    def observe(
        self, trainer: SegTrainer, pools: torch.Tensor, labeled_ids: torch.Tensor, state_rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The observation dict for candidate pools [K, N] (-1 = empty) given the labeled region ids.

        ``state_rows``: the state set's rows when already known (at reset: those of the start network).
        """
        k, n = pools.shape
        where = candidate_images(pools, self.grid.per_image, self.pool_images.device)
        cand_images = self.pool_images[where.images]
        n_state = 0 if state_rows is not None else self.state_images.shape[0]
        batch = cand_images if state_rows is not None else torch.cat([self.state_images, cand_images])
        probs = trainer.probabilities(batch)
        if state_rows is None:
            state_rows = self.state_rows(probs[:n_state])
        mutual_information = None
        if "bald" in self.layout.extras:
            mutual_information = trainer.mc_mutual_information(cand_images, self.mc_samples)
        pred = Predictions(probs[n_state:], mutual_information)
        rows = base_region_features(pred, self.grid)
        extras = extra_region_features(self.layout.extras, pred, self.grid)
        labeled_hist = self.pool_class_histograms[labeled_ids]
        at = (where.slot, where.region)
        cand = candidate_rows(self.layout, rows[at], extras[at], where.valid, labeled_hist)
        labeled_pixels = labeled_hist.sum(0).float()
        fraction = labeled_pixels / labeled_pixels.sum().clamp_min(1.0)
        return {
            "state": np.array(state_rows, dtype=np.float32),  # a copy: the cached start rows must not leak
            "candidates": cand.reshape(k, n, -1).clamp(0.0, 1.0).cpu().numpy().astype(np.float32),
            "action_mask": where.valid.reshape(k, n).float().cpu().numpy(),
            "labeled_class_fraction": fraction.cpu().numpy().astype(np.float32),
        }
