"""What does the test mode's final training give with no acquired region at all? The floor under every policy.

A test score after the final training mixes two things: more training on the start set, and the acquired
regions. This script scores the start set alone (zero regions) the way the test mode scores a label set, so a
policy's gain from its labels is its score minus this floor. Quiet scoring (``final_start="start"``) only: the
paper's continues from an episode's network, which has no zero-region state.

- ``fixed``: the env's own fixed seed (``final_seed="fixed"``, what a quiet-scored benchmark uses);
- ``seeds``: ``--repeats`` other training seeds, for the floor's sd over the final training's luck.

    python benchmarks/final_training_floor.py --env SegAL-CamVid-v0 --env-kwargs data_root=../shared/data/camvid \\
        scale=0.5 'region_size=[45,40]' --out benchmarks/results/final_training_floor_camvid

Results (test and D_R mIoU, %) go to ``<out>.json`` / ``<out>.md``, written atomically.
"""

from __future__ import annotations

import argparse
import platform

import gymnasium as gym
import numpy as np
import torch

import segal_env  # noqa: F401  (registers the ids)
from segal_env.config import parse_key_values
from segal_env.storage import atomic_write_json, atomic_write_text


def floor_scores(env: gym.Env, seeds: list[int]) -> list[tuple[float, float]]:
    """(test, D_R) mIoU in % after the env's own final training, one per seed, on the start set alone."""
    u = env.unwrapped
    if u.labeled.count:
        raise ValueError(f"the env has {u.labeled.count} labeled regions; the floor is for a fresh reset()")
    if (u.config.final_start, u.config.final_seed) != ("start", "episode"):
        raise ValueError(
            f"final_start={u.config.final_start!r}, final_seed={u.config.final_seed!r}: the floor needs "
            "final_start='start' (a zero-region state) and final_seed='episode' (so that each seed counts)"
        )
    return [final_test_and_reward_set(env, seed) for seed in seeds]


def final_test_and_reward_set(env: gym.Env, seed: int) -> tuple[float, float]:
    """(test, D_R) mIoU in % of one final training (the env's settings, ``seed``) on the labels it holds now."""
    u = env.unwrapped
    sets = [(u.roles.test.images, u.roles.test.labels), (u._reward_images, u._reward_labels)]
    (test, _), (reward_set, _) = u._final_scores(sets, seed)
    return 100 * test, 100 * reward_set


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=5, help="other final-training seeds for the floor's sd")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/final_training_floor")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error(f"--repeats {args.repeats}: give 2 or more seeds so that the sd is defined")
    torch.set_num_threads(args.threads)
    kwargs = parse_key_values(args.env_kwargs, "--env-kwargs")
    if kwargs.get("final_start", "start") != "start":
        parser.error(f"final_start={kwargs['final_start']!r}: the floor is the quiet scoring's, from the start network")
    # the seeds are given here (the env's fixed seed, then --repeats others), so the env takes them as given
    kwargs = {**kwargs, "mode": "test", "final_training": True, "final_start": "start", "final_seed": "episode"}
    env = gym.make(args.env, **kwargs)
    env.reset(seed=0)
    u = env.unwrapped
    fixed = floor_scores(env, [u.config.checkpoint_seed])[0]
    others = np.array(floor_scores(env, list(range(1000, 1000 + args.repeats))))
    result = {
        "args": vars(args),
        "start": {"test": 100 * u._start["test_miou"], "reward_set": 100 * u._miou},
        "fixed_seed": {"test": fixed[0], "reward_set": fixed[1]},
        "other_seeds": {
            "test": others[:, 0].tolist(),
            "reward_set": others[:, 1].tolist(),
            "test_mean": float(others[:, 0].mean()),
            "test_sd": float(others[:, 0].std(ddof=1)),
        },
        "final_steps": u.config.final_steps,
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    report = "\n".join(
        [
            f"Final training on the start set alone, {args.env} {args.env_kwargs}, {u.config.final_steps} steps, "
            f"quiet scoring (from the start network), torch threads {args.threads}",
            "",
            "| | test mIoU (%) | D_R mIoU (%) |",
            "|---|---:|---:|",
            f"| start network (no final training) | {result['start']['test']:.2f} | {result['start']['reward_set']:.2f} |",
            f"| final training, the env's fixed seed | {fixed[0]:.2f} | {fixed[1]:.2f} |",
            f"| final training, {args.repeats} other seeds: mean +- sd | {others[:, 0].mean():.2f} +- "
            f"{others[:, 0].std(ddof=1):.2f} | {others[:, 1].mean():.2f} +- {others[:, 1].std(ddof=1):.2f} |",
            "",
        ]
    )
    atomic_write_json(result, f"{args.out}.json")
    atomic_write_text(report, f"{args.out}.md")
    print(report)
    env.close()
    return result


if __name__ == "__main__":
    main()
