"""How much of a policy's score is the labels, and how much the luck of training? The figures behind docs/noise_floor.md.

Three sections (run one with --sections, or all), each for several ways of scoring a labeled set in test
mode (``--variants``: the env's ``final_*`` settings, segal_env.finetuning.FinalTraining):

- ``eval``: the evaluation's own noise. One acquired set (``--policy``'s, episode seed 0) is scored with
  ``--repeats`` training seeds: "final": only the final training's seed changes (the episode's network is
  kept); "path+final": the whole episode's fine-tuning is replayed with other seeds on the same
  acquisitions, then scored (what a rerun of the same labels on another machine changes). sd of each.
- ``policies``: test-mode episodes of entropy and margin on seeds 0..S-1 (paired), every variant scoring the
  same final labeled set of each episode: sd over seeds of each policy, and of the paired difference
  margin - entropy, with the seeds that difference would need for 2 SE.
- ``reward``: the train-mode per-step reward. Across seeds: signal = mean (margin - random) at the same
  step and seed, noise = sd over seeds of random's reward (docs/al_dynamics.md's definition), for each
  reward in ``--rewards``. Within a state: from states along margin's episodes, margin's and a random
  pick are each fine-tuned with ``--repeats`` seeds: signal = mean gain difference, noise = sd of one
  pick's gain over fine-tuning seeds (the noise a learner's regression target carries).
- ``final_reward`` (not in the default run): the same within-state measure for a reward read from the quiet
  final training on the labels plus the pick (D_R mIoU), its noise over ``--repeats`` fixed seeds.

    python benchmarks/noise_floor.py --threads 1 --out benchmarks/results/noise_floor

Results go to --out (JSON + markdown, written atomically) after every section.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import gymnasium as gym
import numpy as np
import torch

import segal_env  # noqa: F401  (registers the ids)
from agents import make_agent
from experiments.benchmark.statistics import mean_std, paired_difference
from experiments.episodes import play_episode
from segal_env.config import parse_env_settings
from segal_env.env import StepDraws
from segal_env.finetuning import FinalTraining, final_scores
from segal_env.pools import chosen_regions
from segal_env.storage import atomic_write_json, atomic_write_text

# name -> final_* settings; "paper" is the env's scoring before this study (continue, final weights, 1 run)
VARIANTS = {
    "paper": dict(start="current", average=0.0, repeats=1, seed="episode"),
    "swa": dict(start="current", average=0.5, repeats=1, seed="episode"),
    "start": dict(start="start", average=0.0, repeats=1, seed="episode"),
    "start+swa": dict(start="start", average=0.5, repeats=1, seed="episode"),
    "start+fixed": dict(start="start", average=0.0, repeats=1, seed="fixed"),
    "start+fixed x3": dict(start="start", average=0.0, repeats=3, seed="fixed"),
    "start+swa+fixed": dict(start="start", average=0.5, repeats=1, seed="fixed"),
    "start+swa+fixed x3": dict(start="start", average=0.5, repeats=3, seed="fixed"),
    "swa+fixed": dict(start="current", average=0.5, repeats=1, seed="fixed"),
    "swa+fixed x3": dict(start="current", average=0.5, repeats=3, seed="fixed"),
}


def spec_of(env, name: str) -> FinalTraining:
    return FinalTraining(env.config.final_steps, **VARIANTS[name])


def score(env, name: str, episode_seed: int, fixed_seed: int | None = None) -> float:
    """Test mIoU (points) of the env's current labeled set under variant ``name``; a fixed-seed variant uses
    ``fixed_seed`` (default: the env's own, ``checkpoint_seed``)."""
    spec = spec_of(env, name)
    fixed = env.config.checkpoint_seed if fixed_seed is None else fixed_seed
    return final_miou(env, spec, (env.roles.test.images, env.roles.test.labels), spec.seeds(episode_seed, fixed))


def final_miou(env, spec: FinalTraining, eval_set: tuple[torch.Tensor, torch.Tensor], seeds: list[int]) -> float:
    """mIoU (points) on ``eval_set`` after the final training ``spec`` on the env's labels so far."""
    [(miou, _)] = final_scores(
        env.trainer,
        env.data.everything(),
        [eval_set],
        env._optim(),
        spec,
        env.crop_size,
        seeds,
        env._start_state,
        start_samples=int(env.data.start_images.shape[0]),
    )
    return 100 * miou


def acquisitions(env_id: str, kwargs: dict, policy: str, seed: int) -> tuple[gym.Env, list[torch.Tensor]]:
    """Play ``policy`` in test mode (no test evaluation) and return the env and the regions of every step."""
    env = gym.make(env_id, **{**kwargs, "mode": "test", "final_training": False})
    chosen: list[torch.Tensor] = []
    play_episode(
        make_agent(policy, env, seed=0), env, seed, on_step=lambda *_: chosen.append(env.unwrapped.last_chosen.clone())
    )
    return env, chosen


def replay(env, chosen: list[torch.Tensor], seed: int) -> None:
    """The same acquisitions, in the same order, fine-tuned with the random numbers of ``seed``."""
    env.trainer.load_state_dict(env._start_state)
    env.labeled.clear()
    rng = np.random.default_rng(seed)
    for regions in chosen:
        earlier = env.labeled.labeled_ids()
        step_seed = int(rng.integers(2**31 - 1))
        pick = env.data.replay_pick(env.config.finetune, rng, earlier.numel(), regions.numel())
        env._label_and_finetune(regions.to(env.device), StepDraws(step_seed, earlier, pick))


def section_eval(env_id: str, kwargs: dict, policy: str, variants: list[str], repeats: int) -> dict:
    wrapped, chosen = acquisitions(env_id, kwargs, policy, 0)
    env = wrapped.unwrapped
    end_state = env.trainer.snapshot()
    out: dict = {"policy": policy, "regions": int(env.labeled.count), "variants": {}}
    for name in variants:
        scores = [one_score(env, name, r) for r in range(repeats)]
        out["variants"][name] = {"final": scores, "sd_final": mean_std(scores)[1]}
        print(f"eval noise, {name}, final only: {np.mean(scores):.2f} sd {mean_std(scores)[1]:.2f}", flush=True)
    # a variant that starts from the start network never sees the episode's path: its path+final is its final
    path_dependent = [name for name in variants if VARIANTS[name]["start"] == "current"]
    path_scores: dict[str, list[float]] = {name: [] for name in path_dependent}
    for r in range(repeats):
        replay(env, chosen, 20_000 + r)
        for name in path_dependent:
            path_scores[name].append(one_score(env, name, r))
    for name in variants:
        row = out["variants"][name]
        row["path+final"] = path_scores.get(name, row["final"])
        row["sd_path_final"] = mean_std(row["path+final"])[1]
        print(
            f"eval noise, {name}, path+final: {np.mean(row['path+final']):.2f} sd {row['sd_path_final']:.2f}",
            flush=True,
        )
    env.trainer.load_state_dict(end_state)
    return out


def one_score(env, name: str, r: int) -> float:
    """Variant ``name`` scored with its ``r``-th training seed; a fixed-seed variant with its ``r``-th fixed seed
    (what another machine's or version's fixed seed would give)."""
    if VARIANTS[name]["seed"] == "fixed":
        return score(env, name, 0, env.config.checkpoint_seed + 1000 * r)
    return score(env, name, 10_000 + r)


def section_policies(env_id: str, kwargs: dict, variants: list[str], seeds: list[int]) -> dict:
    scores: dict[str, dict[str, list[float]]] = {}
    for policy in ("entropy", "margin"):
        scores[policy] = {name: [] for name in variants}
        for seed in seeds:
            wrapped, _ = acquisitions(env_id, kwargs, policy, seed)
            env = wrapped.unwrapped
            episode_seed = int(np.random.default_rng(seed).integers(2**31 - 1))
            for name in variants:
                scores[policy][name].append(score(env, name, episode_seed))
            print(
                f"policies, {policy} seed {seed}: " + ", ".join(f"{n} {scores[policy][n][-1]:.2f}" for n in variants),
                flush=True,
            )
    rows = {}
    for name in variants:
        diff = paired_difference(scores["margin"][name], scores["entropy"][name])
        rows[name] = {
            "entropy": dict(zip(("mean", "sd"), mean_std(scores["entropy"][name]))),
            "margin": dict(zip(("mean", "sd"), mean_std(scores["margin"][name]))),
            "margin_minus_entropy": diff,
        }
    return {"seeds": seeds, "scores": scores, "rows": rows}


def section_reward(env_id: str, kwargs: dict, rewards: list[str], seeds: list[int], repeats: int) -> dict:
    across = {}
    for reward in rewards:
        env = gym.make(env_id, **{**kwargs, "mode": "train", "reward": reward})
        per_policy = {
            p: np.array([play_episode(make_agent(p, env, seed=0), env, s).rewards for s in seeds])
            for p in ("random", "margin")
        }
        noise = float(np.mean(per_policy["random"].std(0, ddof=1)))
        signal = float((per_policy["margin"] - per_policy["random"]).mean())
        across[reward] = {
            "signal": signal,
            "noise": noise,
            "snr": signal / noise if noise > 0 else float("nan"),
            "rewards": {p: r.tolist() for p, r in per_policy.items()},
        }
        print(f"reward {reward}: signal {signal:+.3f} noise {noise:.3f} snr {signal / noise:.2f}", flush=True)
    # within a state: the same pick fine-tuned with several seeds
    env = gym.make(env_id, **{**kwargs, "mode": "train"})
    u, rng = env.unwrapped, np.random.default_rng(0)
    differences, spreads = [], []
    for action, random_action in states_along_margin(env, seeds[:3], rng):
        earlier = u.labeled.labeled_ids()
        gains: dict[str, list[float]] = {"margin": [], "random": []}
        for r in range(repeats):
            pick = u.data.replay_pick(u.config.finetune, np.random.default_rng(r), earlier.numel(), u.config.num_pools)
            draws = StepDraws(int(rng.integers(2**31 - 1)), earlier, pick)
            for name, act in (("margin", action), ("random", random_action)):
                chosen = chosen_regions(u.pools, act).to(u.device)
                gains[name].append(100 * (u._try(chosen, draws) - u._miou))
        differences.append(np.mean(gains["margin"]) - np.mean(gains["random"]))
        spreads.append(np.mean([np.std(g, ddof=1) for g in gains.values()]))
    signal, noise = float(np.mean(differences)), float(np.mean(spreads))
    within = {"signal": signal, "noise": noise, "snr": signal / noise, "states": len(differences), "repeats": repeats}
    print(f"reward within a state: signal {signal:+.3f} noise {noise:.3f} snr {signal / noise:.2f}", flush=True)
    return {"across_seeds": across, "within_state": within}


def states_along_margin(env: gym.Env, seeds: list[int], rng: np.random.Generator):
    """Every third state of margin's train-mode episodes on ``seeds``: yields (margin's action, a random valid
    action) with the env in that state; margin's action is played once the caller is done with the state."""
    margin = make_agent("margin", env)
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        for step in range(env.unwrapped.config.steps_per_episode):
            action = margin.predict(obs)[0]
            if step % 3 == 0:
                yield action, np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])
            obs, _, done, _, _ = env.step(action)
            if done:
                break


