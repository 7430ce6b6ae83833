"""Per-pixel uncertainty scores, one small function each, with its math in the docstring.

Every score maps a network's predictions on n images to a map [n, H, W] with values in [0, 1]. The env
averages them over each region (the "extras" of a candidate row, layout.py) and the heuristic
baselines rank candidates by them. ``Predictions`` computes what several scores share (the entropy map,
the two best probabilities) once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch
import torch.nn.functional as F

EPS = 1e-6


def entropy_map(probs: torch.Tensor) -> torch.Tensor:
    """Per-pixel softmax entropy / log C, in [0, 1]: [n, C, H, W] -> [n, H, W]."""
    return -(probs * probs.clamp_min(EPS).log()).sum(1) / math.log(probs.shape[1])


@dataclass
class Predictions:
    """Softmax maps [n, C, H, W] of some images, and optionally their MC-dropout mutual information [n, h, w]."""

    probs: torch.Tensor
    mutual_information: torch.Tensor | None = None

    @cached_property
    def entropy(self) -> torch.Tensor:
        return entropy_map(self.probs)

    @cached_property
    def top2(self) -> torch.Tensor:
        """[n, 2, H, W]: the largest and second-largest class probability of each pixel."""
        return self.probs.topk(2, dim=1).values


def entropy(pred: Predictions) -> torch.Tensor:
    """Mean softmax entropy / log C: H[p] = -sum_c p_c log p_c, highest when every class is equally likely."""
    return pred.entropy


def margin(pred: Predictions) -> torch.Tensor:
    """1 - (p_top1 - p_top2): high when the two best classes are close."""
    return 1.0 - (pred.top2[:, 0] - pred.top2[:, 1])


def confidence(pred: Predictions) -> torch.Tensor:
    """1 - p_top1 (least confidence): high when even the best class is unlikely."""
    return 1.0 - pred.top2[:, 0]


def bald(pred: Predictions) -> torch.Tensor:
    """MC-dropout mutual information H[E p] - E H[p] / log C: disagreement between dropout draws.

    Computed at the head's resolution (models.SegmentationNet.mc_mutual_information) and upsampled
    bilinearly to the image size.
    """
    if pred.mutual_information is None:
        raise ValueError("the 'bald' score needs MC-dropout samples (mc_samples >= 2)")
    scaled = pred.mutual_information / math.log(pred.probs.shape[1])
    return F.interpolate(scaled[:, None], size=pred.probs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


PIXEL_SCORES: dict[str, Callable[[Predictions], torch.Tensor]] = {
    "entropy": entropy,
    "margin": margin,
    "confidence": confidence,
    "bald": bald,
}


# ---- privileged: how wrong a prediction truly is (reads labels; only the error oracles use these) ----
def misclassified(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """1 where the predicted class is not the true one, else 0: [n, C, H, W], labels [n, H, W] -> [n, H, W].

    Labels must be valid class ids (the caller masks ignored pixels).
    """
    return (probs.argmax(1) != labels).float()


def cross_entropy(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-log p_true: the training loss of each pixel, unbounded (large where the network is confidently wrong)."""
    return -probs.gather(1, labels[:, None]).squeeze(1).clamp_min(EPS).log()


TRUE_ERRORS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "error": misclassified,
    "loss": cross_entropy,
}
