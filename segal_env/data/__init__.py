"""Data layer: load a data set's train/val/test splits, then carve the paper's AL roles out of them.

    splits = load_splits("camvid", scale=0.5)
    roles = make_roles("camvid", splits, roles_file="../shared/data/camvid/ralis_splits.json")

Every source yields SegDataset splits with uint8 images [N, 3, H, W], uint8 labels [N, H, W] and
void / ignore pixels stored as 255. See docs/datasets.md for layouts, roles and class statistics.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .base import SegDataset
from .camvid import CAMVID_CLASSES, load_camvid
from .cityscapes import CITYSCAPES_CLASSES, load_cityscapes
from .folder import load_folder
from .io import IGNORE_INDEX, class_frequencies
from .roles import DATASET_NAMES, ALRoles, make_roles
from .synthetic import SYNTHETIC_CLASSES, generate_synthetic, load_synthetic


def load_splits(
    name: str, root: str | Path | None = None, scale: float = 1.0, seed: int = 0, **source_kwargs: Any
) -> dict[str, SegDataset]:
    """Splits "train", "val", "test" of one source (for cityscapes, test = val = the official val split).

    ``seed`` drives generation (synthetic) and the split of a folder without split subfolders;
    ``source_kwargs`` go to the source (synthetic: height, width, n_train, n_val, n_test;
    folder: class_names, ignore_index, split_fractions; file sources: num_workers).
    """
    if name == "synthetic":
        if root is not None:
            raise ValueError("the synthetic source is generated, it has no root; leave root=None")
        return load_synthetic(scale=scale, seed=seed, **source_kwargs)
    if name == "camvid":
        return load_camvid(root, scale=scale, **source_kwargs)
    if name == "cityscapes":
        return load_cityscapes(root, scale=scale, **source_kwargs)
    if name == "folder":
        return load_folder(root, scale=scale, seed=seed, **source_kwargs)
    raise ValueError(f"unknown data set {name!r}; valid names: {list(DATASET_NAMES)}")


def cached_roles(
    name: str,
    root: str | None,
    scale: float,
    seed: int,
    source_kwargs: dict | None,
    roles_file: str | None,
    sizes: dict | None,
) -> ALRoles:
    """``make_roles(load_splits(...))``, loaded once per process: env checkers and vector envs re-create envs often."""
    return _cached_roles(
        name,
        root,
        float(scale),
        int(seed),
        json.dumps(source_kwargs or {}, sort_keys=True),
        roles_file,
        json.dumps(sizes, sort_keys=True) if sizes else "",
    )


@lru_cache(maxsize=4)
def _cached_roles(name: str, root, scale: float, seed: int, source_kwargs: str, roles_file, sizes: str) -> ALRoles:
    splits = load_splits(name, root=root, scale=scale, seed=seed, **json.loads(source_kwargs))
    return make_roles(name, splits, roles_file=roles_file, seed=seed, sizes=json.loads(sizes) if sizes else None)


__all__ = [
    "ALRoles",
    "CAMVID_CLASSES",
    "CITYSCAPES_CLASSES",
    "DATASET_NAMES",
    "IGNORE_INDEX",
    "SYNTHETIC_CLASSES",
    "SegDataset",
    "cached_roles",
    "class_frequencies",
    "generate_synthetic",
    "load_splits",
    "make_roles",
]
