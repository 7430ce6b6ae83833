"""Does the learned policy beat the heuristics? The end-to-end check of BatchDQN's learning signal.

For every training seed: train BatchDQN on the env's train mode (pool D_T) for --timesteps env steps,
then run its greedy policy on held-out train-mode episodes (episode seeds --eval-seed + i, never seen
in training) beside the baselines on the very same episodes (paired). The score of an episode is its
reward-set gain (final - start D_R mIoU, in points = the episode's return). Per training seed: the
agent's mean gain and its paired difference to each baseline (mean +- SE over episodes); over seeds:
the mean of those and the SE over training seeds. Also how often the agent's pick is entropy's.

The Q-network learns from scratch here, unlike train.py's BatchDQN, which starts from margin_balance's ranking: this
table measures what the network learns from the reward itself. Add --algo-kwargs 'policy_kwargs={"prior":"margin_balance"}'
for train.py's starting point.

    python benchmarks/dqn_learning.py                                   # seeds 0 1 2, 300 steps each
    python benchmarks/dqn_learning.py --seeds 0 1 2 --algo-kwargs gamma=0.999 --out /tmp/gamma999
    python benchmarks/dqn_learning.py --train-env-kwargs reward=gain_over_random --out /tmp/crn  # train on another reward
    python benchmarks/dqn_learning.py --algo MaskablePPO --out /tmp/ppo   # another learner, same held-out episodes

--env-kwargs apply to training and to the held-out episodes; --train-env-kwargs to training only, so a
training-time option (a reward) is scored on the same held-out episodes as the defaults.

Each training seed's result is written as it finishes (``<out>/seed<k>.json``) and reused by a rerun
with the same settings, so an interrupted run resumes. The table goes to ``<out>.md`` / ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.env_util import make_vec_env

import segal_env  # noqa: F401  (registers the ids)
from agents import ALGORITHMS, BatchDQN, make_agent
from agents.loading import MaskedPredictor
from experiments.benchmark.statistics import mean_se, mean_std, paired_difference
from experiments.episodes import play_episode
from experiments.training import policy_and_kwargs
from segal_env.config import parse_env_settings, parse_key_values
from segal_env.storage import atomic_write_json, atomic_write_text


def episode_gains(agent, env: gym.Env, seeds: list[int], reference=None) -> tuple[list[float], float]:
    """Greedy episodes: the D_R gain of each (points) and the share of picks equal to ``reference``'s."""
    agreement = []

    def compare_pick(obs, action, reward, info) -> None:
        agreement.append(action == reference.predict(obs, deterministic=True)[0])

    episodes = [
        play_episode(agent, env, seed, on_step=compare_pick if reference is not None else None) for seed in seeds
    ]
    return [e.gain_points for e in episodes], (float(np.mean(agreement)) if agreement else float("nan"))


def resolved_algorithm(env: gym.Env, algo_kwargs: dict) -> dict:
    """The agent's effective hyperparameters (defaults included), so that a stored seed is reused only
    for the same agent even after a default changes."""
    model = BatchDQN("RegionQPolicy", env, device="cpu", **algo_kwargs)
    net = {k: v for k, v in model.policy.net_args.items() if k != "observation_space"}
    keys = ("gamma", "buffer_size", "learning_rate", "batch_size", "gradient_steps", "target_update_interval")
    return {**{k: getattr(model, k) for k in keys}, **net, "optimizer": model.policy.optimizer_class.__name__}


