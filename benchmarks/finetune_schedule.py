"""Does fine-tuning inside an episode move the reward-set mIoU, and does the region choice matter?

Runs the random and entropy baselines for a few episodes per fine-tuning setting and prints the mIoU
gain of each episode (final - starting D_R mIoU). Results go to --out (JSON + markdown, atomically).

    python benchmarks/finetune_schedule.py --settings '[{"finetune": "step", "lr": 1e-3}, {"finetune": "all", "lr": 1e-2}]'
    python benchmarks/finetune_schedule.py --env SegAL-CamVid-v0 --mode test --max-steps 16 --policies random --seeds 1 \
        --env-kwargs data_root=../shared/data/camvid scale=0.5 'region_size=[45,40]' --settings '[{"lr": 1e-3}, {"lr": 1e-4}]'

With --max-steps an episode stops early; the markdown also shows the D_R mIoU after every step.
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import torch

import segal_env  # noqa: F401
from agents import make_agent
from experiments.episodes import play_episode
from segal_env.config import parse_env_settings
from segal_env.storage import atomic_write_json, atomic_write_text


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="shared by every setting")
    parser.add_argument("--mode", default="train", choices=["train", "test"])
    parser.add_argument("--max-steps", type=int, default=None, help="stop episodes after this many steps")
    parser.add_argument("--settings", default='[{"finetune": "step", "lr": 1e-3}, {"finetune": "all", "lr": 1e-2}]')
    parser.add_argument("--policies", nargs="+", default=["random", "entropy"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/finetune_schedule")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    common = parse_env_settings(args.env_kwargs)
    for setting in json.loads(args.settings):
        env = gym.make(args.env, mode=args.mode, **common, **setting)
        for policy in args.policies:
            agent = make_agent(policy, env, seed=0)
            started = time.perf_counter()
            trajectories = [
                play_episode(agent, env, seed, args.max_steps).miou_trajectory for seed in range(args.seeds)
            ]
            rows.append(
                {
                    "setting": setting,
                    "policy": policy,
                    "start_miou": trajectories[0][0],
                    "gains": [t[-1] - t[0] for t in trajectories],
                    "trajectories": trajectories,
                    "seconds": time.perf_counter() - started,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"{args.env} mode={args.mode} {json.dumps(common)}",
        "",
        "| setting | policy | starting mIoU | mIoU gain per episode | D_R mIoU (%) after each step, first seed |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {json.dumps(r['setting'])} | {r['policy']} | {r['start_miou']:.4f} | "
        f"{', '.join(f'{g:+.4f}' for g in r['gains'])} | {' '.join(f'{100 * m:.1f}' for m in r['trajectories'][0])} |"
        for r in rows
    ]
    atomic_write_json(rows, f"{args.out}.json")
    atomic_write_text("\n".join(lines) + "\n", f"{args.out}.md")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
