"""What the segmentation network trains on during an episode: the step's fine-tuning and the final training.

A practitioner trains on everything they have labeled: the regions acquired so far *and* the fully
labeled start set they began with. ``LabeledData`` turns both into the trainer's samples (images,
targets that are ignore outside labeled pixels, and per sample its image and the box a crop must
contain); the schedules below choose which samples each step trains on (docs/al_dynamics.md).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from .regions import LabeledRegions, RegionGrid
from .runtime import seeded_torch
from .trainer import OptimConfig, SegTrainer, anywhere_boxes, warmup_cosine, whole_image_boxes

FINETUNE_SCHEDULES = {
    "step": "one epoch over the regions labeled at this step (the paper)",
    "replay": "this step's regions plus as many samples drawn at random from the earlier labeled regions and the "
    "start set's images (constant cost; keeps what the start network learned)",
    "all": "one epoch over every labeled region (cost grows with the budget)",
}

# images uint8 [n, 3, H, W], targets long [n, H, W], sample -> image index [m], sample -> box [m, 4]
Samples = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class LabeledData:
    """The acquired regions of the pool and the start set's images, as training samples."""

    def __init__(
        self,
        grid: RegionGrid,
        labeled: LabeledRegions,
        pool_images: torch.Tensor,
        pool_labels: torch.Tensor,
        start_images: torch.Tensor,
        start_labels: torch.Tensor,
        crop_size: tuple[int, int],
        ignore_index: int,
    ):
        self.grid, self.labeled, self.crop_size, self.ignore_index = grid, labeled, crop_size, ignore_index
        self.pool_images, self.pool_labels = pool_images, pool_labels
        self.start_images, self.start_labels = start_images, start_labels

    @property
    def whole_images(self) -> bool:
        """Crops as large as the images: one sample per image carries all its labeled regions."""
        return self.crop_size == tuple(self.pool_images.shape[-2:])

    def regions(self, region_ids: torch.Tensor) -> Samples:
        """Samples for labeled regions: their distinct images with masked targets, each region's image slot and box."""
        image_ids = torch.div(region_ids, self.grid.per_image, rounding_mode="floor")
        unique, position = torch.unique(image_ids, return_inverse=True)
        targets = self.labeled.masked_labels(self.pool_labels[unique], unique, self.ignore_index)
        if self.whole_images:
            boxes = whole_image_boxes(unique.numel(), self.crop_size)
            return self.pool_images[unique], targets, torch.arange(unique.numel()), boxes
        boxes = self.grid.boxes(region_ids % self.grid.per_image)
        return self.pool_images[unique], targets, position.cpu(), boxes.cpu()

    def with_start_images(self, samples: Samples, start_ids: torch.Tensor) -> Samples:
        """Append fully labeled start-set images (whole, or cropped anywhere) to region samples."""
        if start_ids.numel() == 0:
            return samples
        images, targets, position, boxes = samples
        size = tuple(self.start_images.shape[-2:])
        count = start_ids.numel()
        extra_boxes = whole_image_boxes(count, size) if self.crop_size == size else anywhere_boxes(count, size)
        return (
            torch.cat([images, self.start_images[start_ids]]),
            torch.cat([targets, self.start_labels[start_ids].to(targets.dtype)]),
            torch.cat([position, torch.arange(count) + images.shape[0]]),
            torch.cat([boxes, extra_boxes]),
        )

    def everything(self) -> Samples:
        """Every acquired region and every start image: the test-mode final training's set."""
        all_start = torch.arange(self.start_images.shape[0], device=self.start_images.device)
        return self.with_start_images(self.regions(self.labeled.labeled_ids()), all_start)

    def replay_pick(self, schedule: str, rng: np.random.Generator, n_earlier: int, n_new: int) -> np.ndarray | None:
        """Which earlier regions (ids < n_earlier) and start images (the rest) "replay" retrains on; drawn from ``rng``."""
        if schedule != "replay":
            return None
        n_start = self.start_images.shape[0]
        return rng.choice(n_earlier + n_start, min(n_earlier + n_start, n_new), replace=False)

    def step_samples(self, schedule: str, chosen: torch.Tensor, earlier: torch.Tensor, pick: np.ndarray | None) -> Samples:
        """The samples of one step's fine-tuning (FINETUNE_SCHEDULES); ``chosen`` must already be marked labeled."""
        if schedule == "step":
            return self.regions(chosen)
        if schedule == "all":
            return self.everything()
        n_earlier = earlier.numel()
        from_regions = torch.as_tensor(pick[pick < n_earlier], dtype=torch.long, device=earlier.device)
        samples = self.regions(torch.cat([chosen, earlier[from_regions]]))
        start_device = self.start_images.device
        from_start = torch.as_tensor(np.sort(pick[pick >= n_earlier] - n_earlier), dtype=torch.long, device=start_device)
        return self.with_start_images(samples, from_start)


def finetune(trainer: SegTrainer, samples: Samples, epochs: int, crop_size: tuple[int, int], lr_decay: bool, seed: int) -> None:
    """``epochs`` passes over ``samples`` with the step's seed; with ``lr_decay`` the lr decays to zero within
    the step, so the reward is measured on a settled network."""
    schedule = None
    if lr_decay:
        batches = epochs * -(-samples[2].numel() // trainer.batch_size)
        schedule = warmup_cosine(trainer.optimizer, batches, warmup_fraction=0.0)
    with seeded_torch(seed, trainer.device):
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            trainer.train_epoch(*samples, crop_size, generator, schedule)


@contextlib.contextmanager
def final_training(
    trainer: SegTrainer, samples: Samples, optim: OptimConfig, steps: int, crop_size: tuple[int, int], seed: int
) -> Iterator[SegTrainer]:
    """Train the network further on ``samples`` for a test evaluation inside the block; restore it afterwards.

    It continues from the current network, as the paper's does, with the fine-tuning optimizer (fresh
    state, warm-up and cosine decay over ``steps``, final weights) and BatchNorm training, then
    recalibrates BatchNorm on the set. A fixed length instead of early stopping on D_R keeps it
    reproducible; re-heating to the pre-training lr instead lost 2-4 test points against the start
    network (docs/al_dynamics.md).
    """
    snapshot, optimizer, freeze_bn = trainer.snapshot(), trainer.optimizer, trainer.freeze_bn
    trainer.optimizer = optim.build(trainer.model.parameters())
    trainer.freeze_bn = False  # as in pre-training
    try:
        with seeded_torch(seed, trainer.device):
            generator = torch.Generator().manual_seed(seed)
            schedule = warmup_cosine(trainer.optimizer, steps)
            trainer.train_steps(*samples, crop_size, generator, steps, schedule)
            trainer.recalibrate_batchnorm(samples[0])
        yield trainer
    finally:
        trainer.optimizer, trainer.freeze_bn = optimizer, freeze_bn
        trainer.load_state_dict(snapshot)
