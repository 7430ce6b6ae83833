"""``segal-merge-labels``: the annotated requested regions back into the labelled folder.

Annotations come as Label Studio's JSON export (brush results), its brush-to-PNG export (with the JSON export
naming the tasks), or a folder of label PNGs of class ids named like the images. Only pixels inside the
requested boxes are taken; labels already in the folder are kept elsewhere. Images nobody annotated yet are
listed and left for later. Every new file is written to a staging folder first and moved into place only when
all of them are ready; a failure while moving puts back what was there, so the labelled folder is never
left half-updated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segal_env.data.io import IGNORE_INDEX, LabelMapping, read_label

from .exports import Annotation, annotations_from_json, annotations_from_png_export, read_json_export


def resolve_path(value: str, requests_file: Path) -> Path:
    """A path recorded in requests.json: absolute since this version; older files held it as typed, relative to
    where segal-request ran (tried from the requests folder's parent, then from here)."""
    path = Path(value)
    if path.is_absolute():
        return path
    here = Path(os.path.abspath(requests_file)).parent
    for base in (here.parent, here, Path.cwd()):
        if (base / path).exists():
            return Path(os.path.abspath(base / path))
    return Path(os.path.abspath(path))


def annotated_labels(annotations: dict[str, Annotation], class_names: list[str]) -> dict[str, np.ndarray | None]:
    """file -> uint8 [H, W] class ids (IGNORE_INDEX where nothing was painted), brush label names mapped by name."""
    ids = {name: i for i, name in enumerate(class_names)}
    labels: dict[str, np.ndarray | None] = {}
    for file, annotation in annotations.items():
        label: np.ndarray | None = None
        for name, mask in annotation.masks:
            if name not in ids:
                raise ValueError(
                    f"{file} (task {annotation.task_id}): brush label {name!r} is not one of the classes "
                    f"of requests.json {class_names}"
                )
            if label is None:
                label = np.full(mask.shape, IGNORE_INDEX, dtype=np.uint8)
            label[mask] = ids[name]
        labels[file] = label
    return labels


def read_annotations(source: Path, tasks: Path | None, requests: dict[str, Any]) -> dict[str, np.ndarray | None]:
    """file -> annotated class ids for every requested image that has an annotation (None: annotated, nothing
    painted); images without an annotation are absent."""
    settings = requests["settings"]
    size = settings["image_size"]
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".json":
        found = annotations_from_json(read_json_export(source), size)
        return annotated_labels(found, settings["class_names"])
    is_png_export = source.suffix.lower() == ".zip" or (
        source.is_dir() and any(source.rglob("task-*-annotation-*.png"))
    )
    if is_png_export:
        if tasks is None:
            raise ValueError(
                f"{source} is a brush-to-PNG export: give the JSON export of the same project with --tasks "
                "(it says which image each task id is)"
            )
        found = annotations_from_png_export(source, read_json_export(tasks), size)
        return annotated_labels(found, settings["class_names"])
    if not source.is_dir():
        raise FileNotFoundError(
            f"--annotations {source}: not a Label Studio export (.json, .zip) nor a folder of label PNGs"
        )
    mapping = LabelMapping.class_ids(len(settings["class_names"]), void_value=settings["ignore_index"])
    labels: dict[str, np.ndarray | None] = {}
    for image in requests["images"]:
        path = source / f"{Path(image['file']).stem}.png"
        if path.is_file():
            labels[image["file"]] = mapping.apply(read_label(path), path).numpy()  # ignore value -> IGNORE_INDEX
    return labels


@dataclass
class Staging:
    """New files of a folder written aside (same file system), then moved into place all together or not at all."""

    folder: Path
    staged: dict[Path, Path] = field(default_factory=dict)  # final path -> staged file

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(dir=self.folder, prefix=".segal-merge-"))

    def path_for(self, target: Path) -> Path:
        staged = self.root / "new" / target.relative_to(self.folder)
        staged.parent.mkdir(parents=True, exist_ok=True)
        self.staged[target] = staged
        return staged

    def commit(self) -> None:
        """Move every staged file onto its target; on any failure, restore every target as it was."""
        done: list[tuple[Path, Path | None]] = []  # (target, its backup or None when it did not exist)
        try:
            for target, staged in self.staged.items():
                backup = None
                if target.exists():
                    backup = self.root / "old" / target.relative_to(self.folder)
                    backup.parent.mkdir(parents=True, exist_ok=True)
                    move(target, backup)
                done.append((target, backup))
                target.parent.mkdir(parents=True, exist_ok=True)
                move(staged, target)
        except BaseException:
            for target, backup in reversed(done):
                if target.exists():
                    target.unlink()
                if backup is not None:
                    os.replace(backup, target)
            raise

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def move(source: Path, target: Path) -> None:
    """One atomic rename (a seam for tests that fail a merge halfway)."""
    os.replace(source, target)


