"""Masked training and exact evaluation of a segmentation network.

One mechanism serves the three uses of the method: a training sample is (image, box, target),
where the target is ignore outside the labeled pixels and the box is the region the random crop
must contain. Supervised pre-training uses the whole image as the box; active-learning
fine-tuning uses the newly labeled regions; the final step uses every acquired region.
Crops and flips are gathered for the whole batch with one indexing op (no per-sample loop).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .metrics import confusion_matrix, iou_per_class, mean_iou
from .models import SegmentationNet, normalize
from .runtime import resolve_device
from .storage import atomic_save

LOSS_WEIGHTINGS = {
    "pixel": "cross-entropy averaged over every labeled pixel of the batch (the paper)",
    "sample": "cross-entropy averaged per sample, then over samples: a sample with one labeled region weighs as "
    "much as a fully labeled image",
}


@dataclass
class OptimConfig:
    """Paper values for CamVid fine-tuning: SGD, lr 1e-3, momentum 0.95, weight decay 1e-4, clip 4."""

    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.95
    weight_decay: float = 1e-4
    max_grad_norm: float = 4.0

    def build(self, params) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.optimizer == "adam":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        raise ValueError(f"unknown optimizer '{self.optimizer}'; choose 'sgd' or 'adam'")


@dataclass
class EvalResult:
    miou: float
    per_class_iou: list[float]


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float = 0.05):
    """Linear warm-up to the optimizer's lr, then cosine decay to zero at ``total_steps``.

    Why: a constant high lr ends wherever the last noisy step left the weights, so two thread counts
    (different float summation orders) land far apart; a decay to zero makes the end point a stable
    minimum (measured: 14 points apart before, < 0.5 after; docs/al_dynamics.md).
    """
    warmup = max(1, int(round(warmup_fraction * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def whole_image_boxes(count: int, image_size: tuple[int, int]) -> torch.Tensor:
    """[count, 4] boxes (y0, x0, y1, x1) covering the whole image: samples trained on full images."""
    return torch.tensor([[0, 0, *image_size]], dtype=torch.long).expand(count, 4)


def anywhere_boxes(count: int, image_size: tuple[int, int]) -> torch.Tensor:
    """[count, 4] empty boxes that every crop contains: crops of fully labeled images fall anywhere."""
    return torch.tensor([[image_size[0], image_size[1], 0, 0]], dtype=torch.long).expand(count, 4)


def random_crops(
    images: torch.Tensor,
    targets: torch.Tensor,
    boxes: torch.Tensor,
    crop_size: tuple[int, int],
    generator: torch.Generator,
    hflip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop every sample at a random offset that keeps its box inside, then flip half of them.

    images uint8 [B, 3, H, W], targets long [B, H, W], boxes long [B, 4] (y0, x0, y1, x1).
    """
    batch, _, height, width = images.shape
    ch, cw = min(crop_size[0], height), min(crop_size[1], width)
    boxes = boxes.cpu()
    y_lo = (boxes[:, 2] - ch).clamp(min=0)
    y_hi = boxes[:, 0].clamp(max=height - ch).clamp(min=y_lo)
    x_lo = (boxes[:, 3] - cw).clamp(min=0)
    x_hi = boxes[:, 1].clamp(max=width - cw).clamp(min=x_lo)
    u = torch.rand(batch, 3, generator=generator)
    y0 = y_lo + (u[:, 0] * (y_hi - y_lo + 1)).long().clamp(max=(y_hi - y_lo))
    x0 = x_lo + (u[:, 1] * (x_hi - x_lo + 1)).long().clamp(max=(x_hi - x_lo))
    rows = (y0[:, None] + torch.arange(ch)).to(images.device)
    cols = (x0[:, None] + torch.arange(cw)).to(images.device)
    flip = (u[:, 2] < 0.5).to(images.device) if hflip else torch.zeros(batch, dtype=torch.bool, device=images.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    b = torch.arange(batch, device=images.device)[:, None, None]
    image_crops = images[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    target_crops = targets[b, rows[:, :, None], cols[:, None, :]]
    return image_crops.contiguous(), target_crops


class SegTrainer:
    """Owns a network, its optimizer and the device; trains on masked samples and measures mIoU."""

    def __init__(
        self,
        model: SegmentationNet,
        num_classes: int,
        ignore_index: int,
        device: str | torch.device = "auto",
        optim: OptimConfig | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 32,
        freeze_bn: bool = True,
        loss_weighting: str = "pixel",
    ):
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {sorted(LOSS_WEIGHTINGS)}, got {loss_weighting!r}")
        self.loss_weighting = loss_weighting
        self.device = resolve_device(device)
        # channels-last convolutions: measured 1.9x faster LR-ASPP inference on CPU (docs/environment.md)
        self.model = model.to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.optim = optim or OptimConfig()
        self.optimizer = self.optim.build(self.model.parameters())
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.freeze_bn = freeze_bn
        self.amp = self.device.type == "cuda"

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def snapshot(self) -> dict:
        """A deep copy of model + optimizer state, kept on the device for fast restores."""
        return copy.deepcopy(self.state_dict())

    # ---- inference ---------------------------------------------------------------------
    def _inputs(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 images -> normalised float on the device, in the network's channels-last layout."""
        batch = normalize(images_uint8.to(self.device, non_blocking=True))
        return batch.contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax [n, C, H, W] (float32, on the device) of uint8 images, in eval mode."""
        self.model.eval()
        out = []
        for start in range(0, images.shape[0], self.eval_batch_size):
            with self._autocast():
                logits = self.model(self._inputs(images[start : start + self.eval_batch_size]))
            out.append(logits.float().softmax(1))
        return torch.cat(out)

    @torch.no_grad()
    def mc_mutual_information(self, images: torch.Tensor, samples: int) -> torch.Tensor:
        """Per-pixel BALD [n, h, w] (head resolution) of uint8 images from ``samples`` dropout draws."""
        return torch.cat(
            [
                self.model.mc_mutual_information(self._inputs(images[start : start + self.eval_batch_size]), samples)
                for start in range(0, images.shape[0], self.eval_batch_size)
            ]
        )

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> EvalResult:
        """Exact mIoU over all non-ignored pixels of the set (one confusion matrix accumulated)."""
        self.model.eval()
        confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long, device=self.device)
        for start in range(0, images.shape[0], self.eval_batch_size):
            with self._autocast():
                pred = self.model(self._inputs(images[start : start + self.eval_batch_size])).argmax(1)
            target = labels[start : start + self.eval_batch_size].to(self.device, non_blocking=True)
            confusion += confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        iou = iou_per_class(confusion)
        return EvalResult(mean_iou(confusion), [float(v) for v in iou.cpu()])

    # ---- training ----------------------------------------------------------------------
    def _train_mode(self) -> None:
        self.model.train()
        if self.freeze_bn:
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    @torch.no_grad()
    def recalibrate_batchnorm(self, images: torch.Tensor, max_images: int = 64) -> None:
        """Re-estimate BatchNorm statistics exactly from full images with the current weights.

        Running averages lag behind weights that change fast (training from scratch on a few
        images), which makes eval-mode predictions collapse; a cumulative pass fixes that. With more
        than ``max_images`` images the pass uses evenly spaced ones: data sets are often stored in
        sequence order (CamVid's files go video by video), and the first 64 alone gave statistics of
        one video (measured: 2 test-mIoU points lost after the CamVid final training, docs/benchmark_camvid.md).
        """
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        if images.shape[0] > max_images:
            images = images[torch.linspace(0, images.shape[0] - 1, max_images).round().long().to(images.device)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
        self.model.train()
        for start in range(0, images.shape[0], self.eval_batch_size):
            with self._autocast():
                self.model(self._inputs(images[start : start + self.eval_batch_size]))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.model.eval()

    def train_batch(self, images: torch.Tensor, targets: torch.Tensor) -> float:
        """One SGD step on uint8 images and long targets (ignore_index where unlabeled)."""
        self._train_mode()
        with self._autocast():
            logits = self.model(self._inputs(images))
        if self.loss_weighting == "sample":
            # every sample counts the same: a few labeled region pixels weigh as much as a fully labeled image
            per_pixel = F.cross_entropy(logits.float(), targets, ignore_index=self.ignore_index, reduction="none")
            labeled = (targets != self.ignore_index).flatten(1).sum(1)
            per_sample = per_pixel.flatten(1).sum(1) / labeled.clamp(min=1)
            loss = per_sample[labeled > 0].mean()
        else:
            loss = F.cross_entropy(logits.float(), targets, ignore_index=self.ignore_index)
        self.optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(loss) and bool((targets != self.ignore_index).any()):
            loss.backward()
            if self.optim.max_grad_norm:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.optim.max_grad_norm)
            self.optimizer.step()
        return float(loss.detach()) if torch.isfinite(loss) else 0.0

    def train_steps(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        sample_image: torch.Tensor,
        sample_box: torch.Tensor,
        crop_size: tuple[int, int],
        generator: torch.Generator,
        steps: int,
        schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
        after_step: Callable[[int], None] | None = None,
        tail_share: tuple[int, float] | None = None,
    ) -> float:
        """``steps`` optimizer steps on batches that walk through random permutations of the samples.

        Training length in steps (not epochs) costs the same whatever the set size; ``schedule`` is
        stepped after every optimizer step, then ``after_step(step_index)`` is called. With
        ``tail_share=(n, share)`` the last n samples fill round(share x batch size) places of every batch
        (each group walks its own permutations), so their weight does not fall as the others grow in
        number. Returns the mean loss.
        """
        total = sample_image.shape[0]
        tail, share = tail_share if tail_share is not None else (0, 0.0)
        if not 0 <= tail <= total:
            raise ValueError(f"tail_share names {tail} trailing samples of {total}")
        groups = [(0, total)]  # (first sample, count) of each group that walks its own permutations
        per_batch = [min(self.batch_size, total)]
        if tail_share is not None and 0 < tail < total:
            from_tail = min(max(int(round(share * self.batch_size)), 0), self.batch_size)
            groups = [(0, total - tail), (total - tail, tail)]
            per_batch = [self.batch_size - from_tail, from_tail]
        orders = [torch.empty(0, dtype=torch.long) for _ in groups]
        losses = []
        for step in range(steps):
            picks = []
            for g, ((first, count), n) in enumerate(zip(groups, per_batch)):
                if n == 0:
                    continue
                if orders[g].numel() < min(n, count):
                    orders[g] = torch.cat([orders[g], torch.randperm(count, generator=generator) + first])
                picks.append(orders[g][:n])
                orders[g] = orders[g][n:]
            pick = torch.cat(picks) if len(picks) > 1 else picks[0]
            losses.append(
                self._train_picked(images, targets, sample_image, sample_box, pick, crop_size, generator, schedule)
            )
            if after_step is not None:
                after_step(step)
        return sum(losses) / max(len(losses), 1)

    def train_epoch(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        sample_image: torch.Tensor,
        sample_box: torch.Tensor,
        crop_size: tuple[int, int],
        generator: torch.Generator,
        schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> float:
        """One pass over samples (image index, box) in random order; returns the mean loss.

        images uint8 [n, 3, H, W] and targets long [n, H, W] may live on the device already;
        ``schedule`` is stepped after every batch.
        """
        order = torch.randperm(sample_image.shape[0], generator=generator)
        losses = []
        for start in range(0, order.numel(), self.batch_size):
            pick = order[start : start + self.batch_size]
            losses.append(
                self._train_picked(images, targets, sample_image, sample_box, pick, crop_size, generator, schedule)
            )
        return sum(losses) / max(len(losses), 1)

    def _train_picked(self, images, targets, sample_image, sample_box, pick, crop_size, generator, schedule) -> float:
        """One optimizer step on the samples ``pick``: their crops, then ``schedule`` (if any) advances."""
        idx = sample_image[pick].to(images.device)
        crops, crop_targets = random_crops(images[idx], targets[idx], sample_box[pick], crop_size, generator)
        loss = self.train_batch(crops.to(self.device), crop_targets.to(self.device))
        if schedule is not None:
            schedule.step()
        return loss

    def fit(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        sample_image: torch.Tensor,
        sample_box: torch.Tensor,
        val_images: torch.Tensor,
        val_labels: torch.Tensor,
        crop_size: tuple[int, int],
        generator: torch.Generator,
        max_epochs: int = 50,
        patience: int = 5,
        progress=None,
        checkpoint: str | os.PathLike | None = None,
    ) -> dict:
        """Train until the validation mIoU stops improving for ``patience`` epochs; keep the best weights.

        With ``checkpoint`` the full loop state (weights, optimizer, best weights, RNG, history) is
        written atomically after every epoch and picked up again if the file exists, so an
        interrupted run resumes where it stopped.
        """
        loop: dict[str, Any] = {
            "epoch": 0,
            "best_miou": -math.inf,
            "best_epoch": 0,
            "best_state": None,
            "stale": 0,
            "history": [],
        }
        if checkpoint is not None and os.path.exists(checkpoint):
            saved = torch.load(checkpoint, map_location=self.device, weights_only=False)
            self.load_state_dict(saved["trainer"])
            generator.set_state(saved["generator"])
            loop = saved["loop"]
        while loop["epoch"] < max_epochs and loop["stale"] < patience:
            loop["epoch"] += 1
            loss = self.train_epoch(images, targets, sample_image, sample_box, crop_size, generator)
            if not self.freeze_bn:
                self.recalibrate_batchnorm(images)
            result = self.evaluate(val_images, val_labels)
            loop["history"].append({"epoch": loop["epoch"], "loss": loss, "val_miou": result.miou})
            if progress is not None:
                progress(loop["epoch"], loss, result.miou)
            if result.miou > loop["best_miou"]:
                loop.update(best_miou=result.miou, best_epoch=loop["epoch"], best_state=self.snapshot(), stale=0)
            else:
                loop["stale"] += 1
            if checkpoint is not None:
                atomic_save(
                    {"trainer": self.state_dict(), "generator": generator.get_state(), "loop": loop}, checkpoint
                )
        if loop["best_state"] is not None:
            self.load_state_dict(loop["best_state"])
        return {"best_val_miou": loop["best_miou"], "best_epoch": loop["best_epoch"], "history": loop["history"]}
