"""``segal-request``: the inputs checked, the network, the policy's episode, and the three outputs."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from agents import make_agent
from experiments.folder_lock import FolderBusy, FolderLock
from segal_env.config import DEFAULT_EXTRAS
from segal_env.data.folder import LAYOUT as FOLDER_LAYOUT
from segal_env.data.io import IGNORE_INDEX
from segal_env.models import ModelSpec
from segal_env.request_env import RequestEnv
from segal_env.runtime import resolve_device, thread_count, torch_threads
from segal_env.storage import atomic_write, atomic_write_json, atomic_write_text

from .inputs import check_inputs
from .label_studio import LOCAL_FILES_PREFIX, label_studio_config, label_studio_tasks
from .network import DEFAULT_ARCH, DEFAULT_TRAIN_STEPS, build_network
from .selection import choose_regions, pixel_box

PAPER_NUM_POOLS = 24  # K of the paper's CamVid setting


def draw_overlay(image_path: Path, regions: list[dict[str, Any]], path: Path) -> Path:
    """The image with each requested region outlined and numbered by its order of choice."""
    from PIL import Image, ImageDraw, ImageFont

    with Image.open(image_path) as source:
        picture = source.convert("RGB")
    draw = ImageDraw.Draw(picture)
    line = max(2, round(min(picture.size) / 150))
    font = ImageFont.load_default(size=max(10, min(picture.size) // 20))
    for region in regions:
        box = region["box"]
        corners = (box["x"], box["y"], box["x"] + box["width"] - 1, box["y"] + box["height"] - 1)
        draw.rectangle(corners, outline=(255, 40, 40), width=line)
        draw.text(
            (box["x"] + line + 2, box["y"] + line),
            str(region["order"]),
            fill=(255, 255, 0),
            font=font,
            stroke_width=1,
            stroke_fill=(0, 0, 0),
        )
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


def request_labels(
    images: Path,
    labeled: Path,
    class_names: Sequence[str],
    policy: str,
    budget: int,
    region_size: Sequence[int],
    out: Path,
    model_file: Path | None = None,
    arch: ModelSpec | None = None,
    train_steps: int = DEFAULT_TRAIN_STEPS,
    lr: float = 1e-3,
    num_pools: int | None = None,
    pool_size: int = 10,
    scale: float = 1.0,
    extra_features: Sequence[str] = DEFAULT_EXTRAS,
    mc_samples: int = 20,
    ignore_index: int = IGNORE_INDEX,
    seed: int = 0,
    device: str = "auto",
    document_root: Path | None = None,
    url_prefix: str | None = None,
    overlays: bool = True,
) -> dict[str, Any]:
    """Choose ``budget`` regions of ``images`` with ``policy`` and write the outputs (experiments.requests).
    Returns what requests.json holds. ``region_size`` is (height, width) at the working ``scale``. Image URLs in
    the tasks: ``document_root`` (Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT; default the parent of
    ``images``) gives local-files URLs; ``url_prefix`` instead puts the file name after a prefix of your own."""
    out = Path(out)
    num_pools = num_pools or math.gcd(budget, PAPER_NUM_POOLS)
    if document_root is None and url_prefix is None:
        document_root = Path(os.path.abspath(images)).parent
    checked = check_inputs(
        images,
        labeled,
        class_names,
        policy,
        budget,
        region_size,
        model_file,
        num_pools,
        pool_size,
        scale,
        extra_features,
        mc_samples,
        ignore_index,
        document_root,
        url_prefix,
        train_steps,
    )
    out.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(device))
    trainer, network = build_network(
        checked.labeled, arch, checked.network_file, model_file, train_steps, lr, seed, device, out
    )
    env = RequestEnv(
        trainer,
        checked.pool,
        checked.state_images,
        region_size,
        budget,
        num_pools,
        pool_size,
        extra_features,
        mc_samples,
        exclude=checked.exclude,
    )
    agent = make_agent(checked.agent.path if checked.agent else policy, env, seed=seed, device=device)
    picks = choose_regions(env, agent, seed, class_names)

    working = (int(checked.pool.shape[-2]), int(checked.pool.shape[-1]))
    by_image: dict[int, list[dict[str, Any]]] = {}
    for pick in picks:
        image = pick["region_id"] // env.grid.per_image
        by_image.setdefault(image, []).append(
            {**pick, "box": pixel_box(pick["region_id"], env, checked.original, working)}
        )
    paths = checked.paths
    requests: dict[str, Any] = {
        "settings": {
            "images": os.path.abspath(images),
            "labeled": os.path.abspath(labeled),
            "policy": str(policy),
            "budget": budget,
            "region_size": list(region_size),
            "num_pools": num_pools,
            "pool_size": pool_size,
            "scale": scale,
            "image_size": list(checked.original),
            "class_names": list(class_names),
            "extra_features": list(extra_features),
            "mc_samples": mc_samples,
            "ignore_index": ignore_index,
            "seed": seed,
            "document_root": None if document_root is None else os.path.abspath(document_root),
            **network,
        },
        "images": [
            {"file": paths[i].name, "path": str(paths[i]), "regions": regions}
            for i, regions in sorted(by_image.items())
        ],
    }
    atomic_write_json(requests, out / "requests.json")
    atomic_write_json(label_studio_tasks(requests, checked.image_urls), out / "label_studio" / "tasks.json")
    atomic_write_text(label_studio_config(class_names), out / "label_studio" / "label_config.xml")
    if overlays:
        for image in requests["images"]:
            draw_overlay(Path(image["path"]), image["regions"], out / "overlays" / f"{Path(image['file']).stem}.png")
    return requests


DESCRIPTION = "ask a labelling policy which regions of your unlabelled images a person should label next"
EPILOG = """Label Studio serves the images when it runs with
    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<--document-root>
