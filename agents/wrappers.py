"""Adapters that let SB3's stock algorithms run on the SegAL action space."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from agents.masking import sample_valid


def env_attribute(env: gym.Env | VecEnv, name: str, default: Any = ...) -> Any:
    """An attribute of the (first) env, through wrappers and VecEnvs; ``default`` where it has none (if given)."""
    if isinstance(env, VecEnv):  # a worker process would die of an AttributeError: ask first
        if default is ... or env.has_attr(name):
            return env.get_attr(name)[0]
        return default
    try:
        return env.get_wrapper_attr(name)
    except AttributeError:
        if default is ...:
            raise
        return default


class SinglePoolWrapper(gym.Wrapper):
    """Exposes a one-pool env (K = 1) with a ``Discrete(N)`` action, for SB3's plain ``DQN``.

    The observation is left unchanged (a Dict): SB3's DQN takes it with ``"MultiInputPolicy"``
    (optionally with ``RegionSetExtractor``). Plain DQN cannot mask its argmax, so a pick of a
    masked candidate is replaced by a uniform valid one (``invalid_action="random"``, flagged by
    ``info["invalid_action"]``) or rejected (``"raise"``, the env's ValueError).
    ``action_masks()`` stays available (length N) for MaskablePPO.

    :param env: a SegAL env created with one pool
    :param invalid_action: "random" or "raise"
    """

    def __init__(self, env: gym.Env, invalid_action: Literal["random", "raise"] = "random") -> None:
        super().__init__(env)
        action_space = env.action_space
        if not isinstance(action_space, spaces.MultiDiscrete) or action_space.shape != (1,):
            raise ValueError(
                f"SinglePoolWrapper needs exactly one candidate pool (K=1), got action space {action_space}; "
                "create the env with one pool or use BatchDQN / MaskablePPO for K > 1"
            )
        if invalid_action not in ("random", "raise"):
            raise ValueError(f"invalid_action must be 'random' or 'raise', got {invalid_action!r}")
        self.invalid_action = invalid_action
        self.action_space = spaces.Discrete(int(action_space.nvec[0]))
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        return super().reset(seed=seed, options=options)

    def action_masks(self) -> np.ndarray:
        return np.asarray(self.env.get_wrapper_attr("action_masks")(), dtype=bool)

    def step(self, action):
        pick = int(action)
        invalid = not self.action_masks()[pick] if 0 <= pick < self.action_space.n else True
        if invalid and self.invalid_action == "random":
            pick = int(sample_valid(self.action_masks(), self._rng))
        obs, reward, terminated, truncated, info = self.env.step(np.array([pick], dtype=np.int64))
        info["invalid_action"] = invalid
        return obs, reward, terminated, truncated, info
