"""``python train.py``: build the envs and the algorithm from a ``RunConfig``, train, save, compare."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from agents import ALGORITHMS
from agents.batch_dqn.batch_dqn import prior_from_feature
from experiments.checkpoints import checkpoint_dir, newest_checkpoint, save_model
from experiments.folder_lock import FolderBusy, FolderLock
from experiments.provenance import provenance
from experiments.training.algorithm import create_model, default_prior, load_checkpoint, policy_and_kwargs, train
from experiments.training.comparison import check_baselines, compare, comparison_table
from experiments.training.config import RunConfig, build_parser, resolve_config
from experiments.training.envs import (
    comparison_env_kwargs,
    env_summary,
    eval_env_kwargs,
    make_env,
    monitored,
    training_envs,
)
from segal_env.runtime import torch_threads
from segal_env.storage import atomic_write_json, atomic_write_text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run train.py; returns the comparison dict (``{}`` with --no-compare or --eval-episodes 0)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = resolve_config(args, sys.argv[1:] if argv is None else argv)
    except ValueError as error:
        parser.error(str(error))
    lock = FolderLock(config.out, "train.py")
    try:
        lock.acquire()
    except FolderBusy as error:
        parser.error(f"--out: {error}")
    try:
        note = lock.stale_note()
        if note:
            print(note, flush=True)
        # the learner (and with --n-envs 1 the env) runs here: on one thread by default, as the workers do, because
        # two threads sum the Q-network's gradients in another order and train another agent (docs/train.md, "What
        # reproduces"); the caller's setting comes back afterwards (main is also called from Python)
        with torch_threads(config.threads):
            return _run(config, parser)
    finally:
        lock.release()


def _run(config: RunConfig, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The run proper, with ``config.out`` locked (``experiments.folder_lock``)."""
    warnings.filterwarnings("ignore", message="rich is experimental")  # SB3's rich progress bar
    # --eval-freq's env runs in this process while --n-envs > 1 trains in subprocesses: different on purpose
    warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
    out = config.out
    needs_buffer = issubclass(ALGORITHMS[config.algo], OffPolicyAlgorithm)
    resume_from = newest_checkpoint(out, config.algo, needs_buffer) if config.resume else None
    if config.resume and resume_from is None:
        parser.error(
            f"--resume: no {config.algo} checkpoint{' with its replay buffer' if needs_buffer else ''} "
            f"in {checkpoint_dir(out)} (train with --checkpoint-freq N to write some)"
        )
    try:
        probe = make_env(config.env_id, config.env_kwargs, config.algo)
    except (TypeError, ValueError, FileNotFoundError) as error:
        parser.error(f"--env-kwargs: cannot create {config.env_id}: {error}")
    if config.compare and config.eval_episodes:
        try:
            check_baselines(probe)
        except ValueError as error:
            parser.error(f"--env-kwargs: {error}")

    steps = probe.unwrapped.config.steps_per_episode  # type: ignore[attr-defined]
    total = config.total_timesteps(steps)
    prior = default_prior(probe) if config.algo == "BatchDQN" else None
    policy, algo_kwargs = policy_and_kwargs(
        config.algo, config.algo_kwargs, config.flat_policy, steps, config.n_envs, prior
    )
    if config.algo == "BatchDQN" and resume_from is None:
        with warnings.catch_warnings():  # its warnings come once, when the model is built
            warnings.simplefilter("ignore")
            try:  # a prior that names no feature or no readable error model fails now, not after the pre-training
                prior_from_feature(algo_kwargs.get("policy_kwargs"), probe)
            except ValueError as error:
                parser.error(f"--algo-kwargs: {error}")
    out.mkdir(parents=True, exist_ok=True)
    envs = "one env" if config.n_envs == 1 else f"{config.n_envs} envs in subprocesses"
    start_rule = (algo_kwargs.get("policy_kwargs") or {}).get("prior")
    starting = f", starting from {start_rule}'s ranking" if start_rule else ""
    print(
        f"{config.algo} on {config.env_id}{starting} for {total} env steps ({total / steps:g} episodes of {steps}, "
        f"{envs}); "
        f"output in {out}\n(the first reset pre-trains the starting segmentation net unless it is cached)",
        flush=True,
    )
    if config.n_envs > 1:
        probe.reset(seed=config.seed)  # fills the start-network cache once, before the workers read it
    env = training_envs(config, probe)
    resolved = env_summary(probe)
    test_kwargs = eval_env_kwargs(config, probe)
    compare_kwargs = comparison_env_kwargs(test_kwargs)
    del probe  # with --n-envs > 1 the workers hold their own envs: this one's data and networks are freed
    try:
        if resume_from is not None:
            model = load_checkpoint(config, env, resume_from)
            print(f"resuming from {resume_from} at {model.num_timesteps} env steps", flush=True)
        else:
            model = create_model(config, env, policy, algo_kwargs)
    except TypeError as error:
        parser.error(f"--algo-kwargs: {error}")
    except ValueError as error:
        parser.error(f"cannot build {config.algo} for {config.env_id}: {error}")

    record = {
        **config.to_dict(),
        "total_timesteps": total,
        "policy": policy,
        "algo_kwargs_used": algo_kwargs,
        "env_resolved": resolved,
        "resumed_from": str(resume_from) if resume_from else None,
        "versions": provenance(resolved["resolved_device"]),
    }
    atomic_write_json(record, out / "config.json")

    eval_env = None
    if config.eval_freq:
        eval_env = monitored(
            make_env(config.env_id, test_kwargs, config.algo),
            out / "eval_monitor.csv",
            ("miou", "test_miou"),
            config.resume,
        )
    started = time.perf_counter()
    model = train(config, model, total, eval_env)
    if eval_env is not None:
        eval_env.close()
    train_seconds = time.perf_counter() - started
    model_path = out / "model.zip"
    save_model(model, model_path)
    print(f"trained {model.num_timesteps} env steps in {train_seconds:.0f} s; saved {model_path}", flush=True)
    atomic_write_json(
        {**record, "train_seconds": train_seconds, "num_timesteps": model.num_timesteps}, out / "config.json"
    )

    env.close()
    if not config.compare or config.eval_episodes == 0:
        return {}
    comparison = compare(config, model_path, compare_kwargs)
    table = comparison_table(comparison)
    atomic_write_json(comparison, out / "comparison.json")
    atomic_write_text(table, out / "comparison.md")
    print("\n" + table, flush=True)
    return comparison


def cli(argv: list[str] | None = None) -> int:
    """The ``segal-train`` command: exit status 0 (usage errors exit 2 from argparse)."""
    main(argv)
    return 0
