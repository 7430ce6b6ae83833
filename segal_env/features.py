"""Per-region observation features, all tensor ops on the device (column order: layout.py).

Inputs are softmax maps of whole images; outputs are one row per grid region. Nothing here
loops over regions or pixels: regions are a reshape (RegionGrid.split), pooling is adaptive
pooling over the stacked regions, and KL matrices are one matrix product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layout import KL_BINS, KL_MAX, POOL_CELLS, FeatureLayout
from .regions import RegionGrid
from .scores import EPS, PIXEL_SCORES, Predictions


def base_region_features(pred: Predictions, grid: RegionGrid) -> torch.Tensor:
    """[n, R, C + 192] rows: predicted-class histogram, min/mean/max pooled entropy."""
    probs, entropy = pred.probs, pred.entropy
    n, num_classes = probs.shape[:2]
    pixels = grid.region_size[0] * grid.region_size[1]
    hist = grid.class_histograms(probs.argmax(1), num_classes).float() / pixels
    cells = grid.split(entropy).reshape(n * grid.per_image, 1, *grid.region_size)
    pooled_max = F.adaptive_max_pool2d(cells, POOL_CELLS)
    pooled_min = -F.adaptive_max_pool2d(-cells, POOL_CELLS)
    pooled_mean = F.adaptive_avg_pool2d(cells, POOL_CELLS)
    pooled = torch.cat([pooled_min, pooled_mean, pooled_max], 1).reshape(n, grid.per_image, -1)
    return torch.cat([hist, pooled], -1)


def region_mean(pixel_map: torch.Tensor, grid: RegionGrid) -> torch.Tensor:
    """[n, H, W] -> [n, R] mean over each region."""
    return grid.split(pixel_map).flatten(-2).mean(-1)


def extra_region_features(names: tuple[str, ...], pred: Predictions, grid: RegionGrid) -> torch.Tensor:
    """[n, R, len(names)] region means of the named per-pixel scores (scores.PIXEL_SCORES)."""
    columns = [region_mean(PIXEL_SCORES[name](pred), grid) for name in names]
    return torch.stack(columns, -1) if columns else pred.probs.new_zeros(pred.probs.shape[0], grid.per_image, 0)


def class_distribution(hist: torch.Tensor) -> torch.Tensor:
    """Smoothed, normalised class distribution of histogram rows (so KL stays finite)."""
    hist = hist.float() + EPS
    return hist / hist.sum(-1, keepdim=True)


def kl_matrix(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p_i || q_j) for all pairs: [M, C] x [L, C] -> [M, L], as one matrix product."""
    return (p * p.log()).sum(-1, keepdim=True) - p @ q.log().T


def kl_histogram(kl: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Row-wise normalised 32-bin histogram of KL values in [0, KL_MAX] (overflow in the last bin)."""
    bins = (kl.clamp(0, KL_MAX) / KL_MAX * KL_BINS).long().clamp(max=KL_BINS - 1)
    weight = torch.ones_like(kl) if valid is None else valid.float()
    hist = torch.zeros(kl.shape[0], KL_BINS, device=kl.device).scatter_add_(1, bins, weight)
    return hist / hist.sum(1, keepdim=True).clamp_min(1.0)


def kl_features(
    candidate_hist: torch.Tensor, candidate_valid: torch.Tensor, labeled_hist: torch.Tensor
) -> torch.Tensor:
    """[M, 64]: KL(candidate || every labeled region) and KL(candidate || every other valid candidate) histograms.

    candidate_hist: predicted class histograms [M, C]; labeled_hist: ground-truth histograms [L, C].
    """
    p = class_distribution(candidate_hist)
    if labeled_hist.shape[0]:
        to_labeled = kl_histogram(kl_matrix(p, class_distribution(labeled_hist)))
    else:
        to_labeled = p.new_zeros(p.shape[0], KL_BINS)
    others = candidate_valid[None, :] & ~torch.eye(p.shape[0], dtype=torch.bool, device=p.device)
    to_candidates = kl_histogram(kl_matrix(p, p), others)
    return torch.cat([to_labeled, to_candidates], -1) * candidate_valid[:, None]


def candidate_rows(
    layout: FeatureLayout,
    region_rows: torch.Tensor,
    extra_rows: torch.Tensor,
    candidate_valid: torch.Tensor,
    labeled_hist: torch.Tensor,
) -> torch.Tensor:
    """Assemble [M, Da] candidate rows from their base rows [M, C+192] and extras [M, E]."""
    kl = kl_features(region_rows[:, layout.class_hist], candidate_valid, labeled_hist)
    rows = torch.cat([region_rows, extra_rows, kl], -1)
    return rows * candidate_valid[:, None]
