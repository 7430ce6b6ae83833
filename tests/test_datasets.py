"""Dataset layer: every source, the AL roles, rescaling, and the error messages for bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torchvision.io import decode_image, write_png

from segal_env.data import (
    CITYSCAPES_CLASSES,
    SYNTHETIC_CLASSES,
    ALRoles,
    class_frequencies,
    generate_synthetic,
    load_splits,
    make_roles,
)
from segal_env.data.io import resize_image, resize_label, scaled_size

# ---------------------------------------------------------------------------------------------
# helpers: tiny data trees written to tmp_path


def write_pair(image_path: Path, label_path: Path, label: torch.Tensor, channels: int = 1) -> None:
    """An RGB image whose colour follows the label, and the label PNG (optionally multi-channel)."""
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    write_png(torch.stack([label * 20, label * 7, 255 - label]).to(torch.uint8), str(image_path))
    write_png(label.to(torch.uint8).expand(channels, -1, -1).contiguous(), str(label_path))


def random_label(seed: int, height: int = 12, width: int = 16, high: int = 11) -> torch.Tensor:
    return torch.randint(high, (height, width), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def write_camvid_tree(root: Path, per_split: int = 3, height: int = 12, width: int = 16) -> Path:
    for split in ("train", "val", "test"):
        for i in range(per_split):
            name = f"{split}_{i:03d}.png"
            write_pair(root / split / name, root / f"{split}annot" / name, random_label(i, height, width, high=12))
    return root


def write_folder_tree(root: Path, count: int, classes: int = 4, splits: tuple[str, ...] = ()) -> Path:
    """Flat layout (root/images, root/labels) when no splits are named, else root/<split>/{images,labels}."""
    for split in splits or ("",):
        for i in range(count):
            base = root / split if split else root
            write_pair(
                base / "images" / f"{split}img{i:02d}.png",
                base / "labels" / f"{split}img{i:02d}.png",
                random_label(i, high=classes),
            )
    return root


# ---------------------------------------------------------------------------------------------
# synthetic


@pytest.fixture(scope="module")
def synthetic() -> dict:
    return load_splits("synthetic")


def test_synthetic_default_splits_have_expected_sizes_shapes_and_dtypes(synthetic):
    assert {k: len(v) for k, v in synthetic.items()} == {"train": 200, "val": 30, "test": 60}
    for split in synthetic.values():
        assert split.images.shape[1:] == (3, 96, 128) and split.images.dtype == torch.uint8
        assert split.labels.shape[1:] == (96, 128) and split.labels.dtype == torch.uint8
        assert split.class_names == SYNTHETIC_CLASSES and split.ignore_index == 255
        assert len(set(split.names)) == len(split)


def test_synthetic_has_eight_to_twelve_classes_and_a_little_void(synthetic):
    assert 8 <= len(SYNTHETIC_CLASSES) <= 12
    values = set(synthetic["train"].labels.unique().tolist())
    assert values == set(range(len(SYNTHETIC_CLASSES))) | {255}
    assert 0.002 < class_frequencies(synthetic["train"])["void"] < 0.06


def test_synthetic_is_imbalanced_like_camvid(synthetic):
    freqs = class_frequencies(synthetic["train"])
    per_class = sorted((freqs[name] for name in SYNTHETIC_CLASSES), reverse=True)
    assert sum(per_class[:3]) > 0.5
    assert sum(f < 0.02 for f in per_class) >= 3
    assert min(per_class) > 0.001  # rare, but every class is learnable


def test_synthetic_same_seed_gives_identical_bytes_and_restores_torch_threads():
    threads = torch.get_num_threads()
    a, b = generate_synthetic(40, seed=3), generate_synthetic(40, seed=3)  # two chunks, drawn in parallel
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert torch.get_num_threads() == threads


def test_synthetic_different_seeds_differ():
    a, b = generate_synthetic(6, seed=3), generate_synthetic(6, seed=4)
    assert not torch.equal(a.images, b.images) and not torch.equal(a.labels, b.labels)


def test_synthetic_splits_use_independent_streams(synthetic):
    first = {k: v.images[0] for k, v in synthetic.items()}
    assert not torch.equal(first["train"], first["val"])
    assert not torch.equal(first["train"], first["test"])
    assert not torch.equal(first["val"], first["test"])


def test_synthetic_images_vary_within_a_split(synthetic):
    images = synthetic["train"].images[:20].float()
    assert (images[1:] - images[:1]).abs().mean(dim=(1, 2, 3)).min() > 5


def test_synthetic_size_and_split_counts_are_configurable():
    splits = load_splits("synthetic", height=40, width=56, n_train=5, n_val=2, n_test=3)
    assert {k: tuple(v.images.shape) for k, v in splits.items()} == {
        "train": (5, 3, 40, 56),
        "val": (2, 3, 40, 56),
        "test": (3, 3, 40, 56),
    }


def test_synthetic_rejects_a_root():
    with pytest.raises(ValueError, match="no root"):
        load_splits("synthetic", root="/somewhere")


def test_synthetic_default_roles_sizes_and_disjointness(synthetic):
    roles = make_roles("synthetic", synthetic, seed=0)
    assert isinstance(roles, ALRoles)
    assert (len(roles.d_s), len(roles.d_t), len(roles.d_v), len(roles.d_r), len(roles.test)) == (6, 60, 134, 30, 60)
    names = roles.to_dict()
    assert not set(names["d_s"]) & set(names["d_t"]) and not set(names["d_v"]) & (set(names["d_s"]) | set(names["d_t"]))
    assert names["d_r"] == synthetic["val"].names and names["test"] == synthetic["test"].names
    assert roles.d_t.meta["role"] == "d_t" and "role" not in synthetic["val"].meta  # the caller's split is untouched


def test_roles_are_deterministic_by_seed_and_differ_across_seeds(synthetic):
    assert make_roles("synthetic", synthetic, seed=1).to_dict() == make_roles("synthetic", synthetic, seed=1).to_dict()
    assert (
        make_roles("synthetic", synthetic, seed=1).to_dict()["d_t"]
        != make_roles("synthetic", synthetic, seed=2).to_dict()["d_t"]
    )


def test_roles_sizes_override_defaults(synthetic):
    roles = make_roles("synthetic", synthetic, sizes={"d_s": 2, "d_t": 5, "d_v": 7, "d_r": 4})
    assert (len(roles.d_s), len(roles.d_t), len(roles.d_v), len(roles.d_r)) == (2, 5, 7, 4)


# ---------------------------------------------------------------------------------------------
# rescaling


def test_rescaled_labels_only_hold_values_of_the_original(synthetic):
    small = load_splits("synthetic", scale=0.37, n_train=8, n_val=1, n_test=1)["train"]
    full = load_splits("synthetic", n_train=8, n_val=1, n_test=1)["train"]
    assert small.image_size == scaled_size(96, 128, 0.37) == (36, 47)
    for lo, hi in zip(small.labels, full.labels):
        assert set(lo.unique().tolist()) <= set(hi.unique().tolist())


def test_image_resize_is_bilinear_with_antialias_and_label_resize_is_nearest():
    checker = (torch.arange(8).view(1, 8) + torch.arange(8).view(8, 1)) % 2 * 255
    image = checker.to(torch.uint8).expand(3, 8, 8)
    small = resize_image(image, (4, 4))
    assert small.dtype == torch.uint8 and (small.int() - 128).abs().max() <= 4  # averaged (0 or 255 if sampled)
    label = (checker // 255 * 7).to(torch.uint8)
    assert set(resize_label(label, (3, 3)).unique().tolist()) <= {0, 7}


def test_scale_must_be_positive():
    with pytest.raises(ValueError, match="scale must be > 0"):
        scaled_size(10, 10, 0)


# ---------------------------------------------------------------------------------------------
# CamVid (real copy; skipped when absent)


@pytest.fixture(scope="module")
def camvid(camvid_root) -> dict:
    return load_splits("camvid", root=camvid_root, scale=0.25)


@pytest.mark.camvid
def test_camvid_split_counts_and_size(camvid):
    assert {k: len(v) for k, v in camvid.items()} == {"train": 367, "val": 101, "test": 233}
    assert all(v.image_size == (90, 120) for v in camvid.values())
    assert camvid["train"].names == sorted(camvid["train"].names)


@pytest.mark.camvid
def test_camvid_labels_are_class_ids_with_void_as_255(camvid):
    for split in camvid.values():
        assert set(split.labels.unique().tolist()) == set(range(11)) | {255}
        assert split.num_classes == 11 and split.ignore_index == 255


@pytest.mark.camvid
def test_camvid_loaded_label_equals_file_with_void_mapped_and_nearest_resize(camvid, camvid_root):
    name = camvid["val"].names[5]
    raw = decode_image(str(camvid_root / "valannot" / name))[0]
    expected = resize_label(torch.where(raw == 11, 255, raw).to(torch.uint8), (90, 120))
    assert torch.equal(camvid["val"].labels[5], expected)


@pytest.mark.camvid
def test_camvid_roles_from_ralis_file_are_exact(camvid, camvid_root):
    roles_file = camvid_root / "ralis_splits.json"
    lists = json.loads(roles_file.read_text())
    roles = make_roles("camvid", camvid, roles_file=roles_file)
    assert (len(roles.d_s), len(roles.d_t), len(roles.d_v)) == (10, 100, 257)
    names = roles.to_dict()
    assert names["d_s"] == lists["d_s"] and names["d_t"] == lists["d_t"] and names["d_v"] == lists["d_v"]
    assert names["d_r"] == camvid["val"].names and len(roles.test) == 233


@pytest.mark.camvid
def test_camvid_seeded_roles_are_deterministic_and_disjoint(camvid):
    a, b = make_roles("camvid", camvid, seed=5).to_dict(), make_roles("camvid", camvid, seed=5).to_dict()
    assert a == b
    assert (len(a["d_s"]), len(a["d_t"]), len(a["d_v"]), len(a["d_r"])) == (10, 100, 257, 101)
    assert len(set(a["d_s"]) | set(a["d_t"]) | set(a["d_v"])) == 367


@pytest.mark.camvid
def test_roles_file_with_unknown_name_is_rejected_naming_it(camvid, tmp_path, camvid_root):
    lists = json.loads((camvid_root / "ralis_splits.json").read_text())
    lists["d_t"][0] = "not_a_frame.png"
    path = tmp_path / "roles.json"
    path.write_text(json.dumps(lists))
    with pytest.raises(ValueError, match="not_a_frame.png"):
        make_roles("camvid", camvid, roles_file=path)


# ---------------------------------------------------------------------------------------------
# Cityscapes (tiny tree in the official layout)

# labelId -> expected train id: road 7->0, sidewalk 8->1, person 24->11, car 26->13, bicycle 33->18,
# unlabeled 0, static 4, guard rail 14 and polegroup 18 are not evaluated -> 255
CITYSCAPES_IDS = {7: 0, 8: 1, 24: 11, 26: 13, 33: 18, 0: 255, 4: 255, 14: 255, 18: 255}


def write_cityscapes_tree(root: Path, label_ids: torch.Tensor | None = None) -> Path:
    ids = torch.tensor(list(CITYSCAPES_IDS), dtype=torch.uint8)
    for split, cities in (("train", ("aachen", "bochum")), ("val", ("frankfurt",))):
        for city in cities:
            for i in range(2):
                stem = f"{city}_{i:06d}_000019"
                label = label_ids if label_ids is not None else ids[random_label(i, 64, 128, high=len(ids)).long()]
                write_pair(
                    root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                    root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
                    label,
                )
    return root


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    root = write_cityscapes_tree(tmp_path)
    splits = load_splits("cityscapes", root=root)
    assert len(splits["train"]) == 4 and splits["train"].names[0] == "aachen_000000_000019_leftImg8bit.png"
    assert splits["train"].class_names == CITYSCAPES_CLASSES and len(CITYSCAPES_CLASSES) == 19
    raw = decode_image(str(root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"))[0]
    for label_id, train_id in CITYSCAPES_IDS.items():
        assert (splits["train"].labels[0][raw == label_id] == train_id).all()


def test_cityscapes_test_split_is_the_official_val_and_roles_come_from_train(tmp_path):
    splits = load_splits("cityscapes", root=write_cityscapes_tree(tmp_path), scale=0.5)
    assert (
        splits["test"].names == splits["val"].names == [f"frankfurt_{i:06d}_000019_leftImg8bit.png" for i in range(2)]
    )
    assert splits["test"].image_size == (32, 64)
    roles = make_roles("cityscapes", splits, sizes={"d_s": 1, "d_t": 1, "d_r": 1})
    train_names = set(splits["train"].names)
    assert set(roles.d_r.names) <= train_names and len(roles.d_v) == 1
    assert roles.test.names == splits["val"].names


def test_cityscapes_default_roles_too_large_for_tiny_tree_say_how_many_images(tmp_path):
    splits = load_splits("cityscapes", root=write_cityscapes_tree(tmp_path))
    with pytest.raises(ValueError, match="train split has 4 images"):
        make_roles("cityscapes", splits)


def test_cityscapes_rejects_values_that_are_not_label_ids(tmp_path):
    root = write_cityscapes_tree(tmp_path, label_ids=torch.full((64, 128), 200, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"aachen_000000_000019_gtFine_labelIds.png holds invalid value\(s\) \[200\]"):
        load_splits("cityscapes", root=root)


# ---------------------------------------------------------------------------------------------
# folder


def test_folder_without_split_folders_is_split_by_seed(tmp_path):
    root = write_folder_tree(tmp_path, count=20)
    a = load_splits("folder", root=root, class_names=["a", "b", "c", "d"], seed=0)
    assert {k: len(v) for k, v in a.items()} == {"train": 14, "val": 3, "test": 3}
    assert len(set(a["train"].names) | set(a["val"].names) | set(a["test"].names)) == 20
    again = load_splits("folder", root=root, class_names=["a", "b", "c", "d"], seed=0)
    other = load_splits("folder", root=root, class_names=["a", "b", "c", "d"], seed=1)
    assert again["val"].names == a["val"].names and other["val"].names != a["val"].names
    assert a["train"].class_names == ("a", "b", "c", "d")


def test_folder_with_split_folders_uses_them_and_draws_missing_val_from_train(tmp_path):
    root = write_folder_tree(tmp_path, count=10, splits=("train", "test"))
    splits = load_splits("folder", root=root, class_names=["a", "b", "c", "d"])
    assert {k: len(v) for k, v in splits.items()} == {"train": 8, "val": 2, "test": 10}
    assert all(n.startswith("train") for n in splits["val"].names)
    assert splits["val"].meta["carved_by_seed"] and not splits["test"].meta["carved_by_seed"]
    roles = make_roles("folder", splits)
    assert (len(roles.d_s), len(roles.d_t), len(roles.d_v)) == (1, 2, 5)  # CamVid's proportions of 8 images


def test_folder_all_three_split_folders(tmp_path):
    root = write_folder_tree(tmp_path, count=4, splits=("train", "val", "test"))
    splits = load_splits("folder", root=root, class_names=["a", "b", "c", "d"])
    assert {k: v.names[0] for k, v in splits.items()} == {
        "train": "trainimg00.png",
        "val": "valimg00.png",
        "test": "testimg00.png",
    }


def test_folder_custom_ignore_value_is_stored_as_255(tmp_path):
    label = torch.tensor([[0, 1], [9, 2]], dtype=torch.uint8).repeat(6, 8)
    for i in range(10):
        write_pair(tmp_path / "images" / f"{i}.png", tmp_path / "labels" / f"{i}.png", label)
    splits = load_splits("folder", root=tmp_path, class_names=["a", "b", "c"], ignore_index=9)
    assert set(splits["train"].labels.unique().tolist()) == {0, 1, 2, 255}


def test_folder_needs_class_names(tmp_path):
    with pytest.raises(ValueError, match="class_names"):
        load_splits("folder", root=write_folder_tree(tmp_path, count=3), class_names=[])


# ---------------------------------------------------------------------------------------------
# bad input: each error names the file (or folder) and the fix


def test_unknown_dataset_name_lists_valid_names():
    with pytest.raises(ValueError, match="synthetic.*camvid.*cityscapes.*folder"):
        load_splits("kitti")
    with pytest.raises(ValueError, match="valid names"):
        make_roles("kitti", {})


def test_missing_folder_names_it_and_the_layout(tmp_path):
    root = write_camvid_tree(tmp_path)
    for path in (root / "testannot").iterdir():
        path.unlink()
    (root / "testannot").rmdir()
    with pytest.raises(FileNotFoundError, match=r"testannot[\s\S]*expected layout"):
        load_splits("camvid", root=root)


@pytest.fixture(scope="module")
def camvid_pack():
    """benchmarks/camvid_pack.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(
        "camvid_pack", Path(__file__).parents[1] / "benchmarks/camvid_pack.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packed_camvid_unpacks_to_the_same_names_and_exact_labels(tmp_path, camvid_pack):
    """benchmarks/camvid_pack.py: the JPEG pack that travels to a GPU machine loads like the original."""
    original = write_camvid_tree(tmp_path / "original", height=24, width=32)
    across, down = torch.arange(32).expand(24, 32) * 8, torch.arange(24).view(24, 1).expand(24, 32) * 10
    # smooth, photo-like images: JPEG garbles the per-pixel noise of write_camvid_tree's images
    for image in original.glob("*/*.png"):
        if not image.parent.name.endswith("annot"):
            write_png(torch.stack([across, down, 255 - across]).to(torch.uint8), str(image))
    (original / "ralis_splits.json").write_text("{}")
    camvid_pack.pack(original, tmp_path / "pack", quality=95, workers=1)
    assert not list((tmp_path / "pack").rglob("train/*.png"))  # the images travel as JPEG
    camvid_pack.unpack(tmp_path / "pack", tmp_path / "unpacked", workers=1)
    assert (tmp_path / "unpacked" / "ralis_splits.json").read_text() == "{}"
    before, after = load_splits("camvid", root=original), load_splits("camvid", root=tmp_path / "unpacked")
    for split in ("train", "val", "test"):
        assert after[split].names == before[split].names
        assert torch.equal(after[split].labels, before[split].labels)
        assert (after[split].images.int() - before[split].images.int()).abs().float().mean() < 3


def test_packing_refuses_a_folder_without_the_segnet_layout(tmp_path, camvid_pack):
    (tmp_path / "train").mkdir()
    with pytest.raises(SystemExit, match="missing folder.*trainannot"):
        camvid_pack.pack(tmp_path, tmp_path / "pack", quality=95, workers=1)


def test_missing_root_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_splits("camvid", root=tmp_path / "nowhere")


def test_image_without_label_names_the_image(tmp_path):
    root = write_camvid_tree(tmp_path)
    (root / "valannot" / "val_001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"val_001.png.*add the label"):
        load_splits("camvid", root=root)


def test_size_mismatch_names_the_file_and_both_sizes(tmp_path):
    root = write_camvid_tree(tmp_path)
    write_png(random_label(0, 10, 16).unsqueeze(0), str(root / "trainannot" / "train_002.png"))
    with pytest.raises(ValueError, match=r"train_002.png is 16x12 \(WxH\) but its label .*train_002.png is 16x10"):
        load_splits("camvid", root=root)


def test_out_of_range_label_values_name_the_file_and_values(tmp_path):
    root = write_camvid_tree(tmp_path)
    write_png(torch.full((1, 12, 16), 42, dtype=torch.uint8), str(root / "testannot" / "test_000.png"))
    with pytest.raises(ValueError, match=r"test_000.png holds invalid value\(s\) \[42\].*0..10 or 11 \(void\)"):
        load_splits("camvid", root=root)


def test_multichannel_label_is_rejected_as_colour(tmp_path):
    root = write_camvid_tree(tmp_path)
    write_pair(root / "train" / "train_000.png", root / "trainannot" / "train_000.png", random_label(0), channels=3)
    with pytest.raises(ValueError, match=r"train_000.png has 3 channels.*single-channel"):
        load_splits("camvid", root=root)


def test_empty_split_names_the_folder(tmp_path):
    root = write_camvid_tree(tmp_path)
    for path in (root / "val").iterdir():
        path.unlink()
    with pytest.raises(ValueError, match=r"empty split.*val"):
        load_splits("camvid", root=root)


def test_role_sizes_larger_than_the_split_say_how_many_images(tmp_path):
    splits = load_splits("camvid", root=write_camvid_tree(tmp_path))
    with pytest.raises(ValueError, match="train split has 3 images"):
        make_roles("camvid", splits)
    with pytest.raises(ValueError, match="val split .* has 3 images"):
        make_roles("camvid", splits, sizes={"d_s": 1, "d_t": 1, "d_r": 5})
    with pytest.raises(ValueError, match="unknown role size"):
        make_roles("camvid", splits, sizes={"d_x": 1})


def test_roles_file_overlap_and_missing_names_are_rejected(tmp_path):
    splits = load_splits("camvid", root=write_camvid_tree(tmp_path / "camvid"))
    path = tmp_path / "roles.json"
    path.write_text(json.dumps({"d_s": ["train_000.png"], "d_t": ["train_000.png"], "d_v": ["train_002.png"]}))
    with pytest.raises(ValueError, match="overlap.*train_000.png"):
        make_roles("camvid", splits, roles_file=path)
    path.write_text(json.dumps({"d_s": ["train_000.png"], "d_t": ["train_001.png"], "d_v": ["ghost.png"]}))
    with pytest.raises(ValueError, match=r"'d_v'.*ghost.png"):
        make_roles("camvid", splits, roles_file=path)
    path.write_text(json.dumps({"d_s": ["train_000.png"], "d_t": ["train_001.png"]}))
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['d_v'\]"):
        make_roles("camvid", splits, roles_file=path)
    path.write_text(json.dumps({"d_s": ["train_000.png"], "d_t": ["train_001.png"], "d_v": ["train_002.png"]}))
    roles = make_roles("camvid", splits, roles_file=path)
    assert roles.to_dict()["d_v"] == ["train_002.png"] and roles.d_r.names == splits["val"].names
