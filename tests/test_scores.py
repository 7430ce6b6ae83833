"""Per-pixel uncertainty scores (segal_env.scores), checked against their formulas on hand-made predictions."""

from __future__ import annotations

import math

import pytest
import torch

from segal_env.layout import EXTRA_FEATURES
from segal_env.scores import PIXEL_SCORES, Predictions, bald, confidence, entropy, margin


def two_pixels() -> Predictions:
    # pixel 0: certain of class 0; pixel 1: uniform over 4 classes
    probs = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]]).T.reshape(1, 4, 1, 2)
    return Predictions(probs)


def test_scores_follow_their_formulas():
    pred = two_pixels()
    assert torch.allclose(entropy(pred), torch.tensor([[[0.0, 1.0]]]), atol=1e-5)  # H / log C
    assert torch.allclose(margin(pred), torch.tensor([[[0.0, 1.0]]]))  # 1 - (p1 - p2)
    assert torch.allclose(confidence(pred), torch.tensor([[[0.0, 0.75]]]))  # 1 - p1


def test_bald_is_the_mutual_information_over_log_c_upsampled():
    pred = Predictions(two_pixels().probs, mutual_information=torch.full((1, 1, 1), math.log(4) / 2))
    assert torch.allclose(bald(pred), torch.full((1, 1, 2), 0.5))
    with pytest.raises(ValueError, match="mc_samples"):
        bald(two_pixels())


def test_every_score_is_an_extra_feature_with_a_description():
    assert set(EXTRA_FEATURES) == set(PIXEL_SCORES) and all(EXTRA_FEATURES.values())
