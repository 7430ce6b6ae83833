"""The label-request loop against a real Label Studio server: request, import, image fetch, annotate, export, merge,
and a second round, with every step checked. Not a CI test (it needs a running server); its recorded exports are
the fixtures of tests/test_requests_label_studio.py.

Start Label Studio (its own virtual environment; docs/requests.md), with a document root that will hold the images:

    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/srv/ls-files \\
        label-studio start --no-browser --internal-host 127.0.0.1 --port 8080 \\
        --username me@example.com --password ... --user-token <token> --enable-legacy-api-token
    python benchmarks/label_studio_loop.py --url http://127.0.0.1:8080 --token <token> --document-root /srv/ls-files

The script writes synthetic images below the document root (<document root>/segal-loop/unlabeled/: 6 images, the
"unlabelled" ones, their real labels kept aside in truth/; labeled/: 4 labelled images), asks segal-request for 24
regions (--train-model), creates a project with a Local Files storage and imports the tasks through the API
(python -m experiments.requests label-studio), fetches every task's image (HTTP 200, same bytes), annotates all tasks
but one through the API by painting the real classes inside the requested boxes (brush RLE), exports JSON and brush
PNGs, merges both (same labels; the unannotated image listed, not merged), annotates the last task, merges again,
and runs a second round with the round-1 network (no region requested twice; its images load too).
``--record tests/data/label_studio`` keeps the exports and what the tests need to replay the merge.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

import segal_env  # noqa: F401
from experiments.requests import main as request_main
from experiments.requests.api import LabelStudio, setup_project
from experiments.requests.brush import mask_to_rle
from experiments.requests.label_studio import BRUSH_CONTROL, IMAGE_OBJECT
from experiments.requests.merge import merge_annotations
from segal_env.data import load_splits
from segal_env.data.synthetic import SYNTHETIC_CLASSES

REGION = (16, 16)  # the synthetic images are 96x128: 48 regions each


def check(condition: bool, what: str) -> None:
    print(f"  {'ok' if condition else 'FAILED'}: {what}", flush=True)
    if not condition:
        raise SystemExit(f"the loop failed at: {what}")


def make_folders(work: Path) -> tuple[Path, Path, Path]:
    """labeled/{images,labels} (4 images), unlabeled/ (6), truth/ (their labels, read only by this script)."""
    data = load_splits("synthetic", seed=3, n_train=10, n_val=1, n_test=1)["train"]
    labeled, unlabeled, truth = work / "labeled", work / "unlabeled", work / "truth"
    for folder in (labeled / "images", labeled / "labels", unlabeled, truth):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(10):
        image = Image.fromarray(data.images[i].permute(1, 2, 0).numpy())
        label = Image.fromarray(data.labels[i].numpy())
        if i < 4:
            image.save(labeled / "images" / f"known{i}.png")
            label.save(labeled / "labels" / f"known{i}.png")
        else:
            image.save(unlabeled / f"street{i}.png")
            label.save(truth / f"street{i}.png")
    return labeled, unlabeled, truth


def brush_annotation(image: dict, truth: Path, class_names: list[str]) -> list[dict]:
    """What a person paints: every class of the real label inside the requested boxes, one brush result each."""
    label = np.asarray(Image.open(truth / Path(image["file"]).with_suffix(".png").name))
    inside = np.zeros(label.shape, bool)
    for region in image["regions"]:
        box = region["box"]
        inside[box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]] = True
    results = []
    for class_id in np.unique(label[inside]).tolist():
        if class_id >= len(class_names):
            continue  # void
        results.append(
            {
                "from_name": BRUSH_CONTROL,
                "to_name": IMAGE_OBJECT,
                "type": "brushlabels",
                "original_width": label.shape[1],
                "original_height": label.shape[0],
                "image_rotation": 0,
                "value": {
                    "format": "rle",
                    "rle": mask_to_rle(inside & (label == class_id)),
                    "brushlabels": [class_names[class_id]],
                },
            }
        )
    return results


def fetch(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


def run_round(args, name: str, labeled: Path, unlabeled: Path, extra: list[str]) -> tuple[Path, dict, float]:
    out = args.work / name
    argv = [
        "--images",
        str(unlabeled),
        "--labeled",
        str(labeled),
        "--class-names",
        *SYNTHETIC_CLASSES,
        "--policy",
        "entropy",
        "--budget",
        "24",
        "--region-size",
        *map(str, REGION),
        "--num-pools",
        "8",
        "--pool-size",
        "3",
        "--arch",
        "unet_tiny",
        "--document-root",
        str(args.document_root),
        "--out",
        str(out),
        *extra,
    ]
    start = time.monotonic()
    check(request_main(argv) == 0, f"segal-request {name}")
    return out, json.loads((out / "requests.json").read_text()), time.monotonic() - start


def import_and_fetch(client: LabelStudio, args, out: Path, title: str) -> tuple[int, list[dict]]:
    project = setup_project(client, out, title)
    tasks = client.tasks(project["id"])
    expected = len(json.loads((out / "label_studio" / "tasks.json").read_text()))
    check(
        project["tasks_imported"] == expected == len(tasks), f"{expected} tasks imported into project {project['id']}"
    )
    for task in tasks:
        status, body = fetch(args.url + task["data"]["image"], args.token)
        local = Path(json.loads((out / "requests.json").read_text())["settings"]["images"]) / task["data"]["segal_file"]
        check(
            status == 200 and body == local.read_bytes(),
            f"GET {task['data']['image']}: HTTP {status}, the image's bytes",
        )
        check(
            len(task["predictions"]) == 1 and task["predictions"][0]["score"] is not None,
            f"task {task['id']}: prediction score {task['predictions'][0]['score']:.4f}",
        )
    return project["id"], tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="a legacy API token (or a personal access token)")
    parser.add_argument(
        "--document-root", type=Path, required=True, help="the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
    )
    parser.add_argument("--work", type=Path, help="default <document root>/segal-loop (emptied first)")
    parser.add_argument("--record", type=Path, help="keep the exports and the round-1 requests here (test fixtures)")
    args = parser.parse_args(argv)
    args.document_root = args.document_root.resolve()
    args.work = (args.work or args.document_root / "segal-loop").resolve()
    shutil.rmtree(args.work, ignore_errors=True)
    labeled, unlabeled, truth = make_folders(args.work)
    client = LabelStudio(args.url, args.token)
    version = client.call("GET", "/api/version")
    print(f"Label Studio {version.get('release', version)} at {args.url}")

    print("round 1: request")
    out1, requests1, seconds = run_round(args, "round1", labeled, unlabeled, ["--train-model", "--train-steps", "20"])
    print(f"  segal-request with --train-model: {seconds:.1f} s")
    print("round 1: import, images")
    project, tasks = import_and_fetch(client, args, out1, "segal round 1")
    by_file = {image["file"]: image for image in requests1["images"]}
    held_back = tasks[-1]
    print(f"round 1: annotate {len(tasks) - 1} of {len(tasks)} tasks through the API")
    for task in tasks[:-1]:
        result = brush_annotation(by_file[task["data"]["segal_file"]], truth, list(SYNTHETIC_CLASSES))
        annotation = client.annotate(task["id"], result)
        check(
            bool(annotation.get("id")),
            f"task {task['id']}: annotation {annotation.get('id')} with {len(result)} brush results",
        )
    exports = args.work / "exports1"
    exports.mkdir()
    (exports / "export.json").write_bytes(client.export(project, "JSON"))
    (exports / "brush_png.zip").write_bytes(client.export(project, "BRUSH_TO_PNG"))
    names = zipfile.ZipFile(exports / "brush_png.zip").namelist()
    check(
        len(names) > 0, f"exports: JSON, and a brush-PNG zip of {len(names)} masks (e.g. {names[0] if names else '-'})"
    )

    print("round 1: merge (partial: one task not annotated)")
    copy = args.work / "labeled_from_png"
    shutil.copytree(labeled, copy)
    report = merge_annotations(out1 / "requests.json", exports / "export.json", labeled)
    from_png = merge_annotations(out1 / "requests.json", exports / "brush_png.zip", copy, tasks=exports / "export.json")
    check(
        report["not_annotated"] == [held_back["data"]["segal_file"]],
        f"not annotated, left for later: {report['not_annotated']}",
    )
    check(report == from_png, "the JSON export and the brush-PNG export merge to the same counts")
    same = all(
        np.array_equal(np.asarray(Image.open(labeled / "labels" / f)), np.asarray(Image.open(copy / "labels" / f)))
        for f in (p.name for p in (labeled / "labels").iterdir())
    )
    check(same, "... and to the same label files")
    for file in report["merged"]:
        label = np.asarray(Image.open(labeled / "labels" / Path(file).with_suffix(".png").name))
        real = np.asarray(Image.open(truth / Path(file).with_suffix(".png").name))
        painted = label != 255
        check(
            painted.sum() == report["merged"][file]["labelled_pixels"] and (label[painted] == real[painted]).all(),
            f"{file}: {painted.sum()} merged pixels, all equal to the real labels",
        )
    total = sum(m["labelled_pixels"] for m in report["merged"].values())
    print(f"  merged {total} pixels of {len(report['merged'])} images")

    print("round 1: the last task annotated later, merged again")
    last = brush_annotation(by_file[held_back["data"]["segal_file"]], truth, list(SYNTHETIC_CLASSES))
    client.annotate(held_back["id"], last)
    (exports / "export_complete.json").write_bytes(client.export(project, "JSON"))
    again = merge_annotations(out1 / "requests.json", exports / "export_complete.json", labeled)
    check(again["not_annotated"] == [] and len(again["merged"]) == len(tasks), "every requested image merged")

    print("round 2: request with the round-1 network, import, images")
    network = requests1["settings"]["network"]
    out2, requests2, seconds = run_round(args, "round2", labeled, unlabeled, ["--model", network])
    before = {(i["file"], r["region_id"]) for i in requests1["images"] for r in i["regions"]}
    after = {(i["file"], r["region_id"]) for i in requests2["images"] for r in i["regions"]}
    check(
        len(after) == 24 and not before & after,
        f"round 2 asks {len(after)} new regions, none of round 1 ({seconds:.1f} s)",
    )
    project2, tasks2 = import_and_fetch(client, args, out2, "segal round 2")
    print(f"screenshot: {args.url}/projects/{project2}/data?task={tasks2[0]['id']}")

    if args.record:
        record = args.record
        shutil.rmtree(record / "unlabeled", ignore_errors=True)  # sdk_rle.json / sdk_mask.png are kept
        (record / "unlabeled").mkdir(parents=True)
        requests = json.loads((out1 / "requests.json").read_text())
        for image in requests["images"]:  # relative paths: the tests replay the merge from the fixture folder
            image["path"] = f"unlabeled/{image['file']}"
            shutil.copy2(unlabeled / image["file"], record / "unlabeled" / image["file"])
            shutil.copy2(truth / image["file"], record / "unlabeled" / f"truth-{image['file']}")
        for key in ("images", "labeled", "network", "document_root"):
            requests["settings"][key] = f"<recorded: {key}>"
        (record / "requests.json").write_text(json.dumps(requests, indent=2, sort_keys=True) + "\n")
        for name in ("export.json", "brush_png.zip", "export_complete.json"):
            shutil.copy2(exports / name, record / name)
        (record / "README.md").write_text(
            f"Recorded by `python benchmarks/label_studio_loop.py --record tests/data/label_studio` against Label Studio "
            f"{version.get('release', '?')} on {time.strftime('%Y-%m-%d')}: round 1's requests.json (paths made relative), "
            "the requested images (and, as truth-*.png, their real labels), the JSON export with one task not annotated "
            "(export.json), the brush-to-PNG export of the same state (brush_png.zip), and the JSON export once every "
            "task was annotated (export_complete.json). sdk_rle.json and sdk_mask.png (made once, kept on re-recording): brush "
            "RLE written by label-studio-sdk's own encoder, which tests segal's decoder against chunks it does not write.\n"
        )
        print(f"recorded in {record}")
    print("the loop closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
