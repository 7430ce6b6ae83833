"""``segal-request``: ask a labelling policy which regions of your unlabelled images a person should label next.

    segal-request --images my_unlabeled/ --labeled my_labeled/ --class-names road car person ... \\
        --train-model --policy entropy --budget 240 --region-size 90 80 --out requests/
    segal-request ... --model requests/network.pt --policy runs/x/model.zip ...   # a saved agent, a saved network

``--labeled`` holds what you have labelled (``images/*`` and ``labels/<stem>.png``, class ids 0..C-1 and the
ignore value); ``--images`` the images nobody has labelled. The network is either trained on the labelled
folder (``--train-model``, saved as ``network.pt`` for the next round) or loaded (``--model``). The policy
chooses in pools, step by step, on the same candidate features as the simulation (segal_env.RequestEnv);
no label of ``--images`` is ever read. Outputs in ``--out``:

- ``requests.json``: per image its requested regions (box in pixels of the original image, order of choice,
  step, the policy's score, the features behind it) and the run's settings;
- ``label_studio/tasks.json`` + ``label_studio/label_config.xml``: Label Studio tasks with one rectangle
  pre-annotation per requested region, and a labelling interface (brush per class) to import them with;
- ``overlays/<image>.png``: each image with its requested regions outlined and numbered.

After annotation, ``segal-merge-labels`` brings the labelled regions back into ``--labeled`` (merge_annotations).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gymnasium import spaces

from agents import BatchDQN, make_agent
from agents.baselines import BASELINES, RegionScoreBaseline
from agents.loading import ALGORITHMS, detect_algorithm, saved_model_path
from segal_env.config import DEFAULT_EXTRAS
from segal_env.data.base import SegDataset
from segal_env.data.folder import LAYOUT as FOLDER_LAYOUT, image_label_pairs
from segal_env.data.io import (
    IGNORE_INDEX, LabelMapping, list_images, load_pairs, read_label, read_rgb, require_dir, resize_image,
    scaled_size,
)
from segal_env.models import ModelSpec, build_model, model_name
from segal_env.regions import RegionGrid
from segal_env.request_env import RequestEnv
from segal_env.runtime import resolve_device, seeded_torch
from segal_env.start_network import pretrain
from segal_env.storage import atomic_save, atomic_write, atomic_write_json, atomic_write_text
from segal_env.trainer import SegTrainer

PAPER_NUM_POOLS = 24  # K of the paper's CamVid setting
LABEL_STUDIO_FROM = "request"  # the RectangleLabels control the pre-annotations belong to
LABEL_STUDIO_TO = "image"
DEFAULT_TRAIN_STEPS = 2000
DEFAULT_ARCH = "lraspp_mobilenet_v3"  # the real-data presets' network


# ---- inputs --------------------------------------------------------------------------------------
def load_unlabeled(folder: Path, scale: float) -> tuple[torch.Tensor, list[Path], tuple[int, int]]:
    """Every image of ``folder`` as uint8 [M, 3, h, w] at ``scale``, their paths, and the original (H, W)."""
    paths = list_images(require_dir(Path(folder), "a folder of images (png, jpg, ...) to request labels for"))
    images, original = [], None
    for path in paths:
        image = read_rgb(path)
        if original is None:
            original = tuple(image.shape[1:])
        elif tuple(image.shape[1:]) != original:
            raise ValueError(
                f"{path} is {image.shape[2]}x{image.shape[1]} (WxH) but {paths[0]} is {original[1]}x{original[0]}: "
                "the region grid needs every image at one size; resize them first"
            )
        images.append(resize_image(image, scaled_size(*original, scale)))
    return torch.stack(images), paths, original


def load_labeled(folder: Path, class_names: Sequence[str], ignore_index: int, scale: float) -> SegDataset:
    """The user's labelled images (``images/*`` + ``labels/<stem>.png``), labels checked against the classes."""
    pairs = image_label_pairs(require_dir(Path(folder), FOLDER_LAYOUT))
    mapping = LabelMapping.class_ids(len(class_names), void_value=ignore_index)
    data, targets = load_pairs(pairs, mapping, scale, desc="labelled")
    return SegDataset(data, targets, [image.name for image, _ in pairs], tuple(class_names), IGNORE_INDEX)


