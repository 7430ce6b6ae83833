"""Checkpoints of SB3 algorithms that an interrupted run resumes from: model and replay buffer, written atomically.

File names are SB3's CheckpointCallback's (``<prefix>_<steps>_steps.zip`` and
``<prefix>_replay_buffer_<steps>_steps.pkl``), so tools that know SB3's layout find them.

What a run keeps on disk (docs/train.md, "What a run writes"): every checkpoint's model zip (small: the
networks and the optimizer), but only the newest replay buffer, the one ``--resume`` loads, and of it only
the filled part. SB3 pickles the whole preallocated buffer (``buffer_size`` env steps of Dict observations)
at every checkpoint, so a 60-step run used to leave 1.9 GB of buffers behind. ``load_replay_buffer``
restores a trimmed buffer to its full capacity.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import save_to_pkl

from segal_env.storage import atomic_write

TRIMMED = "_segal_trimmed"  # attribute of a trimmed buffer: (capacity, filled size, names of the trimmed arrays)

CHECKPOINT_RE = re.compile(r"^(?P<prefix>.+)_(?P<steps>\d+)_steps\.zip$")


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def replay_buffer_path(model_path: Path) -> Path:
    """CheckpointCallback's naming: <prefix>_<steps>_steps.zip -> <prefix>_replay_buffer_<steps>_steps.pkl."""
    match = CHECKPOINT_RE.match(model_path.name)
    if match is None:
        raise ValueError(f"{model_path.name} is not named like a checkpoint (<prefix>_<steps>_steps.zip)")
    return model_path.with_name(f"{match['prefix']}_replay_buffer_{match['steps']}_steps.pkl")


def newest_checkpoint(out: Path, prefix: str, needs_buffer: bool) -> Path | None:
    """The checkpoint named ``prefix`` with the most env steps (and, if needed, its replay buffer)."""
    found = []
    for path in checkpoint_dir(out).glob(f"{prefix}_*_steps.zip"):
        match = CHECKPOINT_RE.match(path.name)
        if match and match["prefix"] == prefix and (not needs_buffer or replay_buffer_path(path).is_file()):
            found.append((int(match["steps"]), path))
    return max(found)[1] if found else None


def save_model(model: BaseAlgorithm, path: Path) -> Path:
    """``model.save(path)``, atomically."""
    return atomic_write(path, model.save)


def _is_stored(value: Any, capacity: int) -> bool:
    """An array of the buffer's storage (one row per slot), or a dict of them (Dict observations)."""
    if isinstance(value, dict):
        return bool(value) and all(_is_stored(v, capacity) for v in value.values())
    return isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == capacity


def trimmed_buffer(buffer: ReplayBuffer) -> ReplayBuffer:
    """A shallow copy of ``buffer`` whose storage arrays hold only the filled slots (all of them once it
    has wrapped around); ``load_replay_buffer`` restores the capacity."""
    capacity = buffer.buffer_size
    filled = capacity if buffer.full else buffer.pos
    trimmed = copy.copy(buffer)
    names = []
    for name, value in vars(buffer).items():
        if _is_stored(value, capacity):
            names.append(name)
            setattr(
                trimmed, name, {k: v[:filled] for k, v in value.items()} if isinstance(value, dict) else value[:filled]
            )
    setattr(trimmed, TRIMMED, (capacity, filled, tuple(names)))
    return trimmed


def _untrim(buffer: ReplayBuffer) -> None:
    """Give a trimmed buffer its capacity back, in place (the empty slots are zeros, as SB3 allocates them)."""
    capacity, filled, names = getattr(buffer, TRIMMED)
    for name in names:
        value = getattr(buffer, name)

        def grow(array: np.ndarray) -> np.ndarray:
            full = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
            full[:filled] = array
            return full

        setattr(buffer, name, {k: grow(v) for k, v in value.items()} if isinstance(value, dict) else grow(value))
    delattr(buffer, TRIMMED)


def save_replay_buffer(model: OffPolicyAlgorithm, path: Path) -> Path:
    """The filled part of ``model``'s replay buffer, pickled atomically (a file SB3's own loader reads too,
    with a short buffer; ``load_replay_buffer`` restores its capacity)."""
    trimmed = trimmed_buffer(model.replay_buffer)
    return atomic_write(path, lambda tmp: save_to_pkl(tmp, trimmed, model.verbose))


def load_replay_buffer(model: OffPolicyAlgorithm, path: Path) -> None:
    """``model.load_replay_buffer(path)``, then the capacity back for a buffer saved by ``save_replay_buffer``."""
    model.load_replay_buffer(path)
    if hasattr(model.replay_buffer, TRIMMED):
        _untrim(model.replay_buffer)


def prune_checkpoints(directory: Path, prefix: str, keep: Path) -> list[Path]:
    """Delete the replay buffers of every checkpoint but ``keep`` (the model zips stay: they are small).

    Only after ``keep``'s model and buffer are both on disk, so a kill at any moment leaves a complete
    checkpoint to resume from. Returns the deleted files."""
    deleted = []
    for path in directory.glob(f"{prefix}_replay_buffer_*_steps.pkl"):
        if path != replay_buffer_path(keep):
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


def save_checkpoint(model: BaseAlgorithm, directory: Path, prefix: str) -> Path:
    """Replay buffer first, then the model: a model zip on disk always has its buffer beside it. Then the
    older buffers go (``prune_checkpoints``)."""
    path = directory / f"{prefix}_{model.num_timesteps}_steps.zip"
    buffered = isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None
    if buffered:
        save_replay_buffer(model, replay_buffer_path(path))  # type: ignore[arg-type]
    save_model(model, path)
    if buffered:
        prune_checkpoints(directory, prefix, path)
    return path


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's CheckpointCallback (same file names) with two changes: every file is written atomically,
    so an interrupted run never leaves a torn checkpoint for ``--resume``; and off-policy algorithms
    save at the end of the rollout, once the step's transition is in the replay buffer (SB3 calls
    ``on_step`` just before storing it, so its checkpoints lack their last transition)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = False

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self._pending = True
            if not isinstance(self.model, OffPolicyAlgorithm):
                self._save()
        return True

    def _on_rollout_end(self) -> None:
        self._save()

    def _save(self) -> None:
        if not self._pending:
            return
        self._pending = False
        path = save_checkpoint(self.model, Path(self.save_path), self.name_prefix)
        if self.verbose >= 2:
            print(f"saved checkpoint {path}")
