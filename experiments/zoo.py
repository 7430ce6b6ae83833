"""``segal-zoo`` / ``python -m experiments.zoo``: the RL Zoo's trainer, with segal's algorithms in its table.

The Zoo chooses algorithms from one dict (``rl_zoo3.utils.ALGOS``) that its parser and experiment manager
share. This launcher adds BatchDQN and MaskablePPO to that dict, registers the SegAL ids, points
``--conf-file`` at segal's hyperparameter file for those two algorithms when none is given
(``experiments/zoo_hyperparams/``), evaluates MaskablePPO with the mask-aware evaluation callback, then
hands over to the Zoo. Every option is the Zoo's own (``segal-zoo --help``); env options use its
``key:value`` syntax with Python values:

    segal-zoo --algo batch_dqn --env SegAL-Synthetic-v0
    segal-zoo --algo maskable_ppo --env SegAL-Synthetic-v0 -n 2000 --eval-freq 200 --eval-episodes 2
    segal-zoo --algo batch_dqn --env SegAL-CamVid-v0 \\
        --env-kwargs data_root:"'../shared/data/camvid'" scale:0.5 region_size:"[45,40]"

Needs the ``zoo`` extra (``pip install -e ".[zoo]"`` in a clone).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback

import segal_env  # noqa: F401  (registers the SegAL ids for the Zoo's gym.make)
from agents import BatchDQN

ZOO_ALGORITHMS: dict[str, Any] = {"batch_dqn": BatchDQN, "maskable_ppo": MaskablePPO}
HYPERPARAMS_DIR = Path(__file__).with_name("zoo_hyperparams")


def hyperparams_file(algo: str) -> Path:
    """segal's Zoo hyperparameter file for one of ``ZOO_ALGORITHMS``."""
    return HYPERPARAMS_DIR / f"{algo}.yml"


def option_value(argv: list[str], *names: str) -> str | None:
    """The value given to an option as ``--name value`` or ``--name=value`` (the last one wins), else None."""
    value = None
    for i, word in enumerate(argv):
        for name in names:
            if word == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif word.startswith(name + "="):
                value = word.split("=", 1)[1]
    return value


def zoo_argv(argv: list[str]) -> list[str]:
    """The Zoo's command line: ``argv`` plus segal's hyperparameter file for a segal algorithm without one."""
    algo = option_value(argv, "--algo")
    if algo in ZOO_ALGORITHMS and option_value(argv, "-conf", "--conf-file") is None:
        return [*argv, "--conf-file", str(hyperparams_file(algo))]
    return list(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the Zoo's ``train()`` on ``argv`` (default ``sys.argv[1:]``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        from rl_zoo3 import exp_manager, utils
        from rl_zoo3.train import train
    except ImportError:
        print(
            "segal-zoo needs the RL Zoo: pip install rl_zoo3, or pip install -e '.[zoo]' in a clone of segal",
            file=sys.stderr,
        )
        return 2
    utils.ALGOS.update(ZOO_ALGORITHMS)  # the very dict train() and the ExperimentManager read
    saved = sys.argv, exp_manager.EvalCallback
    if option_value(argv, "--algo") == "maskable_ppo":
        # the Zoo's EvalCallback calls predict() without action masks, so MaskablePPO would pick masked
        # (already labelled) regions, which the env rejects
        exp_manager.EvalCallback = MaskableEvalCallback  # type: ignore[misc]
    sys.argv = ["segal-zoo", *zoo_argv(argv)]
    try:
        train()
    finally:
        sys.argv, exp_manager.EvalCallback = saved  # type: ignore[misc]
    return 0


if __name__ == "__main__":
    sys.exit(main())
