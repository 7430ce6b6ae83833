"""Starting segmentation networks, trained once per configuration and cached on disk.

The paper starts from a GTA-V pretrained FPN; without that data we pre-train on the labeled
sets the method already has: train mode starts from a network trained on D_S (weak, so label
choices matter), test mode from one trained on D_T. The cache key hashes everything that
changes the weights, so a new configuration can never pick up a stale file.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import torch

from .data.base import SegDataset
from .models import SegmentationNet
from .storage import atomic_save
from .trainer import OptimConfig, SegTrainer, seeded_torch, whole_image_boxes

CACHE_VERSION = 3  # 2: start networks pre-trained on whole images; 3: channels-last, MaskDropout


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else $SEGAL_CACHE_DIR, else ~/.cache/segal."""
    root = override or os.environ.get("SEGAL_CACHE_DIR") or Path.home() / ".cache" / "segal"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(description: dict) -> str:
    text = json.dumps({"version": CACHE_VERSION, **description}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pretrain(
    model: SegmentationNet,
    train_set: SegDataset,
    val_set: SegDataset,
    seed: int,
    device: str | torch.device,
    max_epochs: int,
    patience: int,
    batch_size: int = 8,
    optim: OptimConfig | None = None,
    progress=None,
) -> dict:
    """Supervised training on fully labeled images with early stopping on val mIoU; returns the report.

    Trains on whole images, not crops: measured on the synthetic set, 64x64 crops left the
    start network unable to tell sky from building (it needs the image context) and early-stopped at
    mIoU 0.17, where whole images reach 0.4+.
    """
    trainer = SegTrainer(
        model,
        train_set.num_classes,
        train_set.ignore_index,
        device=device,
        optim=optim or OptimConfig(optimizer="adam", lr=1e-3, weight_decay=1e-4),
        batch_size=batch_size,
        freeze_bn=False,
    )
    height, width = train_set.image_size
    n = len(train_set)
    boxes = whole_image_boxes(n, (height, width))
    generator = torch.Generator().manual_seed(seed)
    images = train_set.images.to(trainer.device)
    targets = train_set.labels.to(trainer.device).long()
    # small sets: repeat the list so an "epoch" is at least a few batches
    repeats = max(1, -(-4 * batch_size // n))
    sample_image = torch.arange(n).repeat(repeats)
    with seeded_torch(seed, trainer.device):
        report = trainer.fit(
            images,
            targets,
            sample_image,
            boxes.repeat(repeats, 1),
            val_set.images,
            val_set.labels,
            (height, width),
            generator,
            max_epochs=max_epochs,
            patience=patience,
            progress=progress,
        )
    return report


def load_or_pretrain(
    description: dict,
    build: Callable[[], SegmentationNet],
    train_set: SegDataset,
    val_set: SegDataset,
    device: str | torch.device,
    settings: dict,
    directory: str | os.PathLike | None = None,
    verbose: bool = False,
) -> tuple[dict, dict]:
    """(model state_dict on CPU, report) for the configuration in ``description``; trains on a cache miss.

    ``settings``: seed, max_epochs, patience, lr (Adam) of the pre-training; part of the cache key.
    """
    description = {**description, "pretrain": settings}
    seed = settings["seed"]
    path = cache_dir(directory) / f"{description.get('dataset', 'data')}-{description.get('model', 'net')}-{cache_key(description)}.pt"
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return saved["model"], saved["report"]
    with seeded_torch(seed, torch.device("cpu")):
        model = build()
    progress = None
    if verbose:
        def progress(epoch, loss, miou):
            print(f"[segal] pre-training {path.name}: epoch {epoch} loss {loss:.3f} val mIoU {miou:.3f}", flush=True)
    report = pretrain(
        model, train_set, val_set, seed, device, settings["max_epochs"], settings["patience"],
        optim=OptimConfig(optimizer="adam", lr=settings["lr"], weight_decay=1e-4), progress=progress,
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    report = {"best_val_miou": report["best_val_miou"], "best_epoch": report["best_epoch"], "description": description}
    atomic_save({"model": state, "report": json.loads(json.dumps(report, default=str))}, path)
    return state, report
