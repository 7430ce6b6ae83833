"""Label Studio both ways: the tasks and labelling interface segal-request writes, the image URLs Label Studio
serves, its brush run-length format, the two exports segal-merge-labels reads, and a small REST client.

Formats, as Label Studio 1.23 documents and produces them (labelstud.io/guide):

- a **task** is ``{"data": {"image": URL, ...}, "predictions": [{"model_version", "score", "result": [...]}]}``;
  a rectangle result holds ``x, y, width, height`` in percent of the image;
- **local files** are served at ``/data/local-files/?d=<path relative to the document root>`` when
  ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``, ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` names the root, and
  the project has a Local Files storage whose path is the images' folder, strictly below the root;
- a **brush** result is ``{"type": "brushlabels", "value": {"format": "rle", "rle": [bytes], "brushlabels":
  [class]}, "original_width", "original_height"}``. The RLE packs the flattened RGBA canvas (H x W x 4 bytes;
  the alpha byte is the mask) as a bit stream, most significant bit first: 32 bits value count, 5 bits word
  size - 1, four 4-bit run-length sizes - 1; then chunks of a 1-bit flag, a 2-bit size index and (run - 1) in
  that many bits, followed by one word repeated ``run`` times (flag 1) or ``run`` literal words (flag 0);
- the **JSON export** is a list of tasks with their ``annotations`` (each a ``result`` list, ``was_cancelled``);
- the **brush-to-PNG export** is one grey mask per brush result, named
  ``task-<task id>-annotation-<annotation id>-by-<user>-<control>-<label>-<n>.png``; it does not say which image a
  task is, so it is read together with the JSON export (or the tasks list of the API).

The decoder is ours (about 30 lines, tested against masks Label Studio itself exported,
tests/data/label_studio/): the one maintained implementation, label-studio-converter, pulls in Label Studio's
SDK and its dependencies for a function this small.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

REQUEST_CONTROL = "request"  # the RectangleLabels control the pre-annotations belong to
BRUSH_CONTROL = "classes"  # the BrushLabels control the classes are painted with
IMAGE_OBJECT = "image"
REQUEST_LABEL = "label this region"
LOCAL_FILES_PREFIX = "/data/local-files/?d="
MASK_THRESHOLD = 128  # alpha (JSON) or grey value (PNG export) from which a brush pixel counts as painted


# ---- what segal-request writes --------------------------------------------------------------------
def local_files_url(image: Path, document_root: Path) -> str:
    """The URL Label Studio serves ``image`` at, for local files below ``document_root``."""
    image, root = Path(image).resolve(), Path(document_root).resolve()
    try:
        relative = image.relative_to(root)
    except ValueError:
        raise ValueError(
            f"{image} is not below the Label Studio document root {root}: pass the folder "
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT names (a parent of --images) as --document-root"
        ) from None
    if len(relative.parts) < 2:
        raise ValueError(
            f"{image} lies directly in the document root {root}; Label Studio serves only files inside a storage "
            "folder strictly below the root: use the parent of --images as --document-root"
        )
    return LOCAL_FILES_PREFIX + urllib.parse.quote(relative.as_posix(), safe="/")


def label_studio_tasks(requests: dict[str, Any], image_urls: dict[str, str]) -> list[dict[str, Any]]:
    """One task per image with requests: one rectangle pre-annotation (percent of the image) per region, the
    per-region policy score on each rectangle, and the image's best region score as the prediction's ``score``
    (Label Studio sorts and samples tasks by it). ``image_urls``: file name -> URL."""
    height, width = requests["settings"]["image_size"]
    tasks = []
    for image in requests["images"]:
        result = [{
            "id": f"r{region['order']}",
            "from_name": REQUEST_CONTROL,
            "to_name": IMAGE_OBJECT,
            "type": "rectanglelabels",
            "original_width": width,
            "original_height": height,
            "image_rotation": 0,
            "value": {
                "x": 100.0 * region["box"]["x"] / width, "y": 100.0 * region["box"]["y"] / height,
                "width": 100.0 * region["box"]["width"] / width, "height": 100.0 * region["box"]["height"] / height,
                "rotation": 0, "rectanglelabels": [REQUEST_LABEL],
            },
            **({"score": region["score"]} if region["score"] is not None else {}),
        } for region in image["regions"]]
        scores = [r["score"] for r in image["regions"] if r["score"] is not None]
        prediction = {"model_version": f"segal {requests['settings']['policy']}", "result": result}
        if scores:
            prediction["score"] = max(scores)
        tasks.append({
            "data": {"image": image_urls[image["file"]], "segal_file": image["file"],
                     "segal_order": [r["order"] for r in image["regions"]]},
            "predictions": [prediction],
        })
    return tasks


def label_studio_config(class_names: Sequence[str]) -> str:
    """A labelling interface for the tasks: the requested rectangles, and a brush per class to paint inside them."""
    labels = "\n".join(f'    <Label value="{name}"/>' for name in class_names)
    return (
        "<View>\n"
        f'  <Image name="{IMAGE_OBJECT}" value="$image" zoom="true"/>\n'
        f'  <RectangleLabels name="{REQUEST_CONTROL}" toName="{IMAGE_OBJECT}">\n'
        f'    <Label value="{REQUEST_LABEL}" background="#ff0000"/>\n'
        "  </RectangleLabels>\n"
        f'  <BrushLabels name="{BRUSH_CONTROL}" toName="{IMAGE_OBJECT}">\n{labels}\n  </BrushLabels>\n'
        "</View>\n"
    )


# ---- the brush run-length format -----------------------------------------------------------------
def decode_rle(rle: Sequence[int]) -> np.ndarray:
    """Label Studio's brush RLE -> the flat uint8 array it encodes (H * W * 4 RGBA values)."""
    bits = np.unpackbits(np.asarray(rle, dtype=np.uint8))
    position = 0

    def read(count: int) -> int:
        nonlocal position
        if position + count > bits.size:
            raise ValueError("truncated brush RLE")
        value = 0
        for bit in bits[position : position + count]:
            value = (value << 1) | int(bit)
        position += count
        return value

    total = read(32)
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(total, dtype=np.uint8)
    i = 0
    while i < total:
        repeat = read(1)
        end = min(total, i + 1 + read(sizes[read(2)]))
        if repeat:
            out[i:end] = read(word)
        else:
            for k in range(i, end):
                out[k] = read(word)
        i = end
    return out


