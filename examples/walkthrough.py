"""segal in one page: make the env, train the batch-mode DQN, compare it with two heuristics, plot.

    python examples/walkthrough.py                 # the synthetic defaults: about 10 minutes on 2 CPU cores
    python examples/walkthrough.py --timesteps 40  # a first look in a few minutes

Read it top to bottom; each step is a few lines of the public API. What it writes to --out (default
runs/walkthrough): the trained agent (dqn.zip), a rendered frame of the env (frame.png) and the
reward-set mIoU of every policy against the number of labelled regions (miou_vs_regions.png).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import segal_env  # noqa: F401  (registers SegAL-Synthetic-v0 and the other ids)
from agents import BatchDQN, make_agent
from experiments.episodes import play_episode
from segal_env.config import parse_env_settings


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=300, help="training env steps (default 300 = 30 episodes)")
    parser.add_argument("--episodes", type=int, default=3, help="test episodes per policy (default 3)")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="env settings, as in train.py")
    parser.add_argument("--out", type=Path, default=Path("runs/walkthrough"))
    args = parser.parse_args(argv)
    settings = parse_env_settings(args.env_kwargs)
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. The environment. Train mode draws its pools from D_T; the first reset pre-trains the starting
    #    segmentation network (cached afterwards). An observation is a set of region features per pool.
    env = gym.make("SegAL-Synthetic-v0", mode="train", **settings)
    obs, info = env.reset(seed=0)
    config = env.unwrapped.config
    print(
        f"{config.num_pools} pools of {config.pool_size} candidates, {config.steps_per_episode} steps per episode; "
        f"candidates {obs['candidates'].shape}, start reward-set mIoU {100 * info['miou']:.1f}%"
    )

    # 2. Train BatchDQN (Casanova et al.'s agent) on it, then save it like any SB3 model.
    model = BatchDQN("RegionQPolicy", env, seed=0).learn(total_timesteps=args.timesteps)
    model.save(args.out / "dqn")

    # 3. Compare policies in test mode (pools from D_V): every policy plays the same episode seeds, so
    #    the differences are paired. make_agent loads baselines by name and saved agents by path.
    test_env = gym.make("SegAL-Synthetic-v0", mode="test", render_mode="rgb_array", **settings)
    seeds = list(range(1000, 1000 + args.episodes))
    curves: dict[str, list[float]] = {}
    for name in ("random", "entropy", str(args.out / "dqn.zip")):
        episodes = [play_episode(make_agent(name, test_env, seed=0), test_env, seed) for seed in seeds]
        label = "BatchDQN" if name.endswith(".zip") else name
        curves[label] = np.mean([e.miou_trajectory for e in episodes], axis=0).tolist()
        test = [e.final_info["test_miou"] for e in episodes]
        print(
            f"{label:>8}: reward-set gain {np.mean([e.gain_points for e in episodes]):+.2f} points, "
            f"test mIoU {100 * np.mean(test):.2f}% (mean of {len(seeds)} episodes)"
        )

    # 4. Pictures: what the env shows after the last step, and the mIoU curves.
    import matplotlib
    from PIL import Image

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Image.fromarray(test_env.render()).save(args.out / "frame.png")
    regions = np.arange(len(next(iter(curves.values())))) * test_env.unwrapped.config.num_pools
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, curve in curves.items():
        ax.plot(regions, 100 * np.asarray(curve), marker="o", label=label)
    ax.set_xlabel("labelled regions")
    ax.set_ylabel("reward-set mIoU (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "miou_vs_regions.png", dpi=100)
    plt.close(fig)
    print(
        f"wrote {args.out}/dqn.zip, frame.png, miou_vs_regions.png; "
        "for a full benchmark with seeds, budgets and tables: python evaluate.py --policies random entropy "
        f"{args.out / 'dqn.zip'}"
    )
    return curves


if __name__ == "__main__":
    main()
