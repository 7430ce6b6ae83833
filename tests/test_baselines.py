from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from agents import (
    BASELINES,
    ClassBalanceBaseline,
    EntropyBaseline,
    MarginBalanceBaseline,
    RandomBaseline,
    feature_layout,
    make_agent,
)
from segal_env.layout import FeatureLayout

from toy_env import ToyRegionEnv

ALL_EXTRAS = ("entropy", "margin", "confidence", "bald")
LAYOUT = FeatureLayout(3, ALL_EXTRAS)
# pool 0: candidate 1 scores best but is masked; pool 1: all valid
SCORES = np.array([[0.2, 0.9, 0.5], [0.1, 0.3, 0.2]])
MASK = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
EXPECTED = np.array([2, 1])


def hand_built_obs(layout: FeatureLayout = LAYOUT) -> dict[str, np.ndarray]:
    candidates = np.zeros((2, 3, layout.candidate_dim), np.float32)
    candidates[..., layout.class_hist] = 1.0 / layout.num_classes
    return {
        "state": np.zeros((4, layout.state_dim), np.float32),
        "candidates": candidates,
        "action_mask": MASK.astype(np.float32),
        "labeled_class_fraction": np.full(layout.num_classes, 1.0 / layout.num_classes, np.float32),
    }


BALANCED_BASE = {"class_balance": "entropy", "margin_balance": "margin"}


@pytest.mark.parametrize("name", ["entropy", "bald", "margin", "confidence", "class_balance", "margin_balance"])
def test_score_baselines_pick_the_best_valid_candidate(name):
    obs = hand_built_obs()
    column = LAYOUT.extra(BALANCED_BASE.get(name, name))
    obs["candidates"][..., column] = SCORES
    actions, state = BASELINES[name](LAYOUT).predict(obs)
    np.testing.assert_array_equal(actions, EXPECTED)
    assert state is None


def test_entropy_without_the_extra_uses_the_pooled_mean_entropy_map():
    layout = FeatureLayout(3)
    obs = hand_built_obs(layout)
    obs["candidates"][..., layout.entropy_pool("mean")] = SCORES[..., None]
    obs["candidates"][..., layout.entropy_pool("max")] = 1.0 - SCORES[..., None]  # must be ignored
    np.testing.assert_array_equal(EntropyBaseline(layout).predict(obs)[0], EXPECTED)


@pytest.mark.parametrize("name", ["bald", "margin", "confidence", "margin_balance"])
def test_missing_extra_feature_names_the_env_kwarg(name):
    with pytest.raises(KeyError, match="extra_features"):
        BASELINES[name](FeatureLayout(3, ("entropy",)))


@pytest.mark.parametrize("cls", [ClassBalanceBaseline, MarginBalanceBaseline])
def test_balanced_rules_prefer_rare_classes(cls):
    uncertainty = LAYOUT.extra(BALANCED_BASE[cls.name])
    obs = hand_built_obs()
    obs["action_mask"][:] = 1.0
    obs["candidates"][..., uncertainty] = 0.4  # equal uncertainty everywhere
    hist = np.zeros((2, 3, 3), np.float32)
    hist[:, 0, 0] = 1.0  # common class
    hist[:, 1, 1] = 1.0
    hist[:, 2, 2] = 1.0  # rarest labelled class
    obs["candidates"][..., LAYOUT.class_hist] = hist
    obs["labeled_class_fraction"] = np.array([0.8, 0.15, 0.05], np.float32)
    np.testing.assert_array_equal(cls(LAYOUT).predict(obs)[0], [2, 2])
    # much higher uncertainty still wins over a rarer class: 1.0 / (0.15 + 0.05) > 0.4 / (0.05 + 0.05)
    obs["candidates"][0, 1, uncertainty] = 1.0
    np.testing.assert_array_equal(cls(LAYOUT).predict(obs)[0], [1, 2])


def test_random_is_uniform_over_valid_candidates_and_seeded():
    obs = hand_built_obs()
    picks = np.array([RandomBaseline(LAYOUT, seed=0).predict(obs)[0] for _ in range(3)])
    agent = RandomBaseline(LAYOUT, seed=1)
    many = np.array([agent.predict(obs)[0] for _ in range(600)])
    assert set(many[:, 0]) == {0, 2} and set(many[:, 1]) == {0, 1, 2}
    assert abs((many[:, 0] == 0).mean() - 0.5) < 0.1
    assert (picks == picks[0]).all()  # same seed, same picks
    again = RandomBaseline(LAYOUT, seed=1)
    np.testing.assert_array_equal([again.predict(obs)[0] for _ in range(600)], many)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_batched_observations(name):
    env = ToyRegionEnv()
    env.reset(seed=0)
    observations = [env.reset()[0] for _ in range(5)]
    batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    actions, _ = BASELINES[name](env.feature_layout, seed=0).predict(batch)
    assert actions.shape == (5, 2)
    assert (np.take_along_axis(batch["action_mask"], actions[..., None], axis=2) == 1).all()
    if name != "random":
        single = BASELINES[name](env.feature_layout).predict
        np.testing.assert_array_equal(actions, [single(o)[0] for o in observations])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_evaluate_policy_runs_every_baseline(name):
    """SB3's evaluate_policy benchmarks a baseline exactly like a trained agent."""
    venv = DummyVecEnv([ToyRegionEnv] * 2)
    venv.seed(0)
    agent = make_agent(name, venv, seed=0)
    rewards, lengths = evaluate_policy(agent, venv, n_eval_episodes=4, return_episode_rewards=True, warn=False)
    assert lengths == [5] * 4 and all(0 <= r <= 5 for r in rewards)


def test_entropy_beats_random_on_the_toy_task():
    returns = {}
    for name in ("entropy", "random"):
        venv = DummyVecEnv([ToyRegionEnv])
        venv.seed(0)
        returns[name], _ = evaluate_policy(make_agent(name, venv), venv, n_eval_episodes=10, warn=False)
    assert returns["entropy"] > returns["random"] + 0.5


def test_make_agent_by_name_and_unknown_name():
    env = ToyRegionEnv(extra_features=("entropy",))
    assert feature_layout(env) is env.feature_layout
    assert isinstance(make_agent("class_balance", env), ClassBalanceBaseline)
    with pytest.raises(ValueError, match="random, entropy, bald, margin, confidence, class_balance, margin_balance"):
        make_agent("wisdom", env)
    with pytest.raises(ValueError, match="reads the true labels"):  # an env without labels has no look-ahead
        make_agent("oracle", env)
    with pytest.raises(KeyError, match="extra_features"):
        make_agent("bald", env)
