"""``python train.py``: train an active-learning agent on a SegAL environment, then compare it with baselines.

    python train.py                      # batch-mode DQN on SegAL-Synthetic-v0, CPU, ~10 minutes
    python train.py --algo PPO --timesteps 2000
    python train.py --env SegAL-CamVid-v0 \\
        --env-kwargs data_root=../shared/data/camvid scale=0.5 region_size=[45,40] --episodes 100

The run directory (``--out``, default ``runs/<env>-<algo>-seed<seed>``) receives:

- ``model.zip``: the trained agent (load it with ``agents.make_agent(path, env)``);
- ``config.json``: every option and every env / algorithm keyword actually used, and the provenance
  (segal, Python, torch, device);
- ``tb/``: tensorboard logs; ``monitor.csv``: one line per training episode;
- ``checkpoints/`` (with ``--checkpoint-freq``): model + replay buffer every N env steps, for ``--resume``;
- with ``--eval-freq N``: ``best_model.zip`` (best mean reward-set gain over periodic test-mode evaluations),
  ``evaluations.json`` (returns and test mIoU of each evaluation), ``eval_monitor.csv`` (``miou``, ``test_miou``);
- ``comparison.json`` / ``comparison.md``: the trained agent (greedy; also the best model with ``--eval-freq``)
  against random, entropy, margin and margin_balance on held-out test episodes (env in ``mode="test"``, scored after
  the final training), every policy on the same seeds.

Usage errors (unknown env or algorithm, malformed key=value lists, incompatible options) exit with
code 2 and an argparse-style message.

Modules, one concern each: :mod:`~experiments.training.config` (the command line and the typed
``RunConfig``), :mod:`~experiments.training.algorithm` (defaults, build / resume, the learning loop),
:mod:`~experiments.training.envs` (the training and test-mode envs, their monitor files),
:mod:`~experiments.training.comparison` (the comparison with the baselines),
:mod:`~experiments.training.run` (``main``: wires them).
"""

from experiments.training.algorithm import algorithm_defaults, policy_and_kwargs
from experiments.training.comparison import BASELINES_TO_COMPARE, compare, comparison_table
from experiments.training.config import (
    DEFAULT_ALGO,
    DEFAULT_EVAL_EPISODES,
    DEFAULT_EVAL_SEED,
    DEFAULT_TIMESTEPS,
    PERIODIC_EVAL_SEED,
    RunConfig,
    build_parser,
    parse_env_settings,
    resolve_config,
)
from experiments.training.run import cli, main

__all__ = [
    "BASELINES_TO_COMPARE",
    "DEFAULT_ALGO",
    "DEFAULT_EVAL_EPISODES",
    "DEFAULT_EVAL_SEED",
    "DEFAULT_TIMESTEPS",
    "PERIODIC_EVAL_SEED",
    "RunConfig",
    "algorithm_defaults",
    "build_parser",
    "cli",
    "compare",
    "comparison_table",
    "main",
    "parse_env_settings",
    "policy_and_kwargs",
    "resolve_config",
]
