"""Is there a better label set than margin's within reach of switching rules, and can the reward set find it?

A headroom probe for issue 21, scored by what the benchmark reports (the final training), not by the one-step
D_R gain the look-ahead oracle maximises. For every test-mode episode seed it labels ``budget`` regions with

- every rule of ``--rules`` alone (constant), and
- ``--switching`` sequences that draw the rule of each step uniformly at random among ``--rules``,

and scores each label set's network after the final training on the test split and on the reward set D_R
(the env's ``info["reward_set_final_miou"]``: the same trained network, one training per set). Per seed it
reports, against margin's label set:

- **best by test** - margin: the best member's test score, an upper bound on what choosing among these label
  sets could give (it reads the test split: an oracle, never a policy);
- **best by D_R** - margin: the member a chooser that reads only the reward set would take. Positive by 2 SE
  would mean the reward set can lead a learner past margin; this probe spends ``members`` label budgets per
  seed, so it is a measurement of headroom, not a labelling policy.

    python benchmarks/label_set_headroom.py                  # synthetic, 5 seeds, 160 regions
    python benchmarks/label_set_headroom.py --seeds 0 --switching 2 --budget 32 --out /tmp/headroom   # smoke

Each (seed, member) is stored in ``<out>/`` as it finishes and reused by a rerun with the same settings; the
table goes to ``<out>.md`` / ``<out>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rule_choice import Always, cached, mean_se, wrapped_env  # benchmarks/ is the script's folder

from agents.baselines import DEFAULT_RULES
from experiments.episodes import play_episode
from segal_env.config import parse_key_values
from segal_env.storage import atomic_write_json, atomic_write_text


class RandomSwitch:
    """Each step's rule drawn uniformly from ``n_rules`` by a generator of its own seed."""

    def __init__(self, n_rules: int, seed: int) -> None:
        self.n_rules = n_rules
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        return np.array(self.rng.integers(self.n_rules)), state


def score_member(agent: Any, env, seed: int) -> dict:
    """Play one test-mode episode; the test and D_R mIoU (%) of its label set's network after the final training."""
    infos = play_episode(agent, env, seed).infos
    used = [info["rule"] for info in infos]
    return {
        "test": 100 * float(infos[-1]["test_miou"]),
        "reward_set": 100 * float(infos[-1]["reward_set_final_miou"]),
        "regions": int(infos[-1]["regions_labeled"]),
        "rules": {r: used.count(r) / len(used) for r in sorted(set(used))},
    }


