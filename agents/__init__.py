"""Agents for SegAL: the batch-mode DQN of Casanova et al. (2020), heuristic baselines, and
adapters that let SB3's own algorithms (PPO, A2C, MaskablePPO, DQN) act on the region-set env."""

from agents.baselines import (
    BASELINES,
    BALDBaseline,
    ClassBalanceBaseline,
    ConfidenceBaseline,
    EntropyBaseline,
    MarginBalanceBaseline,
    MarginBaseline,
    RandomBaseline,
    RegionScoreBaseline,
)
from agents.batch_dqn import BatchDQN, RegionQNetwork, RegionQPolicy
from agents.error_regression import ErrorModel, ErrorRegression, fit_error_regression
from agents.extractors import RegionSetExtractor
from agents.loading import (
    ALGORITHMS,
    PRIVILEGED_POLICIES,
    MaskedPredictor,
    detect_algorithm,
    feature_layout,
    make_agent,
)
from agents.oracle import ErrorOracle, LookaheadOracle
from agents.wrappers import SinglePoolWrapper

__all__ = [
    "ALGORITHMS",
    "BASELINES",
    "BALDBaseline",
    "BatchDQN",
    "ClassBalanceBaseline",
    "ConfidenceBaseline",
    "EntropyBaseline",
    "ErrorModel",
    "ErrorOracle",
    "ErrorRegression",
    "LookaheadOracle",
    "MarginBalanceBaseline",
    "MarginBaseline",
    "MaskedPredictor",
    "PRIVILEGED_POLICIES",
    "RandomBaseline",
    "RegionQNetwork",
    "RegionQPolicy",
    "RegionScoreBaseline",
    "RegionSetExtractor",
    "SinglePoolWrapper",
    "detect_algorithm",
    "feature_layout",
    "fit_error_regression",
    "make_agent",
]
