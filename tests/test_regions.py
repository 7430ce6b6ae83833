import pytest
import torch

from segal_env.regions import LabeledRegions, RegionGrid


def test_grid_counts_paper_camvid():
    grid = RegionGrid((360, 480), (90, 80))
    assert (grid.rows, grid.cols, grid.per_image) == (4, 6, 24)


def test_region_size_that_does_not_tile_names_sizes_that_do():
    with pytest.raises(ValueError, match=r"does not tile the 360x480.*heights that divide 360: \[90"):
        RegionGrid((360, 480), (91, 80))


def test_split_and_expand_are_inverse_views():
    grid = RegionGrid((6, 8), (3, 4))
    image = torch.arange(48).view(6, 8)
    regions = grid.split(image)
    assert regions.shape == (4, 3, 4)
    assert torch.equal(regions[1], image[0:3, 4:8])
    assert torch.equal(regions[2], image[3:6, 0:4])
    owner = grid.expand(torch.arange(4))
    assert torch.equal(owner[4, 5], torch.tensor(3))
    assert torch.equal(owner[0, 3], torch.tensor(0))


def test_boxes_match_split():
    grid = RegionGrid((6, 8), (3, 4))
    assert grid.boxes(torch.tensor([0, 3])).tolist() == [[0, 0, 3, 4], [3, 4, 6, 8]]


def test_class_histograms_ignore_void():
    grid = RegionGrid((2, 4), (2, 2))
    labels = torch.tensor([[[0, 1, 2, 2], [1, 255, 2, 0]]], dtype=torch.uint8)
    hist = grid.class_histograms(labels, num_classes=3)
    assert hist.tolist() == [[[1, 2, 0], [1, 0, 3]]]


def test_training_mask_is_ignore_outside_labeled_regions():
    grid = RegionGrid((4, 4), (2, 2))
    labeled = LabeledRegions(grid, num_images=2)
    labeled.mark(torch.tensor([1, 6]))  # image 0 region 1 (top right), image 1 region 2 (bottom left)
    labels = torch.full((2, 4, 4), 7, dtype=torch.uint8)
    target = labeled.masked_labels(labels, torch.tensor([0, 1]), ignore_index=255)
    assert (target[0, :2, 2:] == 7).all() and (target[0, 2:] == 255).all() and (target[0, :, :2] == 255).all()
    assert (target[1, 2:, :2] == 7).all() and int((target[1] == 7).sum()) == 4
    assert labeled.count == 2 and labeled.unlabeled_ids().numel() == 6


def test_labeling_a_region_twice_is_an_error():
    labeled = LabeledRegions(RegionGrid((4, 4), (2, 2)), num_images=1)
    labeled.mark(torch.tensor([0]))
    with pytest.raises(ValueError, match="already labeled"):
        labeled.mark(torch.tensor([0]))
    with pytest.raises(ValueError, match="twice"):
        labeled.mark(torch.tensor([1, 1]))
