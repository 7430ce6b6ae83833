"""The algorithm of a train.py run: its defaults for short runs, building or resuming it, and the learning loop
(checkpoints, periodic evaluation, Ctrl-C)."""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents import ALGORITHMS, RegionSetExtractor
from agents.loading import feature_layout
from experiments.checkpoints import (
    AtomicCheckpointCallback,
    checkpoint_dir,
    load_replay_buffer,
    replay_buffer_path,
    save_checkpoint,
)
from experiments.evaluation import periodic_evaluation
from experiments.training.config import PERIODIC_EVAL_SEED, RunConfig


def default_prior(env: Any) -> str | None:
    """The rule train.py's BatchDQN starts from: margin_balance (margin x expected rarity) wherever the env computes
    margin's score (a candidate feature); None (learn from scratch) otherwise. Started from it, the agent was level
    with margin, the best single rule, on both presets, ahead of entropy and BALD on CamVid at every budget, and
    asked for more rare-class labels than with margin's ranking (docs/dqn.md)."""
    return "margin_balance" if "margin" in feature_layout(env).extras else None


def algorithm_defaults(algo: str, steps_per_episode: int, n_envs: int = 1, prior: str | None = None) -> dict[str, Any]:
    """train.py's defaults per algorithm, sized for short runs of a few hundred env steps (SB3's own
    defaults assume millions: PPO's 2048-step rollouts, DQN's 1M-transition replay buffer of Dict
    observations would not fit in memory), and independent of ``n_envs``: a rollout holds two episodes in
    all, and off-policy learners make one gradient step per env step. BatchDQN starts from ``prior``'s
    ranking (``default_prior``): Q = V + A + the rule's score, the rule kept out of the TD loss, which was level
    with margin where the plain network was 0.5-1 point below it (docs/dqn.md). ``--algo-kwargs`` overrides
    any of them (``policy_kwargs={"prior": null}``: from scratch)."""
    if algo in ("PPO", "MaskablePPO"):
        n_steps = max(2 * steps_per_episode // n_envs, 1)
        return {"n_steps": n_steps, "batch_size": n_steps * n_envs, "n_epochs": 4}
    if algo == "A2C":
        return {"n_steps": max(steps_per_episode // n_envs, 1)}
    if algo == "DQN":
        return {
            "gradient_steps": n_envs,
            "buffer_size": 1000,
            "learning_starts": steps_per_episode,
            "batch_size": 16,
            "train_freq": 1,
            "target_update_interval": 5 * steps_per_episode,
            "exploration_fraction": 0.5,
        }
    # BatchDQN: its own defaults, measured for this env (docs/dqn.md)
    defaults: dict[str, Any] = {"gradient_steps": n_envs} if n_envs > 1 else {}
    if prior is not None:
        defaults["policy_kwargs"] = {"prior": prior}
    return defaults


def policy_and_kwargs(
    algo: str, algo_kwargs: dict[str, Any], flat_policy: bool, steps: int, n_envs: int = 1, prior: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The policy alias and the full keyword arguments (train.py defaults < --algo-kwargs; ``policy_kwargs``
    merged key by key)."""
    defaults = algorithm_defaults(algo, steps, n_envs, prior)
    kwargs = {**defaults, **algo_kwargs}
    if "policy_kwargs" in defaults and "policy_kwargs" in algo_kwargs:
        kwargs["policy_kwargs"] = {**defaults["policy_kwargs"], **(algo_kwargs["policy_kwargs"] or {})}
    if algo == "BatchDQN":
        return "RegionQPolicy", kwargs
    if not flat_policy:
        kwargs["policy_kwargs"] = {"features_extractor_class": RegionSetExtractor, **kwargs.get("policy_kwargs", {})}
    return "MultiInputPolicy", kwargs


def create_model(config: RunConfig, env: gym.Env | VecEnv, policy: str, kwargs: dict[str, Any]) -> BaseAlgorithm:
    return ALGORITHMS[config.algo](
        policy,
        env,
        seed=config.seed,
        device=config.device,
        verbose=config.verbose,
        tensorboard_log=str(config.tensorboard_dir),
        **kwargs,
    )


def load_checkpoint(config: RunConfig, env: gym.Env | VecEnv, path) -> BaseAlgorithm:
    """Rebuild the algorithm from a checkpoint, with its replay buffer when it has one."""
    model = ALGORITHMS[config.algo].load(path, env=env, device=config.device)
    model.tensorboard_log = str(config.tensorboard_dir)
    model.verbose = config.verbose
    # load() re-seeds everything with the run's seed: without this the resumed run would replay the
    # episodes (env seeds) and exploration draws of its start
    model.set_random_seed(config.seed + model.num_timesteps)
    if isinstance(model, OffPolicyAlgorithm) and replay_buffer_path(path).is_file():
        load_replay_buffer(model, replay_buffer_path(path))
    return model


def train(
    config: RunConfig, model: BaseAlgorithm, total_timesteps: int, eval_env: gym.Env | None = None
) -> BaseAlgorithm:
    """Learn until ``model.num_timesteps`` reaches ``total_timesteps`` (continuing when resumed); with
    ``--eval-freq``, evaluate periodically on ``eval_env`` (a test-mode env)."""
    remaining = total_timesteps - model.num_timesteps
    if remaining <= 0:
        print(f"checkpoint already has {model.num_timesteps} >= {total_timesteps} timesteps: nothing to train")
        return model
    callbacks: list[BaseCallback] = []
    if config.checkpoint_freq:
        callbacks.append(
            AtomicCheckpointCallback(
                save_freq=max(config.checkpoint_freq // model.n_envs, 1),
                save_path=str(checkpoint_dir(config.out)),
                name_prefix=config.algo,
                save_replay_buffer=True,
                verbose=config.verbose,
            )
        )
    if config.eval_freq:
        callbacks.append(
            periodic_evaluation(
                model,
                eval_env,
                config.out,
                config.eval_freq,
                config.eval_freq_episodes,
                PERIODIC_EVAL_SEED,
                config.eval_patience,
                resume=config.resume,
                verbose=config.verbose,
            )
        )
    try:
        model.learn(
            total_timesteps=remaining,
            callback=callbacks,
            tb_log_name=config.algo,
            reset_num_timesteps=not config.resume,
            progress_bar=config.progress_bar,
        )
    except KeyboardInterrupt:
        path = save_checkpoint(model, checkpoint_dir(config.out), config.algo)
        print(f"\ninterrupted: saved {path}; continue with the same command plus --resume", file=sys.stderr)
        raise
    return model
