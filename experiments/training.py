"""``python train.py``: train an active-learning agent on a SegAL environment, then compare it with baselines.

    python train.py                      # batch-mode DQN on SegAL-Synthetic-v0, CPU, ~10 minutes
    python train.py --algo PPO --timesteps 2000
    python train.py --env SegAL-CamVid-v0 \\
        --env-kwargs data_root=../shared/data/camvid scale=0.5 region_size=[45,40] --episodes 100

The run directory (``--out``, default ``runs/<env>-<algo>-seed<seed>``) receives:

- ``model.zip``: the trained agent (load it with ``agents.make_agent(path, env)``);
- ``config.json``: every option and every env / algorithm keyword actually used;
- ``tb/``: tensorboard logs; ``monitor.csv``: one line per training episode;
- ``checkpoints/`` (with ``--checkpoint-freq``): model + replay buffer every N env steps, for ``--resume``;
- with ``--eval-freq N``: ``best_model.zip`` (best mean reward-set gain over periodic test-mode evaluations),
  ``evaluations.json`` (returns and test mIoU of each evaluation), ``eval_monitor.csv`` (``miou``, ``test_miou``);
- ``comparison.json`` / ``comparison.md``: the trained agent (greedy; also the best model with ``--eval-freq``)
  against random and entropy on held-out test episodes (env in ``mode="test"``), every policy on the same seeds.

Usage errors (unknown env or algorithm, malformed key=value lists, incompatible options) exit with
code 2 and an argparse-style message.
"""
from __future__ import annotations

import argparse
import inspect
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

import segal_env
from agents import ALGORITHMS, RegionSetExtractor, SinglePoolWrapper, make_agent
from experiments.checkpoints import AtomicCheckpointCallback, checkpoint_dir, newest_checkpoint, replay_buffer_path, save_checkpoint, save_model
from experiments.episodes import play_episode
from experiments.evaluation import periodic_evaluation
from segal_env import DEFAULT_ENV_ID
from segal_env.config import parse_env_settings, parse_key_values
from segal_env.storage import atomic_write_json, atomic_write_text

DEFAULT_ALGO = "BatchDQN"
# Sized for <= 10 minutes of `python train.py` on 2 CPU cores with a cold cache (docs/train.md): with the
# synthetic preset of docs/al_dynamics.md a step costs about 1 s (4 fine-tuning epochs per step), so 30
# episodes of 10 AL steps plus the comparison (3 policies x 3 test episodes of 20 steps) and the one
# pre-training of the start network. Raise it (--timesteps/--episodes) when time allows: the paper
# trains for 100 episodes.
DEFAULT_TIMESTEPS = 300
DEFAULT_EVAL_EPISODES = 3
DEFAULT_EVAL_SEED = 10_000
BASELINES_TO_COMPARE = ("random", "entropy")
PERIODIC_EVAL_SEED = 20_000  # --eval-freq's episodes: not the comparison's, so choosing the best model does not favour it there


def algorithm_defaults(algo: str, steps_per_episode: int) -> dict[str, Any]:
    """train.py's defaults per algorithm, sized for short runs of a few hundred env steps (SB3's own
    defaults assume millions: PPO's 2048-step rollouts, DQN's 1M-transition replay buffer of Dict
    observations would not fit in memory). ``--algo-kwargs`` overrides any of them."""
    if algo in ("PPO", "MaskablePPO"):
        n_steps = 2 * steps_per_episode
        return {"n_steps": n_steps, "batch_size": n_steps, "n_epochs": 4}
    if algo == "A2C":
        return {"n_steps": steps_per_episode}
    if algo == "DQN":
        return {
            "buffer_size": 1000,
            "learning_starts": steps_per_episode,
            "batch_size": 16,
            "train_freq": 1,
            "target_update_interval": 5 * steps_per_episode,
            "exploration_fraction": 0.5,
        }
    return {}  # BatchDQN: its own defaults, measured for this env (docs/dqn.md)


