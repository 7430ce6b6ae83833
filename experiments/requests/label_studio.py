"""The Label Studio side of segal-request: the tasks and labelling interface it writes, and the image URLs Label
Studio serves. Formats as Label Studio 1.23 documents and produces them (labelstud.io/guide):

- a **task** is ``{"data": {"image": URL, ...}, "predictions": [{"model_version", "score", "result": [...]}]}``;
  a rectangle result holds ``x, y, width, height`` in percent of the image;
- **local files** are served at ``/data/local-files/?d=<path relative to the document root>`` when
  ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``, ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` names the root, and
  the project has a Local Files storage whose path is the images' folder, strictly below the root.

What comes back: brush.py (the brush run-length format), exports.py (the JSON and brush-to-PNG exports);
api.py: the REST calls that create the project, its storage and the tasks.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any, Sequence

REQUEST_CONTROL = "request"  # the RectangleLabels control the pre-annotations belong to
BRUSH_CONTROL = "classes"  # the BrushLabels control the classes are painted with
IMAGE_OBJECT = "image"
REQUEST_LABEL = "label this region"
LOCAL_FILES_PREFIX = "/data/local-files/?d="
MASK_THRESHOLD = 128  # alpha (JSON) or grey value (PNG export) from which a brush pixel counts as painted


# ---- what segal-request writes --------------------------------------------------------------------
def local_files_url(image: Path, document_root: Path) -> str:
    """The URL Label Studio serves ``image`` at, for local files below ``document_root``."""
    image, root = Path(os.path.abspath(image)), Path(os.path.abspath(document_root))  # links kept
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
        result = [
            {
                "id": f"r{region['order']}",
                "from_name": REQUEST_CONTROL,
                "to_name": IMAGE_OBJECT,
                "type": "rectanglelabels",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": {
                    "x": 100.0 * region["box"]["x"] / width,
                    "y": 100.0 * region["box"]["y"] / height,
                    "width": 100.0 * region["box"]["width"] / width,
                    "height": 100.0 * region["box"]["height"] / height,
                    "rotation": 0,
                    "rectanglelabels": [REQUEST_LABEL],
                },
                **({"score": region["score"]} if region["score"] is not None else {}),
            }
            for region in image["regions"]
        ]
        scores = [r["score"] for r in image["regions"] if r["score"] is not None]
        prediction = {"model_version": f"segal {requests['settings']['policy']}", "result": result}
        if scores:
            prediction["score"] = max(scores)
        tasks.append(
            {
                "data": {
                    "image": image_urls[image["file"]],
                    "segal_file": image["file"],
                    "segal_order": [r["order"] for r in image["regions"]],
                },
                "predictions": [prediction],
            }
        )
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