and the project has a Local Files storage whose path is the --images folder (docs/requests.md)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segal-request",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", type=Path, required=True, help="folder of unlabelled images")
    parser.add_argument("--labeled", type=Path, required=True, help=f"your labelled images: {FOLDER_LAYOUT}")
    parser.add_argument("--class-names", nargs="+", required=True, help="one name per class id 0..C-1")
    parser.add_argument(
        "--ignore-index", type=int, default=IGNORE_INDEX, help="the label value of unlabelled pixels (default 255)"
    )
    network = parser.add_mutually_exclusive_group(required=True)
    network.add_argument("--model", type=Path, help="a network state dict (e.g. network.pt of an earlier round)")
    network.add_argument("--train-model", action="store_true", help="train the network on --labeled first")
    parser.add_argument(
        "--arch",
        default=None,
        help=f"the network: a built-in name or 'package.module:function' (default: the --model file's, else {DEFAULT_ARCH})",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=DEFAULT_TRAIN_STEPS,
        help=f"with --train-model (default {DEFAULT_TRAIN_STEPS}: ~3 min on one CPU core at 256x192)",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="peak Adam lr of --train-model")
    parser.add_argument(
        "--policy",
        default="entropy",
        help="a baseline name (entropy, bald, random, ...), a saved agent (.zip) or an error model (.npz, "
        "segal-fit-error-model)",
    )
    parser.add_argument("--budget", type=int, required=True, help="regions to request")
    parser.add_argument(
        "--region-size",
        type=int,
        nargs=2,
        required=True,
        metavar=("HEIGHT", "WIDTH"),
        help="region size in pixels at --scale; must tile the images",
    )
    parser.add_argument("--num-pools", type=int, help=f"regions per step (default gcd(budget, {PAPER_NUM_POOLS}))")
    parser.add_argument("--pool-size", type=int, default=10, help="candidates per pool (default 10)")
    parser.add_argument("--scale", type=float, default=1.0, help="work at this fraction of the image size")
    parser.add_argument("--extra-features", nargs="*", default=list(DEFAULT_EXTRAS), help="as the agent's training env")
    parser.add_argument("--mc-samples", type=int, default=20, help="MC-dropout draws for BALD")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        help="torch CPU threads (default 1: the network and the regions then do not depend on the core count)",
    )
    urls = parser.add_mutually_exclusive_group()
    urls.add_argument(
        "--document-root",
        type=Path,
        help="Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, a parent of --images: the task URLs "
        f"are {LOCAL_FILES_PREFIX}<image path below it> (default: the parent of --images)",
    )
    urls.add_argument(
        "--url-prefix", help="instead, put each image's file name after this prefix (e.g. your own web server)"
    )
    parser.add_argument("--no-overlays", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.monotonic()
    lock = FolderLock(args.out, "segal-request")
    try:
        lock.acquire()
    except FolderBusy as error:
        parser.error(f"--out: {error}")
    try:
        with torch_threads(args.threads):
            requests = request_labels(
                args.images,
                args.labeled,
                args.class_names,
                args.policy,
                args.budget,
                args.region_size,
                args.out,
                model_file=args.model,
                arch=args.arch,
                train_steps=args.train_steps,
                lr=args.lr,
                num_pools=args.num_pools,
                pool_size=args.pool_size,
                scale=args.scale,
                extra_features=args.extra_features,
                mc_samples=args.mc_samples,
                ignore_index=args.ignore_index,
                seed=args.seed,
                device=args.device,
                document_root=args.document_root,
                url_prefix=args.url_prefix,
                overlays=not args.no_overlays,
            )
    except (ValueError, FileNotFoundError, KeyError) as error:
        parser.error(f"{error} (after {time.monotonic() - start:.1f} s)")
    finally:
        lock.release()
    count = sum(len(image["regions"]) for image in requests["images"])
    root = requests["settings"]["document_root"]
    print(
        f"requested {count} regions in {len(requests['images'])} images: {args.out / 'requests.json'}, "
        f"{args.out / 'label_studio' / 'tasks.json'}, {args.out / 'overlays'}/"
    )
    if root is not None:
        print(
            f"Label Studio: start it with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true "
            f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={root}, add a Local Files storage with the path "
            f"{requests['settings']['images']} (no sync), import the tasks "
            f"(or: python -m experiments.requests label-studio {args.out} --url ... --token ...)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
