import math

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
