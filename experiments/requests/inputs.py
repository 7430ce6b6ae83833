"""Every input of segal-request, read and checked before any training: a mistake costs seconds, not the hour
a network takes to train (region size, budget, classes, image sizes, label values, the saved agent, the
network file, the Label Studio document root)."""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from gymnasium import spaces

from agents import BatchDQN
from agents.baselines import BASELINES
from agents.error_regression import ErrorRegression
from agents.loading import ALGORITHMS, PRIVILEGED_POLICIES, detect_algorithm, saved_model_path
from segal_env.data.base import SegDataset
from segal_env.data.folder import LAYOUT as FOLDER_LAYOUT
from segal_env.data.folder import image_label_pairs
from segal_env.data.io import (
    IGNORE_INDEX,
    LabelMapping,
    list_images,
    load_pairs,
    read_rgb,
    require_dir,
    resize_image,
    scaled_size,
)
from segal_env.layout import FeatureLayout
from segal_env.regions import RegionGrid

from .label_studio import local_files_url


def check_classes(class_names: Sequence[str], ignore_index: int) -> None:
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"--class-names lists a name twice: {list(class_names)}")
    LabelMapping.class_ids(len(class_names), void_value=ignore_index)  # 1..255 classes, ignore value not a class id


def check_budget(budget: int, num_pools: int, pool_size: int) -> None:
    if budget < 1 or num_pools < 1 or budget % num_pools:
        raise ValueError(
            f"budget {budget} must be a positive multiple of --num-pools {num_pools} (one region per pool and step)"
        )
    if pool_size < 1:
        raise ValueError(f"--pool-size must be at least 1, got {pool_size}")


def load_unlabeled(folder: Path, scale: float) -> tuple[torch.Tensor, list[Path], tuple[int, int]]:
    """Every image of ``folder`` as uint8 [M, 3, h, w] at ``scale``, their absolute paths (links kept, not
    followed: Label Studio serves them below its document root), and the original (H, W)."""
    paths = list_images(require_dir(Path(folder), "a folder of images (png, jpg, ...) to request labels for"))
    images: list[torch.Tensor] = []
    original: tuple[int, int] | None = None
    for path in paths:
        image = read_rgb(path)
        size = (int(image.shape[1]), int(image.shape[2]))
        if original is None:
            original = size
        elif size != original:
            raise ValueError(
                f"{path} is {image.shape[2]}x{image.shape[1]} (WxH) but {paths[0]} is {original[1]}x{original[0]}: "
                "the region grid needs every image at one size; resize them first"
            )
        images.append(resize_image(image, scaled_size(original[0], original[1], scale)))
    assert original is not None  # list_images refuses an empty folder
    return torch.stack(images), [Path(os.path.abspath(p)) for p in paths], original


def load_labeled(folder: Path, class_names: Sequence[str], ignore_index: int, scale: float) -> SegDataset:
    """The user's labelled images (``images/*`` + ``labels/<stem>.png``), labels checked against the classes."""
    pairs = image_label_pairs(require_dir(Path(folder), FOLDER_LAYOUT))
    mapping = LabelMapping.class_ids(len(class_names), void_value=ignore_index)
    data, targets = load_pairs(pairs, mapping, scale, desc="labelled")
    return SegDataset(data, targets, [image.name for image, _ in pairs], tuple(class_names), IGNORE_INDEX)


def read_network_file(model_file: Path, class_names: Sequence[str]) -> dict[str, Any] | Any:
    """The saved network (a state dict, or network.pt of an earlier round naming its architecture and classes)."""
    if not Path(model_file).is_file():
        raise FileNotFoundError(f"--model {model_file}: no such file")
    saved = torch.load(model_file, map_location="cpu", weights_only=True)
    if isinstance(saved, dict) and "class_names" in saved and list(saved["class_names"]) != list(class_names):
        raise ValueError(f"{model_file} was trained for the classes {saved['class_names']}, not {list(class_names)}")
    return saved


@dataclass
class SavedAgent:
    """A saved agent's algorithm and the observation space it was trained on, read from the zip's metadata
    (the weights are loaded once, later, by agents.make_agent)."""

    path: Path
    algorithm: type
    observation_space: spaces.Dict

    def shape(self, key: str) -> tuple[int, ...]:
        shape = self.observation_space[key].shape
        assert shape is not None, f"{key} of a SegAL observation is a Box"
        return tuple(shape)


def read_saved_agent(policy: str) -> SavedAgent | None:
    """None for a baseline name; else the saved agent's metadata, or a clear error."""
    if policy in BASELINES:
        return None
    if policy in PRIVILEGED_POLICIES:
        raise ValueError(
            f"--policy {policy!r} reads the true labels (a benchmark's upper bound): unlabelled images have "
            f"none; use a baseline ({', '.join(BASELINES)}) or a trained agent"
        )
    path = saved_model_path(policy)
    if path is None:
        raise ValueError(
            f"--policy {policy!r} is neither a baseline ({', '.join(BASELINES)}) nor a saved agent (.zip) nor an "
            "error model (.npz)"
        )
    from stable_baselines3.common.save_util import json_to_data

    algorithm = detect_algorithm(path)
    if algorithm is None:
        raise ValueError(f"{path} was not saved by one of {', '.join(ALGORITHMS)}")
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    space = json_to_data(json.dumps({"observation_space": data["observation_space"]}))["observation_space"]
    return SavedAgent(path, algorithm, space)


