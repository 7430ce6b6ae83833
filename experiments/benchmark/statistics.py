"""The statistics of a benchmark: mean and sd over seeds, paired differences with their SE and the seeds a
difference needs for 2 SE, the labeled regions a curve needs to reach a target and a bootstrap interval for it.

Conventions (docs/benchmark.md): sd is the sample standard deviation (ddof=1; 0 for a single value); regions
to reach a target interpolate linearly between budgets.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np


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


def se_text(se: float) -> str:
    """An SE for a table, two decimals; "n/a" where one seed or one episode leaves none (nan)."""
    return f"{se:.2f}" if math.isfinite(se) else "n/a"


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
