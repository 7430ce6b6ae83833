"""What the segmentation network trains on during an episode: the step's fine-tuning and the final training.

A practitioner trains on everything they have labeled: the regions acquired so far *and* the fully
labeled start set they began with. ``LabeledData`` turns both into the trainer's samples (images,
targets that are ignore outside labeled pixels, and per sample its image and the box a crop must
contain); the schedules below choose which samples each step trains on (docs/al_dynamics.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .regions import LabeledRegions, RegionGrid
from .runtime import seeded_torch
from .trainer import OptimConfig, SegTrainer, anywhere_boxes, warmup_cosine, whole_image_boxes

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
        size = (int(self.start_images.shape[-2]), int(self.start_images.shape[-1]))
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
        """The schedule's own random draw for a step (FINETUNE_SCHEDULES), from ``rng``; None if it draws nothing."""
        draw = FINETUNE_SCHEDULES[schedule].draw
        return None if draw is None else draw(self, rng, n_earlier, n_new)

    def step_samples(
        self, schedule: str, chosen: torch.Tensor, earlier: torch.Tensor, pick: np.ndarray | None
    ) -> Samples:
        """The samples of one step's fine-tuning (FINETUNE_SCHEDULES); ``chosen`` must already be marked labeled."""
        return FINETUNE_SCHEDULES[schedule].samples(self, chosen, earlier, pick)


# ---- fine-tuning schedules: what each step trains on, and the random draw that decides it ----------------
def _replay_draw(data: LabeledData, rng: np.random.Generator, n_earlier: int, n_new: int) -> np.ndarray:
    """Which earlier regions (ids < n_earlier) and start images (the rest) to retrain on: as many as are new."""
    n_start = data.start_images.shape[0]
    return rng.choice(n_earlier + n_start, min(n_earlier + n_start, n_new), replace=False)


def _replay_samples(data: LabeledData, chosen: torch.Tensor, earlier: torch.Tensor, pick: np.ndarray | None) -> Samples:
    assert pick is not None, "the replay schedule needs its draw"
    n_earlier = earlier.numel()
    from_regions = torch.as_tensor(pick[pick < n_earlier], dtype=torch.long, device=earlier.device)
    samples = data.regions(torch.cat([chosen, earlier[from_regions]]))
    from_start = torch.as_tensor(
        np.sort(pick[pick >= n_earlier] - n_earlier), dtype=torch.long, device=data.start_images.device
    )
    return data.with_start_images(samples, from_start)


@dataclass(frozen=True)
class FinetuneSchedule:
    """What a step fine-tunes on (``samples``), and the random draw it needs (``draw``, None: draws nothing)."""

    description: str
    samples: Callable[[LabeledData, torch.Tensor, torch.Tensor, np.ndarray | None], Samples]
    draw: Callable[[LabeledData, np.random.Generator, int, int], np.ndarray] | None = None


FINETUNE_SCHEDULES: dict[str, FinetuneSchedule] = {
    "step": FinetuneSchedule(
        "one epoch over the regions labeled at this step (the paper)",
        lambda data, chosen, earlier, pick: data.regions(chosen),
    ),
    "replay": FinetuneSchedule(
        "this step's regions plus as many samples drawn at random from the earlier labeled regions and the start "
        "set's images (constant cost; keeps what the start network learned)",
        _replay_samples,
        _replay_draw,
    ),
    "all": FinetuneSchedule(
        "one epoch over every labeled region (cost grows with the budget)",
        lambda data, chosen, earlier, pick: data.everything(),
    ),
}


def finetune(
    trainer: SegTrainer, samples: Samples, epochs: int, crop_size: tuple[int, int], lr_decay: bool, seed: int
) -> None:
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


FINAL_STARTS = {
    "current": "continue from the network as fine-tuned during the episode (the paper)",
    "start": "start from the start network, so the score depends on the labels, not on the episode's path",
}
FINAL_SEEDS = {
    "episode": "seeds drawn from the episode's generator: a different draw per episode",
    "fixed": "the same seeds for every episode and policy (common random numbers): the score is a function of "
    "the labeled set",
}


@dataclass(frozen=True)
class FinalTraining:
    """How test mode scores a labeled set (EnvConfig's ``final_*`` keys): ``repeats`` trainings of ``steps``
    steps from ``start``, each evaluating its weights averaged over the last ``average`` of the steps; the
    score is the mean over the repeats (docs/noise_floor.md measures each lever)."""

    steps: int
    start: str = "current"
    average: float = 0.0
    repeats: int = 1
    seed: str = "episode"
    # share of every batch drawn from the start set; None: uniform over all samples, so the start set's
    # share falls as regions are acquired (CamVid: 34% of the samples at 192 regions, 12% at 768)
    start_share: float | None = None

    def seeds(self, episode_seed: int, fixed_seed: int) -> list[int]:
        base = fixed_seed if self.seed == "fixed" else episode_seed
        return [base + 7919 * r for r in range(self.repeats)]


