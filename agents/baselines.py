"""Heuristic labelling policies with SB3's ``predict`` interface, so they are benchmarked exactly like agents.

Each baseline scores every candidate row of the observation (columns from the env's
``FeatureLayout``) and picks, per pool, the highest-scoring *valid* candidate. They read only the
observation: no back channel into the env. ``predict`` takes one observation (candidates
(K, N, Da) -> actions (K,)) or a VecEnv batch (B, K, N, Da) -> (B, K).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from agents.masking import masked_argmax

if TYPE_CHECKING:  # the agents import without the environment package
    from segal_env.layout import FeatureLayout


class RegionScoreBaseline:
    """Base class: subclasses define ``score(obs) -> (..., K, N)``; higher is picked first."""

    name: ClassVar[str]

    def __init__(self, layout: FeatureLayout, seed: int | None = 0) -> None:
        self.layout = layout
        self.seed = seed

    def score(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        return masked_argmax(self.score(observation), observation["action_mask"]), state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(extras={list(self.layout.extras)})"


class RandomBaseline(RegionScoreBaseline):
    """Uniform among the valid candidates of each pool, from its own seeded Generator."""

    name = "random"

    def __init__(self, layout: FeatureLayout, seed: int | None = 0) -> None:
        super().__init__(layout, seed)
        self.rng = np.random.default_rng(seed)

    def score(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.random(obs["action_mask"].shape)


class EntropyBaseline(RegionScoreBaseline):
    """Mean softmax entropy of the region: the "entropy" extra when the env has it, else the
    mean of the 8x8 mean-pooled entropy map (the same quantity up to pooling)."""

    name = "entropy"

    def score(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        candidates = obs["candidates"]
        if "entropy" in self.layout.extras:
            return candidates[..., self.layout.extra("entropy")]
        return candidates[..., self.layout.entropy_pool("mean")].mean(axis=-1)


class _ExtraColumnBaseline(RegionScoreBaseline):
    """Score = one extra feature column; fails at construction when the env was built without it."""

    feature: ClassVar[str]

    def __init__(self, layout: FeatureLayout, seed: int | None = 0) -> None:
        super().__init__(layout, seed)
        self.column = layout.extra(self.feature)  # KeyError naming the env kwarg `extra_features`

    def score(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return obs["candidates"][..., self.column]


class BALDBaseline(_ExtraColumnBaseline):
    """MC-dropout mutual information (needs ``extra_features`` with "bald")."""

    name = feature = "bald"


class MarginBaseline(_ExtraColumnBaseline):
    """Smallest margin between the two most likely classes (needs "margin")."""

    name = feature = "margin"


class ConfidenceBaseline(_ExtraColumnBaseline):
    """Least confidence, 1 - p_top1 (needs "confidence")."""

    name = feature = "confidence"


def expected_rarity(layout: FeatureLayout, obs: dict[str, np.ndarray], smoothing: float) -> np.ndarray:
    """How under-labelled a candidate's predicted classes are: (..., K, N).

    rarity = sum_c hist_c / (labeled_fraction_c + smoothing), with hist the candidate's normalised
    predicted-class histogram; ``smoothing`` bounds the weight of classes never labelled yet (1 / smoothing).
    """
    hist = obs["candidates"][..., layout.class_hist]
    hist = hist / np.maximum(hist.sum(axis=-1, keepdims=True), 1e-8)
    weights = 1.0 / (obs["labeled_class_fraction"] + smoothing)  # (..., C)
    return np.einsum("...knc,...c->...kn", hist, weights)


RARITY_SMOOTHING = 0.05
"""``expected_rarity``'s default smoothing: a class never labelled yet weighs 20x a fully labelled one."""


class _RarityWeighted(RegionScoreBaseline):
    """Mixin placed before a rule: that rule's score x ``expected_rarity``, so uncertain regions predicted to hold
    under-labelled classes come first."""

    def __init__(self, layout: FeatureLayout, seed: int | None = 0, smoothing: float = RARITY_SMOOTHING) -> None:
        super().__init__(layout, seed)
        self.smoothing = smoothing

    def score(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return super().score(obs) * expected_rarity(self.layout, obs, self.smoothing)


class ClassBalanceBaseline(_RarityWeighted, EntropyBaseline):
    """Entropy x expected rarity."""

    name = "class_balance"


class MarginBalanceBaseline(_RarityWeighted, MarginBaseline):
    """Margin x expected rarity: class_balance with margin, the best single rule on both data sets
    (docs/dqn.md), as the uncertainty term (needs "margin")."""

    name = "margin_balance"


def rarity_weighted_column(name: str) -> str | None:
    """The extra feature a rarity-weighted rule multiplies by ``expected_rarity`` (margin_balance -> "margin"), so
    that a Q-network can start from that rule's score (BatchDQN's ``prior``); None for any other name."""
    rule = BASELINES.get(name)
    if rule is not None and issubclass(rule, _RarityWeighted) and issubclass(rule, _ExtraColumnBaseline):
        return rule.feature
    return None


BASELINES: dict[str, type[RegionScoreBaseline]] = {
    cls.name: cls
    for cls in (
        RandomBaseline,
        EntropyBaseline,
        BALDBaseline,
        MarginBaseline,
        ConfidenceBaseline,
        ClassBalanceBaseline,
        MarginBalanceBaseline,
    )
}

DEFAULT_RULES = ("entropy", "margin", "confidence", "bald", "class_balance")
"""The heuristics the look-ahead oracle and the rule choosers pick among by default (margin_balance came later and
is opt-in, so that their measured tables stay reproducible)."""
