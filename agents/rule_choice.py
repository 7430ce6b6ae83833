"""Choose the rule per state: an action space over heuristics instead of over regions.

The best heuristic may differ by data set (a user cannot know it in advance) and by stage of an episode.
``RuleChoiceWrapper`` turns a SegAL env into a small problem that any SB3 algorithm learns directly: at each
step the agent picks *which rule* chooses this step's K regions (``Discrete(R)``), from a compact observation
(``Box``) that describes what each rule would pick.
``RuleBandit`` is the simplest learned reference: one value per rule, no state.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.baselines import BASELINES, DEFAULT_RULES, RegionScoreBaseline
from agents.error_regression import ErrorModel
from agents.loading import make_agent


class RuleChoiceWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Action ``r`` in ``Discrete(len(rules))``: rule ``r`` picks this step's regions in the wrapped SegAL env.

    Observation (float32 in [0, 1]): for every rule, the mean over pools of the candidate rows it would
    pick (their predicted-class histogram and uncertainty extras), then the labeled class fraction and the
    episode's progress (regions labeled / budget). ``info["rule"]`` names the rule that acted.

    :param env: a SegAL env (train or test mode)
    :param rules: baseline names (``agents.BASELINES``) or paths of error models (``.npz``,
        ``segal-fit-error-model``), each scorable with the env's observation
    :param seed: seed of the rules' own generators ("random" draws from it)
    """

    def __init__(self, env: gym.Env, rules: Sequence[str] = DEFAULT_RULES, seed: int = 0) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, rules=tuple(rules), seed=seed)  # the env checker re-creates it
        gym.Wrapper.__init__(self, env)
        check_rules(rules)
        layout = env.get_wrapper_attr("feature_layout")
        self.rules = [_rule(name, env, seed) for name in rules]
        self.rule_names = list(rules)
        self._columns = np.r_[np.arange(layout.num_classes), [layout.extra(e) for e in layout.extras]]
        self._budget = env.get_wrapper_attr("config").budget
        width = len(rules) * len(self._columns) + layout.num_classes + 1
        self.action_space = spaces.Discrete(len(rules))
        self.observation_space = spaces.Box(0.0, 1.0, (width,), np.float32)
        self._picks: list[np.ndarray] = []
        self._labeled = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._labeled = int(info["regions_labeled"])
        return self._describe(obs), info

    def step(self, action):
        rule = int(action)
        if not 0 <= rule < len(self.rules):
            raise ValueError(
                f"action must be a rule index in [0, {len(self.rules)}) ({self.rule_names}), got {action!r}"
            )
        obs, reward, terminated, truncated, info = self.env.step(self._picks[rule])
        info["rule"] = self.rule_names[rule]
        self._labeled = int(info["regions_labeled"])
        return self._describe(obs), reward, terminated, truncated, info

    def _describe(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Every rule's picks for this observation (kept for ``step``) and the compact observation."""
        self._picks = [rule.predict(obs)[0] for rule in self.rules]
        pools = np.arange(obs["candidates"].shape[0])
        rows = [obs["candidates"][pools, picks][:, self._columns].mean(axis=0) for picks in self._picks]
        progress = np.array([min(1.0, self._labeled / self._budget)], dtype=np.float32)
        return np.concatenate([*rows, obs["labeled_class_fraction"], progress]).astype(np.float32)


def _rule(name: str, env: gym.Env, seed: int) -> RegionScoreBaseline:
    agent = make_agent(name, env, seed=seed)
    assert isinstance(agent, RegionScoreBaseline)  # check_rules admits baselines and error models only
    return agent


def check_rules(rules: Sequence[str]) -> None:
    """Rules are baseline names or error-model files (read here, so a bad one fails before any env is built)."""
    unknown = [r for r in rules if r not in BASELINES and not str(r).endswith(".npz")]
    if unknown or not rules:
        raise ValueError(
            f"unknown rule(s) {unknown}; choose among {list(BASELINES)} or give an error model's .npz "
            "(segal-fit-error-model)"
        )
    if len(set(rules)) != len(rules):
        raise ValueError(f"a rule is named twice in {list(rules)}")
    for path in (r for r in rules if r not in BASELINES):
        if not Path(path).is_file():
            raise ValueError(f"error model {path} does not exist; write it with segal-fit-error-model")
        ErrorModel.load(path)


class RuleBandit:
    """UCB1 over the rules of a ``RuleChoiceWrapper`` (no state): the simplest learned rule chooser.

    ``learn`` plays episodes, choosing the rule with the largest upper confidence bound at each step and
    updating that rule's mean step reward; ``predict`` is greedy on the means (an untried rule is tried first).
    """

    def __init__(self, env: RuleChoiceWrapper, exploration: float = 1.0, seed: int = 0) -> None:
        self.env = env
        self.exploration = exploration
        self.counts = np.zeros(len(env.rules))
        self.means = np.zeros(len(env.rules))
        self.seed = seed

    def _ucb(self) -> int:
        if (self.counts == 0).any():
            return int(np.flatnonzero(self.counts == 0)[0])
        bonus = self.exploration * np.sqrt(2 * np.log(self.counts.sum()) / self.counts)
        return int(np.argmax(self.means + bonus))

    def learn(self, total_timesteps: int) -> RuleBandit:
        obs, _ = self.env.reset(seed=self.seed)
        episode = 0
        for _ in range(total_timesteps):
            arm = self._ucb()
            obs, reward, terminated, truncated, _ = self.env.step(arm)
            self.counts[arm] += 1
            self.means[arm] += (reward - self.means[arm]) / self.counts[arm]
            if terminated or truncated:
                episode += 1
                obs, _ = self.env.reset(seed=self.seed + episode)
        return self

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        tried = np.where(self.counts > 0, self.means, np.inf)
        return np.array(int(np.argmax(tried))), state


class RuleSelection:
    """One rule for the whole data set, chosen from paired whole episodes by successive elimination.

    Step rewards cannot rank good rules: from one state, margin's pick beats a random pick by 0.07 D_R points
    while the same pick's gain varies by 0.59 across fine-tuning seeds (docs/noise_floor.md). An episode's
    return telescopes to the reward set's mIoU at its end minus at its start, and playing every rule on the
    same episode seeds pairs them, so what the seeds share cancels in the differences. Round ``r`` plays every
    surviving rule on episode seed ``seed + r``; a rule whose mean paired difference to the leader (the highest
    mean return) is significantly below zero is dropped: a one-sided paired t test at ``alpha`` split evenly
    (Bonferroni) over a few looks, at rounds ``min_rounds`` x 1, 2, 4, ... and at the last round ``learn``'s
    budget allows. A rule level with the leader is then dropped in about ``alpha`` of 40-episode selections (4%
    of two rules, 6% of five). Looking after every round instead would give each look a smaller share: 2%, and
    a rule 0.3 better found in 35% of selections instead of 53% (benchmarks/selection_look_schedule.py). ``z``
    drops a rule ``z`` SE below after every round from ``min_rounds`` on instead (the rule before ``alpha``):
    with the SE of a few episodes and a look per round, z = 2 drops a level rule in 19% of such selections.
    ``chosen`` (what ``predict`` returns) is the leader, or, with an ``incumbent`` (a rule's index: the one a
    user would use anyway), the incumbent until it is dropped: another rule replaces it only once it is shown
    better, so a selection that cannot tell the rules apart is never worse than the incumbent. It reads only the
    reward set (D_R), never the test split.

    ``score`` is what an episode is worth: ``"final"`` (default), the D_R mIoU in points after the test mode's
    final training on the episode's labels (``SegALEnv.reward_set_final_score``, one final training per
    episode), the measure the benchmark reports, on the reward set; ``"return"``, the episode's return (the D_R
    gain of the network fine-tuned during the episode), cheaper, but it ranked margin_balance 1.5 points below
    margin on CamVid where the test protocol finds them level (docs/dqn.md).
    """

    SCORES = ("return", "final")

    def __init__(
        self,
        env: RuleChoiceWrapper,
        min_rounds: int = 3,
        alpha: float = 0.05,
        seed: int = 0,
        score: str = "final",
        incumbent: int | None = None,
        z: float | None = None,
    ) -> None:
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5): the chance of dropping a level rule, got {alpha!r}")
        if z is not None and not z > 0:
            raise ValueError(f"z must be > 0 standard errors, got {z!r}")
        if incumbent is not None and not 0 <= incumbent < len(env.rules):
            raise ValueError(f"incumbent must be a rule index in [0, {len(env.rules)}), got {incumbent!r}")
        self.incumbent = incumbent
        if min_rounds < 2:
            raise ValueError(f"min_rounds must be >= 2 (a paired SE needs two episodes), got {min_rounds}")
        if score not in self.SCORES:
            raise ValueError(f"score must be one of {', '.join(self.SCORES)}, got {score!r}")
        if score == "final" and not hasattr(env.unwrapped, "reward_set_final_score"):
            raise ValueError("score='final' needs a SegAL env with labels (SegALEnv.reward_set_final_score)")
        self.score = score
        self.env = env
        self.min_rounds = min_rounds
        self.alpha = alpha
        self.z = z
        self.looks: list[int] = []  # the rounds at which rules are tested (z: every one), set by learn()
        self.seed = seed
        self.returns: list[list[float]] = [[] for _ in env.rules]
        self.alive = list(range(len(env.rules)))

    def learn(self, total_episodes: int, on_round: Callable[[RuleSelection], None] | None = None) -> RuleSelection:
        """Play rounds while a whole round fits in ``total_episodes`` (counting episodes already played, so a
        restored selection continues) and more than one rule survives; ``on_round(self)`` after each round.
        ``alpha`` is split over the looks of this budget: a selection continued with a larger one may look more
        often from then on, at a smaller share each, and the looks made before kept their larger share."""
        played = sum(len(r) for r in self.returns)
        last = total_episodes // 2  # two rules or more play every round
        self.looks = look_rounds(self.min_rounds, last) if self.z is None else list(range(self.min_rounds, last + 1))
        while len(self.alive) > 1 and played + len(self.alive) <= total_episodes:
            episode_seed = self.seed + len(self.returns[self.alive[0]])
            for rule in self.alive:
                self.returns[rule].append(self._play(rule, episode_seed))
            played += len(self.alive)
            rounds = len(self.returns[self.alive[0]])
            if rounds in self.looks:
                bound = self.drop_bound(rounds)
                differences = {rule: self.paired_difference(rule) for rule in self.alive}
                self.alive = [rule for rule, (mean, se) in differences.items() if mean + bound * se >= 0]
            if on_round is not None:
                on_round(self)
        return self

    def drop_bound(self, rounds: int) -> float:
        """How many paired SE below the leader a rule that played ``rounds`` episodes with it is dropped at a
        look: ``z``, or the t quantile of one look's share of ``alpha`` (``rounds - 1`` degrees of freedom)."""
        if self.z is not None:
            return self.z
        return student_t_quantile(self.alpha / max(1, len(self.looks)), rounds - 1)

    def restore(self, returns: dict[str, list[float]], alive: list[str]) -> RuleSelection:
        """Continue from a ``state()``: the returns per rule name and the surviving names."""
        if set(returns) != set(self.env.rule_names) or not set(alive) <= set(returns):
            raise ValueError(f"the stored selection is over rules {sorted(returns)}, not {sorted(self.env.rule_names)}")
        self.returns = [list(returns[name]) for name in self.env.rule_names]
        self.alive = [self.env.rule_names.index(name) for name in alive]
        return self

    def state(self) -> dict[str, Any]:
        """What ``restore`` needs: returns per rule name and the surviving names."""
        names = self.env.rule_names
        return {"returns": dict(zip(names, self.returns)), "alive": [names[i] for i in self.alive]}

    def _play(self, rule: int, episode_seed: int) -> float:
        self.env.reset(seed=episode_seed)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = self.env.step(rule)
            total += float(reward)
            done = terminated or truncated
        if self.score == "final":
            return 100.0 * self.env.unwrapped.reward_set_final_score(episode_seed)  # type: ignore[attr-defined]
        return total

    @property
    def leader(self) -> int:
        """The surviving rule with the highest mean return (the survivors have played the same episodes)."""
        return max(self.alive, key=lambda rule: np.mean(self.returns[rule]) if self.returns[rule] else -np.inf)

    @property
    def chosen(self) -> int:
        """The leader, or the incumbent while it survives."""
        return self.incumbent if self.incumbent in self.alive else self.leader

    def paired_difference(self, rule: int) -> tuple[float, float]:
        """Mean and SE of ``rule``'s return minus the leader's over the episodes both played."""
        n = min(len(self.returns[rule]), len(self.returns[self.leader]))
        if n == 0:
            return 0.0, float("inf")
        diff = np.subtract(self.returns[rule][:n], self.returns[self.leader][:n])
        se = float(np.std(diff, ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
        return float(diff.mean()), se

    def summary(self) -> dict[str, dict[str, float | int | bool | None]]:
        """Per rule: episodes played, mean return, paired difference to the final leader over the episodes both
        played (mean, SE), survived. A dropped rule was behind the leader *of its round*, which may since have
        fallen behind another rule: its difference to the final leader can even be positive."""
        out: dict[str, dict[str, float | int | bool | None]] = {}
        for index, name in enumerate(self.env.rule_names):
            mean, se = self.paired_difference(index)
            out[name] = {
                "episodes": len(self.returns[index]),
                "mean_return": float(np.mean(self.returns[index])) if self.returns[index] else float("nan"),
                "minus_leader": mean,
                "minus_leader_se": se if np.isfinite(se) else None,  # None: fewer than two shared episodes
                "survived": index in self.alive,
            }
        return out

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        return np.array(self.chosen), state


def look_rounds(first: int, last: int) -> list[int]:
    """The rounds a selection tests at: ``first`` doubled while below ``last``, then ``last`` (none if ``last`` <
    ``first``). A handful of looks, early ones to drop a clearly worse rule soon, the last at the full budget."""
    if last < first:
        return []
    rounds = [first]
    while rounds[-1] * 2 < last:
        rounds.append(rounds[-1] * 2)
    return rounds + [last] if rounds[-1] < last else rounds


@functools.lru_cache(maxsize=1024)
def student_t_quantile(upper: float, df: int) -> float:
    """The ``t`` with P(T > t) = ``upper`` for Student's t with ``df`` degrees of freedom (scipy is not a
    dependency). Substituting x = sqrt(df) tan(theta) turns the density into c cos(theta)^(df - 1) on
    [0, pi/2), bounded and smooth, so the upper tail is a cumulative trapezoid sum on a fine grid, inverted by
    interpolation (within 1e-5, relative, of the closed forms for df 1 and 2 down to upper = 1e-6: tests)."""
    if not 0 < upper < 0.5:
        raise ValueError(f"upper must be a tail probability in (0, 0.5), got {upper!r}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df!r}")
    theta = np.linspace(0.0, math.pi / 2, 200_001)
    density = np.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(math.pi) * np.cos(theta) ** (df - 1)
    pieces = (density[1:] + density[:-1]) / 2 * (theta[1] - theta[0])
    tail = np.append(np.cumsum(pieces[::-1])[::-1], 0.0)  # P(T > sqrt(df) tan(theta)), decreasing in theta
    return math.sqrt(df) * math.tan(float(np.interp(upper, tail[::-1], theta[::-1])))
