"""The network the policy looks through: loaded from a file, or trained on the labelled folder with progress
and an estimate of the time left, then saved for the next round."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from segal_env.data.base import SegDataset
from segal_env.models import ModelSpec, build_model, model_name
from segal_env.runtime import seeded_torch
from segal_env.start_network import pretrain
from segal_env.storage import atomic_save
from segal_env.trainer import SegTrainer

# 300 steps of 8 whole images: ~3 min for lraspp_mobilenet_v3 at 256x192 on one core of the 2-core Xeon
# (0.55 s a step, measured), whatever the number of images; the labelled-set check every tenth adds a little
DEFAULT_TRAIN_STEPS = 300
DEFAULT_ARCH = "lraspp_mobilenet_v3"  # the real-data presets' network


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_printer(steps: int, write: Callable[[str], Any] = lambda line: print(line, file=sys.stderr, flush=True)):
    """A ``pretrain`` progress callback: step, loss, labelled-set mIoU, time so far and an estimate of the rest."""
    start = time.monotonic()

    def report(step: int, loss: float, miou: float) -> None:
        elapsed = time.monotonic() - start
        left = elapsed / step * (steps - step)
        write(
            f"[segal-request] training: step {step}/{steps} ({100 * step // steps}%), loss {loss:.3f}, "
            f"labelled-set mIoU {miou:.3f}, {duration(elapsed)} elapsed, about {duration(left)} left"
        )

    return report


def build_network(
    labeled: SegDataset,
    model: ModelSpec | None,
    saved: Any,
    model_file: Path | None,
    train_steps: int,
    lr: float,
    seed: int,
    device: str,
    out: Path,
    progress: Callable[[int, float, float], None] | None = None,
) -> tuple[SegTrainer, dict[str, Any]]:
    """The network from ``saved`` (what ``model_file`` holds, already read and checked) or trained on the labelled
    set and saved as ``out/network.pt``. ``model`` None: the file's architecture, else ``DEFAULT_ARCH``."""
    num_classes = labeled.num_classes
    model = model or (saved.get("arch") if isinstance(saved, dict) else None) or DEFAULT_ARCH
    with seeded_torch(seed, torch.device("cpu")):
        net = build_model(model, num_classes)
    if saved is not None:
        state = saved.get("model", saved)
        try:
            net.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(
                f"{model_file} does not fit model '{model_name(model)}' with {num_classes} classes "
                f"({len(labeled.class_names)} class names given): {str(error).splitlines()[0]}; pass the --arch it was "
                "trained with and its class names"
            ) from None
        report: dict[str, Any] = {"network": os.path.abspath(str(model_file)), "arch": model_name(model)}
    else:
        print(
            f"[segal-request] training {model_name(model)} on {len(labeled)} labelled images for {train_steps} steps "
            "(--train-steps) before the policy chooses",
            file=sys.stderr,
            flush=True,
        )
        result = pretrain(
            net,
            labeled,
            labeled,
            seed,
            device,
            train_steps,
            lr,
            progress=progress or progress_printer(train_steps),
            curve_points=min(10, train_steps),
        )
        path = atomic_save(
            {
                "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "arch": model_name(model),
                "class_names": list(labeled.class_names),
            },
            Path(os.path.abspath(out)) / "network.pt",
        )
        print(
            f"[segal-request] network saved to {path}; next round, reuse it with --model {path} "
            "(no training), or retrain on the grown labelled folder with --train-model",
            file=sys.stderr,
            flush=True,
        )
        report = {
            "network": str(path),
            "arch": model_name(model),
            "trained_steps": train_steps,
            "labeled_miou": result["val_miou"],
        }
    return SegTrainer(net, num_classes, labeled.ignore_index, device, batch_size=8), report
