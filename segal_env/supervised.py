"""Supervised training on a fully labeled split: the upper-bound line of every benchmark.

    python -m segal_env.supervised --dataset camvid --data-root ../shared/data/camvid --scale 0.5

Trains on the train split with early stopping on val, reports mIoU and per-class IoU on test,
and writes them (plus the full history) atomically to ``--out``. The training loop checkpoints
every epoch; run the same command again to resume an interrupted run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from .data import load_splits
from .models import MODELS, build_model
from .presets import PRESETS, preset_value
from .runtime import seeded_torch, thread_count, torch_threads
from .storage import atomic_write_json, atomic_write_text
from .trainer import OptimConfig, SegTrainer, whole_image_boxes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--dataset", default="synthetic", choices=sorted(PRESETS))
    parser.add_argument("--data-root", default=None, help="dataset folder (not needed for synthetic)")
    parser.add_argument("--dataset-kwargs", default="{}", help="JSON, e.g. '{\"class_names\": [...]}' for folder")
    parser.add_argument("--scale", type=float, default=1.0, help="rescale images at load (0.5 = half resolution)")
    parser.add_argument(
        "--model",
        default=None,
        help=f"one of {', '.join(sorted(MODELS))} or a factory's import path 'package.module:function' "
        "(default: the dataset preset's model)",
    )
    parser.add_argument("--epochs", type=int, default=200, help="maximum epochs")
    parser.add_argument(
        "--patience", type=int, default=15, help="stop after this many epochs without a better val mIoU"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the preset's pretrain_lr)")
    parser.add_argument(
        "--crop", type=int, nargs=2, default=None, metavar=("H", "W"), help="training crop (default: whole image)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        help="torch CPU threads (default 1, as the other commands: the result then does not depend on the core count)",
    )
    parser.add_argument(
        "--out", default=None, help="output folder (default runs/supervised-<dataset>-<model>-s<scale>)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with torch_threads(args.threads):
        return _train(args)


def _train(args: argparse.Namespace) -> dict:
    """The supervised run proper, on the torch threads ``main`` set."""
    model_name = args.model or preset_value(args.dataset, "model", "train")
    lr = args.lr or preset_value(args.dataset, "pretrain_lr", "train")
    out = Path(args.out or f"runs/supervised-{args.dataset}-{model_name}-s{args.scale:g}")
    out.mkdir(parents=True, exist_ok=True)

    splits = load_splits(
        args.dataset, root=args.data_root, scale=args.scale, seed=args.seed, **json.loads(args.dataset_kwargs)
    )
    train, val, test = splits["train"], splits["val"], splits["test"]
    with seeded_torch(args.seed, torch.device("cpu")):
        model = build_model(model_name, train.num_classes)
    trainer = SegTrainer(
        model,
        train.num_classes,
        train.ignore_index,
        args.device,
        OptimConfig("adam", lr, weight_decay=1e-4),
        batch_size=args.batch_size,
        freeze_bn=False,
    )
    height, width = train.image_size
    crop = tuple(args.crop) if args.crop else (height, width)
    n = len(train)
    started = time.time()

    def progress(epoch: int, loss: float, miou: float) -> None:
        print(f"epoch {epoch:3d}  loss {loss:.4f}  val mIoU {miou:.4f}  ({time.time() - started:.0f} s)", flush=True)

    with seeded_torch(args.seed, trainer.device):
        report = trainer.fit(
            train.images.to(trainer.device),
            train.labels.to(trainer.device).long(),
            torch.arange(n),
            whole_image_boxes(n, (height, width)),
            val.images,
            val.labels,
            crop,
            torch.Generator().manual_seed(args.seed),
            max_epochs=args.epochs,
            patience=args.patience,
            progress=progress,
            checkpoint=out / "checkpoint.pt",
        )
    result = trainer.evaluate(test.images, test.labels)
    summary = {
        "dataset": args.dataset,
        "scale": args.scale,
        "image_size": [height, width],
        "model": model_name,
        "train_images": n,
        "best_epoch": report["best_epoch"],
        "best_val_miou": report["best_val_miou"],
        "test_miou": result.miou,
        "test_per_class_iou": dict(zip(train.class_names, result.per_class_iou)),
        "history": report["history"],
        "args": vars(args),
        "wall_time_s_this_session": time.time() - started,
    }
    torch.save(trainer.model.state_dict(), out / "model.pt")
    atomic_write_json(summary, out / "results.json")
    atomic_write_text(results_markdown(summary), out / "results.md")
    print(results_markdown(summary))
    return summary


def results_markdown(summary: dict) -> str:
    lines = [
        f"Supervised {summary['model']} on {summary['dataset']} at scale {summary['scale']} "
        f"({summary['image_size'][0]}x{summary['image_size'][1]}), {summary['train_images']} training images",
        "",
        f"best val mIoU {summary['best_val_miou']:.4f} (epoch {summary['best_epoch']}), **test mIoU {summary['test_miou']:.4f}**",
        "",
        "| class | test IoU |",
        "|---|---|",
    ]
    lines += [f"| {name} | {iou:.4f} |" for name, iou in summary["test_per_class_iou"].items()]
    return "\n".join(lines) + "\n"


def cli(argv: list[str] | None = None) -> int:
    """The ``segal-supervised`` command: exit status 0 (usage errors exit 2 from argparse)."""
    main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
