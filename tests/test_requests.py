"""segal-request on a tiny folder of generated images: choose regions, write the three outputs, merge labels back."""

import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

import segal_env  # noqa: F401
from agents import BatchDQN, fit_error_regression
from experiments.requests import main, merge_annotations, merge_main, request_labels
from segal_env.data import load_splits
from segal_env.data.synthetic import SYNTHETIC_CLASSES
from segal_env.runtime import torch_threads

REGION = (16, 16)  # the synthetic images are 96x128 (HxW): 48 regions per image


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """labeled/{images,labels}: 4 annotated images; unlabeled/: 6 images; truth/: the labels of those 6."""
    root = tmp_path_factory.mktemp("request_data")
    data = load_splits("synthetic", seed=3, n_train=10, n_val=1, n_test=1)["train"]
    for sub in ("labeled/images", "labeled/labels", "unlabeled", "truth"):
        (root / sub).mkdir(parents=True)
    for i in range(10):
        image = Image.fromarray(data.images[i].permute(1, 2, 0).numpy())
        label = Image.fromarray(data.labels[i].numpy())
        if i < 4:
            image.save(root / "labeled" / "images" / f"known{i}.png")
            label.save(root / "labeled" / "labels" / f"known{i}.png")
        else:
            image.save(root / "unlabeled" / f"new{i}.png")
            label.save(root / "truth" / f"new{i}.png")
    return root


def run_request(folders, out, policy="entropy", **overrides):
    settings = dict(
        images=folders / "unlabeled",
        labeled=folders / "labeled",
        class_names=SYNTHETIC_CLASSES,
        policy=policy,
        budget=8,
        region_size=REGION,
        out=out,
        train_steps=3,
        arch="unet_tiny",
        num_pools=4,
        pool_size=3,
        mc_samples=2,
    )
    return request_labels(**{**settings, **overrides})


def check_label_studio_task(task: dict, width: int, height: int) -> None:
    """The Label Studio import format for pre-annotated image tasks (labelstud.io/guide/predictions):
    a ``data`` object with the image reference, and ``predictions`` whose results are rectangles in
    percent of the image, from a control (``from_name``) to the image (``to_name``)."""
    assert set(task) == {"data", "predictions"} and isinstance(task["data"]["image"], str)
    for prediction in task["predictions"]:
        assert isinstance(prediction["model_version"], str) and prediction["result"]
        for result in prediction["result"]:
            assert result["type"] == "rectanglelabels"
            assert (result["from_name"], result["to_name"]) == ("request", "image")
            assert (result["original_width"], result["original_height"]) == (width, height)
            value = result["value"]
            assert set(value) >= {"x", "y", "width", "height", "rotation", "rectanglelabels"}
            assert 0 <= value["x"] < 100 and 0 <= value["y"] < 100
            assert 0 < value["width"] <= 100 - value["x"] + 1e-9 and 0 < value["height"] <= 100 - value["y"] + 1e-9
            assert isinstance(value["rectanglelabels"], list) and value["rectanglelabels"]


def test_a_baseline_requests_regions_with_all_three_outputs(folders, tmp_path, one_torch_thread):
    requests = run_request(folders, tmp_path)
    saved = json.loads((tmp_path / "requests.json").read_text())
    assert saved == json.loads(json.dumps(requests))
    regions = [r for image in saved["images"] for r in image["regions"]]
    assert sorted(r["order"] for r in regions) == list(range(1, 9))
    assert len({(image["file"], r["region_id"]) for image in saved["images"] for r in image["regions"]}) == 8
    for region in regions:
        box = region["box"]
        assert box["width"] == 16 and box["height"] == 16 and box["x"] % 16 == 0 and box["y"] % 16 == 0
        assert 0 <= region["features"]["entropy_mean"] <= 1 and region["score"] is not None
    # entropy picks the most uncertain candidate of each pool: its score is the candidate's mean entropy
    assert all(r["score"] == pytest.approx(r["features"]["entropy_mean"], abs=1e-6) for r in regions)
    tasks = json.loads((tmp_path / "label_studio" / "tasks.json").read_text())
    assert len(tasks) == len(saved["images"])
    for task in tasks:
        check_label_studio_task(task, width=128, height=96)
    config = (tmp_path / "label_studio" / "label_config.xml").read_text()
    assert '<RectangleLabels name="request" toName="image">' in config and 'value="sky"' in config
    for image in saved["images"]:
        with Image.open(tmp_path / "overlays" / f"{Path(image['file']).stem}.png") as overlay:
            pixels = np.asarray(overlay)
        box = image["regions"][0]["box"]
        assert tuple(pixels[box["y"], box["x"] + 8]) == (255, 40, 40)  # the outline's top edge
    assert (tmp_path / "network.pt").is_file()


