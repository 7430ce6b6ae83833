"""From per-run result records to tables: mean and std over seeds per (policy, budget), per-class IoU,
the class distribution of acquired labels, and the headline "labeled regions needed to reach a target
mIoU" with the saving relative to the best baseline.

Conventions (also in docs/benchmark.md):

- std is the sample standard deviation over seeds (ddof=1); 0 with a single seed.
- The curves used for the headline are the seed-mean test mIoU curves.
- Regions needed to reach a target: the first budget where the mean curve reaches the target, with
  linear interpolation between the two budgets around the crossing. A curve already at or above the
  target at the first budget is reported as that first budget (an upper bound: nothing is measured
  below it). A curve that never reaches it is "not reached" (no saving is computed).
- Default target: the best baseline's final mIoU (largest mean test mIoU at the largest budget among
  the heuristic baselines); the saving of a policy is 100 x (R_ref - R_policy) / R_ref with R_ref the
  regions the best baseline needs.
- Rare classes: the floor(C/2) classes with the smallest share of labeled pixels under the "random"
  policy (which samples the pool's own class distribution); without "random", under the mean over all
  policies.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from experiments.benchmark.runner import is_complete

SUMMARY_VERSION = 1


# ---- loading -----------------------------------------------------------------------------------------
def load_results(out_dir: str | os.PathLike) -> list[dict]:
    """Every complete result record under ``out_dir/runs`` (torn or foreign files are skipped)."""
    records = []
    for path in sorted((Path(out_dir) / "runs").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if is_complete(record):
            records.append(record)
    return records


# ---- statistics --------------------------------------------------------------------------------------
def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0.0 for a single value)."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return float(array.mean()), std


def mean_se(values: Iterable[float]) -> dict[str, float]:
    """Mean and standard error of the mean (sample sd / sqrt(n); nan for a single value)."""
    array = np.asarray(list(values), dtype=float)
    se = float(array.std(ddof=1) / math.sqrt(array.size)) if array.size > 1 else math.nan
    return {"mean": float(array.mean()), "se": se}


def paired_difference(a: Iterable[float], b: Iterable[float]) -> dict[str, float]:
    """Mean, sd and standard error of the per-seed difference a - b, both measured on the same seeds, and
    the number of seeds that difference would need to stand 2 SE from zero.

    Pairing removes what the seeds share (the episode's pools, the network's start): the SE of the
    difference is what says whether one policy beats another, not the two sds side by side.
    """
    diff = np.asarray(list(a), dtype=float) - np.asarray(list(b), dtype=float)
    result = mean_se(diff)
    result["sd"] = float(diff.std(ddof=1)) if diff.size > 1 else math.nan
    result["n"] = int(diff.size)
    result["seeds_for_2se"] = seeds_for_2se(result["mean"], result["sd"])
    return result


def seeds_for_2se(mean: float, sd: float) -> int | None:
    """Seeds n with 2 sd / sqrt(n) <= |mean|: how many paired runs a difference this size needs to be
    resolved at 2 SE (None when it is zero or the sd is unknown; at least 2)."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0:
        return None
    return max(2, math.ceil((2.0 * sd / abs(mean)) ** 2))


def regions_to_reach(budgets: list[float], values: list[float], target: float) -> tuple[float | None, str]:
    """Labeled regions at which a curve first reaches ``target``, by linear interpolation.

    Returns (regions, how) with how one of "interpolated", "at_budget", "first_budget" (already
    reached at the first budget: an upper bound) or "not_reached" (regions None).
    """
    points = sorted(zip(budgets, values))
    if not points:
        return None, "not_reached"
    first_budget, first_value = points[0]
    if first_value >= target:
        return float(first_budget), "first_budget"
    for (b0, v0), (b1, v1) in zip(points, points[1:]):
        if v1 >= target:
            if v1 == target:
                return float(b1), "at_budget"
            return float(b0 + (target - v0) / (v1 - v0) * (b1 - b0)), "interpolated"
    return None, "not_reached"