def final_scores(
    trainer: SegTrainer,
    samples: Samples,
    eval_sets: Sequence[tuple[torch.Tensor, torch.Tensor]],
    optim: OptimConfig,
    spec: FinalTraining,
    crop_size: tuple[int, int],
    seeds: list[int],
    start_state: dict,
    start_samples: int = 0,
) -> list[tuple[float, list[float]]]:
    """mIoU and per-class IoU of ``samples`` under ``spec`` on each (images, labels) of ``eval_sets``: the mean
    over one final training per seed. Every set is scored by the same trained networks, so a score on the
    reward set judges exactly the network whose test score is reported, at the cost of one evaluation.
    ``start_samples``: how many of the samples, at their end, are start-set images (for ``spec.start_share``)."""
    mious: list[list[float]] = [[] for _ in eval_sets]
    per_class: list[list[list[float]]] = [[] for _ in eval_sets]
    initial = start_state if spec.start == "start" else None
    tail_share = None if spec.start_share is None else (start_samples, spec.start_share)
    for seed in seeds:
        with final_training(
            trainer, samples, optim, spec.steps, crop_size, seed, initial, spec.average, tail_share
        ) as trained:
            for i, (images, labels) in enumerate(eval_sets):
                result = trained.evaluate(images, labels)
                mious[i].append(result.miou)
                per_class[i].append(result.per_class_iou)
    return [(float(np.mean(m)), np.mean(c, axis=0).tolist()) for m, c in zip(mious, per_class)]


@contextlib.contextmanager
def final_training(
    trainer: SegTrainer,
    samples: Samples,
    optim: OptimConfig,
    steps: int,
    crop_size: tuple[int, int],
    seed: int,
    start_state: dict | None = None,
    average: float = 0.0,
    tail_share: tuple[int, float] | None = None,
) -> Iterator[SegTrainer]:
    """Train the network further on ``samples`` for a test evaluation inside the block; restore it afterwards.

    It continues from the current network, as the paper's does (or from ``start_state``, e.g. the start
    network, so that the result depends on the labels and not on the episode's path), with the
    fine-tuning optimizer (fresh state, warm-up and cosine decay over ``steps``), BatchNorm training, then
    recalibrates BatchNorm on the set. The weights evaluated are the final ones, or with ``average`` > 0
    the mean of the weights after each of the last ``average`` x ``steps`` steps (stochastic weight
    averaging: the mean of nearby minima moves less with the seed than any one of them). A fixed length
    instead of early stopping on D_R keeps it reproducible; re-heating to the pre-training lr instead lost
    2-4 test points against the start network (docs/al_dynamics.md). ``tail_share=(n, share)``: the last n
    samples fill that share of every batch (``SegTrainer.train_steps``).
    """
    snapshot, optimizer, freeze_bn = trainer.snapshot(), trainer.optimizer, trainer.freeze_bn
    if start_state is not None:
        trainer.model.load_state_dict(start_state["model"])
    trainer.optimizer = optim.build(trainer.model.parameters())
    trainer.freeze_bn = False  # as in pre-training
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    first_averaged = steps - max(1, int(round(average * steps))) if average > 0 else steps
    averaged: list[torch.Tensor] = []

    def accumulate(step: int) -> None:
        if step < first_averaged:
            return
        if not averaged:
            averaged.extend(p.detach().clone() for p in params)
            return
        weight = 1.0 / (step - first_averaged + 1)
        for mean, p in zip(averaged, params):
            mean.lerp_(p.detach(), weight)

    try:
        with seeded_torch(seed, trainer.device):
            generator = torch.Generator().manual_seed(seed)
            schedule = warmup_cosine(trainer.optimizer, steps)
            trainer.train_steps(
                *samples, crop_size, generator, steps, schedule, accumulate if average > 0 else None, tail_share
            )
            if averaged:
                with torch.no_grad():
                    for p, mean in zip(params, averaged):
                        p.copy_(mean)
            trainer.recalibrate_batchnorm(samples[0])
        yield trainer
    finally:
        trainer.optimizer, trainer.freeze_bn = optimizer, freeze_bn
        trainer.load_state_dict(snapshot)
