"""Does labelling make the segmentation network better, reproducibly? The figures behind docs/al_dynamics.md.

Three measurements, each a section (run one with --sections, or all):

- ``pretrain``: the start network of the env's configuration, pre-trained from scratch in fresh caches
  with 1 and with 2 torch threads (subprocesses). Target: D_R mIoU within 0.5 points; the D_R curve
  flat at the end (converged, not stopped early).
- ``train``: train-mode episodes of each policy on the same seeds (paired). Per episode the D_R gain
  (final - start, in points); per step the reward's signal (mean entropy - random at each step) against
  its noise (sd over seeds). Targets: random's mean gain > 0, entropy - random >= 3, sd of each <= 1.
- ``test``: test-mode episodes with the paper's final training at every eval budget (test mIoU),
  beside the start network's test mIoU and the same network trained on the whole pool (the headroom).
  Targets: every curve rises with the budget; headroom >= 10 points; the best policy recovers >= 40%.

    python benchmarks/al_dynamics.py                                   # synthetic preset, all sections
    python benchmarks/al_dynamics.py --sections train --seeds 5 --env-kwargs finetune_epochs=2

Results go to --out (JSON + markdown, written atomically); the markdown is what docs/ quote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np
import torch

import segal_env  # noqa: F401  (registers the ids)
from agents import make_agent
from experiments.benchmark.statistics import mean_std, paired_difference
from experiments.episodes import play_episode
from segal_env.config import parse_env_settings
from segal_env.models import build_model
from segal_env.runtime import seeded_torch
from segal_env.start_network import pretrain
from segal_env.storage import atomic_write_json, atomic_write_text


# ---- pre-training reproducibility --------------------------------------------------------------------
def start_network_in_fresh_cache(env_id: str, env_kwargs: dict, threads: int) -> dict:
    """Pre-train the start network in a subprocess with ``threads`` torch threads and an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        code = (
            "import json, sys, time, torch, gymnasium as gym, segal_env\n"
            f"torch.set_num_threads({threads})\n"
            "t = time.perf_counter()\n"
            f"env = gym.make({env_id!r}, **json.loads(sys.argv[1]))\n"
            "env.reset(seed=0)\n"
            "report = dict(env.unwrapped.start_report, seconds=time.perf_counter() - t)\n"
            "report.pop('description', None)\n"
            "print(json.dumps(report))\n"
        )
        kwargs = {**env_kwargs, "cache_dir": cache, "device": "cpu"}
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True, check=True
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def section_pretrain(env_id: str, env_kwargs: dict) -> dict:
    runs = {threads: start_network_in_fresh_cache(env_id, env_kwargs, threads) for threads in (1, 2)}
    for threads, run in runs.items():
        curve = run["curve"]
        tail = [point["val_miou"] for point in curve[int(0.7 * len(curve)) :]]
        print(
            f"pre-training, {threads} thread(s): D_R mIoU {100 * run['val_miou']:.2f}, "
            f"last 30% of steps within {100 * (max(tail) - min(tail)):.2f} points, {run['seconds']:.0f} s",
            flush=True,
        )
    return {
        "runs": {str(k): v for k, v in runs.items()},
        "difference_points": 100 * abs(runs[1]["val_miou"] - runs[2]["val_miou"]),
    }


# ---- episodes ------------------------------------------------------------------------------------------
def play(env: gym.Env, agent, seed: int) -> dict:
    """One greedy episode: D_R mIoU per step, rewards, test mIoU where reported, labeled pixels per class."""
    seconds = []
    episode = play_episode(agent, env, seed, on_step=lambda *_: seconds.append(env.unwrapped.last_timing["total"]))
    final = episode.final_info
    return {
        "seed": seed,
        "start_miou": episode.start_info["miou"],
        "rewards": episode.rewards,
        "step_seconds": seconds,
        "test": {info["regions_labeled"]: info["test_miou"] for info in episode.infos if "test_miou" in info},
        "final_miou": final["miou"],
        "gain_points": episode.gain_points,
        "labeled_pixels_per_class": final["labeled_pixels_per_class"],
    }


