"""PNG figures of a benchmark summary (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from segal_env.storage import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _colors(policies: list[str]) -> dict[str, tuple]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {p: cmap(i % 10) for i, p in enumerate(policies)}


def _save(fig, path: Path) -> str:
    """Atomic like the result files: render to a temporary file next to the target, then rename."""
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        _pyplot().close(fig)
    return path.name


def plot_miou_curves(summary: dict, path: Path, key: str = "test_miou") -> str:
    """Mean mIoU against labeled regions, a band of ± one std over seeds, the headline target dashed."""
    plt = _pyplot()
    colors = _colors(summary["policies"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for policy in summary["policies"]:
        curve = summary["curves"][policy]
        x = np.array(curve["budgets"], dtype=float)
        mean = 100 * np.array(curve[f"{key}_mean"])
        std = 100 * np.array(curve[f"{key}_std"])
        ax.plot(x, mean, marker="o", ms=4, color=colors[policy], label=f"{policy} (n={max(curve['n_seeds'])})")
        ax.fill_between(x, mean - std, mean + std, color=colors[policy], alpha=0.18, linewidth=0)
    if key == "test_miou":
        head = summary["headline"]
        ax.axhline(100 * head["target_miou"], color="0.4", ls="--", lw=1, label=f"target ({head['reference']} final)")
    ax.set_xlabel("labeled regions")
    ax.set_ylabel(("test" if key == "test_miou" else "reward-set") + " mIoU (%)")
    ax.set_title(f"{summary['env_id']}: mIoU vs labeled regions (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _grouped_bars(
    ax, summary: dict, values: Mapping[str, tuple[np.ndarray, np.ndarray | None]], order: np.ndarray
) -> None:
    colors = _colors(summary["policies"])
    policies = [p for p in summary["policies"] if p in values]
    width = 0.8 / max(len(policies), 1)
    x = np.arange(len(order))
    for i, policy in enumerate(policies):
        mean, std = values[policy]
        ax.bar(
            x + (i - (len(policies) - 1) / 2) * width,
            mean[order],
            width,
            yerr=None if std is None else std[order],
            color=colors[policy],
            label=policy,
            capsize=2,
            error_kw={"lw": 0.8},
        )
    names = summary["class_names"]
    rare = set(summary["rare_classes"]["classes"])
    ax.set_xticks(x, [names[c] + ("*" if c in rare else "") for c in order], rotation=35, ha="right", fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _class_order(summary: dict) -> np.ndarray:
    """Classes from most to least labeled under the rare-class ranking (rare classes on the right)."""
    budget = str(summary["class_budget"])
    ranked_by = summary["rare_classes"]["ranked_by"]
    pools = [ranked_by] if ranked_by in summary["labeled_pixels"] else summary["policies"]
    share = np.mean(
        [summary["labeled_pixels"][p][budget]["fraction"] for p in pools if budget in summary["labeled_pixels"][p]],
        axis=0,
    )
    return np.argsort(-share, kind="stable")


def plot_per_class_iou(summary: dict, path: Path) -> str:
    plt = _pyplot()
    budget = str(summary["class_budget"])
    values = {
        p: (100 * np.array(d[budget]["mean"]), 100 * np.array(d[budget]["std"]))
        for p, d in summary["per_class_iou"].items()
        if budget in d
    }
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(summary["class_names"]) + 2), 4.5))
    _grouped_bars(ax, summary, values, _class_order(summary))
    ax.set_ylabel("test IoU (%)")
    ax.set_title(f"Per-class test IoU at {budget} labeled regions (mean ± std; * = rare class)")
    return _save(fig, path)


def plot_class_distribution(summary: dict, path: Path) -> str:
    """Share of the labeled pixels per class (log scale), and the ratio to the ranking policy
    (usually "random"): bars above 1 on rare classes = the policy asks for more rare-class labels."""
    plt = _pyplot()
    budget = str(summary["class_budget"])
    order = _class_order(summary)
    shares = {
        p: (100 * np.array(d[budget]["fraction"]), None) for p, d in summary["labeled_pixels"].items() if budget in d
    }
    ranked_by = summary["rare_classes"]["ranked_by"]
    has_reference = ranked_by in shares
    fig, axes = plt.subplots(
        2 if has_reference else 1,
        1,
        figsize=(max(7, 0.6 * len(order) + 2), 7.5 if has_reference else 4.5),
        squeeze=False,
    )
    ax = axes[0, 0]
    _grouped_bars(ax, summary, shares, order)
    ax.set_yscale("log")
    ax.set_ylabel("share of labeled pixels (%)")
    ax.set_title(f"Class distribution of the acquired labels at {budget} regions (* = rare class)")
    if has_reference:
        # +0.05 percentage points on both sides: a class the reference never labelled gives a large but
        # finite ratio; clipped to [1/100, 100] so one such class does not flatten the others
        reference = shares[ranked_by][0] + 0.05
        ratios = {p: (np.clip((v + 0.05) / reference, 1e-2, 1e2), None) for p, (v, _) in shares.items()}
        ax = axes[1, 0]
        _grouped_bars(ax, summary, ratios, order)
        ax.axhline(1.0, color="0.3", lw=1)
        ax.set_yscale("log")
        ax.set_ylabel(f"label share / share under {ranked_by}")
        ax.set_title(f"Relative to {ranked_by}: above 1 = more labels of that class", fontsize=9)
    return _save(fig, path)


def plot_headline(summary: dict, path: Path) -> str:
    """Labeled regions each policy needs to reach the target mIoU, annotated with the saving."""
    plt = _pyplot()
    head = summary["headline"]
    colors = _colors(summary["policies"])
    rows = head["rows"]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.8))
    y = np.arange(len(rows))[::-1]
    limit = head["max_budget"]
    for yi, row in zip(y, rows):
        if row["regions_to_target"] is None:
            ax.barh(yi, limit, color="white", edgecolor=colors[row["policy"]], hatch="//")
            ax.text(limit, yi, "  not reached", va="center", fontsize=8)
        else:
            ax.barh(yi, row["regions_to_target"], color=colors[row["policy"]])
            label = f"  {row['regions_to_target']:.0f}"
            if row["how"] == "first_budget":
                label = f"  ≤{row['regions_to_target']:.0f}"
            if row["saving_percent"] is not None and row["policy"] != head["reference"]:
                label += f"  ({row['saving_percent']:+.1f}%)"
            ax.text(row["regions_to_target"], yi, label, va="center", fontsize=8)
    ax.set_yticks(y, [r["policy"] + (" (ref)" if r["policy"] == head["reference"] else "") for r in rows])
    ax.set_xlim(0, limit * 1.35)
    ax.set_xlabel("labeled regions needed")
    ax.set_title(f"Regions to reach {100 * head['target_miou']:.2f}% test mIoU ({head['target_source']})", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def make_plots(summary: dict, out_dir: str | os.PathLike) -> dict[str, str]:
    """Write every figure into ``out_dir``; returns {title: file name}."""
    out = Path(out_dir)
    budget = summary["class_budget"]
    return {
        "test mIoU vs labeled regions": plot_miou_curves(summary, out / "miou_vs_regions.png"),
        "reward-set mIoU vs labeled regions": plot_miou_curves(
            summary, out / "reward_set_miou_vs_regions.png", "reward_set_miou"
        ),
        f"per-class test IoU at {budget}": plot_per_class_iou(summary, out / f"per_class_iou_{budget}.png"),
        f"class distribution of acquired labels at {budget}": plot_class_distribution(
            summary, out / f"class_distribution_{budget}.png"
        ),
        "regions needed to reach the target (headline)": plot_headline(summary, out / "headline_regions_to_target.png"),
    }
