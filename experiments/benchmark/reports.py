"""A benchmark summary as text: the markdown report (summary.md) and its CSV tables."""

from __future__ import annotations

import csv
import io
import json
import math


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}"


def miou_markdown(summary: dict, key: str = "test_miou") -> str:
    budgets = summary["budgets"]
    lines = ["| policy | " + " | ".join(str(b) for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
    for policy in summary["policies"]:
        curve = summary["curves"][policy]
        cells = []
        for budget in budgets:
            if budget in curve["budgets"]:
                i = curve["budgets"].index(budget)
                mean = curve[f"{key}_mean"][i]  # None: a run without this score
                cells.append("-" if mean is None else f"{_pct(mean)} ± {_pct(curve[f'{key}_std'][i])}")
            else:
                cells.append("-")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interval(row: dict, max_budget: float) -> str:
    if row["regions_interval_90"] is None:
        return "-"
    low, high = row["regions_interval_90"]
    if low is None:
        return f"not reached (> {max_budget})"
    return f"{low:.0f} .. " + (f"{high:.0f}" if high is not None else f"> {max_budget}")


def headline_markdown(summary: dict) -> str:
    head = summary["headline"]
    lines = [
        "| policy | final test mIoU (%) | labeled regions to reach target | 90% interval (bootstrap over seeds) | "
        "saving vs reference |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in head["rows"]:
        if row["regions_to_target"] is None:
            regions = f"not reached (> {head['max_budget']})"
        else:
            regions = f"{row['regions_to_target']:.0f}" + (" (≤, first budget)" if row["how"] == "first_budget" else "")
        saving = "-" if row["saving_percent"] is None else f"{row['saving_percent']:+.1f}%"
        name = row["policy"] + (" (reference)" if row["policy"] == head["reference"] else "")
        lines.append(
            f"| {name} | {_pct(row['final_test_miou'])} | {regions} | {_interval(row, head['max_budget'])} | {saving} |"
        )
    return "\n".join(lines)


def paired_markdown(summary: dict, key: str = "paired") -> str:
    """Per budget: policy - reference in mIoU points (test split, or ``key="paired_reward_set_final"``: the
    reward set), mean (SE) over common seeds, and the seeds that difference would need for 2 SE (a bold
    cell stands >= 2 SE from zero)."""
    budgets = summary["budgets"]
    lines = [
        "| policy - " + summary["headline"]["reference"] + " | " + " | ".join(str(b) for b in budgets) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    for policy, by_budget in summary.get(key, {}).items():
        cells = []
        for budget in budgets:
            d = by_budget.get(str(budget))
            if d is None or d["n"] < 2:
                cells.append("-")
                continue
            text = f"{100 * d['mean']:+.2f} ({100 * d['se']:.2f}), n2SE={d['seeds_for_2se'] or '-'}"
            cells.append(f"**{text}**" if abs(d["mean"]) >= 2 * d["se"] else text)
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_markdown(summary: dict) -> str:
    budget = str(summary["class_budget"])
    names = summary["class_names"]
    lines = [
        "| class | " + " | ".join(f"{p} IoU / label share" for p in summary["policies"]) + " |",
        "|---|" + "---:|" * len(summary["policies"]),
    ]
    for c, name in enumerate(names):
        cells = []
        for policy in summary["policies"]:
            iou = summary["per_class_iou"][policy].get(budget)
            share = summary["labeled_pixels"][policy].get(budget)
            cells.append("-" if iou is None else f"{_pct(iou['mean'][c], 1)} / {_pct(share['fraction'][c], 1)}%")
        rare = " (rare)" if c in summary["rare_classes"]["classes"] else ""
        lines.append(f"| {name}{rare} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def csv_tables(summary: dict) -> dict[str, str]:
    """File name -> CSV text: results.csv (long: policy, budget, mean/std), per_class_iou.csv,
    labeled_pixels.csv, headline.csv (with the bootstrap interval of the regions needed), paired.csv (each
    policy - reference per budget)."""
    results, per_class, pixels = [], [], []
    for policy in summary["policies"]:
        curve = summary["curves"][policy]
        for i, budget in enumerate(curve["budgets"]):
            results.append(
                {
                    "policy": policy,
                    "budget": budget,
                    "n_seeds": curve["n_seeds"][i],
                    "test_miou_mean": curve["test_miou_mean"][i],
                    "test_miou_std": curve["test_miou_std"][i],
                    "reward_set_miou_mean": curve["reward_set_miou_mean"][i],
                    "reward_set_miou_std": curve["reward_set_miou_std"][i],
                    "reward_set_final_miou_mean": _blank(curve["reward_set_final_miou_mean"][i]),
                    "reward_set_final_miou_std": _blank(curve["reward_set_final_miou_std"][i]),
                }
            )
            iou = summary["per_class_iou"][policy][str(budget)]
            share = summary["labeled_pixels"][policy][str(budget)]
            for c, name in enumerate(summary["class_names"]):
                per_class.append(
                    {
                        "policy": policy,
                        "budget": budget,
                        "class": name,
                        "iou_mean": iou["mean"][c],
                        "iou_std": iou["std"][c],
                    }
                )
                pixels.append(
                    {
                        "policy": policy,
                        "budget": budget,
                        "class": name,
                        "labeled_pixels_mean": share["mean_pixels"][c],
                        "fraction": share["fraction"][c],
                    }
                )
    head = summary["headline"]
    headline = [
        {
            "policy": row["policy"],
            "final_test_miou": row["final_test_miou"],
            "target_miou": head["target_miou"],
            "reference": head["reference"],
            "regions_to_target": "" if row["regions_to_target"] is None else row["regions_to_target"],
            "how": row["how"],
            "saving_percent": "" if row["saving_percent"] is None else row["saving_percent"],
            "regions_90_low": _blank((row["regions_interval_90"] or [None, None])[0]),
            "regions_90_high": _blank((row["regions_interval_90"] or [None, None])[1]),
        }
        for row in head["rows"]
    ]
    paired = [
        {"policy": policy, "reference": head["reference"], "budget": int(budget), **d}
        for policy, by_budget in summary.get("paired", {}).items()
        for budget, d in by_budget.items()
    ]
    return {
        "results.csv": _csv(results),
        "per_class_iou.csv": _csv(per_class),
        "labeled_pixels.csv": _csv(pixels),
        "headline.csv": _csv(headline),
        "paired.csv": _csv(paired),
    }


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


def report_markdown(summary: dict, plots: dict[str, str] | None = None, notes: list[str] | None = None) -> str:
    """The human-readable report (summary.md)."""
    head = summary["headline"]
    rare = summary["rare_classes"]
    kwargs = json.dumps(summary["env_kwargs"], sort_keys=True)
    seeds = sorted({s for c in summary["curves"].values() for ss in c["seeds"] for s in ss})
    parts = [
        "# SegAL benchmark",
        "",
        f"- env: `{summary['env_id']}` kwargs `{kwargs}`",
        f"- policies: {', '.join(summary['policies'])}; seeds: {seeds}; budgets (labeled regions): {summary['budgets']}",
        f"- test mIoU {'after the final training on the start set and the acquired regions (fixed length)' if summary['final_training'] else 'of the network as fine-tuned during the episode'}",
        *[f"- note: {n}" for n in notes or []],
        "",
        "## Test mIoU (%) per budget, mean ± std over seeds",
        "",
        miou_markdown(summary),
        "",
        f"## Labeled regions needed to reach {_pct(head['target_miou'])}% test mIoU",
        "",
        f"Target: {head['target_source']}; savings relative to **{head['reference']}** ({head['reference_source']}). "
        "Linear interpolation between budgets on the seed-mean curves.",
        "",
        headline_markdown(summary),
        "",
        f"## Paired differences with {summary['headline']['reference']} (test-mIoU points, mean (SE) over common seeds)",
        "",
        "n2SE: the seeds the observed difference would need to stand 2 SE from zero; bold: it already does.",
        "",
        paired_markdown(summary),
        "",
        f"## Per class at {summary['class_budget']} labeled regions: test IoU (%) / share of labeled pixels",
        "",
        per_class_markdown(summary),
        "",
        f"Rare classes (the {len(rare['classes'])} with the smallest label share under {rare['ranked_by']}): "
        f"{', '.join(rare['names'])}.",
        "",
        "| policy | share of labeled pixels in rare classes | mean IoU of rare classes |",
        "|---|---:|---:|",
        *[
            f"| {r['policy']} | {_pct(r['rare_label_share'], 1)}% | {_pct(r['rare_class_miou'], 1)} |"
            for r in rare["rows"]
        ],
        "",
        "## Reward-set (D_R) mIoU (%) per budget",
        "",
        miou_markdown(summary, "reward_set_miou"),
    ]
    if summary["final_training"] and any(
        v is not None for c in summary["curves"].values() for v in c["reward_set_final_miou_mean"]
    ):
        parts += [
            "",
            "## Reward-set (D_R) mIoU (%) of the network scored on test (after the final training)",
            "",
            "What a user without a test split would compare: the same networks as the test table, scored on D_R. "
            "The table above is D_R of the episode's own network, before the final training.",
            "",
            miou_markdown(summary, "reward_set_final_miou"),
            "",
            f"Paired differences with {head['reference']} on D_R (mIoU points, mean (SE) over common seeds):",
            "",
            paired_markdown(summary, "paired_reward_set_final"),
        ]
    if plots:
        parts += ["", "## Plots", ""] + [f"- {title}: `{name}`" for title, name in plots.items()]
    return "\n".join(parts) + "\n"
