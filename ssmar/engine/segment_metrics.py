"""How well predicted segments match true ones: segment F1 and average precision at a temporal IoU,
frame accuracy (the measures of temporal action detection, e.g. ActivityNet / THUMOS)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

Interval = tuple[int, int, int]  # start, end (exclusive), class


def temporal_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match(predicted: Sequence[tuple[int, int, int, float]], truth: Sequence[Interval],
          iou: float) -> np.ndarray:
    """Whether each prediction (most confident first, greedy) is a true positive: same class and
    IoU >= ``iou`` with a true segment no more confident prediction took. Order: by score, descending."""
    order = sorted(range(len(predicted)), key=lambda i: -predicted[i][3])
    taken = [False] * len(truth)
    hit = np.zeros(len(predicted), bool)
    for i in order:
        start, end, cls, _ = predicted[i]
        best, best_iou = -1, iou
        for j, (t_start, t_end, t_cls) in enumerate(truth):
            overlap = temporal_iou((start, end), (t_start, t_end))
            if not taken[j] and t_cls == cls and overlap >= best_iou:
                best, best_iou = j, overlap
        if best >= 0:
            taken[best] = True
            hit[i] = True
    return hit[order]


def segment_f1(predicted: Sequence[tuple[int, int, int, float]], truth: Sequence[Interval], iou: float) -> dict[str, float]:
    hits = int(match(predicted, truth, iou).sum())
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def average_precision(predicted: Sequence[tuple[int, int, int, float]], truth: Sequence[Interval],
                      iou: float) -> float:
    """Mean over the classes present in ``truth`` of the area under the (interpolated) precision-recall
    curve of that class's predictions ranked by score."""
    values = []
    for cls in sorted({t[2] for t in truth}):
        mine = [p for p in predicted if p[2] == cls]
        true = [t for t in truth if t[2] == cls]
        hit = match(mine, true, iou).astype(float)
        if not len(hit):
            values.append(0.0)
            continue
        tp = np.cumsum(hit)
        precision = tp / np.arange(1, len(hit) + 1)
        recall = tp / len(true)
        precision = np.maximum.accumulate(precision[::-1])[::-1]  # interpolated
        previous = np.concatenate([[0.0], recall[:-1]])
        values.append(float(np.sum((recall - previous) * precision)))
    return float(np.mean(values)) if values else 0.0


def frame_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Share of frames whose label (class, or -1 for no micro-action) is right."""
    return float((predicted == truth).mean()) if len(truth) else 0.0
