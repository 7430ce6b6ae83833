"""What a benchmark runs: the protocol presets (paper budgets, CPU scale, --quick) and the resolution of the
command line into a ``Config`` and one ``RunSpec`` per (policy, seed)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import segal_env  # noqa: F401 - registers the SegAL ids
from agents.baselines import BASELINES
from agents.loading import PRIVILEGED_POLICIES, saved_model_path
from experiments.benchmark.runner import CONTROLLED_KWARGS, RunSpec, file_sha256, sanitize_label
from segal_env.config import EnvConfig, check_device, parse_env_settings, resolve_env_config

DEFAULT_POLICIES = ["random", "entropy", "bald"]
DEFAULT_SEEDS = 3

# paper budgets (method.md); other data sets: five evenly spaced budgets up to the preset test budget
PAPER_BUDGETS = {
    "camvid": [480, 720, 960, 1200, 1440, 1920],
    "cityscapes": [1920, 3840, 7680, 15360, 30720],
}

# without a GPU, the paper-sized configurations take days: these keep the protocol and shrink the scale
CPU_DEFAULTS: dict[str, dict[str, Any]] = {
    "camvid": {
        "env_kwargs": {"scale": 0.25, "region_size": [18, 20], "num_pools": 12},
        "budgets": [120, 180, 240, 300, 360, 480],
        "why": "no GPU: CamVid at scale 0.25 (90x120 images), 18x20 regions (30 per image; the paper's 90x80 "
        "scaled by 0.25 does not tile), K=12 pools, budgets divided by 4 (120..480 instead of 480..1920)",
    },
    "cityscapes": {
        "env_kwargs": {"scale": 0.25, "region_size": [32, 32], "num_pools": 48},
        "budgets": [240, 480, 960, 1920, 3840],
        "why": "no GPU: Cityscapes at scale 0.25 (256x512 images), 32x32 regions (the paper's 128x128 scaled), "
        "K=48 pools, budgets divided by 8 (240..3840 instead of 1920..30720)",
    },
}

# --quick: a smoke-sized benchmark that finishes in a few minutes on a 2-core CPU
QUICK: dict[str, dict[str, Any]] = {
    # the preset data set and roles (a starting network weak enough that labels still help, strong
    # enough that they do: ~25% test mIoU), fewer train images, pre-training capped at 20 epochs
    # (about a minute, once: cached), 6 candidates per pool, 4 MC-dropout samples for BALD
    "synthetic": {
        "env_kwargs": {
            "dataset_kwargs": {"n_train": 120},
            "num_pools": 8,
            "pool_size": 6,
            "pretrain_steps": 200,
            "mc_samples": 4,
        },
        "budgets": [16, 32, 48, 64],
        "seeds": 2,
    },
    "camvid": {
        "env_kwargs": {
            "scale": 0.25,
            "region_size": [18, 20],
            "num_pools": 12,
            "pool_size": 5,
            "role_sizes": {"d_s": 4, "d_t": 50, "d_r": 30},
            "pretrain_steps": 200,
            "mc_samples": 4,
        },
        "budgets": [24, 48, 72],
        "seeds": 2,
    },
    "cityscapes": {
        "env_kwargs": {
            "scale": 0.125,
            "region_size": [32, 32],
            "num_pools": 16,
            "pool_size": 5,
            "role_sizes": {"d_s": 4, "d_t": 30, "d_r": 30, "d_v": 60},
            "pretrain_steps": 80,
            "mc_samples": 4,
        },
        "budgets": [32, 64, 96],
        "seeds": 2,
    },
    "*": {"env_kwargs": {"pretrain_steps": 80, "mc_samples": 4}, "budget_steps": [2, 4, 6], "seeds": 2},
}


class UsageError(Exception):
    """A configuration the user must change; printed without a traceback, exit code 2."""


# ---- argument parsing ------------------------------------------------------------------------------
def parse_env_kwargs(items: list[str]) -> dict:
    """--env-kwargs KEY=VALUE items, parsed and checked like train.py's (segal_env.config.parse_env_settings)."""
    try:
        return parse_env_settings(items)
    except ValueError as error:
        raise UsageError(str(error)) from None