def merge_annotations(
    requests_file: Path, annotations: Path, labeled: Path, tasks: Path | None = None
) -> dict[str, Any]:
    """Merge the annotated requested regions into ``labeled`` (labels/<stem>.png, and the image into images/).

    Returns ``{"merged": {file: {"labelled_pixels", "requested_pixels"}}, "not_annotated": [files]}``."""
    from PIL import Image

    requests_file = Path(requests_file)
    requests = json.loads(requests_file.read_text())
    settings = requests["settings"]
    ignore = settings["ignore_index"]
    height, width = settings["image_size"]
    labels = read_annotations(Path(annotations), None if tasks is None else Path(tasks), requests)
    mapping = LabelMapping.class_ids(len(settings["class_names"]), void_value=ignore)
    labeled = Path(labeled)
    staging = Staging(labeled)
    merged, missing = {}, []
    try:
        for image in requests["images"]:
            if image["file"] not in labels:
                missing.append(image["file"])
                continue
            annotated = labels[image["file"]]
            if annotated is None:
                annotated = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
            if list(annotated.shape) != [height, width]:
                raise ValueError(
                    f"the annotation of {image['file']} is {annotated.shape[1]}x{annotated.shape[0]} "
                    f"(WxH); the image is {width}x{height}"
                )
            source = resolve_path(image["path"], requests_file)
            if not source.is_file():
                raise FileNotFoundError(f"the image {image['path']} of requests.json is gone; nothing was merged")
            inside = np.zeros(annotated.shape, dtype=bool)
            for region in image["regions"]:
                box = region["box"]
                inside[box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]] = True
            target = labeled / "labels" / f"{Path(image['file']).stem}.png"
            label = (
                mapping.apply(read_label(target), target).numpy()
                if target.is_file()
                else np.full(annotated.shape, IGNORE_INDEX, dtype=np.uint8)
            )
            new = inside & (annotated != IGNORE_INDEX)
            label[new] = annotated[new]
            label[label == IGNORE_INDEX] = ignore  # back to the user's ignore value on disk
            Image.fromarray(label).save(staging.path_for(target), format="PNG")
            copy = labeled / "images" / image["file"]
            if not copy.exists():
                shutil.copy2(source, staging.path_for(copy))
            merged[image["file"]] = {"labelled_pixels": int(new.sum()), "requested_pixels": int(inside.sum())}
        staging.commit()
    finally:
        staging.discard()
    return {"merged": merged, "not_annotated": missing}


def merge_main(argv: list[str] | None = None) -> int:
    """``segal-merge-labels``: the annotated requested regions into the labelled folder."""
    parser = argparse.ArgumentParser(prog="segal-merge-labels", description=__doc__.split("\n")[0].split(": ", 1)[1])
    parser.add_argument("--requests", type=Path, required=True, help="requests.json of segal-request")
    parser.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="Label Studio's JSON export (.json), its 'Brush labels to PNG' export (.zip or its folder, "
        "with --tasks), or a folder of label PNGs (class ids) named like the images",
    )
    parser.add_argument("--tasks", type=Path, help="with a brush-to-PNG export: the JSON export of the same project")
    parser.add_argument("--labeled", type=Path, required=True, help="the labelled folder to merge into")
    args = parser.parse_args(argv)
    try:
        report = merge_annotations(args.requests, args.annotations, args.labeled, args.tasks)
    except (ValueError, FileNotFoundError) as error:
        parser.error(f"{error}; {args.labeled} was left unchanged")
    merged, missing = report["merged"], report["not_annotated"]
    pixels = sum(m["labelled_pixels"] for m in merged.values())
    print(f"merged {pixels} labelled pixels of {len(merged)} images into {args.labeled}")
    empty = [file for file, m in merged.items() if m["labelled_pixels"] == 0]
    if empty:
        print(f"annotated but nothing painted inside the requested regions: {', '.join(empty)}")
    if missing:
        print(f"not annotated yet ({len(missing)}, merge again after annotating them): {', '.join(missing)}")
    return 0
