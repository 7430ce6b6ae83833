"""segal-merge-labels on Label Studio's own exports, recorded from a real server by benchmarks/label_studio_loop.py
(tests/data/label_studio/README.md): brush RLE, JSON and brush-PNG exports, partial rounds, the staged merge."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.requests import decode_rle, encode_rle, label_studio_tasks, merge
from experiments.requests.brush import mask_to_rle, rle_to_mask
from experiments.requests.label_studio import local_files_url
from experiments.requests.merge import merge_annotations, merge_main

RECORDED = Path(__file__).parent / "data" / "label_studio"


def test_the_decoder_reads_what_label_studios_own_encoder_wrote():
    sdk = json.loads((RECORDED / "sdk_rle.json").read_text())
    mask = np.asarray(Image.open(RECORDED / "sdk_mask.png")) > 0
    assert np.array_equal(rle_to_mask(sdk["mask_rle"], sdk["height"], sdk["width"]), mask)
    assert decode_rle(sdk["values_rle"]).tolist() == sdk["values"]  # literal chunks, other run-length sizes


def test_the_encoder_round_trips_and_a_wrong_size_is_refused():
    rng = np.random.default_rng(0)
    values = np.repeat(rng.integers(0, 256, 50), rng.integers(1, 70000, 50)).astype(np.uint8)  # runs past 2^16
    assert np.array_equal(decode_rle(encode_rle(values)), values)
    mask = rng.random((30, 41)) < 0.3
    assert np.array_equal(rle_to_mask(mask_to_rle(mask), 30, 41), mask)
    with pytest.raises(ValueError, match="needs"):
        rle_to_mask(mask_to_rle(mask), 31, 41)
    with pytest.raises(ValueError, match="truncated"):
        decode_rle(mask_to_rle(mask)[:20])


@pytest.fixture
def round1(tmp_path) -> Path:
    """A copy of the recorded round (requests.json with relative image paths, the images, the exports)."""
    shutil.copytree(RECORDED, tmp_path / "round1")
    return tmp_path / "round1"


def folder_state(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check_merged(round1: Path, labeled: Path, report: dict, files: list[str]) -> None:
    """Inside the requested boxes the real labels, 255 elsewhere; the image copied beside its label."""
    requests = json.loads((round1 / "requests.json").read_text())
    assert sorted(report["merged"]) == sorted(files)
    for image in requests["images"]:
        if image["file"] not in files:
            assert not (labeled / "labels" / image["file"]).exists()
            continue
        label = np.asarray(Image.open(labeled / "labels" / image["file"]))
        truth = np.asarray(Image.open(round1 / "unlabeled" / f"truth-{image['file']}"))
        inside = np.zeros(label.shape, bool)
        for region in image["regions"]:
            b = region["box"]
            inside[b["y"] : b["y"] + b["height"], b["x"] : b["x"] + b["width"]] = True
        assert (label[inside] == truth[inside]).all() and (label[~inside] == 255).all()
        assert report["merged"][image["file"]] == {
            "labelled_pixels": int((inside & (truth != 255)).sum()),
            "requested_pixels": int(inside.sum()),
        }
        assert (labeled / "images" / image["file"]).read_bytes() == (round1 / "unlabeled" / image["file"]).read_bytes()


def test_a_partial_round_merges_the_json_export_and_lists_the_rest(round1, tmp_path, monkeypatch, capsys):
    labeled = tmp_path / "labeled"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # paths of requests.json do not depend on where the merge runs
    report = merge_annotations(round1 / "requests.json", round1 / "export.json", labeled)
    assert report["not_annotated"] == ["street8.png"]
    check_merged(round1, labeled, report, ["street5.png", "street7.png"])
    assert not list(labeled.glob(".segal-merge-*"))
    # later: the last task annotated, the complete export merged on top
    assert (
        merge_main(
            [
                "--requests",
                str(round1 / "requests.json"),
                "--annotations",
                str(round1 / "export_complete.json"),
                "--labeled",
                str(labeled),
            ]
        )
        == 0
    )
    assert "merged" in capsys.readouterr().out
    report = merge_annotations(round1 / "requests.json", round1 / "export_complete.json", labeled)  # idempotent
    check_merged(round1, labeled, report, ["street5.png", "street7.png", "street8.png"])


def test_the_brush_png_export_merges_like_the_json_export(round1, tmp_path, capsys):
    from_json, from_zip, from_folder = (tmp_path / name for name in ("json", "zip", "folder"))
    merge_annotations(round1 / "requests.json", round1 / "export.json", from_json)
    report = merge_annotations(
        round1 / "requests.json", round1 / "brush_png.zip", from_zip, tasks=round1 / "export.json"
    )
    check_merged(round1, from_zip, report, ["street5.png", "street7.png"])
    zipfile.ZipFile(round1 / "brush_png.zip").extractall(tmp_path / "unpacked")
    merge_annotations(round1 / "requests.json", tmp_path / "unpacked", from_folder, tasks=round1 / "export.json")
    assert folder_state(from_json) == folder_state(from_zip) == folder_state(from_folder)
    with pytest.raises(SystemExit):  # the PNG names hold task ids only: the JSON export says which image is which
        merge_main(
            [
                "--requests",
                str(round1 / "requests.json"),
                "--annotations",
                str(round1 / "brush_png.zip"),
                "--labeled",
                str(tmp_path / "none"),
            ]
        )
    assert "--tasks" in capsys.readouterr().err


def test_an_unknown_class_name_is_refused_and_nothing_is_written(round1, tmp_path):
    export = json.loads((round1 / "export.json").read_text())
    export[-1]["annotations"][0]["result"][0]["value"]["brushlabels"] = ["lamp post"]
    (round1 / "renamed.json").write_text(json.dumps(export))
    with pytest.raises(ValueError, match="'lamp post' is not one of the classes"):
        merge_annotations(round1 / "requests.json", round1 / "renamed.json", tmp_path / "labeled")
    assert not (tmp_path / "labeled").exists()  # refused before the folder is touched


@pytest.mark.parametrize("where", ["while staging", "while moving into place"])
def test_a_failure_mid_merge_leaves_the_labelled_folder_as_it_was(round1, tmp_path, monkeypatch, where):
    labeled = tmp_path / "labeled"
    merge_annotations(round1 / "requests.json", round1 / "export.json", labeled)  # street5, street7 merged before
    (labeled / "labels" / "unrelated.png").write_bytes(b"kept")
    before = folder_state(labeled)
    if where == "while staging":
        (round1 / "unlabeled" / "street8.png").unlink()  # the last image to stage is gone
        expected = FileNotFoundError
    else:
        calls = []

        def failing_move(source, target):
            calls.append(target)
            if len(calls) == 4:  # street5 and street7 replaced (label backed up, then moved), then a failure
                raise OSError("disk full")
            merge.os.replace(source, target)

        monkeypatch.setattr(merge, "move", failing_move)
        expected = OSError
    with pytest.raises(expected):
        merge_annotations(round1 / "requests.json", round1 / "export_complete.json", labeled)
    assert folder_state(labeled) == before
    assert not list(labeled.glob(".segal-merge-*"))


def test_tasks_point_where_label_studio_serves_the_images(tmp_path):
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "a b.png").write_bytes(b"")
    assert local_files_url(root / "photos" / "a b.png", root) == "/data/local-files/?d=photos/a%20b.png"
    (tmp_path / "real.png").write_bytes(b"")
    (root / "photos" / "link.png").symlink_to(tmp_path / "real.png")  # a linked image is served where the link is
    assert local_files_url(root / "photos" / "link.png", root) == "/data/local-files/?d=photos/link.png"
    with pytest.raises(ValueError, match="strictly below the root"):
        local_files_url(root / "photos" / "a b.png", root / "photos")
    with pytest.raises(ValueError, match="not below"):
        local_files_url(tmp_path / "elsewhere.png", root)
    requests = json.loads((RECORDED / "requests.json").read_text())
    urls = {image["file"]: f"/data/local-files/?d=x/{image['file']}" for image in requests["images"]}
    for task, image in zip(label_studio_tasks(requests, urls), requests["images"]):
        prediction = task["predictions"][0]
        assert prediction["score"] == max(r["score"] for r in image["regions"])  # Label Studio sorts tasks by it
        assert [r["score"] for r in prediction["result"]] == [r["score"] for r in image["regions"]]
        assert task["data"]["segal_file"] == image["file"] and task["data"]["image"] == urls[image["file"]]


def test_the_label_studio_command_creates_project_storage_and_tasks(tmp_path, capsys):
    """Against a stand-in server: the calls and bodies benchmarks/label_studio_loop.py made on Label Studio 1.23.2."""
    import http.server
    import threading

    calls = []

    class Server(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append((self.path, self.headers["Authorization"], body))
            answer = {"/api/projects": {"id": 7}, "/api/projects/7/import": {"task_count": len(body)}}.get(
                self.path, {}
            )
            payload = json.dumps(answer).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "round1"
    (out / "label_studio").mkdir(parents=True)
    requests = json.loads((RECORDED / "requests.json").read_text())
    requests["settings"]["images"] = str(tmp_path / "photos")
    (out / "requests.json").write_text(json.dumps(requests))
    (out / "label_studio" / "label_config.xml").write_text("<View/>")
    (out / "label_studio" / "tasks.json").write_text(json.dumps([{"data": {"image": "a"}}, {"data": {"image": "b"}}]))
    try:
        from experiments.requests.api import setup_main

        assert setup_main([str(out), "--url", f"http://127.0.0.1:{server.server_port}", "--token", "abc"]) == 0
    finally:
        server.shutdown()
    assert [(path, auth) for path, auth, _ in calls] == [
        ("/api/projects", "Token abc"),
        ("/api/storages/localfiles", "Token abc"),
        ("/api/projects/7/import", "Token abc"),
    ]
    assert calls[0][2]["label_config"] == "<View/>"
    assert calls[1][2] == {
        "project": 7,
        "path": str(tmp_path / "photos"),
        "title": "segal images",
        "use_blob_urls": False,
    }
    assert len(calls[2][2]) == 2 and "project 7 with 2 tasks" in capsys.readouterr().out