def train_seed(env_id: str, env_kwargs: dict, algo: str, algo_kwargs: dict, seed: int, timesteps: int, n_envs: int = 1):
    """``algo`` trained for ``timesteps`` env steps (summed over ``n_envs`` envs) on the train mode of ``env_id``,
    with train.py's policy and defaults but no starting rule (``--algo-kwargs`` may give one); returned with SB3's
    ``predict`` (MaskablePPO reads the obs' masks)."""

    def make() -> gym.Env:
        return gym.make(env_id, mode="train", **env_kwargs)

    env = make() if n_envs == 1 else make_vec_env(make, n_envs=n_envs, seed=seed)
    steps = env.get_attr("config")[0].steps_per_episode if n_envs > 1 else env.unwrapped.config.steps_per_episode
    policy, kwargs = policy_and_kwargs(algo, algo_kwargs, False, steps)
    model = ALGORITHMS[algo](policy, env, seed=seed, device="cpu", **kwargs).learn(timesteps)
    return MaskedPredictor(model) if isinstance(model, MaskablePPO) else model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--train-env-kwargs",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="env keyword arguments for training only (on top of --env-kwargs)",
    )
    parser.add_argument(
        "--algo",
        default="BatchDQN",
        choices=["BatchDQN", "MaskablePPO"],
        help="the learner (MaskablePPO: train.py's defaults, the permutation-aware set extractor)",
    )
    parser.add_argument(
        "--algo-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="the algorithm's keyword arguments"
    )
    parser.add_argument(
        "--n-envs", type=int, default=1, help="envs stepped together (SB3 VecEnv); timesteps count all of them"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--timesteps", type=int, default=300)
    parser.add_argument("--eval-episodes", type=int, default=6)
    parser.add_argument("--eval-seed", type=int, default=100)
    parser.add_argument("--baselines", nargs="+", default=["random", "entropy"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/dqn_learning")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env_kwargs = parse_env_settings(args.env_kwargs)
    train_env_kwargs = {**env_kwargs, **parse_env_settings(args.train_env_kwargs, "--train-env-kwargs")}
    algo_kwargs = parse_key_values(args.algo_kwargs, "--algo-kwargs")
    episode_seeds = [args.eval_seed + i for i in range(args.eval_episodes)]
    eval_env = gym.make(args.env, mode="train", **env_kwargs)
    settings = {
        "env": args.env,
        "env_kwargs": env_kwargs,
        "algo_kwargs": algo_kwargs,
        "timesteps": args.timesteps,
        "episode_seeds": episode_seeds,
        "threads": args.threads,
    }
    if args.algo == "BatchDQN":
        settings["resolved_algorithm"] = resolved_algorithm(eval_env, algo_kwargs)
    # only when not the default, so the stored seeds of earlier runs stay reusable
    if train_env_kwargs != env_kwargs:
        settings["train_env_kwargs"] = train_env_kwargs
    if args.algo != "BatchDQN":
        settings["algo"] = args.algo
    if args.n_envs != 1:
        settings["n_envs"] = args.n_envs
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    entropy = make_agent("entropy", eval_env, seed=0)
    baselines = {}
    for name in args.baselines:
        started = time.perf_counter()
        gains, _ = episode_gains(make_agent(name, eval_env, seed=0), eval_env, episode_seeds)
        baselines[name] = gains
        print(f"{name}: held-out D_R gain {np.mean(gains):+.2f} ({time.perf_counter() - started:.0f} s)", flush=True)

    per_seed = []
    for seed in args.seeds:
        path = out / f"seed{seed}.json"
        if path.exists() and json.loads(path.read_text())["settings"] == settings:
            per_seed.append(json.loads(path.read_text()))
            print(f"seed {seed}: reused {path}", flush=True)
            continue
        started = time.perf_counter()
        model = train_seed(args.env, train_env_kwargs, args.algo, algo_kwargs, seed, args.timesteps, args.n_envs)
        train_seconds = time.perf_counter() - started
        gains, agreement = episode_gains(model, eval_env, episode_seeds, reference=entropy)
        record = {
            "settings": settings,
            "seed": seed,
            "train_seconds": train_seconds,
            "agent_gains": gains,
            "picks_equal_to_entropy": agreement,
            "minus": {name: paired_difference(gains, base) for name, base in baselines.items()},
        }
        atomic_write_json(record, path)
        per_seed.append(record)
        print(
            f"seed {seed}: agent {np.mean(gains):+.2f}, "
            + ", ".join(f"- {n} {d['mean']:+.2f} +- {d['se']:.2f} SE" for n, d in record["minus"].items())
            + f", picks = entropy's {100 * agreement:.0f}%, trained in {train_seconds:.0f} s",
            flush=True,
        )

    agent_means = [float(np.mean(r["agent_gains"])) for r in per_seed]
    summary = {
        "settings": settings,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "baselines": {n: dict(zip(("mean", "sd"), mean_std(g))) | {"gains": g} for n, g in baselines.items()},
        "agent": dict(zip(("mean", "sd"), mean_std(agent_means))),
        "minus_over_seeds": {n: mean_se([r["minus"][n]["mean"] for r in per_seed]) for n in baselines},
        "per_seed": per_seed,
    }
    lines = [
        f"{args.algo} on {args.env} train mode, {args.timesteps} training steps"
        + (f" ({args.n_envs} envs)" if args.n_envs != 1 else "")
        + f", algo kwargs {json.dumps(algo_kwargs)}, "
        f"env kwargs {json.dumps(env_kwargs)}"
        + (f", training env kwargs {json.dumps(train_env_kwargs)}" if train_env_kwargs != env_kwargs else "")
        + f"; held-out episodes {episode_seeds} (paired); D_R gain per episode in points",
        "",
        "| training seed | agent | "
        + " | ".join(f"agent - {n} (SE)" for n in baselines)
        + " | picks = entropy's | train (s) |",
        "|---|---:|" + "---:|" * len(baselines) + "---:|---:|",
    ]
    for r in per_seed:
        cells = " | ".join(f"{r['minus'][n]['mean']:+.2f} ({r['minus'][n]['se']:.2f})" for n in baselines)
        lines.append(
            f"| {r['seed']} | {np.mean(r['agent_gains']):+.2f} | {cells} | "
            f"{100 * r['picks_equal_to_entropy']:.0f}% | {r['train_seconds']:.0f} |"
        )
    over = summary["minus_over_seeds"]
    lines.append(
        f"| mean over seeds (SE over seeds) | {summary['agent']['mean']:+.2f} | "
        + " | ".join(f"{over[n]['mean']:+.2f} ({over[n]['se']:.2f})" for n in baselines)
        + " | | |"
    )
    lines += [
        "",
        "Baselines on the same episodes: "
        + ", ".join(f"{n} {v['mean']:+.2f} +- {v['sd']:.2f} (sd)" for n, v in summary["baselines"].items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_json(summary, f"{args.out}.json")
    atomic_write_text(text, f"{args.out}.md")
    return summary


if __name__ == "__main__":
    main()