def build_network(
    labeled: SegDataset, model: ModelSpec | None, model_file: Path | None, train_steps: int, lr: float, seed: int,
    device: str, out: Path,
) -> tuple[SegTrainer, dict[str, Any]]:
    """The network the policy looks through: loaded from ``model_file`` (a state dict, or network.pt of an earlier
    round, which also names its architecture and classes), or trained on the labelled set and saved as
    ``out/network.pt``. ``model`` None: the file's architecture, else ``DEFAULT_ARCH``."""
    num_classes = labeled.num_classes
    saved = torch.load(model_file, map_location="cpu", weights_only=True) if model_file is not None else None
    if isinstance(saved, dict) and "class_names" in saved and list(saved["class_names"]) != list(labeled.class_names):
        raise ValueError(f"{model_file} was trained for the classes {saved['class_names']}, not {list(labeled.class_names)}")
    model = model or (saved.get("arch") if isinstance(saved, dict) else None) or DEFAULT_ARCH
    with seeded_torch(seed, torch.device("cpu")):
        net = build_model(model, num_classes)
    if saved is not None:
        state = saved.get("model", saved)
        try:
            net.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(
                f"{model_file} does not fit model '{model_name(model)}' with {num_classes} classes "
                f"({len(labeled.class_names)} class names given): {str(error).splitlines()[0]}; pass the --arch it was "
                "trained with and its class names"
            ) from None
        report = {"network": str(model_file), "arch": model_name(model)}
    else:
        result = pretrain(net, labeled, labeled, seed, device, train_steps, lr)
        path = atomic_save({"model": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "arch": model_name(model),
                            "class_names": list(labeled.class_names)}, out / "network.pt")
        report = {"network": str(path), "arch": model_name(model), "trained_steps": train_steps,
                  "labeled_miou": result["val_miou"]}
    trainer = SegTrainer(net, num_classes, labeled.ignore_index, device, batch_size=8)
    return trainer, report


def saved_agent_spaces(policy: str) -> tuple[type, spaces.Dict] | None:
    """The algorithm of a saved agent and the observation space it was trained on; None for a baseline name."""
    path = saved_model_path(policy) if policy not in BASELINES else None
    if path is None:
        return None
    algorithm = detect_algorithm(path)
    if algorithm is None:
        raise ValueError(f"{path} was not saved by one of {', '.join(ALGORITHMS)}")
    return algorithm, algorithm.load(path, device="cpu").observation_space