def resolve_test_mode(dataset: str, env_kwargs: dict) -> EnvConfig:
    """The env's resolved test-mode settings (no data loaded); the benchmark's one resolution."""
    try:
        return resolve_env_config(**{**env_kwargs, "dataset": dataset, "mode": "test"})
    except (TypeError, ValueError) as error:
        raise UsageError(f"--env-kwargs: {error}") from None


def check_budgets(budgets: list[int], num_pools: int) -> list[int]:
    """The budgets sorted and deduplicated, once; each a positive multiple of ``num_pools`` (K)."""
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] <= 0:
        raise UsageError(f"budgets must be positive, got {budgets}")
    bad = [b for b in budgets if b % num_pools]
    if bad:
        fixed = sorted({max(num_pools, round(b / num_pools) * num_pools) for b in budgets})
        raise UsageError(
            f"--budgets {bad} are not multiples of num_pools={num_pools} (each step labels one region per "
            f"pool); e.g. --budgets {' '.join(map(str, fixed))}"
        )
    return budgets


# ---- configuration -----------------------------------------------------------------------------------
@dataclass
class Config:
    env_id: str
    env_kwargs: dict
    policies: dict[str, str]  # label -> source (baseline name or model path)
    seeds: list[int]
    budgets: list[int]
    final_training: bool
    device: str
    threads: int
    out: Path
    env_config: EnvConfig  # the test-mode settings, resolved once: budget = the largest budget, eval_budgets = budgets
    notes: list[str] = field(default_factory=list)


def dataset_of(env_id: str, env_kwargs: dict) -> str:
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        known = sorted(i for i in gym.registry if i.startswith("SegAL"))
        raise UsageError(f"unknown env id {env_id!r} ({error}); SegAL ids: {known}") from None
    return env_kwargs.get("dataset", spec.kwargs.get("dataset", "synthetic"))


def default_budgets(config: EnvConfig, budget: int | None = None) -> list[int]:
    """The paper's budgets for CamVid / Cityscapes, else five even steps up to ``budget`` (default: the
    preset test budget); multiples of K."""
    k, top = config.num_pools, budget or config.budget
    budgets: list[float] = [float(b) for b in PAPER_BUDGETS.get(config.dataset, [])] or [
        top * i / 5 for i in range(1, 6)
    ]
    return sorted({max(k, int(round(b / k)) * k) for b in budgets})


def parse_policies(items: list[str]) -> dict[str, str]:
    """label -> source. A baseline name is its own label; a model path is labelled by its file stem
    (or explicitly, ``label=path``). Unknown names and missing files are a UsageError."""
    policies: dict[str, str] = {}
    for item in items:
        label, sep, source = item.partition("=")
        if not sep:
            label, source = "", item
        if source in BASELINES or source in PRIVILEGED_POLICIES:
            label = label or source
        else:
            path = saved_model_path(source)
            if path is None:
                raise UsageError(
                    f"unknown policy {item!r}: not a baseline name ({', '.join(BASELINES)}), not the "
                    f"label-reading upper bounds ({', '.join(PRIVILEGED_POLICIES)}), "
                    "and not the path of a saved model (.zip) or error model (.npz, segal-fit-error-model)"
                )
            source = str(path.resolve())
            label = label or path.stem
        label = sanitize_label(label)
        if label in policies and policies[label] != source:
            raise UsageError(
                f"two policies are labelled {label!r} ({policies[label]} and {source}); name them with label=path"
            )
        policies[label] = source
    return policies


