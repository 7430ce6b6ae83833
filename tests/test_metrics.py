import math

import pytest
import torch

from segal_env.metrics import confusion_matrix, iou_per_class, mean_iou


def test_miou_matches_hand_computed_case():
    # 3 classes, one ignored pixel (255). Pixels (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,0) (255,2)
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 0, 2]])
    cm = confusion_matrix(pred, target, num_classes=3, ignore_index=255)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    iou = iou_per_class(cm)
    # class 0: TP1 / (TP1 + FP1 + FN1) = 1/3; class 1: 2 / (2 + 1 + 0); class 2: 0 / (0 + 0 + 1)
    assert torch.allclose(iou, torch.tensor([1 / 3, 2 / 3, 0.0], dtype=torch.float64))
    assert math.isclose(mean_iou(cm), (1 / 3 + 2 / 3 + 0) / 3)


def test_class_absent_everywhere_is_left_out_of_the_mean():
    target = torch.tensor([0, 0, 1])
    pred = torch.tensor([0, 0, 1])
    cm = confusion_matrix(pred, target, num_classes=3, ignore_index=255)
    assert math.isnan(float(iou_per_class(cm)[2]))
    assert mean_iou(cm) == 1.0


def test_confusion_accumulates_over_batches():
    target = torch.randint(0, 4, (6, 5, 5))
    pred = torch.randint(0, 4, (6, 5, 5))
    whole = confusion_matrix(pred, target, 4, 255)
    parts = confusion_matrix(pred[:2], target[:2], 4, 255) + confusion_matrix(pred[2:], target[2:], 4, 255)
    assert torch.equal(whole, parts)


def test_miou_agrees_with_torchmetrics_multiclass_jaccard_index():
    """segal keeps its own bincount mIoU (faster on the env's hot path); it must equal the reference one."""
    torchmetrics = pytest.importorskip(
        "torchmetrics", reason="torchmetrics comes with the dev extra: pip install -e '.[dev]'"
    )
    generator = torch.Generator().manual_seed(0)
    num_classes, ignore = 11, 255
    target = torch.randint(0, num_classes, (4, 48, 64), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.2] = ignore  # a fifth of the pixels unlabeled
    # predictions that are right half the time, so the IoUs spread instead of all sitting near 1/(2C)
    pred = torch.where(
        torch.rand(target.shape, generator=generator) < 0.5,
        target.clamp(max=num_classes - 1),
        torch.randint(0, num_classes, target.shape, generator=generator),
    )
    confusion = confusion_matrix(pred, target, num_classes, ignore)

    def reference(average: str) -> torch.Tensor:
        metric = torchmetrics.classification.MulticlassJaccardIndex(num_classes, average=average, ignore_index=ignore)
        return metric(pred, target).double()

    assert torch.allclose(
        iou_per_class(confusion), reference("none"), atol=1e-6, rtol=0
    )  # torchmetrics reports float32
    assert math.isclose(mean_iou(confusion), float(reference("macro")), abs_tol=1e-6)
