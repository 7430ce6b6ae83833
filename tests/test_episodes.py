"""The one episode loop (experiments.episodes) that train.py, the benchmark and the scripts share."""

from __future__ import annotations

import numpy as np

from agents import RandomBaseline
from experiments.episodes import play_episode

from toy_env import ToyRegionEnv


def test_an_episode_records_every_step_and_its_hook_sees_them():
    env = ToyRegionEnv(episode_steps=5)
    seen = []
    episode = play_episode(
        RandomBaseline(env.feature_layout, seed=0),
        env,
        seed=4,
        on_step=lambda obs, action, reward, info: seen.append((obs["action_mask"], action, reward)),
    )
    assert len(episode.rewards) == len(episode.infos) == len(seen) == 5
    assert episode.total_reward == sum(reward for _, _, reward in seen)
    assert all(mask[np.arange(len(action)), action].all() for mask, action, _ in seen)  # hook gets the obs acted on
    assert episode.miou_trajectory[0] == episode.start_info["miou"] and len(episode.miou_trajectory) == 6
    assert episode.gain_points == 100.0 * (episode.infos[-1]["miou"] - episode.start_info["miou"])


def test_max_steps_stops_early_and_the_same_seed_replays_the_episode():
    env = ToyRegionEnv(episode_steps=5)
    actions: dict[str, list] = {"short": [], "again": []}
    short = play_episode(
        RandomBaseline(env.feature_layout, seed=0),
        env,
        seed=1,
        max_steps=2,
        on_step=lambda obs, action, reward, info: actions["short"].append(action),
    )
    again = play_episode(
        RandomBaseline(env.feature_layout, seed=0),
        env,
        seed=1,
        max_steps=2,
        on_step=lambda obs, action, reward, info: actions["again"].append(action),
    )
    assert len(short.rewards) == 2 and short.rewards == again.rewards and len(actions["short"]) == 2
    assert all(np.array_equal(a, b) for a, b in zip(actions["short"], actions["again"]))
