"""Regenerate the README's picture of the environment: ``python docs/make_figures.py``.

Plays three steps of the entropy baseline on the default env (seed 0) and saves the env's
``rgb_array`` frame, enlarged 3x, to docs/figures/env_frame.png. The benchmark plot the README shows
is an output of ``bash benchmarks/camvid_cpu.sh`` (docs/camvid_cpu/miou_vs_regions.png).
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

import segal_env  # noqa: F401  (registers the ids)
from agents import make_agent
from segal_env.storage import atomic_write

OUT = Path(__file__).resolve().parent / "figures" / "env_frame.png"


def env_frame(steps: int = 3, seed: int = 0, zoom: int = 3) -> np.ndarray:
    """The frame after ``steps`` entropy picks: pools (labeled green, candidates yellow, last picks red) and a state image."""
    env = gym.make("SegAL-Synthetic-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    agent = make_agent("entropy", env)
    for _ in range(steps):
        obs, *_ = env.step(agent.predict(obs, deterministic=True)[0])
    return env.render().repeat(zoom, axis=0).repeat(zoom, axis=1)


if __name__ == "__main__":
    atomic_write(OUT, lambda tmp: Image.fromarray(env_frame()).save(tmp, format="PNG"))
    print(f"wrote {OUT}")
