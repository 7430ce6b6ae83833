"""Any segmentation data set on disk: images plus same-stem single-channel label PNGs.

Two layouts:
  root/images/*  + root/labels/<stem>.png                       -> split by seed (split_fractions)
  root/{train,val,test}/images/* + root/{split}/labels/<stem>.png -> splits as given; train is
      required, a missing val or test folder is drawn from train (its split_fractions share of train)
The user's ignore value is stored as IGNORE_INDEX (255) in memory, like every other source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .base import SegDataset
from .io import IGNORE_INDEX, LabelMapping, list_images, load_pairs, pair_with_labels, require_dir

SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # train, val, test when the folder has no split subfolders
LAYOUT = (
    "root/images/* with root/labels/<same stem>.png, or root/{train,val,test}/images/* with "
    "root/{split}/labels/<same stem>.png (train required)"
)


def image_label_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, label) paths of ``folder/images/*`` and ``folder/labels/<stem>.png``; a clear error for a wrong layout."""
    images = list_images(require_dir(folder / "images", LAYOUT))
    label_dir = require_dir(folder / "labels", LAYOUT)
    return pair_with_labels(images, {img: label_dir / f"{img.stem}.png" for img in images})


def _carve(
    pairs: list[tuple[Path, Path]], fractions: dict[str, float], seed: int, source: Path
) -> tuple[list[tuple[Path, Path]], dict[str, list[tuple[Path, Path]]]]:
    """Draw the listed splits out of ``pairs`` by seed; returns (what is left, carved splits), names sorted."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    carved, start = {}, 0
    for split, fraction in fractions.items():
        count = round(fraction * len(pairs))
        if count < 1:
            raise ValueError(
                f"empty split: {split} would get {fraction:.0%} of the {len(pairs)} images in {source} = 0 images; "
                f"add images, raise split_fractions or provide a {split}/ folder"
            )
        carved[split] = [pairs[i] for i in sorted(order[start : start + count])]
        start += count
    rest = [pairs[i] for i in sorted(order[start:])]
    if not rest:
        raise ValueError(f"empty split: no images left for train in {source}; lower split_fractions")
    return rest, carved


def load_folder(
    root: str | Path | None,
    class_names: Sequence[str] | None = None,
    ignore_index: int = IGNORE_INDEX,
    scale: float = 1.0,
    seed: int = 0,
    split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
    num_workers: int | None = None,
) -> dict[str, SegDataset]:
    """train/val/test from a plain folder; ``class_names`` fixes C, labels hold 0..C-1 or ``ignore_index``."""
    if root is None:
        raise ValueError(f"the folder source needs root=... pointing at {LAYOUT}")
    if not class_names:
        raise ValueError("the folder source needs class_names=[...] (one name per class id 0..C-1)")
    if len(split_fractions) != 3 or min(split_fractions) < 0 or sum(split_fractions) > 1:
        raise ValueError(
            f"split_fractions must be 3 non-negative numbers (train, val, test) summing to <= 1, got {split_fractions}"
        )
    root = Path(root)
    require_dir(root, LAYOUT)
    fraction_of = dict(zip(SPLITS, split_fractions))
    if (root / "train").is_dir():
        pairs = {split: image_label_pairs(root / split) for split in SPLITS if (root / split).is_dir()}
        missing = {split: fraction_of[split] for split in SPLITS if split not in pairs}
        pairs["train"], carved = _carve(pairs["train"], missing, seed, root / "train")
        pairs.update(carved)
        carved_by_seed = set(missing)
    else:
        everything = image_label_pairs(root)
        pairs = {}
        pairs["train"], carved = _carve(
            everything, {"val": fraction_of["val"], "test": fraction_of["test"]}, seed, root
        )
        pairs.update(carved)
        carved_by_seed = set(SPLITS)
    mapping = LabelMapping.class_ids(len(class_names), void_value=ignore_index)
    splits = {}
    for split in SPLITS:
        images, labels = load_pairs(pairs[split], mapping, scale, desc=f"{root.name} {split}", num_workers=num_workers)
        splits[split] = SegDataset(
            images=images,
            labels=labels,
            names=[img.name for img, _ in pairs[split]],
            class_names=tuple(class_names),
            ignore_index=IGNORE_INDEX,
            meta={
                "source": "folder",
                "split": split,
                "root": str(root),
                "scale": scale,
                "void_value": ignore_index,
                "carved_by_seed": split in carved_by_seed,
            },
        )
    return splits
