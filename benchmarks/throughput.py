"""Training throughput: env steps per second of BatchDQN's learning loop, one env of T threads against
N envs in subprocesses (SubprocVecEnv) of one thread each, on the same cores.

Every configuration runs in a fresh Python process (torch's thread pool is fixed once used), builds its
envs (the start network comes from the cache, built beforehand), plays one warm-up step, then times
``model.learn(--steps)``: env steps, fine-tuning, features and the gradient updates together. With N envs
the agent makes N gradient steps per vector step, so every configuration does one update per env step
(the default's ratio). Run it on quiet cores: it is a timing.

    python benchmarks/throughput.py                         # 1x2, 1x1 and 2x1 on the synthetic train mode
    python benchmarks/throughput.py --configs 1x2 2x1 --steps 80 --out /tmp/throughput
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym


def parse_config(text: str) -> tuple[int, int]:
    """``"NxT"``: N envs of T torch threads each."""
    try:
        envs, threads = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a configuration is ENVSxTHREADS such as 2x1, got {text!r}") from None
    if envs < 1 or threads < 1:
        raise argparse.ArgumentTypeError(f"envs and threads must be >= 1, got {text!r}")
    return envs, threads


def _threaded_env(env_id: str, threads: int):
    def make() -> gym.Env:
        import torch

        import segal_env  # noqa: F401  (registers the ids in the worker)

        torch.set_num_threads(threads)
        return gym.make(env_id, mode="train")

    return make


def measure(env_id: str, envs: int, threads: int, steps: int, seed: int) -> dict:
    """One configuration, in this process: seconds of ``learn(steps)`` after a warm-up step."""
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from agents import BatchDQN

    torch.set_num_threads(threads)
    make = _threaded_env(env_id, threads)
    env = make() if envs == 1 else make_vec_env(make, n_envs=envs, seed=seed, vec_env_cls=SubprocVecEnv)
    model = BatchDQN("RegionQPolicy", env, seed=seed, device="cpu", gradient_steps=envs)
    model.learn(envs)  # warm-up: first resets, first fine-tuning, first update
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    env.close()
    return {"envs": envs, "threads": threads, "steps": steps, "seconds": seconds, "steps_per_second": steps / seconds}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--configs", type=parse_config, nargs="+", default=[(1, 2), (1, 1), (2, 1)])
    parser.add_argument("--steps", type=int, default=40, help="timed env steps per configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/throughput")
    parser.add_argument("--one", type=parse_config, help=argparse.SUPPRESS)  # internal: measure one, print JSON
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.one:
        print(json.dumps(measure(args.env, *args.one, args.steps, args.seed)))
        return []

    from segal_env.storage import atomic_write_json, atomic_write_text

    rows = []
    for envs, threads in args.configs:
        command = [sys.executable, __file__, "--env", args.env, "--steps", str(args.steps), "--seed", str(args.seed)]
        done = subprocess.run([*command, "--one", f"{envs}x{threads}"], check=True, capture_output=True, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{envs} env(s) x {threads} thread(s): {row['steps_per_second']:.3f} env steps/s ({row['seconds']:.1f} s)"
        )
    cpu = platform.processor() or platform.machine()
    header = f"{args.env}, train mode, BatchDQN defaults, {args.steps} timed env steps; {os.cpu_count()} cores ({cpu})"
    lines = [f"# Training throughput ({header})", "", "| envs x threads | env steps / s | seconds |", "|---|---:|---:|"]
    lines += [f"| {r['envs']} x {r['threads']} | {r['steps_per_second']:.3f} | {r['seconds']:.1f} |" for r in rows]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json({"env": args.env, "cpu_count": os.cpu_count(), "rows": rows}, out.with_suffix(".json"))
    atomic_write_text("\n".join(lines) + "\n", out.with_suffix(".md"))
    return rows


if __name__ == "__main__":
    main()
