"""Does fine-tuning inside an episode move the reward-set mIoU, and does the region choice matter?

Runs the random and entropy baselines for a few episodes per fine-tuning setting and prints the mIoU
gain of each episode (final - starting D_R mIoU). Results go to --out (JSON + markdown, atomically).

    python benchmarks/finetune_schedule.py --settings '[{"finetune": "step", "lr": 1e-3}, {"finetune": "all", "lr": 1e-2}]'
"""
from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import torch

import segal_env  # noqa: F401
from agents import make_agent
from segal_env.storage import atomic_write_json, atomic_write_text


def episode_gain(env, agent, seed: int) -> tuple[float, float]:
    """(starting D_R mIoU, its gain over one greedy episode)."""
    obs, info = env.reset(seed=seed)
    start, done = info["miou"], False
    while not done:
        action, _ = agent.predict(obs, deterministic=True)
        obs, _, done, _, info = env.step(action)
    return start, info["miou"] - start


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--settings", default='[{"finetune": "step", "lr": 1e-3}, {"finetune": "all", "lr": 1e-2}]')
    parser.add_argument("--policies", nargs="+", default=["random", "entropy"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/finetune_schedule")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for setting in json.loads(args.settings):
        env = gym.make(args.env, **setting)
        for policy in args.policies:
            agent = make_agent(policy, env, seed=0)
            started = time.perf_counter()
            starts, gains = zip(*(episode_gain(env, agent, seed) for seed in range(args.seeds)))
            rows.append({"setting": setting, "policy": policy, "start_miou": starts[0],
                         "gains": list(gains), "seconds": time.perf_counter() - started})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| setting | policy | starting mIoU | mIoU gain per episode |", "|---|---|---|---|"]
    lines += [f"| {json.dumps(r['setting'])} | {r['policy']} | {r['start_miou']:.4f} | "
              f"{', '.join(f'{g:+.4f}' for g in r['gains'])} |" for r in rows]
    atomic_write_json(rows, f"{args.out}.json")
    atomic_write_text("\n".join(lines) + "\n", f"{args.out}.md")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