def section_train(env_id: str, env_kwargs: dict, policies: list[str], seeds: list[int]) -> dict:
    env = gym.make(env_id, **{**env_kwargs, "mode": "train"})
    episodes = {}
    for policy in policies:
        agent = make_agent(policy, env, seed=0)
        episodes[policy] = [play(env, agent, seed) for seed in seeds]
        gains = [e["gain_points"] for e in episodes[policy]]
        print(
            f"train mode, {policy}: D_R gain {np.mean(gains):+.2f} +- {mean_std(gains)[1]:.2f} points "
            f"({', '.join(f'{g:+.2f}' for g in gains)})",
            flush=True,
        )
    summary = {p: dict(zip(("mean", "sd"), mean_std([e["gain_points"] for e in eps]))) for p, eps in episodes.items()}
    result = {"episodes": episodes, "gain": summary, "start_miou": episodes[policies[0]][0]["start_miou"]}
    if "random" in episodes:
        base = [e["gain_points"] for e in episodes["random"]]
        result["minus_random"] = {
            p: paired_difference([e["gain_points"] for e in eps], base) for p, eps in episodes.items() if p != "random"
        }
        # per-step reward quality: signal = mean over steps of (policy - random) at the same step of the
        # same seed; noise = sd over seeds of a step's reward, averaged over steps
        rewards = {p: np.array([e["rewards"] for e in eps]) for p, eps in episodes.items()}
        noise = float(np.mean(rewards["random"].std(0, ddof=1)))
        result["reward_quality"] = {
            p: {
                "signal": float((rewards[p] - rewards["random"]).mean()),
                "noise": noise,
                "snr": float((rewards[p] - rewards["random"]).mean() / noise) if noise > 0 else float("nan"),
            }
            for p in rewards
            if p != "random"
        }
    result["median_step_seconds"] = float(
        np.median([s for eps in episodes.values() for e in eps for s in e["step_seconds"]])
    )
    return result


def supervised_on_pool(env: gym.Env, steps: int) -> dict:
    """The env's network trained on every image of its pool with the start network's recipe: the headroom."""
    base = env.unwrapped
    pool = base.roles.d_t if base.config.mode == "train" else base.roles.d_v
    with seeded_torch(0, torch.device("cpu")):
        model = build_model(base.config.model, base.num_classes, base.config.dropout, base.config.pretrained_backbone)
    report = pretrain(model, pool, base.roles.d_r, 0, base.device, steps, base.config.pretrain_lr)
    trainer = base.trainer.__class__(model, base.num_classes, base.ignore_index, base.device)
    test = trainer.evaluate(base.roles.test.images, base.roles.test.labels)
    return {"steps": steps, "images": len(pool), "d_r_miou": report["val_miou"], "test_miou": test.miou}


def section_test(
    env_id: str,
    env_kwargs: dict,
    policies: list[str],
    seeds: list[int],
    budgets: list[int] | None,
    supervised_steps: int,
) -> dict:
    kwargs = {**env_kwargs, "mode": "test", "final_training": True}
    if budgets:
        kwargs.update(eval_budgets=budgets, budget=max(budgets))
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    start_test = env.unwrapped.trainer.evaluate(env.unwrapped.roles.test.images, env.unwrapped.roles.test.labels).miou
    print(f"test mode: start network test mIoU {100 * start_test:.2f}", flush=True)
    episodes = {}
    for policy in policies:
        agent = make_agent(policy, env, seed=0)
        episodes[policy] = [play(env, agent, seed) for seed in seeds]
        curve = {b: mean_std([100 * e["test"][b] for e in episodes[policy]]) for b in episodes[policy][0]["test"]}
        print(
            f"test mode, {policy}: " + ", ".join(f"{b}: {m:.2f} +- {s:.2f}" for b, (m, s) in curve.items()), flush=True
        )
    supervised = supervised_on_pool(env, supervised_steps)
    print(
        f"test mode: the network trained on the whole pool ({supervised['images']} images): "
        f"test mIoU {100 * supervised['test_miou']:.2f}",
        flush=True,
    )
    headroom = 100 * (supervised["test_miou"] - start_test)
    largest = max(episodes[policies[0]][0]["test"])
    best = max(np.mean([100 * e["test"][largest] for e in eps]) for eps in episodes.values())
    return {
        "episodes": episodes,
        "start_test_miou": start_test,
        "supervised": supervised,
        "headroom_points": headroom,
        "best_recovered_fraction": (best - 100 * start_test) / headroom if headroom > 0 else float("nan"),
    }


