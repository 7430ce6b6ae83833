"""How closely do the rules, and a regression on the observation, follow the true error of a region?

On CamVid the region the network truly gets most wrong (``error_oracle``) is +0.23 +- 0.11 test points above
margin's at 192 regions (docs/oracle.md, "A third probe"). A learned error estimator can reach part of that only
as far as its ranking of the candidates follows the true error. This measures that ranking, cheaply (no final
training). It plays ``--episodes`` train-mode episodes with ``--behaviour`` (margin by default) and at every step
reads each candidate's feature row and true error (``env.unwrapped.candidate_errors``: the share of its labelled
pixels the current network misclassifies). Over the pools of the held-out episodes (all but the first
``--fit-episodes``) it reports, for every rule and for a ridge regression of the true error on the feature rows
(fitted on the first ``--fit-episodes`` episodes, the train pool's labels a learner may read):

- **error captured**: the true error of its picks as a share of the error oracle's picks (100% = the oracle,
  summed over pools), and the same for random picks as the floor;
- **oracle's pick**: how often its pick is as wrong as the most wrong candidate of the pool.

    python benchmarks/error_estimate.py                                      # synthetic, 6 episodes (3 fit)
    python benchmarks/error_estimate.py --env SegAL-CamVid-v0 --env-kwargs data_root=../shared/data/camvid \
        scale=0.5 'region_size=[45,40]' --out benchmarks/results/error_estimate_camvid

Results go to ``<out>.md`` and ``<out>.json`` (atomically).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import segal_env  # noqa: F401  (registers the ids)
from agents import BASELINES, PRIVILEGED_POLICIES, make_agent
from agents.baselines import DEFAULT_RULES
from agents.error_regression import collect_errors, fit_ridge
from segal_env.config import parse_env_settings
from segal_env.runtime import thread_count, torch_threads
from segal_env.storage import atomic_write_json, atomic_write_text


def collect(env: gym.Env, behaviour: str, rules: list[str], episodes: int, seed: int) -> list[dict[str, Any]]:
    """``agents.error_regression.collect_errors``'s steps of ``behaviour``, each with every rule's picks [K]."""
    steps = collect_errors(env, make_agent(behaviour, env, seed=seed), episodes, seed)
    for rule in rules:
        scorer = make_agent(rule, env, seed=seed)
        for step in steps:
            step.setdefault("picks", {})[rule] = np.asarray(scorer.predict(step["observation"], deterministic=True)[0])
    return steps


def pick_quality(errors: np.ndarray, mask: np.ndarray, picks: np.ndarray) -> dict[str, float]:
    """Error captured (%) and oracle-pick rate (%) of ``picks`` [P] over pools [P, N] (masked slots never win)."""
    masked = np.where(mask, errors, -np.inf)
    best = masked.max(1)
    chosen = errors[np.arange(len(picks)), picks]
    valid = mask[np.arange(len(picks)), picks]
    if not valid.all():
        raise ValueError("a pick fell on an empty pool slot")
    random_mean = np.nanmean(np.where(mask, errors, np.nan), 1)
    return {
        "error_captured": 100.0 * float(chosen.sum() / best.sum()),
        "random_captured": 100.0 * float(random_mean.sum() / best.sum()),
        "oracle_pick": 100.0 * float(np.mean(chosen >= best - 1e-9)),
    }


def evaluate(steps: list[dict], fit_episodes: int, ridge: float) -> dict:
    """Every rule's and the regression's pick quality on the held-out steps, and the regression's fit."""
    fit = [s for s in steps if s["episode"] < fit_episodes]
    held = [s for s in steps if s["episode"] >= fit_episodes]
    if not fit or not held:
        raise ValueError("need at least one episode to fit and one to hold out (--episodes > --fit-episodes)")
    rows = np.concatenate([s["candidates"][s["mask"]] for s in fit])
    target = np.concatenate([s["errors"][s["mask"]] for s in fit])
    model = fit_ridge(rows, target, ridge)
    errors = np.concatenate([s["errors"] for s in held])
    mask = np.concatenate([s["mask"] for s in held])
    candidates = np.concatenate([s["candidates"] for s in held])
    predicted = np.where(mask, model.predict(candidates), -np.inf)
    results = {
        rule: pick_quality(errors, mask, np.concatenate([s["picks"][rule] for s in held])) for rule in held[0]["picks"]
    }
    results["ridge regression"] = pick_quality(errors, mask, predicted.argmax(1))
    truth, guess = errors[mask], predicted[mask]
    r2 = 1.0 - float(((truth - guess) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())
    return {"policies": results, "ridge_r2_held_out": r2, "fit_rows": len(target), "held_out_pools": len(errors)}


def report(summary: dict, command: str) -> str:
    lines = [
        f"`{command}`",
        "",
        f"{summary['fit_rows']} candidate rows to fit, {summary['held_out_pools']} held-out pools; ridge regression "
        f"R^2 on the held-out rows {summary['ridge_r2_held_out']:.3f}. Random picks capture "
        f"{next(iter(summary['policies'].values()))['random_captured']:.1f}% of the oracle's error.",
        "",
        "| picks by | error captured (% of the error oracle's) | pick is the most wrong candidate (%) |",
        "|---|---:|---:|",
    ]
    ordered = sorted(summary["policies"].items(), key=lambda item: -item[1]["error_captured"])
    lines += [f"| {name} | {q['error_captured']:.1f} | {q['oracle_pick']:.1f} |" for name, q in ordered]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--behaviour", default="margin", help="the rule whose episodes are read (default margin)")
    parser.add_argument("--rules", nargs="+", default=["random", *DEFAULT_RULES, "margin_balance"])
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--fit-episodes", type=int, default=3)
    parser.add_argument("--ridge", type=float, default=1.0, help="ridge penalty on the standardised features")
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed SEED + i")
    parser.add_argument("--threads", type=thread_count, default=1)
    parser.add_argument("--out", default="benchmarks/results/error_estimate")
    args = parser.parse_args(argv)
    if not 1 <= args.fit_episodes < args.episodes:
        parser.error(f"--fit-episodes {args.fit_episodes} must be >= 1 and below --episodes {args.episodes}")
    if not args.ridge > 0:
        parser.error(f"--ridge must be > 0, got {args.ridge}")
    # the rules score the stored observations after the episodes, so they must read nothing but the observation;
    # the behaviour acts during them and may be a label-reading policy
    unknown = [name for name in args.rules if name not in BASELINES]
    if args.behaviour not in BASELINES and args.behaviour not in PRIVILEGED_POLICIES:
        unknown.insert(0, args.behaviour)
    if unknown:
        parser.error(f"unknown rule(s) {unknown}: give baseline names ({', '.join(BASELINES)})")
    try:
        env_kwargs = parse_env_settings(args.env_kwargs, "--env-kwargs")
    except ValueError as error:
        parser.error(str(error))
    command = "python benchmarks/error_estimate.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with torch_threads(args.threads):
        env = gym.make(args.env, device="cpu", **env_kwargs)
        steps = collect(env, args.behaviour, args.rules, args.episodes, args.seed)
    summary = {
        **evaluate(steps, args.fit_episodes, args.ridge),
        "command": command.strip(),
        "args": vars(args),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = report(summary, summary["command"])
    atomic_write_text(text, out.with_suffix(".md"))
    atomic_write_json(summary, out.with_suffix(".json"))
    print(text)
    return summary


if __name__ == "__main__":
    main()
