"""Label-reading oracles: upper bounds on what selecting regions can gain, not policies to deploy.

``LookaheadOracle`` tries whole K-sets; ``ErrorOracle`` picks, in every pool, the region the current network
gets most wrong (the true error that every uncertainty score only estimates).

At every step the look-ahead oracle builds a few candidate K-sets (the pick of every heuristic baseline plus
some random sets), asks the env what each would do to the reward set if it were the next step (``env.lookahead``:
fine-tuning from the same network with the step's own random numbers, then reading D_R's *true labels*), and
keeps the best. Because the look-ahead uses the step's own draws, its reward is the best of the candidates'
rewards exactly. Both read labels, so they only run in an env that has them: a label-request env
(segal_env.RequestEnv) or anything without ``lookahead`` / ``candidate_errors`` is refused at construction, and
``segal-request`` never offers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from agents.baselines import BASELINES, DEFAULT_RULES, RegionScoreBaseline
from agents.masking import masked_argmax, sample_valid


class LookaheadOracle:
    """Greedy one-step look-ahead over the baselines' picks and ``random_sets`` random K-sets (privileged).

    :param env: a SegAL env with the true labels (``SegALEnv``, possibly wrapped); not a VecEnv
    :param rules: baseline names whose picks are candidates (those the env's features cannot score are skipped)
    :param random_sets: random valid K-sets added to the candidates at every step
    :param seed: seed of the random sets
    :param repeats: fine-tuning seeds each candidate is looked ahead with (the mean decides; cost x repeats)
    """

    reads_labels = True
    name = "oracle"

    def __init__(
        self, env: gym.Env, rules: Sequence[str] = DEFAULT_RULES, random_sets: int = 4, seed: int = 0, repeats: int = 1
    ) -> None:
        unwrapped: Any = getattr(env, "unwrapped", env)
        if not callable(getattr(unwrapped, "lookahead", None)):
            raise ValueError(
                f"the oracle reads the true labels through env.lookahead(), which {type(unwrapped).__name__} does not "
                "have: it is an upper bound for benchmarks on labelled data (SegAL envs), never a policy for "
                "unlabelled images; use a baseline or a trained agent there"
            )
        self.env = unwrapped  # a SegALEnv: its lookahead and feature_layout
        layout = self.env.feature_layout
        self.rules: list[RegionScoreBaseline] = []
        for rule in rules:
            try:
                self.rules.append(BASELINES[rule](layout, seed=seed))
            except KeyError:  # a score the env was built without (extra_features): not a candidate
                continue
        self.random_sets = random_sets
        self.repeats = repeats
        self.rng = np.random.default_rng(seed)
        self.last_values: list[float] = []
        self.last_sources: list[str] = []

    def candidates(self, observation: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
        """The distinct candidate actions of this step and where each came from."""
        actions: list[np.ndarray] = []
        sources: list[str] = []
        proposals = [(rule.name, rule.predict(observation)[0]) for rule in self.rules]
        proposals += [("random", sample_valid(observation["action_mask"], self.rng)) for _ in range(self.random_sets)]
        for source, action in proposals:
            action = np.asarray(action, dtype=np.int64)
            if not any(np.array_equal(action, seen) for seen in actions):
                actions.append(action)
                sources.append(source)
        return actions, sources

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        if observation["action_mask"].ndim != 2:
            raise ValueError(
                "the oracle acts in one env at a time (it steps that env's look-ahead), not on a VecEnv batch"
            )
        actions, sources = self.candidates(observation)
        values = self.env.lookahead(actions, self.repeats)
        self.last_values, self.last_sources = values, sources
        return actions[int(np.argmax(values))], state

    def __repr__(self) -> str:
        return f"LookaheadOracle(rules={[r.name for r in self.rules]}, random_sets={self.random_sets}, repeats={self.repeats})"


ERROR_KINDS = ("error", "loss")  # the keys of segal_env.scores.TRUE_ERRORS (tested); agents never import the env


class ErrorOracle:
    """Per pool, the candidate with the largest true error of the current network (privileged).

    Uncertainty rules (entropy, margin, ...) rank regions by how wrong the network *might* be; this oracle
    ranks them by how wrong it *is* (``env.candidate_errors``: the misclassified share of the region's pixels,
    or their cross-entropy, optionally weighted towards rare classes). It bounds what a better estimate of
    the error could gain, one step at a time and with no look-ahead.

    :param env: a SegAL env with the true labels (``SegALEnv``, possibly wrapped); not a VecEnv
    :param kind: "error" or "loss" (segal_env.scores.TRUE_ERRORS)
    :param balanced: weight each pixel by the inverse frequency of its true class
    :param seed: unused (the oracle draws nothing); accepted so every policy is built the same way
    """

    reads_labels = True

    def __init__(self, env: gym.Env, kind: str = "error", balanced: bool = False, seed: int = 0) -> None:
        unwrapped: Any = getattr(env, "unwrapped", env)
        if not callable(getattr(unwrapped, "candidate_errors", None)):
            raise ValueError(
                f"the error oracle reads the true labels through env.candidate_errors(), which "
                f"{type(unwrapped).__name__} does not have: it is an upper bound for benchmarks on labelled data "
                "(SegAL envs), never a policy for unlabelled images; use a baseline or a trained agent there"
            )
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}; valid: {', '.join(ERROR_KINDS)}")
        self.env = unwrapped
        self.kind, self.balanced = kind, balanced

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        mask = observation["action_mask"]
        if mask.ndim != 2:
            raise ValueError("the error oracle reads one env's current pools, not a VecEnv batch")
        errors = self.env.candidate_errors(self.kind, self.balanced)
        return masked_argmax(np.nan_to_num(errors, nan=-np.inf), mask), state

    def __repr__(self) -> str:
        return f"ErrorOracle(kind={self.kind!r}, balanced={self.balanced})"
