"""Label Studio's exports of segal's tasks, read back: the JSON export (a list of tasks with their ``annotations``,
each a ``result`` list and ``was_cancelled``; brush results in RLE, brush.py) and the brush-to-PNG export (one grey
mask per brush result, named ``task-<task id>-annotation-<annotation id>-by-<user>-<control>-<label>-<n>.png``; it
does not say which image a task is, so it is read together with the JSON export)."""

from __future__ import annotations

import json
import re
import urllib.parse
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .brush import MASK_THRESHOLD, rle_to_mask
from .label_studio import BRUSH_CONTROL


@dataclass
class Annotation:
    """The annotation of one task that is merged: per class name the painted pixels, bool [H, W]."""

    task_id: int
    annotation_id: int
    file: str
    masks: list[tuple[str, np.ndarray]]


def task_file(task: dict[str, Any]) -> str:
    """The image file name of a task segal wrote (``data.segal_file``), else the last part of its image URL."""
    data = task.get("data", {})
    if "segal_file" in data:
        return str(data["segal_file"])
    url = urllib.parse.unquote(str(data.get("image", "")))
    return url.replace("\\", "/").rstrip("/").split("/")[-1].split("=")[-1]


def latest_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    """The newest annotation that was submitted (not skipped) with a result; None when there is none."""
    done = [a for a in task.get("annotations", []) if not a.get("was_cancelled") and a.get("result")]
    return max(done, key=lambda a: a.get("id", 0)) if done else None


def read_json_export(path: Path) -> list[dict[str, Any]]:
    tasks = json.loads(Path(path).read_text())
    if not isinstance(tasks, list) or any(not isinstance(t, dict) or "data" not in t for t in tasks):
        raise ValueError(f"{path} is not a Label Studio JSON export (a list of tasks with 'data' and 'annotations')")
    return tasks


def annotations_from_json(tasks: Iterable[dict[str, Any]], image_size: Sequence[int]) -> dict[str, Annotation]:
    """file name -> its latest annotation's brush masks, from a JSON export (brush results in RLE)."""
    height, width = image_size
    found: dict[str, Annotation] = {}
    for task in tasks:
        annotation = latest_annotation(task)
        if annotation is None:
            continue
        masks = []
        for result in annotation["result"]:
            if result.get("type") != "brushlabels":
                continue  # the request rectangles, if the annotator kept them
            size = (result.get("original_height", height), result.get("original_width", width))
            if tuple(size) != (height, width):
                raise ValueError(
                    f"task {task.get('id')}: a brush mask of {size[1]}x{size[0]} (WxH) on a {width}x{height} image"
                )
            value = result["value"]
            if value.get("format", "rle") != "rle":
                raise ValueError(f"task {task.get('id')}: brush format {value.get('format')!r}, only 'rle' is read")
            for name in value.get("brushlabels", []):
                masks.append((name, rle_to_mask(value["rle"], height, width)))
        found[task_file(task)] = Annotation(
            int(task.get("id", -1)), int(annotation.get("id", -1)), task_file(task), masks
        )
    return found


PNG_NAME = re.compile(rf"^task-(\d+)-annotation-(\d+)-by-(.+?)-{BRUSH_CONTROL}-(.+)-(\d+)\.png$")


def annotations_from_png_export(
    source: Path, tasks: Iterable[dict[str, Any]], image_size: Sequence[int]
) -> dict[str, Annotation]:
    """file name -> its latest annotation's masks, from a brush-to-PNG export (a .zip or its unpacked folder);
    ``tasks`` (a JSON export, or the API's task list) say which image each task id is."""
    from io import BytesIO

    from PIL import Image

    files_by_task = {int(task["id"]): task_file(task) for task in tasks}
    source = Path(source)
    entries: dict[str, Callable[[], bytes]]
    if source.is_dir():
        entries = {p.name: p.read_bytes for p in source.rglob("*.png")}
    else:
        archive = zipfile.ZipFile(source)
        entries = {Path(n).name: partial(archive.read, n) for n in archive.namelist() if n.endswith(".png")}
    newest: dict[int, int] = {}
    parsed = []
    for name in sorted(entries):
        match = PNG_NAME.match(name)
        if match is None:
            continue
        task_id, annotation_id, label = int(match.group(1)), int(match.group(2)), match.group(4)
        newest[task_id] = max(newest.get(task_id, annotation_id), annotation_id)
        parsed.append((task_id, annotation_id, label, name))
    if not parsed:
        raise ValueError(
            f"{source} holds no brush masks named task-<id>-annotation-<id>-by-<user>-{BRUSH_CONTROL}-"
            "<label>-<n>.png: is it Label Studio's 'Brush labels to PNG' export of segal's tasks?"
        )
    found: dict[str, Annotation] = {}
    for task_id, annotation_id, label, name in parsed:
        if annotation_id != newest[task_id]:
            continue
        if task_id not in files_by_task:
            raise ValueError(f"{name}: task {task_id} is not in the JSON export given with it (--tasks)")
        with Image.open(BytesIO(entries[name]())) as picture:
            grey = np.asarray(picture.convert("L"))
        if grey.shape != tuple(image_size):
            raise ValueError(
                f"{name} is {grey.shape[1]}x{grey.shape[0]} (WxH), the image {image_size[1]}x{image_size[0]}"
            )
        file = files_by_task[task_id]
        found.setdefault(file, Annotation(task_id, annotation_id, file, [])).masks.append(
            (label, grey >= MASK_THRESHOLD)
        )
    return found
