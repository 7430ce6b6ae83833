"""Env step benchmark: median step time, its breakdown, warm-cache construction time, and the share
of a step spent outside model forward/backward passes (the overhead this code owns).

    python benchmarks/env_step.py                                   # synthetic default
    python benchmarks/env_step.py --camvid ../shared/data/camvid    # + CamVid at scale 0.5
    python benchmarks/env_step.py --camvid ../shared/data/camvid --camvid-scale 1.0 --device cuda
    python benchmarks/env_step.py --mode test ...                    # test mode (the benchmark protocol)
    python benchmarks/env_step.py --env-kwargs reward=final_gain --steps 10 --threads 1   # any env setting

Prints a table and writes it to --out (JSON + markdown, atomically). Policy: random valid picks.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
import torch

import segal_env  # noqa: F401  (registers the ids)
from segal_env.config import parse_env_settings
from segal_env.storage import atomic_write_json, atomic_write_text


@contextmanager
def model_timer(env):
    """Accumulate seconds spent in the network's forward passes, MC-dropout passes and backward passes."""
    model = env.unwrapped.trainer.model
    device = env.unwrapped.device
    spent = {"seconds": 0.0}

    def timed(fn):
        def wrapper(*args, **kwargs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                spent["seconds"] += time.perf_counter() - start

        return wrapper

    originals = (model.forward, model.mc_mutual_information, torch.Tensor.backward)
    model.forward = timed(originals[0])
    model.mc_mutual_information = timed(originals[1])
    torch.Tensor.backward = timed(originals[2])
    try:
        yield spent
    finally:
        del model.forward, model.mc_mutual_information
        torch.Tensor.backward = originals[2]


def bench(env_id: str, steps: int, seed: int, **kwargs) -> dict:
    start = time.perf_counter()
    gym.make(env_id, **kwargs).reset(seed=seed)  # warm the checkpoint cache (pre-trains on a cold cache)
    first_construction = time.perf_counter() - start
    start = time.perf_counter()
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    construction = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    timings, model_seconds = [], []
    with model_timer(env) as spent:
        while len(timings) < steps:
            action = np.array([rng.choice(np.flatnonzero(row)) for row in obs["action_mask"]])
            before = spent["seconds"]
            obs, _, terminated, _, info = env.step(action)
            timings.append(dict(env.unwrapped.last_timing))
            model_seconds.append(spent["seconds"] - before)
            if terminated:
                obs, _ = env.reset(seed=seed + len(timings))
    totals = [t["total"] for t in timings]
    median = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
    outside = [1.0 - m / t for m, t in zip(model_seconds, totals)]
    u = env.unwrapped
    return {
        "env_id": env_id,
        "kwargs": {k: v for k, v in kwargs.items() if k != "cache_dir"},
        "image_size": list(u.grid.image_size),
        "region_size": list(u.grid.region_size),
        "pools": [u.config.num_pools, u.config.pool_size],
        "reward_set_images": len(u.roles.d_r),
        "model": u.config.model,
        "steps": steps,
        "first_construction_s": first_construction,  # includes pre-training when the cache was cold
        "construction_warm_cache_s": construction,
        "median_step_s": statistics.median(totals),
        "median_breakdown_s": median,
        "median_outside_model_share": statistics.median(outside),
    }


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def markdown(rows: list[dict], header: str) -> str:
    lines = [
        header,
        "",
        "| env | image | regions | K x N | model | median step (s) | fine-tune | reward | features | other | outside model | construction, warm cache (s) | first construction (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r["median_breakdown_s"]
        lines.append(
            f"| {r['env_id']} {r['kwargs'].get('scale', '')} | {r['image_size'][0]}x{r['image_size'][1]} | "
            f"{r['region_size'][0]}x{r['region_size'][1]} | {r['pools'][0]}x{r['pools'][1]} | {r['model']} | "
            f"{r['median_step_s']:.3f} | {b['finetune']:.3f} | {b['reward']:.3f} | {b['features']:.3f} | "
            f"{b['other'] + b['test_eval']:.3f} | {100 * r['median_outside_model_share']:.1f}% | {r['construction_warm_cache_s']:.2f} | {r['first_construction_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", choices=("train", "test"), default="train", help="env mode of every row")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="env settings of every row")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--camvid", default=None, help="CamVid root: also benchmark SegAL-CamVid-v0")
    parser.add_argument("--camvid-scale", type=float, default=0.5)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default="benchmarks/results/env_step")
    args = parser.parse_args(argv)
    settings = parse_env_settings(args.env_kwargs)
    if args.threads:
        torch.set_num_threads(args.threads)
    common = {"device": args.device, "cache_dir": args.cache_dir, "mode": args.mode, **settings}
    rows = []
    if not args.skip_synthetic:
        rows.append(bench("SegAL-Synthetic-v0", args.steps, args.seed, **common))
    if args.camvid:
        scale = args.camvid_scale
        rows.append(
            bench(
                "SegAL-CamVid-v0",
                args.steps,
                args.seed,
                data_root=args.camvid,
                scale=scale,
                region_size=[int(90 * scale), int(80 * scale)],
                **common,
            )
        )
    header = (
        f"env step benchmark, {args.mode} mode{''.join(f', {k}={v}' for k, v in settings.items())}, device {device_name(args.device)}, torch threads {torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    text = markdown(rows, header)
    print(text)
    atomic_write_json({"header": header, "rows": rows}, f"{args.out}.json")
    atomic_write_text(text, f"{args.out}.md")
    return rows


if __name__ == "__main__":
    main()
