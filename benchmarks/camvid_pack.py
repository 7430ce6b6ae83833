"""Pack CamVid into a copy small enough to send to a remote GPU machine, and unpack it there.

    python benchmarks/camvid_pack.py pack ../shared/data/camvid .camvid-pack      # 182 MB -> 51 MiB
    python benchmarks/camvid_pack.py unpack .camvid-pack /tmp/camvid             # the SegNet layout again

The SegNet copy stores its 701 RGB images as PNG (177 MB). The pack stores them as JPEG (quality 95 by
default: mean absolute error about 1.3 of 255 per channel) and keeps the labels, split lists and
README byte for byte: labels must stay exact. ``unpack`` writes the images back as PNG under their
original names, so ``load_camvid`` and the D_S/D_T/D_R roles (which name files) work unchanged. The
images are then close to, not equal to, the originals: timings carry over, mIoU may move slightly.
"""

from __future__ import annotations

import argparse
import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

IMAGE_SPLITS = ("train", "val", "test")
LABEL_SPLITS = tuple(f"{split}annot" for split in IMAGE_SPLITS)
MANIFEST = "pack.json"


def _to_jpeg(job: tuple[Path, Path, int]) -> None:
    source, target, quality = job
    Image.open(source).convert("RGB").save(target, "JPEG", quality=quality)


def _to_png(job: tuple[Path, Path]) -> None:
    source, target = job
    Image.open(source).convert("RGB").save(target, "PNG", compress_level=1)


def _convert(convert, jobs: list, workers: int | None) -> None:
    """One process per core by default; ``workers=1`` converts in this process."""
    if workers == 1:
        for job in jobs:
            convert(job)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(convert, jobs, chunksize=16))


def _check_layout(root: Path, image_suffix: str) -> None:
    missing = [name for name in IMAGE_SPLITS + LABEL_SPLITS if not (root / name).is_dir()]
    if missing:
        raise SystemExit(f"{root}: missing folder(s) {', '.join(missing)}; expected the SegNet CamVid layout")
    for split in IMAGE_SPLITS:
        if not any((root / split).glob(f"*{image_suffix}")):
            raise SystemExit(f"{root / split}: no *{image_suffix} images")


def _copy_side_files(source: Path, target: Path) -> None:
    """Labels, split lists, README and the paper's split file travel unchanged."""
    for name in LABEL_SPLITS:
        shutil.copytree(source / name, target / name, dirs_exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.name != MANIFEST:
            shutil.copy2(path, target / path.name)


def pack(source: Path, target: Path, quality: int, workers: int | None) -> dict:
    _check_layout(source, ".png")
    jobs = []
    for split in IMAGE_SPLITS:
        (target / split).mkdir(parents=True, exist_ok=True)
        jobs += [(p, target / split / f"{p.stem}.jpg", quality) for p in sorted((source / split).glob("*.png"))]
    _convert(_to_jpeg, jobs, workers)
    _copy_side_files(source, target)
    manifest = {"source": str(source), "images": len(jobs), "jpeg_quality": quality}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def unpack(source: Path, target: Path, workers: int | None) -> dict:
    _check_layout(source, ".jpg")
    jobs = []
    for split in IMAGE_SPLITS:
        (target / split).mkdir(parents=True, exist_ok=True)
        jobs += [(p, target / split / f"{p.stem}.png") for p in sorted((source / split).glob("*.jpg"))]
    _convert(_to_png, jobs, workers)
    _copy_side_files(source, target)
    return {"images": len(jobs), "target": str(target)}


def size_mib(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("pack", "unpack"))
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the packed images (pack)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers {args.workers}: give at least 1")
    if not 1 <= args.quality <= 100:
        parser.error(f"--quality {args.quality}: JPEG quality runs from 1 to 100")
    if args.command == "pack":
        report = pack(args.source, args.target, args.quality, args.workers)
    else:
        report = unpack(args.source, args.target, args.workers)
    print(json.dumps({**report, "size_mib": round(size_mib(args.target), 1)}))


if __name__ == "__main__":
    main()
