"""``segal-fit-error-model``: learn to predict how wrong the network is on a region, from train-mode episodes.

Fits ``agents.ErrorRegression``'s ridge regression of a candidate's true error on its observation row, over the
steps of ``--episodes`` train-mode episodes (pool D_T, whose labels training may read) played by ``--behaviour``.
The ``.npz`` it writes is a policy: ``evaluate.py --policies error_model=PATH``, ``segal-request --policy PATH``,
``agents.make_agent(PATH, env)`` (docs/oracle.md, "A learned error estimator").

    segal-fit-error-model                                   # synthetic preset, 3 episodes
    segal-fit-error-model --env SegAL-CamVid-v0 --env-kwargs data_root=../shared/data/camvid scale=0.5 \\
        'region_size=[45,40]' --out models/camvid_error_model.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.error_regression import check_fit_settings, fit_error_regression
from experiments.provenance import provenance
from segal_env import DEFAULT_ENV_ID
from segal_env.config import parse_env_settings
from segal_env.runtime import thread_count, torch_threads
from segal_env.storage import atomic_write


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0].replace("``", ""))
    parser.add_argument("--env", default=DEFAULT_ENV_ID, help=f"registered SegAL env id (default {DEFAULT_ENV_ID})")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="env keyword arguments")
    parser.add_argument("--episodes", type=int, default=3, help="train-mode episodes read (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed SEED + i (default 0)")
    parser.add_argument("--behaviour", default="margin", help="the rule that plays the episodes (default margin)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="DAgger rounds: each further round plays --episodes new episodes with the model so far and refits on "
        "every step read (default 1: the rule's episodes only)",
    )
    parser.add_argument("--ridge", type=float, default=1.0, help="ridge penalty on the standardised rows (default 1)")
    parser.add_argument(
        "--rarity-weighted",
        action="store_true",
        help="the policy scores predicted error x the candidate's expected rarity (as margin_balance weights margin)",
    )
    parser.add_argument("--threads", type=thread_count, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="the .npz to write (default runs/<env>-error-model.npz)")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Fit and save the model; returns its ``info`` (what it was fitted on, in-sample R^2, the file)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = args.out or Path("runs") / f"{args.env}-error-model.npz"
    if out.suffix != ".npz" or out.is_dir():
        parser.error(f"--out must be a file name ending in .npz, got {out}")
    try:  # a folder that cannot be written fails now, not after minutes of episodes
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"--out: cannot create the folder {out.parent}: {error.strerror}")
    try:
        check_fit_settings(args.episodes, args.rounds, args.ridge, args.behaviour)
        env_kwargs = parse_env_settings(args.env_kwargs, "--env-kwargs")
    except ValueError as error:
        parser.error(str(error))
    if env_kwargs.get("mode", "train") != "train":
        parser.error("--env-kwargs: the error model is fitted in train mode (pool D_T); drop mode=")
    env_kwargs.pop("mode", None)
    with torch_threads(args.threads):
        try:
            env = gym.make(args.env, mode="train", **env_kwargs)
        except (TypeError, ValueError, FileNotFoundError, gym.error.Error) as error:
            parser.error(f"cannot create {args.env}: {error}")
        episodes = args.episodes * args.rounds
        print(f"reading the true errors of {episodes} train-mode episode(s) of {args.env} ...", flush=True)
        model = fit_error_regression(
            env, args.episodes, args.seed, args.behaviour, args.ridge, args.rounds, args.rarity_weighted
        )
        device = str(env.unwrapped.device)  # type: ignore[attr-defined]
        env.close()
    command = "segal-fit-error-model " + " ".join(argv if argv is not None else sys.argv[1:])
    info = {**model.info, "command": command.strip(), "env_kwargs": env_kwargs, "versions": provenance(device)}
    saved = dataclasses.replace(model, info=info)

    def write(tmp: str) -> None:
        saved.save(tmp)

    atomic_write(out, write)
    print(
        f"fitted on {info['rows']} candidate rows in {info['fit_seconds']:.0f} s (R^2 {info['r2_fit']:.3f} on them); "
        f"wrote {out}\nuse it: evaluate.py --policies error_model={out} ... | segal-request --policy {out} ...",
        flush=True,
    )
    return {**info, "out": str(out)}


def cli(argv: list[str] | None = None) -> int:
    main(argv)
    return 0


if __name__ == "__main__":
    main()
