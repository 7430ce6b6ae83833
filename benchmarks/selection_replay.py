"""Would a stored selection have gone otherwise under today's drop rule? (docs/dqn.md, "The selection's drop rule")

An episode is a function of its rule and its seed, and round r of a selection plays episode seed ``seed + r``
for every surviving rule, so a stored selection (``segal-select-rule --out``) can be replayed under another
drop rule from its stored scores, without playing an episode, as long as every episode the replay needs was
stored. A rule the old selection dropped early has no later episodes: a replay that keeps it longer stops
there and says so. Prints, per file: the rules kept, the leader, and the rounds the t test looks at.

    python benchmarks/selection_replay.py benchmarks/results/rule_selection_test_mode/camvid_test_seed1000.json:40
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.rule_choice import RuleSelection


class StoredEpisodes(gym.Env):
    """The stored scores as a one-step env per episode: rule ``action`` on episode seed ``seed`` scores what the
    stored selection recorded, or raises ``LookupError`` when that episode was never played."""

    def __init__(self, returns: dict[str, list[float]], first_seed: int) -> None:
        self.rules = self.rule_names = sorted(returns)
        self.returns, self.first_seed = returns, first_seed
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(len(self.rules))
        self._round = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._round = (seed or 0) - self.first_seed
        return np.zeros(1, np.float32), {}

    def step(self, action):
        name = self.rule_names[int(action)]
        if self._round >= len(self.returns[name]):
            raise LookupError(f"episode {self._round} of {name} was not stored")
        return np.zeros(1, np.float32), float(self.returns[name][self._round]), True, False, {}


def replay(stored: dict[str, Any], episodes: int, alpha: float = 0.05) -> dict[str, Any]:
    """``stored`` (a selection's JSON) replayed with the t test at ``alpha`` over ``episodes`` episodes."""
    settings = stored["settings"]
    env = StoredEpisodes(stored["state"]["returns"], settings["seed"])
    selection = RuleSelection(env, settings["min_rounds"], alpha, settings["seed"], score="return")  # type: ignore[arg-type]
    try:
        selection.learn(episodes)
    except LookupError as missing:
        return {"replayed": False, "why": str(missing), "looks": selection.looks}
    return {
        "replayed": True,
        "kept": [env.rule_names[i] for i in selection.alive],
        "leader": env.rule_names[selection.leader],
        "stored_chosen": stored["chosen"],
        "looks": selection.looks,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("selections", nargs="+", metavar="FILE:EPISODES", help="a stored selection and its --episodes")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args(argv)
    results = []
    for item in args.selections:
        path, _, episodes = item.rpartition(":")
        if not path or not episodes.isdigit():
            parser.error(f"{item!r}: give FILE:EPISODES, the selection's --episodes after a colon")
        with open(path) as handle:
            result = {"file": path, **replay(json.load(handle), int(episodes), args.alpha)}
        results.append(result)
        if result["replayed"]:
            print(
                f"{path}: kept {', '.join(result['kept'])}; leader {result['leader']} (stored choice: "
                f"{result['stored_chosen']}); looks at rounds {result['looks']}"
            )
        else:
            print(f"{path}: cannot replay, {result['why']}")
    return results


if __name__ == "__main__":
    main()
