"""Cityscapes (fine annotations), official layout, mapped to the 19 evaluation classes.

The paper draws D_S, D_T, D_R and D_V from the official train split and reports on the official val
split, so the "test" split returned here IS the official val split; "val" is that same official val
split too (same tensors; kept so every source returns train/val/test; make_roles never uses it for
Cityscapes, whose D_R comes from train). Full-resolution images are 2048x1024: load with scale <= 0.25 unless
you have tens of GB of memory (2975 train images at full size are ~18 GB as uint8).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch
from torchvision.datasets import Cityscapes

from .base import SegDataset
from .io import IGNORE_INDEX, LabelMapping, list_images, load_pairs, pair_with_labels, require_dir

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
LAYOUT = (
    "root/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png and "
    "root/gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png (official Cityscapes layout)"
)
ROOT_ENV_VAR = "SEGAL_CITYSCAPES_ROOT"


def _train_id_classes() -> list:
    """The 19 evaluated classes, ordered by train id, from torchvision's class table."""
    evaluated = [c for c in Cityscapes.classes if 0 <= c.train_id < IGNORE_INDEX]
    return sorted(evaluated, key=lambda c: c.train_id)


CITYSCAPES_CLASSES = tuple(c.name for c in _train_id_classes())


def label_id_mapping() -> LabelMapping:
    """labelIds (0..33) -> train ids 0..18; every non-evaluated id -> 255."""
    lookup = torch.full((256,), IGNORE_INDEX, dtype=torch.uint8)
    allowed = torch.zeros(256, dtype=torch.bool)
    for c in Cityscapes.classes:
        if c.id < 0:  # 'license plate' has id -1: it never occurs in labelIds files
            continue
        allowed[c.id] = True
        if 0 <= c.train_id < IGNORE_INDEX:
            lookup[c.id] = c.train_id
    max_id = int(allowed.nonzero().max())
    return LabelMapping(
        lookup, allowed, f"Cityscapes labelIds 0..{max_id} (*_gtFine_labelIds.png, not color or trainIds files)"
    )


def _load_official_split(root: Path, split: str, scale: float, num_workers: int | None) -> SegDataset:
    image_root = require_dir(root / "leftImg8bit" / split, LAYOUT)
    label_root = require_dir(root / "gtFine" / split, LAYOUT)
    cities = sorted(p for p in image_root.iterdir() if p.is_dir())
    if not cities:
        raise ValueError(f"empty split: no city folders in {image_root}; expected layout: {LAYOUT}")
    images = [img for city in cities for img in list_images(city) if img.name.endswith(IMAGE_SUFFIX)]
    if not images:
        raise ValueError(f"empty split: no *{IMAGE_SUFFIX} files under {image_root}")
    label_for = {img: label_root / img.parent.name / (img.name[: -len(IMAGE_SUFFIX)] + LABEL_SUFFIX) for img in images}
    pairs = pair_with_labels(images, label_for)
    image_tensor, label_tensor = load_pairs(
        pairs, label_id_mapping(), scale, desc=f"Cityscapes {split}", num_workers=num_workers
    )
    return SegDataset(
        images=image_tensor,
        labels=label_tensor,
        names=[img.name for img in images],
        class_names=CITYSCAPES_CLASSES,
        ignore_index=IGNORE_INDEX,
        meta={"source": "cityscapes", "split": split, "official_split": split, "root": str(root), "scale": scale},
    )


def load_cityscapes(
    root: str | Path | None = None, scale: float = 1.0, num_workers: int | None = None
) -> dict[str, SegDataset]:
    """train = official train; test = official val (the paper's test set); val = the same official val."""
    if root is None:
        if not os.environ.get(ROOT_ENV_VAR):
            raise ValueError(f"Cityscapes needs root=... (or ${ROOT_ENV_VAR}) pointing at a folder with {LAYOUT}")
        root = os.environ[ROOT_ENV_VAR]
    root = Path(root)
    require_dir(root, LAYOUT)
    train = _load_official_split(root, "train", scale, num_workers)
    official_val = _load_official_split(root, "val", scale, num_workers)
    test = replace(official_val, meta={**official_val.meta, "split": "test"})  # shares the tensors
    return {"train": train, "val": official_val, "test": test}