def check_error_model(policy: str, layout: FeatureLayout, class_names: Sequence[str] | None = None) -> None:
    """An error model (``segal-fit-error-model``) reads candidate rows of its fitted classes (in order) and extras."""
    path = saved_model_path(policy)
    if path is None:
        raise ValueError(f"--policy {policy!r}: no such error model file")
    try:
        ErrorRegression(layout, path, class_names=class_names)
    except ValueError as error:
        raise ValueError(f"--policy {policy}: {error}; here: --extra-features and the class names") from None


def state_images_for(agent: SavedAgent | None, labeled: SegDataset, per_image: int, limit: int = 10) -> torch.Tensor:
    """The labelled images whose predictions form the state set. A saved agent reads a state set of a fixed
    number of regions: that many images, checked; a baseline ignores the state: up to ``limit`` images."""
    if agent is None:
        return labeled.images[: min(limit, len(labeled))]
    needed = agent.shape("state")[0]
    if needed % per_image or needed // per_image > len(labeled):
        raise ValueError(
            f"the agent was trained with a state set of {needed} regions; here an image has {per_image} regions and "
            f"--labeled holds {len(labeled)} images: use the agent's region grid and at least "
            f"{math.ceil(needed / per_image)} labelled images"
        )
    return labeled.images[: needed // per_image]


def check_agent_fits(agent: SavedAgent | None, layout: FeatureLayout, num_pools: int, pool_size: int) -> None:
    """A saved agent reads candidate rows of a fixed width (class count + extras); most also a fixed pool shape."""
    if agent is None:
        return
    saved = agent.shape("candidates")
    if saved[-1] != layout.candidate_dim:
        raise ValueError(
            f"the agent reads candidate rows of {saved[-1]} features; {layout.num_classes} classes with extras "
            f"{list(layout.extras)} give {layout.candidate_dim}: use the agent's class count and --extra-features "
            "as in its training env"
        )
    if agent.algorithm is not BatchDQN and tuple(saved[:2]) != (num_pools, pool_size):
        raise ValueError(
            f"this agent acts on a fixed pool shape {tuple(saved[:2])} (pools, candidates): "
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


@dataclass
class CheckedInputs:
    """What request_labels works on once every check has passed."""

    pool: torch.Tensor  # uint8 [M, 3, h, w] at the working scale
    paths: list[Path]  # absolute
    original: tuple[int, int]
    labeled: SegDataset
    grid: RegionGrid
    layout: FeatureLayout
    exclude: torch.Tensor
    agent: SavedAgent | None
    state_images: torch.Tensor
    network_file: Any  # what --model holds, or None
    image_urls: dict[str, str]


def check_inputs(
    images: Path,
    labeled: Path,
    class_names: Sequence[str],
    policy: str,
    budget: int,
    region_size: Sequence[int],
    model_file: Path | None,
    num_pools: int,
    pool_size: int,
    scale: float,
    extra_features: Sequence[str],
    mc_samples: int,
    ignore_index: int,
    document_root: Path | None,
    url_prefix: str | None,
    train_steps: int,
) -> CheckedInputs:
    """Read and check everything, cheapest first; raise a ValueError/FileNotFoundError that names the fix."""
    check_classes(class_names, ignore_index)
    check_budget(budget, num_pools, pool_size)
    if train_steps < 1:
        raise ValueError(f"--train-steps must be at least 1, got {train_steps}")
    layout = FeatureLayout(len(class_names), tuple(extra_features))  # unknown or repeated extras
    if "bald" in layout.extras and mc_samples < 2:
        raise ValueError("the 'bald' feature needs --mc-samples >= 2; raise it or leave 'bald' out of --extra-features")
    if str(policy).endswith(".npz"):  # an error model reads only the candidate rows: no SB3 zip, any pool shape
        check_error_model(policy, layout, class_names)
        agent = None
    else:
        agent = read_saved_agent(policy)
        check_agent_fits(agent, layout, num_pools, pool_size)
    network_file = read_network_file(model_file, class_names) if model_file is not None else None
    pool, paths, original = load_unlabeled(images, scale)
    grid = RegionGrid(
        (int(pool.shape[-2]), int(pool.shape[-1])), (int(region_size[0]), int(region_size[1]))
    )  # a size that does not tile fails here, with divisors
    if document_root is not None:
        image_urls = {path.name: local_files_url(path, document_root) for path in paths}
    else:
        image_urls = {path.name: f"{url_prefix}{path.name}" for path in paths}
    known = load_labeled(labeled, class_names, ignore_index, scale)
    if known.image_size != tuple(pool.shape[-2:]):
        raise ValueError(
            f"the labelled images are {known.image_size[1]}x{known.image_size[0]} (WxH) at this scale, "
            f"the unlabelled ones {pool.shape[-1]}x{pool.shape[-2]}: both sets need one size"
        )
    exclude = labelled_regions(known, paths, grid)
    available = int((~exclude).sum())
    if budget > available:
        raise ValueError(
            f"budget {budget} is larger than the {available} regions that can be requested ({len(paths)} images x "
            f"{grid.per_image} regions of {region_size[0]}x{region_size[1]}, minus those already labelled); lower it"
        )
    state_images = state_images_for(agent, known, grid.per_image)
    return CheckedInputs(
        pool, paths, original, known, grid, layout, exclude, agent, state_images, network_file, image_urls
    )