def section_final_reward(env_id: str, kwargs: dict, seeds: list[int], repeats: int) -> dict:
    """The within-state measure of ``reward`` for a reward read from a final training instead of the step's
    fine-tuning: each pick is labeled, the reward set is scored after the quiet final training (the synthetic
    preset's: ``final_steps`` from the start network, one fixed seed) and the pick is forgotten. With one fixed seed
    that score is a function of the labels, so a learner would see the same reward for the same pick; its noise is
    how far the score moves when only the fixed seed changes (``repeats`` seeds), the chaos a different pick also
    carries. A reward built from it costs one final training per env step."""
    env = gym.make(env_id, **{**kwargs, "mode": "train"})
    u, rng = env.unwrapped, np.random.default_rng(0)
    spec = dataclasses.replace(spec_of(u, "start+fixed"), start_share=u.config.final_start_share)
    differences, spreads = [], []
    for action, random_action in states_along_margin(env, seeds[:3], rng):
        scores: dict[str, list[float]] = {"margin": [], "random": []}
        for name, act in (("margin", action), ("random", random_action)):
            chosen = chosen_regions(u.pools, act).to(u.device)
            u.labeled.mark(chosen)
            for r in range(repeats):
                fixed = spec.seeds(0, u.config.checkpoint_seed + 1000 * r)
                scores[name].append(final_miou(u, spec, (u._reward_images, u._reward_labels), fixed))
            u.labeled.unmark(chosen)
        differences.append(np.mean(scores["margin"]) - np.mean(scores["random"]))
        spreads.append(np.mean([np.std(v, ddof=1) for v in scores.values()]))
        print(f"final reward, state {len(differences)}: margin - random {differences[-1]:+.3f}", flush=True)
    signal, noise = float(np.mean(differences)), float(np.mean(spreads))
    print(f"final-training reward within a state: signal {signal:+.3f} noise {noise:.3f}", flush=True)
    return {
        "signal": signal,
        "noise": noise,
        "snr": signal / noise,
        "states": len(differences),
        "repeats": repeats,
        "differences": [float(d) for d in differences],
        "sd_of_differences": mean_std(differences)[1],
    }


