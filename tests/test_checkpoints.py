"""Checkpoints (experiments.checkpoints): only the filled part of the newest replay buffer is kept, and a
resumed algorithm gets back exactly the buffer it had, at its full capacity."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_batch_dqn import small_model

from experiments import checkpoints
from experiments.checkpoints import load_replay_buffer, newest_checkpoint, replay_buffer_path, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_same_buffer(a, b) -> None:
    assert (a.pos, a.full, a.buffer_size) == (b.pos, b.full, b.buffer_size)
    for name in ("observations", "next_observations"):
        for key, stored in getattr(a, name).items():
            np.testing.assert_array_equal(getattr(b, name)[key], stored)
    for name in ("actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))


@pytest.mark.parametrize("steps", [12, 130])  # partly filled, and wrapped around (capacity 100)
def test_trimmed_buffer_round_trips_at_full_capacity(tmp_path, steps):
    model = small_model(seed=0)
    model.learn(steps)
    path = save_checkpoint(model, tmp_path, "BatchDQN")
    with open(replay_buffer_path(path), "rb") as handle:
        stored = pickle.load(handle)
    assert stored.actions.shape[0] == min(steps, 100)  # only the filled slots are on disk
    fresh = small_model(seed=1)
    load_replay_buffer(fresh, replay_buffer_path(path))
    assert_same_buffer(model.replay_buffer, fresh.replay_buffer)
    assert not hasattr(fresh.replay_buffer, "_segal_trimmed")
    fresh.learn(4, reset_num_timesteps=False)  # adds and samples past the saved part
    assert fresh.replay_buffer.pos == (steps + 4) % 100


def test_only_the_newest_buffer_stays_and_is_small(tmp_path):
    directory = tmp_path / "checkpoints"
    model = small_model(seed=0)
    sizes = []
    for _ in range(3):
        model.learn(5, reset_num_timesteps=False)
        path = save_checkpoint(model, directory, "BatchDQN")
        sizes.append(replay_buffer_path(path).stat().st_size)
    assert sorted(p.name for p in directory.iterdir()) == [
        "BatchDQN_10_steps.zip",
        "BatchDQN_15_steps.zip",
        "BatchDQN_5_steps.zip",
        "BatchDQN_replay_buffer_15_steps.pkl",
    ]
    assert newest_checkpoint(tmp_path, "BatchDQN", needs_buffer=True) == directory / "BatchDQN_15_steps.zip"
    whole = tmp_path / "sb3_whole_buffer.pkl"
    model.save_replay_buffer(whole)  # SB3's own: every preallocated slot
    assert sizes[0] < sizes[1] < sizes[2] < whole.stat().st_size / 3


def test_a_kill_while_checkpointing_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    directory = tmp_path / "checkpoints"
    model = small_model(seed=0)
    model.learn(5)
    save_checkpoint(model, directory, "BatchDQN")
    model.learn(5, reset_num_timesteps=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the new buffer, before the new model zip

    monkeypatch.setattr(checkpoints, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, directory, "BatchDQN")
    assert newest_checkpoint(tmp_path, "BatchDQN", needs_buffer=True) == directory / "BatchDQN_5_steps.zip"
    assert replay_buffer_path(directory / "BatchDQN_5_steps.zip").is_file()
