"""A learned policy over several training seeds against rules, from one benchmark folder.

One training run is one draw of the learner: a benchmark of ``dqn_s0=... dqn_s1=... dqn_s2=...`` holds one policy
per trained model. This script reads such a folder and reports, per budget and per rule named by ``--against``:

- each training seed's test mIoU minus the rule's, paired by test seed: mean (SE over the test seeds);
- the mean over training seeds, with two SEs: over the training seeds (the spread a new training run adds) and
  pooled (over the test seeds of the training-seed mean: the test episodes' own noise);
- the share of labeled pixels in the rare classes (the report's, ``summary.md``) at the largest budget, with the
  agents' mean minus the rule's, paired by test seed;
- with ``--paired-with PREFIX``: each agent minus the other learner trained with the same seed (the same label
  after the prefix, e.g. ``fg_s1`` and ``g_s1``), paired by test seed: one lever against another, same seeds.

    python benchmarks/training_seeds.py results/camvid-dqn-prior/benchmark --agents dqn_margin_s \
        --against margin entropy bald --out benchmarks/results/camvid_dqn_margin
    python benchmarks/training_seeds.py results/fg-bench --agents fg100_s --against margin --paired-with g100_s

Results go to ``<out>.json`` / ``<out>.md``, written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.benchmark.aggregate import load_results, summarize
from experiments.benchmark.statistics import mean_se, paired_difference, se_text
from segal_env.storage import atomic_write_json, atomic_write_text


def by_policy_and_seed(records: list[dict], rare: list[int]) -> dict[str, dict[int, dict[int, tuple[float, float]]]]:
    """policy -> test seed -> budget -> (test mIoU in points, rare-class share of the labeled pixels)."""
    table: dict[str, dict[int, dict[int, tuple[float, float]]]] = {}
    for record in records:
        runs = table.setdefault(record["policy"], {})
        cells = runs.setdefault(int(record["seed"]), {})
        for entry in record["entries"]:
            pixels = np.asarray(entry["labeled_pixels_per_class"], dtype=float)
            share = float(pixels[rare].sum() / pixels.sum()) if pixels.sum() > 0 else float("nan")
            cells[int(entry["budget"])] = (100.0 * float(entry["test_miou"]), share)
    return table


def over_training_seeds(per_agent: dict[str, dict], agents_mean: list[float], reference: list[float]) -> dict:
    """One budget's row: each training seed's paired difference, their mean and SE over training seeds, and the
    pooled SE (the training seeds' mean minus ``reference``, paired by test seed)."""
    over_training = mean_se([d["mean"] for d in per_agent.values()])
    return {
        "per_agent": per_agent,
        "mean": over_training["mean"],
        "se_training_seeds": over_training["se"],
        "se_pooled": paired_difference(agents_mean, reference)["se"],
    }


def compare(folder: str | Path, agents_prefix: str, against: list[str], paired_prefix: str | None = None) -> dict:
    """The agents (policies named ``agents_prefix``...) against each rule in ``against``, paired by test seed, and
    against the learners named ``paired_prefix``... of the same training seeds."""
    records = load_results(folder)
    if not records:
        raise ValueError(f"no complete benchmark runs in {Path(folder) / 'runs'}")
    rare = summarize(records)["rare_classes"]["classes"]
    table = by_policy_and_seed(records, rare)
    agents = sorted(p for p in table if p.startswith(agents_prefix))
    missing = [rule for rule in against if rule not in table]
    if not agents:
        raise ValueError(f"{folder} has policies {sorted(table)}: no agent named {agents_prefix}...")
    if missing:
        raise ValueError(f"{folder} has no runs of {missing} (policies: {sorted(table)})")
    partners = {a: paired_prefix + a[len(agents_prefix) :] for a in agents} if paired_prefix else {}
    unmatched = [p for p in partners.values() if p not in table]
    if unmatched:
        raise ValueError(
            f"--paired-with {paired_prefix}: {folder} has no runs of {unmatched} (policies: {sorted(table)})"
        )
    compared = [*agents, *against, *partners.values()]
    seeds = sorted(set.intersection(*(set(table[p]) for p in compared)))
    budgets = sorted(set.intersection(*(set(table[p][s]) for p in compared for s in seeds))) if seeds else []
    if not budgets:
        raise ValueError(f"the agents and {against} share no test seed and budget in {folder}")

    def value(policy: str, seed: int, budget: int, column: int) -> float:
        return table[policy][seed][budget][column]

    def agents_mean(seed: int, budget: int, column: int) -> float:
        return float(np.mean([value(a, seed, budget, column) for a in agents]))

    out: dict = {"folder": str(folder), "agents": agents, "test_seeds": seeds, "budgets": budgets, "rare_classes": rare}
    out["miou"] = {
        policy: {str(b): mean_se([value(policy, s, b, 0) for s in seeds]) for b in budgets} for policy in against
    }
    out["miou"]["agents"] = {str(b): mean_se([agents_mean(s, b, 0) for s in seeds]) for b in budgets}
    out["against"] = {}
    for rule in against:
        rows: dict = {}
        for b in budgets:
            rule_values = [value(rule, s, b, 0) for s in seeds]
            per_agent = {a: paired_difference([value(a, s, b, 0) for s in seeds], rule_values) for a in agents}
            rows[str(b)] = over_training_seeds(per_agent, [agents_mean(s, b, 0) for s in seeds], rule_values)
        last = budgets[-1]
        rows["rare_share"] = {
            "budget": last,
            "agents": mean_se([agents_mean(s, last, 1) for s in seeds]),
            "rule": mean_se([value(rule, s, last, 1) for s in seeds]),
            "difference": paired_difference(
                [agents_mean(s, last, 1) for s in seeds], [value(rule, s, last, 1) for s in seeds]
            ),
        }
        out["against"][rule] = rows
    if partners:
        paired: dict = {"prefix": paired_prefix, "pairs": partners}
        for b in budgets:
            per_agent = {
                a: paired_difference([value(a, s, b, 0) for s in seeds], [value(p, s, b, 0) for s in seeds])
                for a, p in partners.items()
            }
            partners_mean = [float(np.mean([value(p, s, b, 0) for p in partners.values()])) for s in seeds]
            paired[str(b)] = over_training_seeds(per_agent, [agents_mean(s, b, 0) for s in seeds], partners_mean)
        out["paired_with"] = paired
    return out


def difference_table(header: str, labels: dict[str, str], rows: dict, budgets: list[int]) -> list[str]:
    """Markdown lines of one comparison: a row per agent (``labels`` maps it to its row label) with its paired
    difference and SE at each budget, then the mean over training seeds with both SEs (``over_training_seeds``)."""
    lines = ["| " + header + " | " + " | ".join(str(b) for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
    for agent, label in labels.items():
        cells = [rows[str(b)]["per_agent"][agent] for b in budgets]
        lines.append(f"| {label} | " + " | ".join(f"{c['mean']:+.2f} ({se_text(c['se'])})" for c in cells) + " |")
    means = [rows[str(b)] for b in budgets]
    lines.append(
        "| **mean** | "
        + " | ".join(
            f"**{m['mean']:+.2f}** ({se_text(m['se_training_seeds'])}; {se_text(m['se_pooled'])})" for m in means
        )
        + " |"
    )
    return lines


def to_markdown(result: dict) -> str:
    agents, budgets = result["agents"], result["budgets"]
    lines = [
        f"# {len(agents)} training seeds ({', '.join(agents)}) against rules",
        "",
        f"Folder `{result['folder']}`; test seeds {result['test_seeds']}; test mIoU points, paired by test seed.",
        "",
        "| policy | " + " | ".join(str(b) for b in budgets) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    for policy, cells in result["miou"].items():
        name = "agents (mean over training seeds)" if policy == "agents" else policy
        lines.append(f"| {name} | " + " | ".join(f"{cells[str(b)]['mean']:.2f}" for b in budgets) + " |")
    for rule, rows in result["against"].items():
        lines += [
            "",
            f"## - {rule}: each training seed (SE over test seeds); mean (SE over training seeds; pooled SE)",
            "",
            *difference_table(f"agent - {rule}", {a: a for a in agents}, rows, budgets),
        ]
        share = rows["rare_share"]
        lines += [
            "",
            f"Rare-class share of the labels at {share['budget']} regions: agents {100 * share['agents']['mean']:.1f}%, "
            f"{rule} {100 * share['rule']['mean']:.1f}%, difference {100 * share['difference']['mean']:+.2f} "
            f"({se_text(100 * share['difference']['se'])}) points.",
        ]
    if "paired_with" in result:
        paired = result["paired_with"]
        lines += [
            "",
            f"## - the `{paired['prefix']}` learner of the same training seed: each pair (SE over test seeds); mean "
            "(SE over training seeds; pooled SE)",
            "",
            *difference_table("pair", {a: f"{a} - {p}" for a, p in paired["pairs"].items()}, paired, budgets),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a benchmark output folder (evaluate.py --out)")
    parser.add_argument("--agents", required=True, metavar="PREFIX", help="the agents' policy labels start with this")
    parser.add_argument("--against", nargs="+", required=True, metavar="RULE", help="policies to compare with")
    parser.add_argument(
        "--paired-with",
        metavar="PREFIX",
        help="also compare each agent with the learner of the same training seed named PREFIX + its suffix",
    )
    parser.add_argument("--out", help="output path without suffix (default: <folder>/training_seeds)")
    args = parser.parse_args(argv)
    try:
        result = compare(args.folder, args.agents, args.against, args.paired_with)
    except ValueError as error:
        parser.error(str(error))
    out = Path(args.out or Path(args.folder) / "training_seeds")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(result, out.with_suffix(".json"))
    markdown = to_markdown(result)
    atomic_write_text(markdown, out.with_suffix(".md"))
    print(markdown)
    return result


if __name__ == "__main__":
    main()
