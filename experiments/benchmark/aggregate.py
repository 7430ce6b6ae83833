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

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from agents.baselines import BASELINES
from experiments.benchmark.runner import is_complete
from experiments.benchmark.statistics import (
    mean_std,
    paired_difference,
    regions_interval,
    regions_to_reach,
    saving_percent,
)

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
    baselines = set(BASELINES if baselines is None else baselines)
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
    per_seed_reward_set: dict[str, dict] = {}
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
            "reward_set_final_miou_mean": [],
            "reward_set_final_miou_std": [],
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
            for key in ("test_miou", "reward_set_miou"):
                mean, std = mean_std(e[key] for _, e in entries)
                curve[f"{key}_mean"].append(mean)
                curve[f"{key}_std"].append(std)
            # D_R of the network scored on test (after the final training); None where a run lacks it
            scored = {int(s): e.get("reward_set_final_miou") for s, e in entries}
            if None in scored.values():
                curve["reward_set_final_miou_mean"].append(None)
                curve["reward_set_final_miou_std"].append(None)
            else:
                per_seed_reward_set.setdefault(policy, {})[budget] = {s: float(v) for s, v in scored.items()}
                mean, std = mean_std(scored.values())
                curve["reward_set_final_miou_mean"].append(mean)
                curve["reward_set_final_miou_std"].append(std)
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
    paired_reward_set = _paired_with_reference(per_seed_reward_set, policies, headline["reference"])
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
        # the same differences read on the reward set instead of the test split (model selection without test)
        "paired_reward_set_final": paired_reward_set,
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


def _headline(curves, policies, sources, baselines, target_miou, reference, per_seed) -> dict:
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
        seeds = sorted(set.intersection(*(set(per_seed[policy][b]) for b in budgets))) if budgets else []
        matrix = np.array([[per_seed[policy][b][s] for b in budgets] for s in seeds])
        # with fewer than 2 common seeds there is nothing to resample: no interval (not "not reached")
        interval = list(regions_interval(budgets, matrix, target)) if len(seeds) >= 2 else None
        rows.append(
            {
                "regions_interval_90": interval,
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
