"""The environments of a train.py run: the training env (one in this process, or ``--n-envs`` in
subprocesses of one torch thread each), the test-mode env of the comparison and of ``--eval-freq``, their
Monitor files (continued by ``--resume``) and what config.json records of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import SubprocVecEnv

from agents import SinglePoolWrapper
from experiments.training.config import RunConfig
from segal_env.rewards import REWARDS


def make_env(env_id: str, env_kwargs: dict[str, Any], algo: str) -> gym.Env:
    """``gym.make`` the env; for plain DQN, expose its single pool as a ``Discrete`` action."""
    env = gym.make(env_id, **env_kwargs)
    return SinglePoolWrapper(env) if algo == "DQN" else env


@dataclass(frozen=True)
class MonitoredEnvFactory:
    """Builds one monitored training env; picklable, so a SubprocVecEnv worker calls it in its own process
    (where it also sets the worker's torch threads and registers the SegAL ids)."""

    env_id: str
    env_kwargs: dict[str, Any]
    algo: str
    monitor_path: Path
    resume: bool
    threads: int

    def __call__(self) -> gym.Env:
        import segal_env  # noqa: F401  (registers the ids in a fresh worker process)

        torch.set_num_threads(self.threads)
        env = make_env(self.env_id, self.env_kwargs, self.algo)
        return monitored(env, self.monitor_path, ("miou",), self.resume)


def monitor_path(out: Path, index: int) -> Path:
    """Env 0 writes ``monitor.csv``, env i > 0 ``monitor_<i>.monitor.csv`` (SB3's ``load_results`` reads both)."""
    return out / ("monitor.csv" if index == 0 else f"monitor_{index}.monitor.csv")


def training_envs(config: RunConfig, probe: gym.Env) -> gym.Env | SubprocVecEnv:
    """The training env(s): ``probe`` itself, monitored, for one env; else ``config.n_envs`` monitored envs in
    subprocesses of ``config.threads`` torch threads. ``probe`` has been reset once by then, so the start
    network is in the cache and no two workers pre-train it at once."""
    if config.n_envs == 1:
        return monitored(probe, monitor_path(config.out, 0), ("miou",), config.resume)
    factories: list[Callable[[], gym.Env]] = [
        MonitoredEnvFactory(
            config.env_id,
            config.env_kwargs,
            config.algo,
            monitor_path(config.out, i),
            config.resume,
            config.threads,
        )
        for i in range(config.n_envs)
    ]
    return SubprocVecEnv(factories)


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
    networks sized for the training pools, so the test env keeps the training pool count and size. A reward read
    after a final training (``reward="final_gain"``) becomes the step's gain: no policy's choice reads the reward,
    the comparison scores test mIoU, and a final training per step would make a synthetic test step 18x dearer
    (``--eval-env-kwargs reward=final_gain`` keeps it, e.g. for ``--eval-freq``'s model selection)."""
    kwargs = {**config.env_kwargs, "mode": "test"}
    if REWARDS[kwargs.get("reward", "gain")].after_final_training:
        kwargs["reward"] = "gain"
    if config.algo != "BatchDQN":
        resolved = getattr(train_env.unwrapped, "config")
        kwargs.update(num_pools=resolved.num_pools, pool_size=resolved.pool_size)
    kwargs.update(config.eval_env_overrides)
    return kwargs


def comparison_env_kwargs(eval_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The comparison env: the test-mode ``eval_kwargs`` (``eval_env_kwargs``) scored as evaluate.py's ``--final-training`` scores a run, by the
    test mIoU after the preset's final training on the start set plus the episode's labels, unless the user sets
    ``final_training``. On the synthetic preset that training starts from the start network with fixed seeds, so
    the score is a function of the labels: the paired SE against margin over 3 episodes falls from 0.34-0.57 points
    (the episode's own fine-tuned network) to 0.15-0.25 (docs/train.md). ``--eval-freq`` keeps the cheaper
    ``eval_env_kwargs``: its model selection reads the reward set only."""
    return {"final_training": True, **eval_kwargs}
