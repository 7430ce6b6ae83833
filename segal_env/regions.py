"""The fixed grid of labelling regions and the bookkeeping of which regions are labeled.

Everything is a reshape of the image tensor (no loops): an image [.., H, W] viewed as
[.., R, rh, rw] with R = rows * cols regions in row-major order. A region's global id is
``image_index * regions_per_image + region_index``.
"""

from __future__ import annotations

import torch


def _divisors_near(length: int, target: int, count: int = 3) -> list[int]:
    divisors = [d for d in range(1, length + 1) if length % d == 0]
    return sorted(divisors, key=lambda d: (abs(d - target), d))[:count]


class RegionGrid:
    """A grid of (height, width) regions that tiles an (H, W) image exactly."""

    def __init__(self, image_size: tuple[int, int], region_size: tuple[int, int]):
        height, width = (int(v) for v in image_size)
        rh, rw = (int(v) for v in region_size)
        if rh <= 0 or rw <= 0:
            raise ValueError(f"region_size must be positive (height, width), got {region_size}")
        if height % rh or width % rw:
            raise ValueError(
                f"region size (height={rh}, width={rw}) does not tile the {height}x{width} (HxW) image; "
                f"region heights that divide {height}: {_divisors_near(height, rh)}, "
                f"region widths that divide {width}: {_divisors_near(width, rw)}"
            )
        self.image_size = (height, width)
        self.region_size = (rh, rw)
        self.rows, self.cols = height // rh, width // rw
        self.per_image = self.rows * self.cols

    def __repr__(self) -> str:
        return f"RegionGrid(image_size={self.image_size}, region_size={self.region_size}, per_image={self.per_image})"

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """[..., H, W] -> [..., R, rh, rw] (a copy in region order)."""
        rh, rw = self.region_size
        lead = x.shape[:-2]
        x = x.reshape(*lead, self.rows, rh, self.cols, rw)
        x = x.movedim(-3, -2)  # [..., rows, cols, rh, rw]
        return x.reshape(*lead, self.per_image, rh, rw)

    def expand(self, per_region: torch.Tensor) -> torch.Tensor:
        """[..., R] values -> [..., H, W] map where each pixel takes its region's value."""
        rh, rw = self.region_size
        grid = per_region.reshape(*per_region.shape[:-1], self.rows, self.cols)
        return grid.repeat_interleave(rh, dim=-2).repeat_interleave(rw, dim=-1)

    def boxes(self, region_index: torch.Tensor) -> torch.Tensor:
        """Region indices (within an image) -> [..., 4] boxes (y0, x0, y1, x1) in pixels."""
        rh, rw = self.region_size
        y0 = torch.div(region_index, self.cols, rounding_mode="floor") * rh
        x0 = (region_index % self.cols) * rw
        return torch.stack([y0, x0, y0 + rh, x0 + rw], dim=-1)

    def class_histograms(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Pixels per class in every region, int64 [N, R, C]; values >= num_classes (ignore) are dropped."""
        regions = self.split(labels).reshape(labels.shape[0], self.per_image, -1).long()
        valid = regions < num_classes
        flat_ids = torch.arange(labels.shape[0] * self.per_image, device=labels.device).view(
            labels.shape[0], self.per_image, 1
        ) * num_classes + regions.clamp(max=num_classes - 1)
        counts = torch.zeros(labels.shape[0] * self.per_image * num_classes, dtype=torch.long, device=labels.device)
        counts.index_add_(0, flat_ids[valid], torch.ones_like(flat_ids[valid]))
        return counts.view(labels.shape[0], self.per_image, num_classes)


class LabeledRegions:
    """Which regions of a pool of images are labeled, as one bool tensor [num_images, R]."""

    def __init__(self, grid: RegionGrid, num_images: int, device: torch.device | str = "cpu"):
        self.grid = grid
        self.labeled = torch.zeros(num_images, grid.per_image, dtype=torch.bool, device=device)

    @property
    def count(self) -> int:
        return int(self.labeled.sum())

    def clear(self) -> None:
        self.labeled.zero_()

    def mark(self, region_ids: torch.Tensor) -> None:
        """Label regions given by global id; labelling one twice is a bug upstream, so it raises."""
        region_ids = torch.as_tensor(region_ids, dtype=torch.long, device=self.labeled.device)
        flat = self.labeled.view(-1)
        if region_ids.numel() != torch.unique(region_ids).numel():
            raise ValueError("the same region was chosen twice in one step")
        if bool(flat[region_ids].any()):
            raise ValueError(f"region(s) {region_ids[flat[region_ids]].tolist()} are already labeled")
        flat[region_ids] = True

    def unmark(self, region_ids: torch.Tensor) -> None:
        """Forget regions labeled for a trial (the reference fine-tuning of ``reward="gain_over_random"``)."""
        self.labeled.view(-1)[torch.as_tensor(region_ids, dtype=torch.long, device=self.labeled.device)] = False

    def unlabeled_ids(self) -> torch.Tensor:
        return torch.nonzero(~self.labeled.view(-1)).squeeze(1)

    def labeled_ids(self) -> torch.Tensor:
        return torch.nonzero(self.labeled.view(-1)).squeeze(1)

    def pixel_mask(self, image_index: torch.Tensor | None = None) -> torch.Tensor:
        """Bool [n, H, W]: True on pixels of labeled regions."""
        rows = self.labeled if image_index is None else self.labeled[image_index]
        return self.grid.expand(rows)

    def masked_labels(self, labels: torch.Tensor, image_index: torch.Tensor, ignore_index: int) -> torch.Tensor:
        """The training target of images: ground truth on labeled regions, ignore everywhere else."""
        mask = self.pixel_mask(image_index)
        return torch.where(mask, labels.long(), torch.full_like(labels, ignore_index, dtype=torch.long))
