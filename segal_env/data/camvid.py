"""CamVid, 11-class SegNet version (the paper's proof-of-concept data set).

Layout: root/{train,val,test}/*.png with labels of the same file name in root/{split}annot/.
Labels hold class ids 0..10 and 11 = void; void is stored as IGNORE_INDEX (255) in memory so every
source shares one ignore value.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import SegDataset
from .io import IGNORE_INDEX, LabelMapping, list_images, load_pairs, pair_with_labels, require_dir

CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
CAMVID_VOID = 11
SPLITS = ("train", "val", "test")
LAYOUT = "root/{train,trainannot,val,valannot,test,testannot}/*.png (SegNet CamVid), label = same file name"
ROOT_ENV_VAR = "SEGAL_CAMVID_ROOT"


def default_root() -> Path:
    """$SEGAL_CAMVID_ROOT, else the shared copy next to the repository (<repo>/../shared/data/camvid)."""
    if os.environ.get(ROOT_ENV_VAR):
        return Path(os.environ[ROOT_ENV_VAR])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "camvid"


def load_camvid(
    root: str | Path | None = None, scale: float = 1.0, num_workers: int | None = None
) -> dict[str, SegDataset]:
    """All three SegNet splits, names sorted; void (11) becomes 255."""
    root = Path(root) if root is not None else default_root()
    require_dir(root, LAYOUT + f" (pass root=... or set ${ROOT_ENV_VAR})")
    mapping = LabelMapping.class_ids(len(CAMVID_CLASSES), void_value=CAMVID_VOID)
    splits = {}
    for split in SPLITS:
        image_dir = require_dir(root / split, LAYOUT)
        label_dir = require_dir(root / f"{split}annot", LAYOUT)
        images = list_images(image_dir)
        pairs = pair_with_labels(images, {img: label_dir / img.name for img in images})
        image_tensor, label_tensor = load_pairs(pairs, mapping, scale, desc=f"CamVid {split}", num_workers=num_workers)
        splits[split] = SegDataset(
            images=image_tensor,
            labels=label_tensor,
            names=[img.name for img in images],
            class_names=CAMVID_CLASSES,
            ignore_index=IGNORE_INDEX,
            meta={"source": "camvid", "split": split, "root": str(root), "scale": scale, "void_value": CAMVID_VOID},
        )
    return splits
