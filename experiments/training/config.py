"""train.py's command line and its typed run configuration (``RunConfig``): parsed and checked once.

``resolve_config`` turns the parsed options into a ``RunConfig``; everything downstream reads its fields,
and ``RunConfig.to_dict()`` is what config.json records.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

import segal_env
from agents import ALGORITHMS
from segal_env import DEFAULT_ENV_ID
from segal_env.config import check_device, parse_env_settings, parse_key_values
from segal_env.runtime import thread_count

DEFAULT_ALGO = "BatchDQN"
# Sized for about 10 minutes of `python train.py` on 2 CPU cores with a cold cache (docs/train.md: 8 to 12 minutes
# on the 2-core machines measured): with the synthetic preset of docs/al_dynamics.md a step costs 1-1.3 s (4
# fine-tuning epochs per step), so 30 episodes of 10 AL steps plus the comparison (5 policies x 3 test episodes of
# 20 steps, each with its final training) and the one pre-training of the start network. Raise it
# (--timesteps/--episodes) when time allows: the paper trains for 100 episodes.
DEFAULT_TIMESTEPS = 300
DEFAULT_EVAL_EPISODES = 3
# two training envs in subprocesses of one torch thread each: 2.29 env steps/s against 1.80 for one env of two
# threads on 2 cores, with learning level with one env (benchmarks/throughput.py, docs/dqn.md "Throughput")
DEFAULT_N_ENVS = 2
DEFAULT_EVAL_SEED = 10_000
PERIODIC_EVAL_SEED = (
    20_000  # --eval-freq's episodes: not the comparison's, so choosing the best model does not favour it there
)


@dataclass
class RunConfig:
    """One train.py run, resolved from the command line (see ``build_parser`` for each option)."""

    env_id: str
    env_kwargs: dict[str, Any]  # the training env's keywords (mode is always "train")
    eval_env_overrides: dict[str, Any]  # --eval-env-kwargs: the comparison / evaluation env only
    algo: str
    algo_kwargs: dict[str, Any]  # --algo-kwargs as given; train.py's defaults are added in algorithm.py
    out: Path
    seed: int = 0
    n_envs: int = DEFAULT_N_ENVS
    flat_policy: bool = False
    timesteps: int | None = None
    episodes: int | None = None
    checkpoint_freq: int = 0
    resume: bool = False
    eval_episodes: int = DEFAULT_EVAL_EPISODES
    eval_seed: int = DEFAULT_EVAL_SEED
    compare: bool = True
    eval_freq: int = 0
    eval_freq_episodes: int = 2
    eval_patience: int = 0
    device: str = "auto"
    threads: int = 1  # torch threads of every process of the run
    progress_bar: bool = True
    verbose: int = 0
    argv: list[str] = field(default_factory=list)

    def total_timesteps(self, steps_per_episode: int) -> int:
        """--timesteps, else --episodes x the env's steps per episode, else the default."""
        if self.timesteps:
            return self.timesteps
        return self.episodes * steps_per_episode if self.episodes else DEFAULT_TIMESTEPS

    @property
    def tensorboard_dir(self) -> Path:
        return self.out / "tb"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for config.json (the keys of the options, ``out`` as a string)."""
        record = dataclasses.asdict(self)
        record["out"] = str(self.out)
        return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train an agent on a SegAL env, then compare it (greedy) with the random, entropy, margin "
        "and margin_balance baselines on held-out test episodes, scored after the final training.",
        epilog="Outputs: model.zip, config.json, tb/, monitor.csv, checkpoints/, comparison.json/.md in --out.",
    )
    parser.add_argument("--env", default=DEFAULT_ENV_ID, help=f"registered SegAL env id (default {DEFAULT_ENV_ID})")
    parser.add_argument(
        "--env-kwargs",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="env keyword arguments; values are parsed as JSON when possible "
        "(e.g. data_root=../shared/data/camvid scale=0.5 region_size=[45,40])",
    )
    parser.add_argument(
        "--eval-env-kwargs",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides for the comparison env only (it gets --env-kwargs plus mode=test)",
    )
    parser.add_argument("--algo", default=DEFAULT_ALGO, help=f"one of {', '.join(ALGORITHMS)} (default {DEFAULT_ALGO})")
    parser.add_argument(
        "--algo-kwargs",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="keyword arguments of the algorithm (JSON values), e.g. learning_rate=3e-4 buffer_size=50",
    )
    parser.add_argument(
        "--flat-policy",
        action="store_true",
        help="PPO/A2C/MaskablePPO/DQN: plain MultiInputPolicy (flattens each obs entry) instead of "
        "MultiInputPolicy with agents.RegionSetExtractor",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--timesteps", type=int, help=f"total env steps (default {DEFAULT_TIMESTEPS})")
    length.add_argument(
        "--episodes", type=int, help="total training episodes (env steps = episodes x budget / num_pools)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the algorithm and the training env (default 0)")
    parser.add_argument(
        "--n-envs",
        type=int,
        default=DEFAULT_N_ENVS,
        help=f"training envs stepped together, each in its own process with --threads (default 1) torch threads, "
        f"and as many processes for the comparison's episodes; 1 = one env in this process, and the comparison "
        f"too (default {DEFAULT_N_ENVS}: faster on 2 cores, docs/dqn.md)",
    )
    parser.add_argument("--out", type=Path, help="output directory (default runs/<env>-<algo>-seed<seed>)")
    parser.add_argument(
        "--checkpoint-freq",
        type=int,
        default=0,
        metavar="N",
        help="save model (+ replay buffer for off-policy algorithms) every N env steps; 0 = never",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --out (replay buffer included) up to the same total timesteps",
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=DEFAULT_EVAL_EPISODES,
        help=f"test episodes per policy in the comparison (default {DEFAULT_EVAL_EPISODES})",
    )
    parser.add_argument(
        "--eval-seed",
        type=int,
        default=DEFAULT_EVAL_SEED,
        help=f"comparison episode i is reset with seed EVAL_SEED + i, for every policy (default {DEFAULT_EVAL_SEED})",
    )
    parser.add_argument("--no-compare", action="store_true", help="skip the comparison with the baselines")
    parser.add_argument(
        "--eval-freq",
        type=int,
        default=0,
        metavar="N",
        help="evaluate the greedy agent every N env steps on a test-mode env (SB3's EvalCallback; the same "
        f"episodes each time, seeds {PERIODIC_EVAL_SEED}+i), keep the best mean return (reward-set gain) in "
        "best_model.zip and every evaluation in evaluations.json; 0 = never (default)",
    )
    parser.add_argument(
        "--eval-freq-episodes", type=int, default=2, metavar="K", help="episodes per periodic evaluation (default 2)"
    )
    parser.add_argument(
        "--eval-patience",
        type=int,
        default=0,
        metavar="P",
        help="with --eval-freq: stop after P evaluations without a better mean return; 0 = never stop early",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device of the agent and (unless --env-kwargs sets it) the env (default auto)",
    )
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        help="torch threads of this process (the learner) and of each env or comparison worker (default 1: the "
        "run's numbers then do not depend on the machine's core count)",
    )
    parser.add_argument("--no-progress-bar", action="store_true", help="hide the training progress bar")
    parser.add_argument(
        "--verbose",
        type=int,
        nargs="?",
        const=1,
        default=0,
        help="0 quiet, 1 SB3 logs + pre-training progress, 2 debug",
    )
    return parser


def segal_env_ids() -> list[str]:
    """Registered SegAL env ids (the package's own plus any registered later with the same prefix)."""
    return sorted(set(segal_env.ENV_IDS) | {env_id for env_id in gym.registry if env_id.startswith("SegAL-")})


def check_algorithm_keywords(given: dict[str, Any], function: Any, what: str, option: str) -> None:
    """Reject keywords ``function`` does not accept, listing the valid ones."""
    accepted = [name for name in inspect.signature(function).parameters if name not in ("self", "_init_setup_model")]
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"{option}: unknown {what} keyword(s) {unknown}; valid: {', '.join(accepted)}")


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("eval_freq", "eval_patience", "checkpoint_freq"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.eval_freq_episodes < 1:
        raise ValueError(f"--eval-freq-episodes must be >= 1, got {args.eval_freq_episodes}")
    if args.eval_patience and not args.eval_freq:
        raise ValueError("--eval-patience needs --eval-freq N (early stopping compares periodic evaluations)")
    for name in ("timesteps", "episodes", "eval_episodes", "n_envs"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "eval_episodes" else 1):
            raise ValueError(
                f"--{name.replace('_', '-')} must be {'>= 0' if name == 'eval_episodes' else 'positive'}, got {value}"
            )


def resolve_config(args: argparse.Namespace, argv: list[str] | None = None) -> RunConfig:
    """Validate the parsed options and turn them into one run configuration.

    Raises ValueError with a user-facing message for anything wrong on the command line.
    """
    if args.env not in segal_env_ids():
        raise ValueError(f"--env: unknown env id {args.env!r}; registered SegAL envs: {', '.join(segal_env_ids())}")
    if args.algo not in ALGORITHMS:
        raise ValueError(f"--algo: unknown algorithm {args.algo!r}; choose from {', '.join(ALGORITHMS)}")
    _check_numbers(args)
    try:
        check_device(args.device)  # the agent's device, and the env's unless --env-kwargs sets one
    except ValueError as error:
        raise ValueError(f"--device: {error}") from None

    env_kwargs = parse_env_settings(args.env_kwargs, "--env-kwargs")
    eval_overrides = parse_env_settings(args.eval_env_kwargs, "--eval-env-kwargs")
    algo_kwargs = parse_key_values(args.algo_kwargs, "--algo-kwargs")
    check_algorithm_keywords(algo_kwargs, ALGORITHMS[args.algo].__init__, args.algo, "--algo-kwargs")
    for reserved in ("policy", "env", "seed", "device", "tensorboard_log"):
        if reserved in algo_kwargs:
            raise ValueError(f"--algo-kwargs: {reserved!r} is set by train.py; use the matching option instead")
    if "mode" in env_kwargs:
        raise ValueError("--env-kwargs: 'mode' is fixed by train.py (train for learning, test for the comparison)")

    if args.algo == "DQN":
        if env_kwargs.get("num_pools", 1) != 1:
            raise ValueError(
                f"--algo DQN picks one region per step and needs num_pools=1, but --env-kwargs sets "
                f"num_pools={env_kwargs['num_pools']}; drop it (train.py then sets num_pools=1) or use "
                "BatchDQN / MaskablePPO for several pools"
            )
        env_kwargs["num_pools"] = 1
        if eval_overrides.get("num_pools", 1) != 1:
            raise ValueError("--algo DQN needs num_pools=1 in the comparison env too; drop it from --eval-env-kwargs")
    env_kwargs.setdefault("device", args.device)
    if args.verbose:
        env_kwargs.setdefault("verbose", True)

    return RunConfig(
        env_id=args.env,
        env_kwargs=env_kwargs,
        eval_env_overrides=eval_overrides,
        algo=args.algo,
        algo_kwargs=algo_kwargs,
        out=args.out or Path("runs") / f"{args.env}-{args.algo}-seed{args.seed}",
        seed=args.seed,
        n_envs=args.n_envs,
        flat_policy=bool(args.flat_policy),
        timesteps=args.timesteps,
        episodes=args.episodes,
        checkpoint_freq=args.checkpoint_freq,
        resume=bool(args.resume),
        eval_episodes=args.eval_episodes,
        eval_seed=args.eval_seed,
        compare=not args.no_compare,
        eval_freq=args.eval_freq,
        eval_freq_episodes=args.eval_freq_episodes,
        eval_patience=args.eval_patience,
        device=args.device,
        threads=args.threads,
        progress_bar=not args.no_progress_bar,
        verbose=args.verbose,
        argv=list(argv or []),
    )
