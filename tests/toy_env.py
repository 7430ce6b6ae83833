"""A cheap stand-in for the SegAL environment with exactly its observation/action contract.

Every feature is random in [0, 1] except one "signal" column per candidate: the reward of a step is
the mean signal of the picked candidates (so a good pick is learnable from the features), and it is
reported like the real env as ``100 x`` an mIoU gain. Masked candidates get the highest signal, so
any policy that ignores the mask is caught by tests.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from segal_env.layout import FeatureLayout


class ToyRegionEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        num_classes: int = 3,
        state_regions: int = 6,
        num_pools: int = 2,
        pool_size: int = 4,
        episode_steps: int = 5,
        extra_features: tuple[str, ...] = ("entropy", "margin", "confidence", "bald"),
        signal: str = "entropy",
        mask_prob: float = 0.25,
        test_mode: bool = False,
    ) -> None:
        self.feature_layout = FeatureLayout(num_classes, tuple(extra_features))
        self.num_pools, self.pool_size, self.episode_steps = num_pools, pool_size, episode_steps
        self.mask_prob, self.test_mode = mask_prob, test_mode
        self.signal_column = self.feature_layout.extra(signal)
        layout = self.feature_layout
        self.observation_space = spaces.Dict(
            {
                "state": spaces.Box(0.0, 1.0, (state_regions, layout.state_dim), np.float32),
                "candidates": spaces.Box(0.0, 1.0, (num_pools, pool_size, layout.candidate_dim), np.float32),
                "action_mask": spaces.Box(0.0, 1.0, (num_pools, pool_size), np.float32),
                "labeled_class_fraction": spaces.Box(0.0, 1.0, (num_classes,), np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([pool_size] * num_pools)

    def _draw_candidates(self) -> None:
        rng, layout = self.np_random, self.feature_layout
        shape = (self.num_pools, self.pool_size)
        cand = rng.random((*shape, layout.candidate_dim), dtype=np.float32)
        cand[..., layout.class_hist] = rng.dirichlet(np.ones(layout.num_classes), shape)
        for kl in (layout.kl_labeled, layout.kl_candidates):
            cand[..., kl] = rng.dirichlet(np.ones(kl.stop - kl.start), shape)
        if "entropy" in layout.extras:  # like real data: the entropy maps average to the entropy feature
            entropy = cand[..., layout.extra("entropy"), None]
            maps = slice(layout.entropy_pool("min").start, layout.entropy_pool("max").stop)
            cand[..., maps] = np.clip(entropy + 0.1 * rng.standard_normal((*shape, maps.stop - maps.start)), 0, 1)
        mask = rng.random(shape) >= self.mask_prob
        mask[np.arange(self.num_pools), rng.integers(self.pool_size, size=self.num_pools)] = True
        cand[..., self.signal_column] = np.where(mask, cand[..., self.signal_column], 1.0)
        self._candidates, self._mask = cand, mask

    def _obs(self) -> dict[str, np.ndarray]:
        state = self.np_random.random(self.observation_space["state"].shape, dtype=np.float32)
        total = self._labeled.sum()
        fraction = self._labeled / total if total > 0 else np.zeros_like(self._labeled)
        return {
            "state": state,
            "candidates": self._candidates.copy(),
            "action_mask": self._mask.astype(np.float32),
            "labeled_class_fraction": fraction.astype(np.float32),
        }

    def _info(self) -> dict[str, Any]:
        c = self.feature_layout.num_classes
        return {
            "miou": self._miou,
            "per_class_iou": [self._miou] * c,
            "regions_labeled": self._regions,
            "labeled_pixels_per_class": self._labeled.tolist(),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._steps, self._regions, self._miou = 0, 0, 0.2
        self._labeled = np.zeros(self.feature_layout.num_classes)
        self._draw_candidates()
        return self._obs(), self._info()

    def action_masks(self) -> np.ndarray:
        return self._mask.reshape(-1).copy()

    def step(self, action):
        action = np.asarray(action)
        if action.shape != (self.num_pools,) or not np.issubdtype(action.dtype, np.integer):
            raise ValueError(f"action must be {self.num_pools} integers, got {action!r}")
        if (action < 0).any() or (action >= self.pool_size).any():
            raise ValueError(f"action out of range [0, {self.pool_size}): {action}")
        pools = np.arange(self.num_pools)
        if not self._mask[pools, action].all():
            raise ValueError(f"action {action} picks a masked candidate")
        picked = self._candidates[pools, action]
        reward = float(picked[:, self.signal_column].mean())
        self._miou += reward / 100.0
        self._labeled += 100.0 * picked[:, self.feature_layout.class_hist].sum(0)
        self._regions += self.num_pools
        self._steps += 1
        terminated = self._steps >= self.episode_steps
        self._draw_candidates()
        info = self._info()
        if terminated and self.test_mode:
            info["test_miou"] = self._miou
        return self._obs(), reward, terminated, False, info
