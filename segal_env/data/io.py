"""Shared loading code for the file-based sources (CamVid, Cityscapes, folder).

Every source reduces to "a sorted list of (image file, label file) pairs plus a rule that turns raw
label values into class ids"; this module does the rest once: parallel decoding, label mapping and
validation, optional rescaling, and the error messages that name the offending file and the fix.
"""

from __future__ import annotations

import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from .base import SegDataset

# torchvision 0.29 deprecates its image codecs in favour of torchcodec (not a dependency here); they still
# work and are the fastest PNG decoder available, so silence that one notice instead of once per file.
TORCHVISION_CODEC_NOTICE = "The image decoding and encoding capabilities of TorchVision are deprecated"
warnings.filterwarnings("ignore", message=TORCHVISION_CODEC_NOTICE, category=DeprecationWarning)

IGNORE_INDEX = 255  # every source stores its void / ignore pixels as this value
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
PROGRESS_BAR_MIN_FILES = 50


def require_dir(path: Path, layout_hint: str) -> Path:
    """Fail early with the expected layout instead of a bare 'file not found' deep in a loader."""
    if not path.is_dir():
        raise FileNotFoundError(f"folder not found: {path}\nexpected layout: {layout_hint}")
    return path


def list_images(folder: Path) -> list[Path]:
    """Image files of one folder, sorted by name; an empty folder is an error (empty split)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(
            f"empty split: no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}; put the split's images there"
        )
    return files


def pair_with_labels(images: Sequence[Path], label_for: dict[Path, Path]) -> list[tuple[Path, Path]]:
    """Check every image has its label file; ``label_for`` maps image -> expected label path."""
    missing = [img for img in images if not label_for[img].is_file()]
    if missing:
        examples = ", ".join(f"{img} (expected {label_for[img]})" for img in missing[:3])
        raise FileNotFoundError(
            f"{len(missing)} image(s) without a label file, e.g. {examples}; add the label or remove the image"
        )
    return [(img, label_for[img]) for img in images]


@dataclass(frozen=True)
class LabelMapping:
    """How raw values in label files become class ids (or IGNORE_INDEX), and which raw values are legal.

    lookup: uint8 [256], raw value -> class id or IGNORE_INDEX; allowed: bool [256];
    expected: human description of the legal values, used in error messages.
    """

    lookup: torch.Tensor
    allowed: torch.Tensor
    expected: str

    @classmethod
    def class_ids(cls, num_classes: int, void_value: int = IGNORE_INDEX) -> "LabelMapping":
        """Labels that already hold class ids 0..C-1 plus one void value (mapped to IGNORE_INDEX)."""
        if not 1 <= num_classes <= IGNORE_INDEX:
            raise ValueError(f"num_classes must be in 1..{IGNORE_INDEX}, got {num_classes}")
        if not num_classes <= void_value <= 255:
            raise ValueError(f"void/ignore value {void_value} must be in {num_classes}..255 (not a class id)")
        lookup = torch.full((256,), IGNORE_INDEX, dtype=torch.uint8)
        lookup[:num_classes] = torch.arange(num_classes, dtype=torch.uint8)
        allowed = torch.zeros(256, dtype=torch.bool)
        allowed[:num_classes] = True
        allowed[void_value] = True
        return cls(lookup, allowed, f"class ids 0..{num_classes - 1} or {void_value} (void)")

    def apply(self, raw: torch.Tensor, path: Path) -> torch.Tensor:
        """Validate raw label values (any integer dtype) and map them; uint8 [H, W] out."""
        counts = torch.bincount(raw.reshape(-1).long(), minlength=256)
        present = counts.nonzero().reshape(-1)
        bad = [v for v in present.tolist() if v >= 256 or not bool(self.allowed[v])]
        if bad:
            raise ValueError(f"label {path} holds invalid value(s) {bad[:10]}; labels must be {self.expected}")
        return self.lookup[raw.long()]


def read_rgb(path: Path) -> torch.Tensor:
    """uint8 [3, H, W]; grey or RGBA files are converted so every image has three channels."""
    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError as err:
        raise ValueError(f"could not decode image {path}: {err}") from err


def read_label(path: Path) -> torch.Tensor:
    """Raw label values [H, W] (uint8, or uint16 for 16-bit PNGs); palette PNGs give their indices."""
    try:
        raw = decode_image(read_file(str(path)), mode=ImageReadMode.UNCHANGED)
    except RuntimeError as err:
        raise ValueError(f"could not decode label {path}: {err}") from err
    if raw.shape[0] != 1:
        raise ValueError(
            f"label {path} has {raw.shape[0]} channels; labels must be single-channel PNGs of class ids "
            "(greyscale or palette), not colour-coded images: convert colours to class ids first"
        )
    return raw[0]


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Output (H, W) of a rescale: round(H * scale), round(W * scale), at least 1 pixel."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear with antialias so downscaled images do not alias; works directly on uint8."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return TF.resize(image, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)


def resize_label(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest (pixel-centre) so a rescaled label only holds values of the original."""
    if tuple(label.shape[-2:]) == tuple(size):
        return label
    return TF.resize(label[None], list(size), interpolation=InterpolationMode.NEAREST_EXACT)[0]


