"""Pseudo-label quality measures, so that APLT's claims are checked rather than assumed.

All take tensors on any device and return plain Python numbers (JSON-ready); a ratio
whose denominator is zero is NaN (undefined), never 0, so that empty classes do not
masquerade as failures.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ssmar.errors import SsmarError


def pseudo_label_quality(pred: Tensor, keep: Tensor, true: Tensor, num_classes: int) -> dict[str, Any]:
    """Accuracy and coverage of pseudo-labels ``pred`` kept by ``keep`` against hidden labels ``true``.

    Overall: ``accuracy`` among kept samples, ``coverage`` = kept fraction, and
    ``accuracy_unscreened`` over all samples (what screening gained). Per class (lists of K):
    by TRUE class, ``support``, ``coverage`` (fraction kept) and ``recall`` (fraction kept and
    correct), i.e. how well each real class is served; by PREDICTED class, ``kept`` counts and
    ``accuracy`` (precision of the pseudo-label k), i.e. how trustworthy label k is.
    """
    _check_same_shape(pred=pred, keep=keep, true=true)
    keep = keep.bool()
    correct = pred == true
    kept_correct = correct & keep
    support = _bincount(true, num_classes)
    kept_by_true = _bincount(true[keep], num_classes)
    kept_by_pred = _bincount(pred[keep], num_classes)
    num_kept = int(keep.sum())
    return {
        "num_samples": true.numel(),
        "num_kept": num_kept,
        "coverage": _ratio(num_kept, true.numel()),
        "accuracy": _ratio(int(kept_correct.sum()), num_kept),
        "accuracy_unscreened": _ratio(int(correct.sum()), true.numel()),
        "per_class": {
            "support": support.tolist(),
            "coverage": _ratios(kept_by_true, support),
            "recall": _ratios(_bincount(true[kept_correct], num_classes), support),
            "kept": kept_by_pred.tolist(),
            "accuracy": _ratios(_bincount(pred[kept_correct], num_classes), kept_by_pred),
        },
    }


def cluster_purity(assign: Tensor, true: Tensor, num_classes: int) -> float:
    """Fraction of samples that belong to their cluster's majority true class."""
    _check_same_shape(assign=assign, true=true)
    _check_classes(assign, num_classes)
    _check_classes(true, num_classes)
    joint = torch.bincount(assign.long() * num_classes + true.long(), minlength=num_classes * num_classes)
    return _ratio(int(joint.view(num_classes, num_classes).max(dim=1).values.sum()), true.numel())


def accuracy_at_coverage(scores: Tensor, pred: Tensor, true: Tensor, coverage: float) -> float:
    """Accuracy of the round(coverage·N) most confident predictions (higher score = more confident).

    Compares labellers at equal coverage, e.g. APLT's ranking by −distance against FixMatch's
    max softmax probability.
    """
    _check_same_shape(scores=scores, pred=pred, true=true)
    if not 0.0 < coverage <= 1.0:
        raise SsmarError(f"accuracy_at_coverage: coverage={coverage} must be in (0, 1]")
    count = round(coverage * true.numel())
    if count == 0:
        return math.nan
    top = scores.float().topk(count).indices
    return _ratio(int((pred[top] == true[top]).sum()), count)


def _bincount(values: Tensor, num_classes: int) -> Tensor:
    _check_classes(values, num_classes)
    return torch.bincount(values.long(), minlength=num_classes).cpu()


def _check_classes(values: Tensor, num_classes: int) -> None:
    if values.numel() and not 0 <= int(values.min()) <= int(values.max()) < num_classes:
        raise SsmarError(f"diagnostics: class ids must lie in [0, {num_classes}), got range "
                         f"[{int(values.min())}, {int(values.max())}]; pass only samples with known labels")


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _ratios(numerator: Tensor, denominator: Tensor) -> list[float]:
    return [_ratio(n, d) for n, d in zip(numerator.tolist(), denominator.tolist())]


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1 or next(iter(tensors.values())).ndim != 1:
        raise SsmarError(f"diagnostics: inputs must be 1-D of equal length, got {shapes}")


COVERAGE_LEVELS = [round(0.1 * i, 1) for i in range(1, 11)]


def accuracy_curve(scores: Tensor, pred: Tensor, true: Tensor) -> list[float]:
    """Accuracy of the most confident share of predictions at each of :data:`COVERAGE_LEVELS`."""
    return [accuracy_at_coverage(scores, pred, true, level) for level in COVERAGE_LEVELS]


def compare_with_classifier(assign: Tensor, keep: Tensor, order: Tensor, true: Tensor, logits: Tensor,
                            p_cutoff: float, num_classes: int) -> dict[str, Any]:
    """One round's offline labels of the unlabelled clips against the same frozen model's classifier.

    ``assign``/``keep`` are the offline labels and the screen's verdict, ``order`` the ranking the
    screen keeps by (higher first), ``logits`` the classifier's on the same clips. The classifier
    ranks by its top probability (FixMatch's labels), compared at the offline labels' coverage and
    along the whole accuracy-coverage curve: the offline phase earns its cost only where it wins.
    """
    quality = pseudo_label_quality(assign, keep, true, num_classes)
    coverage = quality["coverage"]
    confidence, predicted = logits.float().softmax(dim=1).max(dim=1)
    confident = confidence >= p_cutoff
    return {
        "coverage": coverage, "accuracy": quality["accuracy"], "accuracy_unscreened": quality["accuracy_unscreened"],
        "purity": cluster_purity(assign, true, num_classes),
        "classifier_accuracy_unscreened": _ratio(int((predicted == true).sum()), true.numel()),
        "classifier_accuracy_at_equal_coverage": accuracy_at_coverage(confidence, predicted, true, coverage)
        if coverage > 0 else None,
        "coverage_levels": COVERAGE_LEVELS,
        "aplt_accuracy_curve": accuracy_curve(order, assign, true),
        "classifier_accuracy_curve": accuracy_curve(confidence, predicted, true),
        "classifier_threshold_coverage": float(confident.float().mean()),
        "classifier_threshold_accuracy": float((predicted == true)[confident].float().mean())
        if confident.any() else None,
        "kept_per_class": quality["per_class"]["kept"],
        "per_class": quality["per_class"],
    }
