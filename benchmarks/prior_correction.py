"""Does a trained BatchDQN with a prior still pick as its rule? Its learned correction against the prior, per pool.

A Q-network that starts from a rule (``policy_kwargs=dict(prior="margin")``) scores a candidate by
V + gate x A + prior_scale x prior. This script plays each saved model's own greedy episodes and reads, within
every pool (valid candidates only):

- ``corr``: the correlation of the learned correction (gate x A) with prior_scale x prior. Near -1: the
  correction cancels the prior, and the greedy pick no longer follows the rule;
- ``sd ratio``: the correction's spread over the prior's spread (above ~1, the correction decides the pick);
- ``rule's pick``: the share of pools where the greedy pick is the prior's own argmax.

    python benchmarks/prior_correction.py results/prior10-train-seed0/model.zip results/acting1-train-seed0/model.zip

Results go to ``<out>.json`` / ``<out>.md``, written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import segal_env  # noqa: F401  (registers the ids)
from agents.batch_dqn import BatchDQN
from experiments.episodes import play_episode
from segal_env.config import parse_key_values
from segal_env.storage import atomic_write_json, atomic_write_text


def correction_statistics(model: BatchDQN, env: gym.Env, seeds: list[int]) -> dict[str, float]:
    """Mean over the pools of the model's greedy episodes: corr(correction, prior), sd ratio, rule's pick."""
    net = model.q_net
    if not net.has_prior:
        raise ValueError("the model has no prior (train it with policy_kwargs=dict(prior=...))")
    rows: list[tuple[float, float, float]] = []

    def record(obs: dict, action: np.ndarray, *_: object) -> None:
        tensors, _ = model.policy.obs_to_tensor(obs)
        with torch.no_grad():
            _, correction = net.value_and_advantage(tensors)
        prior = net.prior_scale * net.prior(tensors)
        valid = tensors["action_mask"][0].bool()
        for pool in range(valid.shape[0]):
            c, p = correction[0, pool][valid[pool]].numpy(), prior[0, pool][valid[pool]].numpy()
            if c.size < 2 or p.std() == 0:
                continue
            corr = float(np.corrcoef(c, p)[0, 1]) if c.std() > 0 else 0.0
            rows.append(
                (corr, float(c.std() / p.std()), float(np.flatnonzero(valid[pool].numpy())[p.argmax()] == action[pool]))
            )

    model.policy.set_training_mode(False)
    for seed in seeds:
        play_episode(model, env, seed=seed, on_step=record)
    corr, ratio, rule = np.array(rows).mean(0)
    return {"pools": len(rows), "corr": float(corr), "sd_ratio": float(ratio), "rules_pick": float(rule)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="saved BatchDQN models (model.zip) trained with a prior")
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, default=2, help="greedy episodes per model (seeds 0..n-1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/prior_correction")
    args = parser.parse_args(argv)
    missing = [m for m in args.models if not Path(m).is_file()]
    if missing:
        parser.error(f"no such model file: {', '.join(missing)} (train one with train.py --out DIR: DIR/model.zip)")
    torch.set_num_threads(args.threads)
    env = gym.make(args.env, **parse_key_values(args.env_kwargs, "--env-kwargs"))
    results = {}
    for path in args.models:
        model = BatchDQN.load(path, device="cpu")
        stats = correction_statistics(model, env, list(range(args.seeds)))
        results[path] = {"prior_scale": model.q_net.prior_scale, "prior_in_loss": model.q_net.prior_in_loss, **stats}
        print(f"{path}: {results[path]}")
    lines = [
        f"# The learned correction against the prior ({args.env}, greedy episodes, seeds 0-{args.seeds - 1})",
        "",
        "| model | prior_scale | prior in the loss | pools | corr(correction, prior) | sd ratio | rule's pick |",
        "|---|---:|---|---:|---:|---:|---:|",
        *[
            f"| `{p}` | {r['prior_scale']:g} | {'yes' if r['prior_in_loss'] else 'no'} | {r['pools']} | "
            f"{r['corr']:+.2f} | {r['sd_ratio']:.2f} | {100 * r['rules_pick']:.0f}% |"
            for p, r in results.items()
        ],
    ]
    out = {"env": args.env, "env_kwargs": args.env_kwargs, "seeds": args.seeds, "models": results}
    atomic_write_json(out, f"{args.out}.json")
    atomic_write_text("\n".join(lines) + "\n", f"{args.out}.md")
    print("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
