"""The look-ahead oracle and quiet test-mode scoring: what reads labels stays where labels are, the look-ahead
changes nothing, and a labeled set's score does not depend on the luck of the run."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

import segal_env  # noqa: F401
from agents import ErrorOracle, LookaheadOracle, make_agent
from agents.oracle import ERROR_KINDS
from experiments.episodes import play_episode
from segal_env import RequestEnv
from segal_env.data import load_splits
from segal_env.models import build_model
from segal_env.scores import TRUE_ERRORS
from segal_env.trainer import SegTrainer


@pytest.fixture
def tiny(tiny_kwargs, one_torch_thread):
    return {**tiny_kwargs, "device": "cpu"}


def make(tiny, **overrides) -> gym.Env:
    return gym.make("SegAL-Synthetic-v0", **{**tiny, **overrides})


def test_the_oracle_never_runs_without_labels(tiny):
    data = load_splits("synthetic", seed=3, n_train=6, n_val=1, n_test=1)["train"]
    torch.manual_seed(0)
    trainer = SegTrainer(build_model("unet_tiny", data.num_classes), data.num_classes, 255, "cpu")
    request_env = RequestEnv(
        trainer, data.images[2:], data.images[:2], (16, 16), budget=8, num_pools=4, pool_size=3, mc_samples=2
    )
    for name in ("oracle", "error_oracle"):
        with pytest.raises(ValueError, match="reads the true labels"):
            make_agent(name, request_env)
        with pytest.raises(ValueError, match="not a VecEnv"):
            make_agent(name, DummyVecEnv([lambda: make(tiny)]))


def test_lookahead_leaves_the_episode_unchanged(tiny):
    """Looking ahead before every step must not change a single reward of the episode that follows."""
    env = make(tiny)
    entropy = make_agent("entropy", env)
    plain = play_episode(entropy, env, seed=4)
    oracle = LookaheadOracle(env, random_sets=2)

    obs, _ = env.reset(seed=4)
    rewards, done = [], False
    while not done:
        actions, _ = oracle.candidates(obs)
        single = env.unwrapped.lookahead(actions)  # thrown away
        averaged = env.unwrapped.lookahead(actions, repeats=2)
        assert len(single) == len(averaged) == len(actions) and single != averaged
        with pytest.raises(ValueError, match="repeats"):
            env.unwrapped.lookahead(actions, repeats=0)
        obs, reward, done, _, _ = env.step(entropy.predict(obs)[0])
        rewards.append(reward)
    assert rewards == plain.rewards


def test_the_oracle_gets_the_best_look_ahead_value_as_its_reward(tiny):
    env = make(tiny)
    oracle = make_agent("oracle", env, seed=1)
    values, mious = [], []
    episode = play_episode(
        oracle,
        env,
        seed=2,
        on_step=lambda obs, a, r, info: (values.append(max(oracle.last_values)), mious.append(info["miou"])),
    )
    assert values == mious  # stepping the chosen set reproduces its look-ahead exactly
    assert len(oracle.last_sources) == len(oracle.last_values) >= 2
    again = play_episode(make_agent("oracle", env, seed=1), env, seed=2)
    assert again.rewards == episode.rewards


def test_fixed_seed_scoring_gives_identical_numbers_twice_and_ignores_the_episode(tiny):
    """With final_seed="fixed" and final_start="start", a test score is a function of the labeled set."""
    env = make(
        tiny,
        mode="test",
        final_training=True,
        final_start="start",
        final_seed="fixed",
        final_average=0.5,
        final_repeats=2,
        final_steps=4,
    )
    env.reset(seed=0)
    u = env.unwrapped
    u.labeled.mark(u.pools[:, 0].clone())
    first = u._test_evaluation(seed=1)
    second = u._test_evaluation(seed=999)  # another episode's draw: ignored
    assert first == second
    u.trainer.model.apply(lambda m: m.reset_parameters() if isinstance(m, torch.nn.Conv2d) else None)
    assert u._test_evaluation(seed=5) == first  # starts from the start network, not from wherever the episode went
    # the episode's seed does matter with final_seed="episode"
    episodic = make(tiny, mode="test", final_training=True, final_steps=4)
    episodic.reset(seed=0)
    e = episodic.unwrapped
    e.labeled.mark(e.pools[:, 0].clone())
    assert e._test_evaluation(seed=1) == e._test_evaluation(seed=1)


def test_the_reward_set_score_judges_the_network_scored_on_test(tiny):
    """info["reward_set_final_miou"] comes from the same final training as test_miou: it equals a separate D_R
    final training under fixed seeds, and scoring D_R beside test leaves the test score as it was."""
    env = make(tiny, mode="test", final_training=True, final_start="start", final_seed="fixed", final_steps=4)
    env.reset(seed=0)
    u = env.unwrapped
    action = np.zeros(u.config.num_pools, dtype=np.int64)
    while True:
        _, _, terminated, _, info = env.step(action)
        if terminated:
            break
    assert info["reward_set_final_miou"] == u.reward_set_final_score(seed=123)  # fixed seeds: the episode's is ignored
    test = u.roles.test
    [(test_alone, _)] = u._final_scores([(test.images, test.labels)], seed=1)
    assert test_alone == info["test_miou"]
    # without final training it is the episode's own D_R mIoU
    plain = make(tiny, mode="test", eval_budgets=[u.config.num_pools])
    plain.reset(seed=0)
    _, _, _, _, info = plain.step(action)
    assert "test_miou" in info and info["reward_set_final_miou"] == info["miou"]


def test_stochastic_weight_averaging_changes_the_evaluated_weights(tiny):
    env = make(tiny, mode="test", final_training=True, final_steps=6)
    env.reset(seed=0)
    u = env.unwrapped
    u.labeled.mark(u.pools[:, 0].clone())
    plain = u._test_evaluation(seed=3)
    u.config = dataclasses.replace(u.config, final_average=0.5)
    averaged = u._test_evaluation(seed=3)
    assert plain["test_miou"] != averaged["test_miou"]


def test_a_start_share_reaches_the_final_training_and_is_off_without_regions(tiny):
    env = make(tiny, mode="test", final_training=True, final_steps=6, final_start="start")
    env.reset(seed=0)
    u = env.unwrapped
    empty = u._test_evaluation(seed=3)
    u.config = dataclasses.replace(u.config, final_start_share=0.5)
    assert u._test_evaluation(seed=3) == empty  # no region: every sample is the start set's, as before
    u.labeled.mark(u.pools[:, 0].clone())
    shared = u._test_evaluation(seed=3)
    u.config = dataclasses.replace(u.config, final_start_share=None)
    assert u._test_evaluation(seed=3)["test_miou"] != shared["test_miou"]


def test_gain_over_margin_is_zero_for_the_margin_rule(tiny):
    env = make(tiny, reward="gain_over_margin")
    episode = play_episode(make_agent("margin", env), env, seed=0)
    assert episode.rewards == [0.0] * len(episode.rewards)
    assert all("reference_gain" in info for info in episode.infos)
    with pytest.raises(ValueError, match="extra_features"):
        make(tiny, reward="gain_over_margin", extra_features=["entropy"])


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("final_average", 1.0, "final_average"),
        ("final_repeats", 0, "final_repeats"),
        ("final_start", "best", "final_start"),
        ("final_seed", "x", "final_seed"),
        ("final_start_share", 1.5, "final_start_share"),
    ],
)
def test_bad_final_training_settings_name_the_key(tiny, key, value, match):
    with pytest.raises(ValueError, match=match):
        make(tiny, **{key: value})


def test_oracle_is_a_benchmark_policy_but_not_a_baseline():
    from experiments.benchmark.protocol import parse_policies
    from experiments.benchmark.statistics import regions_interval, seeds_for_2se

    assert parse_policies(["oracle", "margin"]) == {"oracle": "oracle", "margin": "margin"}
    assert seeds_for_2se(0.5, 1.0) == 16 and seeds_for_2se(0.0, 1.0) is None
    budgets = [10, 20, 30]
    per_seed = np.array([[0.30, 0.40, 0.50], [0.32, 0.42, 0.52], [0.28, 0.38, 0.48]])
    low, high = regions_interval(budgets, per_seed, 0.40)
    assert 10 <= low <= 20 <= high <= 30
    assert regions_interval(budgets, per_seed, 0.60) == (None, None)


def test_candidate_errors_are_the_true_error_of_each_candidate_region(tiny):
    env = make(tiny)
    obs, _ = env.reset(seed=2)
    u = env.unwrapped
    errors = u.candidate_errors()
    valid = obs["action_mask"] > 0.5
    assert errors.shape == valid.shape and np.isnan(errors[~valid]).all() and not np.isnan(errors[valid]).any()
    assert ((errors[valid] >= 0) & (errors[valid] <= 1)).all() and errors[valid].max() > 0
    # one candidate by hand: the share of its labelled pixels whose argmax is not the true class
    pool, slot = np.argwhere(valid)[-1]
    region_id = int(u.pools[pool, slot])
    image, region = divmod(region_id, u.grid.per_image)
    probs = u.trainer.probabilities(u.data.pool_images[image : image + 1])
    predicted = u.grid.split(probs.argmax(1))[0, region]
    truth = u.grid.split(u.data.pool_labels[image : image + 1].long())[0, region]
    counted = truth < u.num_classes
    assert errors[pool, slot] == pytest.approx(float((predicted != truth)[counted].float().mean()), abs=1e-6)
    loss = u.candidate_errors("loss")
    assert (loss[valid] >= 0).all() and not np.allclose(loss[valid], errors[valid])
    assert not np.allclose(u.candidate_errors(balanced=True)[valid], errors[valid])
    with pytest.raises(ValueError, match="unknown error kind 'iou'; valid: error, loss"):
        u.candidate_errors("iou")
    with pytest.raises(ValueError, match="unknown error kind"):
        ErrorOracle(env, kind="iou")
    assert set(ERROR_KINDS) == set(TRUE_ERRORS)


def test_the_error_oracle_picks_the_most_wrong_region_and_changes_nothing(tiny):
    """Reading the errors draws no random numbers: replaying the oracle's picks gives the same episode."""
    env = make(tiny)
    oracle = make_agent("error_oracle", env)
    obs, _ = env.reset(seed=5)
    actions, rewards, done = [], [], False
    while not done:
        action, _ = oracle.predict(obs)
        errors = env.unwrapped.candidate_errors()
        assert np.array_equal(action, np.nanargmax(errors, axis=1))
        actions.append(action)
        obs, reward, done, _, _ = env.step(action)
        rewards.append(reward)
    env.reset(seed=5)
    assert [env.step(a)[1] for a in actions] == rewards
    with pytest.raises(ValueError, match="one env's current pools"):
        oracle.predict({**obs, "action_mask": obs["action_mask"][None]})