# ---- command line ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train an agent on a SegAL env, then compare it (greedy) with the random and entropy "
        "baselines on held-out test episodes.",
        epilog="Outputs: model.zip, config.json, tb/, monitor.csv, checkpoints/, comparison.json/.md in --out.",
    )
    parser.add_argument("--env", default=DEFAULT_ENV_ID, help=f"registered SegAL env id (default {DEFAULT_ENV_ID})")
    parser.add_argument(
        "--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
        help="env keyword arguments; values are parsed as JSON when possible "
        "(e.g. data_root=../shared/data/camvid scale=0.5 region_size=[45,40])",
    )
    parser.add_argument(
        "--eval-env-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
        help="overrides for the comparison env only (it gets --env-kwargs plus mode=test)",
    )
    parser.add_argument("--algo", default=DEFAULT_ALGO, help=f"one of {', '.join(ALGORITHMS)} (default {DEFAULT_ALGO})")
    parser.add_argument(
        "--algo-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
        help="keyword arguments of the algorithm (JSON values), e.g. learning_rate=3e-4 buffer_size=50",
    )
    parser.add_argument(
        "--flat-policy", action="store_true",
        help="PPO/A2C/MaskablePPO/DQN: plain MultiInputPolicy (flattens each obs entry) instead of "
        "MultiInputPolicy with agents.RegionSetExtractor",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--timesteps", type=int, help=f"total env steps (default {DEFAULT_TIMESTEPS})")
    length.add_argument("--episodes", type=int, help="total training episodes (env steps = episodes x budget / num_pools)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the algorithm and the training env (default 0)")
    parser.add_argument("--out", type=Path, help="output directory (default runs/<env>-<algo>-seed<seed>)")
    parser.add_argument(
        "--checkpoint-freq", type=int, default=0, metavar="N",
        help="save model (+ replay buffer for off-policy algorithms) every N env steps; 0 = never",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue from the newest checkpoint in --out (replay buffer included) up to the same total timesteps",
    )
    parser.add_argument(
        "--eval-episodes", type=int, default=DEFAULT_EVAL_EPISODES,
        help=f"test episodes per policy in the comparison (default {DEFAULT_EVAL_EPISODES})",
    )
    parser.add_argument(
        "--eval-seed", type=int, default=DEFAULT_EVAL_SEED,
        help=f"comparison episode i is reset with seed EVAL_SEED + i, for every policy (default {DEFAULT_EVAL_SEED})",
    )
    parser.add_argument("--no-compare", action="store_true", help="skip the comparison with the baselines")
    parser.add_argument(
        "--eval-freq", type=int, default=0, metavar="N",
        help="evaluate the greedy agent every N env steps on a test-mode env (SB3's EvalCallback; the same "
        f"episodes each time, seeds {PERIODIC_EVAL_SEED}+i), keep the best mean return (reward-set gain) in "
        "best_model.zip and every evaluation in evaluations.json; 0 = never (default)",
    )
    parser.add_argument("--eval-freq-episodes", type=int, default=2, metavar="K",
                        help="episodes per periodic evaluation (default 2)")
    parser.add_argument("--eval-patience", type=int, default=0, metavar="P",
                        help="with --eval-freq: stop after P evaluations without a better mean return; 0 = never stop early")
    parser.add_argument("--device", default="auto", help="torch device of the agent and (unless --env-kwargs sets it) the env (default auto)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads(THREADS) before anything runs")
    parser.add_argument("--no-progress-bar", action="store_true", help="hide the training progress bar")
    parser.add_argument(
        "--verbose", type=int, nargs="?", const=1, default=0,
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


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the parsed options and turn them into one JSON-able run configuration.

    Raises ValueError with a user-facing message for anything wrong on the command line.
    """
    if args.env not in segal_env_ids():
        raise ValueError(f"--env: unknown env id {args.env!r}; registered SegAL envs: {', '.join(segal_env_ids())}")
    if args.algo not in ALGORITHMS:
        raise ValueError(f"--algo: unknown algorithm {args.algo!r}; choose from {', '.join(ALGORITHMS)}")
    for name in ("eval_freq", "eval_patience"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.eval_freq_episodes < 1:
        raise ValueError(f"--eval-freq-episodes must be >= 1, got {args.eval_freq_episodes}")
    if args.eval_patience and not args.eval_freq:
        raise ValueError("--eval-patience needs --eval-freq N (early stopping compares periodic evaluations)")
    for name in ("timesteps", "episodes", "eval_episodes", "threads"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "eval_episodes" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be {'>= 0' if name == 'eval_episodes' else 'positive'}, got {value}")
    if args.checkpoint_freq < 0:
        raise ValueError(f"--checkpoint-freq must be >= 0, got {args.checkpoint_freq}")

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

    out = args.out or Path("runs") / f"{args.env}-{args.algo}-seed{args.seed}"
    return {
        "env_id": args.env,
        "env_kwargs": env_kwargs,
        "eval_env_overrides": eval_overrides,
        "algo": args.algo,
        "algo_kwargs": algo_kwargs,
        "flat_policy": bool(args.flat_policy),
        "timesteps": args.timesteps,
        "episodes": args.episodes,
        "seed": args.seed,
        "out": str(out),
        "checkpoint_freq": args.checkpoint_freq,
        "resume": bool(args.resume),
        "eval_episodes": args.eval_episodes,
        "eval_seed": args.eval_seed,
        "compare": not args.no_compare,
        "eval_freq": args.eval_freq,
        "eval_freq_episodes": args.eval_freq_episodes,
        "eval_patience": args.eval_patience,
        "device": args.device,
        "threads": args.threads,
        "progress_bar": not args.no_progress_bar,
        "verbose": args.verbose,
    }


# ---- environments ------------------------------------------------------------------------------
def make_env(env_id: str, env_kwargs: dict[str, Any], algo: str) -> gym.Env:
    """``gym.make`` the env; for plain DQN, expose its single pool as a ``Discrete`` action."""
    env = gym.make(env_id, **env_kwargs)
    return SinglePoolWrapper(env) if algo == "DQN" else env


def env_summary(env: gym.Env) -> dict[str, Any]:
    """The env's resolved settings (``env.unwrapped.config``) plus what the data decided (for config.json)."""
    base = env.unwrapped
    return {**base.config.to_dict(), "steps_per_episode": base.config.steps_per_episode,
            "num_classes": base.num_classes, "resolved_device": str(base.device)}


def eval_env_kwargs(config: dict[str, Any], train_env: gym.Env) -> dict[str, Any]:
    """The comparison env: the training kwargs in ``mode="test"``. Algorithms other than BatchDQN have
    networks sized for the training pools, so the test env keeps the training pool count and size."""
    kwargs = {**config["env_kwargs"], "mode": "test"}
    if config["algo"] != "BatchDQN":
        resolved = train_env.unwrapped.config
        kwargs.update(num_pools=resolved.num_pools, pool_size=resolved.pool_size)
    kwargs.update(config["eval_env_overrides"])
    return kwargs


# ---- the algorithm -----------------------------------------------------------------------------
def policy_and_kwargs(config: dict[str, Any], steps: int) -> tuple[str, dict[str, Any]]:
    """The policy alias and the full keyword arguments (train.py defaults < --algo-kwargs)."""
    algo = config["algo"]
    kwargs = {**algorithm_defaults(algo, steps), **config["algo_kwargs"]}
    if algo == "BatchDQN":
        return "RegionQPolicy", kwargs
    if not config["flat_policy"]:
        kwargs["policy_kwargs"] = {"features_extractor_class": RegionSetExtractor, **kwargs.get("policy_kwargs", {})}
    return "MultiInputPolicy", kwargs


def create_model(config: dict[str, Any], env: gym.Env, policy: str, kwargs: dict[str, Any]) -> BaseAlgorithm:
    return ALGORITHMS[config["algo"]](
        policy, env, seed=config["seed"], device=config["device"], verbose=config["verbose"],
        tensorboard_log=str(Path(config["out"]) / "tb"), **kwargs,
    )


def load_checkpoint(config: dict[str, Any], env: gym.Env, path: Path) -> BaseAlgorithm:
    """Rebuild the algorithm from a checkpoint, with its replay buffer when it has one."""
    model = ALGORITHMS[config["algo"]].load(path, env=env, device=config["device"])
    model.tensorboard_log = str(Path(config["out"]) / "tb")
    model.verbose = config["verbose"]
    # load() re-seeds everything with the run's seed: without this the resumed run would replay the
    # episodes (env seeds) and exploration draws of its start
    model.set_random_seed(config["seed"] + model.num_timesteps)
    if isinstance(model, OffPolicyAlgorithm) and replay_buffer_path(path).is_file():
        model.load_replay_buffer(replay_buffer_path(path))
    return model


def train(config: dict[str, Any], model: BaseAlgorithm, total_timesteps: int, eval_env: gym.Env | None = None) -> BaseAlgorithm:
    """Learn until ``model.num_timesteps`` reaches ``total_timesteps`` (continuing when resumed); with
    ``--eval-freq``, evaluate periodically on ``eval_env`` (a test-mode env)."""
    remaining = total_timesteps - model.num_timesteps
    if remaining <= 0:
        print(f"checkpoint already has {model.num_timesteps} >= {total_timesteps} timesteps: nothing to train")
        return model
    callbacks = []
    if config["checkpoint_freq"]:
        callbacks.append(AtomicCheckpointCallback(
            save_freq=max(config["checkpoint_freq"] // model.n_envs, 1),
            save_path=str(checkpoint_dir(Path(config["out"]))),
            name_prefix=config["algo"],
            save_replay_buffer=True,
            verbose=config["verbose"],
        ))
    if config["eval_freq"]:
        callbacks.append(periodic_evaluation(
            model, eval_env, Path(config["out"]), config["eval_freq"], config["eval_freq_episodes"], PERIODIC_EVAL_SEED,
            config["eval_patience"], resume=config["resume"], verbose=config["verbose"],
        ))
    try:
        model.learn(
            total_timesteps=remaining,
            callback=callbacks,
            tb_log_name=config["algo"],
            reset_num_timesteps=not config["resume"],
            progress_bar=config["progress_bar"],
        )
    except KeyboardInterrupt:
        path = save_checkpoint(model, checkpoint_dir(Path(config["out"])), config["algo"])
        print(f"\ninterrupted: saved {path}; continue with the same command plus --resume", file=sys.stderr)
        raise
    return model


# ---- comparison --------------------------------------------------------------------------------
def run_episodes(agent: Any, env: gym.Env, seeds: list[int]) -> dict[str, list[float]]:
    """One greedy episode per seed: final D_R mIoU, test mIoU and return of each."""
    episodes = [play_episode(agent, env, seed) for seed in seeds]
    return {
        "final_miou": [float(e.final_info["miou"]) for e in episodes],
        "test_miou": [float(e.final_info.get("test_miou", float("nan"))) for e in episodes],
        "return": [e.total_reward for e in episodes],
    }


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, population std and the values of one column of the comparison."""
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std()), "values": array.tolist()}


def compare(config: dict[str, Any], model_path: Path, train_env: gym.Env) -> dict[str, Any]:
    """Greedy trained agent vs the baselines, every policy on the same test-mode episode seeds."""
    kwargs = eval_env_kwargs(config, train_env)
    base_env = gym.make(config["env_id"], **kwargs)
    agent_env = SinglePoolWrapper(base_env) if config["algo"] == "DQN" else base_env
    seeds = [config["eval_seed"] + i for i in range(config["eval_episodes"])]
    policies = {config["algo"]: (make_agent(model_path, agent_env, seed=config["seed"], device=config["device"]), agent_env)}
    best = Path(config["out"]) / "best_model.zip"
    if config["eval_freq"] and best.is_file():  # --eval-freq's pick, chosen on the reward set of other episodes
        policies[f"{config['algo']} (best)"] = (make_agent(best, agent_env, seed=config["seed"], device=config["device"]), agent_env)
    for name in BASELINES_TO_COMPARE:
        policies[name] = (make_agent(name, base_env, seed=config["seed"]), base_env)
    rows = {}
    for name, (agent, env) in policies.items():
        started = time.perf_counter()
        episodes = run_episodes(agent, env, seeds)
        rows[name] = {key: summarize(values) for key, values in episodes.items()}
        rows[name]["seconds"] = time.perf_counter() - started
        print(f"compared {name}: {len(seeds)} episodes in {rows[name]['seconds']:.0f} s", flush=True)
    base_env.close()
    return {
        "env_id": config["env_id"],
        "algo": config["algo"],
        "eval_env_kwargs": kwargs,
        "eval_env": env_summary(agent_env),
        "episodes": len(seeds),
        "seeds": seeds,
        "deterministic": True,
        "policies": rows,
    }


def comparison_table(comparison: dict[str, Any]) -> str:
    """Markdown table; mIoU in % (x100, the reward's scale), mean ± std over the episodes."""
    lines = [
        f"{comparison['env_id']}, mode=test, {comparison['episodes']} episodes (seeds {comparison['seeds']}), "
        f"budget {comparison['eval_env']['budget']} regions",
        "",
        "| policy | final D_R mIoU (%) | test mIoU (%) | mean return |",
        "|---|---|---|---|",
    ]
    for name, row in comparison["policies"].items():
        cells = [f"{100 * row[k]['mean']:.2f} ± {100 * row[k]['std']:.2f}" for k in ("final_miou", "test_miou")]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {row['return']['mean']:.2f} |")
    return "\n".join(lines) + "\n"


# ---- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run train.py; returns the comparison dict (``{}`` with --no-compare or --eval-episodes 0)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = resolve_config(args)
    except ValueError as error:
        parser.error(str(error))
    warnings.filterwarnings("ignore", message="rich is experimental")  # SB3's rich progress bar
    if config["threads"]:
        import torch

        torch.set_num_threads(config["threads"])
    out = Path(config["out"])
    needs_buffer = issubclass(ALGORITHMS[config["algo"]], OffPolicyAlgorithm)
    resume_from = newest_checkpoint(out, config["algo"], needs_buffer) if config["resume"] else None
    if config["resume"] and resume_from is None:
        parser.error(
            f"--resume: no {config['algo']} checkpoint{' with its replay buffer' if needs_buffer else ''} "
            f"in {checkpoint_dir(out)} (train with --checkpoint-freq N to write some)"
        )
    try:
        env = make_env(config["env_id"], config["env_kwargs"], config["algo"])
    except (TypeError, ValueError, FileNotFoundError) as error:
        parser.error(f"--env-kwargs: cannot create {config['env_id']}: {error}")

    steps = env.unwrapped.config.steps_per_episode
    total = config["timesteps"] or (config["episodes"] * steps if config["episodes"] else DEFAULT_TIMESTEPS)
    policy, algo_kwargs = policy_and_kwargs(config, steps)
    out.mkdir(parents=True, exist_ok=True)
    env = Monitor(env, str(out / "monitor.csv"), info_keywords=("miou",), override_existing=not config["resume"])
    print(
        f"{config['algo']} on {config['env_id']} for {total} env steps ({total / steps:g} episodes of {steps}); "
        f"output in {out}\n(the first reset pre-trains the starting segmentation net unless it is cached)",
        flush=True,
    )
    try:
        if resume_from is not None:
            model = load_checkpoint(config, env, resume_from)
            print(f"resuming from {resume_from} at {model.num_timesteps} env steps", flush=True)
        else:
            model = create_model(config, env, policy, algo_kwargs)
    except TypeError as error:
        parser.error(f"--algo-kwargs: {error}")
    except ValueError as error:
        parser.error(f"cannot build {config['algo']} for {config['env_id']}: {error}")

    record = {
        **config,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "total_timesteps": total,
        "policy": policy,
        "algo_kwargs_used": algo_kwargs,
        "env_resolved": env_summary(env),
        "resumed_from": str(resume_from) if resume_from else None,
        "versions": {"segal": segal_env.__version__, "python": sys.version.split()[0]},
    }
    atomic_write_json(record, out / "config.json")

    eval_env = None
    if config["eval_freq"]:
        eval_env = Monitor(make_env(config["env_id"], eval_env_kwargs(config, env), config["algo"]),
                           str(out / "eval_monitor.csv"), info_keywords=("miou", "test_miou"),
                           override_existing=not config["resume"])
    started = time.perf_counter()
    model = train(config, model, total, eval_env)
    if eval_env is not None:
        eval_env.close()
    train_seconds = time.perf_counter() - started
    model_path = out / "model.zip"
    save_model(model, model_path)
    print(f"trained {model.num_timesteps} env steps in {train_seconds:.0f} s; saved {model_path}", flush=True)
    atomic_write_json({**record, "train_seconds": train_seconds, "num_timesteps": model.num_timesteps}, out / "config.json")

    if not config["compare"] or config["eval_episodes"] == 0:
        env.close()
        return {}
    comparison = compare(config, model_path, env)
    env.close()
    table = comparison_table(comparison)
    atomic_write_json(comparison, out / "comparison.json")
    atomic_write_text(table, out / "comparison.md")
    print("\n" + table, flush=True)
    return comparison


def cli(argv: list[str] | None = None) -> int:
    """The ``segal-train`` command: exit status 0 (usage errors exit 2 from argparse)."""
    main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
