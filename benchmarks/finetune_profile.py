"""Where does a fine-tuning update of the env's network spend its time? (docs/al_dynamics.md, speed)

Profiles ``updates`` optimizer steps of the env's own trainer (the preset's network, optimizer and batch
size, on whole pool images with their labels) with torch.profiler and prints the operators by share of
self CPU time, so a speed-up can aim at what costs. Results go to --out (JSON + markdown, atomically).

    python benchmarks/finetune_profile.py                    # synthetic preset, torch's default threads
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import gymnasium as gym
import torch
from torch.profiler import ProfilerActivity, profile

import segal_env  # noqa: F401  (registers the ids)
from segal_env.config import parse_env_settings
from segal_env.storage import atomic_write_json, atomic_write_text


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--updates", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/finetune_profile")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = gym.make(args.env, device="cpu", **parse_env_settings(args.env_kwargs))
    env.reset(seed=0)
    u = env.unwrapped
    trainer, batch = u.trainer, u.config.batch_size
    images, labels = u.data.pool_images[:batch], u.data.pool_labels[:batch].long()
    for _ in range(3):  # warm-up: allocator and kernel selection
        trainer.train_batch(images, labels)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for _ in range(args.updates):
            trainer.train_batch(images, labels)
        seconds = (time.perf_counter() - started) / args.updates
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [
        {
            "op": e.key,
            "share": e.self_cpu_time_total / total,
            "ms_per_update": e.self_cpu_time_total / 1e3 / args.updates,
        }
        for e in events[: args.top]
    ]
    result = {
        "command": "python benchmarks/finetune_profile.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "env": args.env,
        "model": u.config.model,
        "batch_size": batch,
        "image_size": list(images.shape[-2:]),
        "threads": torch.get_num_threads(),
        "updates": args.updates,
        "seconds_per_update_profiled": seconds,
        "ops": rows,
    }
    lines = [
        f"`{result['command']}`",
        "",
        f"{u.config.model}, batch {batch} of {images.shape[-2]}x{images.shape[-1]} images, {result['threads']} torch "
        f"thread(s): {1e3 * seconds:.1f} ms per update under the profiler",
        "",
        "| operator | share of self CPU time | ms per update |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['op']} | {100 * r['share']:.1f}% | {r['ms_per_update']:.1f} |" for r in rows]
    atomic_write_json(result, f"{args.out}.json")
    atomic_write_text("\n".join(lines) + "\n", f"{args.out}.md")
    print("\n".join(lines))
    print(json.dumps({"seconds_per_update": seconds}))
    return result


if __name__ == "__main__":
    main()