def regions_interval(
    budgets: list[float], per_seed: np.ndarray, target: float, level: float = 0.9, draws: int = 2000, seed: int = 0
) -> tuple[float | None, float | None]:
    """A bootstrap interval (``level``, percentile) for the regions a policy needs to reach ``target``.

    ``per_seed`` [n_seeds, n_budgets] holds each seed's test mIoU; seeds are resampled with replacement,
    the mean curve recomputed and ``regions_to_reach`` applied. A resample that never reaches the target
    counts as infinitely many regions, so an upper bound of None means "not reached" within the budgets.
    Why: one mean curve crosses the target once, but a different set of seeds would cross it elsewhere.
    """
    per_seed = np.asarray(per_seed, dtype=float)
    if per_seed.ndim != 2 or per_seed.shape[0] < 2:
        return None, None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, per_seed.shape[0], size=(draws, per_seed.shape[0]))
    curves = per_seed[picks].mean(axis=1)
    needed = np.array([regions_to_reach(budgets, list(c), target)[0] or math.inf for c in curves])
    low, high = np.quantile(needed, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")  # inf stays inf
    return (None if math.isinf(low) else float(low)), (None if math.isinf(high) else float(high))


def saving_percent(reference_regions: float | None, regions: float | None) -> float | None:
    if reference_regions is None or regions is None or reference_regions <= 0:
        return None
    return 100.0 * (reference_regions - regions) / reference_regions


# ---- summary -----------------------------------------------------------------------------------------
def _policy_order(records: list[dict], order: list[str] | None) -> list[str]:
    present = []
    for record in records:
        if record["policy"] not in present:
            present.append(record["policy"])
    ordered = [p for p in (order or []) if p in present]
    return ordered + sorted(p for p in present if p not in ordered)


def summarize(
    records: list[dict],
    baselines: Iterable[str] | None = None,
    target_miou: float | None = None,
    reference: str | None = None,
    class_budget: int | None = None,
    policy_order: list[str] | None = None,
) -> dict:
    """Aggregate complete run records (all from one configuration) into a JSON-able summary.

    :param baselines: policy *sources* that count as baselines for the default target (default:
        the names in ``agents.BASELINES``)
    :param target_miou: fixed target test mIoU for the headline (default: the reference's final mIoU)
    :param reference: policy label the savings are relative to (default: the best baseline)
    :param class_budget: budget of the per-class tables and plots (default: the largest)
    """
    if not records:
        raise ValueError("no complete results to aggregate")
    if baselines is None:
        from agents.baselines import BASELINES

        baselines = BASELINES
    baselines = set(baselines)
    policies = _policy_order(records, policy_order)
    budgets = sorted({int(e["budget"]) for r in records for e in r["entries"]})
    class_names = list(records[0]["class_names"])
    n_classes = len(class_names)
    class_budget = int(class_budget or budgets[-1])
    if class_budget not in budgets:
        raise ValueError(f"class budget {class_budget} is not one of the budgets {budgets}")

    by_policy: dict[str, list[dict]] = {p: [] for p in policies}
    sources: dict[str, str] = {}
    for record in records:
        by_policy[record["policy"]].append(record)
        sources[record["policy"]] = record.get("policy_source", record["policy"])

    curves: dict[str, dict] = {}
    per_class: dict[str, dict] = {}
    labeled: dict[str, dict] = {}
    per_seed: dict[str, dict] = {}
    for policy in policies:
        runs = sorted(by_policy[policy], key=lambda r: r["seed"])
        curve: dict[str, list] = {
            "budgets": [],
            "seeds": [],
            "n_seeds": [],
            "test_miou_mean": [],
            "test_miou_std": [],
            "reward_set_miou_mean": [],
            "reward_set_miou_std": [],
        }
        per_class[policy], labeled[policy] = {}, {}
        for budget in budgets:
            entries = [(r["seed"], e) for r in runs for e in r["entries"] if int(e["budget"]) == budget]
            if not entries:
                continue
            curve["budgets"].append(budget)
            curve["seeds"].append([int(s) for s, _ in entries])
            per_seed.setdefault(policy, {})[budget] = {int(s): float(e["test_miou"]) for s, e in entries}
            curve["n_seeds"].append(len(entries))
            for key, out in (("test_miou", "test_miou"), ("reward_set_miou", "reward_set_miou")):
                mean, std = mean_std(e[key] for _, e in entries)
                curve[f"{out}_mean"].append(mean)
                curve[f"{out}_std"].append(std)
            ious = np.array([e["test_per_class_iou"] for _, e in entries], dtype=float)
            pixels = np.array([e["labeled_pixels_per_class"] for _, e in entries], dtype=float)
            per_class[policy][budget] = {
                "mean": ious.mean(0).tolist(),
                "std": (ious.std(0, ddof=1) if len(entries) > 1 else np.zeros(n_classes)).tolist(),
            }
            mean_pixels = pixels.mean(0)
            labeled[policy][budget] = {
                "mean_pixels": mean_pixels.tolist(),
                "fraction": (mean_pixels / max(mean_pixels.sum(), 1.0)).tolist(),
            }
        curves[policy] = curve

    headline = _headline(curves, policies, sources, baselines, target_miou, reference, per_seed)
    paired = _paired_with_reference(per_seed, policies, headline["reference"])
    rare = _rare_classes(labeled, policies, sources, class_budget, n_classes)
    rare_rows = []
    for policy in policies:
        if class_budget not in labeled[policy]:
            continue
        fraction = np.array(labeled[policy][class_budget]["fraction"])
        iou = np.array(per_class[policy][class_budget]["mean"])
        rare_rows.append(
            {
                "policy": policy,
                "rare_label_share": float(fraction[rare["classes"]].sum()),
                "rare_class_miou": float(iou[rare["classes"]].mean()),
            }
        )
    return {
        "summary_version": SUMMARY_VERSION,
        "env_id": records[0]["env_id"],
        "env_kwargs": records[0]["env_kwargs"],
        "final_training": bool(records[0]["final_training"]),
        "num_pools": records[0].get("num_pools"),
        "budgets": budgets,
        "policies": policies,
        "policy_sources": sources,
        "class_names": class_names,
        "class_budget": class_budget,
        "curves": curves,
        "per_class_iou": {p: {str(b): v for b, v in d.items()} for p, d in per_class.items()},
        "labeled_pixels": {p: {str(b): v for b, v in d.items()} for p, d in labeled.items()},
        "headline": headline,
        "paired": paired,
        "rare_classes": {**rare, "names": [class_names[c] for c in rare["classes"]], "rows": rare_rows},
        "wall_time_s": {p: mean_std(r["wall_time_s"] for r in by_policy[p]) for p in policies},
    }


def _paired_with_reference(per_seed: dict, policies: list[str], reference: str) -> dict:
    """policy -> budget -> the paired difference policy - reference over their common seeds (mean, sd, SE,
    seeds needed for 2 SE): the test that says whether a policy beats the reference at that budget."""
    out: dict[str, dict[str, dict]] = {}
    for policy in policies:
        if policy == reference:
            continue
        out[policy] = {}
        for budget, values in per_seed.get(policy, {}).items():
            reference_values = per_seed.get(reference, {}).get(budget, {})
            common = sorted(set(values) & set(reference_values))
            if common:
                out[policy][str(budget)] = paired_difference(
                    [values[s] for s in common], [reference_values[s] for s in common]
                )
    return out


def _headline(curves, policies, sources, baselines, target_miou, reference, per_seed=None) -> dict:
    final = {p: c["test_miou_mean"][-1] for p, c in curves.items() if c["budgets"]}
    baseline_policies = [p for p in policies if sources[p] in baselines and p in final]
    if reference is not None:
        if reference not in final:
            raise ValueError(f"reference policy {reference!r} has no results; policies: {policies}")
        reference_policy, reference_note = reference, "chosen"
    elif baseline_policies:
        reference_policy = max(baseline_policies, key=lambda p: final[p])
        reference_note = "best baseline (largest final mean test mIoU)"
    else:
        reference_policy = max(final, key=lambda p: final[p])
        reference_note = "best policy (no heuristic baseline in the set)"
    if target_miou is None:
        target, target_note = final[reference_policy], f"final mean test mIoU of {reference_policy}"
    else:
        target, target_note = float(target_miou), "given"
    needed = {p: regions_to_reach(c["budgets"], c["test_miou_mean"], target) for p, c in curves.items()}
    reference_regions = needed[reference_policy][0]
    rows = []
    for policy in policies:
        regions, how = needed[policy]
        budgets = curves[policy]["budgets"]
        seeds = sorted(set.intersection(*(set(per_seed[policy][b]) for b in budgets))) if per_seed and budgets else []
        matrix = np.array([[per_seed[policy][b][s] for b in budgets] for s in seeds]) if seeds else np.zeros((0, 0))
        low, high = regions_interval(budgets, matrix, target)
        rows.append(
            {
                "regions_interval_90": [low, high],
                "policy": policy,
                "is_baseline": sources[policy] in baselines,
                "final_test_miou": final.get(policy),
                "regions_to_target": regions,
                "how": how,
                "reached": regions is not None,
                "saving_percent": saving_percent(reference_regions, regions),
            }
        )
    return {
        "target_miou": target,
        "target_source": target_note,
        "reference": reference_policy,
        "reference_source": reference_note,
        "reference_regions": reference_regions,
        "max_budget": max(max(c["budgets"]) for c in curves.values() if c["budgets"]),
        "rows": rows,
    }


def _rare_classes(labeled, policies, sources, budget, n_classes) -> dict:
    randoms = [p for p in policies if sources.get(p) == "random" and budget in labeled[p]]
    pool = randoms or [p for p in policies if budget in labeled[p]]
    share = np.mean([labeled[p][budget]["fraction"] for p in pool], axis=0)
    order = np.argsort(share, kind="stable")
    count = max(1, n_classes // 2)
    return {
        "classes": sorted(int(c) for c in order[:count]),
        "ranked_by": randoms[0] if randoms else "mean of all policies",
    }


# ---- tables ------------------------------------------------------------------------------------------
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
                cells.append(f"{_pct(curve[f'{key}_mean'][i])} ± {_pct(curve[f'{key}_std'][i])}")
            else:
                cells.append("-")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interval(row: dict, max_budget: float) -> str:
    low, high = row.get("regions_interval_90", [None, None])
    if low is None:
        return f"not reached (> {max_budget})" if "regions_interval_90" in row else "-"
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


def paired_markdown(summary: dict) -> str:
    """Per budget: policy - reference in test-mIoU points, mean (SE) over common seeds, and the seeds that
    difference would need for 2 SE (a bold cell stands >= 2 SE from zero)."""
    budgets = summary["budgets"]
    lines = [
        "| policy - " + summary["headline"]["reference"] + " | " + " | ".join(str(b) for b in budgets) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    for policy, by_budget in summary.get("paired", {}).items():
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
            "regions_90_low": _blank(row.get("regions_interval_90", [None, None])[0]),
            "regions_90_high": _blank(row.get("regions_interval_90", [None, None])[1]),
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
    if plots:
        parts += ["", "## Plots", ""] + [f"- {title}: `{name}`" for title, name in plots.items()]
    return "\n".join(parts) + "\n"
