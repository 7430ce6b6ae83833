"""Checkpoints of SB3 algorithms that an interrupted run resumes from: model and replay buffer, written atomically.

File names are SB3's CheckpointCallback's (``<prefix>_<steps>_steps.zip`` and
``<prefix>_replay_buffer_<steps>_steps.pkl``), so tools that know SB3's layout find them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from segal_env.storage import atomic_write

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


def save_checkpoint(model: BaseAlgorithm, directory: Path, prefix: str) -> Path:
    """Replay buffer first, then the model: a model zip on disk always has its buffer beside it."""
    path = directory / f"{prefix}_{model.num_timesteps}_steps.zip"
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        atomic_write(replay_buffer_path(path), model.save_replay_buffer)
    return save_model(model, path)


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
