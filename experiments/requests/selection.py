"""The request episode: the policy plays RequestEnv to the budget through the one episode loop
(experiments.episodes.play_episode); each chosen region is recorded with the policy's score and features."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from agents import BatchDQN
from agents.baselines import RegionScoreBaseline
from experiments.episodes import play_episode
from segal_env.request_env import RequestEnv


def candidate_scores(agent: Any, obs: dict[str, np.ndarray]) -> np.ndarray | None:
    """[K, N] scores the policy ranks candidates by (a baseline's score, BatchDQN's Q); None for others."""
    if isinstance(agent, RegionScoreBaseline):
        return np.asarray(agent.score(obs), dtype=float)
    if isinstance(agent, BatchDQN):
        agent.policy.set_training_mode(False)
        tensors, _ = agent.policy.obs_to_tensor(obs)
        with torch.no_grad():
            return agent.policy.q_net(tensors)[0].cpu().numpy().astype(float)
    return None


def describe_features(row: np.ndarray, env: RequestEnv, class_names: Sequence[str]) -> dict[str, Any]:
    """The features of one candidate a person can read: uncertainty scores and the predicted classes."""
    layout = env.layout
    histogram = row[layout.class_hist]
    top = np.argsort(-histogram)[:3]
    features = {
        "entropy_mean": float(row[layout.entropy_pool("mean")].mean()),
        "entropy_max": float(row[layout.entropy_pool("max")].max()),
        "predicted_classes": {class_names[i]: round(float(histogram[i]), 4) for i in top if histogram[i] > 0},
    }
    features.update({name: float(row[layout.extra(name)]) for name in layout.extras})
    return features


def choose_regions(env: RequestEnv, agent: Any, seed: int, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Play the policy to the budget; one record per requested region, in the order chosen."""
    picks: list[dict[str, Any]] = []

    def record(obs: dict, action: np.ndarray, reward: float, info: dict) -> None:
        scores = candidate_scores(agent, obs)
        step = picks[-1]["step"] + 1 if picks else 0
        for pool, (slot, region) in enumerate(zip(action.reshape(-1).tolist(), info["chosen"])):
            picks.append(
                {
                    "order": len(picks) + 1,
                    "step": step,
                    "pool": pool,
                    "region_id": int(region),
                    "score": None if scores is None else float(scores[pool, slot]),
                    "features": describe_features(obs["candidates"][pool, slot], env, class_names),
                }
            )

    play_episode(agent, env, seed, on_step=record)
    return picks


def pixel_box(region_id: int, env: RequestEnv, original: tuple[int, int], working: tuple[int, int]) -> dict[str, int]:
    """The region's box (x, y, width, height) in pixels of the original image."""
    y0, x0, y1, x1 = env.grid.boxes(torch.tensor(region_id % env.grid.per_image)).tolist()
    sy, sx = original[0] / working[0], original[1] / working[1]
    x, y = round(x0 * sx), round(y0 * sy)
    return {"x": x, "y": y, "width": round(x1 * sx) - x, "height": round(y1 * sy) - y}
