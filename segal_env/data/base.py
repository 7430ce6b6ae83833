"""The one in-memory dataset container every source (synthetic, CamVid, Cityscapes, folder) produces.

Images are kept as uint8 tensors so a whole CamVid split fits in a few hundred MB and can be
moved to the device once; labels are uint8 class indices with one ``ignore_index`` value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch


@dataclass
class SegDataset:
    """A split of a segmentation dataset held in memory.

    images: uint8 [N, 3, H, W]; labels: uint8 [N, H, W] with values in [0, num_classes) or ignore_index.
    """

    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    class_names: tuple[str, ...]
    ignore_index: int
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 [N, 3, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.uint8 or self.labels.ndim != 3:
            raise ValueError(f"labels must be uint8 [N, H, W], got {self.labels.dtype} {tuple(self.labels.shape)}")
        if self.images.shape[0] != self.labels.shape[0] or self.images.shape[2:] != self.labels.shape[1:]:
            raise ValueError(
                f"images {tuple(self.images.shape)} and labels {tuple(self.labels.shape)} do not match in count or size"
            )
        if len(self.names) != self.images.shape[0]:
            raise ValueError(f"{len(self.names)} names for {self.images.shape[0]} images")
        if self.images.shape[0] == 0:
            raise ValueError("empty split: no images")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "SegDataset":
        idx = torch.as_tensor(indices, dtype=torch.long)
        return SegDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            names=[self.names[i] for i in idx.tolist()],
            class_names=self.class_names,
            ignore_index=self.ignore_index,
            meta=dict(self.meta),
        )

    def select_names(self, names: Sequence[str]) -> "SegDataset":
        """Subset by file name; a clear error lists the names that are not in this split."""
        position = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in position]
        if missing:
            raise ValueError(
                f"{len(missing)} file(s) of the split list are not in this split, e.g. {missing[:3]}; "
                "check that the list belongs to this dataset"
            )
        return self.subset([position[n] for n in names])
