"""The one episode loop: a policy plays an env greedily, and the caller reads what it needs from the record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np


@dataclass
class Episode:
    """One played episode: the reset info, then per step the reward and the info (a caller that needs the
    actions or observations reads them in ``play_episode``'s ``on_step`` hook)."""

    seed: int
    start_info: dict
    rewards: list[float] = field(default_factory=list)
    infos: list[dict] = field(default_factory=list)

    @property
    def final_info(self) -> dict:
        return self.infos[-1] if self.infos else self.start_info

    @property
    def total_reward(self) -> float:
        return float(sum(self.rewards))

    @property
    def gain_points(self) -> float:
        """Reward-set mIoU gain over the episode, in points (= the return with the default reward)."""
        return 100.0 * (self.final_info["miou"] - self.start_info["miou"])

    @property
    def miou_trajectory(self) -> list[float]:
        """Reward-set mIoU at the start and after every step."""
        return [self.start_info["miou"], *(info["miou"] for info in self.infos)]


StepHook = Callable[[dict, np.ndarray, float, dict], None]


def play_episode(
    agent: Any, env: gym.Env, seed: int, max_steps: int | None = None, on_step: StepHook | None = None
) -> Episode:
    """Reset with ``seed`` and act with ``agent.predict(obs, deterministic=True)`` until the episode ends
    (or after ``max_steps`` steps). ``on_step(obs_before, action, reward, info)`` is called after every step.
    """
    obs, info = env.reset(seed=seed)
    episode = Episode(seed=seed, start_info=info)
    done = False
    while not done and (max_steps is None or len(episode.rewards) < max_steps):
        action, _ = agent.predict(obs, deterministic=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        episode.rewards.append(float(reward))
        episode.infos.append(info)
        if on_step is not None:
            on_step(obs, np.asarray(action), float(reward), info)
        obs, done = next_obs, bool(terminated or truncated)
    return episode
