"""mIoU from an accumulated confusion matrix, computed on the model's device."""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """int64 [C, C] with rows = ground truth, columns = prediction, over pixels whose target is not ignored."""
    target = target.reshape(-1).long()
    pred = pred.reshape(-1).long()
    valid = (target != ignore_index) & (target >= 0) & (target < num_classes)
    index = target[valid] * num_classes + pred[valid]
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU_c = TP / (TP + FP + FN); NaN for a class absent from both ground truth and prediction."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    denom = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean over classes that occur in ground truth or prediction."""
    return float(torch.nanmean(iou_per_class(confusion)))
