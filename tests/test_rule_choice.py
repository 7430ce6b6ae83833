"""Choosing the rule per state: the wrapper acts exactly as the rule it names, and SB3 and the bandit learn on it."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO

import segal_env  # noqa: F401
from agents import fit_error_regression, make_agent
from agents.rule_choice import (
    RuleBandit,
    RuleChoiceWrapper,
    RuleSelection,
    check_rules,
    look_rounds,
    student_t_quantile,
)
from experiments import rule_selection
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


def test_an_error_model_file_is_a_rule_beside_the_baselines(env, tmp_path):
    model = fit_error_regression(env, episodes=1, seed=3)
    path = str(model.save(tmp_path / "error_model.npz"))
    wrapped = RuleChoiceWrapper(env, rules=("margin", path))
    plain = play_episode(make_agent(path, env), env, seed=4)
    obs, _ = wrapped.reset(seed=4)
    rewards, done = [], False
    while not done:
        obs, reward, done, _, info = wrapped.step(1)
        rewards.append(reward)
        assert info["rule"] == path
    assert rewards == plain.rewards
    for rules, match in (
        (("margin", str(tmp_path / "missing.npz")), "does not exist"),
        (("margin", "margin"), "named twice"),
        (("margin", str(tmp_path / "model.zip")), "unknown rule"),
    ):
        with pytest.raises(ValueError, match=match):
            check_rules(rules)


@pytest.mark.parametrize("rules", [["margin", "missing.npz"], ["margin", "margn"]])
def test_select_rule_refuses_a_bad_rule_before_any_env(rules, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gym, "make", lambda *a, **k: pytest.fail("an env was built"))
    with pytest.raises(SystemExit) as exit_info:
        rule_selection.main(["--rules", *rules])
    assert exit_info.value.code == 2


def test_the_bandit_tries_every_rule_then_prefers_the_best_mean(env):
    wrapped = RuleChoiceWrapper(env, rules=("entropy", "margin", "random"))
    bandit = RuleBandit(wrapped).learn(6)
    assert (bandit.counts >= 1).all() and bandit.counts.sum() == 6
    action, _ = bandit.predict(np.zeros(wrapped.observation_space.shape, np.float32))
    assert int(action) == int(np.argmax(bandit.means))


class ScriptedRules(gym.Env):
    """A stand-in for a RuleChoiceWrapper: one step per episode, rule r's return is ``values[r] + seed noise``,
    the noise shared by every rule on the same episode seed (what pairing cancels)."""

    def __init__(self, values: list[float], own_noise: float = 0.0) -> None:
        self.rules = self.rule_names = [f"rule{i}" for i in range(len(values))]
        self.values, self.own_noise = values, own_noise  # own_noise: each rule's own, not cancelled by pairing
        self.seeds: list[tuple[int, int]] = []
        self._seed = 0

    def reset(self, *, seed=None, options=None):
        self._seed = seed
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.seeds.append((int(action), self._seed))
        noise = np.random.default_rng(self._seed).normal(0, 5)
        noise += np.random.default_rng([self._seed, int(action)]).normal(0, self.own_noise)
        return np.zeros(1, np.float32), self.values[int(action)] + noise, True, False, {}


def test_rule_selection_pairs_episodes_and_drops_a_worse_rule_after_min_rounds():
    env = ScriptedRules([0.0, 1.0, 0.9])
    selection = RuleSelection(env, min_rounds=3, seed=7, score="return").learn(30)  # type: ignore[arg-type]
    # every round plays each surviving rule on the same episode seed
    assert sorted(env.seeds[:3]) == [(0, 7), (1, 7), (2, 7)] and sorted(env.seeds[3:6]) == [(0, 8), (1, 8), (2, 8)]
    # rules 0 and 2 are 1 and 0.1 below the leader on every paired episode (SE 0): both dropped after 3 rounds
    assert selection.summary()["rule0"]["episodes"] == 3 and not selection.summary()["rule0"]["survived"]
    assert selection.alive == [1] and int(selection.predict(None)[0]) == 1
    assert selection.paired_difference(2)[0] == pytest.approx(-0.1)
    assert sum(s["episodes"] for s in selection.summary().values()) <= 30
    with pytest.raises(ValueError, match="min_rounds"):
        RuleSelection(env, min_rounds=1, score="return")  # type: ignore[arg-type]


@pytest.mark.parametrize("upper", [1e-6, 1e-4, 0.0028, 0.025, 0.2])
def test_the_t_quantile_matches_the_closed_forms_and_the_normal_limit(upper):
    assert student_t_quantile(upper, 1) == pytest.approx(np.tan(np.pi * (0.5 - upper)), rel=1e-5)  # Cauchy
    assert student_t_quantile(upper, 2) == pytest.approx((1 - 2 * upper) / np.sqrt(2 * upper * (1 - upper)), rel=1e-5)
    normal = {1e-6: 4.753424, 1e-4: 3.719016, 0.0028: 2.770311, 0.025: 1.959964, 0.2: 0.841621}[upper]
    assert student_t_quantile(upper, 100_000) == pytest.approx(normal, abs=1e-3)
    with pytest.raises(ValueError, match="tail probability"):
        student_t_quantile(0.5, 3)


@pytest.mark.parametrize(
    ("first", "last", "rounds"),
    [(3, 20, [3, 6, 12, 20]), (3, 12, [3, 6, 12]), (3, 3, [3]), (3, 2, []), (10, 20, [10, 20]), (2, 9, [2, 4, 8, 9])],
)
def test_a_selection_looks_at_doubling_rounds_and_at_the_last(first, last, rounds):
    assert look_rounds(first, last) == rounds


def test_the_t_test_waits_for_more_episodes_where_a_fixed_z_drops_on_three_noisy_ones():
    # rule 1 is 2 below rule 0, with sd 1 of each rule's own: a paired difference of sd 1.4
    fixed = RuleSelection(ScriptedRules([0.0, -2.0], own_noise=1.0), seed=4, score="return", z=2.0).learn(40)  # type: ignore[arg-type]
    tested = RuleSelection(ScriptedRules([0.0, -2.0], own_noise=1.0), seed=4, score="return").learn(40)  # type: ignore[arg-type]
    assert fixed.alive == [0] and len(fixed.returns[1]) == 3  # 2.1 SE behind after 3 episodes: dropped
    # the budget allows 20 rounds: 4 looks, at rounds 3, 6, 12 and 20, share alpha = 0.05
    assert tested.looks == [3, 6, 12, 20] and tested.drop_bound(3) == pytest.approx(student_t_quantile(0.05 / 4, 2))
    assert tested.drop_bound(3) > 6 and tested.drop_bound(20) < 2.5  # 6.2 SE on 3 episodes, 2.4 on 20
    assert tested.alive == [0] and len(tested.returns[1]) in (6, 12, 20)  # dropped at a later look
    assert tested.returns[1][:3] == fixed.returns[1][:3]  # on the same paired episodes
    with pytest.raises(ValueError, match="alpha must be in"):
        RuleSelection(ScriptedRules([0.0, 1.0]), score="return", alpha=0.5)  # type: ignore[arg-type]


def test_an_incumbent_is_kept_until_another_rule_is_shown_better():
    # rule 1 is 0.1 better, under per-episode noise of sd 1: 10 rounds cannot show it, and it leads by chance
    noisy = ScriptedRules([0.0, 0.1], own_noise=1.0)
    close = RuleSelection(noisy, seed=1, score="return", incumbent=0).learn(20)  # type: ignore[arg-type]
    mean, se = close.paired_difference(0)
    assert close.leader == 1 and close.alive == [0, 1] and mean < 0 < mean + 2 * se
    assert close.chosen == 0 and int(close.predict(None)[0]) == 0
    # 5 points better: the incumbent is dropped, and the rule that beat it is chosen
    better = ScriptedRules([0.0, 5.0], own_noise=1.0)
    clear = RuleSelection(better, seed=0, score="return", incumbent=0).learn(20)  # type: ignore[arg-type]
    assert clear.alive == [1] and clear.chosen == 1
    with pytest.raises(ValueError, match="incumbent must be a rule index"):
        RuleSelection(ScriptedRules([0.0, 1.0]), score="return", incumbent=2)  # type: ignore[arg-type]


def test_rule_selection_scores_each_rule_by_its_episode_return(env):
    wrapped = RuleChoiceWrapper(env, rules=("entropy", "margin"))
    # two rounds of two rules: below min_rounds, no elimination
    selection = RuleSelection(wrapped, seed=3, score="return").learn(4)
    plain = play_episode(make_agent("margin", env), env, seed=4)
    assert selection.returns[1][1] == pytest.approx(plain.total_reward) and selection.alive == [0, 1]
    assert selection.leader == int(np.argmax([np.mean(r) for r in selection.returns]))


def test_rule_selection_can_score_an_episode_by_the_final_training_on_the_reward_set(env):
    wrapped = RuleChoiceWrapper(env, rules=("entropy", "margin"))
    selection = RuleSelection(wrapped, seed=3, score="final").learn(2)
    plain = play_episode(make_agent("margin", env), env, seed=3)
    final = env.unwrapped.reward_set_final_score(3)
    assert env.unwrapped.reward_set_final_score(3) == final  # the network is restored after the final training
    assert selection.returns[1][0] == pytest.approx(100 * final)
    assert selection.returns[1][0] != pytest.approx(plain.total_reward)  # a level after training, not a gain
    with pytest.raises(ValueError, match="score must be one of return, final"):
        RuleSelection(wrapped, score="test")
    with pytest.raises(ValueError, match="needs a SegAL env with labels"):
        RuleSelection(ScriptedRules([0.0, 1.0]), score="final")  # type: ignore[arg-type]
