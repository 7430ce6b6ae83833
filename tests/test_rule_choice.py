"""Choosing the rule per state: the wrapper acts exactly as the rule it names, and SB3 and the bandit learn on it."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO

import segal_env  # noqa: F401
from agents import make_agent
from agents.rule_choice import RuleBandit, RuleChoiceWrapper
from experiments.episodes import play_episode


@pytest.fixture
def env(tiny_kwargs, one_torch_thread):
    return gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "device": "cpu"})


def test_choosing_one_rule_every_step_is_that_rule(env):
    wrapped = RuleChoiceWrapper(env, rules=("entropy", "margin"))
    plain = play_episode(make_agent("margin", env), env, seed=3)
    obs, _ = wrapped.reset(seed=3)
    rewards, done = [], False
    while not done:
        assert wrapped.observation_space.contains(obs)
        obs, reward, done, _, info = wrapped.step(1)
        rewards.append(reward)
        assert info["rule"] == "margin"
    assert rewards == plain.rewards
    with pytest.raises(ValueError, match="rule index"):
        wrapped.step(2)


def test_the_wrapper_passes_the_checker_and_sb3_learns_on_it(env):
    wrapped = RuleChoiceWrapper(env)
    with warnings.catch_warnings():  # the checker notes that it is checking a wrapper: that is the point here
        warnings.filterwarnings("ignore", message=".*different from the unwrapped")
        check_env(wrapped, skip_render_check=True)
    PPO("MlpPolicy", wrapped, n_steps=8, batch_size=8, n_epochs=1, seed=0).learn(8)
    with pytest.raises(ValueError, match="unknown rule"):
        RuleChoiceWrapper(env, rules=("oracle",))


def test_the_bandit_tries_every_rule_then_prefers_the_best_mean(env):
    wrapped = RuleChoiceWrapper(env, rules=("entropy", "margin", "random"))
    bandit = RuleBandit(wrapped).learn(6)
    assert (bandit.counts >= 1).all() and bandit.counts.sum() == 6
    action, _ = bandit.predict(np.zeros(wrapped.observation_space.shape, np.float32))
    assert int(action) == int(np.argmax(bandit.means))