def test_a_saved_agent_requests_regions_and_the_network_is_reused(folders, tmp_path, tiny_kwargs, one_torch_thread):
    first = run_request(folders, tmp_path / "round1")
    # an agent trained in the simulation on images of the same grid (synthetic 96x128, 16x16 regions, 2 state images)
    env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "region_size": list(REGION)})
    agent = BatchDQN("RegionQPolicy", env, seed=0).learn(4)
    agent.save(tmp_path / "agent")
    requests = run_request(
        folders,
        tmp_path / "round2",
        policy=str(tmp_path / "agent.zip"),
        arch=None,
        model_file=Path(first["settings"]["network"]),
    )  # network.pt names its architecture
    regions = [r for image in requests["images"] for r in image["regions"]]
    assert len(regions) == 8 and all(isinstance(r["score"], float) for r in regions)  # Q values
    assert requests["settings"]["arch"] == "unet_tiny"
    with pytest.raises(ValueError, match="candidate rows"):  # before any training: the agent is read first
        run_request(
            folders, tmp_path / "round3", policy=str(tmp_path / "agent.zip"), train_steps=100000, extra_features=[]
        )
    renamed = list(SYNTHETIC_CLASSES[:-1]) + ["something else"]
    with pytest.raises(ValueError, match="was trained for the classes"):
        run_request(folders, tmp_path / "round3", model_file=Path(first["settings"]["network"]), class_names=renamed)


def test_an_error_model_requests_regions_by_its_predicted_error(folders, tmp_path, tiny_kwargs, one_torch_thread):
    env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "device": "cpu"})
    model = fit_error_regression(env, episodes=1)
    path = model.save(tmp_path / "error_model.npz")
    requests = run_request(folders, tmp_path / "round1", policy=str(path))
    regions = [r for image in requests["images"] for r in image["regions"]]
    assert len(regions) == 8
    assert len({(image["file"], r["region_id"]) for image in requests["images"] for r in image["regions"]}) == 8
    assert all(isinstance(r["score"], float) and np.isfinite(r["score"]) for r in regions)  # its predicted error
    with pytest.raises(ValueError, match="extras"):  # before any training
        run_request(folders, tmp_path / "round2", policy=str(path), train_steps=100000, extra_features=["margin"])


def test_annotations_come_back_into_the_labelled_set(folders, tmp_path, one_torch_thread):
    labeled = tmp_path / "labeled"
    for sub in ("images", "labels"):
        (labeled / sub).mkdir(parents=True)
        for path in (folders / "labeled" / sub).iterdir():
            (labeled / sub / path.name).write_bytes(path.read_bytes())
    run_request(folders, tmp_path / "requests", labeled=labeled)
    requests = json.loads((tmp_path / "requests" / "requests.json").read_text())
    merged = merge_annotations(tmp_path / "requests" / "requests.json", folders / "truth", labeled)["merged"]
    for image in requests["images"]:
        stem = Path(image["file"]).stem
        label = np.asarray(Image.open(labeled / "labels" / f"{stem}.png"))
        truth = np.asarray(Image.open(folders / "truth" / f"{stem}.png"))
        inside = np.zeros(label.shape, bool)
        for region in image["regions"]:
            b = region["box"]
            inside[b["y"] : b["y"] + b["height"], b["x"] : b["x"] + b["width"]] = True
        assert (label[inside] == truth[inside]).all() and (label[~inside] == 255).all()
        assert merged[image["file"]]["labelled_pixels"] == (inside & (truth != 255)).sum()  # void pixels stay void
        assert (labeled / "images" / image["file"]).is_file()
    # the next round trains on the grown labelled set and does not ask for the labelled regions again
    again = run_request(
        folders, tmp_path / "next", labeled=labeled, budget=6 * 48 - 8, pool_size=2, overlays=False
    )  # all that is left
    before = {(i["file"], r["region_id"]) for i in requests["images"] for r in i["regions"]}
    after = {(i["file"], r["region_id"]) for i in again["images"] for r in i["regions"]}
    assert len(after) == 6 * 48 - 8 and not before & after


def test_clear_errors_for_what_does_not_fit(folders, tmp_path, capsys):
    with pytest.raises(ValueError, match="does not tile"):
        run_request(folders, tmp_path, region_size=(15, 16))
    with pytest.raises(ValueError, match="larger than the"):
        run_request(folders, tmp_path, budget=6 * 48 + 4)
    with pytest.raises(ValueError, match="class ids 0..2"):
        run_request(folders, tmp_path, class_names=["a", "b", "c"])
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--images",
                str(folders / "unlabeled"),
                "--labeled",
                str(folders / "labeled"),
                "--class-names",
                "x",
                "--train-model",
                "--budget",
                "8",
                "--region-size",
                "16",
                "16",
                "--out",
                str(tmp_path),
            ]
        )
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        merge_main(
            ["--requests", str(tmp_path / "none.json"), "--annotations", str(tmp_path), "--labeled", str(tmp_path)]
        )


