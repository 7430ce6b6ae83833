"""Starting segmentation networks, trained once per configuration and cached on disk.

The paper starts from a GTA-V pretrained FPN; without that data we pre-train on the labeled
sets the method already has: train mode starts from a network trained on D_S (weak, so label
choices matter), test mode from one trained on D_T. The cache key hashes everything that
changes the weights, so a new configuration can never pick up a stale file.

Every cache file also stores the sha256 of its weights and the description it was trained for. A
file that does not load (truncated, corrupt), whose weights do not match their hash, or that holds
another configuration's network is reported with a warning naming its path and rebuilt; it is never
used. Files written before the hash existed are checked by their description and get the hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Callable

import torch

from .data.base import SegDataset
from .models import SegmentationNet
from .runtime import resolve_device, seeded_torch, torch_threads
from .storage import atomic_save
from .trainer import OptimConfig, SegTrainer, warmup_cosine, whole_image_boxes

CACHE_VERSION = 6  # 2: whole images; 3: channels-last, MaskDropout; 4: fixed-length cosine recipe; 5: one thread;
# 6: BatchNorm recalibrated on evenly spaced images


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else $SEGAL_CACHE_DIR, else ~/.cache/segal."""
    root = override or os.environ.get("SEGAL_CACHE_DIR") or Path.home() / ".cache" / "segal"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """A hash of a state_dict's names, dtypes, shapes and bytes (the cache's integrity check)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _normalized(description: dict) -> dict:
    return json.loads(json.dumps(description, default=str))


def read_cache(path: Path, description: dict) -> tuple[dict, dict] | None:
    """(state_dict, report) of a sound cache file for ``description``; None, with a warning naming ``path``,
    for a file that must be rebuilt (it is deleted)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        state, report = saved["model"], saved["report"]
        problem = None
        if report.get("description") != _normalized(description):
            problem = "it holds the network of another configuration"
        elif "sha256" in saved and saved["sha256"] != weights_sha256(state):
            problem = "its weights do not match their stored sha256 (the file was modified or damaged)"
    except Exception as error:  # noqa: BLE001 - a truncated zip, a pickle error, missing keys: all mean "rebuild"
        problem = f"it cannot be read ({type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''})"
    if problem is not None:
        warnings.warn(f"start-network cache {path}: {problem}; rebuilding it", RuntimeWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    if "sha256" not in saved:  # written before the hash existed: add it, so later damage is detected
        atomic_save({**saved, "sha256": weights_sha256(state)}, path)
    return state, report


def cache_key(description: dict) -> str:
    text = json.dumps({"version": CACHE_VERSION, **description}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def one_cpu_thread(device: str | torch.device):
    """Pre-train on one CPU thread whatever the caller's setting, so every thread count gets the same network.

    Training from a few images is chaotic: the float summation order of 1 and 2 threads alone sent the
    same recipe to start networks 2.2 D_R points apart (docs/al_dynamics.md). One thread makes the
    result a function of the configuration (on a given CPU kind); it costs ~1.5x the pre-training time,
    once per cache.
    """
    if resolve_device(device).type != "cpu":
        yield
        return
    with torch_threads():
        yield


def pretrain(
    model: SegmentationNet,
    train_set: SegDataset,
    val_set: SegDataset,
    seed: int,
    device: str | torch.device,
    steps: int,
    lr: float,
    batch_size: int = 8,
    progress=None,
    curve_points: int = 10,
) -> dict:
    """Supervised training on fully labeled whole images for a fixed number of steps; returns the report.

    The recipe is chosen for reproducibility (docs/al_dynamics.md): Adam with a warm-up and a cosine
    decay to zero, a fixed length, and the *final* weights. Early stopping on D_R made the start network
    a lottery (the same configuration landed 14 points apart with 1 and 2 torch threads) and picked it
    at a D_R optimum, from which every fine-tuning step looked like a loss. D_R is only watched
    (``curve``), never used to choose weights. Whole images, not crops: 64x64 crops hide the scene
    layout the synthetic network relies on.
    """
    trainer = SegTrainer(
        model,
        train_set.num_classes,
        train_set.ignore_index,
        device=device,
        optim=OptimConfig(optimizer="adam", lr=lr, weight_decay=1e-4),
        batch_size=batch_size,
        freeze_bn=False,
    )
    n = len(train_set)
    images = train_set.images.to(trainer.device)
    targets = train_set.labels.to(trainer.device).long()
    boxes = whole_image_boxes(n, train_set.image_size)
    schedule = warmup_cosine(trainer.optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    curve, done = [], 0
    with seeded_torch(seed, trainer.device):
        while done < steps:
            chunk = min(max(1, steps // curve_points), steps - done)
            loss = trainer.train_steps(
                images, targets, torch.arange(n), boxes, train_set.image_size, generator, chunk, schedule
            )
            done += chunk
            trainer.recalibrate_batchnorm(images)
            miou = trainer.evaluate(val_set.images, val_set.labels).miou
            curve.append({"step": done, "loss": loss, "val_miou": miou})
            if progress is not None:
                progress(done, loss, miou)
    return {"val_miou": curve[-1]["val_miou"], "curve": curve}


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

    ``settings``: seed, steps and peak lr (Adam) of the pre-training; part of the cache key.
    """
    description = {**description, "pretrain": settings}
    seed = settings["seed"]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{description.get('dataset', 'data')}-{description.get('model', 'net')}")
    path = cache_dir(directory) / f"{name}-{cache_key(description)}.pt"  # an import path as model= holds ":"
    if path.exists():
        cached = read_cache(path, description)
        if cached is not None:
            return cached
    with seeded_torch(seed, torch.device("cpu")):
        model = build()
    progress = None
    if verbose:

        def progress(step, loss, miou):
            print(
                f"[segal] pre-training {path.name}: step {step}/{settings['steps']} loss {loss:.3f} "
                f"D_R mIoU {miou:.3f}",
                flush=True,
            )

    with one_cpu_thread(device):
        report = pretrain(model, train_set, val_set, seed, device, settings["steps"], settings["lr"], progress=progress)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    report = {**report, "description": description}
    atomic_save({"model": state, "report": _normalized(report), "sha256": weights_sha256(state)}, path)
    return state, report
