"""A permutation-aware features extractor for the region-set observation, for SB3's own algorithms.

``MultiInputPolicy`` flattens each Dict entry, so a plain PPO/A2C must learn the same per-region
function separately for every row. ``RegionSetExtractor`` shares one MLP over the state rows (then
mean + max pooling: invariant to their order) and one MLP over the candidate rows; the per-candidate
embeddings stay in pool order, so the action head can still map candidate (k, n) to logit (k, n).

    PPO("MultiInputPolicy", env, policy_kwargs=dict(features_extractor_class=RegionSetExtractor))
"""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class RegionSetExtractor(BaseFeaturesExtractor):
    """Features = [mean & max of state-row embeddings | per-candidate embeddings (K*N*e, masked
    candidates zeroed) | action mask (K*N) | labeled_class_fraction (C)].

    :param observation_space: the env's Dict space ("state", "candidates", "action_mask",
        "labeled_class_fraction")
    :param state_hidden: hidden width of the per-state-row MLP
    :param state_embed_dim: per-state-row embedding width (pooled twice: mean and max)
    :param candidate_hidden: hidden width of the per-candidate MLP
    :param candidate_embed_dim: per-candidate embedding width
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        state_hidden: int = 64,
        state_embed_dim: int = 32,
        candidate_hidden: int = 64,
        candidate_embed_dim: int = 8,
    ) -> None:
        state_dim = observation_space["state"].shape[-1]
        num_pools, pool_size, candidate_dim = observation_space["candidates"].shape
        num_classes = observation_space["labeled_class_fraction"].shape[0]
        num_candidates = num_pools * pool_size
        features_dim = 2 * state_embed_dim + num_candidates * (candidate_embed_dim + 1) + num_classes
        super().__init__(observation_space, features_dim)
        self.state_net = nn.Sequential(
            nn.Linear(state_dim, state_hidden), nn.ReLU(), nn.Linear(state_hidden, state_embed_dim), nn.ReLU()
        )
        self.candidate_net = nn.Sequential(
            nn.Linear(candidate_dim, candidate_hidden), nn.ReLU(), nn.Linear(candidate_hidden, candidate_embed_dim)
        )

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        state = self.state_net(observations["state"])  # (B, S, e)
        mask = observations["action_mask"]  # (B, K, N)
        candidates = self.candidate_net(observations["candidates"]) * mask.unsqueeze(-1)
        return th.cat(
            [
                state.mean(dim=1),
                state.amax(dim=1),
                candidates.flatten(1),
                mask.flatten(1),
                observations["labeled_class_fraction"],
            ],
            dim=1,
        )