def rescale_dataset(ds: SegDataset, scale: float) -> SegDataset:
    """Rescale a whole in-memory dataset (used for generated data; file sources rescale per file)."""
    size = scaled_size(*ds.image_size, scale)
    if size == ds.image_size:
        return ds
    return SegDataset(
        images=resize_image(ds.images, size),
        labels=resize_label(ds.labels, size),
        names=list(ds.names),
        class_names=ds.class_names,
        ignore_index=ds.ignore_index,
        meta={**ds.meta, "scale": scale},
    )


def _load_pair(image_path: Path, label_path: Path, mapping: LabelMapping, scale: float):
    image = read_rgb(image_path)
    raw = read_label(label_path)
    if tuple(image.shape[1:]) != tuple(raw.shape):
        raise ValueError(
            f"size mismatch: image {image_path} is {image.shape[2]}x{image.shape[1]} (WxH) but its label "
            f"{label_path} is {raw.shape[1]}x{raw.shape[0]}; image and label must have the same size"
        )
    label = mapping.apply(raw, label_path)
    size = scaled_size(int(raw.shape[0]), int(raw.shape[1]), scale)
    return resize_image(image, size), resize_label(label, size)


def load_pairs(
    pairs: Sequence[tuple[Path, Path]],
    mapping: LabelMapping,
    scale: float = 1.0,
    desc: str = "loading",
    num_workers: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode, validate, map and rescale all pairs in a thread pool (decoding releases the GIL).

    Returns stacked uint8 images [N, 3, H, W] and labels [N, H, W]; all images of a split must share one size.
    """
    if not pairs:
        raise ValueError(f"empty split: nothing to load for {desc}")
    workers = num_workers or min(8, os.cpu_count() or 1)
    show_bar = len(pairs) > PROGRESS_BAR_MIN_FILES and sys.stderr.isatty()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        loaded = pool.map(lambda pair: _load_pair(pair[0], pair[1], mapping, scale), pairs)
        try:
            images, labels = _stack(loaded, pairs, desc, show_bar)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # stop decoding the rest once one file is bad
            raise
    return images, labels


def _stack(loaded, pairs: Sequence[tuple[Path, Path]], desc: str, show_bar: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill preallocated tensors as results arrive, so a split never sits in memory twice."""
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    for i, (image, label) in enumerate(tqdm(loaded, total=len(pairs), desc=desc, disable=not show_bar)):
        if images is None:
            images = torch.empty((len(pairs), *image.shape), dtype=torch.uint8)
            labels = torch.empty((len(pairs), *label.shape), dtype=torch.uint8)
        elif tuple(image.shape) != tuple(images.shape[1:]):
            raise ValueError(
                f"image {pairs[i][0]} is {image.shape[2]}x{image.shape[1]} (WxH) after loading but "
                f"{pairs[0][0]} is {images.shape[3]}x{images.shape[2]}; all images of a split must share "
                "one size: resize them beforehand"
            )
        images[i] = image
        labels[i] = label
    return images, labels


def class_frequencies(ds: SegDataset) -> dict[str, float]:
    """Fraction of ALL pixels per class, plus 'void' for the ignore value: the numbers to compare with CamVid's."""
    counts = torch.bincount(ds.labels.reshape(-1).long(), minlength=256).double()
    total = counts.sum().item()
    freqs = {name: counts[i].item() / total for i, name in enumerate(ds.class_names)}
    freqs["void"] = counts[ds.ignore_index].item() / total
    return freqs
