"""How often does segal-select-rule drop a rule by chance? (docs/dqn.md, "The selection in test mode")

``RuleSelection`` drops a rule once its mean paired difference to the leader is ``z`` SE below zero, looking
after every round from ``min_rounds`` on. Each look is a test of about 2.3% one-sided at z = 2, but the SE of
a few episodes is itself noisy and the looks repeat, so a rule level with the leader is dropped far more
often. This script runs the real ``RuleSelection`` on two simulated rules whose per-episode score difference
is normal (mean ``delta``, sd ``--sd``: 0.58 D_R points measured for margin against the error model) and
counts how often each is dropped, for each ``--min-rounds``. Rule 0 plays the incumbent (margin), rule 1 the
challenger. Results go to --out (JSON + markdown, atomically).

    python benchmarks/selection_false_drop.py
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.rule_choice import RuleSelection
from segal_env.storage import atomic_write_json, atomic_write_text


class SimulatedRules(gym.Env):
    """Two rules, one step per episode: the incumbent scores 0, the challenger ``delta`` plus normal noise of
    sd ``sd``, drawn from the episode seed (a stand-in for ``RuleChoiceWrapper``, paired by seed)."""

    def __init__(self, delta: float, sd: float, trial: int) -> None:
        self.rules = self.rule_names = ["incumbent", "challenger"]
        self.delta, self.sd, self.trial = delta, sd, trial
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._difference = 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._difference = float(np.random.default_rng([self.trial, seed or 0]).normal(self.delta, self.sd))
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), self._difference if int(action) == 1 else 0.0, True, False, {}


def run(delta: float, sd: float, min_rounds: int, episodes: int, z: float, trials: int) -> dict[str, Any]:
    dropped = np.zeros(2)
    challenger_chosen = 0
    for trial in range(trials):
        env = SimulatedRules(delta, sd, trial)
        selection = RuleSelection(env, min_rounds=min_rounds, z=z, score="return", incumbent=0)  # type: ignore[arg-type]
        selection.learn(episodes)
        dropped += [rule not in selection.alive for rule in range(2)]
        challenger_chosen += selection.chosen == 1
    return {
        "delta": delta,
        "min_rounds": min_rounds,
        "incumbent_dropped": dropped[0] / trials,
        "challenger_dropped": dropped[1] / trials,
        "challenger_chosen_with_incumbent": challenger_chosen / trials,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.12], help="challenger - incumbent")
    parser.add_argument("--sd", type=float, default=0.58, help="sd of the per-episode difference (default 0.58)")
    parser.add_argument("--min-rounds", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--episodes", type=int, default=40, help="episodes in all per selection (default 40)")
    parser.add_argument("--z", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--out", default="benchmarks/results/selection_false_drop")
    args = parser.parse_args(argv)
    rows = [
        run(delta, args.sd, min_rounds, args.episodes, args.z, args.trials)
        for min_rounds in args.min_rounds
        for delta in args.deltas
    ]
    command = "python benchmarks/selection_false_drop.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command.strip(), "settings": vars(args), "rows": rows}
    lines = [
        f"`{result['command']}`",
        "",
        f"{args.trials} simulated selections per row, {args.episodes} episodes each, z = {args.z:g}, per-episode sd "
        f"{args.sd:g}",
        "",
        "| min rounds | challenger - incumbent | incumbent dropped | challenger dropped | chosen: challenger "
        "(with the incumbent) |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['min_rounds']} | {r['delta']:+.2f} | {100 * r['incumbent_dropped']:.1f}% | "
        f"{100 * r['challenger_dropped']:.1f}% | {100 * r['challenger_chosen_with_incumbent']:.1f}% |"
        for r in rows
    ]
    atomic_write_json(result, f"{args.out}.json")
    atomic_write_text("\n".join(lines) + "\n", f"{args.out}.md")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