def resolve_config(args: argparse.Namespace) -> Config:
    notes: list[str] = []
    user_kwargs = parse_env_kwargs(args.env_kwargs)
    controlled = sorted(set(user_kwargs) & set(CONTROLLED_KWARGS) - {"budget"})
    if controlled:
        raise UsageError(
            f"env kwargs {controlled} are set by the benchmark (test mode, --budgets, --final-training); drop them"
        )
    dataset = dataset_of(args.env, user_kwargs)
    env_kwargs: dict = {}
    budgets = args.budgets
    seeds = args.seeds
    policies = args.policies or list(DEFAULT_POLICIES)
    if args.ray is None:  # Ray tasks may run where this driver's machine has no GPU: their envs check there
        try:
            check_device(args.device)
        except ValueError as error:
            raise UsageError(f"--device: {error}") from None
    gpu = torch.cuda.is_available() or (args.ray is not None and args.ray_gpus > 0)
    on_cpu = args.device == "cpu" or (not args.device.startswith("cuda") and not gpu)
    budget_steps = None
    if args.quick:
        quick = QUICK.get(dataset, QUICK["*"])
        env_kwargs.update(quick["env_kwargs"])
        seeds = seeds or quick["seeds"]
        if budgets is None:
            budgets = quick.get("budgets")
            budget_steps = quick.get("budget_steps")
        notes.append(
            f"--quick: small configuration for a smoke benchmark ({json.dumps(quick['env_kwargs'], sort_keys=True)}); "
            "numbers are not comparable with full runs"
        )
    elif on_cpu and dataset in CPU_DEFAULTS and "scale" not in user_kwargs:
        cpu = CPU_DEFAULTS[dataset]
        env_kwargs.update(cpu["env_kwargs"])
        if budgets is None and "num_pools" not in user_kwargs:
            budgets = list(cpu["budgets"])
        notes.append(cpu["why"] + "; pass scale=... (and region_size/num_pools, --budgets) to override")
    env_kwargs.update(user_kwargs)
    # the one resolution: the user's budget (if any) only shapes the default ladder; the benchmark then sets
    # the env's budget to the largest of the budgets and scores the test split at every one of them
    user_budget = env_kwargs.pop("budget", None)
    env_config = resolve_test_mode(dataset, env_kwargs)
    if budgets is None:
        budgets = (
            [env_config.num_pools * s for s in budget_steps]
            if budget_steps
            else default_budgets(env_config, user_budget)
        )
    budgets = check_budgets(budgets, env_config.num_pools)  # the env checks them against the pool size
    env_config = dataclasses.replace(
        env_config, budget=budgets[-1], eval_budgets=budgets, final_training=bool(args.final_training)
    )
    seeds_count = DEFAULT_SEEDS if seeds is None else int(seeds)
    if seeds_count < 1:
        raise UsageError("--seeds must be >= 1")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    # one torch thread per run unless asked: the runs are small (intra-op threads gain little and
    # oversubscribe a busy machine badly), parallelism comes from --workers / Ray, and one fixed value
    # keeps CPU numbers identical across backends
    if args.ray is not None:
        threads = args.threads or max(1, int(math.floor(args.ray_cpus)))
    else:
        threads = args.threads or 1
    out = (
        Path(args.out)
        if args.out
        else Path("results") / (sanitize_label(args.env.lower()) + ("-quick" if args.quick else ""))
    )
    return Config(
        env_id=args.env,
        env_kwargs=env_kwargs,
        policies=parse_policies(policies),
        seeds=list(range(args.first_seed, args.first_seed + seeds_count)),
        budgets=budgets,
        final_training=bool(args.final_training),
        device=args.device,
        threads=int(threads),
        out=out,
        env_config=env_config,
        notes=notes,
    )


def make_specs(config: Config) -> list[RunSpec]:
    """Seed-major order: the first seed of every policy finishes first (early comparable results)."""
    hashes = {
        label: None if source in BASELINES or source in PRIVILEGED_POLICIES else file_sha256(source)
        for label, source in config.policies.items()
    }
    return [
        RunSpec(
            env_id=config.env_id,
            env_kwargs=config.env_kwargs,
            policy=label,
            policy_source=source,
            seed=seed,
            budgets=config.budgets,
            final_training=config.final_training,
            device=config.device,
            torch_threads=config.threads,
            policy_sha256=hashes[label],
        )
        for seed in config.seeds
        for label, source in config.policies.items()
    ]