def spearman(a: list[float], b: list[float]) -> float:
    ranks = [np.argsort(np.argsort(x)) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def summarise(members: dict[int, dict[str, dict]], reference: str) -> dict:
    """Per seed and over seeds: best by test / by D_R against the reference's label set."""
    per_seed = []
    for seed, scores in sorted(members.items()):
        names = list(scores)
        test = [scores[n]["test"] for n in names]
        reward_set = [scores[n]["reward_set"] for n in names]
        by_reward_set = names[int(np.argmax(reward_set))]
        per_seed.append(
            {
                "seed": seed,
                "reference_test": scores[reference]["test"],
                "best_by_test": names[int(np.argmax(test))],
                "best_by_test_gain": max(test) - scores[reference]["test"],
                "best_by_reward_set": by_reward_set,
                "best_by_reward_set_gain": scores[by_reward_set]["test"] - scores[reference]["test"],
                "spearman_test_reward_set": spearman(test, reward_set),
            }
        )
    over = {
        key: dict(zip(("mean", "se"), mean_se([s[key] for s in per_seed])))
        for key in ("best_by_test_gain", "best_by_reward_set_gain", "spearman_test_reward_set")
    }
    return {"per_seed": per_seed, "over_seeds": over}


def table(members: dict[int, dict[str, dict]], summary: dict, args: argparse.Namespace, reference: str) -> str:
    names = list(next(iter(members.values())))
    lines = [
        f"Label-set headroom, {args.env} test mode, {args.budget} regions, seeds {args.seeds}, "
        f"{platform.processor() or platform.machine()}, torch threads {args.threads}",
        "",
        "Test mIoU (%) of each member's label set after the final training, minus the reference's, per seed "
        "(D_R mIoU of the same training in brackets):",
        "",
        "| member | " + " | ".join(f"seed {s}" for s in sorted(members)) + " | mean (SE) |",
        "|---|" + "---:|" * (len(members) + 1),
    ]
    for name in names:
        diffs = [members[s][name]["test"] - members[s][reference]["test"] for s in sorted(members)]
        cells = [
            f"{d:+.2f} [{members[s][name]['reward_set']:.2f}]" for d, s in zip(diffs, sorted(members), strict=True)
        ]
        mean, se = mean_se(diffs)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean:+.2f} ({se:.2f}) |")
    lines += ["", "| per seed | " + " | ".join(f"seed {s['seed']}" for s in summary["per_seed"]) + " | mean (SE) |"]
    lines.append("|---|" + "---:|" * (len(summary["per_seed"]) + 1))
    for key, label in (
        ("best_by_test_gain", "best by test - reference (oracle)"),
        ("best_by_reward_set_gain", "best by D_R - reference"),
        ("spearman_test_reward_set", "rank correlation, test vs D_R"),
    ):
        stats = summary["over_seeds"][key]
        cells = [f"{s[key]:+.2f}" for s in summary["per_seed"]]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {stats['mean']:+.2f} ({stats['se']:.2f}) |")
    picks = ", ".join(f"{s['seed']}: {s['best_by_reward_set']}" for s in summary["per_seed"])
    lines += ["", f"Member chosen by D_R per seed: {picks}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rules", nargs="+", default=[*DEFAULT_RULES, "margin_balance"])
    parser.add_argument("--reference", default="margin", help="the rule whose label set the others are paired with")
    parser.add_argument("--switching", type=int, default=6, help="random rule-switching members per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=160, help="test-mode regions")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/label_set_headroom")
    args = parser.parse_args(argv)
    if args.reference not in args.rules:
        parser.error(f"--reference {args.reference!r} must be one of --rules {args.rules}")
    if args.switching < 0:
        parser.error(f"--switching {args.switching}: give 0 or more members")
    rules = tuple(args.rules)
    env_kwargs = parse_key_values(args.env_kwargs, "--env-kwargs")
    test_kwargs = {**env_kwargs, "mode": "test", "budget": args.budget, "eval_budgets": [args.budget]}
    torch.set_num_threads(args.threads)
    env = wrapped_env(args.env, {**test_kwargs, "final_training": True}, rules, seed=0)  # checks settings first
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # "reward_set": how the D_R score is measured; before it named the scored network, D_R had a training of its own
    base = {"env": args.env, "env_kwargs": test_kwargs, "rules": rules, "threads": args.threads, "reward_set": "scored"}
    key = hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest()[:8]
    agents: dict[str, Any] = {rule: Always(i) for i, rule in enumerate(rules)}
    members: dict[int, dict[str, dict]] = {}
    for seed in args.seeds:
        switching = {f"switch{m}": RandomSwitch(len(rules), 10_000 * seed + m) for m in range(args.switching)}
        for name, agent in {**agents, **switching}.items():
            path = out / f"{name}_seed{seed}_{key}.json"
            settings = {**base, "member": name, "seed": seed}
            members.setdefault(seed, {})[name] = cached(
                path, settings, lambda agent=agent: score_member(agent, env, seed)
            )
            print(f"seed {seed} {name}: test {members[seed][name]['test']:.2f}", flush=True)
    summary = summarise(members, args.reference)
    report = table(members, summary, args, args.reference)
    atomic_write_text(report, out.with_suffix(".md"))
    atomic_write_json({"args": vars(args), "members": members, "summary": summary}, out.with_suffix(".json"))
    print(report)
    return summary


if __name__ == "__main__":
    main()