def encode_rle(values: np.ndarray, sizes: Sequence[int] = (3, 6, 10, 16)) -> list[int]:
    """Flat uint8 values -> brush RLE (repeat chunks only, 8-bit words): what Label Studio's editor reads back."""
    values = np.asarray(values, dtype=np.uint8).reshape(-1)
    bits: list[str] = [format(values.size, "032b"), format(7, "05b"), *(format(s - 1, "04b") for s in sizes)]
    change = np.flatnonzero(np.diff(values.astype(np.int16))) + 1
    starts, ends = np.concatenate([[0], change]), np.concatenate([change, [values.size]])
    for start, end in zip(starts.tolist(), ends.tolist()):
        while start < end:
            run = min(end - start, 1 << sizes[-1])
            index = next(k for k, s in enumerate(sizes) if run - 1 < (1 << s))
            bits.append("1" + format(index, "02b") + format(run - 1, f"0{sizes[index]}b") + format(int(values[start]), "08b"))
            start += run
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return [int(stream[k : k + 8], 2) for k in range(0, len(stream), 8)]


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """A bool [H, W] mask as the RLE of a brush stroke (white, opaque where painted)."""
    rgba = np.repeat((np.asarray(mask, dtype=bool).astype(np.uint8) * 255)[..., None], 4, axis=-1)
    return encode_rle(rgba)


