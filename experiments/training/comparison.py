"""After training: the trained agent (greedy) against the baselines on the same held-out test episodes, and
the environments train.py builds (training env, test-mode comparison / evaluation env)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor

from agents import SinglePoolWrapper, make_agent
from experiments.benchmark.aggregate import mean_std
from experiments.episodes import play_episode
from experiments.training.config import RunConfig

BASELINES_TO_COMPARE = ("random", "entropy")


def make_env(env_id: str, env_kwargs: dict[str, Any], algo: str) -> gym.Env:
    """``gym.make`` the env; for plain DQN, expose its single pool as a ``Discrete`` action."""
    env = gym.make(env_id, **env_kwargs)
    return SinglePoolWrapper(env) if algo == "DQN" else env


def monitored(env: gym.Env, path: Path, info_keywords: tuple[str, ...], resume: bool) -> Monitor:
    """SB3's Monitor writing ``path``. A resumed run appends to the file and keeps its time axis: the ``t``
    column counts from the ``t_start`` in the file's header, as SB3's ``load_results`` reads it (SB3 alone
    would restart it from zero under the old header). Without a readable file a resume starts a new one."""
    start = _monitor_start(path) if resume else None
    monitor = Monitor(env, str(path), info_keywords=info_keywords, override_existing=start is None)
    if start is not None:
        monitor.t_start = start
    return monitor


def _monitor_start(path: Path) -> float | None:
    """``t_start`` of an existing monitor file's header line (``#{"t_start": ..., ...}``), or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
        return float(json.loads(first[1:])["t_start"]) if first.startswith("#") else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def env_summary(env: gym.Env) -> dict[str, Any]:
    """The env's resolved settings (``env.unwrapped.config``) plus what the data decided (for config.json)."""
    base: Any = env.unwrapped
    return {
        **base.config.to_dict(),
        "steps_per_episode": base.config.steps_per_episode,
        "num_classes": base.num_classes,
        "resolved_device": str(base.device),
    }


def eval_env_kwargs(config: RunConfig, train_env: gym.Env) -> dict[str, Any]:
    """The comparison env: the training kwargs in ``mode="test"``. Algorithms other than BatchDQN have
    networks sized for the training pools, so the test env keeps the training pool count and size."""
    kwargs = {**config.env_kwargs, "mode": "test"}
    if config.algo != "BatchDQN":
        resolved = getattr(train_env.unwrapped, "config")
        kwargs.update(num_pools=resolved.num_pools, pool_size=resolved.pool_size)
    kwargs.update(config.eval_env_overrides)
    return kwargs


def run_episodes(agent: Any, env: gym.Env, seeds: list[int]) -> dict[str, list[float]]:
    """One greedy episode per seed: final D_R mIoU, test mIoU and return of each."""
    episodes = [play_episode(agent, env, seed) for seed in seeds]
    return {
        "final_miou": [float(e.final_info["miou"]) for e in episodes],
        "test_miou": [float(e.final_info.get("test_miou", float("nan"))) for e in episodes],
        "return": [e.total_reward for e in episodes],
    }


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, sample std (ddof=1, the benchmark's ``mean_std``; 0 for one episode) and the values of one column."""
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "values": [float(v) for v in values]}


def compare(config: RunConfig, model_path: Path, train_env: gym.Env) -> dict[str, Any]:
    """Greedy trained agent vs the baselines, every policy on the same test-mode episode seeds."""
    kwargs = eval_env_kwargs(config, train_env)
    base_env = gym.make(config.env_id, **kwargs)
    agent_env = SinglePoolWrapper(base_env) if config.algo == "DQN" else base_env
    seeds = [config.eval_seed + i for i in range(config.eval_episodes)]
    policies = {config.algo: (make_agent(model_path, agent_env, seed=config.seed, device=config.device), agent_env)}
    best = config.out / "best_model.zip"
    if config.eval_freq and best.is_file():  # --eval-freq's pick, chosen on the reward set of other episodes
        policies[f"{config.algo} (best)"] = (
            make_agent(best, agent_env, seed=config.seed, device=config.device),
            agent_env,
        )
    for name in BASELINES_TO_COMPARE:
        policies[name] = (make_agent(name, base_env, seed=config.seed), base_env)
    rows: dict[str, dict[str, Any]] = {}
    for name, (agent, env) in policies.items():
        started = time.perf_counter()
        episodes = run_episodes(agent, env, seeds)
        rows[name] = {key: summarize(values) for key, values in episodes.items()}
        rows[name]["seconds"] = time.perf_counter() - started
        print(f"compared {name}: {len(seeds)} episodes in {rows[name]['seconds']:.0f} s", flush=True)
    base_env.close()
    return {
        "env_id": config.env_id,
        "algo": config.algo,
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
