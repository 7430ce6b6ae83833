"""How often does segal-select-rule drop a rule by chance, and how often does it drop a worse one?
(docs/dqn.md, "The selection's drop rule")

``RuleSelection`` drops a rule once it is shown behind the leader, looking after every round from
``min_rounds`` on. The old rule (``--z 2``) dropped at 2 paired SE after every round: each look is about 2.3%
one-sided, but the SE of a few episodes is itself noisy and the looks repeat. The default (``--alpha 0.05``)
is a one-sided paired t test at alpha split over a few looks (rounds 3, 6, 12 and 20 of a 40-episode
selection). This script runs the real
``RuleSelection`` with each drop rule on simulated rules whose per-episode scores are normal around their
means (``--sd``: the sd of a paired per-episode difference, 0.58 D_R points measured for margin against the
error model) and counts how often the incumbent (rule 0, margin's role) and the challengers are dropped:
two rules with the challenger ``delta`` ahead, and the default command's case of five level rules.
Results go to --out (JSON + markdown, atomically).

    python benchmarks/selection_false_drop.py
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.rule_choice import RuleSelection
from segal_env.storage import atomic_write_json, atomic_write_text


class SimulatedRules(gym.Env):
    """Rules with one step per episode: rule i scores ``means[i]`` plus its own normal noise drawn from the
    episode seed, of sd ``sd / sqrt(2)`` so that a paired difference has sd ``sd`` (a stand-in for
    ``RuleChoiceWrapper``, paired by seed)."""

    def __init__(self, means: list[float], sd: float, trial: int) -> None:
        self.rules = self.rule_names = ["incumbent", *(f"challenger{i}" for i in range(1, len(means)))]
        self.means, self.sd, self.trial = np.asarray(means), sd, trial
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(len(means))
        self._scores = self.means

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        noise = np.random.default_rng([self.trial, seed or 0]).normal(0.0, self.sd / math.sqrt(2), len(self.means))
        self._scores = self.means + noise
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), float(self._scores[int(action)]), True, False, {}


def run(means: list[float], sd: float, min_rounds: int, episodes: int, rule: dict[str, float], trials: int) -> dict:
    """Drop rates over ``trials`` selections; ``rule`` is ``{"alpha": a}`` or ``{"z": z}``."""
    dropped = np.zeros(len(means))
    rounds = 0
    for trial in range(trials):
        env = SimulatedRules(means, sd, trial)
        selection = RuleSelection(env, min_rounds=min_rounds, score="return", incumbent=0, **rule)  # type: ignore[arg-type]
        selection.learn(episodes)
        dropped += [index not in selection.alive for index in range(len(means))]
        rounds += max(len(returns) for returns in selection.returns)
    return {
        "rule": rule,
        "rules": len(means),
        "delta": means[1] - means[0],
        "min_rounds": min_rounds,
        "incumbent_dropped": dropped[0] / trials,  # = a challenger chosen: only a dropped incumbent is replaced
        "challenger_dropped": float(dropped[1:].mean()) / trials,
        "mean_rounds": rounds / trials,
    }


def rule_name(rule: dict[str, float]) -> str:
    return f"--z {rule['z']:g}" if "z" in rule else f"--alpha {rule['alpha']:g}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.12, 0.3], help="challenger - incumbent")
    parser.add_argument("--sd", type=float, default=0.58, help="sd of a paired per-episode difference (default 0.58)")
    parser.add_argument("--min-rounds", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--episodes", type=int, default=40, help="episodes in all per selection (default 40)")
    parser.add_argument("--z", type=float, nargs="*", default=[2.0], help="fixed drop rules to measure (default 2)")
    parser.add_argument("--alpha", type=float, nargs="*", default=[0.05], help="t-test drop rules (default 0.05)")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--out", default="benchmarks/results/selection_false_drop")
    args = parser.parse_args(argv)
    rules = [{"z": z} for z in args.z] + [{"alpha": alpha} for alpha in args.alpha]
    cases = [[0.0, delta] for delta in args.deltas] + [[0.0] * 5]
    rows = [
        run(means, args.sd, min_rounds, args.episodes, rule, args.trials)
        for rule in rules
        for min_rounds in args.min_rounds
        for means in cases
    ]
    command = "python benchmarks/selection_false_drop.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command.strip(), "settings": vars(args), "rows": rows}
    lines = [
        f"`{result['command']}`",
        "",
        f"{args.trials} simulated selections per row, {args.episodes} episodes each, sd of a paired per-episode "
        f"difference {args.sd:g}. A dropped incumbent is replaced by the leader; a kept one is chosen.",
        "",
        "| drop rule | min rounds | rules | challenger - incumbent | incumbent dropped (a challenger chosen) | "
        "a challenger dropped | rounds played |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {rule_name(r['rule'])} | {r['min_rounds']} | {r['rules']} | {r['delta']:+.2f} | "
        f"{100 * r['incumbent_dropped']:.1f}% | {100 * r['challenger_dropped']:.1f}% | {r['mean_rounds']:.1f} |"
        for r in rows
    ]
    atomic_write_json(result, f"{args.out}.json")
    atomic_write_text("\n".join(lines) + "\n", f"{args.out}.md")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
