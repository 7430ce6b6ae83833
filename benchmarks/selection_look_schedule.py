"""At which rounds should segal-select-rule test? (docs/dqn.md, "The selection's drop rule")

Two rules, one challenger ``delta`` ahead of the incumbent, a paired per-episode difference of sd ``--sd``,
``--episodes`` episodes (``episodes // 2`` rounds). At each look of a schedule the one-sided paired t test at
``alpha / len(looks)`` (Bonferroni, the quantiles of ``agents.rule_choice.student_t_quantile``) drops the rule
behind. More looks drop a clearly worse rule sooner, but each look gets a smaller share of alpha, so the test
loses power and ends far below its nominal level. The schedule ``doubling`` (``agents.rule_choice.look_rounds``)
is the one ``RuleSelection`` uses. Vectorised over ``--trials`` selections (the real ``RuleSelection`` is in
benchmarks/selection_false_drop.py, which checks the chosen schedule). Results go to --out (JSON + markdown).

    python benchmarks/selection_look_schedule.py
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from agents.rule_choice import look_rounds, student_t_quantile
from segal_env.storage import atomic_write_json, atomic_write_text


def schedules(min_rounds: int, rounds: int) -> dict[str, list[int]]:
    return {
        "every round": list(range(min_rounds, rounds + 1)),
        "doubling (the default)": look_rounds(min_rounds, rounds),
        "every 5 rounds": list(range(5, rounds + 1, 5)),
        "the last round only": [rounds],
    }


def run(delta: float, sd: float, rounds: int, looks: list[int], alpha: float, trials: int, seed: int) -> dict:
    """How often each rule is dropped, and how many rounds a selection lasts, under one schedule."""
    differences = np.random.default_rng(seed).normal(delta, sd, (trials, rounds))  # challenger - incumbent
    n = np.arange(1, rounds + 1)
    mean = differences.cumsum(1) / n
    variance = ((differences**2).cumsum(1) - n * mean**2) / np.maximum(n - 1, 1)
    t = mean / np.sqrt(np.maximum(variance, 1e-300) / n)
    incumbent_dropped, challenger_dropped = np.zeros(trials, bool), np.zeros(trials, bool)
    ended = np.full(trials, rounds)
    for look in looks:
        bar = student_t_quantile(alpha / len(looks), look - 1)
        open_ = ~(incumbent_dropped | challenger_dropped)
        up, down = open_ & (t[:, look - 1] > bar), open_ & (t[:, look - 1] < -bar)
        incumbent_dropped |= up
        challenger_dropped |= down
        ended[up | down] = look
    return {
        "delta": delta,
        "incumbent_dropped": float(incumbent_dropped.mean()),
        "challenger_dropped": float(challenger_dropped.mean()),
        "mean_rounds": float(ended.mean()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.12, 0.3, 0.58], help="challenger ahead by")
    parser.add_argument("--sd", type=float, default=0.58, help="sd of a paired per-episode difference (default 0.58)")
    parser.add_argument("--episodes", type=int, default=40, help="episodes per selection of two rules (default 40)")
    parser.add_argument("--min-rounds", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--trials", type=int, default=20000)
    parser.add_argument("--out", default="benchmarks/results/selection_look_schedule")
    args = parser.parse_args(argv)
    rounds = args.episodes // 2
    rows = [
        {"schedule": name, "looks": looks, **run(delta, args.sd, rounds, looks, args.alpha, args.trials, seed)}
        for name, looks in schedules(args.min_rounds, rounds).items()
        for seed, delta in enumerate(args.deltas)
    ]
    command = "python benchmarks/selection_look_schedule.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command.strip(), "settings": vars(args), "rows": rows}
    lines = [
        f"`{result['command']}`",
        "",
        f"{args.trials} simulated selections of two rules per row, {args.episodes} episodes ({rounds} rounds), "
        f"alpha {args.alpha:g} split over the looks, sd of a paired per-episode difference {args.sd:g}",
        "",
        "| looks | rounds | challenger - incumbent | incumbent dropped | challenger dropped | rounds played |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['schedule']} | {', '.join(map(str, r['looks']))} | {r['delta']:+.2f} | "
        f"{100 * r['incumbent_dropped']:.1f}% | {100 * r['challenger_dropped']:.1f}% | {r['mean_rounds']:.1f} |"
        for r in rows
    ]
    atomic_write_json(result, f"{args.out}.json")
    atomic_write_text("\n".join(lines) + "\n", f"{args.out}.md")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