# ---- report --------------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    lines = [f"`{results['command']}`", "", f"{results['platform']}", ""]
    if "pretrain" in results:
        p = results["pretrain"]
        lines += [
            "## Start network, fresh cache, 1 vs 2 torch threads",
            "",
            "| threads | D_R mIoU | D_R over the last 30% of steps | seconds |",
            "|---|---|---|---|",
        ]
        for threads, run in p["runs"].items():
            tail = [c["val_miou"] for c in run["curve"][int(0.7 * len(run["curve"])) :]]
            lines.append(
                f"| {threads} | {100 * run['val_miou']:.2f} | {100 * min(tail):.2f} .. {100 * max(tail):.2f} | {run['seconds']:.0f} |"
            )
        lines += ["", f"Difference: **{p['difference_points']:.2f} points**.", ""]
    if "train" in results:
        t = results["train"]
        lines += [
            "## Train mode: D_R gain per episode (points), paired seeds",
            "",
            f"Start D_R mIoU {100 * t['start_miou']:.2f}; median step {t['median_step_seconds']:.3f} s.",
            "",
            "| policy | mean | sd | per seed | minus random (mean +- se) |",
            "|---|---|---|---|---|",
        ]
        for policy, eps in t["episodes"].items():
            g = t["gain"][policy]
            diff = t.get("minus_random", {}).get(policy)
            per_seed = ", ".join(f"{e['gain_points']:+.2f}" for e in eps)
            lines.append(
                f"| {policy} | {g['mean']:+.2f} | {g['sd']:.2f} | {per_seed} | "
                + (f"{diff['mean']:+.2f} +- {diff['se']:.2f}" if diff else "")
                + " |"
            )
        if "reward_quality" in t:
            lines += [
                "",
                "Per-step reward: signal = mean (policy - random) at the same step and seed; noise = sd over seeds.",
                "",
                "| policy | signal | noise | signal / noise |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {p} | {q['signal']:+.3f} | {q['noise']:.3f} | {q['snr']:.2f} |"
                for p, q in t["reward_quality"].items()
            ]
        lines.append("")
    if "test" in results:
        t = results["test"]
        budgets = list(next(iter(t["episodes"].values()))[0]["test"])
        lines += [
            "## Test mode with final training: test mIoU (%) by labeled regions",
            "",
            f"Start network: {100 * t['start_test_miou']:.2f}. The same network trained on the whole pool "
            f"({t['supervised']['images']} images, {t['supervised']['steps']} steps): {100 * t['supervised']['test_miou']:.2f}. "
            f"Headroom **{t['headroom_points']:.2f} points**; the best policy recovers **{100 * t['best_recovered_fraction']:.0f}%** of it.",
            "",
            "| policy | " + " | ".join(str(b) for b in budgets) + " |",
            "|---|" + "---|" * len(budgets),
        ]
        for policy, eps in t["episodes"].items():
            cells = [mean_std([100 * e["test"][b] for e in eps]) for b in budgets]
            lines.append(f"| {policy} | " + " | ".join(f"{m:.2f} +- {s:.2f}" for m, s in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--sections", nargs="+", default=["pretrain", "train", "test"], choices=["pretrain", "train", "test"]
    )
    parser.add_argument("--policies", nargs="+", default=["random", "entropy"])
    parser.add_argument("--test-policies", nargs="+", default=None, help="default: --policies")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test-seeds", type=int, default=None, help="default: --seeds")
    parser.add_argument(
        "--budgets", type=int, nargs="+", default=None, help="test-mode eval budgets (default: the preset budget)"
    )
    parser.add_argument("--supervised-steps", type=int, default=1200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/al_dynamics")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env_kwargs = {"device": "cpu", **parse_env_settings(args.env_kwargs)}
    results: dict = {
        "command": "python benchmarks/al_dynamics.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "platform": f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores",
        "env": args.env,
        "env_kwargs": env_kwargs,
    }
    started = time.perf_counter()
    if "pretrain" in args.sections:
        results["pretrain"] = section_pretrain(args.env, env_kwargs)
    if "train" in args.sections:
        results["train"] = section_train(args.env, env_kwargs, args.policies, list(range(args.seeds)))
    if "test" in args.sections:
        results["test"] = section_test(
            args.env,
            env_kwargs,
            args.test_policies or args.policies,
            list(range(args.test_seeds or args.seeds)),
            args.budgets,
            args.supervised_steps,
        )
    results["seconds"] = time.perf_counter() - started
    report = markdown(results)
    atomic_write_json(results, f"{args.out}.json")
    atomic_write_text(report, f"{args.out}.md")
    print(report)
    return results


if __name__ == "__main__":
    main()
