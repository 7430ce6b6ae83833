"""Where each per-region feature sits in the observation: the one place that defines the order.

A candidate row is ``[class_hist C | entropy min 64 | entropy mean 64 | entropy max 64 | extras E |
KL-to-labeled 32 | KL-to-candidates 32]``; a state row is the first ``C + 192`` of those.
Every value lies in [0, 1]: histograms are normalised, entropies and BALD are divided by log(C),
margin and confidence are probabilities. The KL histograms are last so a policy can split off the
64 "gate" features with one slice whatever extras are enabled.
"""

from __future__ import annotations

from dataclasses import dataclass

from .scores import PIXEL_SCORES

POOL_CELLS = 8  # entropy map of a region pooled onto an 8x8 grid
KL_BINS = 32
KL_MAX = 8.0  # KL values above this fall in the last bin

# name -> what it measures: the region mean of that per-pixel score (scores.py)
EXTRA_FEATURES = {name: score.__doc__.split(":")[0] for name, score in PIXEL_SCORES.items()}


@dataclass(frozen=True)
class FeatureLayout:
    num_classes: int
    extras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [e for e in self.extras if e not in EXTRA_FEATURES]
        if unknown:
            raise ValueError(f"unknown extra feature(s) {unknown}; choose from {sorted(EXTRA_FEATURES)}")
        if len(set(self.extras)) != len(self.extras):
            raise ValueError(f"extra features listed twice: {self.extras}")

    @property
    def pooled(self) -> int:
        return 3 * POOL_CELLS * POOL_CELLS

    @property
    def state_dim(self) -> int:
        return self.num_classes + self.pooled

    @property
    def candidate_dim(self) -> int:
        return self.state_dim + len(self.extras) + 2 * KL_BINS

    @property
    def class_hist(self) -> slice:
        return slice(0, self.num_classes)

    def entropy_pool(self, kind: str) -> slice:
        """Columns of the 8x8 pooled entropy map; kind is 'min', 'mean' or 'max'."""
        start = self.num_classes + ("min", "mean", "max").index(kind) * POOL_CELLS * POOL_CELLS
        return slice(start, start + POOL_CELLS * POOL_CELLS)

    def extra(self, name: str) -> int:
        """Column of one extra feature; a clear error when the env was built without it."""
        if name not in self.extras:
            raise KeyError(
                f"feature '{name}' is not in this environment's observation (extras={list(self.extras)}); "
                f"create the env with extra_features including '{name}'"
            )
        return self.state_dim + self.extras.index(name)

    @property
    def kl(self) -> slice:
        """Both KL histograms (the 64 gate features of the query network)."""
        return slice(self.candidate_dim - 2 * KL_BINS, self.candidate_dim)

    @property
    def kl_labeled(self) -> slice:
        return slice(self.candidate_dim - 2 * KL_BINS, self.candidate_dim - KL_BINS)

    @property
    def kl_candidates(self) -> slice:
        return slice(self.candidate_dim - KL_BINS, self.candidate_dim)