def rle_to_mask(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """A brush result's RLE -> bool [H, W] (the alpha channel, painted from MASK_THRESHOLD)."""
    flat = decode_rle(rle)
    if flat.size != height * width * 4:
        raise ValueError(f"brush RLE holds {flat.size} values, a {width}x{height} RGBA mask needs {height * width * 4}")
    return flat.reshape(height, width, 4)[..., 3] >= MASK_THRESHOLD


# ---- the exports ---------------------------------------------------------------------------------
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
                raise ValueError(f"task {task.get('id')}: a brush mask of {size[1]}x{size[0]} (WxH) on a "
                                 f"{width}x{height} image")
            value = result["value"]
            if value.get("format", "rle") != "rle":
                raise ValueError(f"task {task.get('id')}: brush format {value.get('format')!r}, only 'rle' is read")
            for name in value.get("brushlabels", []):
                masks.append((name, rle_to_mask(value["rle"], height, width)))
        found[task_file(task)] = Annotation(int(task.get("id", -1)), int(annotation.get("id", -1)), task_file(task), masks)
    return found


PNG_NAME = re.compile(rf"^task-(\d+)-annotation-(\d+)-by-(.+?)-{BRUSH_CONTROL}-(.+)-(\d+)\.png$")


def annotations_from_png_export(source: Path, tasks: Iterable[dict[str, Any]], image_size: Sequence[int]) -> dict[str, Annotation]:
    """file name -> its latest annotation's masks, from a brush-to-PNG export (a .zip or its unpacked folder);
    ``tasks`` (a JSON export, or the API's task list) say which image each task id is."""
    from io import BytesIO

    from PIL import Image

    files_by_task = {int(task["id"]): task_file(task) for task in tasks}
    source = Path(source)
    if source.is_dir():
        entries = {p.name: p.read_bytes for p in source.rglob("*.png")}
    else:
        archive = zipfile.ZipFile(source)
        entries = {Path(n).name: (lambda n=n: archive.read(n)) for n in archive.namelist() if n.endswith(".png")}
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
        raise ValueError(f"{source} holds no brush masks named task-<id>-annotation-<id>-by-<user>-{BRUSH_CONTROL}-"
                         "<label>-<n>.png: is it Label Studio's 'Brush labels to PNG' export of segal's tasks?")
    found: dict[str, Annotation] = {}
    for task_id, annotation_id, label, name in parsed:
        if annotation_id != newest[task_id]:
            continue
        if task_id not in files_by_task:
            raise ValueError(f"{name}: task {task_id} is not in the JSON export given with it (--tasks)")
        with Image.open(BytesIO(entries[name]())) as picture:
            grey = np.asarray(picture.convert("L"))
        if grey.shape != tuple(image_size):
            raise ValueError(f"{name} is {grey.shape[1]}x{grey.shape[0]} (WxH), the image {image_size[1]}x{image_size[0]}")
        file = files_by_task[task_id]
        found.setdefault(file, Annotation(task_id, annotation_id, file, [])).masks.append((label, grey >= MASK_THRESHOLD))
    return found


# ---- a small REST client (token auth) ------------------------------------------------------------
class LabelStudio:
    """The few calls of Label Studio's REST API the loop needs, with the standard library only."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.auth: str | None = None
        if token.count(".") == 2:  # a personal access token (a JWT refresh token): exchanged for an access token
            self.auth = f"Bearer {self.call('POST', '/api/token/refresh', {'refresh': token})['access']}"
        else:  # a legacy token
            self.auth = f"Token {token}"

    def call(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **({"Authorization": self.auth} if self.auth else {})}
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"Label Studio {method} {path}: HTTP {error.code} {error.read()[:300]!r}") from None
        return payload if raw else (json.loads(payload) if payload else None)

    def create_project(self, title: str, label_config: str) -> dict[str, Any]:
        return self.call("POST", "/api/projects", {"title": title, "label_config": label_config})

    def add_local_storage(self, project: int, folder: Path) -> dict[str, Any]:
        """A Local Files source storage for ``folder`` (not synced: the tasks are imported with their URLs)."""
        return self.call("POST", "/api/storages/localfiles", {
            "project": project, "path": str(folder), "title": "segal images", "use_blob_urls": False})

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        return self.call("POST", f"/api/projects/{project}/import", tasks)

    def tasks(self, project: int) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/tasks?project={project}&page_size=1000&fields=all")["tasks"]

    def annotate(self, task: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        return self.call("POST", f"/api/tasks/{task}/annotations", {"result": result})

    def export(self, project: int, export_type: str = "JSON") -> bytes:
        """``JSON`` (the tasks with annotations) or ``BRUSH_TO_PNG`` (a zip of masks)."""
        return self.call("GET", f"/api/projects/{project}/export?exportType={export_type}", raw=True)


def setup_project(client: LabelStudio, requests_dir: Path, title: str) -> dict[str, Any]:
    """Create a project with segal's labelling interface, a Local Files storage for the images and import the
    tasks of one segal-request output folder; returns the project (with ``tasks_imported``)."""
    requests_dir = Path(requests_dir)
    settings = json.loads((requests_dir / "requests.json").read_text())["settings"]
    project = client.create_project(title, (requests_dir / "label_studio" / "label_config.xml").read_text())
    client.add_local_storage(project["id"], Path(settings["images"]))
    tasks = json.loads((requests_dir / "label_studio" / "tasks.json").read_text())
    imported = client.import_tasks(project["id"], tasks)
    return {**project, "tasks_imported": imported.get("task_count", len(tasks))}


def setup_main(argv: list[str] | None = None) -> int:
    """``python -m experiments.requests label-studio``: create the project, storage and tasks of a request round."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m experiments.requests label-studio",
                                     description=setup_main.__doc__.split(": ", 1)[1])
    parser.add_argument("requests_dir", type=Path, help="the --out folder of segal-request")
    parser.add_argument("--url", default="http://localhost:8080", help="Label Studio's address")
    parser.add_argument("--token", default=os.environ.get("LABEL_STUDIO_API_KEY"),
                        help="an access token (Account & Settings; default $LABEL_STUDIO_API_KEY)")
    parser.add_argument("--title", default="segal requests")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token or set LABEL_STUDIO_API_KEY")
    project = setup_project(LabelStudio(args.url, args.token), args.requests_dir, args.title)
    print(f"project {project['id']} with {project['tasks_imported']} tasks: {args.url}/projects/{project['id']}/data")
    return 0

