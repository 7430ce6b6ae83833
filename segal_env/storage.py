"""Atomic writes: every checkpoint and results file goes to a temporary file first, then is renamed,
so an interrupted run never leaves a torn file behind and resumes from the last complete one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it onto ``path``.

    The temporary name ends with ``path``'s suffix, so writers that add a missing suffix (SB3's
    ``save`` adds ".zip") write exactly where they are told.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save, atomically."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return atomic_write(path, write)


def atomic_write_json(obj, path: str | os.PathLike) -> Path:
    """JSON with arrays as lists, paths as strings and classes as "module.QualName" (e.g. a policy's extractor)."""
    return atomic_write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", path)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