def test_request_env_is_deterministic_and_checks_actions(folders, one_torch_thread):
    import torch

    from experiments.requests import load_labeled, load_unlabeled
    from segal_env import RequestEnv
    from segal_env.models import build_model
    from segal_env.trainer import SegTrainer

    known = load_labeled(folders / "labeled", SYNTHETIC_CLASSES, 255, 1.0)
    images, _, _ = load_unlabeled(folders / "unlabeled", 1.0)
    torch.manual_seed(0)
    trainer = SegTrainer(build_model("unet_tiny", known.num_classes), known.num_classes, 255, "cpu")
    env = RequestEnv(trainer, images, known.images[:2], REGION, budget=8, num_pools=4, pool_size=3, mc_samples=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.action_masks()
    first = [env.reset(seed=5)[0]["candidates"], env.pools.clone()]
    obs, reward, done, _, info = env.step(np.zeros(4, dtype=int))
    assert reward == 0.0 and not done and len(info["chosen"]) == 4 and info["regions_requested"] == 4
    again = [env.reset(seed=5)[0]["candidates"], env.pools.clone()]
    assert np.array_equal(first[0], again[0]) and torch.equal(first[1], again[1])
    with pytest.raises(ValueError):
        env.step(np.array([0, 0, 0, 7]))  # candidate 7 of a pool of 3
    env.step(np.zeros(4, dtype=int))
    assert env.step(np.zeros(4, dtype=int))[2]  # budget 8 = two steps of 4


def test_every_input_is_checked_before_training_in_seconds(folders, tmp_path, capsys):
    """The issue's case: a region size that does not tile, with --train-model, once took 32 minutes to report."""
    base = [
        "--images",
        str(folders / "unlabeled"),
        "--labeled",
        str(folders / "labeled"),
        "--class-names",
        *SYNTHETIC_CLASSES,
        "--train-model",
        "--train-steps",
        "100000",
        "--budget",
        "8",
        "--num-pools",
        "4",
        "--out",
        str(tmp_path / "out"),
    ]
    cases = {
        "does not tile": ["--region-size", "15", "16"],
        "multiple of --num-pools": ["--region-size", "16", "16", "--budget", "6"],
        "larger than the": ["--region-size", "16", "16", "--budget", str(6 * 48 + 4)],
        "unknown extra feature": ["--region-size", "16", "16", "--extra-features", "wisdom"],
        "a name twice": ["--region-size", "16", "16", "--class-names", "a", "a"],
        "neither a baseline": ["--region-size", "16", "16", "--policy", str(tmp_path / "missing.zip")],
        "not below": ["--region-size", "16", "16", "--document-root", str(tmp_path / "elsewhere")],
        "reads the true labels": ["--region-size", "16", "16", "--policy", "oracle"],  # never offered without labels
    }
    for message, extra in cases.items():
        start = time.monotonic()
        with pytest.raises(SystemExit) as exit_info:
            main(base + extra)
        seconds = time.monotonic() - start
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in error and seconds < 10, (message, error, seconds)
        assert not (tmp_path / "out" / "network.pt").exists()


def test_training_reports_progress_and_where_the_network_went(folders, tmp_path, monkeypatch, capsys, one_torch_thread):
    monkeypatch.chdir(folders)  # relative paths in, absolute paths out
    requests = run_request(folders, tmp_path / "r", images=Path("unlabeled"), labeled=Path("labeled"), train_steps=4)
    err = capsys.readouterr().err
    assert "step 4/4 (100%)" in err and "left" in err and f"--model {tmp_path / 'r' / 'network.pt'}" in err
    settings = requests["settings"]
    assert all(Path(settings[key]).is_absolute() for key in ("images", "labeled", "network", "document_root"))
    assert all(Path(image["path"]).is_absolute() for image in requests["images"])
    task = json.loads((tmp_path / "r" / "label_studio" / "tasks.json").read_text())[0]
    assert task["data"]["image"].startswith(
        "/data/local-files/?d=unlabeled/new"
    )  # default root: the parent of --images
    assert task["predictions"][0]["score"] == max(r["score"] for r in requests["images"][0]["regions"])


def test_the_command_runs_on_one_thread_whatever_the_callers(folders, tmp_path, one_torch_thread):
    """segal-request's --threads defaults to 1: a caller on two threads gets the network, regions and scores of
    one thread (two sum floats in another order), and its own setting back."""
    expected = run_request(folders, tmp_path / "api", overlays=False)  # on one thread (the fixture)
    options = ["--images", str(folders / "unlabeled"), "--labeled", str(folders / "labeled")]
    options += ["--class-names", *SYNTHETIC_CLASSES, "--train-model", "--arch", "unet_tiny", "--train-steps", "3"]
    options += ["--budget", "8", "--region-size", "16", "16", "--num-pools", "4", "--pool-size", "3"]
    options += ["--mc-samples", "2", "--no-overlays", "--out", str(tmp_path / "cli")]
    with torch_threads(2):
        assert main(options) == 0
        assert torch.get_num_threads() == 2
    got = json.loads((tmp_path / "cli" / "requests.json").read_text())

    def regions(requests: dict) -> list:
        return [(image["file"], r["region_id"], r["score"]) for image in requests["images"] for r in image["regions"]]

    assert regions(got) == regions(json.loads(json.dumps(expected)))