def state_images_for(saved: spaces.Dict | None, labeled: SegDataset, per_image: int, limit: int = 10) -> torch.Tensor:
    """The labelled images whose predictions form the state set. A saved agent reads a state set of a fixed
    number of regions: that many images, checked; a baseline ignores the state: up to ``limit`` images."""
    if saved is None:
        return labeled.images[: min(limit, len(labeled))]
    needed = saved["state"].shape[0]
    if needed % per_image or needed // per_image > len(labeled):
        raise ValueError(
            f"the agent was trained with a state set of {needed} regions; here an image has {per_image} regions and "
            f"--labeled holds {len(labeled)} images: use the agent's region grid and at least "
            f"{math.ceil(needed / per_image)} labelled images"
        )
    return labeled.images[: needed // per_image]


def check_agent_fits(saved: spaces.Dict | None, env: RequestEnv, algorithm: type | None) -> None:
    """A saved agent reads candidate rows of a fixed width (class count + extras): say so when they differ."""
    if saved is None:
        return
    want, have = saved["candidates"].shape[-1], env.observation_space["candidates"].shape[-1]
    if want != have:
        raise ValueError(
            f"the agent reads candidate rows of {want} features; this network ({env.layout.num_classes} classes) "
            f"with extras {list(env.layout.extras)} gives {have}: use a network with the agent's class count and "
            "--extra-features as in its training env"
        )
    if algorithm is not BatchDQN and saved["candidates"].shape[:2] != env.observation_space["candidates"].shape[:2]:
        raise ValueError(
            f"this agent acts on a fixed pool shape {tuple(saved['candidates'].shape[:2])} (pools, candidates): "
            "pass --num-pools and --pool-size to match (BatchDQN agents take any)"
        )


def labelled_regions(labeled: SegDataset, paths: Sequence[Path], grid: RegionGrid) -> torch.Tensor:
    """Bool [M, regions per image]: regions of the unlabelled images that already hold labels in the labelled
    folder (merged back from an earlier round, same file name), so that they are never requested again."""
    exclude = torch.zeros(len(paths), grid.per_image, dtype=torch.bool)
    index = {name: i for i, name in enumerate(labeled.names)}
    for row, path in enumerate(paths):
        if path.name in index:
            label = labeled.labels[index[path.name]][None]
            exclude[row] = grid.class_histograms(label, labeled.num_classes)[0].sum(-1) > 0
    return exclude


# ---- the selection -------------------------------------------------------------------------------
def candidate_scores(agent: Any, obs: dict[str, np.ndarray]) -> np.ndarray | None:
    """[K, N] scores the policy ranks candidates by (a baseline's score, BatchDQN's Q); None for others."""
    if isinstance(agent, RegionScoreBaseline):
        return np.asarray(agent.score(obs), dtype=float)
    if isinstance(agent, BatchDQN):
        agent.policy.set_training_mode(False)
        tensors, _ = agent.policy.obs_to_tensor(obs)
        with torch.no_grad():
            return agent.policy.q_net(tensors)[0].cpu().numpy().astype(float)
    return None


def describe_features(row: np.ndarray, env: RequestEnv, class_names: Sequence[str]) -> dict[str, Any]:
    """The features of one candidate a person can read: uncertainty scores and the predicted classes."""
    layout = env.layout
    histogram = row[layout.class_hist]
    top = np.argsort(-histogram)[:3]
    features = {
        "entropy_mean": float(row[layout.entropy_pool("mean")].mean()),
        "entropy_max": float(row[layout.entropy_pool("max")].max()),
        "predicted_classes": {class_names[i]: round(float(histogram[i]), 4) for i in top if histogram[i] > 0},
    }
    features.update({name: float(row[layout.extra(name)]) for name in layout.extras})
    return features


def choose_regions(env: RequestEnv, agent: Any, seed: int, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Run the policy to the budget; one record per requested region, in the order chosen."""
    obs, _ = env.reset(seed=seed)
    picks, done, step = [], False, 0
    while not done:
        scores = candidate_scores(agent, obs)
        action, _ = agent.predict(obs, deterministic=True)
        action = np.asarray(action).reshape(-1)
        rows = obs["candidates"]
        obs, _, done, _, info = env.step(action)
        for pool, (slot, region) in enumerate(zip(action.tolist(), info["chosen"])):
            picks.append({
                "order": len(picks) + 1,
                "step": step,
                "pool": pool,
                "region_id": int(region),
                "score": None if scores is None else float(scores[pool, slot]),
                "features": describe_features(rows[pool, slot], env, class_names),
            })
        step += 1
    return picks


# ---- outputs -------------------------------------------------------------------------------------
def pixel_box(region_id: int, env: RequestEnv, original: tuple[int, int], working: tuple[int, int]) -> dict[str, int]:
    """The region's box (x, y, width, height) in pixels of the original image."""
    y0, x0, y1, x1 = env.grid.boxes(torch.tensor(region_id % env.grid.per_image)).tolist()
    sy, sx = original[0] / working[0], original[1] / working[1]
    x, y = round(x0 * sx), round(y0 * sy)
    return {"x": x, "y": y, "width": round(x1 * sx) - x, "height": round(y1 * sy) - y}


def label_studio_tasks(requests: dict[str, Any], url_prefix: str) -> list[dict[str, Any]]:
    """One task per image with requests; one rectangle pre-annotation (in percent of the image) per region."""
    height, width = requests["settings"]["image_size"]
    tasks = []
    for image in requests["images"]:
        result = [{
            "id": f"r{region['order']}",
            "from_name": LABEL_STUDIO_FROM,
            "to_name": LABEL_STUDIO_TO,
            "type": "rectanglelabels",
            "original_width": width,
            "original_height": height,
            "image_rotation": 0,
            "value": {
                "x": 100.0 * region["box"]["x"] / width, "y": 100.0 * region["box"]["y"] / height,
                "width": 100.0 * region["box"]["width"] / width, "height": 100.0 * region["box"]["height"] / height,
                "rotation": 0, "rectanglelabels": ["label this region"],
            },
            **({"score": region["score"]} if region["score"] is not None else {}),
        } for region in image["regions"]]
        tasks.append({
            "data": {"image": f"{url_prefix}{image['file']}", "segal_order": [r["order"] for r in image["regions"]]},
            "predictions": [{"model_version": f"segal {requests['settings']['policy']}", "result": result}],
        })
    return tasks


def label_studio_config(class_names: Sequence[str]) -> str:
    """A labelling interface for the tasks: the requested rectangles, and a brush per class to paint inside them."""
    labels = "\n".join(f'    <Label value="{name}"/>' for name in class_names)
    return (
        "<View>\n"
        f'  <Image name="{LABEL_STUDIO_TO}" value="$image" zoom="true"/>\n'
        f'  <RectangleLabels name="{LABEL_STUDIO_FROM}" toName="{LABEL_STUDIO_TO}">\n'
        '    <Label value="label this region" background="#ff0000"/>\n'
        "  </RectangleLabels>\n"
        f'  <BrushLabels name="classes" toName="{LABEL_STUDIO_TO}">\n{labels}\n  </BrushLabels>\n'
        "</View>\n"
    )


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
        draw.text((box["x"] + line + 2, box["y"] + line), str(region["order"]), fill=(255, 255, 0), font=font,
                  stroke_width=1, stroke_fill=(0, 0, 0))
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


# ---- the command ---------------------------------------------------------------------------------
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
    url_prefix: str = "/data/local-files/?d=",
    overlays: bool = True,
) -> dict[str, Any]:
    """Choose ``budget`` regions of ``images`` with ``policy`` and write the three outputs (module docstring).
    Returns what requests.json holds. ``region_size`` is (height, width) at the working ``scale``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    num_pools = num_pools or math.gcd(budget, PAPER_NUM_POOLS)
    device = str(resolve_device(device))
    pool, paths, original = load_unlabeled(images, scale)
    known = load_labeled(labeled, class_names, ignore_index, scale)
    if known.image_size != tuple(pool.shape[-2:]):
        raise ValueError(f"the labelled images are {known.image_size[1]}x{known.image_size[0]} (WxH) at this scale, "
                         f"the unlabelled ones {pool.shape[-1]}x{pool.shape[-2]}: both sets need one size")
    trainer, network = build_network(known, arch, model_file, train_steps, lr, seed, device, out)
    grid = RegionGrid(tuple(pool.shape[-2:]), tuple(region_size))  # a size that does not tile fails here, with divisors
    agent_spaces = saved_agent_spaces(policy)
    algorithm, saved = agent_spaces if agent_spaces is not None else (None, None)
    env = RequestEnv(trainer, pool, state_images_for(saved, known, grid.per_image), region_size, budget,
                     num_pools, pool_size, extra_features, mc_samples, exclude=labelled_regions(known, paths, grid))
    check_agent_fits(saved, env, algorithm)
    agent = make_agent(policy, env, seed=seed, device=device)
    picks = choose_regions(env, agent, seed, class_names)

    working = tuple(pool.shape[-2:])
    by_image: dict[int, list[dict[str, Any]]] = {}
    for pick in picks:
        image = pick["region_id"] // env.grid.per_image
        by_image.setdefault(image, []).append({**pick, "box": pixel_box(pick["region_id"], env, original, working)})
    requests = {
        "settings": {
            "images": str(images), "labeled": str(labeled), "policy": str(policy), "budget": budget,
            "region_size": list(region_size), "num_pools": num_pools, "pool_size": pool_size, "scale": scale,
            "image_size": list(original), "class_names": list(class_names), "extra_features": list(extra_features),
            "mc_samples": mc_samples, "ignore_index": ignore_index, "seed": seed, **network,
        },
        "images": [{"file": paths[i].name, "path": str(paths[i]), "regions": regions} for i, regions in sorted(by_image.items())],
    }
    atomic_write_json(requests, out / "requests.json")
    atomic_write_json(label_studio_tasks(requests, url_prefix), out / "label_studio" / "tasks.json")
    atomic_write_text(label_studio_config(class_names), out / "label_studio" / "label_config.xml")
    if overlays:
        for image in requests["images"]:
            draw_overlay(Path(image["path"]), image["regions"], out / "overlays" / f"{Path(image['file']).stem}.png")
    return requests


def merge_annotations(requests_file: Path, annotations: Path, labeled: Path) -> dict[str, Any]:
    """Bring annotated regions back: for each image with requests, ``annotations/<stem>.png`` (class ids, the
    ignore value elsewhere) is cut to the requested boxes and merged into ``labeled/labels/<stem>.png`` (pixels
    labelled before are kept); the image is copied to ``labeled/images/``. Returns counts per image."""
    requests = json.loads(Path(requests_file).read_text())
    settings = requests["settings"]
    ignore = settings["ignore_index"]
    mapping = LabelMapping.class_ids(len(settings["class_names"]), void_value=ignore)
    (Path(labeled) / "images").mkdir(parents=True, exist_ok=True)
    (Path(labeled) / "labels").mkdir(parents=True, exist_ok=True)
    merged = {}
    for image in requests["images"]:
        stem = Path(image["file"]).stem
        source = Path(annotations) / f"{stem}.png"
        if not source.is_file():
            raise FileNotFoundError(f"no annotation for {image['file']}: expected {source} (a label PNG of class ids, "
                                    f"{ignore} outside the requested regions)")
        annotated = mapping.apply(read_label(source), source).numpy()  # ignore value -> IGNORE_INDEX
        if list(annotated.shape) != settings["image_size"]:
            raise ValueError(f"{source} is {annotated.shape[1]}x{annotated.shape[0]} (WxH); the image is "
                             f"{settings['image_size'][1]}x{settings['image_size'][0]}")
        inside = np.zeros(annotated.shape, dtype=bool)
        for region in image["regions"]:
            box = region["box"]
            inside[box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]] = True
        target = Path(labeled) / "labels" / f"{stem}.png"
        label = (mapping.apply(read_label(target), target).numpy() if target.is_file()
                 else np.full(annotated.shape, IGNORE_INDEX, dtype=np.uint8))
        new = inside & (annotated != IGNORE_INDEX)
        label[new] = annotated[new]
        label[label == IGNORE_INDEX] = ignore  # back to the user's ignore value on disk
        from PIL import Image

        atomic_write(target, lambda tmp: Image.fromarray(label).save(tmp, format="PNG"))
        copy = Path(labeled) / "images" / image["file"]
        if not copy.exists():
            shutil.copy2(image["path"], copy)
        merged[image["file"]] = {"labelled_pixels": int(new.sum()), "requested_pixels": int(inside.sum())}
    return merged


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="folder of unlabelled images")
    parser.add_argument("--labeled", type=Path, required=True, help=f"your labelled images: {FOLDER_LAYOUT}")
    parser.add_argument("--class-names", nargs="+", required=True, help="one name per class id 0..C-1")
    parser.add_argument("--ignore-index", type=int, default=IGNORE_INDEX, help="the label value of unlabelled pixels (default 255)")
    network = parser.add_mutually_exclusive_group(required=True)
    network.add_argument("--model", type=Path, help="a network state dict (e.g. network.pt of an earlier round)")
    network.add_argument("--train-model", action="store_true", help="train the network on --labeled first")
    parser.add_argument("--arch", default=None,
                        help=f"the network: a built-in name or 'package.module:function' (default: the --model file's, else {DEFAULT_ARCH})")
    parser.add_argument("--train-steps", type=int, default=DEFAULT_TRAIN_STEPS, help=f"with --train-model (default {DEFAULT_TRAIN_STEPS})")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak Adam lr of --train-model")
    parser.add_argument("--policy", default="entropy", help="a baseline name (entropy, bald, random, ...) or a saved agent (.zip)")
    parser.add_argument("--budget", type=int, required=True, help="regions to request")
    parser.add_argument("--region-size", type=int, nargs=2, required=True, metavar=("HEIGHT", "WIDTH"),
                        help="region size in pixels at --scale; must tile the images")
    parser.add_argument("--num-pools", type=int, help=f"regions per step (default gcd(budget, {PAPER_NUM_POOLS}))")
    parser.add_argument("--pool-size", type=int, default=10, help="candidates per pool (default 10)")
    parser.add_argument("--scale", type=float, default=1.0, help="work at this fraction of the image size")
    parser.add_argument("--extra-features", nargs="*", default=list(DEFAULT_EXTRAS), help="as the agent's training env")
    parser.add_argument("--mc-samples", type=int, default=20, help="MC-dropout draws for BALD")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--url-prefix", default="/data/local-files/?d=",
                        help="prefix of the image file name in the Label Studio tasks (default: local files storage)")
    parser.add_argument("--no-overlays", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        requests = request_labels(
            args.images, args.labeled, args.class_names, args.policy, args.budget, args.region_size, args.out,
            model_file=args.model, arch=args.arch, train_steps=args.train_steps, lr=args.lr, num_pools=args.num_pools,
            pool_size=args.pool_size, scale=args.scale, extra_features=args.extra_features, mc_samples=args.mc_samples,
            ignore_index=args.ignore_index, seed=args.seed, device=args.device, url_prefix=args.url_prefix,
            overlays=not args.no_overlays,
        )
    except (ValueError, FileNotFoundError, KeyError) as error:
        parser.error(str(error))
    count = sum(len(image["regions"]) for image in requests["images"])
    print(f"requested {count} regions in {len(requests['images'])} images: {args.out / 'requests.json'}, "
          f"{args.out / 'label_studio' / 'tasks.json'}, {args.out / 'overlays'}/")
    return 0


def merge_main(argv: list[str] | None = None) -> int:
    """``segal-merge-labels``: the annotated requested regions into the labelled folder."""
    parser = argparse.ArgumentParser(description=merge_annotations.__doc__.split(":")[0])
    parser.add_argument("--requests", type=Path, required=True, help="requests.json of segal-request")
    parser.add_argument("--annotations", type=Path, required=True, help="folder of label PNGs named like the images")
    parser.add_argument("--labeled", type=Path, required=True, help="the labelled folder to merge into")
    args = parser.parse_args(argv)
    try:
        merged = merge_annotations(args.requests, args.annotations, args.labeled)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    pixels = sum(m["labelled_pixels"] for m in merged.values())
    print(f"merged {pixels} labelled pixels of {len(merged)} images into {args.labeled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