# ---- report --------------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    lines = [f"`{results['command']}`", "", results["platform"], ""]
    if "eval" in results:
        e = results["eval"]
        lines += [
            f"## Evaluation noise: {e['policy']}'s {e['regions']} regions (seed 0) scored with {len(next(iter(e['variants'].values()))['final'])} seeds",
            "",
            "| scoring | final only: mean | sd | path+final: mean | sd |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, row in e["variants"].items():
            lines.append(
                f"| {name} | {np.mean(row['final']):.2f} | {row['sd_final']:.2f} | "
                f"{np.mean(row['path+final']):.2f} | {row['sd_path_final']:.2f} |"
            )
        lines.append("")
    if "policies" in results:
        p = results["policies"]
        lines += [
            f"## Policies: test mIoU at the final budget, seeds {p['seeds']}",
            "",
            "| scoring | entropy | margin | margin - entropy | sd of the difference | seeds for 2 SE |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in p["rows"].items():
            d = row["margin_minus_entropy"]
            lines.append(
                f"| {name} | {row['entropy']['mean']:.2f} ± {row['entropy']['sd']:.2f} | "
                f"{row['margin']['mean']:.2f} ± {row['margin']['sd']:.2f} | {d['mean']:+.2f} (SE {d['se']:.2f}) | "
                f"{d['sd']:.2f} | {d['seeds_for_2se'] or '-'} |"
            )
        lines.append("")
    if "reward" in results:
        r = results["reward"]
        lines += [
            "## Train-mode reward per step: margin vs random",
            "",
            "| measure | signal | noise | signal / noise |",
            "|---|---:|---:|---:|",
        ]
        for reward, q in r["across_seeds"].items():
            lines.append(f"| across seeds, reward={reward} | {q['signal']:+.3f} | {q['noise']:.3f} | {q['snr']:.2f} |")
        w = r["within_state"]
        lines.append(
            f"| within a state ({w['states']} states x {w['repeats']} fine-tuning seeds) | {w['signal']:+.3f} | "
            f"{w['noise']:.3f} | {w['snr']:.2f} |"
        )
        lines.append("")
    if "final_reward" in results:
        f = results["final_reward"]
        lines += [
            "## A reward read from the quiet final training, within a state: margin vs random",
            "",
            "| measure | signal | noise | signal / noise | sd of the difference over states |",
            "|---|---:|---:|---:|---:|",
            f"| final training on the labels + the pick, D_R mIoU ({f['states']} states x {f['repeats']} fixed seeds) | "
            f"{f['signal']:+.3f} | {f['noise']:.3f} | {f['snr']:.2f} | {f['sd_of_differences']:.3f} |",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["eval", "policies", "reward"],
        choices=["eval", "policies", "reward", "final_reward"],
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=["paper", "start", "start+fixed"],
        help="scorings of the policies section",
    )
    parser.add_argument(
        "--eval-variants",
        nargs="+",
        choices=list(VARIANTS),
        default=["paper", "swa", "start", "start+swa", "swa+fixed x3", "start+swa+fixed x3"],
        help="scorings of the eval section (a fixed-seed variant's noise is its unfixed twin's)",
    )
    parser.add_argument("--policy", default="entropy", help="whose acquired set the eval section scores")
    parser.add_argument("--rewards", nargs="+", default=["gain", "gain_over_random"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--repeats", type=int, default=5, help="training seeds per scored set (eval, reward within a state)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/noise_floor")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    kwargs = {"device": "cpu", **parse_env_settings(args.env_kwargs)}
    results: dict = {
        "command": "python benchmarks/noise_floor.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "platform": f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores",
        "env": args.env,
        "env_kwargs": kwargs,
    }
    started = time.perf_counter()
    seeds = list(range(args.seeds))
    for section in args.sections:
        if section == "eval":
            results["eval"] = section_eval(args.env, kwargs, args.policy, args.eval_variants, args.repeats)
        elif section == "policies":
            results["policies"] = section_policies(args.env, kwargs, args.variants, seeds)
        elif section == "reward":
            results["reward"] = section_reward(args.env, kwargs, args.rewards, seeds, args.repeats)
        else:
            results["final_reward"] = section_final_reward(args.env, kwargs, seeds, args.repeats)
        results["seconds"] = time.perf_counter() - started
        atomic_write_json(results, f"{args.out}.json")
        atomic_write_text(markdown(results), f"{args.out}.md")
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
