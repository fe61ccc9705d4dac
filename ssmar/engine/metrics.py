"""Classification metrics as the micro-action benchmarks report them.

Top-1/Top-5, mean class accuracy, micro/macro F1, per-class accuracy and the confusion
matrix; with a body-level map (MA-52), the same at body level and F1_mean, the mean of
action- and body-level micro and macro F1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(true * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def f1_scores(confusion: np.ndarray) -> tuple[float, float]:
    """(micro F1, macro F1); macro averages over classes present in truth or prediction."""
    tp = np.diag(confusion).astype(float)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    micro = tp.sum() / max(confusion.sum(), 1)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=present)
    return float(micro), float(f1[present].mean()) if present.any() else 0.0


def classification_metrics(scores: np.ndarray, true: np.ndarray, class_names: Sequence[str],
                           body_map: Sequence[int] | None = None,
                           body_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics (percentages) from class scores ``[N, K]`` (logits or probabilities)."""
    num_classes = len(class_names)
    order = np.argsort(-scores, axis=1)
    pred = order[:, 0]
    confusion = confusion_matrix(true, pred, num_classes)
    support = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), support, out=np.full(num_classes, np.nan), where=support > 0)
    micro, macro = f1_scores(confusion)
    topk = min(5, num_classes)
    metrics: dict[str, Any] = {
        "top1": 100.0 * float((pred == true).mean()),
        "top5": 100.0 * float((order[:, :topk] == true[:, None]).any(axis=1).mean()),
        "mean_class_acc": 100.0 * float(np.nanmean(per_class)),
        "f1_micro": 100.0 * micro,
        "f1_macro": 100.0 * macro,
        "per_class_acc": {name: (None if np.isnan(acc) else 100.0 * float(acc)) for name, acc in zip(class_names, per_class)},
        "confusion": confusion.tolist(),
        "num_samples": int(len(true)),
    }
    if body_map is not None:
        body_map_arr = np.asarray(body_map)
        num_body = int(body_map_arr.max()) + 1
        body_true = body_map_arr[true]
        body_order = np.argsort(-body_level_scores(scores, body_map), axis=1)
        body_confusion = confusion_matrix(body_true, body_order[:, 0], num_body)
        body_micro, body_macro = f1_scores(body_confusion)
        metrics.update({
            "body_top1": 100.0 * float((body_order[:, 0] == body_true).mean()),
            "body_top5": 100.0 * float((body_order[:, :min(5, num_body)] == body_true[:, None]).any(axis=1).mean()),
            "body_f1_micro": 100.0 * body_micro,
            "body_f1_macro": 100.0 * body_macro,
            "f1_mean": 100.0 * float(np.mean([micro, macro, body_micro, body_macro])),
            "body_names": list(body_names) if body_names else [f"body_{b}" for b in range(num_body)],
        })
    return metrics


def body_level_scores(scores: np.ndarray, body_map: Sequence[int]) -> np.ndarray:
    """``[N, B]`` body-level scores from action scores ``[N, K]``: a body class scores as its best
    action (MA-52's rule, used for its body-level metrics and submission)."""
    body_map_arr = np.asarray(body_map)
    return np.stack([scores[:, body_map_arr == b].max(axis=1) for b in range(int(body_map_arr.max()) + 1)], axis=1)


def save_confusion(confusion: np.ndarray, class_names: Sequence[str], out_dir: str | Path, title: str) -> None:
    """``confusion.npy`` and its plot ``confusion.png`` in ``out_dir`` (each written atomically)."""
    from ssmar.runtime.io import save_npy

    confusion = np.asarray(confusion)
    save_npy(confusion, Path(out_dir) / "confusion.npy")
    plot_confusion(confusion, class_names, str(Path(out_dir) / "confusion.png"), title=title)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: str, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (written atomically)."""
    from ssmar.runtime.io import pyplot, save_figure

    plt = pyplot()

    confusion = np.asarray(confusion, dtype=float)
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    size = max(5.0, 0.32 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    save_figure(fig, path)
